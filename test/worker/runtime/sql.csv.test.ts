/**
 * worker/runtime/sql/csv: strict RFC 4180 parsing with line numbers, the header rules, deterministic column types,
 * and identifiers that reach SQLite exactly. Table-driven, plus a fast-check round trip (any table written as CSV
 * reads back the same).
 */
import { expect } from "chai";
import fc from "fast-check";
import initSqlJs from "sql.js";
import {
  CsvError,
  MAX_COLUMNS,
  convertValue,
  createTableSql,
  inferColumnType,
  insertSql,
  parseCsvRecords,
  quoteIdentifier,
  readCsv,
  type ColumnType,
} from "../../../worker/runtime/sql/csv";

const utf8 = (s: string) => new TextEncoder().encode(s);

function csvError(f: () => unknown): CsvError {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(CsvError);
    return e as CsvError;
  }
  throw new Error("expected a CsvError");
}

describe("sql runtime: CSV datasets", function () {
  describe("parses RFC 4180", function () {
    const cases: [string, string, string[][]][] = [
      ["LF line ends", "a,b\n1,2\n", [["a", "b"], ["1", "2"]]],
      ["CRLF line ends", "a,b\r\n1,2\r\n", [["a", "b"], ["1", "2"]]],
      ["no final line break", "a,b\n1,2", [["a", "b"], ["1", "2"]]],
      ["a BOM, dropped", "\uFEFFa,b\n1,2", [["a", "b"], ["1", "2"]]],
      ["quoted fields with commas, quotes and line breaks", 'a,b\n"x, y","say ""hi""\r\nbye"\n', [["a", "b"], ["x, y", 'say "hi"\r\nbye']]],
      ["empty fields, quoted or not, and a trailing comma", 'a,b,c\n,"",\n', [["a", "b", "c"], ["", "", ""]]],
      ["an empty line is a record of one empty field", "a\n\n1\n", [["a"], [""], ["1"]]],
      ["spaces are kept", " a , b \n 1 , 2 \n", [[" a ", " b "], [" 1 ", " 2 "]]],
      ["an empty text", "", []],
    ];
    for (const [what, text, records] of cases) {
      it(what, function () {
        expect(parseCsvRecords(text).records).to.deep.equal(records);
      });
    }

    it("gives the line where each record starts, counting line breaks inside quotes", function () {
      expect(parseCsvRecords('a,b\n"1\n2\n3",x\n4,y\n').lines).to.deep.equal([1, 2, 5]);
    });
  });

  describe("refuses malformed files with the line number", function () {
    const cases: [string, string | Uint8Array, RegExp, number | undefined][] = [
      ["a row with too few fields", "a,b,c\n1,2,3\n4,5\n", /^line 3: 2 fields where the header has 3$/, 3],
      ["a row with too many fields", "a,b\n1,2\n3,4,5\n", /^line 3: 3 fields where the header has 2$/, 3],
      ["a ragged row after a multi-line quoted field", 'a,b\n"x\ny",1\n2\n', /^line 4: 1 field where/, 4],
      ["a blank line in a two-column file", "a,b\n1,2\n\n", /^line 3: 1 field where the header has 2/, 3],
      ["an unterminated quote (line where it opened)", 'a,b\n1,2\n3,"oops\n4,5\n', /^line 3: quoted field never closed$/, 3],
      ["a quote inside an unquoted field", 'a,b\n1,x"y\n', /^line 2: quote inside an unquoted field/, 2],
      ["text after a closing quote", 'a,b\n1,"x"y\n', /^line 2: unexpected character after a closing quote/, 2],
      ["a bare carriage return", "a,b\r1,2\n", /^line 1: carriage return not followed by a line feed/, 1],
      ["a NUL byte (binary data)", "a,b\n1,\u00002\n", /^line 2: NUL character/, 2],
      ["invalid UTF-8", Uint8Array.from([0x61, 0x0a, 0xff, 0xfe, 0x0a]), /invalid UTF-8/, undefined],
      ["an empty file", "", /empty CSV: no header row/, undefined],
      ["a file holding only a BOM", utf8("\uFEFF"), /empty CSV/, undefined],
      ["duplicate column names, whatever their ASCII case", "id,Name,NAME\n", /^line 1: duplicate column name "NAME" \(columns 2 and 3\)$/, 1],
      ["an empty column name", "a,,c\n1,2,3\n", /^line 1: column 2 has an empty name$/, 1],
      ["a blank column name", "a, \n1,2\n", /column 2 has an empty name/, 1],
      ["more columns than SQLite allows", Array.from({ length: MAX_COLUMNS + 1 }, (_, k) => `c${k}`).join(",") + "\n", /2001 columns, SQLite allows at most 2000/, 1],
    ];
    for (const [what, input, message, line] of cases) {
      it(what, function () {
        const e = csvError(() => readCsv(input));
        expect(e.message).to.match(message);
        expect(e.message).not.to.include("\n");
        expect(e.line).to.equal(line);
      });
    }
  });

  describe("infers each column's type from every value", function () {
    const cases: [string, string[], ColumnType][] = [
      ["integers", ["1", "-2", "0"], "INTEGER"],
      ["integers with empty values", ["", "3", ""], "INTEGER"],
      ["-0 is an integer", ["-0"], "INTEGER"],
      ["the int64 extremes", ["9223372036854775807", "-9223372036854775808"], "INTEGER"],
      ["one past int64 max: REAL", ["1", "9223372036854775808"], "REAL"],
      ["one past int64 min: REAL", ["-9223372036854775809"], "REAL"],
      ["integers and decimals", ["1", "2.5"], "REAL"],
      ["exponents", ["1e3", "1E-3", "2.5e+10"], "REAL"],
      ["a number beyond a double's range: TEXT", ["1e999"], "TEXT"],
      ["one word among numbers", ["1", "2.5", "x"], "TEXT"],
      ["leading zeros (codes, zip codes)", ["007", "12"], "TEXT"],
      ["a leading +", ["+1"], "TEXT"],
      ["surrounding spaces", [" 1"], "TEXT"],
      ["a trailing dot", ["1."], "TEXT"],
      ["a leading dot", [".5"], "TEXT"],
      ["hex", ["0x10"], "TEXT"],
      ["digit separators", ["1_000"], "TEXT"],
      ["NaN and Infinity", ["NaN", "Infinity"], "TEXT"],
      ["no value at all", ["", ""], "TEXT"],
      ["no row at all", [], "TEXT"],
    ];
    for (const [what, values, type] of cases) {
      it(`${what}: ${type}`, function () {
        expect(inferColumnType(values)).to.equal(type);
      });
    }

    it("converts values: empty is null, safe integers are numbers, larger ones exact bigints", function () {
      expect(convertValue("", "INTEGER")).to.equal(null);
      expect(convertValue("", "TEXT")).to.equal(null);
      expect(convertValue("9007199254740991", "INTEGER")).to.equal(9007199254740991);
      expect(convertValue("9007199254740993", "INTEGER")).to.equal(9007199254740993n);
      expect(convertValue("-9223372036854775808", "INTEGER")).to.equal(-9223372036854775808n);
      expect(convertValue("2.50", "REAL")).to.equal(2.5);
      expect(convertValue("3", "REAL")).to.equal(3);
      expect(convertValue("007", "TEXT")).to.equal("007");
    });

    it("reads a whole file into typed columns and rows", function () {
      const table = readCsv(utf8("\uFEFFid,segment,ltv,zip\r\n1,retail,10.5,02134\r\n9223372036854775807,,20,\r\n"));
      expect(table.columns).to.deep.equal([
        { name: "id", type: "INTEGER" },
        { name: "segment", type: "TEXT" },
        { name: "ltv", type: "REAL" },
        { name: "zip", type: "TEXT" },
      ]);
      expect(table.rows).to.deep.equal([
        [1, "retail", 10.5, "02134"],
        [9223372036854775807n, null, 20, null],
      ]);
    });
  });

  describe("builds SQL that names columns exactly", function () {
    it("quotes identifiers, doubling inner quotes", function () {
      expect(quoteIdentifier("a")).to.equal('"a"');
      expect(quoteIdentifier('say "hi"')).to.equal('"say ""hi"""');
      expect(createTableSql("t", [{ name: "a b", type: "INTEGER" }, { name: "c", type: "TEXT" }])).to.equal('CREATE TABLE "t" ("a b" INTEGER, "c" TEXT)');
      expect(insertSql("t", 3)).to.equal('INSERT INTO "t" VALUES (?, ?, ?)');
    });

    it("gives SQLite the header names unchanged, whatever they contain (no injection)", async function () {
      const names = ['x" TEXT); DROP TABLE t; --', "first name", "[br]", "`tick`", "'q'", "é", "select"];
      const SQL = await initSqlJs();
      const db = new SQL.Database();
      const table = readCsv(names.map((n) => `"${n.replace(/"/g, '""')}"`).join(",") + "\n" + names.map((_, k) => String(k)).join(",") + "\n");
      db.run(createTableSql("t", table.columns));
      const insert = db.prepare(insertSql("t", names.length));
      for (const row of table.rows) insert.run(row as number[]);
      insert.free();
      const [info] = db.exec("SELECT name, type FROM pragma_table_info('t') ORDER BY cid");
      expect(info.values).to.deep.equal(names.map((n) => [n, "INTEGER"]));
      expect(db.exec("SELECT count(*) FROM t")[0].values).to.deep.equal([[1]]);
      db.close();
    });
  });

  it("round trip: any table written as quoted CSV reads back the same records", function () {
    const field = fc.string({ unit: "grapheme", maxLength: 12 }).filter((s) => !s.includes("\0"));
    const table = fc.integer({ min: 1, max: 5 }).chain((width) => fc.array(fc.array(field, { minLength: width, maxLength: width }), { minLength: 1, maxLength: 8 }));
    fc.assert(
      fc.property(table, fc.constantFrom("\n", "\r\n"), fc.boolean(), (records, eol, finalBreak) => {
        const text = records.map((r) => r.map((f) => `"${f.replace(/"/g, '""')}"`).join(",")).join(eol) + (finalBreak ? eol : "");
        expect(parseCsvRecords(text).records).to.deep.equal(records);
      }),
    );
  });
});
