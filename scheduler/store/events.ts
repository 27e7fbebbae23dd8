/**
 * A task's timeline (the dashboard's "hedged run": offer, dispatch, commits, quorum, reveal, finalize, with ms offsets).
 * Append-only. The store's own writes append their events in the same transaction (tasks.ts, replicas.ts), so the
 * timeline cannot miss a step the state took; chain events carry a dedupe key (tx hash + log index) so replaying the
 * chain after a restart does not duplicate them.
 *
 * Never put an unrevealed digest in a detail: the timeline is served over HTTP.
 */
import { EventEmitter } from "node:events";
import { bytes32, int, json, now as clock, text } from "./codec";
import type { Db } from "./db";
import { migration } from "./db";

migration(
  "task-events-1",
  `CREATE TABLE task_events (
     id         INTEGER PRIMARY KEY AUTOINCREMENT,
     task_id    TEXT NOT NULL REFERENCES tasks (task_id),
     at         INTEGER NOT NULL,
     kind       TEXT NOT NULL,
     replica_id TEXT,
     worker     TEXT,
     detail     TEXT NOT NULL DEFAULT '{}',
     dedupe_key TEXT UNIQUE
   );
   CREATE INDEX task_events_task ON task_events (task_id, at, id);`,
);

/** Kinds the store writes itself; callers may add their own (e.g. "offer", "relay.sent"). */
export type TaskEventKind =
  | "task.created"
  | "task.status"
  | "replica.assigned"
  | "replica.running"
  | "replica.committed"
  | "replica.reveal_requested"
  | "replica.revealed"
  | "replica.cancelled"
  | "replica.failed"
  | "replica.lost"
  | "replica.reassigned"
  | `chain.${string}`
  | (string & {});

export interface NewTaskEvent {
  taskId: string;
  kind: TaskEventKind;
  /** ms since the epoch */
  at?: number;
  replicaId?: string | null;
  worker?: string | null;
  detail?: Record<string, unknown>;
  /** a key that makes the append idempotent (e.g. `${txHash}:${logIndex}`) */
  dedupeKey?: string | null;
}

export interface TaskEvent {
  id: number;
  taskId: string;
  at: number;
  /** ms since the task's first event */
  offsetMs: number;
  kind: string;
  replicaId: string | null;
  worker: string | null;
  detail: Record<string, unknown>;
}

interface EventRow {
  id: number;
  task_id: string;
  at: number;
  kind: string;
  replica_id: string | null;
  worker: string | null;
  detail: string;
}

const appended = new WeakMap<Db, EventEmitter>();

/**
 * Calls `listener` with the task id each time an event is appended to a timeline of `db` (what a `GET /tasks/:id`
 * waiting for news listens to). The call comes synchronously from the append, maybe inside the store transaction
 * that makes it: read the state afterwards, not from the listener. Returns the unsubscribe function.
 */
export function onTaskEvent(db: Db, listener: (taskId: string) => void): () => void {
  let emitter = appended.get(db);
  if (!emitter) {
    emitter = new EventEmitter();
    emitter.setMaxListeners(0); // one per waiting request
    appended.set(db, emitter);
  }
  emitter.on("event", listener);
  return () => emitter.off("event", listener);
}

/** Appends an event; false when its dedupe key was already recorded (nothing written). */
export function addTaskEvent(db: Db, e: NewTaskEvent): boolean {
  const info = db
    .prepare("INSERT OR IGNORE INTO task_events (task_id, at, kind, replica_id, worker, detail, dedupe_key) VALUES (?, ?, ?, ?, ?, ?, ?)")
    .run(
      bytes32("taskId", e.taskId),
      int("at", e.at ?? clock()),
      text("kind", e.kind, 100),
      e.replicaId ?? null,
      e.worker ?? null,
      json(e.detail ?? {}),
      e.dedupeKey ?? null,
    );
  if (info.changes !== 1) return false;
  appended.get(db)?.emit("event", e.taskId.toLowerCase());
  return true;
}

/** Whether an event with this dedupe key was recorded (a chain event already applied). */
export function hasTaskEvent(db: Db, dedupeKey: string): boolean {
  return db.prepare("SELECT 1 FROM task_events WHERE dedupe_key = ?").get(dedupeKey) !== undefined;
}

/** When the last event of `kind` was recorded for the task (ms), or null. */
export function lastTaskEventAt(db: Db, taskId: string, kind: string): number | null {
  const row = db.prepare("SELECT MAX(at) AS at FROM task_events WHERE task_id = ? AND kind = ?").get(bytes32("taskId", taskId), kind) as { at: number | null };
  return row.at;
}

/** A task's timeline, oldest first, with offsets from its first event. */
export function taskTimeline(db: Db, taskId: string): TaskEvent[] {
  const rows = db.prepare("SELECT id, task_id, at, kind, replica_id, worker, detail FROM task_events WHERE task_id = ? ORDER BY at, id").all(bytes32("taskId", taskId)) as EventRow[];
  const start = rows[0]?.at ?? 0;
  return rows.map((r) => ({
    id: r.id,
    taskId: r.task_id,
    at: r.at,
    offsetMs: r.at - start,
    kind: r.kind,
    replicaId: r.replica_id,
    worker: r.worker,
    detail: JSON.parse(r.detail) as Record<string, unknown>,
  }));
}
