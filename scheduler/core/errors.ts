/**
 * The one error class of the scheduler's pure core. Core functions are called with data the daemon read from the
 * chain, the store or a worker frame: bad input must fail loudly with a code the caller can branch on, never produce a
 * silently wrong consensus, replica choice or payout.
 */
export type CoreErrorCode =
  /** a quorum that is not an integer ≥ 1 */
  | "INVALID_QUORUM"
  /** a commit without a worker, with a malformed result hash or a bad timestamp */
  | "INVALID_COMMIT"
  /** a replica or task view that cannot be reasoned about (unknown status, negative time…) */
  | "INVALID_TASK"
  /** policy options out of range (negative extra, budget beyond 100 %…) */
  | "INVALID_POLICY"
  /** worker statistics or candidates out of range (negative counts, uptime beyond 1…) */
  | "INVALID_WORKER"
  /** an amount, ratio or count outside what the contracts accept */
  | "INVALID_AMOUNT"
  /** finalize without any revealed winner (the Hub reverts with HubRevealsPending) */
  | "NO_REVEALED_WINNER";

export class CoreError extends Error {
  override readonly name = "CoreError";
  constructor(
    readonly code: CoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isCoreError(e: unknown, code?: CoreErrorCode): e is CoreError {
  return e instanceof CoreError && (code === undefined || e.code === code);
}
