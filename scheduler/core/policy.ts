/**
 * The hedging policy (DESIGN §4 JobRouter): given a task's replicas and the clock, what to do next. Pure and
 * state-based: the answer depends only on the task view, so calling it again after the actions were applied (the new
 * replicas recorded, the cancelled ones marked) returns nothing new — the router can call it on every event and on
 * every tick.
 *
 * Two modes:
 * - `fixed`: hedge everything up front — dispatch k = q + extra replicas at once, and keep `needed + extra` replicas
 *   live until the quorum is reached (a divergent commit is replaced at once). The lowest latency, the most work.
 * - `adaptive`: start with q; add a replica only when one runs past the observed p95 commit latency, or when results
 *   disagree; those speculative replicas are paid from a token bucket refilled by a percentage of the real load
 *   (bucket.ts), so a global slowdown cannot double the load.
 *
 * In both modes, replicas that are *required* (without them the quorum is unreachable: a lost worker's replica, a failed
 * run, too many divergent commits) are dispatched regardless of the bucket, up to `maxReplicas` per task; when even
 * that cap cannot reach the quorum, or the contribution deadline is near, or runs keep failing, the policy gives up.
 *
 * Decision order, first match wins:
 *  1. task not active (finalizing or final) → nothing;
 *  2. quorum reached → reveal the winners not asked yet, cancel every other replica still held by a worker;
 *  3. contribution deadline (minus a relay margin) reached → cancel live replicas, give up;
 *  4. `maxFailures` runs failed → cancel live replicas, give up (the app most likely fails everywhere);
 *  5. reassign lost replicas that had not committed (within the cap and the free slots);
 *  6. quorum unreachable even with every replica the cap still allows → cancel live replicas, give up;
 *  7. dispatch the required replicas (fixed: up to needed + extra live);
 *  8. adaptive only: one speculative replica when results disagree (keep one live replica beyond the need) or a
 *     replica runs past p95 (fewer fresh replicas than needed), if the bucket has a token.
 */
import { TokenBucket, creditBucket, takeToken, tokenBucket } from "./bucket";
import { Commit, Consensus, checkQuorum, groupCommits } from "./consensus";
import { CoreError } from "./errors";
import { ACTIVE_TASK_STATUSES, LIVE_REPLICA_STATUSES, MAX_CONTRIBUTIONS, REPLICA_STATUSES, ReplicaStatus, TASK_STATUSES, TaskStatus } from "./types";

/** A replica as the policy sees it (the store builds it from its rows). Times are ms. */
export interface ReplicaView {
  replicaId: string;
  worker: string;
  status: ReplicaStatus;
  dispatchedAt: number;
  resultHash: string | null;
  committedAt: number | null;
  /** when the worker was asked to reveal (null: not yet) */
  revealRequestedAt: number | null;
  /** the replica that replaced this one after it was lost (null: not replaced) */
  replacedBy: string | null;
}

/** A task as the policy sees it. Times are ms. */
export interface TaskView {
  taskId: string;
  status: TaskStatus;
  /** q = max(trust, 1) */
  quorum: number;
  /** the Hub's contribution deadline, in ms */
  contributionDeadline: number;
  /** the winning result hash the scheduler already acted on (kept so that a late commit cannot switch the winner) */
  consensusHash: string | null;
  replicas: ReplicaView[];
}

/** What the pool looks like right now. */
export interface PoolStats {
  /** p95 of recent commit latencies (ms); null while too few samples (no straggler hedging then) */
  p95CommitMs: number | null;
  /** replicas that can be placed on eligible workers right now; unlimited when left out */
  freeSlots?: number;
}

export type DispatchReason =
  /** the task's first replicas */
  | "initial"
  /** without them the quorum cannot be reached (divergent commits, failed runs), or fixed mode's hedge level */
  | "required"
  /** adaptive: results disagree */
  | "disagreement"
  /** adaptive: a replica runs past the p95 commit latency */
  | "straggler";

export type CancelReason = "quorum reached" | "gave up";

export type Action =
  | { type: "dispatch"; count: number; reason: DispatchReason }
  | { type: "cancel"; replicaIds: string[]; reason: CancelReason }
  | { type: "reveal"; replicaIds: string[] }
  | { type: "reassign"; replicaId: string }
  | { type: "giveUp"; reason: string };

export interface Decision {
  actions: Action[];
  /** the bucket after this decision: pass it to the next decision (of any task) */
  bucket: TokenBucket;
  /** the consensus over the task's commits: persist `winner.resultHash` once reached, record `divergent` */
  consensus: Consensus;
}

export interface PolicyOptions {
  mode: "fixed" | "adaptive";
  /** fixed: replicas beyond q (k = q + extra) */
  extra: number;
  /** adaptive: speculative replicas allowed, in % of the non-speculative ones (the bucket's refill) */
  budgetPercent: number;
  /** adaptive: the bucket's capacity (burst of hedges) */
  bucketCapacity: number;
  /** replicas per task, all statuses; null → min(32, 2q + 2) */
  maxReplicas: number | null;
  /** failed runs after which the task is given up; null → q + 1 */
  maxFailures: number | null;
  /** give up this long before the contribution deadline: the commits still have to be relayed on chain */
  deadlineMarginMs: number;
}

