/**
 * Runs one sandboxed job in a fresh worker thread and enforces its wall-clock deadline: when the deadline passes (or
 * the caller aborts) the thread is terminated, which stops WebAssembly mid-instruction. The thread script (plain
 * JavaScript, so that a thread starts without a TypeScript compiler) answers with exactly one message:
 * `{ ok: true, value }` or `{ ok: false, code, message }`.
 */
import { Worker } from "node:worker_threads";
import type { ResourceLimits, TransferListItem } from "node:worker_threads";
import { RuntimeError, type RuntimeErrorCode } from "./errors";

export interface ThreadOptions {
  /** wall-clock budget of the whole run, thread start included */
  timeoutMs: number;
  signal?: AbortSignal;
  /** V8 heap limits of the thread (the JS glue, not WebAssembly memory) */
  resourceLimits?: ResourceLimits;
  transferList?: TransferListItem[];
}

type Reply = { ok: true; value: unknown } | { ok: false; code: RuntimeErrorCode; message: string };

/** Thread heap limits: the glue needs little; WebAssembly memory is limited separately by the runtime. */
export const DEFAULT_THREAD_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 };

export function runInThread<T>(script: string, workerData: unknown, opts: ThreadOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new RuntimeError("CANCELLED", "run cancelled before it started"));
    let settled = false;
    const worker = new Worker(script, {
      workerData,
      transferList: opts.transferList,
      resourceLimits: opts.resourceLimits ?? DEFAULT_THREAD_LIMITS,
      stdout: true, // the thread never prints; anything it would print is dropped rather than mixed into our logs
      stderr: true,
      env: {}, // the sandbox glue sees no host environment variables
    });
    const finish = (err: Error | null, value?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      void worker.terminate();
      if (err) reject(err);
      else resolve(value as T);
    };
    const timer = setTimeout(
      () => finish(new RuntimeError("DEADLINE_EXCEEDED", `deadline exceeded: still running after ${opts.timeoutMs} ms, stopped`)),
      opts.timeoutMs,
    );
    const onAbort = (): void => finish(new RuntimeError("CANCELLED", "run cancelled"));
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    worker.once("message", (reply: Reply) => {
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
  });
}
