/**
 * worker/store/commits.ts: the worker's slashing protection and restart memory. A commit is on disk before it is
 * sent, a second different commit for a task is refused (even after a restart), and what is pending survives a new
 * instance.
 */
import { expect } from "chai";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { dealId as dealIdOf, taskId as taskIdOf } from "../../../sdk/eip712";
import { WorkerError } from "../../../worker/core/errors";
import { CommitStore, type NewCommit } from "../../../worker/store/commits";
import { claimDataDir } from "../../../worker/store/lock";
import { spawnSync } from "node:child_process";

const h = (s: string) => keccak256(toUtf8Bytes(s));

function commit(store: CommitStore, n: number, over: Partial<NewCommit> = {}): NewCommit {
  const dealId = dealIdOf(ZeroHash, n);
  const taskId = taskIdOf(dealId, 0);
  return {
    taskId,
    replicaId: `r${n}`,
    dealId,
    index: 0,
    resultHash: h(`hash ${n}`),
    resultSeal: h(`seal ${n}`),
    resultDigest: h(`digest ${n}`),
    signature: "0x" + "11".repeat(65),
    chainId: 31337,
    hub: "0x" + "22".repeat(20),
    callback: false,
    outputDir: store.outputDirFor(taskId),
    committedAt: 1_000 * n,
    ...over,
  };
}

async function refusal(p: Promise<unknown>, code: string): Promise<WorkerError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(WorkerError);
    expect((e as WorkerError).code, (e as Error).message).to.equal(code);
    return e as WorkerError;
  }
  throw new Error(`expected ${code}`);
}

