/**
 * Reconnection delays: exponential backoff with jitter, so a scheduler restart is not met by every worker of the pool
 * reconnecting in the same millisecond. Pure: the random source is passed in.
 */
export interface BackoffOptions {
  /** delay before the first retry */
  initialMs: number;
  /** the delay never grows beyond this */
  maxMs: number;
  /** growth per failed attempt */
  factor: number;
  /**
   * Share of the delay that is random, 0..1: the delay is drawn uniformly in [d·(1 − jitter), d]. 0 = deterministic,
   * 1 = "full jitter".
   */
  jitter: number;
}

export const defaultBackoffOptions: BackoffOptions = { initialMs: 200, maxMs: 10_000, factor: 2, jitter: 0.5 };

/**
 * The delay before retry number `attempt` (0 for the first retry after a loss).
 * @param random a number in [0, 1); Math.random in production, fixed in tests
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: number): number {
  const n = Math.max(0, Math.floor(attempt));
  // factor^n overflows to Infinity long before n is large enough to matter; min() takes care of it
  const nominal = Math.min(opts.maxMs, opts.initialMs * Math.pow(opts.factor, n));
  const jitter = Math.min(1, Math.max(0, opts.jitter));
  const r = Math.min(1, Math.max(0, random));
  return Math.round(nominal * (1 - jitter * r));
}
