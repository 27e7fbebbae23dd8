/**
 * The static gate of the `sql` runtime: a query is accepted only if it is one read-only statement whose rows every
 * worker can reproduce, so that q honest workers always reach the same digest. Runs before any work (no dataset
 * fetched, no thread started), so a requester learns of a refusal at once. Pure, no I/O.
 *
 * Accepted: exactly one statement (a trailing `;` is fine) starting with SELECT, VALUES, or WITH … whose main
 * statement is SELECT or VALUES.
 *
 * Refused as INVALID_QUERY: empty text, several statements, anything else (PRAGMA, ATTACH/DETACH, INSERT, UPDATE,
 * DELETE, REPLACE, CREATE, DROP, ALTER, VACUUM, REINDEX, ANALYZE, BEGIN/COMMIT/ROLLBACK, EXPLAIN, …), WITH … INSERT
 * (or UPDATE, DELETE), load_extension(), unbalanced parentheses, and text SQLite cannot tokenize (unterminated
 * string, identifier or comment, malformed blob literal or number, NUL character, lone surrogate).
 *
 * Refused as NON_DETERMINISTIC_QUERY ("non-verifiable query: …", naming the token as written):
 * - random(), randomblob(): a different value on each worker;
 * - changes(), total_changes(), last_insert_rowid(): they describe the connection's past writes, not the data;
 * - the current time: the keywords CURRENT_TIME, CURRENT_DATE, CURRENT_TIMESTAMP; date(), time(), datetime(),
 *   julianday(), unixepoch() called with no argument and strftime() with only a format (they default to now); and
 *   'now' in any query that calls a date/time function (date, time, datetime, julianday, unixepoch, strftime,
 *   timediff);
 * - the time zone: the modifiers 'localtime' and 'utc' in a query that calls a date/time function;
 * - LIMIT (and so OFFSET) in a query level with no ORDER BY at that same level: "LIMIT without ORDER BY picks
 *   arbitrary rows". A query level is the text of one parenthesised group (or the whole statement), so an ORDER BY
 *   in a window (`OVER (ORDER BY …)`), in an aggregate (`group_concat(x ORDER BY y)`) or in another subquery does
 *   not count, and an outer ORDER BY does not cover a LIMIT inside a subquery.
 * Function names are matched without regard to ASCII case or quoting (`RANDOM ( )`, `"random"()` and `[random]()`
 * all call random()); a column or CTE that is merely named "random" is fine, and so is 'random()' inside a string.
 *
 * Known limits, and what is done about them:
 * - ORDER BY on a non-unique key with LIMIT: accepted. Rows that tie are chosen by SQLite's query plan, which is the
 *   same on every worker because the engine is pinned (sql.js) and the dataset bytes are checked against their
 *   registered checksum; the rule above exists to refuse queries whose meaning is arbitrary, not to prove
 *   determinism. A requester who wants a meaningful top-N orders by a unique key.
 * - The LIMIT rule is syntactic, so it also refuses harmless cases (`SELECT count(*) … LIMIT 1`, `EXISTS (SELECT 1
 *   … LIMIT 1)`, LIMIT 0); adding an ORDER BY makes them pass.
 * - 'now', 'localtime' and 'utc' are recognised as string literals, double-quoted identifiers (SQLite reads an
 *   unknown "now" as a string) and blob literals; to be safe they are refused anywhere in a query that calls a
 *   date/time function, even where they are only compared with a column (`WHERE status = 'now'`). A value that
 *   reaches a date function at run time (a dataset column holding 'now', `'n' || 'ow'`, a view of a SQLite dataset
 *   calling random() or date('now')) cannot be seen here: the sandbox thread pins the clock to
 *   1970-01-01T00:00:00Z, the time zone to UTC and SQLite's random source to a fixed seed, so such queries still
 *   give the same rows on every worker (computed with those pinned values).
 * - sqlite_version() and sqlite_source_id() are accepted: every worker runs the same pinned sql.js.
 * - An unterminated /* comment is refused although SQLite accepts it.
 */
import { RuntimeError } from "../errors";
import { asciiUpper, tokenize, type Token } from "./lexer";

export type CheckResult = { ok: true };

/** Functions whose value differs between workers; name (upper case) → why. */
const NON_DETERMINISTIC_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  ["RANDOM", "gives each worker a different value"],
  ["RANDOMBLOB", "gives each worker a different value"],
  ["CHANGES", "describes the connection's earlier writes, not the data"],
  ["TOTAL_CHANGES", "describes the connection's earlier writes, not the data"],
  ["LAST_INSERT_ROWID", "describes the connection's earlier writes, not the data"],
]);

/**
 * Date/time functions; name → the number of arguments a call needs to include a time value (fewer: it reads now).
 * timediff(A, B) takes no default, so 0.
 */
const TIME_FUNCTIONS: ReadonlyMap<string, number> = new Map([
  ["DATE", 1],
  ["TIME", 1],
  ["DATETIME", 1],
  ["JULIANDAY", 1],
  ["UNIXEPOCH", 1],
  ["STRFTIME", 2], // strftime(format, time-value, modifier…)
  ["TIMEDIFF", 0],
]);

