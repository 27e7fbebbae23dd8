/**
 * The scheduler's state: one SQLite database (better-sqlite3, WAL; synchronous=NORMAL is enough because the chain is
 * the source of truth and the state is reconciled against it on start). Each module owns its tables and
 * registers its schema with `migration(name, sql)`; `openDatabase` applies every registered migration once, in
 * registration order, inside a transaction. `:memory:` gives a throwaway database for tests.
 */
import Database from "better-sqlite3";

export type Db = Database.Database;

const migrations: { name: string; sql: string }[] = [];

/** Registers a schema step (idempotent by name). Call at module load, before `openDatabase`. */
export function migration(name: string, sql: string): void {
  if (!migrations.some((m) => m.name === name)) migrations.push({ name, sql });
}

export function openDatabase(path: string): Db {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.exec("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
  const applied = new Set((db.prepare("SELECT name FROM migrations").all() as { name: string }[]).map((r) => r.name));
  const apply = db.transaction((m: { name: string; sql: string }) => {
    db.exec(m.sql);
    db.prepare("INSERT INTO migrations (name, applied_at) VALUES (?, ?)").run(m.name, Date.now());
  });
  for (const m of migrations) if (!applied.has(m.name)) apply(m);
  return db;
}
