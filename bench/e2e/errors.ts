/** The end-to-end benchmark's own failures: the only reasons it exits non-zero (a timing never is one). */

export type E2eBenchErrorCode =
  /** a request was not matched or not finalized in time, or a task failed */
  | "TASK_FAILED"
  /** the system and the floor did not produce the same result for the same app and params */
  | "RESULT_MISMATCH"
  /** the chain did not answer as expected (no DealMatched event, a reverted transaction…) */
  | "CHAIN";

export class E2eBenchError extends Error {
  readonly code: E2eBenchErrorCode;
  constructor(code: E2eBenchErrorCode, message: string) {
    super(message);
    this.name = "E2eBenchError";
    this.code = code;
  }
}
