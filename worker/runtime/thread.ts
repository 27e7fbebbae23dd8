/**
 * Runs one sandboxed job in a worker thread and enforces its wall-clock deadline: when the deadline passes (or the
 * caller aborts) the thread is terminated, which stops WebAssembly mid-instruction.
 *
 * Starting a thread costs ~20–30 ms of CPU, as much as a small app's whole run: with a hedged task's replicas running
 * side by side on a small machine, those starts were the main cost of a run. So a thread that answered a job
 * successfully is kept, idle and unref'd (it never keeps the process alive), for the next job of the same script:
 * one idle thread per script, each serving at most MAX_JOBS_PER_THREAD jobs. A thread that failed, ran out of time or
 * was cancelled (or served its last job) is terminated and an idle one is started in its place `replacementDelayMs`
 * later, not at once: a cancel comes when the rest of the system is busiest (the scheduler relaying a quorum, the
 * worker committing), and a thread start would compete with it. A job of that script coming sooner starts its own
 * thread, as it would without an idle one, and that thread stays as the idle one. `warmThread` starts one ahead of the
 * first job. Reuse must not let one job see anything of another, so the thread scripts build everything a job can
 * observe anew for each job (a new WASI instance and module instance; a new SQLite with a reseeded random source) and
 * run a full garbage collection after answering (250 ms later, when the rest of the system is done with the answer, or
 * before the next job if it comes sooner), so that the grown memories of past jobs never pile up (node:wasi aborts the
 * process when they do on one thread, see bench/runtime/README.md).
 *
 * A thread gets the script's `threadData` (the same for every thread of a script, e.g. a compiled module) as
 * `workerData`. The thread script (plain JavaScript, so a thread starts without a TypeScript compiler) takes each
 * message as a job and answers each with exactly one message: `{ ok: true, value }` or `{ ok: false, code, message }`.
 */
import { Worker } from "node:worker_threads";
import type { ResourceLimits, TransferListItem } from "node:worker_threads";
import { RuntimeError, type RuntimeErrorCode } from "./errors";

export interface ThreadOptions {
  /** wall-clock budget of the job, from the moment it is handed to the thread */
  timeoutMs: number;
  signal?: AbortSignal;
  transferList?: TransferListItem[];
  /** the thread's `workerData`: the same for every job of this script (an idle thread is started with it) */
  threadData?: unknown;
  /** when this job's thread is terminated, its idle replacement starts this much later; default REPLACEMENT_DELAY_MS */
  replacementDelayMs?: number;
}

/** How long after a thread is terminated its idle replacement starts (a thread start costs ~25 ms of CPU). */
export const REPLACEMENT_DELAY_MS = 250;

type Reply = { ok: true; value: unknown } | { ok: false; code: RuntimeErrorCode; message: string };

/** Thread heap limits: the glue needs little; WebAssembly memory is limited separately by the runtime. */
export const THREAD_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 };

function spawn(script: string, threadData: unknown): Worker {
  const worker = new Worker(script, {
    workerData: threadData,
    resourceLimits: THREAD_LIMITS,
    // The thread prints nothing itself (apps' stdout/stderr are captured in memory); node:wasi's ExperimentalWarning
    // is silenced. Piping the thread's stdio instead would keep an idle thread from letting the process exit.
    execArgv: ["--no-warnings"],
    env: {}, // the sandbox glue sees no host environment variable
  });
  return worker;
}

/** Jobs one thread serves before it is replaced (bounds whatever a long-lived thread could accumulate). */
export const MAX_JOBS_PER_THREAD = 200;

const idle = new Map<string, Worker>();
const jobsServed = new WeakMap<Worker, number>();
/** replacements due, by script (unref'd: they never keep the process alive) */
const replacements = new Map<string, NodeJS.Timeout>();

