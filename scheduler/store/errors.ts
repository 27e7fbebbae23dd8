/**
 * Errors of the scheduler's task state (deals, tasks, replicas, workers, timeline). The code is what the router and the
 * API branch on; the message is one line naming the record.
 */
export type StoreErrorCode =
  /** the record does not exist */
  | "NOT_FOUND"
  /** the write contradicts what is stored (another worker's replica id, a second different commit…) */
  | "CONFLICT"
  /** a field is malformed (not an address, not a bytes32, negative amount…) */
  | "INVALID_RECORD"
  /** the status change is not allowed (a completed task back to dispatched, a revealed replica cancelled…) */
  | "INVALID_TRANSITION";

export class StoreError extends Error {
  override readonly name = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}
