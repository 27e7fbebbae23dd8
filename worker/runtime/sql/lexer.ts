/**
 * SQLite's tokenizer, ported rule by rule from `sqlite3GetToken` (tokenize.c), so that the query checker sees exactly
 * the tokens SQLite will see. That matters for soundness: if the checker and SQLite ever split a text differently
 * (a `$var(...)` parameter swallowing a quote, a `[...]` identifier holding a `'`), code could hide from the checker.
 * Pure, no I/O.
 *
 * Departures from SQLite, all on the refusing side:
 * - an unterminated block comment is an error (SQLite silently ends it at the end of the text);
 * - a NUL character is an error (SQLite would stop reading there, so text after it would be checked but not run);
 * - a lone UTF-16 surrogate is an error (it cannot be encoded as the UTF-8 SQLite reads).
 */
import { RuntimeError } from "../errors";

export type TokenKind =
  /** bare identifier or keyword: `value` is the text as written */
  | "word"
  /** identifier in "…", […] or `…`: `value` is the name without quotes */
  | "quoted"
  /** '…' string literal: `value` is the string, '' unescaped */
  | "string"
  /** x'…' blob literal: `value` is the hex digits */
  | "blob"
  | "number"
  /** ?, ?NNN, :name, @name, $name, #name */
  | "param"
  /** operators and punctuation: ( ) , ; . + - * / % = == < <= <> != > >= << >> & | || ~ -> ->> */
  | "op";

export interface Token {
  kind: TokenKind;
  /** the text as written in the query */
  text: string;
  /** see TokenKind */
  value: string;
  /** offset of the first character in the query */
  start: number;
}

/** ASCII upper case, as SQLite folds keywords and function names (non-ASCII letters are never folded). */
export const asciiUpper = (s: string): string => s.replace(/[a-z]/g, (c) => c.toUpperCase());

const isSpace = (c: string): boolean =>
  c === " " || c === "\t" || c === "\n" || c === "\v" || c === "\f" || c === "\r" || c === "\uFEFF";
const isDigit = (c: string): boolean => c >= "0" && c <= "9";
const isHexDigit = (c: string): boolean => isDigit(c) || (c >= "a" && c <= "f") || (c >= "A" && c <= "F");
/** SQLite's IdChar: letters, digits, `_`, `$` and every non-ASCII character (any byte ≥ 0x80 in UTF-8). */
const isIdChar = (c: string): boolean =>
  (c >= "a" && c <= "z") ||
  (c >= "A" && c <= "Z") ||
  isDigit(c) ||
  c === "_" ||
  c === "$" ||
  (c !== "" && c.charCodeAt(0) >= 0x80);
const isIdStart = (c: string): boolean => isIdChar(c) && !isDigit(c) && c !== "$";

function lexError(message: string, at: number): RuntimeError {
  return new RuntimeError("INVALID_QUERY", `invalid query: ${message} at character ${at + 1}`);
}

