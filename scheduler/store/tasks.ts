/**
 * Tasks of the deals this scheduler took: one row per (deal, index), created when the deal is recorded, with the
 * scheduler's status (core/types.ts), the consensus and result digests, and the time each phase began (the
 * timeline's milestones; the full timeline is in task_events).
 *
 * Status changes are guarded: a final task (completed, claimed) never moves again, and a failed one only to what the
 * chain says (claimed, or completed when a finalize already sent still landed). Setting the status a task already has
 * is a no-op, so replayed events and retried router steps are harmless.
 */
import { taskId as computeTaskId } from "../../sdk/eip712";
import { quorumOf, TASK_STATUSES, type TaskStatus, ACTIVE_TASK_STATUSES } from "../core/types";
import { bytes32, hexData, int, now as clock, optionalBytes32, text } from "./codec";
import type { Db } from "./db";
import { migration } from "./db";
import { type Deal, type NewDeal, type UpsertResult, requireDeal, upsertDeal } from "./deals";
import { StoreError } from "./errors";
import { addTaskEvent } from "./events";

migration(
  "tasks-1",
  `CREATE TABLE tasks (
     task_id         TEXT PRIMARY KEY,
     deal_id         TEXT NOT NULL REFERENCES deals (deal_id),
     task_index      INTEGER NOT NULL,
     status          TEXT NOT NULL CHECK (status IN (${TASK_STATUSES.map((s) => `'${s}'`).join(", ")})),
     consensus_hash  TEXT,
     result_digest   TEXT,
     results         TEXT,
     callback_data   TEXT,
     reveal_deadline INTEGER,
     failure_reason  TEXT,
     initialized_at  INTEGER,
     created_at      INTEGER NOT NULL,
     dispatched_at   INTEGER,
     committing_at   INTEGER,
     revealing_at    INTEGER,
     finalizing_at   INTEGER,
     completed_at    INTEGER,
     failed_at       INTEGER,
     claimed_at      INTEGER,
     updated_at      INTEGER NOT NULL,
     UNIQUE (deal_id, task_index)
   );
   CREATE INDEX tasks_status ON tasks (status);`,
);

export interface Task {
  taskId: string;
  dealId: string;
  index: number;
  status: TaskStatus;
  /** the winning resultHash the scheduler acted on (or the chain reported) */
  consensusHash: string | null;
  /** the verified result digest (after the first reveal / finalize) */
  resultDigest: string | null;
  /** the `results` bytes given to finalize (0x-hex) */
  results: string | null;
  /** the callback data given to finalize (0x-hex) */
  callbackData: string | null;
  /** unix seconds, from ConsensusReached */
  revealDeadline: number | null;
  /** why the scheduler gave up */
  failureReason: string | null;
  /** when TaskInitialized was seen (ms) */
  initializedAt: number | null;
  /** when each phase began (ms); null: not reached */
  times: Record<"created" | "dispatched" | "committing" | "revealing" | "finalizing" | "completed" | "failed" | "claimed", number | null>;
  updatedAt: number;
}

interface TaskRow {
  task_id: string;
  deal_id: string;
  task_index: number;
  status: TaskStatus;
  consensus_hash: string | null;
  result_digest: string | null;
  results: string | null;
  callback_data: string | null;
  reveal_deadline: number | null;
  failure_reason: string | null;
  initialized_at: number | null;
  created_at: number;
  dispatched_at: number | null;
  committing_at: number | null;
  revealing_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  claimed_at: number | null;
  updated_at: number;
}

function fromRow(r: TaskRow): Task {
  return {
    taskId: r.task_id,
    dealId: r.deal_id,
    index: r.task_index,
    status: r.status,
    consensusHash: r.consensus_hash,
    resultDigest: r.result_digest,
    results: r.results,
    callbackData: r.callback_data,
    revealDeadline: r.reveal_deadline,
    failureReason: r.failure_reason,
    initializedAt: r.initialized_at,
    times: {
      created: r.created_at,
      dispatched: r.dispatched_at,
      committing: r.committing_at,
      revealing: r.revealing_at,
      finalizing: r.finalizing_at,
      completed: r.completed_at,
      failed: r.failed_at,
      claimed: r.claimed_at,
    },
    updatedAt: r.updated_at,
  };
}

/** Statuses a task may move to from each status (a same-status write is always a no-op). */
const NEXT: Record<TaskStatus, readonly TaskStatus[]> = {
  pending: ["dispatched", "committing", "revealing", "finalizing", "completed", "failed", "claimed"],
  dispatched: ["pending", "committing", "revealing", "finalizing", "completed", "failed", "claimed"],
  committing: ["dispatched", "revealing", "finalizing", "completed", "failed", "claimed"],
  // back to committing: the chain reopened the task (silent winners), or the reveals must be asked again
  revealing: ["committing", "finalizing", "completed", "failed", "claimed"],
  // back to revealing: the finalize transaction failed and will be retried
  finalizing: ["revealing", "completed", "failed", "claimed"],
  completed: [],
  failed: ["claimed", "completed"],
  claimed: [],
};

