/**
 * worker/runtime/sql/check: the static gate of the sql runtime. Table-driven: queries that must pass, queries that
 * must be refused with their code and message; then the tokenizer on its own, and fast-check properties showing that
 * string literals and comments hide nothing and trigger nothing.
 */
import { expect } from "chai";
import fc from "fast-check";
import { RuntimeError, type RuntimeErrorCode } from "../../../worker/runtime/errors";
import { checkQuery } from "../../../worker/runtime/sql/check";
import { tokenize } from "../../../worker/runtime/sql/lexer";

function refusal(sql: string): RuntimeError {
  try {
    checkQuery(sql);
  } catch (e) {
    expect(e).to.be.instanceOf(RuntimeError);
    return e as RuntimeError;
  }
  throw new Error(`expected a refusal of ${JSON.stringify(sql)}`);
}

describe("sql runtime: query check", function () {
  describe("accepts one read-only, reproducible statement", function () {
    const accepted: [string, string][] = [
      ["a plain SELECT", "SELECT 1"],
      ["a trailing semicolon", "select 1;"],
      ["comments around and a semicolon", "  /* leading */ SELECT 1 /* c */ ; -- after"],
      ["a line comment without a final newline", "SELECT 1 -- the end"],
      ["VALUES", "VALUES (1, 2), (3, 4)"],
      ["WITH … SELECT", "WITH c AS (SELECT 1 AS x) SELECT x FROM c"],
      ["WITH RECURSIVE with a column list", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10) SELECT x FROM c"],
      ["several CTEs, [NOT] MATERIALIZED", "WITH a AS NOT MATERIALIZED (SELECT 1), b AS MATERIALIZED (SELECT 2) SELECT * FROM a, b"],
      ["WITH … VALUES", "WITH c AS (SELECT 1) VALUES (1)"],
      ["a CTE named like a keyword that may be a name (replace)", "WITH replace AS (SELECT 1) SELECT * FROM replace"],
      ["'random()' inside a string literal", "SELECT 'random()' AS s"],
      ["a string holding a quote, a semicolon and random()", "SELECT 'it''s; random(); DROP TABLE t'"],
      ["columns named random, in every quoting", 'SELECT random, "random", [random], `random` FROM t'],
      ["a CTE named random with a column list", "WITH random(x) AS (SELECT 1) SELECT x FROM random"],
      ["a name that merely starts like random", "SELECT random_value, randomness FROM t"],
      ["replace() as a function", "SELECT replace(name, 'a', 'b') FROM t"],
      ["comments that hide a LIMIT, a statement and random()", "SELECT * FROM t -- LIMIT 5\n/* ; DROP TABLE t; random() */"],
      ["ORDER BY … LIMIT", "SELECT * FROM t ORDER BY id LIMIT 10"],
      ["ORDER BY … LIMIT … OFFSET", "SELECT * FROM t ORDER BY id LIMIT 10 OFFSET 5"],
      ["ORDER BY … LIMIT offset, count", "SELECT * FROM t ORDER BY id LIMIT 5, 10"],
      ["ORDER BY on a non-unique key with LIMIT (ties: see the module header)", "SELECT * FROM t ORDER BY segment LIMIT 3"],
      ["a nested LIMIT with its own ORDER BY", "SELECT * FROM (SELECT * FROM t ORDER BY a LIMIT 3) ORDER BY b LIMIT 1"],
      ["a compound SELECT ordered as a whole", "SELECT a FROM t UNION ALL SELECT b FROM u ORDER BY 1 LIMIT 2"],
      ["IN (subquery) with ORDER BY and LIMIT", "SELECT * FROM t WHERE a IN (SELECT b FROM u ORDER BY b LIMIT 3) ORDER BY a LIMIT 1"],
      ["ORDER BY a subquery, then LIMIT", "SELECT * FROM t ORDER BY (SELECT 1) LIMIT 1"],
      ["EXISTS without LIMIT", "SELECT count(*) FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)"],
      ["a window with ORDER BY (no LIMIT)", "SELECT row_number() OVER (ORDER BY a) FROM t"],
      ["an ordered aggregate", "SELECT group_concat(x ORDER BY x) FROM t"],
      ["date functions on data", "SELECT date(created), strftime('%Y', created), julianday('2024-01-01'), unixepoch('2024-01-01', 'start of month') FROM t"],
      ["Date() with a time value, any case", "SELECT Date('2024-01-01'), DATETIME(ts, 'unixepoch', '+1 day') FROM t"],
      ["timediff of two values", "SELECT timediff('2024-02-01', '2024-01-01')"],
      ["'now' in a query without any date function", "SELECT 'now' AS word, status FROM t WHERE status <> 'now'"],
      ["a string that reads like a time keyword", "SELECT 'current_timestamp', \"current_time\" FROM t"],
      ["the pinned engine's version", "SELECT sqlite_version(), sqlite_source_id()"],
      ["literals and parameters of every kind", "SELECT x'00ff', X'', 0x1F, 1_000, 1.5e3, .5, 5., ?, ?2, :name, @p, $v, $a::b(c), #n"],
      ["JSON operators", "SELECT a -> '$.b', a ->> '$.c', a || b, a << 1, a >> 1, a != b, a <> b, a == b FROM t"],
      ["non-ASCII identifiers", "SELECT café, \u00a0x FROM t"],
      ["a UTF-8 BOM before the query", "\uFEFFSELECT 1"],
    ];
    for (const [what, sql] of accepted) {
      it(what, function () {
        expect(checkQuery(sql)).to.deep.equal({ ok: true });
      });
    }
  });

  describe("refuses what is not one read-only statement (INVALID_QUERY)", function () {
    const refused: [string, string, RegExp][] = [
      ["an empty query", "", /^invalid query: empty query$/],
      ["only a comment", "   -- nothing\n", /empty query/],
      ["only a semicolon", ";", /empty query/],
      ["two statements", "SELECT 1; SELECT 2", /several statements/],
      ["an empty second statement", "SELECT 1;;", /several statements/],
      ["a statement hidden after a semicolon", "SELECT 1; DROP TABLE t", /several statements/],
      ["PRAGMA", "PRAGMA query_only = 0", /PRAGMA is not allowed/],
      ["ATTACH", "ATTACH DATABASE 'x.db' AS x", /ATTACH is not allowed/],
      ["DETACH", "DETACH x", /DETACH is not allowed/],
      ["INSERT", "INSERT INTO t VALUES (1)", /INSERT writes/],
      ["UPDATE", "update t set a = 1", /UPDATE writes/],
      ["DELETE", "DELETE FROM t", /DELETE writes/],
      ["REPLACE", "REPLACE INTO t VALUES (1)", /REPLACE writes/],
      ["CREATE", "CREATE TABLE x(a)", /CREATE writes/],
      ["DROP", "DROP TABLE t", /DROP writes/],
      ["ALTER", "ALTER TABLE t ADD b", /ALTER writes/],
      ["VACUUM", "VACUUM", /VACUUM writes/],
      ["REINDEX", "REINDEX", /REINDEX writes/],
      ["ANALYZE", "ANALYZE", /ANALYZE writes/],
      ["BEGIN", "BEGIN", /BEGIN is not allowed/],
      ["COMMIT", "COMMIT", /COMMIT is not allowed/],
      ["EXPLAIN", "EXPLAIN SELECT 1", /EXPLAIN is not allowed/],
      ["WITH … INSERT", "WITH c AS (SELECT 1) INSERT INTO t SELECT * FROM c", /WITH … INSERT writes/],
      ["WITH … DELETE", "WITH c AS (SELECT 1) DELETE FROM t", /WITH … DELETE writes/],
      ["WITH … UPDATE after several CTEs", "WITH a AS (SELECT 1), b(x) AS (SELECT 2) UPDATE t SET a = 1", /WITH … UPDATE writes/],
      ["a malformed WITH", "WITH c SELECT 1", /expected AS/],
      ["a parenthesised statement", "(SELECT 1)", /starts with SELECT, WITH or VALUES/],
      ["an unknown statement", "SHOW TABLES", /not "SHOW"/],
      ["an unterminated string", "SELECT 'unterminated", /unterminated string literal at character 8/],
      ["an unterminated quoted identifier", 'SELECT "unterminated', /unterminated "quoted" identifier/],
      ["an unterminated [identifier]", "SELECT [unterminated", /unterminated \[identifier\]/],
      ["an unterminated comment", "SELECT 1 /* unterminated", /unterminated \/\* comment/],
      ["a blob literal with an odd number of digits", "SELECT x'abc'", /malformed blob literal/],
      ["a blob literal with a non-hex digit", "SELECT x'zz'", /malformed blob literal/],
      ["a number glued to a name", "SELECT 12abc", /malformed number "12a"/],
      ["a NUL character (SQLite would stop reading there)", "SELECT 1\u0000; DROP TABLE t", /NUL character/],
      ["a lone surrogate", "SELECT '\uD800'", /lone surrogate/],
      ["a parameter without a name", "SELECT $", /malformed parameter/],
      ["an unknown character", "SELECT ! 1", /unrecognized character "!"/],
      ["an unbalanced (", "SELECT (1", /unbalanced "\("/],
      ["an unbalanced )", "SELECT 1)", /unbalanced "\)"/],
      ["load_extension()", "SELECT load_extension('evil.so')", /load_extension\(\) is not allowed/],
    ];
    for (const [what, sql, message] of refused) {
      it(what, function () {
        const e = refusal(sql);
        expect(e.code, e.message).to.equal("INVALID_QUERY" satisfies RuntimeErrorCode);
        expect(e.message).to.match(/^invalid query: /).and.to.match(message);
        expect(e.message).not.to.include("\n");
      });
    }
  });

  describe("refuses what workers could not reproduce (NON_DETERMINISTIC_QUERY)", function () {
    const refused: [string, string, RegExp][] = [
      ["random()", "SELECT random()", /^non-verifiable query: random\(\) gives each worker a different value$/],
      ["RANDOM ( ) with spaces", "SELECT RANDOM ( )", /RANDOM\(\) gives each worker a different value/],
      ['"random"() quoted', 'SELECT "random"()', /"random"\(\)/],
      ["[Random]() bracketed", "SELECT [Random]()", /\[Random\]\(\)/],
      ["random() nested in an expression", "SELECT abs(random()) % 10", /random\(\)/],
      ["random() in ORDER BY", "SELECT * FROM t ORDER BY random()", /random\(\)/],
      ["random() after a comment that mentions it", "SELECT 'x' /* random() */, random()", /random\(\)/],
      ["random() behind a Tcl-style parameter that swallows a quote", "SELECT $a(') , random(), $b(')", /random\(\)/],
      ["randomblob()", "SELECT hex(RandomBlob(4))", /RandomBlob\(\) gives each worker a different value/],
      ["changes()", "SELECT changes()", /changes\(\) describes the connection's earlier writes/],
      ["total_changes()", "SELECT total_changes()", /total_changes\(\)/],
      ["last_insert_rowid()", "SELECT last_insert_rowid()", /last_insert_rowid\(\)/],
      ["CURRENT_TIMESTAMP", "SELECT CURRENT_TIMESTAMP", /CURRENT_TIMESTAMP reads the worker's clock/],
      ["current_date in lower case", "SELECT current_date", /CURRENT_DATE reads the worker's clock/],
      ["CURRENT_TIME in a WHERE", "SELECT * FROM t WHERE t.time < CURRENT_TIME", /CURRENT_TIME/],
      ["date('now')", "SELECT date('now')", /'now' in a query calling date\(\) reads the worker's clock/],
      ["datetime('NOW') in upper case", "SELECT datetime('NOW')", /'NOW'/],
      ["julianday('now')", "SELECT julianday('now')", /'now'/],
      ["unixepoch('now', '+1 day')", "SELECT unixepoch('now', '+1 day')", /'now'/],
      ["strftime('%s', 'now')", "SELECT strftime('%s', 'now')", /'now'/],
      ["timediff('now', …)", "SELECT timediff('now', '2020-01-01')", /'now'/],
      ['time("now") (an unknown double-quoted name is a string)', 'SELECT time("now")', /"now"/],
      ["date(x'6e6f77'), 'now' as a blob", "SELECT date(x'6e6f77')", /x'6e6f77'/],
      ["'now' flowing into a date function from a subquery", "SELECT date(d) FROM (SELECT 'now' AS d)", /'now'/],
      ["date() without a time value", "SELECT date()", /date\(\) without a time value reads the worker's clock/],
      ["datetime ( ) with spaces", "SELECT datetime ( )", /datetime\(\) without a time value/],
      ["time()", "SELECT time()", /time\(\)/],
      ["julianday()", "SELECT julianday()", /julianday\(\)/],
      ["unixepoch()", "SELECT unixepoch()", /unixepoch\(\)/],
      ["strftime() with only a format", "SELECT strftime('%Y')", /strftime\(\) without a time value/],
      ["the 'localtime' modifier", "SELECT datetime(ts, 'localtime') FROM t", /'localtime' in a query calling datetime\(\) depends on the worker's time zone/],
      ["the 'utc' modifier", "SELECT datetime(ts, 'utc') FROM t", /'utc'/],
      ["LIMIT without ORDER BY", "SELECT * FROM t LIMIT 10", /^non-verifiable query: LIMIT without ORDER BY picks arbitrary rows/],
      ["limit in lower case", "select * from t limit 1", /LIMIT without ORDER BY/],
      ["LIMIT … OFFSET without ORDER BY", "SELECT * FROM t LIMIT 10 OFFSET 5", /LIMIT without ORDER BY/],
      ["a nested subquery with LIMIT and no ORDER BY", "SELECT * FROM (SELECT * FROM (SELECT * FROM t LIMIT 3))", /LIMIT without ORDER BY/],
      ["ORDER BY in the outer query, LIMIT in the subquery", "SELECT * FROM (SELECT * FROM t LIMIT 3) ORDER BY a", /LIMIT without ORDER BY/],
      ["both levels limited, only the outer ordered", "SELECT * FROM (SELECT * FROM t LIMIT 3) ORDER BY a LIMIT 1", /LIMIT without ORDER BY/],
      ["IN (subquery LIMIT)", "SELECT * FROM t WHERE a IN (SELECT b FROM u LIMIT 1) ORDER BY a", /LIMIT without ORDER BY/],
      ["a scalar subquery with LIMIT", "SELECT (SELECT a FROM t LIMIT 1)", /LIMIT without ORDER BY/],
      ["a CTE with LIMIT", "WITH c AS (SELECT * FROM t LIMIT 2) SELECT * FROM c ORDER BY 1", /LIMIT without ORDER BY/],
      ["a window's ORDER BY does not order the rows", "SELECT row_number() OVER (ORDER BY a) FROM t LIMIT 5", /LIMIT without ORDER BY/],
      ["an aggregate's ORDER BY does not order the rows", "SELECT group_concat(x ORDER BY x) FROM t LIMIT 1", /LIMIT without ORDER BY/],
    ];
    for (const [what, sql, message] of refused) {
      it(what, function () {
        const e = refusal(sql);
        expect(e.code, e.message).to.equal("NON_DETERMINISTIC_QUERY" satisfies RuntimeErrorCode);
        expect(e.message).to.match(/^non-verifiable query: /).and.to.match(message);
        expect(e.message).not.to.include("\n");
      });
    }
  });

  describe("tokenizer", function () {
    it("reads every kind of token as SQLite does, dropping whitespace and comments", function () {
      const tokens = tokenize("SELECT [a b], `c``d`, \"e\"\"f\", 'g''h', x'0A', 1_0.5e-3, $a::b(c), ?1 -- x\n/* y */ ->>");
      expect(tokens.map((t) => [t.kind, t.value])).to.deep.equal([
        ["word", "SELECT"],
        ["quoted", "a b"],
        ["op", ","],
        ["quoted", "c`d"],
        ["op", ","],
        ["quoted", 'e"f'],
        ["op", ","],
        ["string", "g'h"],
        ["op", ","],
        ["blob", "0A"],
        ["op", ","],
        ["number", "1_0.5e-3"],
        ["op", ","],
        ["param", "$a::b(c)"],
        ["op", ","],
        ["param", "?1"],
        ["op", "->>"],
      ]);
    });

    it("keeps the text and position of each token", function () {
      const [, name] = tokenize("SELECT  RaNdOm ( )");
      expect(name).to.deep.include({ kind: "word", text: "RaNdOm", start: 8 });
    });

    it("ends a [identifier] at the first ] (no escape), like SQLite", function () {
      expect(tokenize("[a']").map((t) => t.kind)).to.deep.equal(["quoted"]);
    });
  });

  describe("properties", function () {
    const textArb = fc.string({ unit: "grapheme", maxLength: 40 }).filter((s) => !s.includes("\0"));

    it("any string literal is inert: SELECT '<anything>' is accepted", function () {
      fc.assert(
        fc.property(textArb, (s) => {
          expect(checkQuery(`SELECT '${s.replace(/'/g, "''")}' AS v`)).to.deep.equal({ ok: true });
        }),
      );
    });

    it("any block comment is inert: the verdict is the one without it", function () {
      const queries = ["SELECT 1", "SELECT random()", "SELECT * FROM t LIMIT 1", "DELETE FROM t"];
      fc.assert(
        fc.property(textArb.filter((s) => !s.includes("*/")), fc.constantFrom(...queries), (s, q) => {
          const verdict = (sql: string) => {
            try {
              return checkQuery(sql).ok;
            } catch (e) {
              return (e as RuntimeError).code;
            }
          };
          expect(verdict(`/* ${s} */ ${q} /* ${s} */`)).to.equal(verdict(q));
        }),
      );
    });

    it("never throws anything but a RuntimeError, whatever the text", function () {
      fc.assert(
        fc.property(fc.string({ unit: "binary", maxLength: 60 }), (s) => {
          try {
            checkQuery(s);
          } catch (e) {
            expect(e).to.be.instanceOf(RuntimeError);
          }
        }),
      );
    });
  });
});
