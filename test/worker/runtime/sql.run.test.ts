/**
 * worker/runtime/sql: real queries through the sandbox thread, on CSV and SQLite files made here (the SQLite one with
 * sql.js): the same rows from both formats, exact integers, blobs, NULLs, the limits (deadline, output, memory), the
 * refusals (before any work, and inside the thread when the check is bypassed), bad datasets, and the pinned
 * environment that keeps views and data-driven 'now' reproducible.
 */
import { expect } from "chai";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import initSqlJs from "sql.js";
import { directoryDigest } from "../../../sdk/encoding";
import { Runtime } from "../../../worker/runtime";
import type { RuntimeErrorCode } from "../../../worker/runtime/errors";
import { closeStandbyThreads, runInThread } from "../../../worker/runtime/thread";
import { runSql, tableNameFor, type SqlRunOptions } from "../../../worker/runtime/sql";
import { runtimeFailure } from "../../helpers/runtime";

const MiB = 2 ** 20;
const THREAD_SCRIPT = join(__dirname, "../../../worker/runtime/sql/sql-thread.js");
const FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

const CUSTOMERS_CSV =
  "id,name,segment,ltv\n" +
  "1,Ada,retail,100\n" +
  "2,Grace,enterprise,2500.5\n" +
  "3,Linus,retail,300\n" +
  '4,"Hopper, Grace",enterprise,\n' +
  "9223372036854775807,Max,retail,50\n";


async function expectCode(p: Promise<unknown>, code: RuntimeErrorCode, message?: RegExp): Promise<void> {
  const e = await runtimeFailure(p);
  expect(e.code, e.message).to.equal(code);
  if (message) expect(e.message).to.match(message);
  expect(e.message).not.to.include("\n");
}

