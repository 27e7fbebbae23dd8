// @ts-check
/**
 * CSV datasets of the `sql` runtime: strict RFC 4180 parsing, deterministic column types, and the SQL that loads the
 * table. Plain JavaScript (CommonJS) because the sandbox thread requires it without a TypeScript compiler; the typed
 * face for TypeScript callers is csv.ts (types in csv-core.d.ts). Pure, no I/O.
 *
 * Format (every worker must read the same bytes into the same table, so nothing is guessed):
 * - UTF-8 (strict: invalid bytes are an error; a leading BOM is dropped); a NUL character is an error (binary data);
 * - records end with LF or CRLF, the last one optionally; a bare CR outside quotes is an error;
 * - fields are separated by ","; a field is either unquoted (no `"`, `,`, CR nor LF inside) or quoted ("…", `""` for
 *   a quote, commas and line breaks allowed); after a closing quote comes `,`, a line break or the end;
 * - the first record is the header: column names, non-empty, unique without regard to ASCII case (as SQLite
 *   compares names); every record has as many fields as the header, else the error names the line where the record
 *   starts (1-based, counting line breaks inside quoted fields); an empty line is a record of one empty field.
 *
 * Column types, per column, from every value (never from a sample):
 * - an empty value is NULL and does not vote;
 * - INTEGER if every other value is an integer `-?(0|[1-9][0-9]*)` within the signed 64-bit range;
 * - REAL if every other value is a decimal number `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?` that is finite as
 *   a double (so a column mixing integers and decimals is REAL, and so is one holding an integer beyond 64 bits);
 * - TEXT otherwise, and also for a column with no value at all.
 * Leading zeros ("007"), a leading "+", surrounding spaces, "1." and ".5" are not numbers: they stay TEXT, so codes
 * such as zip codes keep their text.
 */
"use strict";

/** SQLite's default SQLITE_MAX_COLUMN (sql.js keeps it): a wider table cannot be created. */
const MAX_COLUMNS = 2000;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INTEGER_RE = /^-?(?:0|[1-9][0-9]*)$/;
const DECIMAL_RE = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

class CsvError extends Error {
  /**
   * @param {string} message one line, starting with the line number when there is one
   * @param {number | undefined} line 1-based line of the offending record, when there is one
   */
  constructor(message, line) {
    super(message);
    this.name = "CsvError";
    this.line = line;
  }
}

/**
 * Decodes the bytes of a CSV file as strict UTF-8, dropping a leading BOM.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
function decodeCsv(bytes) {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); // drops a leading BOM
  } catch {
    throw new CsvError("not a SQLite database nor a UTF-8 CSV file (invalid UTF-8)", undefined);
  }
  return text;
}

/**
 * Splits CSV text into records (RFC 4180, see the module comment).
 * @param {string} text
 * @returns {{ records: string[][], lines: number[] }} the records and the 1-based line where each one starts
 */
