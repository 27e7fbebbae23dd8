/**
 * Where the chain watcher stands: the last event it handled (or the last block it finished), persisted so that a
 * restart resumes there instead of replaying history. Kept under a key so several watchers can share one store.
 */
import { migration, type Db } from "../store/db";

/**
 * A watcher's position. `logIndex` is the last handled log of `blockNumber`, or null when the whole block is done.
 * `blockHash` is that block's hash when known: it is how a reorg under the cursor is detected.
 */
export interface Cursor {
  blockNumber: number;
  blockHash: string | null;
  logIndex: number | null;
}

export interface CursorStore {
  get(key: string): Promise<Cursor | null>;
  set(key: string, cursor: Cursor): Promise<void>;
}

/** A throwaway store for tests and one-shot tools. */
export class MemoryCursorStore implements CursorStore {
  private readonly cursors = new Map<string, Cursor>();

  async get(key: string): Promise<Cursor | null> {
    const c = this.cursors.get(key);
    return c ? { ...c } : null;
  }

  async set(key: string, cursor: Cursor): Promise<void> {
    this.cursors.set(key, { ...cursor });
  }
}

migration(
  "chain_cursors_v1",
  `CREATE TABLE chain_cursors (
     key TEXT PRIMARY KEY,
     block_number INTEGER NOT NULL,
     block_hash TEXT,
     log_index INTEGER,
     updated_at INTEGER NOT NULL
   )`,
);

interface CursorRow {
  block_number: number;
  block_hash: string | null;
  log_index: number | null;
}

/** The scheduler's store: one row per key in the shared SQLite database (open it with `openDatabase`). */
export class SqliteCursorStore implements CursorStore {
  private readonly select;
  private readonly upsert;

  constructor(db: Db) {
    this.select = db.prepare<[string], CursorRow>(
      "SELECT block_number, block_hash, log_index FROM chain_cursors WHERE key = ?",
    );
    this.upsert = db.prepare(
      `INSERT INTO chain_cursors (key, block_number, block_hash, log_index, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET block_number = excluded.block_number, block_hash = excluded.block_hash,
         log_index = excluded.log_index, updated_at = excluded.updated_at`,
    );
  }

  async get(key: string): Promise<Cursor | null> {
    const row = this.select.get(key);
    if (!row) return null;
    return { blockNumber: row.block_number, blockHash: row.block_hash, logIndex: row.log_index };
  }

  async set(key: string, cursor: Cursor): Promise<void> {
    this.upsert.run(key, cursor.blockNumber, cursor.blockHash, cursor.logIndex, Date.now());
  }
}