export function canMoveTask(from: TaskStatus, to: TaskStatus): boolean {
  return from === to || NEXT[from].includes(to);
}

export interface DealRecorded {
  deal: UpsertResult;
  /** tasks created now (0 when the deal was already recorded) */
  tasksCreated: number;
}

/**
 * Records a matched deal and creates its `volume` tasks (pending), idempotently: replaying DealMatched writes nothing
 * new. taskId = keccak256(dealId, index) (sdk/eip712).
 */
export function recordDealMatched(db: Db, deal: NewDeal, at = clock()): DealRecorded {
  return db.transaction((): DealRecorded => {
    const result = upsertDeal(db, deal, at);
    const dealId = bytes32("dealId", deal.dealId);
    const insert = db.prepare(
      "INSERT OR IGNORE INTO tasks (task_id, deal_id, task_index, status, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?)",
    );
    let created = 0;
    for (let index = 0; index < deal.volume; index++) {
      const taskId = computeTaskId(dealId, index).toLowerCase();
      if (insert.run(taskId, dealId, index, at, at).changes === 1) {
        created += 1;
        addTaskEvent(db, { taskId, at, kind: "task.created", detail: { dealId, index, ...(deal.speculative ? { speculative: true } : {}) } });
      }
    }
    return { deal: result, tasksCreated: created };
  })();
}

export function getTask(db: Db, taskId: string): Task | null {
  const row = db.prepare("SELECT * FROM tasks WHERE task_id = ?").get(bytes32("taskId", taskId)) as TaskRow | undefined;
  return row ? fromRow(row) : null;
}

export function requireTask(db: Db, taskId: string): Task {
  const t = getTask(db, taskId);
  if (!t) throw new StoreError("NOT_FOUND", `no task ${taskId}`);
  return t;
}

export interface TaskFilter {
  status?: TaskStatus | readonly TaskStatus[];
  dealId?: string;
  limit?: number;
  offset?: number;
}

/** Tasks, newest first (by creation, then deal and index). */
export function listTasks(db: Db, filter: TaskFilter = {}): Task[] {
  const where: string[] = [];
  const args: unknown[] = [];
  if (filter.status !== undefined) {
    const statuses = typeof filter.status === "string" ? [filter.status] : [...filter.status];
    for (const s of statuses) if (!TASK_STATUSES.includes(s)) throw new StoreError("INVALID_RECORD", `unknown task status ${String(s)}`);
    where.push(`status IN (${statuses.map(() => "?").join(", ") || "NULL"})`);
    args.push(...statuses);
  }
  if (filter.dealId !== undefined) {
    where.push("deal_id = ?");
    args.push(bytes32("dealId", filter.dealId));
  }
  args.push(int("limit", filter.limit ?? 100, 1), int("offset", filter.offset ?? 0));
  const sql = `SELECT * FROM tasks ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY created_at DESC, deal_id DESC, task_index DESC LIMIT ? OFFSET ?`;
  return (db.prepare(sql).all(...args) as TaskRow[]).map(fromRow);
}

/** Count of tasks by status (dashboard totals). */
export function countTasksByStatus(db: Db): Record<TaskStatus, number> {
  const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
  for (const r of db.prepare("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status").all() as { status: TaskStatus; n: number }[]) counts[r.status] = r.n;
  return counts;
}

/** A task the router should look at, with what the policy needs from its deal. */
export interface ActiveTask {
  task: Task;
  /** its deal is our matchOrders still in flight (deals.ts `speculative`): dispatch only, nothing on chain yet */
  speculative: boolean;
  quorum: number;
  /** unix seconds */
  contributionDeadline: number;
  finalDeadline: number;
}

/**
 * Tasks needing action: every task in an active status (pending … finalizing), the most urgent first (earliest
 * contribution deadline), so that a restart resumes exactly where the scheduler stopped.
 */
export function tasksNeedingAction(db: Db, limit = 1000): ActiveTask[] {
  const rows = db
    .prepare(
      `SELECT t.*, d.trust AS deal_trust, d.contribution_deadline AS deal_contribution_deadline, d.final_deadline AS deal_final_deadline,
              d.speculative AS deal_speculative
         FROM tasks t JOIN deals d ON d.deal_id = t.deal_id
        WHERE t.status IN (${ACTIVE_TASK_STATUSES.map((s) => `'${s}'`).join(", ")})
        ORDER BY d.contribution_deadline, t.deal_id, t.task_index
        LIMIT ?`,
    )
    .all(int("limit", limit, 1)) as (TaskRow & { deal_trust: number; deal_contribution_deadline: number; deal_final_deadline: number; deal_speculative: number })[];
  return rows.map((r) => ({
    task: fromRow(r),
    speculative: r.deal_speculative === 1,
    quorum: quorumOf(r.deal_trust),
    contributionDeadline: r.deal_contribution_deadline,
    finalDeadline: r.deal_final_deadline,
  }));
}

