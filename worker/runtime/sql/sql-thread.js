// @ts-check
/**
 * The sandbox thread of the `sql` runtime, run by `runInThread` (worker/runtime/thread.ts): each message is a job (a
 * `SqlJob`), answered in turn; `workerData.sqlWasm`, when given, is sql.js's WebAssembly already compiled by the
 * parent (each thread then skips compiling it: about half of a thread's start-up). Plain JavaScript so that a thread starts without a TypeScript
 * compiler. It answers with exactly one message: `{ ok: true, value: { columns, rows } }` or
 * `{ ok: false, code, message }`.
 *
 * A thread serves several jobs (thread.ts), and each runs on a SQLite of its own: sql.js is loaded afresh (a new
 * module instance, so a new SQLite with its own memory and random state) with the random source reset to its seed,
 * exactly as in a new thread. That instance is prepared as soon as the previous job has answered, so a job finds it
 * ready; after each answer a full garbage collection frees the previous one.
 *
 * Steps: pin the environment (below), load sql.js (SQLite compiled to WebAssembly), open the dataset (a SQLite file,
 * recognised by its 16-byte header, or a CSV file loaded into one table, see csv-core.js, whose database image the
 * thread keeps for the next job on the same file: `csvImages`; none: an empty in-memory database), cap SQLite's heap,
 * set `PRAGMA query_only = 1`, then run the one statement row by row and stop as soon
 * as the rows outgrow the output limit. The query was already accepted by check.ts; this thread still refuses a
 * second statement and, through query_only, any write.
 *
 * The environment is pinned so that what the static check cannot see still gives the same rows on every worker: a
 * 'now' that reaches a date function from the data or from a view of a SQLite dataset reads a frozen clock
 * (1970-01-01T00:00:00Z), 'localtime' is UTC, and SQLite's random source (random(), randomblob() in a view) and
 * sql.js's database file name (visible in pragma_database_list) come from a fixed seed. These patches touch only this
 * thread's globals, which exist for this one run.
 *
 * Values: INTEGER → number when |v| ≤ 2^53-1, else bigint (exact); REAL → number (±Infinity is refused: JSON has
 * no such number); TEXT → string; BLOB → "0x…" lower-case hex; NULL → null.
 */
"use strict";

const { parentPort, workerData } = require("node:worker_threads");
const { readFileSync } = require("node:fs");
const nodeCrypto = require("node:crypto");
const csv = require("./csv-core.js");

/**
 * @typedef {object} SqlJob
 * @property {string} [datasetPath] the dataset file; none: an empty in-memory database
 * @property {string} table the table a CSV dataset is loaded into
 * @property {string} query one read-only statement, already accepted by check.ts
 * @property {number} maxOutputBytes limit on the rows, measured as their JSON text
 * @property {number} maxMemoryBytes limit on SQLite's heap (PRAGMA hard_heap_limit)
 */
/**
 * The part of sql.js used here (its published types predate `useBigInt`).
 * @typedef {object} Statement
 * @property {() => boolean} step
 * @property {(params: null, config: { useBigInt: boolean }) => unknown[]} get
 * @property {() => string[]} getColumnNames
 * @property {() => string} getSQL
 * @property {(params: unknown[]) => void} run
 * @property {() => boolean} free
 * @typedef {object} Database
 * @property {(sql: string) => unknown} run
 * @property {(sql: string) => unknown} exec
 * @property {(sql: string) => Statement} prepare
 * @property {(sql: string) => Iterable<Statement>} iterateStatements
 * @property {() => Uint8Array} export
 * @property {() => void} close
 * @typedef {{ Database: new (data?: Uint8Array) => Database }} SqlJs
 */

const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1");
const PINNED_NOW_MS = 0;
const PINNED_SEED = 0x436f6e63; // "Conc"

