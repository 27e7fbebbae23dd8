/**
 * Order statistics of a sample of timings. Medians and a high percentile rather than means: one GC pause or one
 * descheduling of a thread moves a mean but not a median, and p90 still shows how often the slow case happens.
 */

export interface Summary {
  count: number;
  median: number;
  p90: number;
  min: number;
}

/** Nearest-rank percentile (p in 0..100) of sorted values: an observed value, never an interpolation. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError("percentile of an empty sample");
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** The median; for an even count, the mean of the two middle values. */
export function median(sorted: readonly number[]): number {
  if (sorted.length === 0) throw new RangeError("median of an empty sample");
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return { count: sorted.length, median: median(sorted), p90: percentile(sorted, 90), min: sorted[0] };
}
