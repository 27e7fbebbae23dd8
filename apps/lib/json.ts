/**
 * Just enough JSON writing for the example apps (AssemblyScript has no JSON in its standard library).
 *
 * Strings are escaped exactly as `JSON.stringify` does (`\"`, `\\`, `\b \f \n \r \t`, other controls as `\u00xx`,
 * lone surrogates as `\udxxx`, everything else literal), so that the output is valid JSON whatever the input. Apps
 * write their keys in sorted order, so their result.json is already canonical (sdk/encoding.ts canonicalises it
 * anyway before hashing).
 */

const HEX = "0123456789abcdef";

function hex4(code: i32): string {
  return (
    "\\u" +
    HEX.charAt((code >> 12) & 15) +
    HEX.charAt((code >> 8) & 15) +
    HEX.charAt((code >> 4) & 15) +
    HEX.charAt(code & 15)
  );
}

/** The JSON string literal of `s`, quotes included. */
export function quote(s: string): string {
  const parts = new Array<string>();
  let start = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    let escape: string | null = null;
    if (c == 0x22) escape = '\\"';
    else if (c == 0x5c) escape = "\\\\";
    else if (c < 0x20) {
      if (c == 0x08) escape = "\\b";
      else if (c == 0x0c) escape = "\\f";
      else if (c == 0x0a) escape = "\\n";
      else if (c == 0x0d) escape = "\\r";
      else if (c == 0x09) escape = "\\t";
      else escape = hex4(c);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const pairsWithNext = c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) == 0xdc00;
      if (pairsWithNext) {
        i++; // a well-formed pair stays literal
      } else {
        escape = hex4(c);
      }
    }
    if (escape !== null) {
      if (i > start) parts.push(s.substring(start, i));
      parts.push(escape);
      start = i + 1;
    }
  }
  if (start == 0) return '"' + s + '"';
  if (start < n) parts.push(s.substring(start));
  return '"' + parts.join("") + '"';
}

/** A JSON array of strings. */
export function stringArray(items: string[]): string {
  const parts = new Array<string>(items.length);
  for (let i = 0; i < items.length; i++) parts[i] = quote(items[i]);
  return "[" + parts.join(",") + "]";
}

/** A JSON array of already-encoded JSON values. */
export function rawArray(items: string[]): string {
  return "[" + items.join(",") + "]";
}

/**
 * Builds one JSON object member by member. Values are given already encoded (use `quote` for strings); the caller
 * adds members in sorted key order to keep the text canonical.
 */
export class JsonObject {
  private parts: string[] = new Array<string>();

  /** Adds a member whose value is already JSON text. */
  raw(key: string, json: string): JsonObject {
    this.parts.push(quote(key) + ":" + json);
    return this;
  }

  str(key: string, value: string): JsonObject {
    return this.raw(key, quote(value));
  }

  i64(key: string, value: i64): JsonObject {
    return this.raw(key, value.toString());
  }

  u64(key: string, value: u64): JsonObject {
    return this.raw(key, value.toString());
  }

  toString(): string {
    return "{" + this.parts.join(",") + "}";
  }
}

/** Lower-case hex of `len` bytes at `ptr`. */
export function hexBytes(ptr: usize, len: usize): string {
  const parts = new Array<string>(<i32>len);
  for (let i: usize = 0; i < len; i++) {
    const b = <i32>load<u8>(ptr + i);
    parts[<i32>i] = HEX.charAt(b >> 4) + HEX.charAt(b & 15);
  }
  return parts.join("");
}