class SandboxError extends Error {
  /**
   * @param {string} code a RuntimeErrorCode
   * @param {string} message one line
   */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** The pinned random stream (see pinEnvironment); restarted from its seed for each job's SQLite. */
let random = splitmix32(PINNED_SEED);
pinEnvironment();
const port = /** @type {import("node:worker_threads").MessagePort} */ (parentPort);
const compiled = /** @type {WebAssembly.Module | undefined} */ (workerData?.sqlWasm);
require("node:v8").setFlagsFromString("--expose-gc");
const collectGarbage = /** @type {() => void} */ (require("node:vm").runInNewContext("gc"));

/**
 * A new SQLite for the next job: sql.js's module evaluated again (it keeps its instance in a module variable), its
 * WebAssembly instantiated (from the parent's compiled module when given), the random stream at its seed.
 * @returns {Promise<SqlJs>}
 */
function freshSqlJs() {
  random = splitmix32(PINNED_SEED);
  delete require.cache[require.resolve("sql.js")];
  const initSqlJs = /** @type {(config: object) => Promise<SqlJs>} */ (require("sql.js"));
  const ready = initSqlJs(sqlJsConfig());
  ready.catch(() => {}); // a failure is reported when the job awaits it, not as an unhandled rejection before
  return ready;
}

/** sql.js's configuration: the parent's compiled module when given, the extension functions pinned. */
function sqlJsConfig() {
  return {
    locateFile: () => require.resolve("sql.js/dist/sql-wasm.wasm"),
    // Emscripten's hook: instantiate the parent's compiled module instead of fetching and compiling the file
    ...(compiled instanceof WebAssembly.Module
      ? {
          /**
           * @param {WebAssembly.Imports} imports
           * @param {(instance: WebAssembly.Instance, module: WebAssembly.Module) => void} receive
           */
          instantiateWasm: (imports, receive) => {
            WebAssembly.instantiate(compiled, imports).then((instance) => receive(instance, compiled));
            return {};
          },
        }
      : {}),
    // sql.js 1.x registers its legacy extension functions (stdev, median, …) unless told not to; pinned explicitly so
    // that every worker has the same function set whatever a future default says
    useOldExtensionFunctions: true,
  };
}

// The first SQLite is made now: a thread started ahead (see thread.ts) is warm before its first job arrives.
/** @type {Promise<SqlJs> | null} the next job's SQLite */
let sqlReady = freshSqlJs();
let jobs = Promise.resolve();
port.on("message", (/** @type {SqlJob} */ job) => {
  jobs = jobs.then(() => serve(job));
});

/**
 * How long after an answer the thread waits before it cleans up (a full GC, then the next job's SQLite): done at once,
 * that CPU would compete with what the answer sets off (the worker's commit, the scheduler's relay). A job arriving
 * sooner has the cleanup run first, so no job ever starts on a used SQLite or an uncollected heap.
 */
const CLEANUP_DELAY_MS = 250;
/** @type {NodeJS.Timeout | null} */
let cleanupDue = null;

/** Collects the previous job's SQLite and heap and prepares the next job's SQLite. */
function cleanUp() {
  if (cleanupDue) clearTimeout(cleanupDue);
  cleanupDue = null;
  sqlReady = null; // the previous job's SQLite goes with the collection
  collectGarbage();
  sqlReady = freshSqlJs();
}

/** Answers one job, then schedules the cleanup. @param {SqlJob} job */
async function serve(job) {
  if (cleanupDue) cleanUp();
  try {
    port.postMessage({ ok: true, value: await run(job, sqlReady ?? freshSqlJs()) });
  } catch (e) {
    const err = e instanceof SandboxError ? e : new SandboxError("NON_ZERO_EXIT", `sql runtime failed: ${messageOf(e)}`);
    port.postMessage({ ok: false, code: err.code, message: err.message });
  }
  cleanupDue = setTimeout(cleanUp, CLEANUP_DELAY_MS);
}

/**
 * @param {SqlJob} job
 * @param {Promise<SqlJs>} sqlReady this job's SQLite
 */
async function run(job, sqlReady) {
  const SQL = await sqlReady;
  const db = await openDataset(SQL, job);
  guard(() => db.run("PRAGMA query_only = 1"), "INVALID_QUERY", job);
  return runQuery(db, job);
}

// ------------------------------------------------------------------------------------------------------ environment

/** Frozen clock, UTC, seeded randomness: see the module comment. */
function pinEnvironment() {
  Date.now = () => PINNED_NOW_MS;
  const proto = /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (Date.prototype));
  for (const part of ["FullYear", "Month", "Date", "Day", "Hours", "Minutes", "Seconds", "Milliseconds"]) {
    proto[`get${part}`] = proto[`getUTC${part}`];
  }
  proto.getTimezoneOffset = () => 0;
  Math.random = () => random() / 2 ** 32;
  /** @param {NodeJS.ArrayBufferView} view */
  const fill = (view) => {
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    for (let k = 0; k < bytes.length; k++) bytes[k] = random() & 0xff;
    return view;
  };
  // Emscripten's entropy source under Node (SQLite seeds its PRNG from it)
  /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (nodeCrypto)).randomFillSync = fill;
}

/**
 * @param {number} seed
 * @returns {() => number} a deterministic stream of unsigned 32-bit integers
 */
function splitmix32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

// ---------------------------------------------------------------------------------------------------------- dataset