describe("sql runtime: running queries", function () {
  let dir: string;
  let csvPath: string;
  let dbPath: string;

  const run = (query: string, extra: Partial<SqlRunOptions> = {}) =>
    runSql({ query, timeoutMs: 10_000, maxOutputBytes: MiB, ...extra });
  const onCsv = (query: string, extra: Partial<SqlRunOptions> = {}) => run(query, { datasetPath: csvPath, table: "customers", ...extra });
  const onDb = (query: string, extra: Partial<SqlRunOptions> = {}) => run(query, { datasetPath: dbPath, ...extra });

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), "concord-sql-"));
    csvPath = join(dir, "customers.csv");
    await writeFile(csvPath, CUSTOMERS_CSV);
    const SQL = await initSqlJs();
    const db = new SQL.Database();
    db.run("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, segment TEXT, ltv REAL, photo BLOB)");
    db.run("INSERT INTO customers VALUES (1, 'Ada', 'retail', 100, x'00ff10'), (2, 'Grace', 'enterprise', 2500.5, NULL)");
    db.run("INSERT INTO customers VALUES (3, 'Linus', 'retail', 300, x''), (4, 'Hopper, Grace', 'enterprise', NULL, NULL)");
    db.run("INSERT INTO customers VALUES (9223372036854775807, 'Max', 'retail', 50, NULL)");
    // a view hiding what the static check refuses: the pinned environment must still make it reproducible
    db.run("CREATE VIEW hidden AS SELECT random() AS r, hex(randomblob(4)) AS b, date('now') AS today, datetime('2020-06-01 12:00:00', 'localtime') AS local");
    db.run("CREATE TABLE events (at TEXT); INSERT INTO events VALUES ('now'), ('2024-01-02 03:04:05')");
    dbPath = join(dir, "customers.db");
    await writeFile(dbPath, db.export());
    db.close();
  });

  after(async function () {
    await closeStandbyThreads();
    await rm(dir, { recursive: true, force: true });
  });

  it("through Runtime.run: the digest, computed from the result in memory, is its output directory's", async function () {
    const runtime = new Runtime();
    for (const [query, dataset] of [
      ["SELECT segment, count(*) AS n, sum(ltv) FROM customers GROUP BY segment ORDER BY segment", { path: csvPath, name: "customers" }],
      ["SELECT name, hex(photo) FROM customers ORDER BY id", { path: dbPath }],
      ["SELECT 1 AS one, 'é' AS e", undefined],
    ] as const) {
      const r = await runtime.run({ runtime: "sql", dataset, params: JSON.stringify({ query }), seed: `0x${"ab".repeat(32)}` });
      try {
        expect(r.digest, query).to.equal(await directoryDigest(r.outputDir));
        expect(r.files).to.deep.equal([{ path: "result.json", size: (await readFile(join(r.outputDir, "result.json"))).length }]);
        expect(r.outputBytes).to.equal(r.files[0].size);
      } finally {
        await rm(r.outputDir, { recursive: true, force: true });
      }
    }
  });

  describe("answers with columns and rows", function () {
    const AVG = "SELECT segment, avg(ltv) FROM customers GROUP BY segment";
    const expected = { columns: ["segment", "avg(ltv)"], rows: [["enterprise", 2500.5], ["retail", 150]] };

    it("SELECT segment, avg(ltv) … GROUP BY segment on a CSV dataset", async function () {
      expect(await onCsv(AVG)).to.deep.equal(expected);
    });

    it("the same query on a SQLite dataset gives the same result", async function () {
      expect(await onDb(AVG)).to.deep.equal(expected);
    });

    it("types CSV columns: INTEGER, TEXT, REAL; empty values are NULL", async function () {
      const r = await onCsv("SELECT typeof(id), typeof(name), typeof(ltv), ltv FROM customers ORDER BY id");
      expect(r.rows).to.deep.equal([
        ["integer", "text", "real", 100],
        ["integer", "text", "real", 2500.5],
        ["integer", "text", "real", 300],
        ["integer", "text", "null", null],
        ["integer", "text", "real", 50],
      ]);
    });

    it("keeps integers beyond 2^53 exact, as bigints, from both formats", async function () {
      for (const r of [await onCsv("SELECT id, id - 1 FROM customers WHERE name = 'Max'"), await onDb("SELECT id, id - 1 FROM customers WHERE name = 'Max'")]) {
        expect(r.rows).to.deep.equal([[9223372036854775807n, 9223372036854775806n]]);
      }
      const r = await run("SELECT 9007199254740991, -9007199254740991, 9007199254740992, -9223372036854775808");
      expect(r.rows).to.deep.equal([[9007199254740991, -9007199254740991, 9007199254740992n, -9223372036854775808n]]);
    });

    it("writes blobs as 0x hex and NULLs as null", async function () {
      const r = await onDb("SELECT id, photo FROM customers ORDER BY id");
      expect(r.rows).to.deep.equal([[1, "0x00ff10"], [2, null], [3, "0x"], [4, null], [9223372036854775807n, null]]);
      expect((await run("SELECT x'DEADbeef', NULL, 1.5, 'é'")).rows).to.deep.equal([["0xdeadbeef", null, 1.5, "é"]]);
    });

    it("runs a query without a dataset on an empty database", async function () {
      expect(await run("VALUES (1 + 1, 'two')")).to.deep.equal({ columns: ["column1", "column2"], rows: [[2, "two"]] });
      await expectCode(run("SELECT * FROM customers"), "INVALID_QUERY", /^invalid query: no such table: customers$/);
    });

    it("loads a CSV into the table `dataset` by default, and names CSV columns exactly", async function () {
      const path = join(dir, "people.csv");
      await writeFile(path, '"first name","say ""hi""",select\nAda,1,2\n');
      const r = await run('SELECT "first name", "say ""hi""", "select" FROM dataset', { datasetPath: path });
      expect(r).to.deep.equal({ columns: ["first name", 'say "hi"', "select"], rows: [["Ada", 1, 2]] });
    });

    it("keeps rows of a query that returns none, and duplicate column names", async function () {
      expect(await onCsv("SELECT id AS a, name AS a FROM customers WHERE id < 0")).to.deep.equal({ columns: ["a", "a"], rows: [] });
    });
  });

  describe("keeps a CSV dataset loaded (its database image) for the next job on the same file", function () {
    const ROWS = "SELECT id, name, segment, ltv FROM customers ORDER BY id";

    it("gives the same rows from the image as from the first load, in one thread and in another", async function () {
      await closeStandbyThreads(); // a thread that has never loaded this file
      const first = await onCsv(ROWS);
      const again = await onCsv(ROWS);
      expect(again).to.deep.equal(first);
      expect(first.rows).to.have.length(5);
      const [a, b] = await Promise.all([onCsv(ROWS), onCsv(ROWS)]); // two jobs at once: two threads
      expect([a, b]).to.deep.equal([first, first]);
    });

    it("keys the image by the file's content and the table name, not its path", async function () {
      const path = join(dir, "changing.csv");
      await writeFile(path, "k,v\n1,one\n");
      expect((await run("SELECT * FROM t", { datasetPath: path, table: "t" })).rows).to.deep.equal([[1, "one"]]);
      await writeFile(path, "k,v\n2,two\n3,three\n");
      expect((await run("SELECT * FROM t ORDER BY k", { datasetPath: path, table: "t" })).rows).to.deep.equal([[2, "two"], [3, "three"]]);
      expect((await run("SELECT count(*) FROM other", { datasetPath: path, table: "other" })).rows).to.deep.equal([[2]]);
      await expectCode(run("SELECT * FROM t", { datasetPath: path, table: "other" }), "INVALID_QUERY", /no such table: t/);
    });

    it("SQLite's own random source is the same on a first load and from the image (the check bypassed)", async function () {
      await closeStandbyThreads(); // a thread that has never loaded this file
      const job = { datasetPath: csvPath, table: "customers", query: "SELECT random(), hex(randomblob(8))", maxOutputBytes: MiB, maxMemoryBytes: 64 * MiB };
      const first = await runInThread(THREAD_SCRIPT, job, { timeoutMs: 10_000 });
      expect(await runInThread(THREAD_SCRIPT, job, { timeoutMs: 10_000 })).to.deep.equal(first);
    });

    it("sql.js's database file name (pragma_database_list) is the same on a first load and from the image", async function () {
      await closeStandbyThreads();
      const q = "SELECT file FROM pragma_database_list";
      const first = await onCsv(q);
      expect(await onCsv(q)).to.deep.equal(first);
      expect(first.rows[0][0]).to.match(/dbfile_\d+/);
    });
  });

  describe("enforces its limits", function () {
    it("stops a query that runs forever at the deadline, and the next query still runs", async function () {
      await expectCode(run(FOREVER, { timeoutMs: 300 }), "DEADLINE_EXCEEDED", /deadline exceeded/);
      expect((await onCsv("SELECT count(*) FROM customers")).rows).to.deep.equal([[5]]);
    });

    it("refuses rows beyond the output limit", async function () {
      const many = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) SELECT x FROM c";
      await expectCode(run(many, { maxOutputBytes: 10_000 }), "OUTPUT_TOO_LARGE", /exceed 10000 bytes/);
      expect((await run(many, { maxOutputBytes: MiB })).rows).to.have.length(100_000);
    });

    it("refuses a query that needs more SQLite memory than the limit", async function () {
      const big = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT length(group_concat(x)) FROM c";
      await expectCode(run(big, { maxMemoryBytes: 4 * MiB }), "MEMORY_EXCEEDED", /4 MiB/);
    });

    it("stops when cancelled", async function () {
      const controller = new AbortController();
      const p = run(FOREVER, { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      await expectCode(p, "CANCELLED");
    });
  });

  describe("refuses queries", function () {
    it("refuses a write, and a non-verifiable query, before any work (the dataset is not even read)", async function () {
      const missing = join(dir, "does-not-exist.csv");
      await expectCode(run("DELETE FROM customers", { datasetPath: missing }), "INVALID_QUERY", /DELETE writes/);
      await expectCode(run("SELECT random()", { datasetPath: missing }), "NON_DETERMINISTIC_QUERY", /random\(\)/);
      await expectCode(run("SELECT * FROM customers LIMIT 1", { datasetPath: missing }), "NON_DETERMINISTIC_QUERY", /LIMIT without ORDER BY/);
    });

    it("passes SQLite's own error on as INVALID_QUERY", async function () {
      await expectCode(onCsv("SELECT nosuch FROM customers"), "INVALID_QUERY", /^invalid query: no such column: nosuch$/);
    });

    it("refuses a REAL that JSON cannot carry", async function () {
      await expectCode(run("SELECT 1e999 AS big"), "INVALID_QUERY", /row 1, column "big" is Infinity/);
    });

    it("refuses a table name that is not an identifier", async function () {
      await expectCode(onCsv("SELECT 1", { table: "my table" }), "INVALID_DATASET", /table name "my table"/);
      await expectCode(onCsv("SELECT 1", { table: "sqlite_master" }), "INVALID_DATASET", /table name/);
      expect([tableNameFor("customers"), tableNameFor("my customers.csv"), tableNameFor("sqlite_x"), tableNameFor(undefined)]).to.deep.equal([
        "customers",
        "dataset",
        "dataset",
        "dataset",
      ]);
    });

    describe("inside the thread, should the check be bypassed", function () {
      const job = (query: string) => ({ datasetPath: dbPath, table: "dataset", query, maxOutputBytes: MiB, maxMemoryBytes: 64 * MiB });

      it("refuses a write (query_only)", async function () {
        await expectCode(runInThread(THREAD_SCRIPT, job("DELETE FROM customers"), { timeoutMs: 10_000 }), "INVALID_QUERY", /tries to write/);
        await expectCode(runInThread(THREAD_SCRIPT, job("PRAGMA user_version = 5"), { timeoutMs: 10_000 }), "INVALID_QUERY", /tries to write/);
      });

      it("refuses a second statement instead of ignoring it", async function () {
        await expectCode(runInThread(THREAD_SCRIPT, job("SELECT 1; DELETE FROM customers"), { timeoutMs: 10_000 }), "INVALID_QUERY", /several statements/);
        expect(await runInThread(THREAD_SCRIPT, job("SELECT 1; -- only a comment"), { timeoutMs: 10_000 })).to.deep.equal({ columns: ["1"], rows: [[1]] });
      });
    });
  });

  describe("refuses datasets it cannot read (INVALID_DATASET)", function () {
    it("a bad CSV, with the line number", async function () {
      const path = join(dir, "ragged.csv");
      await writeFile(path, "a,b\n1,2\n3\n");
      await expectCode(run("SELECT * FROM dataset", { datasetPath: path }), "INVALID_DATASET", /^invalid dataset: line 3: 1 field where the header has 2$/);
    });

    it("a garbage file", async function () {
      const path = join(dir, "garbage.bin");
      await writeFile(path, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0xff, 0x00, 0xfe, 0x80, 0x81]));
      await expectCode(run("SELECT 1", { datasetPath: path }), "INVALID_DATASET", /not a SQLite database nor a UTF-8 CSV file/);
    });

    it("a file with a SQLite header and a damaged body", async function () {
      const path = join(dir, "damaged.db");
      const bytes = Buffer.alloc(8192, 0xa5);
      Buffer.from("SQLite format 3\0", "latin1").copy(bytes);
      await writeFile(path, bytes);
      await expectCode(run("SELECT 1", { datasetPath: path }), "INVALID_DATASET", /invalid dataset: /);
    });

    it("a file that does not exist", async function () {
      await expectCode(run("SELECT 1", { datasetPath: join(dir, "nope.csv") }), "INVALID_DATASET", /cannot read it \(ENOENT\)/);
    });
  });

  describe("pins the environment, so that what the check cannot see is still reproducible", function () {
    it("a view calling random(), randomblob() and date('now') gives the same rows on every run, with a frozen clock", async function () {
      const first = await onDb("SELECT * FROM hidden");
      const second = await onDb("SELECT * FROM hidden");
      expect(second).to.deep.equal(first);
      expect(first.rows[0][2]).to.equal("1970-01-01");
    });

    it("a 'now' read from the data is the frozen clock", async function () {
      const r = await onDb("SELECT datetime(at) FROM events ORDER BY rowid");
      expect(r.rows).to.deep.equal([["1970-01-01 00:00:00"], ["2024-01-02 03:04:05"]]);
    });

    it("'localtime' in a view is UTC whatever the host's time zone", async function () {
      const saved = process.env.TZ;
      process.env.TZ = "America/New_York";
      try {
        if (new Date(2020, 5, 1).getTimezoneOffset() !== 240) this.skip(); // the host cannot switch zones
        await closeStandbyThreads(); // the run's thread starts in the new zone
        expect((await onDb("SELECT local FROM hidden")).rows).to.deep.equal([["2020-06-01 12:00:00"]]);
      } finally {
        if (saved === undefined) delete process.env.TZ;
        else process.env.TZ = saved;
      }
    });

    it("sql.js's database file name (pragma_database_list) is the same on every run", async function () {
      const q = "SELECT file FROM pragma_database_list";
      expect(await run(q)).to.deep.equal(await run(q));
    });
  });
});
