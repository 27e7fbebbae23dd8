/**
 * Sandbox threads are reused (thread.ts): a thread that answered serves the next job of its script; one that failed,
 * ran out of time or was cancelled is replaced, by an idle thread started after a short delay; and nothing of one job
 * reaches the next (the WASI and sql thread scripts build each job's world anew), checked against runs on a brand-new
 * thread.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import initSqlJs from "sql.js";
import { Runtime, type RunResult } from "../../../worker/runtime";
import { runSql } from "../../../worker/runtime/sql";
import {
  closeStandbyThreads,
  idleThreadId,
  MAX_JOBS_PER_THREAD,
  REPLACEMENT_DELAY_MS,
  runInThread,
} from "../../../worker/runtime/thread";
import { runtimeFailure } from "../../helpers/runtime";

const ROOT = join(__dirname, "..", "..", "..");
const COUNTING = join(ROOT, "test", "helpers", "counting-thread.js");
const SEED = "0x" + "cd".repeat(32);

type Served = { threadId: number; jobs: number };
const job = (j: { fail?: boolean; sleepMs?: number } = {}, timeoutMs = 5_000, signal?: AbortSignal) =>
  runInThread<Served>(COUNTING, j, { timeoutMs, signal });
/** A job that fails, its thread's replacement due in `replacementDelayMs` (default: the module's). */
const failing = (replacementDelayMs?: number) =>
  runtimeFailure(runInThread<Served>(COUNTING, { fail: true }, { timeoutMs: 5_000, replacementDelayMs }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for the idle thread of the counting script; returns its threadId and when it was seen. */
async function idleThread(withinMs = 5_000): Promise<{ threadId: number; at: number }> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    const threadId = idleThreadId(COUNTING);
    if (threadId !== undefined) return { threadId, at: performance.now() };
    if (performance.now() > deadline) throw new Error("no idle thread");
    await sleep(5);
  }
}