/** Keeps `worker` as the idle thread of `script` (false when there already is one). */
function park(script: string, worker: Worker): boolean {
  if (idle.has(script)) return false;
  worker.unref();
  worker.once("error", () => idle.get(script) === worker && idle.delete(script));
  worker.once("exit", () => idle.get(script) === worker && idle.delete(script));
  idle.set(script, worker);
  return true;
}

/** Starts the idle thread of `script` unless it has one. */
export function warmThread(script: string, threadData?: unknown): void {
  if (!idle.has(script)) park(script, spawn(script, threadData));
}

/** Starts the idle thread of `script` in `delayMs`, unless a job of that script comes first. */
function replaceLater(script: string, threadData: unknown, delayMs: number): void {
  if (idle.has(script) || replacements.has(script)) return;
  if (delayMs <= 0) return warmThread(script, threadData);
  const timer = setTimeout(() => {
    replacements.delete(script);
    warmThread(script, threadData);
  }, delayMs);
  timer.unref();
  replacements.set(script, timer);
}

/** The threadId of the idle thread of `script`, if it has one (tests). */
export function idleThreadId(script: string): number | undefined {
  return idle.get(script)?.threadId;
}

/** The idle thread of `script` when there is one, else a new thread (which replaces any replacement due). */
function take(script: string, threadData: unknown): Worker {
  clearTimeout(replacements.get(script));
  replacements.delete(script);
  const ready = idle.get(script);
  idle.delete(script);
  if (!ready) return spawn(script, threadData);
  ready.removeAllListeners("error");
  ready.removeAllListeners("exit");
  ready.ref();
  return ready;
}

/**
 * Terminates the idle threads and cancels the replacements due (tests and shutdown; both are unref'd, so a process
 * exits without this).
 */
export async function closeStandbyThreads(): Promise<void> {
  for (const timer of replacements.values()) clearTimeout(timer);
  replacements.clear();
  const threads = [...idle.values()];
  idle.clear();
  await Promise.all(threads.map((w) => w.terminate()));
}

export function runInThread<T>(script: string, job: unknown, opts: ThreadOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new RuntimeError("CANCELLED", "run cancelled before it started"));
    let settled = false;
    const worker = take(script, opts.threadData);
    /** `answered`: the thread answered `ok` and can serve another job. */
    const finish = (err: Error | null, value?: T, answered = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      worker.removeAllListeners("message");
      worker.removeAllListeners("error");
      worker.removeAllListeners("exit");
      const served = (jobsServed.get(worker) ?? 0) + 1;
      jobsServed.set(worker, served);
      if (!(answered && served < MAX_JOBS_PER_THREAD && park(script, worker))) {
        worker.on("error", () => undefined); // an error the thread queued before it stops must not reach the process
        void worker.terminate();
        replaceLater(script, opts.threadData, opts.replacementDelayMs ?? REPLACEMENT_DELAY_MS);
      }
      if (err) reject(err);
      else resolve(value as T);
    };
    const timer = setTimeout(
      () => finish(new RuntimeError("DEADLINE_EXCEEDED", `deadline exceeded: still running after ${opts.timeoutMs} ms, stopped`)),
      opts.timeoutMs,
    );
    const onAbort = (): void => finish(new RuntimeError("CANCELLED", "run cancelled"));
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    worker.on("message", (reply: Reply) => {
      if (reply.ok) finish(null, reply.value as T, true);
      else finish(new RuntimeError(reply.code, reply.message));
    });
    worker.once("error", (e: Error & { code?: string }) => {
      if (e.code === "ERR_WORKER_OUT_OF_MEMORY") {
        finish(new RuntimeError("MEMORY_EXCEEDED", "memory exceeded: the sandbox ran out of heap"));
      } else {
        finish(new RuntimeError("NON_ZERO_EXIT", `sandbox failed: ${e.message}`, { cause: e }));
      }
    });
    worker.once("exit", (code) => finish(new RuntimeError("NON_ZERO_EXIT", `sandbox thread exited (${code}) without a result`)));
    worker.postMessage(job, opts.transferList);
  });
}
