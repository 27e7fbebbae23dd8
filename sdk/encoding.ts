/**
 * Canonical result encoding of Concord (DESIGN §4, "Consensus"): what workers hash so that equal results give equal
 * digests. Pure functions, except `directoryDigest`, which reads an output directory.
 *
 * Canonical JSON (`canonicalJson`), RFC 8785 (JCS) style, no whitespace:
 * - objects: members sorted by the UTF-16 code units of their keys; members whose value is `undefined` are dropped;
 *   keys are NFC-normalised and two keys equal after normalisation are an error (`DUPLICATE_KEY`); only plain
 *   objects (prototype `Object.prototype` or `null`) are accepted, enumerable symbol keys are refused;
 * - arrays keep their order; an `undefined` element (or a hole) is refused instead of becoming `null`;
 * - strings are NFC-normalised, then escaped exactly as `JSON.stringify` does (`\"`, `\\`, `\b \f \n \r \t`, other
 *   controls as `\u00xx`, everything else literal); lone surrogates are refused (`LONE_SURROGATE`, I-JSON);
 * - numbers: `-0` is `0`; NaN and ±Infinity are refused (`NON_FINITE_NUMBER`); integers are printed in full without
 *   exponent nor ".0"; non-integers use the shortest round-trip form of `Number.prototype.toString` (so `0.1`,
 *   `0.30000000000000004`, `1e-7`). For |n| < 1e21 this is exactly RFC 8785 / `JSON.stringify`; at 1e21 and above
 *   (where every double is an integer) `toString`'s digits are expanded instead of written with `e+`, so `1e21`
 *   prints as `1000000000000000000000`, the same text as the bigint `10n ** 21n` (one rule for integers);
 * - bigints are JSON integers (`2n ** 53n + 1n` → `9007199254740993`);
 * - functions, symbols, cycles (`CYCLE`), other objects (Date, Map, typed arrays, class instances) are refused, and
 *   so is nesting deeper than `MAX_DEPTH` containers (`TOO_DEEP`). Every refusal is an `EncodingError` with a `code`.
 *
 * Canonical result (`canonicalResult`, `resultDigest`): the bytes are decoded as strict UTF-8 (a BOM is kept, so it
 * makes the text non-JSON) and parsed as one RFC 8259 JSON text, surrounding JSON whitespace (space, tab, LF, CR)
 * allowed. Numbers are parsed exactly: an integer literal (or a literal whose exact value is an integer, e.g. `1e21`,
 * `2.50e1`) becomes a bigint, so `12345678901234567890` survives; integers written with a fraction or exponent must
 * be below 10^309 (a double's range). Other numbers are parsed as doubles (`Number`). If parsing and
 * canonicalisation succeed, the result is the UTF-8 of the canonical JSON; otherwise (not UTF-8, not JSON, empty,
 * whitespace only, duplicate keys, a lone surrogate escape, an out-of-range number, too deep) the bytes are used
 * unchanged. The digest is keccak256 of that. Canonicalisation is idempotent.
 *
 * Directory digest (`directoryDigest`): every regular file below the directory, found recursively, gives a pair
 * [path, keccak256(canonicalResult(content))]: path relative to the directory with "/" separators, NFC-normalised
 * (names must be valid UTF-8; two paths equal after normalisation are an error). The pairs are sorted by the UTF-8
 * bytes of the path and the digest is keccak256 of the canonical JSON of the list, e.g.
 * keccak256('[["a.txt","0x…"],["sub/b.json","0x…"]]'). Directories only contribute through their files (an empty
 * subdirectory changes nothing), so an empty directory digests to keccak256("[]") = `EMPTY_DIRECTORY_DIGEST`. Files
 * are canonicalised by content, never by name: a directory holding one `result.json` is not special. Symbolic links
 * (the root included) are refused (`SYMLINK`), and so are sockets, FIFOs and devices (`UNSUPPORTED_FILE`).
 *
 * Callback deals (docs/protocol.md, "Callback data rule"): the contract checks keccak256(resultsCallback) ==
 * resultDigest on the raw bytes, so the digest is `resultDigestForCallback`, with no canonicalisation.
 */
import { constants as fsConstants } from "node:fs";
import { lstat, open, readdir } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { keccak256, toUtf8Bytes } from "ethers";

