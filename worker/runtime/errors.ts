/**
 * Every way a run can fail, as one error class with a `code`. The message is one line a user can act on; the code is
 * what callers (worker daemon, CLI, tests) branch on.
 */
export type RuntimeErrorCode =
  /** the params string is not what the runtime accepts (see sdk/params.ts) */
  | "INVALID_PARAMS"
  /** the bytes are not a valid WebAssembly module, or not a WASI command (no `_start`) */
  | "INVALID_MODULE"
  /** the module imports something the sandbox does not provide */
  | "MISSING_IMPORT"
  /** the module imports a host clock or randomness outside WASI: its result could not be reproduced */
  | "NON_DETERMINISTIC_IMPORT"
  /** a fetched app or dataset does not hash to the registered sha256 checksum */
  | "CHECKSUM_MISMATCH"
  /** an app or dataset could not be fetched (bad URI, unreachable host, HTTP error, too large) */
  | "FETCH_FAILED"
  /** the run took longer than its wall-clock deadline; the sandbox thread was terminated */
  | "DEADLINE_EXCEEDED"
  /** the module asked for more linear memory than the limit */
  | "MEMORY_EXCEEDED"
  /** the output directory (or the result) exceeds the output limit */
  | "OUTPUT_TOO_LARGE"
  /** the app exited with a non-zero code, or trapped */
  | "NON_ZERO_EXIT"
  /** the dataset cannot be read by the runtime (not a SQLite file nor a valid CSV) */
  | "INVALID_DATASET"
  /** the SQL query cannot give the same rows on every worker (random(), current time, LIMIT without ORDER BY, …) */
  | "NON_DETERMINISTIC_QUERY"
  /** the SQL query is not a single read-only statement, or SQLite refused it */
  | "INVALID_QUERY"
  /** the run was cancelled by its caller (AbortSignal) */
  | "CANCELLED"
  /** the output does not fit the result rules (e.g. a symbolic link in the output directory) */
  | "INVALID_OUTPUT";

export class RuntimeError extends Error {
  override readonly name = "RuntimeError";
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isRuntimeError(e: unknown, code?: RuntimeErrorCode): e is RuntimeError {
  return e instanceof RuntimeError && (code === undefined || e.code === code);
}
