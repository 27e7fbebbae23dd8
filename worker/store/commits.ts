/**
 * The worker's durable memory of what it committed: the slashing protection of a compute worker.
 *
 * A commit is recorded here BEFORE its `commit` frame leaves the worker, so that (1) a crash or restart between commit
 * and reveal never forfeits a stake: the record names the digest to reveal and the output directory holding the files;
 * and (2) the worker never commits two different results for one task: `record` refuses a second, different
 * resultHash for a taskId it already holds, even across restarts.
 *
 * Layout under `dir`:
 *   commits/<taskId>.json   one record per task, replaced atomically (temp file, fsync, rename, fsync of the directory)
 *   outputs/<taskId>/       the output directory of the task's run (the files sent with `revealed`)
 *
 * The first write of a record is on the path of every commit, so it is prepared while the task runs: `reserve` creates
 * the task's record file empty and makes its directory entry durable (fsync of the directory), off the event loop;
 * `record` then only fills it and flushes it (write, fdatasync). Without a reservation, or when filling fails, the
 * record is written the atomic way above. `release` deletes the empty file of a run that ends without a commit.
 * Before the record, the run's output is made durable too (`syncOutput`): a record always names files on disk. A
 * small output is kept in the record itself instead (`files`), and needs no fsync of its own.
 *
 * A record file that cannot be read back is set aside as `<name>.corrupt` and its task is blocked: the worker will not
 * commit for it again, since it no longer knows what it committed (a crash while a reserved file was being filled can
 * leave it so; its commit was never sent). Temp files, empty record files (a reservation, or a fill the crash
 * stopped before its flush) and output directories without a record (a crash mid-write or mid-run) are deleted when
 * the store opens.
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { z } from "zod";
import { MAX_RESULT_FILES, ResultFile } from "../../sdk/session";
import { WorkerError } from "../core/errors";

const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/);
const TASK_FILE = /^(0x[0-9a-f]{64})\.json$/;
const TEMP_PREFIX = ".tmp-";
/** fsyncs `syncOutput` runs at once */
const SYNC_CONCURRENCY = 8;
/**
 * An output of at most this many bytes in at most this many files is kept in its commit record (`files`) rather than
 * fsynced on its own: the record stays a few tens of KB at most.
 */
export const OUTPUT_IN_RECORD_MAX_BYTES = 16 * 1024;
export const OUTPUT_IN_RECORD_MAX_FILES = 16;

export const CommitRecord = z
  .object({
    version: z.literal(1),
    taskId: bytes32,
    replicaId: z.string().min(1).max(100),
    dealId: bytes32,
    index: z.number().int().nonnegative(),
    resultHash: bytes32,
    resultSeal: bytes32,
    /** the digest committed to; secret until revealed (never logged) */
    resultDigest: bytes32,
    /** the worker's EIP-712 Contribution signature, relayable by the scheduler */
    signature: z.string().regex(/^0x([0-9a-fA-F]{2})+$/),
    /** the EIP-712 domain the commit was signed for; the Reveal is signed for the same */
    chainId: z.number().int().positive(),
    hub: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
    /** the deal has an on-chain callback: /out/callback-data travels with the reveal */
    callback: z.boolean(),
    outputDir: z.string().min(1),
    /**
     * the output itself when it is small (`OUTPUT_IN_RECORD_MAX_BYTES`), as the `revealed` frame carries it: durable
     * with the record, so a reveal never depends on the output directory (which is then not fsynced)
     */
    files: z.array(ResultFile).max(MAX_RESULT_FILES).optional(),
    committedAt: z.number().int(),
    revealedAt: z.number().int().optional(),
    /** the scheduler cancelled the replica after its commit: no longer announced as pending */
    abandonedAt: z.number().int().optional(),
    outputsRemovedAt: z.number().int().optional(),
  })
  .strict();
export type CommitRecord = z.infer<typeof CommitRecord>;

/** What a caller provides; the store adds `version`. */
export type NewCommit = Omit<CommitRecord, "version" | "revealedAt" | "abandonedAt" | "outputsRemovedAt">;

export interface PruneOptions {
  now: number;
  /** the output directory of a revealed (or abandoned) task is deleted this long after the reveal */
  keepOutputsMs: number;
  /** a record (and whatever is left of its output) is deleted this long after its commit */
  keepRecordsMs: number;
}

export interface OpenReport {
  /** record files set aside as unreadable (their tasks are blocked) */
  corrupt: string[];
  /** leftovers of a crash that were deleted: temp files and output directories without a record */
  removed: string[];
}