/**
 * @param {SqlJs} SQL
 * @param {SqlJob} job
 * @returns {Database}
 */
async function openDataset(SQL, job) {
  if (job.datasetPath === undefined) return limitMemory(new SQL.Database(), job);
  const bytes = readDataset(job.datasetPath);
  if (bytes.length >= SQLITE_HEADER.length && bytes.subarray(0, SQLITE_HEADER.length).equals(SQLITE_HEADER)) {
    const db = limitMemory(new SQL.Database(bytes), job);
    // sql.js opens lazily: read the schema now so that a damaged file is a dataset error, not a query error
    guard(() => db.exec("SELECT count(*) FROM sqlite_schema"), "INVALID_DATASET", job);
    return db;
  }
  const key = `${nodeCrypto.createHash("sha256").update(bytes).digest("hex")}:${job.table}`;
  let image = csvImages.get(key);
  if (image) {
    csvImages.delete(key); // most recently used last
  } else {
    image = await csvImage(bytes, job);
  }
  if (image.length <= CSV_IMAGES_MAX_BYTES) {
    csvImages.set(key, image);
    let total = 0;
    for (const kept of csvImages.values()) total += kept.length;
    for (const [old, kept] of csvImages) {
      if (total <= CSV_IMAGES_MAX_BYTES) break;
      csvImages.delete(old);
      total -= kept.length;
    }
  }
  // the random stream at its seed again, where the job's SQLite left it when no image had to be built (the image is
  // built on a SQLite of its own): the database's file name (pragma_database_list), and SQLite's own random source
  // once seeded, are the same whichever way the image came
  random = splitmix32(PINNED_SEED);
  return guard(() => limitMemory(new SQL.Database(/** @type {Uint8Array} */ (image)), job), "INVALID_DATASET", job);
}

/**
 * CSV datasets already loaded, as SQLite database images (`Database.export`) by the file's SHA-256 and table name,
 * least recently used first, CSV_IMAGES_MAX_BYTES in all: a job on a CSV seen before opens its own SQLite on a copy
 * of the image instead of parsing the file and inserting every row again. Every job, the first one included, queries
 * a database opened from the image, so the rows come from the same pages either way.
 * @type {Map<string, Uint8Array>}
 */
const csvImages = new Map();
const CSV_IMAGES_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Loads a CSV dataset into a scratch database, on a SQLite instance of its own (the job's stays untouched, its random
 * source unseeded), and returns that database's image.
 * @param {Buffer} bytes
 * @param {SqlJob} job
 * @returns {Promise<Uint8Array>}
 */
async function csvImage(bytes, job) {
  let table;
  try {
    table = csv.readCsv(bytes);
  } catch (e) {
    if (e instanceof csv.CsvError) throw new SandboxError("INVALID_DATASET", `invalid dataset: ${e.message}`);
    throw e;
  }
  const SQL = await freshSqlJs();
  const scratch = guard(() => limitMemory(new SQL.Database(), job), "INVALID_DATASET", job);
  try {
    guard(() => loadTable(scratch, job.table, table), "INVALID_DATASET", job);
    return guard(() => scratch.export(), "INVALID_DATASET", job);
  } finally {
    try {
      scratch.close();
    } catch {
      // the load's own error, if any, is the one to report
    }
  }
}

/**
 * @param {string} path
 * @returns {Buffer}
 */
function readDataset(path) {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new SandboxError("INVALID_DATASET", `invalid dataset: cannot read it (${codeOf(e)})`);
  }
}

/**
 * @param {Database} db
 * @param {string} name
 * @param {import("./csv-core").CsvTable} table
 */
function loadTable(db, name, table) {
  db.run("BEGIN");
  db.run(csv.createTableSql(name, table.columns));
  const insert = db.prepare(csv.insertSql(name, table.columns.length));
  // a bigint is bound as its decimal text, which the INTEGER column's affinity turns back into the exact integer
  for (const row of table.rows) insert.run(row);
  insert.free();
  db.run("COMMIT");
}

/**
 * Caps SQLite's heap (a PRAGMA can only lower it afterwards) and keeps temporary tables and sort runs in that heap,
 * not in sql.js's in-memory files, which the cap would not see.
 * @param {Database} db
 * @param {SqlJob} job
 * @returns {Database}
 */
function limitMemory(db, job) {
  db.run(`PRAGMA hard_heap_limit = ${Math.floor(job.maxMemoryBytes)}`);
  db.run("PRAGMA temp_store = MEMORY");
  return db;
}

// ------------------------------------------------------------------------------------------------------------ query

