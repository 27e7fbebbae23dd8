/**
 * The worker daemon against a fake scheduler (a real WebSocket server on 127.0.0.1): login, assign → commit,
 * reveal → revealed, cancel, invalid frames, restarts and reconnections. No chain: the daemon runs without rpcUrl.
 */
import { expect } from "chai";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { keccak256, recoverAddress, toUtf8Bytes, verifyMessage, type Wallet } from "ethers";
import { domain, hashMessage, resultHash, resultSeal } from "../../../sdk/eip712";
import { directoryDigest } from "../../../sdk/encoding";
import { loginMessage } from "../../../sdk/session";
import { WorkerDaemon, type WorkerConfig } from "../../../worker";
import { CommitStore } from "../../../worker/store/commits";
import {
  CHAIN_ID,
  FakeScheduler,
  HUB,
  appRef,
  assign,
  captureLogs,
  datasetRef,
  randomWallet,
  type FakeSession,
} from "./harness";

type Revealed = Awaited<ReturnType<FakeSession["next"]>> & { type: "revealed" };

const D = domain(CHAIN_ID, HUB);

/** The directory digest of the files of a `revealed` frame, written back to disk. */
async function digestOfFiles(files: { path: string; base64: string }[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "concord-revealed-"));
  try {
    for (const f of files) {
      await mkdir(dirname(join(dir, f.path)), { recursive: true });
      await writeFile(join(dir, f.path), Buffer.from(f.base64, "base64"));
    }
    return await directoryDigest(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function fileText(frame: { files: { path: string; base64: string }[] }, path: string): string {
  const f = frame.files.find((x) => x.path === path);
  expect(f, `file ${path}`).to.not.equal(undefined);
  return Buffer.from(f!.base64, "base64").toString("utf8");
}

describe("worker daemon: session with a scheduler", function () {
  let scheduler: FakeScheduler;
  let dataDir: string;
  let cacheDir: string;
  let wallet: Wallet;
  let logs: ReturnType<typeof captureLogs>;
  const daemons: WorkerDaemon[] = [];

  const startDaemon = async (over: Partial<WorkerConfig> = {}): Promise<WorkerDaemon> => {
    const daemon = new WorkerDaemon(
      {
        schedulerUrl: scheduler.url,
        signer: wallet,
        dataDir,
        cacheDir,
        heartbeatMs: 200,
        backoff: { initialMs: 20, maxMs: 200, factor: 2, jitter: 0.5 },
        maxConcurrentRuns: 4,
        ...over,
      },
      { logger: logs.log },
    );
    daemons.push(daemon);
    await daemon.start();
    return daemon;
  };

  beforeEach(async function () {
    scheduler = await FakeScheduler.start();
    scheduler.heartbeatMs = 200;
    dataDir = await mkdtemp(join(tmpdir(), "concord-worker-"));
    cacheDir = await mkdtemp(join(tmpdir(), "concord-worker-cache-"));
    wallet = randomWallet();
    logs = captureLogs();
  });

  afterEach(async function () {
    await Promise.all(daemons.splice(0).map((d) => d.close()));
    await scheduler.close();
    for (const s of scheduler.sessions) expect(s.invalid, "frames the protocol refuses").to.deep.equal([]);
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  });

  /** Assigns, waits for the commit, checks it fully, and returns it. */
  async function commitOf(session: FakeSession, frame: ReturnType<typeof assign>) {
    session.send(frame);
    const commit = await session.next("commit", (c) => c.replicaId === frame.replicaId);
    expect(commit.taskId).to.equal(frame.taskId);
    const signer = recoverAddress(hashMessage(D, "Contribution", { taskId: frame.taskId, resultHash: commit.resultHash, resultSeal: commit.resultSeal }), commit.signature);
    expect(signer, "the Contribution signature recovers to the worker").to.equal(wallet.address);
    return commit;
  }

  async function revealOf(session: FakeSession, frame: { replicaId: string; taskId: string }): Promise<Revealed> {
    session.send({ type: "reveal", replicaId: frame.replicaId, taskId: frame.taskId });
    const revealed = await session.next("revealed", (r) => r.replicaId === frame.replicaId);
    const signer = recoverAddress(hashMessage(D, "Reveal", { taskId: frame.taskId, resultDigest: revealed.resultDigest }), revealed.signature);
    expect(signer, "the Reveal signature recovers to the worker").to.equal(wallet.address);
    return revealed as Revealed;
  }

  it("logs in with an EIP-191 signature of the challenge that recovers to the worker's address", async function () {
    const daemon = await startDaemon();
    const connected = once(daemon, "connected");
    const session = await scheduler.login();
    expect(session.signer).to.equal(wallet.address);
    expect(session.hello).to.include({ worker: wallet.address, version: 1 });
    expect(session.hello!.pending).to.deep.equal([]);
    expect(verifyMessage(loginMessage({ nonce: session.nonce, chainId: CHAIN_ID, hub: HUB }), session.hello!.signature)).to.equal(wallet.address);
    const [info] = await connected;
    expect(info).to.include({ worker: wallet.address, url: scheduler.url, heartbeatMs: 200 });
    expect(daemon.connected).to.equal(true);
  });

  it("assign → commit to the run's digest (resultHash, resultSeal, Contribution signature); reveal → the files and a Reveal signature", async function () {
    await startDaemon();
    const session = await scheduler.login();
    const frame = assign({ app: appRef("sieve"), args: ["--n", "1000"] });
    const commit = await commitOf(session, frame);

    const revealed = await revealOf(session, frame);
    expect(revealed.files.map((f) => f.path)).to.deep.equal(["result.json"]);
    expect(JSON.parse(fileText(revealed, "result.json"))).to.deep.equal({ largest: 997, n: 1000, primes: 168 });
    expect(await digestOfFiles(revealed.files)).to.equal(revealed.resultDigest);
    expect(revealed.callbackData).to.equal(null);
    expect(commit.resultHash).to.equal(resultHash(frame.taskId, revealed.resultDigest));
    expect(commit.resultSeal).to.equal(resultSeal(wallet.address, frame.taskId, revealed.resultDigest));
    // the digest was never logged while it was secret
    const digestLogged = logs.lines.filter((l) => JSON.stringify(l).includes(revealed.resultDigest.slice(2)));
    expect(digestLogged).to.deep.equal([]);
    // revealed: no longer pending (the worker marks it on disk once the frame is sent)
    await logs.waitFor((l) => l.msg === "revealed" && l.replicaId === frame.replicaId, "reveal marked on disk");
    expect(new CommitStore(dataDir).pending()).to.deep.equal([]);
  });

  it("commits to keccak256 of /out/callback-data for a callback deal, and reveals those bytes", async function () {
    await startDaemon();
    const session = await scheduler.login();
    const frame = assign({ app: appRef("echo"), args: ["hello", "world"], callback: true });
    const commit = await commitOf(session, frame);
    const revealed = await revealOf(session, frame);
    const bytes = toUtf8Bytes("hello world");
    expect(revealed.resultDigest).to.equal(keccak256(bytes));
    expect(revealed.callbackData).to.equal("0x" + Buffer.from(bytes).toString("hex"));
    expect(commit.resultHash).to.equal(resultHash(frame.taskId, keccak256(bytes)));
    expect(JSON.parse(fileText(revealed, "result.json"))).to.deep.equal({ args: ["hello", "world"] });
  });

  it("runs an sql query over a CSV dataset named after the registered dataset", async function () {
    await startDaemon();
    const session = await scheduler.login();
    const frame = assign({
      app: { id: "2", runtime: "sql", uri: "", checksum: "0x" + "00".repeat(32) },
      dataset: datasetRef("customers.csv", "customers"),
      params: JSON.stringify({ query: "SELECT COUNT(*) AS n FROM customers" }),
    });
    await commitOf(session, frame);
    const revealed = await revealOf(session, frame);
    expect(JSON.parse(fileText(revealed, "result.json"))).to.deep.equal({ columns: ["n"], rows: [[2000]] });
  });

  it("reports failed (no commit) for a checksum mismatch, a callback deal without callback-data, an inconsistent task id", async function () {
    await startDaemon();
    const session = await scheduler.login();
    const badChecksum = assign({ app: { ...appRef("echo"), checksum: "0x" + "12".repeat(32) } });
    const noCallback = assign({ app: appRef("sieve"), args: ["--n", "100"], callback: true });
    const badTask = { ...assign(), taskId: "0x" + "34".repeat(32) };
    for (const f of [badChecksum, noCallback, badTask]) session.send(f);
    const codes = await Promise.all(
      [badChecksum, noCallback, badTask].map(async (f) => (await session.next("failed", (x) => x.replicaId === f.replicaId)).code),
    );
    expect(codes).to.deep.equal(["CHECKSUM_MISMATCH", "NO_CALLBACK_DATA", "INVALID_ASSIGNMENT"]);
    expect(session.all("commit")).to.deep.equal([]);
    expect(new CommitStore(dataDir).all()).to.deep.equal([]);
  });

  it("asked for a direct commit without a chain connection: reports NO_CHAIN, records and sends no commit", async function () {
    await startDaemon();
    const session = await scheduler.login();
    const frame = { ...assign({ app: appRef("sieve"), args: ["--n", "100"] }), commitMode: "direct" as const };
    session.send(frame);
    const failed = await session.next("failed", (f) => f.replicaId === frame.replicaId);
    expect(failed.code).to.equal("NO_CHAIN");
    expect(failed.message).to.match(/--rpc/);
    expect(session.all("commit")).to.deep.equal([]);
    expect(new CommitStore(dataDir).all()).to.deep.equal([]);
  });

  it("reports a run failure with the runtime's code", async function () {
    await startDaemon();
    const session = await scheduler.login();
    const frame = assign({ app: appRef("exitcode"), args: ["7"] });
    session.send(frame);
    const failed = await session.next("failed", (f) => f.replicaId === frame.replicaId);
    expect(failed.code).to.equal("NON_ZERO_EXIT");
    expect(failed.message).to.not.include("\n");
  });

  it("cancel stops a long run at once and the worker keeps serving", async function () {
    const daemon = await startDaemon();
    const session = await scheduler.login();
    const loop = assign({ app: appRef("loop"), timeoutMs: 600_000 });
    session.send(loop);
    await logs.waitFor((l) => l.msg === "run started" && l.replicaId === loop.replicaId, "the loop runs");
    session.send({ type: "cancel", replicaId: loop.replicaId, taskId: loop.taskId, reason: "quorum reached" });
    await logs.waitFor((l) => l.msg === "replica cancelled" && l.replicaId === loop.replicaId, "the loop is cancelled");
    expect(daemon.status().replicas).to.deep.equal([]);

    const echo = assign({ args: ["still", "here"] });
    await commitOf(session, echo);
    expect(session.all("failed")).to.deep.equal([]);
    expect(session.all("commit").map((c) => c.replicaId)).to.deep.equal([echo.replicaId]);
  });

  it("ignores invalid frames (logged) and keeps the session", async function () {
    await startDaemon();
    const session = await scheduler.login();
    session.send("this is not JSON");
    session.send(JSON.stringify({ type: "assign", replicaId: "x" }));
    session.send(JSON.stringify({ type: "launch-missiles" }));
    session.send(Buffer.from([1, 2, 3]));
    const frame = assign({ args: ["after", "garbage"] });
    await commitOf(session, frame);
    expect(logs.lines.filter((l) => l.msg === "invalid frame ignored" && l.level >= 50)).to.have.length(4);
    expect(scheduler.sessions).to.have.length(1);
  });

  it("keeps a small output in the commit record: the reveal needs no output directory", async function () {
    await startDaemon();
    const session = await scheduler.login();
    const frame = assign({ app: appRef("sieve"), args: ["--n", "1000"] });
    await commitOf(session, frame);
    const record = new CommitStore(dataDir).get(frame.taskId)!;
    expect(record.files?.map((f) => f.path)).to.deep.equal(["result.json"]);
    await rm(record.outputDir, { recursive: true, force: true }); // lost (it was never fsynced)

    const revealed = await revealOf(session, frame);
    expect(revealed.files).to.deep.equal(record.files);
    expect(await digestOfFiles(revealed.files)).to.equal(revealed.resultDigest);
  });

  it("after a restart between commit and reveal, announces the commit as pending and reveals it from disk", async function () {
    const first = await startDaemon();
    const s1 = await scheduler.login();
    const frame = assign({ args: ["survives", "restart"] });
    const commit = await commitOf(s1, frame);
    await first.close();

    await startDaemon();
    const s2 = await scheduler.login(1);
    expect(s2.hello!.pending).to.deep.equal([
      { replicaId: frame.replicaId, taskId: frame.taskId, resultHash: commit.resultHash, resultSeal: commit.resultSeal, signature: commit.signature },
    ]);
    const revealed = await revealOf(s2, frame);
    expect(resultHash(frame.taskId, revealed.resultDigest)).to.equal(commit.resultHash);
    expect(await digestOfFiles(revealed.files)).to.equal(revealed.resultDigest);
  });

  it("commits the same result again when a committed task is assigned again, without running it", async function () {
    await startDaemon();
    const session = await scheduler.login();
    const frame = assign({ args: ["once"] });
    const first = await commitOf(session, frame);
    const again = { ...frame, replicaId: frame.replicaId + "-bis" };
    const second = await commitOf(session, again);
    expect(second).to.deep.include({ resultHash: first.resultHash, resultSeal: first.resultSeal, signature: first.signature });
    expect(logs.lines.filter((l) => l.msg === "run started" && l.taskId === frame.taskId)).to.have.length(1);
    expect(new CommitStore(dataDir).get(frame.taskId)!.replicaId).to.equal(again.replicaId);
  });

  it("answers a reveal for a task it never committed with failed UNKNOWN_TASK", async function () {
    await startDaemon();
    const session = await scheduler.login();
    const frame = assign();
    session.send({ type: "reveal", replicaId: frame.replicaId, taskId: frame.taskId });
    expect((await session.next("failed")).code).to.equal("UNKNOWN_TASK");
  });

  it("reconnects after the scheduler drops the socket, and serves on the new session", async function () {
    await startDaemon();
    const s1 = await scheduler.login();
    s1.drop();
    const s2 = await scheduler.login(1);
    expect(s2.signer).to.equal(wallet.address);
    await commitOf(s2, assign({ args: ["again"] }));
  });

  it("drops a scheduler that stops answering pings and reconnects", async function () {
    await startDaemon();
    scheduler.answerPings = false;
    await scheduler.login();
    await logs.waitFor((l) => l.msg === "scheduler silent for 3 heartbeats: dropping the connection", "dead scheduler detected");
    scheduler.answerPings = true;
    const s2 = await scheduler.login(1);
    await commitOf(s2, assign({ args: ["alive"] }));
  });

  it("refuses to log in to a scheduler of another Hub than its deployment's", async function () {
    await startDaemon({ deployment: { hub: "0x" + "99".repeat(20) } });
    await logs.waitFor((l) => typeof l.msg === "string" && l.msg.startsWith("refusing to log in"), "refusal");
    expect(scheduler.logins()).to.deep.equal([]);
  });

  describe("behaviours (test hook)", function () {
    it("lie: commits and reveals keccak256 of the true digest", async function () {
      await startDaemon({ behaviour: "lie" });
      const session = await scheduler.login();
      const frame = assign({ args: ["truth"] });
      const commit = await commitOf(session, frame);
      const revealed = await revealOf(session, frame);
      const truth = await digestOfFiles(revealed.files);
      expect(revealed.resultDigest).to.equal(keccak256(truth));
      expect(commit.resultHash).to.equal(resultHash(frame.taskId, keccak256(truth)));
    });

    it("slow: delays the commit", async function () {
      await startDaemon({ behaviour: "slow", slowDelayMs: 300 });
      const session = await scheduler.login();
      const frame = assign({ args: ["late"] });
      await commitOf(session, frame);
      expect(logs.lines.some((l) => l.msg.startsWith("slow behaviour") && l.replicaId === frame.replicaId)).to.equal(true);
    });

    it("silent: commits but never reveals", async function () {
      await startDaemon({ behaviour: "silent" });
      const session = await scheduler.login();
      const frame = assign({ args: ["quiet"] });
      await commitOf(session, frame);
      session.send({ type: "reveal", replicaId: frame.replicaId, taskId: frame.taskId });
      await logs.waitFor((l) => l.msg.includes("reveal withheld") && l.replicaId === frame.replicaId, "reveal withheld");
      expect(session.all("revealed")).to.deep.equal([]);
      expect(new CommitStore(dataDir).pending().map((r) => r.taskId)).to.deep.equal([frame.taskId]);
    });
  });
});
