/**
 * Replicas: one run of a task on one worker, from assignment to reveal (or cancel, failure, loss), with the worker's
 * signed commit and reveal (what the scheduler relays on chain), and whether the chain has seen them.
 *
 * One replica per (task, worker), enforced by the table: two replicas on one machine are not independent, and the Hub
 * refuses a worker's second contribution anyway. Status changes follow a guard (below) and append their timeline
 * event in the same transaction. Writes are idempotent where the session protocol may repeat itself: the same commit
 * twice is a no-op, a different one is a CONFLICT (a worker cannot change its mind).
 */
import type { ReplicaView } from "../core/policy";
import { LIVE_REPLICA_STATUSES, REPLICA_STATUSES, type ReplicaStatus } from "../core/types";
import { address, bytes32, hexData, int, now as clock, text } from "./codec";
import type { Db } from "./db";
import { migration } from "./db";
import { StoreError } from "./errors";
import { addTaskEvent } from "./events";
import { requireTask } from "./tasks";
import { countOutcome, recordCommitLatency } from "./workers";

migration(
  "replicas-1",
  `CREATE TABLE replicas (
     replica_id             TEXT PRIMARY KEY,
     task_id                TEXT NOT NULL REFERENCES tasks (task_id),
     worker                 TEXT NOT NULL,
     status                 TEXT NOT NULL CHECK (status IN (${REPLICA_STATUSES.map((s) => `'${s}'`).join(", ")})),
     authorization          TEXT,
     result_hash            TEXT,
     result_seal            TEXT,
     contribution_signature TEXT,
     result_digest          TEXT,
     reveal_signature       TEXT,
     callback_data          TEXT,
     failure_code           TEXT,
     failure_message        TEXT,
     cancel_reason          TEXT,
     replaced_by            TEXT,
     outcome                TEXT CHECK (outcome IN ('agreed', 'disagreed', 'failed')),
     assigned_at            INTEGER NOT NULL,
     running_at             INTEGER,
     committed_at           INTEGER,
     reveal_requested_at    INTEGER,
     revealed_at            INTEGER,
     cancelled_at           INTEGER,
     failed_at              INTEGER,
     lost_at                INTEGER,
     relayed_at             INTEGER,
     reveal_relayed_at      INTEGER,
     updated_at             INTEGER NOT NULL,
     UNIQUE (task_id, worker)
   );
   CREATE INDEX replicas_task ON replicas (task_id);
   CREATE INDEX replicas_worker_status ON replicas (worker, status);
   CREATE INDEX replicas_committed ON replicas (committed_at) WHERE committed_at IS NOT NULL;`,
);

export interface Replica {
  replicaId: string;
  taskId: string;
  worker: string;
  status: ReplicaStatus;
  /** the scheduler's EIP-712 Authorization(worker, taskId), sent with the assignment */
  authorization: string | null;
  resultHash: string | null;
  resultSeal: string | null;
  /** the worker's EIP-712 Contribution signature (relayable) */
  contributionSignature: string | null;
  resultDigest: string | null;
  /** the worker's EIP-712 Reveal signature (relayable) */
  revealSignature: string | null;
  callbackData: string | null;
  failureCode: string | null;
  failureMessage: string | null;
  cancelReason: string | null;
  /** the replica that replaced this one after it was lost */
  replacedBy: string | null;
  /** the task's outcome for this worker, once settled */
  outcome: "agreed" | "disagreed" | "failed" | null;
  /** ms since the epoch; null: not reached */
  times: Record<"assigned" | "running" | "committed" | "revealRequested" | "revealed" | "cancelled" | "failed" | "lost", number | null>;
  /** when the chain showed its contribution (ContributionCommitted) */
  relayedAt: number | null;
  /** when the chain showed its reveal (ContributionRevealed) */
  revealRelayedAt: number | null;
  updatedAt: number;
}

interface ReplicaRow {
  replica_id: string;
  task_id: string;
  worker: string;
  status: ReplicaStatus;
  authorization: string | null;
  result_hash: string | null;
  result_seal: string | null;
  contribution_signature: string | null;
  result_digest: string | null;
  reveal_signature: string | null;
  callback_data: string | null;
  failure_code: string | null;
  failure_message: string | null;
  cancel_reason: string | null;
  replaced_by: string | null;
  outcome: "agreed" | "disagreed" | "failed" | null;
  assigned_at: number;
  running_at: number | null;
  committed_at: number | null;
  reveal_requested_at: number | null;
  revealed_at: number | null;
  cancelled_at: number | null;
  failed_at: number | null;
  lost_at: number | null;
  relayed_at: number | null;
  reveal_relayed_at: number | null;
  updated_at: number;
}