/**
 * @param {Database} db
 * @param {SqlJob} job
 * @returns {{ columns: string[], rows: unknown[][] }}
 */
function runQuery(db, job) {
  const stmt = guard(() => db.prepare(job.query), "INVALID_QUERY", job);
  refuseTrailingStatement(db, stmt, job);
  const columns = stmt.getColumnNames();
  /** @type {unknown[][]} */
  const rows = [];
  let size = jsonBytes({ columns, rows: [] });
  guard(
    () => {
      while (stmt.step()) {
        const row = stmt.get(null, { useBigInt: true }).map((v, c) => toJsonValue(v, rows.length + 1, columns[c]));
        size += rowBytes(row) + (rows.length ? 1 : 0);
        if (size > job.maxOutputBytes) {
          throw new SandboxError(
            "OUTPUT_TOO_LARGE",
            `output too large: the rows exceed ${job.maxOutputBytes} bytes of JSON after ${rows.length} rows (aggregate, or add a LIMIT with an ORDER BY)`,
          );
        }
        rows.push(row);
      }
    },
    "INVALID_QUERY",
    job,
  );
  stmt.free();
  return { columns, rows };
}

/**
 * sql.js compiles the first statement of a text and silently ignores the rest: make sure the rest is empty.
 * @param {Database} db
 * @param {Statement} stmt
 * @param {SqlJob} job
 */
function refuseTrailingStatement(db, stmt, job) {
  const compiled = stmt.getSQL();
  if (!job.query.startsWith(compiled))
    throw new SandboxError("INVALID_QUERY", "invalid query: cannot tell where the statement ends");
  const rest = job.query.slice(compiled.length);
  for (const extra of guard(() => db.iterateStatements(rest), "INVALID_QUERY", job)) {
    extra.free();
    throw new SandboxError("INVALID_QUERY", "invalid query: several statements; send one query");
  }
}

/**
 * @param {unknown} v a value from sql.js with useBigInt
 * @param {number} row 1-based, for the error message
 * @param {string} column for the error message
 */
function toJsonValue(v, row, column) {
  if (typeof v === "bigint") return v >= -Number.MAX_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER ? Number(v) : v;
  if (typeof v === "number" && !Number.isFinite(v)) {
    throw new SandboxError(
      "INVALID_QUERY",
      `invalid query: row ${row}, column ${JSON.stringify(column)} is ${v}, which JSON cannot carry (CAST it to TEXT or filter it out)`,
    );
  }
  if (v instanceof Uint8Array) return `0x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex")}`;
  return v; // string, number or null
}

/** @param {unknown[]} row */
function rowBytes(row) {
  let n = 1 + row.length; // brackets and commas
  for (const v of row) n += typeof v === "string" ? Buffer.byteLength(JSON.stringify(v)) : String(v).length;
  return n;
}

/** @param {unknown} value */
function jsonBytes(value) {
  return Buffer.byteLength(JSON.stringify(value));
}

// ----------------------------------------------------------------------------------------------------------- errors

/**
 * Runs one sql.js call and turns what it throws (SQLite's message, as an Error or a bare string) into a SandboxError:
 * out of memory → MEMORY_EXCEEDED, a damaged database file → INVALID_DATASET, anything else → `code`.
 * @template T
 * @param {() => T} f
 * @param {string} code
 * @param {SqlJob} job
 * @returns {T}
 */
function guard(f, code, job) {
  try {
    return f();
  } catch (e) {
    if (e instanceof SandboxError) throw e;
    const message = messageOf(e);
    if (/out of memory|\bOOM\b|Cannot enlarge memory|Array buffer allocation failed/i.test(message)) {
      const mib = Math.round(job.maxMemoryBytes / 2 ** 20);
      throw new SandboxError("MEMORY_EXCEEDED", `memory exceeded: SQLite needs more than its ${mib} MiB limit`);
    }
    if (/database disk image is malformed|file is not a database|unsupported file format/i.test(message)) {
      throw new SandboxError("INVALID_DATASET", `invalid dataset: ${message}`);
    }
    if (/attempt to write a readonly database/i.test(message)) {
      throw new SandboxError("INVALID_QUERY", "invalid query: it tries to write; only reads are allowed");
    }
    throw new SandboxError(code, `${code === "INVALID_DATASET" ? "invalid dataset" : "invalid query"}: ${message}`);
  }
}

/** @param {unknown} e */
function messageOf(e) {
  const text = e instanceof Error ? e.message : String(e);
  return text.split("\n")[0];
}

/** @param {unknown} e */
function codeOf(e) {
  return e && typeof e === "object" && "code" in e ? String(e.code) : messageOf(e);
}