/** Splits a query into tokens, dropping whitespace and comments. Throws INVALID_QUERY on text SQLite would refuse. */
export function tokenize(sql: string): Token[] {
  const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(sql);
  if (lone) throw lexError("lone surrogate (not valid Unicode text)", lone.index);
  const tokens: Token[] = [];
  const at = (i: number): string => (i < sql.length ? sql[i] : "");
  let i = 0;
  const push = (kind: TokenKind, start: number, end: number, value: string): void => {
    tokens.push({ kind, text: sql.slice(start, end), value, start });
  };

  while (i < sql.length) {
    const start = i;
    const c = sql[i];
    if (c === "\0") throw lexError("NUL character", i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === "-" && at(i + 1) === "-") {
      while (i < sql.length && sql[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && at(i + 1) === "*") {
      const end = sql.indexOf("*/", i + 2);
      if (end < 0) throw lexError("unterminated /* comment", start);
      i = end + 2;
      continue;
    }
    if (c === "'" || c === '"' || c === "`") {
      // the delimiter doubled stands for itself; no other escapes
      let value = "";
      i++;
      for (;;) {
        const close = sql.indexOf(c, i);
        if (close < 0)
          throw lexError(c === "'" ? "unterminated string literal" : `unterminated ${c}quoted${c} identifier`, start);
        value += sql.slice(i, close);
        if (at(close + 1) === c) {
          value += c;
          i = close + 2;
          continue;
        }
        i = close + 1;
        break;
      }
      push(c === "'" ? "string" : "quoted", start, i, value);
      continue;
    }
    if (c === "[") {
      const close = sql.indexOf("]", i + 1);
      if (close < 0) throw lexError("unterminated [identifier]", start);
      i = close + 1;
      push("quoted", start, i, sql.slice(start + 1, close));
      continue;
    }
    if ((c === "x" || c === "X") && at(i + 1) === "'") {
      i += 2;
      while (isHexDigit(at(i))) i++;
      if (at(i) !== "'" || (i - start) % 2 === 1)
        throw lexError("malformed blob literal (x'…' needs an even number of hex digits)", start);
      i++;
      push("blob", start, i, sql.slice(start + 2, i - 1));
      continue;
    }
    if (isDigit(c) || (c === "." && isDigit(at(i + 1)))) {
      i = scanNumber(sql, i);
      if (isIdChar(at(i))) throw lexError(`malformed number "${sql.slice(start, i + 1)}"`, start);
      push("number", start, i, sql.slice(start, i));
      continue;
    }
    if (c === "?") {
      i++;
      while (isDigit(at(i))) i++;
      push("param", start, i, sql.slice(start, i));
      continue;
    }
    if (c === "$" || c === "@" || c === ":" || c === "#") {
      i = scanNamedParam(sql, i);
      push("param", start, i, sql.slice(start, i));
      continue;
    }
    if (isIdStart(c)) {
      while (isIdChar(at(i))) i++;
      push("word", start, i, sql.slice(start, i));
      continue;
    }
    const op = scanOperator(sql, i);
    if (op === "") throw lexError(`unrecognized character "${c}"`, start);
    i += op.length;
    push("op", start, i, op);
  }
  return tokens;
}

/** Numbers as SQLite reads them: 0x hex, digits with `_` separators, a fraction, an exponent. */
function scanNumber(sql: string, i: number): number {
  const at = (k: number): string => (k < sql.length ? sql[k] : "");
  if (sql[i] === "0" && (at(i + 1) === "x" || at(i + 1) === "X") && isHexDigit(at(i + 2))) {
    i += 2;
    while (isHexDigit(at(i)) || at(i) === "_") i++;
    return i;
  }
  while (isDigit(at(i)) || at(i) === "_") i++;
  if (at(i) === ".") {
    i++;
    while (isDigit(at(i)) || at(i) === "_") i++;
  }
  if (
    (at(i) === "e" || at(i) === "E") &&
    (isDigit(at(i + 1)) || ((at(i + 1) === "+" || at(i + 1) === "-") && isDigit(at(i + 2))))
  ) {
    i += 2;
    while (isDigit(at(i)) || at(i) === "_") i++;
  }
  return i;
}

/**
 * `$name`, `@name`, `:name`, `#name`, including SQLite's Tcl forms: `::` inside the name and a `(…)` suffix that runs
 * to the next `)` or whitespace. The suffix is why this must be exact: `$a(')` is one token to SQLite, and a
 * tokenizer that saw a string opening there would hide the code that follows from the checker.
 */
function scanNamedParam(sql: string, start: number): number {
  const at = (k: number): string => (k < sql.length ? sql[k] : "");
  let n = 0;
  let i = start + 1;
  for (; i < sql.length; i++) {
    const c = sql[i];
    if (isIdChar(c)) {
      n++;
    } else if (c === "(" && n > 0) {
      do i++;
      while (i < sql.length && !isSpace(sql[i]) && sql[i] !== ")");
      if (at(i) !== ")") throw lexError(`malformed parameter "${sql.slice(start, i)}"`, start);
      i++;
      break;
    } else if (c === ":" && at(i + 1) === ":") {
      i++;
    } else {
      break;
    }
  }
  if (n === 0) throw lexError(`malformed parameter "${sql.slice(start, i + 1)}"`, start);
  return i;
}

const OPERATORS = [
  "->>",
  "->",
  "||",
  "<<",
  ">>",
  "<=",
  ">=",
  "==",
  "!=",
  "<>",
  "(",
  ")",
  ",",
  ";",
  ".",
  "+",
  "-",
  "*",
  "/",
  "%",
  "=",
  "<",
  ">",
  "&",
  "|",
  "~",
];

function scanOperator(sql: string, i: number): string {
  for (const op of OPERATORS) if (sql.startsWith(op, i)) return op;
  return "";
}
