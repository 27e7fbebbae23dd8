/**
 * `concord worker start` as a real process: one line on stdout when connected, a login signed by the key, a
 * graceful stop on SIGTERM, and one-line errors for bad flags.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeScheduler, ROOT, assign, randomWallet, withTimeout } from "./harness";

const SHIM = join(__dirname, "cli-shim.ts");

interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

function concord(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", SHIM, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", TS_NODE_PROJECT: join(ROOT, "tsconfig.json"), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const proc: Proc = { child, stdout: "", stderr: "", exited: once(child, "exit").then(([code]) => code as number | null) };
  child.stdout!.on("data", (d: Buffer) => (proc.stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (proc.stderr += d.toString()));
  return proc;
}

async function waitForOutput(proc: Proc, text: string): Promise<void> {
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      const check = () => proc.stdout.includes(text) && resolve();
      proc.child.stdout!.on("data", check);
      void proc.exited.then((code) => reject(new Error(`exited ${code}: ${proc.stderr}`)));
      check();
    }),
    60_000,
    `"${text}" on stdout`,
  );
}

describe("concord worker start", function () {
  let scheduler: FakeScheduler;
  let dataDir: string;
  beforeEach(async function () {
    scheduler = await FakeScheduler.start();
    dataDir = await mkdtemp(join(tmpdir(), "concord-worker-cli-"));
  });
  afterEach(async function () {
    await scheduler.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("prints one line when connected, serves tasks, and stops gracefully on SIGTERM", async function () {
    const wallet = randomWallet();
    const proc = concord(["worker", "start", "--scheduler", scheduler.url, "--data-dir", dataDir], { CONCORD_KEY: wallet.privateKey });
    try {
      await waitForOutput(proc, "connected");
      expect(proc.stdout.trim().split("\n")).to.deep.equal([
        `worker ${wallet.address} connected to ${scheduler.url} (chain ${scheduler.chainId}, hub ${scheduler.hub})`,
      ]);
      const session = await scheduler.login();
      expect(session.signer).to.equal(wallet.address);
      const frame = assign({ args: ["from", "the", "cli"] });
      session.send(frame);
      expect((await session.next("commit")).replicaId).to.equal(frame.replicaId);
    } finally {
      proc.child.kill("SIGTERM");
    }
    expect(await proc.exited).to.equal(0);
    expect(proc.stderr).to.include('"msg":"worker stopped"');
    const secret = wallet.privateKey.slice(2);
    expect(proc.stdout + proc.stderr).to.not.include(secret);
  });

  it("refuses a bad --behaviour, a non-WebSocket --scheduler and a missing key with one line", async function () {
    const key = { CONCORD_KEY: randomWallet().privateKey };
    const cases: Array<[string[], Record<string, string>, number, RegExp]> = [
      [["--scheduler", scheduler.url, "--behaviour", "evil"], key, 2, /--behaviour: expected honest, lie/],
      [["--scheduler", "http://127.0.0.1:1/ws"], key, 2, /--scheduler: expected a WebSocket URL/],
      [["--scheduler", scheduler.url], {}, 1, /give --key/],
    ];
    await Promise.all(
      cases.map(async ([args, env, code, message]) => {
        const proc = concord(["worker", "start", "--data-dir", dataDir, ...args], env);
        expect(await proc.exited, proc.stderr).to.equal(code);
        expect(proc.stderr.trim().split("\n")).to.have.length(1);
        expect(proc.stderr).to.match(message);
      }),
    );
    expect(scheduler.logins()).to.deep.equal([]);
  });
});
