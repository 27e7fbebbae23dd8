/**
 * Replica choice (DESIGN §4 WorkerManager): which workers get the next replicas of a task.
 *
 * Half of the picks (rounded up) go to the best-scored eligible workers, the rest are drawn uniformly at random from
 * the remaining eligible workers. The head keeps latency and agreement high; the random tail spreads load and lets
 * new or recovering workers earn a score (a pure top-k would starve them forever) — and it makes the set of workers on a
 * task hard to predict, so colluders cannot count on landing together.
 *
 * Never chosen: a worker that already has a replica of the task (two replicas on one machine are not independent, and
 * the Hub refuses a second contribution anyway), a worker that is not connected or was lost, a worker already running
 * as many replicas as its capacity. Pure: the randomness comes from the `rng` passed in.
 */
import { CoreError } from "./errors";
import type { Rng } from "./random";

export interface Candidate {
  worker: string;
  /** workerScore(), in [0, 1] */
  score: number;
  /** replicas the worker is running now */
  running: number;
  /** replicas it may run at once */
  capacity: number;
  /** its session is open and authenticated */
  connected: boolean;
  /** it missed its heartbeats and was declared lost */
  lost?: boolean;
}

export interface ChoiceOptions {
  /** workers that already hold a replica of this task (any status) */
  exclude?: Iterable<string>;
  /** random source for the tail */
  rng: Rng;
  /** share of the picks taken from the top by score (the rest is the random tail) */
  headFraction?: number;
}

export const DEFAULT_HEAD_FRACTION = 0.5;

function checkCandidate(c: Candidate): void {
  if (typeof c?.worker !== "string" || c.worker.length === 0) throw new CoreError("INVALID_WORKER", "candidate without a worker address");
  if (!(c.score >= 0 && c.score <= 1)) throw new CoreError("INVALID_WORKER", `${c.worker}: score must be in [0, 1], got ${c.score}`);
  if (!Number.isInteger(c.running) || c.running < 0) throw new CoreError("INVALID_WORKER", `${c.worker}: running must be an integer >= 0`);
  if (!Number.isInteger(c.capacity) || c.capacity < 0) throw new CoreError("INVALID_WORKER", `${c.worker}: capacity must be an integer >= 0`);
}

/** Whether a candidate may take one more replica (ignoring the per-task exclusion). */
export function isAvailable(c: Candidate): boolean {
  return c.connected && !c.lost && c.running < c.capacity;
}

/**
 * The candidates that may receive a replica of the task, best first: score descending, then the least loaded, then
 * by address (a total order, so the head is deterministic).
 */
export function eligibleWorkers(candidates: readonly Candidate[], exclude: Iterable<string> = []): Candidate[] {
  candidates.forEach(checkCandidate);
  const excluded = new Set([...exclude].map((w) => w.toLowerCase()));
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const c of candidates) {
    const key = c.worker.toLowerCase();
    if (seen.has(key) || excluded.has(key) || !isAvailable(c)) continue;
    seen.add(key);
    out.push(c);
  }
  return out.sort(
    (a, b) =>
      b.score - a.score ||
      a.running / a.capacity - b.running / b.capacity ||
      (a.worker.toLowerCase() < b.worker.toLowerCase() ? -1 : a.worker.toLowerCase() > b.worker.toLowerCase() ? 1 : 0),
  );
}

/**
 * Picks up to `count` distinct workers for new replicas of one task: ceil(count·headFraction) from the top by score,
 * the rest at random among the other eligible workers. Returns fewer when fewer are eligible (the caller retries
 * later). The head comes first in the result.
 */
export function chooseReplicas(candidates: readonly Candidate[], count: number, options: ChoiceOptions): string[] {
  if (!Number.isInteger(count) || count < 0) throw new CoreError("INVALID_TASK", `replica count must be an integer >= 0, got ${count}`);
  const headFraction = options.headFraction ?? DEFAULT_HEAD_FRACTION;
  if (!(headFraction >= 0 && headFraction <= 1)) throw new CoreError("INVALID_POLICY", `headFraction must be in [0, 1], got ${headFraction}`);
  const ranked = eligibleWorkers(candidates, options.exclude);
  const n = Math.min(count, ranked.length);
  const headCount = Math.min(n, Math.ceil(count * headFraction));
  const head = ranked.slice(0, headCount);
  const rest = ranked.slice(headCount);
  // Partial Fisher–Yates: the first (n − headCount) slots of `rest` become a uniform random sample.
  for (let i = 0; i < n - headCount; i++) {
    const r = options.rng();
    if (!(r >= 0 && r < 1)) throw new CoreError("INVALID_TASK", `rng must return a number in [0, 1), got ${r}`);
    const j = i + Math.floor(r * (rest.length - i));
    [rest[i], rest[j]] = [rest[j], rest[i]];
  }
  return [...head, ...rest.slice(0, n - headCount)].map((c) => c.worker);
}