export class CommitStore {
  readonly commitsDir: string;
  readonly outputsDir: string;
  /** what `open` found and cleaned up, for the daemon to log */
  readonly opened: OpenReport = { corrupt: [], removed: [] };
  private readonly records = new Map<string, CommitRecord>();
  private readonly blocked = new Set<string>();
  /** per-task chain of file writes: updates of one record never interleave */
  private readonly writes = new Map<string, Promise<unknown>>();
  /** tasks whose record file exists empty and durably (`reserve`), ready to be filled by the first `record` */
  private readonly reserved = new Set<string>();

  /** Opens (or creates) the store under `dir` and loads every record. Synchronous: it runs once at start. */
  constructor(dir: string) {
    this.commitsDir = join(dir, "commits");
    this.outputsDir = join(dir, "outputs");
    mkdirSync(this.commitsDir, { recursive: true });
    mkdirSync(this.outputsDir, { recursive: true });
    this.load();
  }

  /** Where the output of `taskId`'s run goes. */
  outputDirFor(taskId: string): string {
    if (!bytes32.safeParse(taskId).success) throw new WorkerError("INTERNAL", `not a task id: ${taskId}`);
    return join(this.outputsDir, taskId.toLowerCase());
  }

  get(taskId: string): CommitRecord | undefined {
    return this.records.get(taskId.toLowerCase());
  }

  /** Whether the task's record was lost to corruption (no commit is allowed for it any more). */
  isBlocked(taskId: string): boolean {
    return this.blocked.has(taskId.toLowerCase());
  }

  /** Commits made and neither revealed nor abandoned, oldest first: `hello.pending`. */
  pending(): CommitRecord[] {
    return [...this.records.values()]
      .filter((r) => r.revealedAt === undefined && r.abandonedAt === undefined)
      .sort((a, b) => a.committedAt - b.committedAt);
  }

  all(): CommitRecord[] {
    return [...this.records.values()];
  }