/** Deepest nesting of arrays/objects accepted, by `canonicalJson` and by the JSON parser. */
export const MAX_DEPTH = 1000;

/** Integers written with a fraction or exponent must have at most this many digits (below 10^309). */
const MAX_EXPANDED_INTEGER_DIGITS = 309n;

export type EncodingErrorCode =
  | "NON_FINITE_NUMBER"
  | "NUMBER_OUT_OF_RANGE"
  | "UNSUPPORTED_TYPE"
  | "CYCLE"
  | "TOO_DEEP"
  | "DUPLICATE_KEY"
  | "LONE_SURROGATE"
  | "INVALID_JSON"
  | "NOT_A_DIRECTORY"
  | "SYMLINK"
  | "UNSUPPORTED_FILE"
  | "INVALID_PATH"
  | "DUPLICATE_PATH";

export class EncodingError extends Error {
  readonly code: EncodingErrorCode;
  constructor(code: EncodingErrorCode, message: string) {
    super(message);
    this.name = "EncodingError";
    this.code = code;
  }
}

/** A parsed JSON value: integers are bigints, other numbers doubles, objects have a null prototype. */
export type JsonValue = null | boolean | string | number | bigint | JsonValue[] | { [key: string]: JsonValue };

// ------------------------------------------------------------------------------------------------- canonical JSON

/** The canonical JSON text of a value (see the header for the rules); throws `EncodingError`. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) throw new EncodingError("UNSUPPORTED_TYPE", "canonicalJson: undefined is not JSON");
  const w = new Writer();
  w.write(value);
  return w.out;
}

/** Serialises depth first; the path of the current value is only rendered into an error message. */
class Writer {
  out = "";
  private readonly ancestors = new Set<object>();
  private readonly path: (string | number)[] = [];

  private fail(code: EncodingErrorCode, what: string): never {
    const where = this.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("");
    throw new EncodingError(code, `canonicalJson: ${what} at $${where}`);
  }

  private normalise(s: string, what: string): string {
    if (NFC_STABLE.test(s)) return s;
    if (hasLoneSurrogate(s)) this.fail("LONE_SURROGATE", `lone surrogate in a ${what}`);
    return s.normalize("NFC");
  }

  write(value: unknown): void {
    switch (typeof value) {
      case "string":
        this.out += JSON.stringify(this.normalise(value, "string"));
        return;
      case "number":
        if (!Number.isFinite(value)) this.fail("NON_FINITE_NUMBER", `${value} (not JSON)`);
        this.out += formatNumber(value);
        return;
      case "bigint":
        this.out += value.toString();
        return;
      case "boolean":
        this.out += value ? "true" : "false";
        return;
      case "undefined":
        return this.fail("UNSUPPORTED_TYPE", "undefined (array elements cannot be undefined)");
      case "function":
      case "symbol":
        return this.fail("UNSUPPORTED_TYPE", `a ${typeof value} (not JSON)`);
    }
    if (value === null) {
      this.out += "null";
      return;
    }
    const obj = value as object;
    if (this.ancestors.has(obj)) this.fail("CYCLE", "cyclic structure");
    if (this.path.length + 1 > MAX_DEPTH) this.fail("TOO_DEEP", `nesting deeper than ${MAX_DEPTH}`);
    this.ancestors.add(obj);
    if (Array.isArray(obj)) {
      this.out += "[";
      for (let i = 0; i < obj.length; i++) {
        if (i > 0) this.out += ",";
        this.path.push(i);
        this.write(obj[i]);
        this.path.pop();
      }
      this.out += "]";
    } else {
      const proto = Object.getPrototypeOf(obj);
      if (proto !== Object.prototype && proto !== null) {
        const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? "object";
        this.fail("UNSUPPORTED_TYPE", `${name} (not a plain object)`);
      }
      if (Object.getOwnPropertySymbols(obj).some((s) => Object.prototype.propertyIsEnumerable.call(obj, s))) {
        this.fail("UNSUPPORTED_TYPE", "symbol-keyed member");
      }
      let keys = Object.keys(obj).filter((k) => (obj as Record<string, unknown>)[k] !== undefined);
      // `original` maps NFC keys back to the object's own keys; only built when a key is not already NFC.
      let original: Map<string, string> | undefined;
      if (keys.some((k) => !NFC_STABLE.test(k))) {
        original = new Map();
        for (const key of keys) {
          const nfc = this.normalise(key, `key ${JSON.stringify(key)}`);
          const previous = original.get(nfc);
          if (previous !== undefined) {
            const pair = `${JSON.stringify(previous)} and ${JSON.stringify(key)}`;
            this.fail("DUPLICATE_KEY", `keys ${pair} equal after NFC normalisation`);
          }
          original.set(nfc, key);
        }
        keys = [...original.keys()];
      }
      keys.sort(compareUtf16);
      this.out += "{";
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        if (i > 0) this.out += ",";
        this.out += JSON.stringify(key) + ":";
        this.path.push(key);
        this.write((obj as Record<string, unknown>)[original?.get(key) ?? key]);
        this.path.pop();
      }
      this.out += "}";
    }
    this.ancestors.delete(obj);
  }
}

