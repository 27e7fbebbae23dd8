/**
 * Runs one sandboxed job in a fresh worker thread and enforces its wall-clock deadline: when the deadline passes (or
 * the caller aborts) the thread is terminated, which stops WebAssembly mid-instruction. A thread runs exactly one job
 * and is then discarded, so nothing of one app survives into the next.
 *
 * Starting a thread costs ~20 ms of CPU (more when its script loads a large WebAssembly module), so one idle thread
 * per script is kept ready (unref'd, so it never keeps the process alive). The next one is started when a job ends,
 * not when it starts: several sandboxes running at once on a small machine (a hedged task's replicas) would otherwise
 * each share their cores with a thread starting up. `warmThread` starts one ahead of the first job. A thread gets the
 * script's `threadData` (the same for every thread of a script, e.g. a compiled module) as `workerData`; the thread
 * script (plain JavaScript, so a thread starts without a TypeScript compiler) takes its job from its first message
 * and answers with exactly one message: `{ ok: true, value }` or `{ ok: false, code, message }`.
 */
import { Worker } from "node:worker_threads";
import type { ResourceLimits, TransferListItem } from "node:worker_threads";
import { RuntimeError, type RuntimeErrorCode } from "./errors";

export interface ThreadOptions {
  /** wall-clock budget of the job, from the moment it is handed to the thread */
  timeoutMs: number;
  signal?: AbortSignal;
  transferList?: TransferListItem[];
  /** the thread's `workerData`: the same for every job of this script (a standby thread is started with it) */
  threadData?: unknown;
}

type Reply = { ok: true; value: unknown } | { ok: false; code: RuntimeErrorCode; message: string };

/** Thread heap limits: the glue needs little; WebAssembly memory is limited separately by the runtime. */
export const THREAD_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 };

function spawn(script: string, threadData: unknown): Worker {
  const worker = new Worker(script, {
    workerData: threadData,
    resourceLimits: THREAD_LIMITS,
    // The thread prints nothing itself (apps' stdout/stderr are captured in memory); node:wasi's ExperimentalWarning
    // is silenced. Piping the thread's stdio instead would keep an idle standby thread from letting the process exit.
    execArgv: ["--no-warnings"],
    env: {}, // the sandbox glue sees no host environment variable
  });
  return worker;
}

const standby = new Map<string, Worker>();

/** Starts the standby thread of `script` unless it has one. */
export function warmThread(script: string, threadData?: unknown): void {
  if (standby.has(script)) return;
  const next = spawn(script, threadData);
  next.unref();
  next.once("error", () => standby.get(script) === next && standby.delete(script));
  next.once("exit", () => standby.get(script) === next && standby.delete(script));
  standby.set(script, next);
}

/** The standby thread of `script` when there is one, else a new thread. */
function take(script: string, threadData: unknown): Worker {
  const ready = standby.get(script);
  standby.delete(script);
  if (!ready) return spawn(script, threadData);
  ready.ref();
  return ready;
}

/** Terminates the idle threads (tests and shutdown; they are unref'd, so a process exits without this). */
export async function closeStandbyThreads(): Promise<void> {
  const idle = [...standby.values()];
  standby.clear();
  await Promise.all(idle.map((w) => w.terminate()));
}

export function runInThread<T>(script: string, job: unknown, opts: ThreadOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new RuntimeError("CANCELLED", "run cancelled before it started"));
    let settled = false;
    const worker = take(script, opts.threadData);
    const finish = (err: Error | null, value?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      worker.removeAllListeners("message");
      void worker.terminate();
      warmThread(script, opts.threadData);
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
      if (reply.ok) finish(null, reply.value as T);
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