  /**
   * Makes a run's output durable, to be awaited before its commit is recorded: the record names the files a reveal
   * sends, and after a crash (a power loss, not only a restart) they must still be there. Each file is fsynced, and
   * each directory holding one, the output directory's own entry in `outputs/` included; all at once, off the event
   * loop. A directory that cannot be opened (some platforms) is skipped; a file that cannot be synced is an error.
   */
  async syncOutput(outputDir: string, files: readonly { path: string }[]): Promise<void> {
    const dirs = new Set([this.outputsDir, outputDir]);
    for (const f of files) {
      for (let d = dirname(join(outputDir, f.path)); d.startsWith(outputDir + sep); d = dirname(d)) dirs.add(d);
    }
    // never through a link an app may have left in its output (a link there fails the commit: no reveal sends it)
    const sync = (path: string) => fsyncPath(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    // at most SYNC_CONCURRENCY at once: an app may write many small files, and the thread pool serves everyone
    const jobs = [...files.map((f) => () => sync(join(outputDir, f.path))), ...[...dirs].map((d) => () => sync(d).catch(() => undefined))];
    for (let i = 0; i < jobs.length; i += SYNC_CONCURRENCY) await Promise.all(jobs.slice(i, i + SYNC_CONCURRENCY).map((job) => job()));
  }

  /**
   * Prepares the first write of the task's record while its run goes on (see the module comment): the empty record
   * file, its directory entry flushed. Never throws: a failure only means `record` writes the atomic way.
   */
  reserve(taskId: string): void {
    const key = taskId.toLowerCase();
    if (this.records.has(key) || this.blocked.has(key) || this.reserved.has(key)) return;
    // no record was on disk when this was called, and any record's first write queues behind this job (per-key
    // queue): the file made empty here holds nothing yet, and a `record` arriving meanwhile fills it
    void this.enqueue(key, async () => {
      const file = await open(this.fileOf(key), "w", 0o600); // empty: a leftover reservation is reused
      await file.close();
      await fsyncPath(this.commitsDir);
      this.reserved.add(key);
    }).catch(() => this.reserved.delete(key));
  }

  /** A reserved task's run ended without a commit: its empty record file goes (no-op otherwise). */
  release(taskId: string): void {
    const key = taskId.toLowerCase();
    void this.enqueue(key, async () => {
      if (!this.reserved.delete(key) || this.records.has(key)) return;
      await rm(this.fileOf(key), { force: true }); // not flushed: an empty file left by a crash is deleted at open
    }).catch(() => undefined);
  }

  /**
   * Records a commit durably; resolves once it is on disk. Recording the same resultHash again is a no-op that
   * returns the existing record; a different one is refused (CONFLICTING_COMMIT), as is a blocked task (STORE_CORRUPT).
   */
  async record(commit: NewCommit): Promise<CommitRecord> {
    const key = commit.taskId.toLowerCase();
    if (this.blocked.has(key)) {
      throw new WorkerError("STORE_CORRUPT", `task ${commit.taskId}: its commit record was unreadable, refusing to commit again`);
    }
    const existing = this.records.get(key);
    if (existing) {
      if (existing.resultHash.toLowerCase() !== commit.resultHash.toLowerCase()) {
        throw new WorkerError(
          "CONFLICTING_COMMIT",
          `task ${commit.taskId}: already committed to another result (resultHash ${existing.resultHash}), refusing a second one`,
        );
      }
      await this.writes.get(key); // the first caller's write may still be in flight
      const written = this.records.get(key);
      if (!written) throw new WorkerError("INTERNAL", `task ${commit.taskId}: the first record of this commit failed to write`);
      return written;
    }
    const record = CommitRecord.parse({ ...commit, taskId: key, version: 1 });
    // Reserved synchronously, before any await: a concurrent `record` of the same task sees it.
    this.records.set(key, record);
    try {
      await this.write(key, record);
    } catch (e) {
      if (this.records.get(key) === record) this.records.delete(key);
      throw e;
    }
    return record;
  }

  /** The record of the task with some fields changed, written durably (no-op for an unknown task). */
  async update(taskId: string, change: Partial<Pick<CommitRecord, "replicaId" | "revealedAt" | "abandonedAt" | "outputsRemovedAt" | "files">>): Promise<CommitRecord | undefined> {
    const key = taskId.toLowerCase();
    const current = this.records.get(key);
    if (!current) return undefined;
    const merged: Record<string, unknown> = { ...current, ...change };
    for (const field of Object.keys(merged)) if (merged[field] === undefined) delete merged[field]; // a field cleared
    const next = CommitRecord.parse(merged);
    this.records.set(key, next);
    await this.write(key, next, { background: true });
    return next;
  }

  markRevealed(taskId: string, at = Date.now()): Promise<CommitRecord | undefined> {
    return this.update(taskId, { revealedAt: at });
  }

  /**
   * Deletes the outputs of tasks revealed (or abandoned) more than `keepOutputsMs` ago, and the records (with any
   * output left) committed more than `keepRecordsMs` ago. Returns the task ids whose outputs or records went.
   */
  async prune(opts: PruneOptions): Promise<{ outputs: string[]; records: string[] }> {
    const outputs: string[] = [];
    const records: string[] = [];
    for (const r of [...this.records.values()]) {
      if (r.committedAt < opts.now - opts.keepRecordsMs) {
        await this.removeOutput(r.outputDir);
        await this.enqueue(r.taskId, async () => {
          await rm(this.fileOf(r.taskId), { force: true });
          syncDirectory(this.commitsDir);
        });
        this.records.delete(r.taskId);
        records.push(r.taskId);
        continue;
      }
      const done = r.revealedAt ?? r.abandonedAt;
      if (done !== undefined && r.outputsRemovedAt === undefined && done < opts.now - opts.keepOutputsMs) {
        await this.removeOutput(r.outputDir);
        await this.update(r.taskId, { outputsRemovedAt: opts.now, files: undefined }); // the output kept in the record goes too
        outputs.push(r.taskId);
      }
    }
    return { outputs, records };
  }

  /** Waits for every write in flight (reservations included). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.writes.values()]);
  }

  // ------------------------------------------------------------------------------------------------------ private

  private fileOf(key: string): string {
    return join(this.commitsDir, `${key}.json`);
  }

  /** Deletes an output directory, never anything outside `outputs/` (a record is data read back from disk). */
  private async removeOutput(dir: string): Promise<void> {
    const rel = relative(this.outputsDir, resolve(dir));
    if (rel === "" || rel.startsWith("..") || rel.includes(sep) || resolve(this.outputsDir, rel) !== resolve(dir)) return;
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /**
   * A record's first write is on the path of its commit: filled into its reservation, or written synchronously (one turn
   * of the event loop). Later ones (revealed, abandoned, pruned outputs) are on nobody's path: `background` writes them
   * through the thread pool, so that their fsyncs never hold up the event loop.
   */
  private write(key: string, record: CommitRecord, { background = false } = {}): Promise<void> {
    const text = JSON.stringify(record, null, 1) + "\n";
    return this.enqueue(key, async () => {
      if (this.reserved.delete(key) && fillDurably(this.fileOf(key), text)) return;
      await (background ? writeDurablyInBackground : writeDurably)(this.commitsDir, `${key}.json`, text);
    });
  }

  private enqueue<T>(key: string, job: () => Promise<T>): Promise<T> {
    const previous = this.writes.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(job);
    const tail = next.catch(() => undefined);
    this.writes.set(key, tail);
    void tail.then(() => {
      if (this.writes.get(key) === tail) this.writes.delete(key);
    });
    return next;
  }

  private load(): void {
    for (const name of readdirSync(this.commitsDir)) {
      const path = join(this.commitsDir, name);
      if (name.startsWith(TEMP_PREFIX)) {
        rmSync(path, { force: true });
        this.opened.removed.push(path);
        continue;
      }
      const corruptOf = /^(0x[0-9a-f]{64})\.json\.corrupt/.exec(name);
      if (corruptOf) {
        this.blocked.add(corruptOf[1]);
        continue;
      }
      const match = TASK_FILE.exec(name);
      if (!match) continue;
      let text: string | null;
      try {
        text = readFileSync(path, "utf8");
      } catch {
        text = null;
      }
      if (text === "") {
        // a reservation whose run never committed, or a fill a crash stopped before its flush (nothing was sent)
        rmSync(path, { force: true });
        this.opened.removed.push(path);
        continue;
      }
      let record: CommitRecord | undefined;
      try {
        const parsed = CommitRecord.safeParse(JSON.parse(text ?? ""));
        if (parsed.success && parsed.data.taskId.toLowerCase() === match[1]) record = parsed.data;
      } catch {
        record = undefined;
      }
      if (record) {
        this.records.set(match[1], record);
      } else {
        renameSync(path, `${path}.corrupt`);
        this.blocked.add(match[1]);
        this.opened.corrupt.push(path);
      }
    }
    // An output directory without a record is a run that crashed before its commit: nothing will ever reveal it.
    const kept = new Set([...this.records.values()].map((r) => resolve(r.outputDir)));
    for (const name of readdirSync(this.outputsDir)) {
      const path = join(this.outputsDir, name);
      if (kept.has(resolve(path))) continue;
      rmSync(path, { recursive: true, force: true });
      this.opened.removed.push(path);
    }
  }
}

/**
 * Writes `name` in `dir` so that after a crash it holds either the old content or the new, never a torn mix.
 * Synchronous on purpose (a record is a few hundred bytes, a few tens of KB with a small output in it): one turn of
 * the event loop instead of eight round trips through libuv's thread pool, each of which waits for a CPU when the
 * machine is busy, and a commit waits for it.
 */
async function writeDurably(dir: string, name: string, text: string): Promise<void> {
  const temp = join(dir, `${TEMP_PREFIX}${name}-${randomBytes(6).toString("hex")}`);
  const fd = openSync(temp, "wx", 0o600);
  try {
    writeFileSync(fd, text, "utf8");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(temp, join(dir, name));
  } catch (e) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // the rename's error is the one to report
    }
    throw e;
  }
  syncDirectory(dir);
}