describe("sandbox threads: reuse", function () {
  beforeEach(() => closeStandbyThreads());
  after(() => closeStandbyThreads());

  it("a thread that answered serves the next job of its script", async function () {
    const first = await job();
    const second = await job();
    expect(second).to.deep.equal({ threadId: first.threadId, jobs: first.jobs + 1 });
  });

  it("a thread that failed, ran out of time or was cancelled is replaced", async function () {
    const before = await job();
    expect((await runtimeFailure(job({ fail: true }))).code).to.equal("NON_ZERO_EXIT");
    const afterFailure = await job();
    expect(afterFailure.threadId).not.to.equal(before.threadId);

    expect((await runtimeFailure(job({ sleepMs: 5_000 }, 50))).code).to.equal("DEADLINE_EXCEEDED");
    const afterTimeout = await job();
    expect(afterTimeout.threadId).not.to.equal(afterFailure.threadId);

    const cancel = new AbortController();
    const cancelled = job({ sleepMs: 5_000 }, 5_000, cancel.signal);
    setTimeout(() => cancel.abort(), 20);
    expect((await runtimeFailure(cancelled)).code).to.equal("CANCELLED");
    expect((await job()).threadId).not.to.equal(afterTimeout.threadId);
  });

  it(`a thread serves at most ${MAX_JOBS_PER_THREAD} jobs`, async function () {
    const first = await job();
    let last = first;
    for (let i = 1; i < MAX_JOBS_PER_THREAD; i++) last = await job();
    expect(last).to.deep.equal({ threadId: first.threadId, jobs: MAX_JOBS_PER_THREAD });
    expect((await job()).threadId).not.to.equal(first.threadId);
  });

  it(`the replacement of a terminated thread is started ${REPLACEMENT_DELAY_MS} ms later, not at once`, async function () {
    const failedAt = performance.now();
    await failing();
    expect(idleThreadId(COUNTING), "no thread started with the failure").to.equal(undefined);
    await sleep(REPLACEMENT_DELAY_MS / 2);
    expect(idleThreadId(COUNTING), "none halfway through the delay").to.equal(undefined);
    const replacement = await idleThread();
    expect(replacement.at - failedAt).to.be.at.least(REPLACEMENT_DELAY_MS - 2);
    expect(await job()).to.deep.equal({ threadId: replacement.threadId, jobs: 1 });
  });

  it("the replacement delay is an option; 0 starts the replacement at once", async function () {
    await failing(0);
    const replacement = idleThreadId(COUNTING);
    expect(replacement).to.be.a("number");
    expect(await job()).to.deep.equal({ threadId: replacement, jobs: 1 });

    const failedAt = performance.now();
    await failing(60);
    expect(idleThreadId(COUNTING)).to.equal(undefined);
    expect((await idleThread()).at - failedAt).to.be.at.least(58);
  });

  it("a job coming before the replacement starts its own thread, which stays as the idle one (no replacement then)", async function () {
    const failed = await job();
    await failing(100);
    const running = job({ sleepMs: 300 });
    await sleep(200); // the replacement was due at 100 ms
    expect(idleThreadId(COUNTING), "no replacement started while the job runs").to.equal(undefined);
    const served = await running;
    expect(served.threadId).not.to.equal(failed.threadId);
    expect(served.jobs).to.equal(1);
    expect(idleThreadId(COUNTING)).to.equal(served.threadId);
  });

  it("closing the idle threads cancels a replacement due", async function () {
    await failing(50);
    await closeStandbyThreads();
    await sleep(150);
    expect(idleThreadId(COUNTING)).to.equal(undefined);
  });

  it("a replacement due does not keep the process alive", async function () {
    this.timeout(30_000);
    const script = [
      `const { runInThread } = require(${JSON.stringify(join(ROOT, "worker", "runtime", "thread.ts"))});`,
      `runInThread(${JSON.stringify(COUNTING)}, { fail: true }, { timeoutMs: 5000, replacementDelayMs: 600000 })`,
      `  .catch((e) => console.log("failed:", e.code));`,
    ].join("\n");
    const started = performance.now();
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const kill = setTimeout(() => child.kill(), 20_000);
    const [code] = (await once(child, "exit").finally(() => clearTimeout(kill))) as [number | null];
    expect(out.trim()).to.equal("failed: NON_ZERO_EXIT");
    expect(code, "exited by itself, long before the replacement was due").to.equal(0);
    expect(performance.now() - started).to.be.below(20_000);
  });

  it("two jobs at once run on two threads, and one idle thread is kept", async function () {
    const [a, b] = await Promise.all([job({ sleepMs: 30 }), job({ sleepMs: 30 })]);
    expect(a.threadId).not.to.equal(b.threadId);
    expect([a.threadId, b.threadId]).to.include((await job()).threadId);
  });

  describe("nothing of one job reaches the next", function () {
    const runtime = new Runtime({ limits: { timeoutMs: 20_000 } });
    const outputs: RunResult[] = [];
    const wasi = async (name: string, args: string[] = []) => {
      const r = await runtime.run({ runtime: "wasi", app: await readFile(join(ROOT, "apps", "build", `${name}.wasm`)), params: args.length ? JSON.stringify({ args }) : "", seed: SEED });
      outputs.push(r);
      return readFile(join(r.outputDir, "result.json"), "utf8");
    };
    after(() => Promise.all(outputs.map((r) => rm(r.outputDir, { recursive: true, force: true }))));

    it("wasi: the probe sees the same world after other apps ran on its thread as on a new thread", async function () {
      const fresh = await wasi("probe"); // a brand-new thread (beforeEach closed the idle ones)
      await wasi("sieve", ["--n", "100000"]);
      await wasi("echo", ["a", "b"]);
      expect(await wasi("probe")).to.equal(fresh);
      expect(await wasi("probe")).to.equal(fresh);
    });

    it("wasi: 60 memory-hungry runs in a row on one reused thread stay stable and give one digest", async function () {
      this.timeout(60_000);
      const app = await readFile(join(ROOT, "apps", "build", "sieve.wasm"));
      const digests = new Set<string>();
      for (let i = 0; i < 60; i++) {
        const r = await runtime.run({ runtime: "wasi", app, params: JSON.stringify({ args: ["--n", "30000000"] }), seed: SEED });
        digests.add(r.digest);
        await rm(r.outputDir, { recursive: true, force: true });
      }
      expect(digests.size).to.equal(1);
    });

    it("sql: a view reading random(), randomblob() and the clock gives a new thread's rows after other queries", async function () {
      const dir = await mkdtemp(join(tmpdir(), "concord-thread-"));
      try {
        const SQL = await initSqlJs();
        const db = new SQL.Database();
        db.run("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3)");
        db.run("CREATE VIEW hidden AS SELECT random() AS r, hex(randomblob(8)) AS b, datetime('now') AS now FROM t");
        const dataset = join(dir, "hidden.sqlite");
        await writeFile(dataset, db.export());
        db.close();
        const query = (q: string) => runSql({ query: q, datasetPath: dataset, timeoutMs: 10_000, maxOutputBytes: 1 << 20 });
        const probe = "SELECT h.*, (SELECT file FROM pragma_database_list) AS file FROM hidden h";
        const fresh = await query(probe); // a brand-new thread
        await query("SELECT sum(x) FROM t");
        expect(await query(probe)).to.deep.equal(fresh);
        expect(await query(probe)).to.deep.equal(fresh);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
