/**
 * The four ways the benchmark runs one app: bare `node:wasi` in this thread (the floor, no sandbox) and Concord's
 * `Runtime.run` (thread, deterministic WASI wrappers, memory cap, output digest), each cold and warm.
 *
 * "Cold" must really be cold. V8 keeps compiled modules in a process-wide cache keyed by the module's bytes, with the
 * optimised (tiered-up) code attached, so compiling the same bytes twice measures a cache hit, not a compilation. Each
 * cold run therefore gets the same code with a unique custom section appended (a nonce): a module neither V8 nor
 * Concord's cache has seen. Custom sections do not change what the module does.
 */
import { closeSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { WASI } from "node:wasi";
import { directoryDigest } from "../../sdk/encoding";
import { APP_ARGV0, RESULT_FILE, Runtime, SANDBOX_ENV } from "../../worker/runtime";
import { closeStandbyThreads } from "../../worker/runtime/thread";

export type BenchErrorCode = "APP_FAILED" | "RESULT_MISMATCH";

export class BenchError extends Error {
  readonly code: BenchErrorCode;
  constructor(code: BenchErrorCode, message: string) {
    super(message);
    this.name = "BenchError";
    this.code = code;
  }
}

export interface Workload {
  readonly name: string;
  /** the app's arguments, argv[1..] */
  readonly args: readonly string[];
}

/** One timed run and what it produced (read after the clock stopped). */
export interface Measurement {
  ms: number;
  resultJson: Buffer;
  /** directoryDigest of /out: always from the runtime; from a bare run only when asked (the reference run) */
  digest?: string;
}

export interface Variant {
  readonly name: string;
  readonly side: "bare" | "runtime";
  readonly temperature: "cold" | "warm";
  measure(workload: Workload): Promise<Measurement>;
}

const SEED = "0x" + "00".repeat(32);
const NONCE_SECTION = "concord-bench-nonce";
let nonceCounter = 0;

function leb128(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

/** The module with a custom section holding a never-used number appended: same code, bytes never seen before. */
export function withNonce(bytes: Uint8Array): Uint8Array {
  const name = Buffer.from(NONCE_SECTION, "utf8");
  const payload = Buffer.from(`${process.pid}:${++nonceCounter}:${performance.now()}`, "utf8");
  const body = Buffer.concat([Buffer.from(leb128(name.length)), name, payload]);
  return Buffer.concat([bytes, Buffer.from([0, ...leb128(body.length)]), body]);
}

/**
 * Node 20's node:wasi aborts the process (SIGABRT or SIGSEGV, no exception) once the WebAssembly memories its
 * instances grew add up to about 40 MiB without a garbage collection in between (apps/README.md; the heavy sieve
 * grows to 640 KiB, so ~50 bare runs). The bare runs therefore force a full GC, outside their timing, whenever the
 * memories of the bare runs since the last one reach GC_BUDGET. With ts-node loaded a full GC takes ~100 ms, so it
 * is not done before every run. The runtime is not exposed: each of its runs has a thread of its own.
 */
const GC_BUDGET = 8 * 1024 * 1024;
let uncollectedBytes = 0;
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

function collectIfNeeded(): void {
  if (uncollectedBytes < GC_BUDGET) return;
  collectGarbage();
  uncollectedBytes = 0;
}

async function freshDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `concord-bench-${label}-`));
}

/**
 * Bare node:wasi: what running the app costs with no sandbox at all. Timed: creating the /in and /out temp
 * directories, obtaining the module (compiling it, for a cold run), `new WASI`, instantiation and `start`. Not timed: reading the
 * result and removing the directories. stdout/stderr go to /dev/null, as the runtime's thread sends them nowhere.
 */
async function bareRun(
  obtainModule: () => Promise<WebAssembly.Module>,
  workload: Workload,
  opts: { digest?: boolean } = {},
): Promise<Measurement> {
  const devNull = [openSync("/dev/null", "r"), openSync("/dev/null", "w"), openSync("/dev/null", "w")];
  let inDir: string | undefined;
  let outDir: string | undefined;
  collectIfNeeded();
  try {
    const started = performance.now();
    inDir = await freshDir("in");
    outDir = await freshDir("out");
    const module = await obtainModule();
    const wasi = new WASI({
      version: "preview1",
      args: [APP_ARGV0, ...workload.args],
      env: { ...SANDBOX_ENV },
      preopens: { "/in": inDir, "/out": outDir },
      returnOnExit: true,
      stdin: devNull[0],
      stdout: devNull[1],
      stderr: devNull[2],
    });
    const instance = new WebAssembly.Instance(module, wasi.getImportObject() as WebAssembly.Imports);
    const exitCode = wasi.start(instance);
    const ms = performance.now() - started;
    uncollectedBytes += (instance.exports.memory as WebAssembly.Memory).buffer.byteLength;
    if (exitCode !== 0) throw new BenchError("APP_FAILED", `bare run of ${workload.name} exited with code ${exitCode}`);
    const resultJson = await readFile(join(outDir, RESULT_FILE));
    return { ms, resultJson, digest: opts.digest ? await directoryDigest(outDir) : undefined };
  } finally {
    for (const fd of devNull) closeSync(fd);
    await Promise.all([inDir, outDir].map((d) => d && rm(d, { recursive: true, force: true })));
  }
}

/** Timed: the whole `Runtime.run` call. Not timed: reading the result and removing the output directory. */
async function runtimeRun(runtime: Runtime, app: Uint8Array, workload: Workload, started: number): Promise<Measurement> {
  const result = await runtime.run({ runtime: "wasi", app, params: JSON.stringify({ args: workload.args }), seed: SEED });
  const ms = performance.now() - started;
  try {
    return { ms, resultJson: await readFile(join(result.outputDir, RESULT_FILE)), digest: result.digest };
  } finally {
    await rm(result.outputDir, { recursive: true, force: true });
  }
}

/**
 * The four variants over one module. The warm ones are warmed by the caller's discarded warm-up iterations (their
 * first run compiles); `close` stops the runtime's idle thread.
 */
export async function makeVariants(bytes: Uint8Array): Promise<{ variants: Variant[]; close(): Promise<void> }> {
  const bareModule = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const warmRuntime = new Runtime();
  const variants: Variant[] = [
    {
      name: "bare cold",
      side: "bare",
      temperature: "cold",
      measure(w) {
        const fresh = withNonce(bytes) as Uint8Array<ArrayBuffer>;
        return bareRun(() => WebAssembly.compile(fresh), w);
      },
    },
    {
      name: "bare warm",
      side: "bare",
      temperature: "warm",
      measure: (w) => bareRun(async () => bareModule, w),
    },
    {
      name: "runtime cold",
      side: "runtime",
      temperature: "cold",
      // a new Runtime (empty module cache), unseen bytes, and no idle thread: the first run of a fresh worker
      async measure(w) {
        const fresh = withNonce(bytes);
        await closeStandbyThreads();
        const started = performance.now();
        return runtimeRun(new Runtime(), fresh, w, started);
      },
    },
    {
      name: "runtime warm",
      side: "runtime",
      temperature: "warm",
      measure: (w) => runtimeRun(warmRuntime, bytes, w, performance.now()),
    },
  ];
  return { variants, close: closeStandbyThreads };
}

/** The bare run's output, digested the way the runtime digests /out: what every measured run must reproduce. */
export async function referenceOutput(bytes: Uint8Array, workload: Workload): Promise<{ resultJson: Buffer; digest: string }> {
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  const { resultJson, digest } = await bareRun(async () => module, workload, { digest: true });
  return { resultJson, digest: digest as string };
}