/** `writeDurably`'s steps through the thread pool (fs/promises): the same guarantee, the event loop free meanwhile. */
async function writeDurablyInBackground(dir: string, name: string, text: string): Promise<void> {
  const temp = join(dir, `${TEMP_PREFIX}${name}-${randomBytes(6).toString("hex")}`);
  const file = await open(temp, "wx", 0o600);
  try {
    await file.writeFile(text, "utf8");
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temp, join(dir, name));
  } catch (e) {
    await rm(temp, { force: true }).catch(() => undefined); // the rename's error is the one to report
    throw e;
  }
  await fsyncPath(dir).catch(() => undefined); // best effort, as syncDirectory
}

/** fsync of a file or directory through the thread pool. */
async function fsyncPath(path: string, flags: number = constants.O_RDONLY): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Fills a reserved (empty, durably created) record file and flushes it: write, truncate to the text, fdatasync. False
 * when any of it fails (the caller then writes the atomic way, which replaces whatever this left).
 */
function fillDurably(path: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r+");
  } catch {
    return false;
  }
  try {
    const bytes = Buffer.from(text, "utf8");
    if (writeSync(fd, bytes, 0, bytes.length, 0) !== bytes.length) return false;
    ftruncateSync(fd, bytes.length);
    fdatasyncSync(fd);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/** Makes a rename durable; some platforms refuse to open a directory: best effort there. */
function syncDirectory(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // best effort
  } finally {
    closeSync(fd);
  }
}
