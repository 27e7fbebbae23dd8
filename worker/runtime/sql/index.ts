/**
 * The `sql` runtime: one read-only SQLite query over a dataset (a SQLite file, or a CSV file loaded into one table),
 * run by sql.js in a sandbox thread with a wall-clock deadline, a memory cap and an output cap. The query is checked
 * first (check.ts), so a refusal costs no thread, no dataset read. The caller writes the result as canonical JSON to
 * /out/result.json (`{"columns":[…],"rows":[[…]…]}`).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError } from "../errors";
import { runInThread, warmThread } from "../thread";
import { checkQuery } from "./check";

/** A cell of the result: INTEGER beyond ±(2^53-1) as bigint, REAL as number, TEXT, BLOB as "0x…" hex, NULL. */
export type SqlValue = null | number | bigint | string;

export interface SqlResult {
  columns: string[];
  rows: SqlValue[][];
}

export interface SqlRunOptions {
  /** the dataset file; none: the query runs on an empty in-memory database */
  datasetPath?: string;
  /** the table a CSV dataset is loaded into (see `tableNameFor`); default `dataset`; ignored for a SQLite file */
  table?: string;
  query: string;
  /** wall-clock budget, from the moment the job reaches its (already started) thread */
  timeoutMs: number;
  /** limit on the rows, measured as their JSON text */
  maxOutputBytes: number;
  /** limit on SQLite's heap; default DEFAULT_SQL_MEMORY_BYTES */
  maxMemoryBytes?: number;
  signal?: AbortSignal;
}

export const DEFAULT_SQL_MEMORY_BYTES = 256 * 2 ** 20;
export const DEFAULT_TABLE = "dataset";

const THREAD_SCRIPT = join(__dirname, "sql-thread.js");
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether a name can be a CSV dataset's table: an identifier, and not in SQLite's reserved `sqlite_` namespace. */
export function isTableName(name: string): boolean {
  return TABLE_NAME.test(name) && !/^sqlite_/i.test(name);
}

/** The table a CSV dataset is loaded into: its registered name when that is a usable identifier, else `dataset`. */
export function tableNameFor(datasetName: string | undefined): string {
  return datasetName !== undefined && isTableName(datasetName) ? datasetName : DEFAULT_TABLE;
}

/**
 * Runs one query. Rejects with a RuntimeError: INVALID_QUERY / NON_DETERMINISTIC_QUERY (refused before any work, or
 * refused by SQLite), INVALID_DATASET, DEADLINE_EXCEEDED, MEMORY_EXCEEDED, OUTPUT_TOO_LARGE, CANCELLED.
 */
export async function runSql(opts: SqlRunOptions): Promise<SqlResult> {
  checkQuery(opts.query);
  const table = opts.table ?? DEFAULT_TABLE;
  if (!isTableName(table)) {
    throw new RuntimeError(
      "INVALID_DATASET",
      `invalid dataset: table name ${JSON.stringify(table)} is not an identifier [A-Za-z_][A-Za-z0-9_]* outside sqlite_*`,
    );
  }
  const maxMemoryBytes = opts.maxMemoryBytes ?? DEFAULT_SQL_MEMORY_BYTES;
  for (const [name, value] of Object.entries({
    timeoutMs: opts.timeoutMs,
    maxOutputBytes: opts.maxOutputBytes,
    maxMemoryBytes,
  })) {
    if (!Number.isSafeInteger(value) || value <= 0)
      throw new RangeError(`runSql: ${name} must be a positive integer, got ${value}`);
  }
  const job = {
    datasetPath: opts.datasetPath,
    table,
    query: opts.query,
    maxOutputBytes: opts.maxOutputBytes,
    maxMemoryBytes,
  };
  return runInThread<SqlResult>(THREAD_SCRIPT, job, { timeoutMs: opts.timeoutMs, signal: opts.signal, threadData: await sqlThreadData() });
}

let compiledSqlJs: Promise<{ sqlWasm: WebAssembly.Module }> | null = null;

/** sql.js's WebAssembly, compiled once per process and shared by every sql thread (see sql-thread.js). */
function sqlThreadData(): Promise<{ sqlWasm: WebAssembly.Module }> {
  if (!compiledSqlJs) {
    compiledSqlJs = readFile(require.resolve("sql.js/dist/sql-wasm.wasm"))
      .then((bytes) => WebAssembly.compile(bytes))
      .then((sqlWasm) => ({ sqlWasm }));
    compiledSqlJs.catch(() => (compiledSqlJs = null)); // a failure is retried by the next run
  }
  return compiledSqlJs;
}

/** Starts an idle sql thread ahead of the first query (a worker calls this when it starts). */
export async function warmSql(): Promise<void> {
  warmThread(THREAD_SCRIPT, await sqlThreadData());
}