function fromRow(r: ReplicaRow): Replica {
  return {
    replicaId: r.replica_id,
    taskId: r.task_id,
    worker: r.worker,
    status: r.status,
    authorization: r.authorization,
    resultHash: r.result_hash,
    resultSeal: r.result_seal,
    contributionSignature: r.contribution_signature,
    resultDigest: r.result_digest,
    revealSignature: r.reveal_signature,
    callbackData: r.callback_data,
    failureCode: r.failure_code,
    failureMessage: r.failure_message,
    cancelReason: r.cancel_reason,
    replacedBy: r.replaced_by,
    outcome: r.outcome,
    times: {
      assigned: r.assigned_at,
      running: r.running_at,
      committed: r.committed_at,
      revealRequested: r.reveal_requested_at,
      revealed: r.revealed_at,
      cancelled: r.cancelled_at,
      failed: r.failed_at,
      lost: r.lost_at,
    },
    relayedAt: r.relayed_at,
    revealRelayedAt: r.reveal_relayed_at,
    updatedAt: r.updated_at,
  };
}

/**
 * Status moves allowed (a same-status write is a no-op). A lost replica may still commit or reveal: its worker comes
 * back (after a restart it lists its pending commits) and the work it did is not thrown away. revealed, cancelled and
 * failed are final.
 */
const NEXT: Record<ReplicaStatus, readonly ReplicaStatus[]> = {
  assigned: ["running", "committed", "failed", "cancelled", "lost"],
  running: ["committed", "failed", "cancelled", "lost"],
  committed: ["revealed", "cancelled", "failed", "lost"],
  lost: ["committed", "revealed", "cancelled", "failed"],
  revealed: [],
  cancelled: [],
  failed: [],
};

export function canMoveReplica(from: ReplicaStatus, to: ReplicaStatus): boolean {
  return from === to || NEXT[from].includes(to);
}

const ID = /^[\x21-\x7e]{1,100}$/;
function replicaId(v: string): string {
  if (typeof v !== "string" || !ID.test(v)) throw new StoreError("INVALID_RECORD", `replica id must be 1–100 printable characters, got ${String(v).slice(0, 40)}`);
  return v;
}

export function getReplica(db: Db, id: string): Replica | null {
  const row = db.prepare("SELECT * FROM replicas WHERE replica_id = ?").get(replicaId(id)) as ReplicaRow | undefined;
  return row ? fromRow(row) : null;
}

export function requireReplica(db: Db, id: string): Replica {
  const r = getReplica(db, id);
  if (!r) throw new StoreError("NOT_FOUND", `no replica ${id}`);
  return r;
}

/** A task's replicas, in assignment order. */
export function listReplicas(db: Db, taskId: string): Replica[] {
  return (db.prepare("SELECT * FROM replicas WHERE task_id = ? ORDER BY assigned_at, rowid").all(bytes32("taskId", taskId)) as ReplicaRow[]).map(fromRow);
}

/** The replica of a task held by a worker, if any. */
export function replicaOf(db: Db, taskId: string, worker: string): Replica | null {
  const row = db.prepare("SELECT * FROM replicas WHERE task_id = ? AND worker = ?").get(bytes32("taskId", taskId), address("worker", worker)) as ReplicaRow | undefined;
  return row ? fromRow(row) : null;
}

/** A worker's replicas in the given statuses (default: live and committed — what it still holds). */
export function workerReplicas(db: Db, worker: string, statuses: readonly ReplicaStatus[] = ["assigned", "running", "committed"]): Replica[] {
  for (const s of statuses) if (!REPLICA_STATUSES.includes(s)) throw new StoreError("INVALID_RECORD", `unknown replica status ${String(s)}`);
  if (statuses.length === 0) return [];
  return (
    db.prepare(`SELECT * FROM replicas WHERE worker = ? AND status IN (${statuses.map(() => "?").join(", ")}) ORDER BY assigned_at, rowid`).all(address("worker", worker), ...statuses) as ReplicaRow[]
  ).map(fromRow);
}

/** Replicas a worker is computing now (its load, for the replica choice). */
export function runningCount(db: Db, worker: string): number {
  const row = db.prepare(`SELECT COUNT(*) AS n FROM replicas WHERE worker = ? AND status IN ('assigned', 'running')`).get(address("worker", worker)) as { n: number };
  return row.n;
}