const CURRENT_TIME_KEYWORDS = new Set(["CURRENT_TIME", "CURRENT_DATE", "CURRENT_TIMESTAMP"]);

/** Literal values that make a date/time function read the host: value (lower case) → why. */
const HOST_TIME_VALUES: ReadonlyMap<string, string> = new Map([
  ["now", "reads the worker's clock, which differs between workers"],
  ["localtime", "depends on the worker's time zone"],
  ["utc", "depends on the worker's time zone"],
]);

/** First words of statements that are not allowed, with the reason given to the requester. */
const REFUSED_STATEMENTS: ReadonlyMap<string, string> = new Map([
  ["PRAGMA", "PRAGMA is not allowed"],
  ["ATTACH", "ATTACH is not allowed: the dataset is the only database"],
  ["DETACH", "DETACH is not allowed: the dataset is the only database"],
  ["EXPLAIN", "EXPLAIN is not allowed: its output is the engine's plan, not data"],
  ...["INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "VACUUM", "REINDEX", "ANALYZE"].map(
    (w) => [w, `${w} writes; only a read-only query is allowed (SELECT, WITH … SELECT or VALUES)`] as const,
  ),
  ...["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"].map(
    (w) => [w, `${w} is not allowed: send a single read-only query (SELECT, WITH … SELECT or VALUES)`] as const,
  ),
]);

const invalid = (message: string): RuntimeError => new RuntimeError("INVALID_QUERY", `invalid query: ${message}`);
const nonVerifiable = (message: string): RuntimeError =>
  new RuntimeError("NON_DETERMINISTIC_QUERY", `non-verifiable query: ${message}`);

/**
 * Accepts a single read-only, reproducible SQLite query or throws a RuntimeError (INVALID_QUERY or
 * NON_DETERMINISTIC_QUERY) whose one-line message names the offending token.
 */
export function checkQuery(sql: string): CheckResult {
  const tokens = tokenize(sql);
  const statement = singleStatement(tokens);
  const close = matchParentheses(statement);
  checkStatementKind(statement, close);
  checkFunctions(statement, close);
  checkTimeLiterals(statement, close);
  checkLimits(statement, close);
  return { ok: true };
}

// ------------------------------------------------------------------------------------------------------- structure

const isOp = (t: Token | undefined, op: string): boolean => t !== undefined && t.kind === "op" && t.value === op;
/** a bare word equal to the keyword (quoted names are identifiers, never keywords) */
const isKeyword = (t: Token | undefined, keyword: string): boolean =>
  t !== undefined && t.kind === "word" && asciiUpper(t.value) === keyword;
const isName = (t: Token | undefined): boolean => t !== undefined && (t.kind === "word" || t.kind === "quoted");

/** The tokens of the one statement, without its trailing `;`. */
function singleStatement(tokens: Token[]): Token[] {
  const statement = isOp(tokens[tokens.length - 1], ";") ? tokens.slice(0, -1) : tokens;
  if (statement.length === 0) throw invalid("empty query");
  const semicolon = statement.find((t) => isOp(t, ";"));
  if (semicolon) throw invalid(`several statements (a ";" at character ${semicolon.start + 1}); send one query`);
  return statement;
}

/** For each "(" the index of its ")" (and the reverse); -1 elsewhere. Refuses unbalanced parentheses. */
function matchParentheses(tokens: Token[]): number[] {
  const match = new Array<number>(tokens.length).fill(-1);
  const open: number[] = [];
  tokens.forEach((t, i) => {
    if (isOp(t, "(")) open.push(i);
    else if (isOp(t, ")")) {
      const o = open.pop();
      if (o === undefined) throw invalid(`unbalanced ")" at character ${t.start + 1}`);
      match[o] = i;
      match[i] = o;
    }
  });
  if (open.length) throw invalid(`unbalanced "(" at character ${tokens[open[open.length - 1]].start + 1}`);
  return match;
}

function checkStatementKind(tokens: Token[], match: number[]): void {
  const first = tokens[0];
  const word = first.kind === "word" ? asciiUpper(first.value) : "";
  if (word === "SELECT" || word === "VALUES") return;
  if (word === "WITH") return checkWithMain(tokens, match);
  const refusal = REFUSED_STATEMENTS.get(word);
  if (refusal) throw invalid(refusal);
  throw invalid(`a query starts with SELECT, WITH or VALUES, not "${first.text}"`);
}