export const defaultPolicyOptions: PolicyOptions = {
  mode: "adaptive",
  extra: 1,
  budgetPercent: 5,
  bucketCapacity: 10,
  maxReplicas: null,
  maxFailures: null,
  deadlineMarginMs: 20_000,
};

/** Validates options (CoreError INVALID_POLICY) and fills the defaults. */
export function policyOptions(o: Partial<PolicyOptions> = {}): PolicyOptions {
  const p = { ...defaultPolicyOptions, ...o };
  const bad = (m: string) => new CoreError("INVALID_POLICY", m);
  if (p.mode !== "fixed" && p.mode !== "adaptive") throw bad(`mode must be "fixed" or "adaptive", got ${String(p.mode)}`);
  if (!Number.isInteger(p.extra) || p.extra < 0) throw bad(`extra must be an integer >= 0, got ${p.extra}`);
  if (!(p.budgetPercent >= 0 && p.budgetPercent <= 100)) throw bad(`budgetPercent must be in [0, 100], got ${p.budgetPercent}`);
  if (!(Number.isFinite(p.bucketCapacity) && p.bucketCapacity >= 0)) throw bad(`bucketCapacity must be >= 0, got ${p.bucketCapacity}`);
  if (p.maxReplicas !== null && (!Number.isInteger(p.maxReplicas) || p.maxReplicas < 1 || p.maxReplicas > MAX_CONTRIBUTIONS)) {
    throw bad(`maxReplicas must be an integer in [1, ${MAX_CONTRIBUTIONS}], got ${p.maxReplicas}`);
  }
  if (p.maxFailures !== null && (!Number.isInteger(p.maxFailures) || p.maxFailures < 1)) throw bad(`maxFailures must be an integer >= 1, got ${p.maxFailures}`);
  if (!(Number.isFinite(p.deadlineMarginMs) && p.deadlineMarginMs >= 0)) throw bad(`deadlineMarginMs must be >= 0, got ${p.deadlineMarginMs}`);
  return p;
}

/** A full bucket sized by the options: the router's starting bucket. */
export function initialBucket(options: PolicyOptions = defaultPolicyOptions): TokenBucket {
  return tokenBucket(options.bucketCapacity);
}

/** Replicas allowed per task for quorum q (never beyond the Hub's contribution cap). */
export function maxReplicasFor(quorum: number, options: PolicyOptions = defaultPolicyOptions): number {
  return Math.max(quorum, options.maxReplicas ?? Math.min(MAX_CONTRIBUTIONS, 2 * quorum + 2));
}

/** Failed runs after which a task is given up. */
export function maxFailuresFor(quorum: number, options: PolicyOptions = defaultPolicyOptions): number {
  return options.maxFailures ?? quorum + 1;
}

const isLive = (r: ReplicaView) => LIVE_REPLICA_STATUSES.includes(r.status);

/**
 * The commits that count: every replica that committed, unless marked failed afterwards (a winner rejected for staying
 * silent no longer counts). A cancelled or lost replica's commit still counts: it is signed and can be relayed.
 */
export function commitsOf(replicas: readonly ReplicaView[]): Commit[] {
  return replicas
    .filter((r) => r.resultHash !== null && r.committedAt !== null && r.status !== "failed")
    .map((r) => ({ worker: r.worker, resultHash: r.resultHash!, at: r.committedAt! }));
}

function checkView(task: TaskView, now: number): void {
  const bad = (m: string) => new CoreError("INVALID_TASK", `task ${task?.taskId}: ${m}`);
  if (!Number.isFinite(now)) throw bad(`now must be a finite number, got ${now}`);
  if (!TASK_STATUSES.includes(task.status)) throw bad(`unknown status ${String(task.status)}`);
  checkQuorum(task.quorum);
  if (!Number.isFinite(task.contributionDeadline)) throw bad("contribution deadline must be a finite number");
  const ids = new Set<string>();
  for (const r of task.replicas) {
    if (!REPLICA_STATUSES.includes(r.status)) throw bad(`replica ${r.replicaId}: unknown status ${String(r.status)}`);
    if (!Number.isFinite(r.dispatchedAt)) throw bad(`replica ${r.replicaId}: dispatchedAt must be a finite number`);
    if (ids.has(r.replicaId)) throw bad(`replica ${r.replicaId} appears twice`);
    ids.add(r.replicaId);
  }
}

/**
 * The next actions for one task (see the module comment for the decision order). `bucket` is the shared hedging
 * budget; the returned `bucket` includes this decision's credits and spending. Throws CoreError on a malformed view.
 */