/** Live replica counts of every worker with one (a map for the replica choice). */
export function runningCounts(db: Db): Map<string, number> {
  const rows = db.prepare(`SELECT worker, COUNT(*) AS n FROM replicas WHERE status IN ('assigned', 'running') GROUP BY worker`).all() as { worker: string; n: number }[];
  return new Map(rows.map((r) => [r.worker, r.n]));
}

/** The most recent commit latencies (ms, newest first): the pool's p95 is computed from them (core/latency.ts). */
export function recentCommitLatencies(db: Db, limit = 500): number[] {
  const rows = db.prepare("SELECT committed_at - assigned_at AS ms FROM replicas WHERE committed_at IS NOT NULL ORDER BY committed_at DESC LIMIT ?").all(int("limit", limit, 1)) as { ms: number }[];
  return rows.map((r) => Math.max(0, r.ms));
}

export interface NewReplica {
  replicaId: string;
  taskId: string;
  worker: string;
  authorization?: string | null;
  at?: number;
}

/**
 * Records an assignment. Idempotent for the same (id, task, worker); CONFLICT when the worker already holds another
 * replica of the task, or the id names another replica.
 */
export function insertReplica(db: Db, r: NewReplica): Replica {
  const id = replicaId(r.replicaId);
  const taskId = bytes32("taskId", r.taskId);
  const worker = address("worker", r.worker);
  const auth = r.authorization === null || r.authorization === undefined ? null : hexData("authorization", r.authorization);
  const at = int("at", r.at ?? clock());
  return db.transaction((): Replica => {
    requireTask(db, taskId);
    const same = getReplica(db, id);
    if (same) {
      if (same.taskId === taskId && same.worker === worker) return same;
      throw new StoreError("CONFLICT", `replica id ${id} is already used for another task or worker`);
    }
    const other = replicaOf(db, taskId, worker);
    if (other) throw new StoreError("CONFLICT", `worker ${worker} already holds replica ${other.replicaId} of task ${taskId}`);
    db.prepare("INSERT INTO replicas (replica_id, task_id, worker, status, authorization, assigned_at, updated_at) VALUES (?, ?, ?, 'assigned', ?, ?, ?)").run(
      id,
      taskId,
      worker,
      auth,
      at,
      at,
    );
    addTaskEvent(db, { taskId, at, kind: "replica.assigned", replicaId: id, worker });
    return requireReplica(db, id);
  })();
}

const TIME_COLUMN: Record<ReplicaStatus, string> = {
  assigned: "assigned_at",
  running: "running_at",
  committed: "committed_at",
  revealed: "revealed_at",
  cancelled: "cancelled_at",
  failed: "failed_at",
  lost: "lost_at",
};

/** Moves a replica's status (guarded), stamps its time once, appends an event. False when already there. */
function move(db: Db, r: Replica, to: ReplicaStatus, at: number, fields: Record<string, unknown> = {}, detail: Record<string, unknown> = {}): boolean {
  if (r.status === to) return false;
  if (!canMoveReplica(r.status, to)) throw new StoreError("INVALID_TRANSITION", `replica ${r.replicaId}: ${r.status} → ${to} is not allowed`);
  const column = TIME_COLUMN[to];
  const sets = Object.keys(fields).map((k) => `${k} = @${k}`);
  db.prepare(`UPDATE replicas SET status = @to, ${column} = COALESCE(${column}, @at), ${sets.map((s) => s + ", ").join("")}updated_at = @at WHERE replica_id = @id`).run({
    ...fields,
    to,
    at,
    id: r.replicaId,
  });
  addTaskEvent(db, { taskId: r.taskId, at, kind: `replica.${to}`, replicaId: r.replicaId, worker: r.worker, detail });
  return true;
}

/** The worker acknowledged the assignment. */
export function markRunning(db: Db, id: string, at = clock()): boolean {
  return db.transaction(() => move(db, requireReplica(db, id), "running", int("at", at)))();
}

export interface CommitData {
  resultHash: string;
  resultSeal: string;
  /** the worker's EIP-712 Contribution signature */
  signature: string;
  at?: number;
}

/**
 * Records the worker's commit. Returns "committed" (first time: the worker's latency is recorded too), "restored" (a
 * lost replica whose worker came back with the same commit), "late" (the replica was cancelled meanwhile: the signed
 * commit is kept, the status stays cancelled) or "unchanged" (the same commit again). CONFLICT for a different commit.
 */