/**
 * Strings of code units below U+0300 are NFC already (no combining mark, no decomposable or composing character
 * lies below it) and hold no surrogate: the common case skips normalisation.
 */
const NFC_STABLE = /^[\u0000-\u02ff]*$/;

/** UTF-16 code unit order (what RFC 8785 prescribes for member names). */
function compareUtf16(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1); // NaN past the end
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return true;
    }
  }
  return false;
}

/** ECMAScript Number::toString of a finite number, -0 as 0 and the `e+` forms (|n| ≥ 1e21, integers) expanded. */
function formatNumber(n: number): string {
  if (n === 0) return "0";
  const s = String(n);
  const e = s.indexOf("e+");
  if (e < 0) return s;
  const mantissa = s.slice(0, e);
  const dot = mantissa.indexOf(".");
  const fraction = dot < 0 ? 0 : mantissa.length - dot - 1;
  return mantissa.replace(".", "") + "0".repeat(Number(s.slice(e + 2)) - fraction);
}

// ------------------------------------------------------------------------------------------------- exact parser

/**
 * Parses one RFC 8259 JSON text exactly: integers as bigints, other numbers as doubles, objects with a null
 * prototype (so "__proto__" is an ordinary key). Duplicate keys, lone surrogate escapes, integers of 10^309 and more
 * written with a fraction or exponent, other non-finite numbers and nesting deeper than `MAX_DEPTH` are refused.
 */
export function parseJsonExact(text: string): JsonValue {
  return new Parser(text).parse();
}

