/**
 * Workers that ever logged in to this scheduler, with what their score is made of (core/score.ts): agreement counts,
 * a moving average of their commit latency, and their connected time (uptime). Counters change only through
 * idempotent paths — a commit's latency is recorded once, when the replica first commits (replicas.ts), and a task's
 * outcome once per replica (`settleOutcome`) — so a restart that replays work never double-counts.
 */
import { ewma } from "../core/latency";
import { type WorkerStats, type ScoreOptions, defaultScoreOptions, uptimeRatio, workerScore } from "../core/score";
import { address, int, now as clock } from "./codec";
import type { Db } from "./db";
import { migration } from "./db";
import { StoreError } from "./errors";

migration(
  "workers-1",
  `CREATE TABLE workers (
     address         TEXT PRIMARY KEY,
     first_seen_at   INTEGER NOT NULL,
     last_seen_at    INTEGER NOT NULL,
     connected_since INTEGER,
     online_ms       INTEGER NOT NULL DEFAULT 0,
     sessions        INTEGER NOT NULL DEFAULT 0,
     lost_count      INTEGER NOT NULL DEFAULT 0,
     capacity        INTEGER NOT NULL DEFAULT 1,
     agreed          INTEGER NOT NULL DEFAULT 0,
     disagreed       INTEGER NOT NULL DEFAULT 0,
     commits         INTEGER NOT NULL DEFAULT 0,
     failures        INTEGER NOT NULL DEFAULT 0,
     latency_ms      REAL,
     updated_at      INTEGER NOT NULL
   );`,
);

export interface WorkerRecord {
  address: string;
  firstSeenAt: number;
  lastSeenAt: number;
  /** when its current session began; null when not connected */
  connectedSince: number | null;
  /** connected time of its closed sessions (ms) */
  onlineMs: number;
  sessions: number;
  /** sessions that ended by missed heartbeats */
  lostCount: number;
  /** replicas it may run at once */
  capacity: number;
  agreed: number;
  disagreed: number;
  commits: number;
  /** runs that failed on it */
  failures: number;
  /** moving average of its commit latency (ms) */
  latencyMs: number | null;
  updatedAt: number;
}

interface WorkerRow {
  address: string;
  first_seen_at: number;
  last_seen_at: number;
  connected_since: number | null;
  online_ms: number;
  sessions: number;
  lost_count: number;
  capacity: number;
  agreed: number;
  disagreed: number;
  commits: number;
  failures: number;
  latency_ms: number | null;
  updated_at: number;
}

function fromRow(r: WorkerRow): WorkerRecord {
  return {
    address: r.address,
    firstSeenAt: r.first_seen_at,
    lastSeenAt: r.last_seen_at,
    connectedSince: r.connected_since,
    onlineMs: r.online_ms,
    sessions: r.sessions,
    lostCount: r.lost_count,
    capacity: r.capacity,
    agreed: r.agreed,
    disagreed: r.disagreed,
    commits: r.commits,
    failures: r.failures,
    latencyMs: r.latency_ms,
    updatedAt: r.updated_at,
  };
}

/** Latency moving-average weight of a new commit: about the last ten commits matter. */
export const LATENCY_ALPHA = 0.2;

function ensure(db: Db, worker: string, at: number): string {
  const a = address("worker", worker);
  db.prepare("INSERT OR IGNORE INTO workers (address, first_seen_at, last_seen_at, updated_at) VALUES (?, ?, ?, ?)").run(a, at, at, at);
  return a;
}

export function getWorker(db: Db, worker: string): WorkerRecord | null {
  const row = db.prepare("SELECT * FROM workers WHERE address = ?").get(address("worker", worker)) as WorkerRow | undefined;
  return row ? fromRow(row) : null;
}

/** Every worker, connected ones first, then by address. */
export function listWorkers(db: Db): WorkerRecord[] {
  return (db.prepare("SELECT * FROM workers ORDER BY connected_since IS NULL, address").all() as WorkerRow[]).map(fromRow);
}