export function recordCommit(db: Db, id: string, c: CommitData): "committed" | "restored" | "late" | "unchanged" {
  const resultHash = bytes32("resultHash", c.resultHash);
  const resultSeal = bytes32("resultSeal", c.resultSeal);
  const signature = hexData("signature", c.signature);
  const at = int("at", c.at ?? clock());
  return db.transaction(() => {
    const r = requireReplica(db, id);
    if (r.resultHash !== null) {
      if (r.resultHash !== resultHash || r.resultSeal !== resultSeal) throw new StoreError("CONFLICT", `replica ${r.replicaId} already committed another result`);
      if (r.status === "lost") {
        move(db, r, "committed", at, {}, { restored: true });
        return "restored";
      }
      return "unchanged";
    }
    const data = { result_hash: resultHash, result_seal: resultSeal, contribution_signature: signature };
    if (r.status === "cancelled") {
      db.prepare("UPDATE replicas SET result_hash = @result_hash, result_seal = @result_seal, contribution_signature = @contribution_signature, committed_at = @at, updated_at = @at WHERE replica_id = @id").run({
        ...data,
        at,
        id: r.replicaId,
      });
      addTaskEvent(db, { taskId: r.taskId, at, kind: "replica.committed", replicaId: r.replicaId, worker: r.worker, detail: { late: true, latencyMs: at - r.times.assigned! } });
      recordCommitLatency(db, r.worker, at - r.times.assigned!, at);
      return "late";
    }
    move(db, r, "committed", at, data, { latencyMs: at - r.times.assigned! });
    recordCommitLatency(db, r.worker, at - r.times.assigned!, at);
    return "committed";
  })();
}

/**
 * A worker back after a restart lists the commits it made (`hello.pending`): a lost replica with that very commit is
 * committed again (so the policy can ask for its reveal). Returns false when there is nothing to restore;
 * CONFLICT when the listed hash is not the one recorded.
 */
export function restoreCommitted(db: Db, id: string, resultHash: string, at = clock()): boolean {
  const hash = bytes32("resultHash", resultHash);
  return db.transaction(() => {
    const r = requireReplica(db, id);
    if (r.resultHash !== hash) throw new StoreError("CONFLICT", `replica ${r.replicaId}: the worker lists a commit the scheduler does not have`);
    return r.status === "lost" ? move(db, r, "committed", int("at", at), {}, { restored: true }) : false;
  })();
}

/** The worker was asked to reveal (stamped once; the policy does not ask again). */
export function markRevealRequested(db: Db, id: string, at = clock()): boolean {
  return db.transaction(() => {
    const r = requireReplica(db, id);
    if (r.times.revealRequested !== null) return false;
    if (r.resultHash === null) throw new StoreError("INVALID_TRANSITION", `replica ${r.replicaId} has no commit to reveal`);
    db.prepare("UPDATE replicas SET reveal_requested_at = ?, updated_at = ? WHERE replica_id = ?").run(int("at", at), at, r.replicaId);
    addTaskEvent(db, { taskId: r.taskId, at, kind: "replica.reveal_requested", replicaId: r.replicaId, worker: r.worker });
    return true;
  })();
}

export interface RevealData {
  resultDigest: string;
  /** the worker's EIP-712 Reveal signature */
  signature: string;
  callbackData?: string | null;
  at?: number;
}

/** Records the worker's reveal. False when already revealed with the same digest; CONFLICT for another digest. */
export function recordReveal(db: Db, id: string, v: RevealData): boolean {
  const digest = bytes32("resultDigest", v.resultDigest);
  const signature = hexData("signature", v.signature);
  const callback = v.callbackData === null || v.callbackData === undefined ? null : hexData("callbackData", v.callbackData);
  const at = int("at", v.at ?? clock());
  return db.transaction(() => {
    const r = requireReplica(db, id);
    if (r.resultDigest !== null) {
      if (r.resultDigest !== digest) throw new StoreError("CONFLICT", `replica ${r.replicaId} already revealed another digest`);
      return false;
    }
    if (r.resultHash === null) throw new StoreError("INVALID_TRANSITION", `replica ${r.replicaId} reveals without a commit`);
    return move(db, r, "revealed", at, { result_digest: digest, reveal_signature: signature, callback_data: callback });
  })();
}

/** The scheduler told the worker to drop the replica. False when already cancelled. */
export function cancelReplica(db: Db, id: string, reason: string, at = clock()): boolean {
  const why = text("reason", reason.slice(0, 500));
  return db.transaction(() => move(db, requireReplica(db, id), "cancelled", int("at", at), { cancel_reason: why }, { reason: why }))();
}

