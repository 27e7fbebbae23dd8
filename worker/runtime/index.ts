/**
 * Concord's deterministic app runtime (DESIGN §4, docs/apps.md), usable on its own: the worker daemon, `concord
 * run-local` and `concord verify-determinism` all run apps through `Runtime.run`.
 *
 * A run gets a read-only input directory (`/in`, holding the dataset as `/in/dataset`), a fresh output directory
 * (`/out`), arguments from the request params, a fixed environment, and a seed (the task id) for its virtual clock
 * and randomness. Its result is the output directory: `digest` = directoryDigest(/out) (sdk/encoding.ts), and
 * `/out/callback-data`, when written, is the raw callback payload of deals with an on-chain callback.
 */
import { createHash } from "node:crypto";
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { copyFile, lstat, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import { canonicalJson, directoryDigest, EncodingError, filesDigest } from "../../sdk/encoding";
import { parseParams, ParamsError, type Params } from "../../sdk/params";
import { RuntimeError } from "./errors";
import { runInThread, warmThread } from "./thread";
import { prepareModule, type PreparedModule } from "./wasi/module";
import { runSql, tableNameFor, warmSql } from "./sql";

export { RuntimeError, isRuntimeError, type RuntimeErrorCode } from "./errors";

export type RuntimeKind = "wasi" | "sql";
export const RUNTIMES: readonly RuntimeKind[] = ["wasi", "sql"];

export interface Limits {
  /** wall-clock deadline of one run, thread start included */
  timeoutMs: number;
  /** WebAssembly linear memory of a wasi app */
  memoryBytes: number;
  /** total size of the output directory */
  outputBytes: number;
  /** stdout and stderr are each kept up to this many bytes (for the logs; never part of the result) */
  logBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  timeoutMs: 60_000,
  memoryBytes: 256 * 1024 * 1024,
  outputBytes: 16 * 1024 * 1024,
  logBytes: 64 * 1024,
};

/** The environment every app sees, whatever the host's: results never depend on the host's locale or zone. */
export const SANDBOX_ENV: Readonly<Record<string, string>> = Object.freeze({
  HOME: "/",
  LANG: "C.UTF-8",
  LC_ALL: "C.UTF-8",
  TZ: "UTC",
});
export const DATASET_PATH = "/in/dataset";
export const CALLBACK_FILE = "callback-data";
export const RESULT_FILE = "result.json";
export const APP_ARGV0 = "app";

export interface RunRequest {
  runtime: RuntimeKind;
  /** the WebAssembly module's bytes (runtime `wasi`) */
  app?: Uint8Array;
  /** a local, verified dataset file; `name` names the table a CSV becomes in the `sql` runtime */
  dataset?: { path: string; name?: string };
  /** the request order's params (sdk/params.ts) */
  params: string;
  /** 32-byte hex seed of the virtual clock and randomness: the task id */
  seed: string;
  /** where the output goes (created, must be empty); default a fresh temporary directory */
  outputDir?: string;
  limits?: Partial<Limits>;
  signal?: AbortSignal;
}

export interface RunResult {
  /** directoryDigest of the output directory */
  digest: string;
  /** bytes of /out/callback-data, when the app wrote it */
  callbackData?: Uint8Array;
  outputDir: string;
  /** files of the output, relative paths sorted, with sizes */
  files: { path: string; size: number }[];
  outputBytes: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  logsTruncated: boolean;
  durationMs: number;
}

interface WasiReply {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

const WASI_THREAD = join(__dirname, "wasi", "wasi-thread.js");
const SEED = /^0x[0-9a-fA-F]{64}$/;

export interface RuntimeOptions {
  limits?: Partial<Limits>;
  /** compiled modules kept in memory, by sha256 (a warm cache skips compilation) */
  moduleCacheSize?: number;
}

export class Runtime {
  readonly limits: Limits;
  private readonly modules = new Map<string, Promise<PreparedModule>>();
  private readonly moduleCacheSize: number;

  constructor(opts: RuntimeOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.moduleCacheSize = opts.moduleCacheSize ?? 16;
  }

  /** Starts an idle sandbox thread for each runtime, so that even the first run of each finds one ready. */
  async warm(): Promise<void> {
    warmThread(WASI_THREAD);
    await warmSql();
  }

  /** Runs one app; throws RuntimeError (one line, a `code`) on every failure. */
  async run(req: RunRequest): Promise<RunResult> {
    const started = performance.now();
    const limits = { ...this.limits, ...req.limits };
    if (!SEED.test(req.seed)) throw new RuntimeError("INVALID_PARAMS", "seed must be a 32-byte 0x-hex value (the task id)");
    let params;
    try {
      params = parseParams(req.params);
    } catch (e) {
      if (e instanceof ParamsError) throw new RuntimeError("INVALID_PARAMS", e.message);
      throw e;
    }
    const createdOut = req.outputDir === undefined;
    const outputDir = req.outputDir ?? (await mkdtemp(join(tmpdir(), "concord-out-")));
    if (!createdOut) prepareEmptyDir(outputDir);
    let inDir: string | null = null;
    try {
      if (req.dataset) checkDataset(req.dataset.path);
      let logs: Pick<RunResult, "stdout" | "stderr" | "logsTruncated">;
      /** the output, when the runtime wrote it itself from memory (the sql runtime's result.json): not read back */
      let written: { path: string; bytes: Uint8Array } | null = null;
      if (req.runtime === "wasi") {
        // /in exists for a wasi app only: the sql runtime reads the dataset where it is
        inDir = mkdtempSync(join(tmpdir(), "concord-in-"));
        if (req.dataset) await stageDataset(req.dataset.path, join(inDir, "dataset"));
        if (!req.app) throw new RuntimeError("INVALID_MODULE", "the wasi runtime needs the app's module bytes");
        if (params.query !== undefined) throw new RuntimeError("INVALID_PARAMS", "params: `query` is for the sql runtime, not a wasi app");
        const prepared = await this.prepare(req.app, limits.memoryBytes);
        const reply = await runInThread<WasiReply>(
          WASI_THREAD,
          {
            module: prepared.module,
            args: [APP_ARGV0, ...params.args],
            env: req.dataset ? { ...SANDBOX_ENV, CONCORD_DATASET: DATASET_PATH } : { ...SANDBOX_ENV },
            inDir,
            outDir: outputDir,
            seed: req.seed,
            maxPages: prepared.maxPages,
            outputBytes: limits.outputBytes,
            logBytes: limits.logBytes,
          },
          { timeoutMs: limits.timeoutMs, signal: req.signal },
        );
        logs = { stdout: reply.stdout, stderr: reply.stderr, logsTruncated: reply.stdoutTruncated || reply.stderrTruncated };
      } else if (req.runtime === "sql") {
        written = await this.runSql(req, params, outputDir, limits);
        logs = { stdout: new Uint8Array(), stderr: new Uint8Array(), logsTruncated: false };
      } else {
        throw new RuntimeError("INVALID_PARAMS", `unknown runtime ${JSON.stringify(req.runtime)} (known: ${RUNTIMES.join(", ")})`);
      }
      const files = written ? [{ path: written.path, size: written.bytes.length }] : await listOutput(outputDir);
      const outputBytes = files.reduce((n, f) => n + f.size, 0);
      if (outputBytes > limits.outputBytes) {
        throw new RuntimeError("OUTPUT_TOO_LARGE", `output too large: ${outputBytes} bytes, the limit is ${limits.outputBytes}`);
      }
      let digest: string;
      try {
        // the directory the runtime wrote alone (it was empty) holds exactly `written`: the same digest, without the walk
        digest = written ? filesDigest([written]) : await directoryDigest(outputDir);
      } catch (e) {
        if (e instanceof EncodingError) throw new RuntimeError("INVALID_OUTPUT", `invalid output: ${e.message}`);
        throw e;
      }
      const callbackData = files.some((f) => f.path === CALLBACK_FILE)
        ? new Uint8Array(await readFile(join(outputDir, CALLBACK_FILE)))
        : undefined;
      return { digest, callbackData, outputDir, files, outputBytes, ...logs, durationMs: performance.now() - started };
    } catch (e) {
      if (createdOut) await rm(outputDir, { recursive: true, force: true });
      throw e;
    } finally {
      if (inDir !== null) rmSync(inDir, { recursive: true, force: true }); // a link or a copy: unlinked, not read
    }
  }

  /** Compiles (or finds in the warm cache) a module capped at the memory limit. */
  prepare(bytes: Uint8Array, memoryBytes: number): Promise<PreparedModule> {
    const key = createHash("sha256").update(bytes).digest("hex") + ":" + memoryBytes;
    let entry = this.modules.get(key);
    if (entry) {
      this.modules.delete(key); // re-insert: the map's order is the LRU order
      this.modules.set(key, entry);
      return entry;
    }
    entry = prepareModule(bytes, memoryBytes);
    this.modules.set(key, entry);
    entry.catch(() => this.modules.delete(key));
    while (this.modules.size > this.moduleCacheSize) this.modules.delete(this.modules.keys().next().value as string);
    return entry;
  }

  /** The `sql` runtime: the query's rows as canonical JSON in /out/result.json (returned as written). */
  private async runSql(req: RunRequest, params: Params, outputDir: string, limits: Limits): Promise<{ path: string; bytes: Uint8Array }> {
    if (params.query === undefined) throw new RuntimeError("INVALID_PARAMS", 'params: the sql runtime needs a `query`, e.g. {"query":"SELECT 1"}');
    if (params.args.length) throw new RuntimeError("INVALID_PARAMS", "params: `args` is for wasi apps, the sql runtime takes a `query`");
    const result = await runSql({
      datasetPath: req.dataset?.path,
      table: tableNameFor(req.dataset?.name),
      query: params.query,
      timeoutMs: limits.timeoutMs,
      maxOutputBytes: limits.outputBytes,
      maxMemoryBytes: limits.memoryBytes,
      signal: req.signal,
    });
    const bytes = Buffer.from(canonicalJson(result), "utf8");
    await writeFile(join(outputDir, RESULT_FILE), bytes);
    return { path: RESULT_FILE, bytes };
  }
}

/*
 * The small file-system steps of a run (a directory made, checked, listed; a link; an lstat) are synchronous: they are
 * on the path of every run, and each asynchronous one is a round trip through libuv's thread pool, which waits for a
 * free thread when the machine is busy with the other replicas. Each takes microseconds on a local disk.
 */

function prepareEmptyDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  if (readdirSync(dir).length) throw new RuntimeError("INVALID_PARAMS", `output directory ${dir} is not empty`);
}

/** The dataset must be a regular file. */
function checkDataset(source: string): void {
  try {
    const st = lstatSync(source);
    if (!st.isFile()) throw new RuntimeError("INVALID_DATASET", `dataset ${source} is not a regular file`);
  } catch (e) {
    if (e instanceof RuntimeError) throw e;
    throw new RuntimeError("INVALID_DATASET", `dataset ${source} cannot be read: ${(e as Error).message}`);
  }
}

/** Puts the (checked) dataset at /in/dataset without copying when the file system allows a hard link. */
async function stageDataset(source: string, target: string): Promise<void> {
  try {
    linkSync(source, target);
  } catch {
    await copyFile(source, target); // another file system: a copy, which may be large
  }
}

/** Asynchronous, unlike the steps above: an app decides how many files and directories its output has. */
async function listOutput(dir: string, prefix = ""): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  for (const entry of (await readdir(join(dir, prefix), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listOutput(dir, rel)));
    else out.push({ path: rel, size: (await lstat(join(dir, rel))).size });
  }
  return out;
}
