/**
 * Errors of the worker daemon (everything outside the sandbox itself, whose failures are `RuntimeError`s). Each has a
 * `code` callers branch on and a one-line message; the codes travel to the scheduler in `failed` frames.
 */
export type WorkerErrorCode =
  /** the options given to the daemon are unusable (bad URL, missing key, negative limits, …) */
  | "INVALID_OPTIONS"
  /** an `assign` frame is inconsistent (taskId is not keccak256(dealId, index), unknown runtime, …) */
  | "INVALID_ASSIGNMENT"
  /** another replica of the same task is already running on this worker */
  | "DUPLICATE_TASK"
  /** the app, dataset or runtime the scheduler sent differs from what the registry on chain says */
  | "REGISTRY_MISMATCH"
  /** a callback deal, but the app wrote no /out/callback-data */
  | "NO_CALLBACK_DATA"
  /** slashing protection: a different resultHash was already committed for this task */
  | "CONFLICTING_COMMIT"
  /** `reveal` for a task this worker holds no commit for */
  | "UNKNOWN_TASK"
  /** the output of a committed task is no longer on disk (pruned, or removed by hand) */
  | "OUTPUT_GONE"
  /** the result does not fit in one session frame */
  | "RESULT_TOO_LARGE"
  /** a record on disk cannot be read back */
  | "STORE_CORRUPT"
  /** the scheduler's challenge names another chain or Hub than this worker's deployment */
  | "WRONG_SCHEDULER"
  /** the wallet holds too few tokens for the requested escrow deposit */
  | "INSUFFICIENT_FUNDS"
  /** the chain could not be read or written */
  | "CHAIN_ERROR"
  /** the pool asks for direct commits and the worker has no chain connection */
  | "NO_CHAIN"
  /** the replica was cancelled (scheduler `cancel`, or shutdown) */
  | "CANCELLED"
  /** a bug: should never reach a user */
  | "INTERNAL";

export class WorkerError extends Error {
  override readonly name = "WorkerError";
  constructor(
    readonly code: WorkerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(oneLine(message), options);
  }
}

export function isWorkerError(e: unknown, code?: WorkerErrorCode): e is WorkerError {
  return e instanceof WorkerError && (code === undefined || e.code === code);
}

/** One line, bounded: messages go into logs and into `failed` frames (at most 2000 characters there). */
export function oneLine(text: string, max = 1000): string {
  const line = String(text).replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
