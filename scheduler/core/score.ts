/**
 * A worker's score: how much the scheduler trusts it with a replica. Used only to rank workers for the replica choice
 * (the on-chain score of the Hub is a separate, coarser counter).
 *
 *     agreement = (agreed + 1) / (agreed + disagreed + 2)        Laplace-smoothed: a new worker starts at 0.5, and one
 *                                                                 lucky or unlucky task does not move it to 1 or 0
 *     speed     = ref / (ref + latency)                           1 when instant, 0.5 at the reference latency, → 0
 *                                                                 when slow; unknown latency counts as the reference
 *     uptime    = online time / time since first seen, in [0, 1]
 *     score     = 0.6·agreement + 0.25·speed + 0.15·uptime        in [0, 1]
 *
 * Agreement weighs most on purpose: a fast worker that disagrees costs a whole extra replica (and a seized stake),
 * a slow honest one only costs time, and the adaptive policy already hedges slow replicas.
 */
import { CoreError } from "./errors";

export interface WorkerStats {
  /** finalized tasks where the worker was in the winning group and revealed */
  agreed: number;
  /** finalized tasks where the worker committed a divergent result, or stayed silent as a winner */
  disagreed: number;
  /** moving average of its commit latency (ms), null when it never committed */
  latencyMs: number | null;
  /** fraction of the time it was connected since first seen, in [0, 1] */
  uptime: number;
}

export interface ScoreOptions {
  weights: { agreement: number; speed: number; uptime: number };
  /** the latency that scores speed 0.5 (ms) */
  referenceLatencyMs: number;
}

export const defaultScoreOptions: ScoreOptions = {
  weights: { agreement: 0.6, speed: 0.25, uptime: 0.15 },
  referenceLatencyMs: 10_000,
};

function count(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new CoreError("INVALID_WORKER", `${name} must be an integer >= 0, got ${n}`);
}

/** (agreed + 1) / (agreed + disagreed + 2). */
export function agreementRate(agreed: number, disagreed: number): number {
  count("agreed", agreed);
  count("disagreed", disagreed);
  return (agreed + 1) / (agreed + disagreed + 2);
}

/** ref / (ref + latency); 0.5 when the latency is unknown. */
export function speedFactor(latencyMs: number | null, referenceLatencyMs = defaultScoreOptions.referenceLatencyMs): number {
  if (!(referenceLatencyMs > 0)) throw new CoreError("INVALID_WORKER", `reference latency must be > 0, got ${referenceLatencyMs}`);
  if (latencyMs === null) return 0.5;
  if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new CoreError("INVALID_WORKER", `latency must be >= 0, got ${latencyMs}`);
  return referenceLatencyMs / (referenceLatencyMs + latencyMs);
}

/** Connected time over observed time, clamped to [0, 1]; 1 for a worker seen just now (nothing observed yet). */
export function uptimeRatio(onlineMs: number, observedMs: number): number {
  if (!(onlineMs >= 0) || !(observedMs >= 0)) throw new CoreError("INVALID_WORKER", `online and observed times must be >= 0`);
  if (observedMs === 0) return 1;
  return Math.min(1, onlineMs / observedMs);
}

/** The score in [0, 1] (formula in the module comment). */
export function workerScore(stats: WorkerStats, options: ScoreOptions = defaultScoreOptions): number {
  const { agreement: wa, speed: ws, uptime: wu } = options.weights;
  if (![wa, ws, wu].every((w) => w >= 0) || wa + ws + wu <= 0) throw new CoreError("INVALID_WORKER", "score weights must be >= 0 and not all 0");
  if (!(stats.uptime >= 0 && stats.uptime <= 1)) throw new CoreError("INVALID_WORKER", `uptime must be in [0, 1], got ${stats.uptime}`);
  const a = agreementRate(stats.agreed, stats.disagreed);
  const s = speedFactor(stats.latencyMs, options.referenceLatencyMs);
  return (wa * a + ws * s + wu * stats.uptime) / (wa + ws + wu);
}