/**
 * The run failed on the worker (code from its `failed` frame), or a committed winner was rejected (code REJECTED:
 * silent at reveal). False when already failed.
 */
export function failReplica(db: Db, id: string, failure: { code: string; message: string; at?: number }): boolean {
  const code = text("code", failure.code.slice(0, 100));
  const message = text("message", failure.message.slice(0, 2000));
  const at = int("at", failure.at ?? clock());
  return db.transaction(() => {
    const r = requireReplica(db, id);
    const moved = move(db, r, "failed", at, { failure_code: code, failure_message: message }, { code, message });
    // A run that failed before committing counts against the worker once (a rejected winner is settled by the caller).
    if (moved && r.resultHash === null) settleOutcome(db, r.replicaId, "failed", at);
    return moved;
  })();
}

/** The worker's session was lost while it held the replica. False when already lost. */
export function markLost(db: Db, id: string, at = clock()): boolean {
  return db.transaction(() => move(db, requireReplica(db, id), "lost", int("at", at)))();
}

/** Marks every replica a worker still holds (assigned, running, committed) lost; returns their ids. */
export function markWorkerLost(db: Db, worker: string, at = clock()): string[] {
  return db.transaction(() => {
    const held = workerReplicas(db, worker);
    for (const r of held) move(db, r, "lost", int("at", at));
    return held.map((r) => r.replicaId);
  })();
}

/** Links a lost replica to the replica that replaced it (the policy then stops reassigning it). */
export function markReplaced(db: Db, id: string, replacement: string, at = clock()): void {
  const to = replicaId(replacement);
  db.transaction(() => {
    const r = requireReplica(db, id);
    if (r.replacedBy === to) return;
    if (r.replacedBy !== null) throw new StoreError("CONFLICT", `replica ${r.replicaId} was already replaced by ${r.replacedBy}`);
    if (r.status !== "lost" && r.status !== "failed") throw new StoreError("INVALID_TRANSITION", `replica ${r.replicaId} is ${r.status}: only a lost or failed replica is replaced`);
    db.prepare("UPDATE replicas SET replaced_by = ?, updated_at = ? WHERE replica_id = ?").run(to, int("at", at), r.replicaId);
    addTaskEvent(db, { taskId: r.taskId, at, kind: "replica.reassigned", replicaId: r.replicaId, worker: r.worker, detail: { to } });
  })();
}

/** The chain showed the worker's contribution (or reveal) for the task. Idempotent; false when no such replica. */
export function markOnChain(db: Db, taskId: string, worker: string, what: "contribution" | "reveal", at = clock()): boolean {
  const column = what === "contribution" ? "relayed_at" : "reveal_relayed_at";
  const info = db
    .prepare(`UPDATE replicas SET ${column} = COALESCE(${column}, ?), updated_at = ? WHERE task_id = ? AND worker = ?`)
    .run(int("at", at), at, bytes32("taskId", taskId), address("worker", worker));
  return info.changes === 1;
}

/**
 * Settles the task's outcome for this replica's worker, once: the worker's agreement counters move only the first
 * time (a restart that settles again changes nothing). Returns false when already settled.
 */
export function settleOutcome(db: Db, id: string, outcome: "agreed" | "disagreed" | "failed", at = clock()): boolean {
  return db.transaction(() => {
    const r = requireReplica(db, id);
    if (r.outcome !== null) return false;
    db.prepare("UPDATE replicas SET outcome = ?, updated_at = ? WHERE replica_id = ?").run(outcome, int("at", at), r.replicaId);
    countOutcome(db, r.worker, outcome, at);
    return true;
  })();
}

/** The policy's view of a task's replicas (core/policy.ts ReplicaView). */
export function replicaViews(db: Db, taskId: string): ReplicaView[] {
  return listReplicas(db, taskId).map((r) => ({
    replicaId: r.replicaId,
    worker: r.worker,
    status: r.status,
    dispatchedAt: r.times.assigned!,
    resultHash: r.resultHash,
    committedAt: r.resultHash === null ? null : r.times.committed,
    revealRequestedAt: r.times.revealRequested,
    replacedBy: r.replacedBy,
  }));
}

/** Whether a status means the replica may still commit. */
export const isLiveReplica = (s: ReplicaStatus) => LIVE_REPLICA_STATUSES.includes(s);