export function nextActions(
  task: TaskView,
  now: number,
  stats: PoolStats,
  bucket: TokenBucket,
  policy: Partial<PolicyOptions> = defaultPolicyOptions,
): Decision {
  const options = policyOptions(policy);
  checkView(task, now);
  const q = task.quorum;
  const consensus = groupCommits(commitsOf(task.replicas), q, { winner: task.consensusHash });
  const done = (actions: Action[], b = bucket): Decision => ({ actions, bucket: b, consensus });
  if (!ACTIVE_TASK_STATUSES.includes(task.status) || task.status === "finalizing") return done([]);

  // 2. Quorum reached: reveal the winners, cancel everyone else still holding the task.
  if (consensus.reached) {
    const winners = new Set(consensus.winners.map((w) => w.toLowerCase()));
    const isWinner = (r: ReplicaView) => winners.has(r.worker.toLowerCase()) && r.resultHash?.toLowerCase() === consensus.winner!.resultHash;
    // Not relayed yet (no consensusHash: the router sets it when it relays and clears it when the relay fails): every
    // winner still holding its commit goes into the relay, even one already asked to reveal (the router asks at
    // consensus, before the relay lands). Once relayed: only the winners not asked yet.
    const relayed = task.consensusHash !== null;
    const reveal = task.replicas.filter(
      (r) => isWinner(r) && (relayed ? r.status === "committed" && r.revealRequestedAt === null : r.status === "committed" || r.status === "revealed"),
    );
    const cancel = task.replicas.filter((r) => !isWinner(r) && (isLive(r) || r.status === "committed"));
    const actions: Action[] = [];
    if (reveal.length) actions.push({ type: "reveal", replicaIds: reveal.map((r) => r.replicaId) });
    if (cancel.length) actions.push({ type: "cancel", replicaIds: cancel.map((r) => r.replicaId), reason: "quorum reached" });
    return done(actions);
  }

  const live = task.replicas.filter(isLive);
  const giveUp = (reason: string): Decision => {
    const actions: Action[] = [];
    const held = task.replicas.filter((r) => isLive(r) || r.status === "committed");
    if (held.length) actions.push({ type: "cancel", replicaIds: held.map((r) => r.replicaId), reason: "gave up" });
    actions.push({ type: "giveUp", reason });
    return done(actions);
  };

  // 3–4. Hopeless: too late, or the app keeps failing.
  if (now >= task.contributionDeadline - options.deadlineMarginMs) return giveUp("contribution deadline reached");
  const failures = task.replicas.filter((r) => r.status === "failed" && r.resultHash === null).length;
  const maxFailures = maxFailuresFor(q, options);
  if (failures >= maxFailures) return giveUp(`${failures} runs failed`);

  const cap = maxReplicasFor(q, options);
  let room = Math.max(0, cap - task.replicas.length);
  let slots = stats.freeSlots ?? Infinity;
  if (!(slots >= 0)) throw new CoreError("INVALID_TASK", `freeSlots must be >= 0, got ${stats.freeSlots}`);
  const actions: Action[] = [];
  let next = bucket;

  // 5. Replace lost replicas that never committed.
  const orphans = task.replicas.filter((r) => r.status === "lost" && r.resultHash === null && r.replacedBy === null);
  const reassigned = orphans.slice(0, Math.max(0, Math.min(room, slots)));
  for (const r of reassigned) actions.push({ type: "reassign", replicaId: r.replicaId });
  room -= reassigned.length;
  slots -= reassigned.length;
  let covered = live.length + reassigned.length;

  // 6. Even every replica the cap allows, all agreeing with the largest group, would not reach q.
  const needed = consensus.needed;
  if (covered + room < needed) return giveUp(`quorum ${q} unreachable within ${cap} replicas`);

  // 7. Required replicas (fixed mode: also its hedge level).
  const target = options.mode === "fixed" ? needed + options.extra : needed;
  const base = Math.max(0, Math.min(target - covered, room, slots));
  if (base > 0) {
    actions.push({ type: "dispatch", count: base, reason: task.replicas.length === 0 ? "initial" : "required" });
    room -= base;
    slots -= base;
    covered += base;
  }
  // Every non-speculative replica earns the hedging budget its share.
  const credited = base + reassigned.length;
  if (credited > 0) next = creditBucket(next, credited, options.budgetPercent);

  // 8. Adaptive: at most one speculative replica per decision, paid by a token.
  if (options.mode === "adaptive" && room > 0 && slots > 0) {
    const p95 = stats.p95CommitMs;
    const stragglers = p95 === null ? [] : live.filter((r) => now - r.dispatchedAt > p95);
    const fresh = covered - stragglers.length;
    const reason: DispatchReason | null =
      consensus.disagreement && covered < needed + 1 ? "disagreement" : stragglers.length > 0 && fresh < needed ? "straggler" : null;
    const paid = reason ? takeToken(next) : null;
    if (reason && paid) {
      actions.push({ type: "dispatch", count: 1, reason });
      next = paid;
    }
  }
  return done(actions, next);
}
