/**
 * The token bucket that pays for the adaptive policy's speculative replicas (hedges against stragglers and
 * disagreements). It is refilled by *work*, not by time: every non-speculative replica dispatched adds
 * `budgetPercent / 100` of a token, each hedge spends a whole token. So hedges can never exceed budgetPercent % of the
 * real load plus the bucket's capacity — when every worker slows down at once (a global slowdown makes every replica
 * look like a straggler), the bucket runs dry instead of doubling the load (Dean & Barroso, "The Tail at Scale").
 *
 * Plain data, pure functions: the caller threads the bucket returned by each decision into the next one.
 */
import { CoreError } from "./errors";

export interface TokenBucket {
  /** tokens available (fractional: credits are a percentage of a replica) */
  tokens: number;
  /** the most tokens it holds: the burst of hedges allowed after a quiet period */
  capacity: number;
}

/** Credits are kept to 1e-6 of a token so that repeated small credits add up exactly (20 × 5 % = 1 token). */
const round = (x: number) => Math.round(x * 1e6) / 1e6;

export function tokenBucket(capacity: number, tokens = capacity): TokenBucket {
  if (!(Number.isFinite(capacity) && capacity >= 0)) throw new CoreError("INVALID_POLICY", `bucket capacity must be >= 0, got ${capacity}`);
  if (!(Number.isFinite(tokens) && tokens >= 0)) throw new CoreError("INVALID_POLICY", `bucket tokens must be >= 0, got ${tokens}`);
  return { tokens: Math.min(tokens, capacity), capacity };
}

/** Adds `dispatched · budgetPercent / 100` tokens, up to the capacity. */
export function creditBucket(bucket: TokenBucket, dispatched: number, budgetPercent: number): TokenBucket {
  if (!Number.isInteger(dispatched) || dispatched < 0) throw new CoreError("INVALID_POLICY", `dispatched must be an integer >= 0, got ${dispatched}`);
  if (!(budgetPercent >= 0 && budgetPercent <= 100)) throw new CoreError("INVALID_POLICY", `budget must be in [0, 100] %, got ${budgetPercent}`);
  return { ...bucket, tokens: Math.min(bucket.capacity, round(bucket.tokens + (dispatched * budgetPercent) / 100)) };
}

/** Spends one token; null when less than one is left. */
export function takeToken(bucket: TokenBucket): TokenBucket | null {
  return bucket.tokens >= 1 ? { ...bucket, tokens: round(bucket.tokens - 1) } : null;
}