describe("worker store: commit records", function () {
  let dir: string;
  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), "concord-store-"));
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes a record to disk before resolving, and a new instance reads it back", async function () {
    const store = new CommitStore(dir);
    const c = commit(store, 1);
    const record = await store.record(c);
    const file = join(dir, "commits", `${c.taskId}.json`);
    expect(JSON.parse(await readFile(file, "utf8"))).to.deep.equal(record);
    expect(record).to.include({ taskId: c.taskId, resultHash: c.resultHash, resultDigest: c.resultDigest, version: 1 });
    expect(new CommitStore(dir).get(c.taskId)).to.deep.equal(record);
    // no temp file left behind
    expect((await readdir(join(dir, "commits"))).filter((n) => n.startsWith("."))).to.deep.equal([]);
  });

  it("refuses a second, different commit for a task, also after a restart", async function () {
    const store = new CommitStore(dir);
    const c = commit(store, 1);
    await store.record(c);
    const err = await refusal(store.record({ ...c, resultHash: h("other"), resultDigest: h("other digest") }), "CONFLICTING_COMMIT");
    expect(err.message).to.include(c.taskId);
    await refusal(new CommitStore(dir).record({ ...c, resultHash: h("other") }), "CONFLICTING_COMMIT");
    expect(new CommitStore(dir).get(c.taskId)!.resultHash).to.equal(c.resultHash);
  });

  it("refuses the loser of two concurrent, conflicting commits", async function () {
    const store = new CommitStore(dir);
    const c = commit(store, 1);
    const results = await Promise.allSettled([store.record(c), store.record({ ...c, resultHash: h("other") })]);
    expect(results.map((r) => r.status)).to.deep.equal(["fulfilled", "rejected"]);
    expect(new CommitStore(dir).get(c.taskId)!.resultHash).to.equal(c.resultHash);
  });

  it("accepts the same commit again (a re-sent assign) and keeps the first record", async function () {
    const store = new CommitStore(dir);
    const c = commit(store, 1);
    const first = await store.record(c);
    const again = await store.record({ ...c, replicaId: "another", committedAt: 99_999 });
    expect(again).to.deep.equal(first);
  });

  it("keeps the pending list (committed, not revealed) across instances, oldest first", async function () {
    const store = new CommitStore(dir);
    const a = commit(store, 1);
    const b = commit(store, 2);
    const c = commit(store, 3);
    await store.record(c);
    await store.record(a);
    await store.record(b);
    await store.markRevealed(b.taskId, 5_000);
    expect(store.pending().map((r) => r.taskId)).to.deep.equal([a.taskId, c.taskId]);
    const reopened = new CommitStore(dir);
    expect(reopened.pending().map((r) => r.taskId)).to.deep.equal([a.taskId, c.taskId]);
    expect(reopened.get(b.taskId)!.revealedAt).to.equal(5_000);
  });

  it("no longer lists an abandoned commit as pending, but still refuses to change it", async function () {
    const store = new CommitStore(dir);
    const c = commit(store, 1);
    await store.record(c);
    await store.update(c.taskId, { abandonedAt: 2_000 });
    expect(new CommitStore(dir).pending()).to.deep.equal([]);
    await refusal(new CommitStore(dir).record({ ...c, resultHash: h("other") }), "CONFLICTING_COMMIT");
  });

  it("sets an unreadable record aside and blocks its task", async function () {
    const store = new CommitStore(dir);
    const c = commit(store, 1);
    await store.record(c);
    await writeFile(join(dir, "commits", `${c.taskId}.json`), "{ torn");
    const reopened = new CommitStore(dir);
    expect(reopened.opened.corrupt).to.have.length(1);
    expect(reopened.get(c.taskId)).to.equal(undefined);
    expect(reopened.isBlocked(c.taskId)).to.equal(true);
    await refusal(reopened.record(c), "STORE_CORRUPT");
    // still blocked after another restart
    expect(new CommitStore(dir).isBlocked(c.taskId)).to.equal(true);
  });

  it("deletes temp files and output directories without a record when it opens", async function () {
    const store = new CommitStore(dir);
    const c = commit(store, 1);
    await store.record(c);
    await mkdir(c.outputDir, { recursive: true });
    const orphan = store.outputDirFor(taskIdOf(dealIdOf(ZeroHash, 9), 0));
    await mkdir(orphan, { recursive: true });
    await writeFile(join(orphan, "result.json"), "{}");
    await writeFile(join(dir, "commits", ".tmp-x.json-abc"), "partial");
    const reopened = new CommitStore(dir);
    expect(reopened.opened.removed).to.have.length(2);
    expect(existsSync(orphan)).to.equal(false);
    expect(existsSync(c.outputDir)).to.equal(true);
  });

  it("syncOutput makes a run's files and their directories durable, and fails on a file that is not there", async function () {
    const store = new CommitStore(dir);
    const c = commit(store, 1);
    await mkdir(join(c.outputDir, "nested", "deeper"), { recursive: true });
    await writeFile(join(c.outputDir, "result.json"), "{}");
    await writeFile(join(c.outputDir, "nested", "deeper", "part.bin"), "x");
    await store.syncOutput(c.outputDir, [{ path: "result.json" }, { path: "nested/deeper/part.bin" }]);
    await store.syncOutput(c.outputDir, []); // an empty output: its directory only
    const e = await store.syncOutput(c.outputDir, [{ path: "gone.txt" }]).then(() => null, (err: NodeJS.ErrnoException) => err);
    expect(e?.code).to.equal("ENOENT");
    await symlink("/dev/null", join(c.outputDir, "link"));
    const link = await store.syncOutput(c.outputDir, [{ path: "link" }]).then(() => null, (err: NodeJS.ErrnoException) => err);
    expect(link?.code, "a link is not followed").to.equal("ELOOP");
  });

  describe("reserve: the record's file made while the task runs, filled by the commit", function () {
    const fileOf = (c: NewCommit) => join(dir, "commits", `${c.taskId}.json`);

    it("creates the empty file; record fills it (no temp file, no rename) and a new instance reads it back", async function () {
      const store = new CommitStore(dir);
      const c = commit(store, 1);
      store.reserve(c.taskId);
      await store.flush();
      expect(await readFile(fileOf(c), "utf8")).to.equal("");
      const inode = (await stat(fileOf(c))).ino;
      const record = await store.record(c);
      expect(JSON.parse(await readFile(fileOf(c), "utf8"))).to.deep.equal(record);
      expect((await stat(fileOf(c))).ino, "the same file, filled (not replaced by a rename)").to.equal(inode);
      expect(await readdir(join(dir, "commits"))).to.deep.equal([`${c.taskId}.json`]);
      expect(new CommitStore(dir).get(c.taskId)).to.deep.equal(record);
      // the next writes of the record replace it atomically, as before
      await store.markRevealed(c.taskId, 5_000);
      expect(new CommitStore(dir).get(c.taskId)).to.deep.include({ revealedAt: 5_000 });
    });

    it("record right after reserve (the file not made yet) waits for the reservation, then writes the record", async function () {
      const store = new CommitStore(dir);
      const c = commit(store, 1);
      store.reserve(c.taskId);
      const record = await store.record(c);
      expect(JSON.parse(await readFile(fileOf(c), "utf8"))).to.deep.equal(record);
    });

    it("release deletes the empty file of a run that did not commit; a record's file is never touched", async function () {
      const store = new CommitStore(dir);
      const [a, b] = [commit(store, 1), commit(store, 2)];
      store.reserve(a.taskId);
      store.release(a.taskId);
      await store.record(b);
      store.reserve(b.taskId); // already recorded: nothing to prepare
      store.release(b.taskId);
      await store.flush();
      expect(await readdir(join(dir, "commits"))).to.deep.equal([`${b.taskId}.json`]);
      expect(new CommitStore(dir).get(b.taskId)).to.deep.include({ resultHash: b.resultHash });
    });

    it("writes the atomic way when the reserved file is gone", async function () {
      const store = new CommitStore(dir);
      const c = commit(store, 1);
      store.reserve(c.taskId);
      await store.flush();
      await rm(fileOf(c));
      const record = await store.record(c);
      expect(JSON.parse(await readFile(fileOf(c), "utf8"))).to.deep.equal(record);
    });

    it("an empty record file found at open (a reservation, or a fill cut short by a crash) is deleted: the task is free", async function () {
      const store = new CommitStore(dir);
      const c = commit(store, 1);
      store.reserve(c.taskId);
      await store.flush();
      const reopened = new CommitStore(dir);
      expect(reopened.opened).to.deep.equal({ corrupt: [], removed: [fileOf(c)] });
      expect(reopened.isBlocked(c.taskId)).to.equal(false);
      expect(existsSync(fileOf(c))).to.equal(false);
      expect(await reopened.record(c)).to.include({ resultHash: c.resultHash });
    });
  });

  it("prunes revealed outputs after keepOutputsMs and records after keepRecordsMs, nothing outside outputs/", async function () {
    const store = new CommitStore(dir);
    const old = commit(store, 1, { committedAt: 0 });
    const revealed = commit(store, 2, { committedAt: 100_000, files: [{ path: "result.json", base64: "e30=" }] });
    const outside = await mkdtemp(join(tmpdir(), "concord-outside-"));
    const rogue = commit(store, 3, { committedAt: 100_000, outputDir: outside });
    for (const c of [old, revealed]) await mkdir(c.outputDir, { recursive: true });
    for (const c of [old, revealed, rogue]) await store.record(c);
    await store.markRevealed(revealed.taskId, 100_000);
    await store.markRevealed(rogue.taskId, 100_000);

    const pruned = await store.prune({ now: 200_000, keepOutputsMs: 50_000, keepRecordsMs: 150_000 });
    expect(pruned.records).to.deep.equal([old.taskId]);
    expect(pruned.outputs).to.have.members([revealed.taskId, rogue.taskId]);
    expect(existsSync(old.outputDir)).to.equal(false);
    expect(existsSync(revealed.outputDir)).to.equal(false);
    expect(existsSync(outside)).to.equal(true);
    const reopened = new CommitStore(dir);
    expect(reopened.get(old.taskId)).to.equal(undefined);
    expect(reopened.get(revealed.taskId)!.outputsRemovedAt).to.equal(200_000);
    expect(reopened.get(revealed.taskId), "the output kept in the record goes with the outputs").to.not.have.property("files");
    expect(store.get(revealed.taskId)).to.not.have.property("files");
    await rm(outside, { recursive: true, force: true });
  });

  describe("data directory lock", function () {
    const A = "0x" + "aa".repeat(20);
    const B = "0x" + "bb".repeat(20);

    it("refuses a second daemon on the same directory until the first releases it", function () {
      const lock = claimDataDir(dir, A);
      expect(() => claimDataDir(dir, A)).to.throw(WorkerError, /in use by another worker daemon/);
      lock.release();
      claimDataDir(dir, A).release();
    });

    it("refuses a directory that belongs to another key", function () {
      claimDataDir(dir, A).release();
      expect(() => claimDataDir(dir, B)).to.throw(WorkerError, /belongs to worker/);
    });

    it("takes over the lock of a daemon that died", async function () {
      const dead = spawnSync(process.execPath, ["-e", ""]).pid;
      await writeFile(join(dir, "worker.lock"), `${dead}\n`);
      claimDataDir(dir, A).release();
    });
  });
});