function parseCsvRecords(text) {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const nul = text.indexOf("\0");
  if (nul >= 0)
    throw new CsvError(`line ${lineAt(text, nul)}: NUL character (binary data, not CSV)`, lineAt(text, nul));
  /** @type {string[][]} */
  const records = [];
  /** @type {number[]} */
  const lines = [];
  const n = text.length;
  const special = /[",\r\n]/g;
  let i = 0;
  let line = 1;
  while (i < n) {
    const recordLine = line;
    /** @type {string[]} */
    const fields = [];
    for (;;) {
      if (text[i] === '"') {
        const openLine = line;
        let value = "";
        i++;
        for (;;) {
          const close = text.indexOf('"', i);
          if (close < 0) throw new CsvError(`line ${openLine}: quoted field never closed`, openLine);
          const part = text.slice(i, close);
          value += part;
          line += countLineFeeds(part);
          if (text[close + 1] === '"') {
            value += '"';
            i = close + 2;
          } else {
            i = close + 1;
            break;
          }
        }
        if (i < n && text[i] !== "," && text[i] !== "\n" && text[i] !== "\r") {
          throw new CsvError(
            `line ${line}: unexpected character after a closing quote (expected "," or a line break)`,
            line,
          );
        }
        fields.push(value);
      } else {
        special.lastIndex = i;
        const m = special.exec(text);
        const end = m ? m.index : n;
        if (m && m[0] === '"') {
          throw new CsvError(
            `line ${line}: quote inside an unquoted field (quote the whole field and double the quote)`,
            line,
          );
        }
        fields.push(text.slice(i, end));
        i = end;
      }
      // i is at ",", a line break, or the end
      if (i >= n) break;
      if (text[i] === ",") {
        i++;
        continue; // a "," at the very end still opens one last, empty field
      }
      if (text[i] === "\r") {
        if (text[i + 1] !== "\n") throw new CsvError(`line ${line}: carriage return not followed by a line feed`, line);
        i++;
      }
      i++; // the line feed
      line++;
      break;
    }
    records.push(fields);
    lines.push(recordLine);
  }
  return { records, lines };
}

/**
 * @param {string} s
 * @returns {number}
 */
function countLineFeeds(s) {
  let count = 0;
  for (let k = s.indexOf("\n"); k >= 0; k = s.indexOf("\n", k + 1)) count++;
  return count;
}

/**
 * @param {string} text
 * @param {number} offset
 * @returns {number} the 1-based line holding offset
 */
function lineAt(text, offset) {
  return countLineFeeds(text.slice(0, offset)) + 1;
}

/**
 * The type of one column from all its values (see the module comment).
 * @param {string[]} values the column's raw texts, empty ones included
 * @returns {"INTEGER" | "REAL" | "TEXT"}
 */
function inferColumnType(values) {
  let integer = true;
  let seen = false;
  for (const v of values) {
    if (v === "") continue;
    seen = true;
    if (integer && INTEGER_RE.test(v)) {
      const b = BigInt(v);
      if (b >= INT64_MIN && b <= INT64_MAX) continue;
    }
    integer = false;
    if (!DECIMAL_RE.test(v) || !Number.isFinite(Number(v))) return "TEXT";
  }
  if (!seen) return "TEXT";
  return integer ? "INTEGER" : "REAL";
}

/**
 * The value stored for one raw field of a column of the given type: null for empty; an INTEGER as a number when it
 * is a safe integer, else as a bigint (exact); a REAL as a number; TEXT as is.
 * @param {string} raw
 * @param {"INTEGER" | "REAL" | "TEXT"} type
 * @returns {null | number | bigint | string}
 */
function convertValue(raw, type) {
  if (raw === "") return null;
  if (type === "INTEGER") {
    const n = Number(raw);
    return Number.isSafeInteger(n) ? n : BigInt(raw);
  }
  if (type === "REAL") return Number(raw);
  return raw;
}

/**
 * Checks the header row: non-empty names, unique without regard to ASCII case, at most MAX_COLUMNS.
 * @param {string[]} names
 */
function checkHeader(names) {
  if (names.length > MAX_COLUMNS)
    throw new CsvError(`line 1: ${names.length} columns, SQLite allows at most ${MAX_COLUMNS}`, 1);
  /** @type {Map<string, number>} */
  const seen = new Map();
  names.forEach((name, k) => {
    if (name.trim() === "") throw new CsvError(`line 1: column ${k + 1} has an empty name`, 1);
    const folded = name.replace(/[A-Z]/g, (c) => c.toLowerCase());
    const earlier = seen.get(folded);
    if (earlier !== undefined) {
      throw new CsvError(
        `line 1: duplicate column name ${JSON.stringify(name)} (columns ${earlier + 1} and ${k + 1})`,
        1,
      );
    }
    seen.set(folded, k);
  });
}

/**
 * Reads a whole CSV file: header, strict shape, column types, typed rows.
 * @param {Uint8Array | string} input the file's bytes (strict UTF-8) or its text
 * @returns {{ columns: { name: string, type: "INTEGER" | "REAL" | "TEXT" }[], rows: (null | number | bigint | string)[][] }}
 */
function readCsv(input) {
  const text = typeof input === "string" ? input : decodeCsv(input);
  const { records, lines } = parseCsvRecords(text);
  if (records.length === 0) throw new CsvError("empty CSV: no header row", undefined);
  const header = records[0];
  checkHeader(header);
  const width = header.length;
  for (let r = 1; r < records.length; r++) {
    if (records[r].length !== width) {
      const got = records[r].length;
      throw new CsvError(
        `line ${lines[r]}: ${got} field${got === 1 ? "" : "s"} where the header has ${width}`,
        lines[r],
      );
    }
  }
  const data = records.slice(1);
  const columns = header.map((name, c) => ({ name, type: inferColumnType(data.map((row) => row[c])) }));
  const rows = data.map((row) => row.map((raw, c) => convertValue(raw, columns[c].type)));
  return { columns, rows };
}

/**
 * A name as a SQL identifier that SQLite reads back exactly: double quotes, inner quotes doubled.
 * @param {string} name
 * @returns {string}
 */
function quoteIdentifier(name) {
  if (name.includes("\0")) throw new CsvError(`name ${JSON.stringify(name)} contains a NUL character`, undefined);
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * @param {string} table
 * @param {{ name: string, type: string }[]} columns
 * @returns {string} CREATE TABLE with the declared types (INTEGER/REAL/TEXT affinity)
 */
function createTableSql(table, columns) {
  return `CREATE TABLE ${quoteIdentifier(table)} (${columns.map((c) => `${quoteIdentifier(c.name)} ${c.type}`).join(", ")})`;
}

/**
 * @param {string} table
 * @param {number} width
 * @returns {string} INSERT with one "?" per column
 */
function insertSql(table, width) {
  return `INSERT INTO ${quoteIdentifier(table)} VALUES (${new Array(width).fill("?").join(", ")})`;
}

module.exports = {
  MAX_COLUMNS,
  CsvError,
  decodeCsv,
  parseCsvRecords,
  inferColumnType,
  convertValue,
  checkHeader,
  readCsv,
  quoteIdentifier,
  createTableSql,
  insertSql,
};
