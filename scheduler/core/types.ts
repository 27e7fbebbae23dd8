/**
 * The statuses the scheduler tracks, shared by the pure core (which reasons about them) and the store (which persists
 * them). They are the scheduler's view, finer than the Hub's (UNSET/ACTIVE/REVEALING/COMPLETED/FAILED): the Hub does
 * not know about replicas that were dispatched and never committed.
 */
import { CoreError } from "./errors";

/**
 * A task's life in the scheduler:
 * - `pending`: known (its deal was matched), nothing dispatched yet;
 * - `dispatched`: replicas are running, no commit yet;
 * - `committing`: at least one commit came in, no consensus yet;
 * - `revealing`: a group reached the quorum, its members were asked to reveal;
 * - `finalizing`: the finalize transaction is on its way;
 * - `completed`: finalized on chain (final);
 * - `failed`: the scheduler gave up (no consensus possible or a deadline passed); the requester can claim;
 * - `claimed`: refunded on chain after the final deadline (final).
 */
export const TASK_STATUSES = [
  "pending",
  "dispatched",
  "committing",
  "revealing",
  "finalizing",
  "completed",
  "failed",
  "claimed",
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Statuses in which the scheduler still has work to do on a task. */
export const ACTIVE_TASK_STATUSES: readonly TaskStatus[] = ["pending", "dispatched", "committing", "revealing", "finalizing"];

/**
 * One run of a task on one worker:
 * - `assigned`: the assign frame is (being) sent; `running`: the worker has it;
 * - `committed`: the worker sent its signed commit (resultHash, seal);
 * - `revealed`: the worker sent its signed reveal;
 * - `cancelled`: the scheduler told the worker to drop it (quorum reached elsewhere, or gave up);
 * - `failed`: the run failed on the worker (no commit), or a committed winner was rejected for staying silent;
 * - `lost`: the worker's session was lost while the replica was in flight.
 */
export const REPLICA_STATUSES = ["assigned", "running", "committed", "revealed", "cancelled", "failed", "lost"] as const;
export type ReplicaStatus = (typeof REPLICA_STATUSES)[number];

/** Replicas still computing: they may yet commit. */
export const LIVE_REPLICA_STATUSES: readonly ReplicaStatus[] = ["assigned", "running"];

/** Contributions the Hub accepts per task (Clerk.sol MAX_CONTRIBUTIONS). */
export const MAX_CONTRIBUTIONS = 32;

/** Quorum q = max(trust, 1): trust 0 and 1 both mean one worker (Hub.sol `_quorum`). */
export function quorumOf(trust: number | bigint): number {
  const t = Number(trust);
  if (!Number.isInteger(t) || t < 0) throw new CoreError("INVALID_QUORUM", `trust must be an integer >= 0, got ${String(trust)}`);
  return t <= 1 ? 1 : t;
}
