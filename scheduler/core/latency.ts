/**
 * Latency statistics the policy and the worker score need: a percentile over a bounded window of recent commit
 * latencies (the adaptive policy hedges a replica that runs past the observed p95) and an exponentially weighted mean
 * per worker (recent behaviour counts more than old, without keeping every sample). Pure.
 */
import { CoreError } from "./errors";

/** Samples kept for the pool's p95 by default: enough for a stable p95, small enough to follow a change quickly. */
export const DEFAULT_LATENCY_WINDOW = 500;
/** Fewer samples than this give no p95 (null): hedging on a guess would double the load at start-up. */
export const MIN_SAMPLES_FOR_PERCENTILE = 20;

function checkSample(ms: number): void {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) throw new CoreError("INVALID_TASK", `latency must be a finite number >= 0, got ${ms}`);
}

/**
 * The p-th percentile (0 < p ≤ 1) by the nearest-rank method: the smallest sample such that at least p of the samples
 * are ≤ it. Always one of the samples (no interpolation), so a table test states it exactly. Null when fewer than
 * `minSamples` samples.
 */
export function percentile(samples: readonly number[], p: number, minSamples = MIN_SAMPLES_FOR_PERCENTILE): number | null {
  if (!(p > 0 && p <= 1)) throw new CoreError("INVALID_TASK", `percentile must be in (0, 1], got ${p}`);
  samples.forEach(checkSample);
  if (samples.length === 0 || samples.length < minSamples) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.ceil(p * sorted.length) - 1];
}

/** Appends a sample to a bounded window (oldest dropped first); returns a new array. */
export function pushSample(window: readonly number[], sample: number, max = DEFAULT_LATENCY_WINDOW): number[] {
  checkSample(sample);
  const next = [...window, sample];
  return next.length > max ? next.slice(next.length - max) : next;
}

/** Exponentially weighted moving average; the first sample is taken as is. alpha = weight of the new sample. */
export function ewma(previous: number | null, sample: number, alpha = 0.2): number {
  checkSample(sample);
  if (!(alpha > 0 && alpha <= 1)) throw new CoreError("INVALID_TASK", `alpha must be in (0, 1], got ${alpha}`);
  return previous === null ? sample : previous + alpha * (sample - previous);
}