/** WITH [RECURSIVE] name [(columns)] AS [NOT] [MATERIALIZED] (query), … then SELECT or VALUES. */
function checkWithMain(tokens: Token[], match: number[]): void {
  let i = 1;
  if (isKeyword(tokens[i], "RECURSIVE")) i++;
  for (;;) {
    if (!isName(tokens[i])) throw invalid(`expected a common table name after ${tokens[i - 1].text}`);
    i++;
    if (isOp(tokens[i], "(")) i = match[i] + 1;
    if (!isKeyword(tokens[i], "AS"))
      throw invalid(`expected AS in the WITH clause, got "${tokens[i]?.text ?? "end of query"}"`);
    i++;
    if (isKeyword(tokens[i], "NOT")) i++;
    if (isKeyword(tokens[i], "MATERIALIZED")) i++;
    if (!isOp(tokens[i], "("))
      throw invalid(`expected "(" after AS in the WITH clause, got "${tokens[i]?.text ?? "end of query"}"`);
    i = match[i] + 1;
    if (isOp(tokens[i], ",")) {
      i++;
      continue;
    }
    break;
  }
  const main = tokens[i];
  const word = main?.kind === "word" ? asciiUpper(main.value) : "";
  if (word === "SELECT" || word === "VALUES") return;
  if (REFUSED_STATEMENTS.has(word)) throw invalid(`WITH … ${word} writes; only WITH … SELECT is allowed`);
  throw invalid(`WITH must be followed by SELECT, not "${main?.text ?? "end of query"}"`);
}

/**
 * A name followed by "(" is a function call, except a common table expression with a column list:
 * `name ( … ) AS [NOT] [MATERIALIZED] (` (a call is never followed by AS and a parenthesis).
 */
function isFunctionCall(tokens: Token[], match: number[], i: number): boolean {
  if (!isName(tokens[i]) || !isOp(tokens[i + 1], "(")) return false;
  let j = match[i + 1] + 1;
  if (!isKeyword(tokens[j], "AS")) return true;
  j++;
  if (isKeyword(tokens[j], "NOT")) j++;
  if (isKeyword(tokens[j], "MATERIALIZED")) j++;
  return !isOp(tokens[j], "(");
}

/** The arguments of the call whose "(" is at `open`, each as its token range [from, to). */
function callArguments(tokens: Token[], match: number[], open: number): Array<[number, number]> {
  const close = match[open];
  if (close === open + 1) return [];
  const args: Array<[number, number]> = [];
  let from = open + 1;
  for (let i = open + 1; i < close; i++) {
    if (isOp(tokens[i], "(")) i = match[i];
    else if (isOp(tokens[i], ",")) {
      args.push([from, i]);
      from = i + 1;
    }
  }
  args.push([from, close]);
  return args;
}

// ---------------------------------------------------------------------------------------------------------- rules

const callName = (t: Token): string => `${t.text}()`;

function checkFunctions(tokens: Token[], match: number[]): void {
  tokens.forEach((t, i) => {
    if (t.kind === "word" && CURRENT_TIME_KEYWORDS.has(asciiUpper(t.value))) {
      throw nonVerifiable(`${asciiUpper(t.text)} reads the worker's clock, which differs between workers`);
    }
    if (!isFunctionCall(tokens, match, i)) return;
    const name = asciiUpper(t.value);
    if (name === "LOAD_EXTENSION") throw invalid(`${callName(t)} is not allowed`);
    const why = NON_DETERMINISTIC_FUNCTIONS.get(name);
    if (why) throw nonVerifiable(`${callName(t)} ${why}`);
    const needed = TIME_FUNCTIONS.get(name);
    if (needed !== undefined && callArguments(tokens, match, i + 1).length < needed) {
      throw nonVerifiable(
        `${callName(t)} without a time value reads the worker's clock, which differs between workers`,
      );
    }
  });
}

/** The text a literal stands for when SQLite reads it as a date/time argument, or undefined. */
function literalText(t: Token): string | undefined {
  if (t.kind === "string") return t.value;
  if (t.kind === "quoted" && t.text.startsWith('"')) return t.value; // an unknown "name" falls back to a string
  if (t.kind === "blob") return Buffer.from(t.value, "hex").toString("latin1"); // date(x'6e6f77') is date('now')
  return undefined;
}

function checkTimeLiterals(tokens: Token[], match: number[]): void {
  const timeCall = tokens.find((t, i) => TIME_FUNCTIONS.has(asciiUpper(t.value)) && isFunctionCall(tokens, match, i));
  if (!timeCall) return;
  for (const t of tokens) {
    const text = literalText(t);
    if (text === undefined) continue;
    const why = HOST_TIME_VALUES.get(text.trim().toLowerCase());
    if (why) throw nonVerifiable(`${t.text} in a query calling ${callName(timeCall)} ${why}`);
  }
}

/** Each query level (the whole statement, or one parenthesised group) with a LIMIT must have its own ORDER BY. */
function checkLimits(tokens: Token[], match: number[]): void {
  const walk = (from: number, to: number): void => {
    let ordered = false;
    for (let i = from; i < to; i++) {
      const t = tokens[i];
      if (isOp(t, "(")) {
        walk(i + 1, match[i]);
        i = match[i];
      } else if (isKeyword(t, "ORDER") && isKeyword(tokens[i + 1], "BY")) {
        ordered = true;
      } else if (isKeyword(t, "LIMIT") && !ordered) {
        throw nonVerifiable(
          `${asciiUpper(t.text)} without ORDER BY picks arbitrary rows (add an ORDER BY on a unique key)`,
        );
      }
    }
  };
  walk(0, tokens.length);
}