/**
 * Tasks that can be claimed on chain (refund): not completed nor claimed, final deadline passed (`nowSec`, unix
 * seconds, the chain's clock). The scheduler claims them so that its own failures do not linger.
 */
export function claimableTasks(db: Db, nowSec: number, limit = 1000): Task[] {
  const rows = db
    .prepare(
      `SELECT t.* FROM tasks t JOIN deals d ON d.deal_id = t.deal_id
        WHERE t.status NOT IN ('completed', 'claimed') AND d.final_deadline <= ?
        ORDER BY d.final_deadline, t.deal_id, t.task_index LIMIT ?`,
    )
    .all(int("nowSec", nowSec), int("limit", limit, 1)) as TaskRow[];
  return rows.map(fromRow);
}

const TIME_COLUMN: Partial<Record<TaskStatus, string>> = {
  dispatched: "dispatched_at",
  committing: "committing_at",
  revealing: "revealing_at",
  finalizing: "finalizing_at",
  completed: "completed_at",
  failed: "failed_at",
  claimed: "claimed_at",
};

/**
 * Moves a task to `status`, stamping the phase's time the first time it is reached and appending a `task.status`
 * event. Returns false when the task already had that status (nothing written). StoreError INVALID_TRANSITION for a
 * move the guard refuses, NOT_FOUND for an unknown task.
 */
export function setTaskStatus(db: Db, taskId: string, status: TaskStatus, options: { at?: number; reason?: string } = {}): boolean {
  if (!TASK_STATUSES.includes(status)) throw new StoreError("INVALID_RECORD", `unknown task status ${String(status)}`);
  const at = int("at", options.at ?? clock());
  return db.transaction((): boolean => {
    const task = requireTask(db, taskId);
    if (task.status === status) return false;
    if (!canMoveTask(task.status, status)) throw new StoreError("INVALID_TRANSITION", `task ${task.taskId}: ${task.status} → ${status} is not allowed`);
    const column = TIME_COLUMN[status];
    db.prepare(
      `UPDATE tasks SET status = @status, ${column ? `${column} = COALESCE(${column}, @at), ` : ""}
              failure_reason = CASE WHEN @status = 'failed' THEN @reason ELSE failure_reason END, updated_at = @at
        WHERE task_id = @taskId`,
    ).run({ status, at, reason: options.reason === undefined ? null : text("reason", options.reason.slice(0, 2000)), taskId: task.taskId });
    addTaskEvent(db, { taskId: task.taskId, at, kind: "task.status", detail: { from: task.status, to: status, ...(options.reason ? { reason: options.reason } : {}) } });
    return true;
  })();
}

/**
 * Moves a task to `to` only from one of the statuses `from` (and when the move is allowed): for a step that may find
 * the task already moved on by someone else (the chain watcher applying a later event first). True if it moved.
 */
export function advanceTask(db: Db, taskId: string, to: TaskStatus, from: readonly TaskStatus[], options: { at?: number; reason?: string } = {}): boolean {
  const task = getTask(db, taskId);
  return task !== null && from.includes(task.status) && canMoveTask(task.status, to) && setTaskStatus(db, taskId, to, options);
}

export interface TaskPatch {
  consensusHash?: string | null;
  resultDigest?: string | null;
  results?: string | null;
  callbackData?: string | null;
  revealDeadline?: number | null;
  initializedAt?: number | null;
}

/** Updates a task's data fields (not its status: see setTaskStatus). Fields left out are kept. */
export function updateTask(db: Db, taskId: string, patch: TaskPatch, at = clock()): void {
  const sets: string[] = [];
  const args: unknown[] = [];
  const put = (column: string, value: unknown) => {
    sets.push(`${column} = ?`);
    args.push(value);
  };
  if (patch.consensusHash !== undefined) put("consensus_hash", optionalBytes32("consensusHash", patch.consensusHash));
  if (patch.resultDigest !== undefined) put("result_digest", optionalBytes32("resultDigest", patch.resultDigest));
  if (patch.results !== undefined) put("results", patch.results === null ? null : hexData("results", patch.results));
  if (patch.callbackData !== undefined) put("callback_data", patch.callbackData === null ? null : hexData("callbackData", patch.callbackData));
  if (patch.revealDeadline !== undefined) put("reveal_deadline", patch.revealDeadline === null ? null : int("revealDeadline", patch.revealDeadline));
  if (patch.initializedAt !== undefined) put("initialized_at", patch.initializedAt === null ? null : int("initializedAt", patch.initializedAt));
  if (sets.length === 0) return;
  const info = db.prepare(`UPDATE tasks SET ${sets.join(", ")}, updated_at = ? WHERE task_id = ?`).run(...args, int("at", at), bytes32("taskId", taskId));
  if (info.changes === 0) throw new StoreError("NOT_FOUND", `no task ${taskId}`);
}

/** The deal of a task (every task has one: foreign key). */
export function dealOfTask(db: Db, taskId: string): Deal {
  return requireDeal(db, requireTask(db, taskId).dealId);
}
