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
  cacheStatements(db);
  return db;
}

/** Statements kept compiled at most; past that the cache starts over (SQL built from column lists varies a little). */
const MAX_CACHED_STATEMENTS = 1_000;

/**
 * Makes `db.prepare` compile each SQL text once: the router asks the same few dozen queries on every tick and for every
 * frame, and compiling them anew was the scheduler's largest CPU cost. Safe because no caller changes a statement's
 * mode (pluck, raw, expand) or iterates one (a cached statement is never in use twice at once).
 */
function cacheStatements(db: Db): void {
  const compile = db.prepare.bind(db);
  const statements = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let statement = statements.get(sql);
    if (!statement) {
      if (statements.size >= MAX_CACHED_STATEMENTS) statements.clear();
      statement = compile(sql);
      statements.set(sql, statement);
    }
    return statement;
  }) as Db["prepare"];
}