/** A session opened (after a valid login). Closes a dangling session first (its time counted up to last seen). */
export function workerConnected(db: Db, worker: string, options: { at?: number; capacity?: number } = {}): WorkerRecord {
  const at = int("at", options.at ?? clock());
  return db.transaction(() => {
    const a = ensure(db, worker, at);
    closeSession(db, a, at, false);
    db.prepare(
      "UPDATE workers SET connected_since = ?, last_seen_at = ?, sessions = sessions + 1, capacity = COALESCE(?, capacity), updated_at = ? WHERE address = ?",
    ).run(at, at, options.capacity === undefined ? null : int("capacity", options.capacity), at, a);
    return getWorker(db, a)!;
  })();
}

/** A heartbeat or any frame from the worker. */
export function workerSeen(db: Db, worker: string, at = clock()): void {
  const info = db.prepare("UPDATE workers SET last_seen_at = MAX(last_seen_at, ?), updated_at = ? WHERE address = ?").run(int("at", at), at, address("worker", worker));
  if (info.changes === 0) throw new StoreError("NOT_FOUND", `no worker ${worker}`);
}

function closeSession(db: Db, a: string, at: number, lost: boolean): boolean {
  const row = db.prepare("SELECT connected_since, last_seen_at FROM workers WHERE address = ?").get(a) as { connected_since: number | null; last_seen_at: number } | undefined;
  if (!row || row.connected_since === null) return false;
  // A lost worker was last alive at its last frame; a clean close ends now.
  const end = lost ? row.last_seen_at : Math.max(at, row.last_seen_at);
  db.prepare("UPDATE workers SET online_ms = online_ms + ?, connected_since = NULL, lost_count = lost_count + ?, updated_at = ? WHERE address = ?").run(
    Math.max(0, end - row.connected_since),
    lost ? 1 : 0,
    at,
    a,
  );
  return true;
}

/** The session ended: closed cleanly, or `lost` (missed heartbeats). False when it was not connected. */
export function workerDisconnected(db: Db, worker: string, options: { at?: number; lost?: boolean } = {}): boolean {
  const at = int("at", options.at ?? clock());
  return db.transaction(() => closeSession(db, address("worker", worker), at, options.lost ?? false))();
}

/**
 * On start: every session recorded as open belongs to the previous process and is over. Counts each up to the worker's
 * last frame. Returns how many were closed.
 */
export function closeAllSessions(db: Db, at = clock()): number {
  return db.transaction(() => {
    const open = db.prepare("SELECT address FROM workers WHERE connected_since IS NOT NULL").all() as { address: string }[];
    for (const { address: a } of open) closeSession(db, a, at, true);
    return open.length;
  })();
}

/** Adds a commit latency sample to the worker's moving average (called once per replica, by replicas.ts). */
export function recordCommitLatency(db: Db, worker: string, latencyMs: number, at = clock()): void {
  const a = ensure(db, worker, at);
  const row = db.prepare("SELECT latency_ms FROM workers WHERE address = ?").get(a) as { latency_ms: number | null };
  const next = ewma(row.latency_ms, Math.max(0, latencyMs), LATENCY_ALPHA);
  db.prepare("UPDATE workers SET latency_ms = ?, commits = commits + 1, last_seen_at = MAX(last_seen_at, ?), updated_at = ? WHERE address = ?").run(next, at, at, a);
}

/** Counts a task outcome for the worker (called once per replica, by replicas.ts `settleOutcome`). */
export function countOutcome(db: Db, worker: string, outcome: "agreed" | "disagreed" | "failed", at = clock()): void {
  const a = ensure(db, worker, at);
  const column = outcome === "agreed" ? "agreed" : outcome === "disagreed" ? "disagreed" : "failures";
  db.prepare(`UPDATE workers SET ${column} = ${column} + 1, updated_at = ? WHERE address = ?`).run(at, a);
}

/** The worker's score inputs at `now`: uptime counts the open session up to now. */
export function workerStats(w: WorkerRecord, now = clock()): WorkerStats {
  const online = w.onlineMs + (w.connectedSince === null ? 0 : Math.max(0, now - w.connectedSince));
  return {
    agreed: w.agreed,
    disagreed: w.disagreed,
    latencyMs: w.latencyMs,
    uptime: uptimeRatio(online, Math.max(0, now - w.firstSeenAt)),
  };
}

/** The worker's score (core/score.ts) at `now`. */
export function scoreOf(w: WorkerRecord, now = clock(), options: ScoreOptions = defaultScoreOptions): number {
  return workerScore(workerStats(w, now), options);
}