const NUMBER = /(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?/y;

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parse(): JsonValue {
    this.skipWhitespace();
    const value = this.value(0);
    this.skipWhitespace();
    if (this.pos !== this.text.length) this.fail("unexpected text after the JSON value");
    return value;
  }

  private fail(what: string, code: EncodingErrorCode = "INVALID_JSON"): never {
    throw new EncodingError(code, `JSON: ${what} at offset ${this.pos}`);
  }

  private skipWhitespace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos++;
    }
  }

  private value(depth: number): JsonValue {
    const c = this.text[this.pos];
    switch (c) {
      case "{":
        return this.object(depth + 1);
      case "[":
        return this.array(depth + 1);
      case '"':
        return this.string();
      case "t":
        return this.literal("true", true);
      case "f":
        return this.literal("false", false);
      case "n":
        return this.literal("null", null);
      case undefined:
        return this.fail("unexpected end of input");
      default:
        if (c === "-" || (c >= "0" && c <= "9")) return this.number();
        return this.fail(`unexpected character ${JSON.stringify(c)}`);
    }
  }

  private literal<T extends JsonValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail("invalid literal");
    this.pos += word.length;
    return value;
  }

  private enter(depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH}`, "TOO_DEEP");
    this.pos++; // the opening bracket
    this.skipWhitespace();
  }

  private array(depth: number): JsonValue[] {
    this.enter(depth);
    const items: JsonValue[] = [];
    if (this.text[this.pos] === "]") {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.value(depth));
      this.skipWhitespace();
      const c = this.text[this.pos++];
      if (c === "]") return items;
      if (c !== ",") this.fail("expected ',' or ']'");
      this.skipWhitespace();
    }
  }

  private object(depth: number): { [key: string]: JsonValue } {
    this.enter(depth);
    const obj = Object.create(null) as { [key: string]: JsonValue };
    if (this.text[this.pos] === "}") {
      this.pos++;
      return obj;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') this.fail("expected a string key");
      const keyAt = this.pos;
      const key = this.string();
      if (Object.prototype.hasOwnProperty.call(obj, key)) {
        this.pos = keyAt;
        this.fail(`duplicate key ${JSON.stringify(key)}`, "DUPLICATE_KEY");
      }
      this.skipWhitespace();
      if (this.text[this.pos++] !== ":") this.fail("expected ':'");
      this.skipWhitespace();
      obj[key] = this.value(depth);
      this.skipWhitespace();
      const c = this.text[this.pos++];
      if (c === "}") return obj;
      if (c !== ",") this.fail("expected ',' or '}'");
      this.skipWhitespace();
    }
  }

  private string(): string {
    const t = this.text;
    const start = this.pos;
    this.pos++; // opening quote
    const parts: string[] = [];
    let chunk = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail("unterminated string");
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) break;
      if (c < 0x20) this.fail("unescaped control character in a string");
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      parts.push(t.slice(chunk, this.pos));
      const e = t[this.pos + 1];
      this.pos += 2;
      switch (e) {
        case '"':
        case "\\":
        case "/":
          parts.push(e);
          break;
        case "b":
          parts.push("\b");
          break;
        case "f":
          parts.push("\f");
          break;
        case "n":
          parts.push("\n");
          break;
        case "r":
          parts.push("\r");
          break;
        case "t":
          parts.push("\t");
          break;
        case "u": {
          const hex = t.slice(this.pos, this.pos + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("invalid \\u escape");
          parts.push(String.fromCharCode(parseInt(hex, 16)));
          this.pos += 4;
          break;
        }
        default:
          this.pos -= 2;
          this.fail("invalid escape");
      }
      chunk = this.pos;
    }
    parts.push(t.slice(chunk, this.pos));
    this.pos++; // closing quote
    const s = parts.join("");
    if (hasLoneSurrogate(s)) {
      this.pos = start;
      this.fail("lone surrogate in a string", "LONE_SURROGATE");
    }
    return s;
  }

  private number(): number | bigint {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (m === null) return this.fail("invalid number");
    const [literal, sign, int, frac, exp] = m;
    const at = this.pos;
    this.pos += literal.length;
    if (frac === undefined && exp === undefined) return BigInt(literal); // "-0" → 0n
    const digits = (int + (frac ?? "")).replace(/^0+/, "");
    if (digits === "") return 0n;
    const significant = digits.replace(/0+$/, "");
    const exponent = BigInt(exp ?? "0") - BigInt(frac?.length ?? 0) + BigInt(digits.length - significant.length);
    if (exponent >= 0n) {
      if (BigInt(significant.length) + exponent > MAX_EXPANDED_INTEGER_DIGITS) {
        this.pos = at;
        this.fail("integer of 10^309 or more written with a fraction or exponent", "NUMBER_OUT_OF_RANGE");
      }
      const v = BigInt(significant) * 10n ** exponent;
      return sign === "-" ? -v : v;
    }
    const n = Number(literal);
    if (!Number.isFinite(n)) {
      this.pos = at;
      this.fail("number out of the range of a double", "NUMBER_OUT_OF_RANGE");
    }
    return n;
  }
}

// ------------------------------------------------------------------------------------------------- results

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/**
 * The canonical form of a result: the UTF-8 of its canonical JSON when the bytes are one valid UTF-8 JSON text
 * (surrounding whitespace allowed) that can be canonicalised, else `bytes` itself, unchanged.
 */
export function canonicalResult(bytes: Uint8Array): Uint8Array {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return bytes;
  }
  let canonical: string;
  try {
    canonical = canonicalJson(parseJsonExact(text));
  } catch (e) {
    if (e instanceof EncodingError) return bytes;
    throw e;
  }
  return utf8Encoder.encode(canonical); // the canonical text is well formed: no replacement character
}

/** keccak256 of the canonical result: the digest workers agree on for a deal without callback. */
export function resultDigest(bytes: Uint8Array): string {
  return keccak256(canonicalResult(bytes));
}

/**
 * The result digest of a callback deal: keccak256 of the exact callback bytes, with no canonicalisation, because
 * `finalize` checks keccak256(resultsCallback) == resultDigest on the raw bytes (docs/protocol.md, "Callback data
 * rule"). Workers must therefore agree on the callback bytes themselves. Same value as `callbackDigest` in eip712.ts.
 */
export function resultDigestForCallback(data: Uint8Array): string {
  return keccak256(data);
}

// ------------------------------------------------------------------------------------------------- directories

/** The digest of a directory without any regular file: keccak256("[]"). */
export const EMPTY_DIRECTORY_DIGEST = keccak256(toUtf8Bytes("[]"));

const O_NOFOLLOW: number = (fsConstants as { O_NOFOLLOW?: number }).O_NOFOLLOW ?? 0;

/** The digest of an output directory (format in the header); throws `EncodingError` on links and special files. */
export async function directoryDigest(dir: string): Promise<string> {
  const root = await lstat(dir);
  if (root.isSymbolicLink()) throw new EncodingError("SYMLINK", `directoryDigest: ${dir} is a symbolic link`);
  if (!root.isDirectory()) throw new EncodingError("NOT_A_DIRECTORY", `directoryDigest: ${dir} is not a directory`);
  const files = new Map<string, string>(); // NFC relative path → file digest
  await walk(dir, "", files);
  return digestOfFileDigests(files);
}

/**
 * What `directoryDigest` gives for a directory holding exactly these regular files (relative paths with "/", NFC, no
 * duplicate): for an output written from memory, without reading it back.
 */
export function filesDigest(files: readonly { path: string; bytes: Uint8Array }[]): string {
  const digests = new Map<string, string>();
  for (const f of files) {
    if (f.path.normalize("NFC") !== f.path || digests.has(f.path)) throw new EncodingError("INVALID_PATH", `filesDigest: ${JSON.stringify(f.path)} is not NFC or given twice`);
    digests.set(f.path, resultDigest(f.bytes));
  }
  return digestOfFileDigests(digests);
}

/** keccak256 of the canonical JSON of the [path, file digest] pairs, sorted by the paths' UTF-8 bytes. */
function digestOfFileDigests(files: ReadonlyMap<string, string>): string {
  const keyed = [...files].map(([p, d]) => ({ bytes: Buffer.from(p, "utf8"), pair: [p, d] as [string, string] }));
  keyed.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  return keccak256(toUtf8Bytes(canonicalJson(keyed.map((k) => k.pair))));
}

async function walk(dir: string, prefix: string, files: Map<string, string>): Promise<void> {
  for (const raw of await readdir(dir, { encoding: "buffer" })) {
    let name: string;
    try {
      name = utf8.decode(raw);
    } catch {
      throw new EncodingError("INVALID_PATH", `directoryDigest: a name in ${dir} is not valid UTF-8`);
    }
    const full = join(dir, name);
    const rel = prefix + name.normalize("NFC");
    const st = await lstat(full);
    if (st.isSymbolicLink()) throw new EncodingError("SYMLINK", `directoryDigest: ${full} is a symbolic link`);
    if (st.isDirectory()) {
      await walk(full, rel + "/", files);
    } else if (st.isFile()) {
      if (files.has(rel)) {
        throw new EncodingError(
          "DUPLICATE_PATH",
          `directoryDigest: two files are named ${JSON.stringify(rel)} after NFC normalisation`,
        );
      }
      files.set(rel, resultDigest(await readRegularFile(full)));
    } else {
      throw new EncodingError("UNSUPPORTED_FILE", `directoryDigest: ${full} is neither a regular file nor a directory`);
    }
  }
}

/** Reads a file without following a link swapped in after the lstat (O_NOFOLLOW where the platform has it). */
async function readRegularFile(path: string): Promise<Uint8Array> {
  let handle: FileHandle;
  try {
    handle = await open(path, fsConstants.O_RDONLY | O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ELOOP") {
      throw new EncodingError("SYMLINK", `directoryDigest: ${path} is a symbolic link`);
    }
    throw e;
  }
  try {
    if (!(await handle.stat()).isFile()) {
      throw new EncodingError("UNSUPPORTED_FILE", `directoryDigest: ${path} is not a regular file`);
    }
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
