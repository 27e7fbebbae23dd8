/**
 * sdk/encoding: canonical JSON, the canonical result bytes and their digest, the directory digest and the callback
 * digest. Table-driven: each row states an input and the exact expected text, bytes or error code; a few fast-check
 * properties cover random JSON (formatting and key order never change the canonical form, it is idempotent).
 */
import { expect } from "chai";
import fc from "fast-check";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hexlify, keccak256, toUtf8Bytes, toUtf8String } from "ethers";
import {
  EMPTY_DIRECTORY_DIGEST,
  EncodingError,
  MAX_DEPTH,
  canonicalJson,
  canonicalResult,
  directoryDigest,
  filesDigest,
  parseJsonExact,
  resultDigest,
  resultDigestForCallback,
} from "../../sdk/encoding";
import { callbackDigest } from "../../sdk/eip712";

// ---------------------------------------------------------------------------------------------------------- helpers

const utf8 = (s: string) => toUtf8Bytes(s);
const NFC_E = "\u00e9"; // é, one code point
const NFD_E = "e\u0301"; // e + combining acute accent
const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
const nestedValue = (depth: number): unknown => {
  let v: unknown = [];
  for (let i = 1; i < depth; i++) v = [v];
  return v;
};

function expectEncodingError(f: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, "expected an EncodingError").to.be.instanceOf(EncodingError);
  expect(thrown).to.be.instanceOf(Error);
  expect((thrown as EncodingError).name).to.equal("EncodingError");
  expect((thrown as EncodingError).code).to.equal(code);
}

async function expectEncodingErrorAsync(p: Promise<unknown>, code: string): Promise<void> {
  let thrown: unknown;
  try {
    await p;
  } catch (e) {
    thrown = e;
  }
  expect(thrown, "expected an EncodingError").to.be.instanceOf(EncodingError);
  expect((thrown as EncodingError).code).to.equal(code);
}

// ---------------------------------------------------------------------------------------------------------- canonicalJson

describe("sdk/encoding", function () {
  describe("canonicalJson", function () {
    const cyclicObject: Record<string, unknown> = { a: 1 };
    cyclicObject.self = cyclicObject;
    const cyclicArray: unknown[] = [1];
    cyclicArray.push([cyclicArray]);
    const shared = { a: 1 };
    const nullProto = Object.create(null) as Record<string, unknown>;
    nullProto.b = 1;
    nullProto.a = 2;
    class Point {
      x = 1;
    }

    const cases: [string, unknown, string][] = [
      // structure and key order
      ["sorts keys", { b: 1, a: 2, c: 3 }, '{"a":2,"b":1,"c":3}'],
      [
        "sorts nested keys, arrays keep order",
        { z: { y: [3, 2, 1], x: { q: [], p: {} } }, a: [{ d: 1, c: 2 }, "s"] },
        '{"a":[{"c":2,"d":1},"s"],"z":{"x":{"p":{},"q":[]},"y":[3,2,1]}}',
      ],
      // UTF-16 code unit order: "1" < "A" < "a" < "€" (U+20AC) < "😀" (D83D DE00) < "｡" (U+FF61)
      [
        "sorts keys by UTF-16 code units (RFC 8785)",
        { "\uff61": 6, "\ud83d\ude00": 5, "\u20ac": 4, a: 3, A: 2, "1": 1 },
        '{"1":1,"A":2,"a":3,"€":4,"😀":5,"\uff61":6}',
      ],
      ["drops undefined members", { a: undefined, b: 1 }, '{"b":1}'],
      ["accepts null-prototype objects", nullProto, '{"a":2,"b":1}'],
      ["accepts an own __proto__ key", JSON.parse('{"__proto__":1}'), '{"__proto__":1}'],
      ["accepts shared (acyclic) references", [shared, { s: shared }], '[{"a":1},{"s":{"a":1}}]'],
      ["empty object", {}, "{}"],
      ["empty array", [], "[]"],
      ["empty string", "", '""'],
      ["null", null, "null"],
      ["true", true, "true"],
      ["false", false, "false"],
      ["deepest nesting accepted", nestedValue(MAX_DEPTH), nested(MAX_DEPTH)],
      // unicode normalisation
      ["NFC string unchanged", NFC_E, `"${NFC_E}"`],
      ["NFD string normalised to NFC", NFD_E, `"${NFC_E}"`],
      ["NFD key normalised to NFC", { [NFD_E]: 1 }, `{"${NFC_E}":1}`],
      ["Hangul jamo composed", "\u1100\u1161", '"\uac00"'],
      // numbers
      ["zero", 0, "0"],
      ["negative zero", -0, "0"],
      ["integer", 100, "100"],
      ["negative integer", -42, "-42"],
      ["integer-valued double prints without .0", 1.0, "1"],
      ["fraction", 1.5, "1.5"],
      ["0.1 + 0.2 (shortest round trip)", 0.1 + 0.2, "0.30000000000000004"],
      ["1e-7 (exponent form as JSON.stringify)", 1e-7, "1e-7"],
      ["-1.5e-7", -1.5e-7, "-1.5e-7"],
      ["1e-6 (no exponent)", 1e-6, "0.000001"],
      ["smallest subnormal", 5e-324, "5e-324"],
      ["2^53", 2 ** 53, "9007199254740992"],
      ["2^64 (toString digits, as JSON.stringify)", 2 ** 64, "18446744073709552000"],
      ["1e20", 1e20, "100000000000000000000"],
      ["1e21 (integer, expanded: no exponent)", 1e21, "1000000000000000000000"],
      ["-1.5e21", -1.5e21, "-1500000000000000000000"],
      ["1e300", 1e300, "1" + "0".repeat(300)],
      ["Number.MAX_VALUE", Number.MAX_VALUE, "17976931348623157" + "0".repeat(292)],
      ["bigint 2^53+1", 2n ** 53n + 1n, "9007199254740993"],
      ["bigint 10^21 equals the double 1e21", 10n ** 21n, "1000000000000000000000"],
      ["negative bigint", -12345678901234567890n, "-12345678901234567890"],
      ["bigint zero", 0n, "0"],
    ];
    for (const [name, value, expected] of cases) {
      it(name, function () {
        expect(canonicalJson(value)).to.equal(expected);
      });
    }

    const strings: [string, string][] = [
      ["quotes", 'he said "hi"'],
      ["backslash", "back\\slash"],
      ["short escapes", "\b\f\n\r\t"],
      ["other control characters", "\u0000\u0001\u001f\u007f"],
      ["emoji", "\ud83d\ude00 \ud83d\udc4d\ud83c\udffd"],
      ["line and paragraph separators", "\u2028\u2029"],
      ["slash and html", "</script>&<>"],
      ["non-BMP CJK", "\ud840\udc0b"],
    ];
    for (const [name, s] of strings) {
      it(`escapes ${name} exactly like JSON.stringify`, function () {
        expect(canonicalJson(s)).to.equal(JSON.stringify(s));
        expect(canonicalJson({ [s]: s })).to.equal(`{${JSON.stringify(s)}:${JSON.stringify(s)}}`);
      });
    }

    const refused: [string, () => unknown, string][] = [
      ["NaN", () => NaN, "NON_FINITE_NUMBER"],
      ["Infinity", () => Infinity, "NON_FINITE_NUMBER"],
      ["-Infinity nested", () => ({ a: [-Infinity] }), "NON_FINITE_NUMBER"],
      ["a function", () => () => 1, "UNSUPPORTED_TYPE"],
      ["a function member", () => ({ f() {} }), "UNSUPPORTED_TYPE"],
      ["a symbol", () => Symbol("s"), "UNSUPPORTED_TYPE"],
      ["a symbol-keyed member", () => ({ [Symbol("s")]: 1 }), "UNSUPPORTED_TYPE"],
      ["undefined at the top", () => undefined, "UNSUPPORTED_TYPE"],
      ["undefined in an array", () => [1, undefined], "UNSUPPORTED_TYPE"],
      ["an array hole", () => [1, , 3], "UNSUPPORTED_TYPE"], // eslint-disable-line no-sparse-arrays
      ["a Date", () => new Date(0), "UNSUPPORTED_TYPE"],
      ["a Map", () => new Map(), "UNSUPPORTED_TYPE"],
      ["a Uint8Array", () => new Uint8Array(1), "UNSUPPORTED_TYPE"],
      ["a class instance", () => new Point(), "UNSUPPORTED_TYPE"],
      ["a cyclic object", () => cyclicObject, "CYCLE"],
      ["a cyclic array", () => cyclicArray, "CYCLE"],
      ["keys colliding after NFC", () => ({ [NFC_E]: 1, [NFD_E]: 2 }), "DUPLICATE_KEY"],
      ["a lone high surrogate", () => "a\ud800b", "LONE_SURROGATE"],
      ["a lone low surrogate in a key", () => ({ "\udc00": 1 }), "LONE_SURROGATE"],
      ["nesting deeper than MAX_DEPTH", () => nestedValue(MAX_DEPTH + 1), "TOO_DEEP"],
    ];
    for (const [name, make, code] of refused) {
      it(`refuses ${name} (${code})`, function () {
        const value = make();
        expectEncodingError(() => canonicalJson(value), code);
      });
    }

    it("error messages say where the problem is", function () {
      expect(() => canonicalJson({ a: [1, NaN] })).to.throw(EncodingError, /NaN \(not JSON\) at \$\.a\[1\]$/);
    });

    it("key order of the input never matters (property)", function () {
      fc.assert(
        fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (dict) => {
          const reversed = Object.fromEntries(Object.entries(dict).reverse());
          expect(canonicalJson(reversed)).to.equal(canonicalJson(dict));
        }),
        { numRuns: 200 },
      );
    });

    it("every finite double prints as JSON.stringify does, expanded above 1e21, and round-trips (property)", function () {
      fc.assert(
        fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (d) => {
          const s = canonicalJson(d);
          expect(s).to.match(/^-?(0|[1-9][0-9]*)(\.[0-9]+)?(e-[0-9]+)?$/);
          expect(Number(s)).to.equal(d === 0 ? 0 : d);
          if (Math.abs(d) < 1e21) expect(s).to.equal(JSON.stringify(d));
        }),
        { numRuns: 500 },
      );
    });
  });

  // ---------------------------------------------------------------------------------------------------------- canonicalResult

  describe("canonicalResult", function () {
    const canonical: [string, string, string][] = [
      ["sorts keys, nested", '{"b":1,"a":[1,2,{"d":4,"c":3}]}', '{"a":[1,2,{"c":3,"d":4}],"b":1}'],
      ["removes inner whitespace", '{ "a" : [ 1 , 2 ] ,\n "b" : { } }', '{"a":[1,2],"b":{}}'],
      ["trims surrounding whitespace", ' \n\t\r{"a":1}\r\n ', '{"a":1}'],
      ["a top-level number with a newline", "42\n", "42"],
      ["a top-level string", '"hi"', '"hi"'],
      ["null", " null ", "null"],
      ["true", "true", "true"],
      ["empty object", "{}", "{}"],
      ["empty array", "[ ]", "[]"],
      ["empty string", '""', '""'],
      ["__proto__ is an ordinary key", '{"__proto__":{"x":1},"a":0}', '{"__proto__":{"x":1},"a":0}'],
      ["keeps a big integer exactly", '{"a":12345678901234567890}', '{"a":12345678901234567890}'],
      ["2^53+1", "9007199254740993", "9007199254740993"],
      ["a negative big integer", "-123456789012345678901234567890", "-123456789012345678901234567890"],
      ["a 400-digit integer", "9".repeat(400), "9".repeat(400)],
      ["1e21", "1e21", "1000000000000000000000"],
      ["1E+21", "1E+21", "1000000000000000000000"],
      ["1.5e300 (exact, not via a double)", "1.5e300", "15" + "0".repeat(299)],
      ["an integer with a fraction of zeros", "1.000", "1"],
      ["2.50e1", "2.50e1", "25"],
      ["100e-2", "100e-2", "1"],
      ["12.5e-1", "12.5e-1", "1.25"],
      ["-0", "-0", "0"],
      ["-0.0", "-0.0", "0"],
      ["0e999999", "0e999999", "0"],
      ["1e-7", "1e-7", "1e-7"],
      ["0.0000001", "0.0000001", "1e-7"],
      ["0.1", "0.1", "0.1"],
      ["0.30000000000000004", "0.30000000000000004", "0.30000000000000004"],
      ["1e-400 underflows to 0", "1e-400", "0"],
      ["NFD string", `"${NFD_E}"`, `"${NFC_E}"`],
      ["NFD string as escapes", '"e\\u0301"', `"${NFC_E}"`],
      ["NFD key", `{"${NFD_E}":1}`, `{"${NFC_E}":1}`],
      [
        "escapes decoded and re-escaped",
        '"\\u0041\\/\\"\\\\\\b\\f\\n\\r\\t\\u001F\\u007f"',
        '"A/\\"\\\\\\b\\f\\n\\r\\t\\u001f\u007f"',
      ],
      ["a surrogate pair escape", '"\\ud83d\\ude00"', '"\ud83d\ude00"'],
      ["raw UTF-8 emoji", '{"k":"\ud83d\ude00"}', '{"k":"\ud83d\ude00"}'],
      ["deepest nesting accepted", nested(MAX_DEPTH), nested(MAX_DEPTH)],
    ];
    for (const [name, input, expected] of canonical) {
      it(`canonicalises ${name}`, function () {
        const out = canonicalResult(utf8(input));
        expect(toUtf8String(out)).to.equal(expected);
        expect(hexlify(canonicalResult(out))).to.equal(hexlify(out), "idempotent");
      });
    }

    const raw: [string, Uint8Array][] = [
      ["empty output", new Uint8Array(0)],
      ["whitespace only", utf8(" \n\t ")],
      ["plain text", utf8("hello world\n")],
      ["binary bytes", new Uint8Array([0, 1, 2, 3, 0xfe])],
      ["invalid UTF-8 before JSON", new Uint8Array([0xff, 0x7b, 0x7d])],
      ["invalid UTF-8 inside a JSON string", new Uint8Array([0x22, 0xc3, 0x22])],
      ["an overlong UTF-8 encoding", new Uint8Array([0x22, 0xc0, 0xaf, 0x22])],
      ["a UTF-8 BOM before JSON", new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])],
      ["a trailing comma", utf8('{"a":1,}')],
      ["two JSON values", utf8('{"a":1} {"b":2}')],
      ["a form feed around JSON (not JSON whitespace)", utf8('{"a":1}\f')],
      ["NaN", utf8("NaN")],
      ["Infinity", utf8("[Infinity]")],
      ["a leading zero", utf8("01")],
      ["a trailing dot", utf8("1.")],
      ["a leading dot", utf8(".5")],
      ["a plus sign", utf8("+1")],
      ["single quotes", utf8("{'a':1}")],
      ["an unescaped control character in a string", utf8('"tab\there"')],
      ["an invalid escape", utf8('"\\x41"')],
      ["a short \\u escape", utf8('"\\u12"')],
      ["an unterminated string", utf8('"abc')],
      ["an unterminated array", utf8("[1,2")],
      ["duplicate keys", utf8('{"a":1,"a":2}')],
      ["keys colliding after NFC", utf8(`{"${NFC_E}":1,"${NFD_E}":2}`)],
      ["a lone surrogate escape", utf8('"\\ud800"')],
      ["an integer of 10^309 written with an exponent", utf8("1e309")],
      ["a non-integer beyond a double", utf8("1" + "0".repeat(400) + ".5")],
      ["nesting deeper than MAX_DEPTH", utf8(nested(MAX_DEPTH + 1))],
    ];
    for (const [name, bytes] of raw) {
      it(`leaves ${name} unchanged`, function () {
        const out = canonicalResult(bytes);
        expect(hexlify(out)).to.equal(hexlify(bytes));
      });
    }

    it("parseJsonExact keeps big integers as bigints and refuses duplicates with a code", function () {
      expect(parseJsonExact('{"a":12345678901234567890,"b":1.5}')).to.deep.equal(
        Object.assign(Object.create(null), { a: 12345678901234567890n, b: 1.5 }),
      );
      expectEncodingError(() => parseJsonExact('{"a":1,"a":1}'), "DUPLICATE_KEY");
      expectEncodingError(() => parseJsonExact("[1,]"), "INVALID_JSON");
      expectEncodingError(() => parseJsonExact("1e400"), "NUMBER_OUT_OF_RANGE");
    });

    it("formatting and key order of random JSON never change the canonical form (property)", function () {
      fc.assert(
        fc.property(fc.jsonValue({ stringUnit: "grapheme" }), (v) => {
          let expected: string;
          try {
            expected = canonicalJson(v);
          } catch (e) {
            fc.pre(!(e instanceof EncodingError && e.code === "DUPLICATE_KEY")); // random NFC collisions
            throw e;
          }
          expect(toUtf8String(canonicalResult(utf8(JSON.stringify(v, null, 2))))).to.equal(expected);
          expect(toUtf8String(canonicalResult(utf8(expected)))).to.equal(expected);
        }),
        { numRuns: 300 },
      );
    });
  });

  // ---------------------------------------------------------------------------------------------------------- resultDigest

  describe("resultDigest", function () {
    const equal: [string, string][] = [
      ['{"a":1,"b":[1,2]}', ' { "b" : [1, 2],\n "a" : 1.0 }\n'],
      [`{"${NFC_E}":"${NFC_E}"}`, '{"e\\u0301":"e\u0301"}'],
      ['{"n":1e2}', '{"n":100}'],
      ['{"n":1e21}', '{"n":1000000000000000000000}'],
      ['{"n":0.5}', '{"n":5e-1}'],
      ['{"n":-0}', '{"n":0}'],
      ['"\\u00e9"', `"${NFC_E}"`],
    ];
    for (const [a, b] of equal) {
      it(`is equal for ${a} and ${JSON.stringify(b)}`, function () {
        expect(resultDigest(utf8(a))).to.equal(resultDigest(utf8(b)));
      });
    }

    const different: [string, string][] = [
      ['{"a":[1,2]}', '{"a":[2,1]}'],
      ['{"a":1}', '{"a":"1"}'],
      ['{"a":1}', '{"a":1,"b":null}'],
      ['{"a":12345678901234567890}', '{"a":12345678901234567891}'],
      ['{"a":9007199254740993}', '{"a":9007199254740992}'],
      ["1", "1.5"],
      ["hello", "hello\n"],
      ["", " "],
      ['{"a":1,"a":2}', '{"a":2}'],
    ];
    for (const [a, b] of different) {
      it(`differs for ${JSON.stringify(a)} and ${JSON.stringify(b)}`, function () {
        expect(resultDigest(utf8(a))).to.not.equal(resultDigest(utf8(b)));
      });
    }

    it("is keccak256 of the canonical bytes, and of the raw bytes otherwise", function () {
      expect(resultDigest(utf8('{ "b":2, "a":1 }'))).to.equal(keccak256(utf8('{"a":1,"b":2}')));
      expect(resultDigest(utf8("plain"))).to.equal(keccak256(utf8("plain")));
      expect(resultDigest(new Uint8Array(0))).to.equal(keccak256("0x"));
      expect(resultDigest(utf8("{}"))).to.match(/^0x[0-9a-f]{64}$/);
    });
  });

  // ---------------------------------------------------------------------------------------------------------- directoryDigest

  describe("directoryDigest", function () {
    let base: string;
    let n = 0;
    const fresh = async () => {
      const d = join(base, `d${n++}`);
      await mkdir(d);
      return d;
    };
    const put = async (dir: string, rel: string, content: string | Uint8Array) => {
      const parts = rel.split("/");
      if (parts.length > 1) await mkdir(join(dir, ...parts.slice(0, -1)), { recursive: true });
      await writeFile(join(dir, ...parts), content);
    };
    const make = async (files: [string, string | Uint8Array][]) => {
      const d = await fresh();
      for (const [rel, content] of files) await put(d, rel, content);
      return d;
    };
    /** The documented format: keccak256 of the canonical JSON of [[path, fileDigest], ...] in the given order. */
    const expectedDigest = (files: [string, string][]) =>
      keccak256(utf8(JSON.stringify(files.map(([p, c]) => [p, resultDigest(utf8(c))]))));

    before(async function () {
      base = await mkdtemp(join(tmpdir(), "concord-encoding-"));
    });
    after(async function () {
      await rm(base, { recursive: true, force: true });
    });

    it("an empty directory digests to keccak256('[]')", async function () {
      expect(EMPTY_DIRECTORY_DIGEST).to.equal(keccak256(utf8("[]")));
      expect(await directoryDigest(await fresh())).to.equal(EMPTY_DIRECTORY_DIGEST);
    });

    it("empty subdirectories contribute nothing", async function () {
      const d = await fresh();
      await mkdir(join(d, "a", "b"), { recursive: true });
      expect(await directoryDigest(d)).to.equal(EMPTY_DIRECTORY_DIGEST);
      await put(d, "x.txt", "x");
      const e = await make([["x.txt", "x"]]);
      expect(await directoryDigest(d)).to.equal(await directoryDigest(e));
    });

    it("filesDigest of files in memory is directoryDigest of a directory holding exactly them", async function () {
      const segment = fc.stringMatching(/^[a-zA-Z0-9_.é-]{1,8}$/).filter((x) => x !== "." && x !== "..");
      const path = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("/"));
      const content = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.json().map((j) => utf8(j)));
      await fc.assert(
        fc.asyncProperty(fc.uniqueArray(fc.tuple(path, content), { minLength: 0, maxLength: 5, selector: ([p]) => p }), async (files) => {
          // no path may be both a file and a directory
          const paths = files.map(([p]) => p);
          fc.pre(!paths.some((p) => paths.some((q) => q.startsWith(`${p}/`))));
          const d = await make(files);
          expect(filesDigest(files.map(([p, bytes]) => ({ path: p, bytes })))).to.equal(await directoryDigest(d));
        }),
        { numRuns: 40 },
      );
      expect(filesDigest([])).to.equal(EMPTY_DIRECTORY_DIGEST);
      expect(() => filesDigest([{ path: "a", bytes: utf8("1") }, { path: "a", bytes: utf8("2") }])).to.throw(EncodingError, /given twice/);
      expect(() => filesDigest([{ path: "e\u0301", bytes: utf8("1") }])).to.throw(EncodingError, /not NFC/);
    });

    it("follows the documented format (relative paths, '/' separators, canonical file digests)", async function () {
      const d = await make([
        ["sub/b.json", '{ "y": 1, "x": 2 }'],
        ["a.txt", "hello"],
        ["sub/deeper/c", ""],
      ]);
      expect(await directoryDigest(d)).to.equal(
        expectedDigest([
          ["a.txt", "hello"],
          ["sub/b.json", '{"x":2,"y":1}'],
          ["sub/deeper/c", ""],
        ]),
      );
    });

    it("sorts paths by UTF-8 byte order, not by tree walk or UTF-16 order", async function () {
      // bytes: "B" 42 < "a" 61 < "a-b" < "a.b" < "a/b" ("-" 2D < "." 2E < "/" 2F) < "~" 7E < "é" C3A9
      // < "｡" EF BDA1 < "😀" F09F9880 (UTF-16 would put "😀" D83D before "｡" FF61)
      const names = ["\ud83d\ude00", "\uff61", NFC_E, "~", "a/b", "a.b", "a-b", "B"];
      const d = await make(names.map((p) => [p, p] as [string, string]));
      const sorted = ["B", "a-b", "a.b", "a/b", "~", NFC_E, "\uff61", "\ud83d\ude00"];
      expect(await directoryDigest(d)).to.equal(expectedDigest(sorted.map((p) => [p, p])));
    });

    it("does not depend on the order of creation", async function () {
      const files: [string, string][] = [
        ["z.bin", "zzz"],
        ["a/b/c.json", "[1,2,3]"],
        ["a/a.txt", "A"],
        ["m", '{"k":"v"}'],
      ];
      const forward = await make(files);
      const backward = await make([...files].reverse());
      expect(await directoryDigest(forward)).to.equal(await directoryDigest(backward));
    });

    it("canonicalises JSON files by content, whatever their name; one result.json is not special", async function () {
      const pretty = await make([["result.json", '{\n  "b": [1, 2],\n  "a": 1.0\n}\n']]);
      const compact = await make([["result.json", '{"a":1,"b":[1,2]}']]);
      expect(await directoryDigest(pretty)).to.equal(await directoryDigest(compact));
      expect(await directoryDigest(compact)).to.equal(expectedDigest([["result.json", '{"a":1,"b":[1,2]}']]));
      expect(await directoryDigest(compact)).to.not.equal(resultDigest(utf8('{"a":1,"b":[1,2]}')));
      const txt = await make([["out.txt", '{"a":1,"b":[1,2]}']]);
      const txtPretty = await make([["out.txt", '{ "b":[1,2], "a":1 }']]);
      expect(await directoryDigest(txt)).to.equal(await directoryDigest(txtPretty));
    });

    it("changes when a file's content, name or place changes, or a file is added", async function () {
      const baseline = await directoryDigest(
        await make([
          ["a/x.txt", "1"],
          ["b.txt", "2"],
        ]),
      );
      const variants: [string, [string, string][]][] = [
        [
          "content",
          [
            ["a/x.txt", "1"],
            ["b.txt", "3"],
          ],
        ],
        [
          "name",
          [
            ["a/y.txt", "1"],
            ["b.txt", "2"],
          ],
        ],
        [
          "place",
          [
            ["x.txt", "1"],
            ["b.txt", "2"],
          ],
        ],
        [
          "extra empty file",
          [
            ["a/x.txt", "1"],
            ["b.txt", "2"],
            ["c", ""],
          ],
        ],
        [
          "swapped contents",
          [
            ["a/x.txt", "2"],
            ["b.txt", "1"],
          ],
        ],
      ];
      for (const [what, files] of variants) {
        expect(await directoryDigest(await make(files)), what).to.not.equal(baseline);
      }
    });

    it("normalises file and directory names to NFC", async function () {
      const nfc = await make([[`${NFC_E}/${NFC_E}.txt`, "x"]]);
      const nfd = await make([[`${NFD_E}/${NFD_E}.txt`, "x"]]);
      expect(await directoryDigest(nfd)).to.equal(await directoryDigest(nfc));
    });

    it("refuses two names equal after NFC (DUPLICATE_PATH)", async function () {
      const d = await make([
        [`${NFC_E}.txt`, "1"],
        [`${NFD_E}.txt`, "2"],
      ]);
      await expectEncodingErrorAsync(directoryDigest(d), "DUPLICATE_PATH");
    });

    it("refuses a name that is not UTF-8 (INVALID_PATH)", async function () {
      const d = await fresh();
      await writeFile(Buffer.concat([Buffer.from(d + "/"), Buffer.from([0x66, 0xff])]), "x");
      await expectEncodingErrorAsync(directoryDigest(d), "INVALID_PATH");
    });

    const links: [string, (d: string) => Promise<void>][] = [
      ["to a file", (d) => symlink(join(d, "real.txt"), join(d, "link.txt"))],
      ["to a directory", (d) => symlink(join(d, "sub"), join(d, "linkdir"))],
      ["dangling", (d) => symlink(join(d, "missing"), join(d, "dangling"))],
      ["nested", (d) => symlink("../real.txt", join(d, "sub", "up.txt"))],
    ];
    for (const [name, link] of links) {
      it(`refuses a symbolic link ${name} (SYMLINK)`, async function () {
        const d = await make([
          ["real.txt", "r"],
          ["sub/s.txt", "s"],
        ]);
        await link(d);
        await expectEncodingErrorAsync(directoryDigest(d), "SYMLINK");
      });
    }

    it("refuses a root that is a symbolic link or not a directory", async function () {
      const d = await make([["f.txt", "f"]]);
      const l = join(base, `link${n++}`);
      await symlink(d, l);
      await expectEncodingErrorAsync(directoryDigest(l), "SYMLINK");
      await expectEncodingErrorAsync(directoryDigest(join(d, "f.txt")), "NOT_A_DIRECTORY");
    });
  });

  // ---------------------------------------------------------------------------------------------------------- callbacks

  describe("resultDigestForCallback", function () {
    const rows: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["ABI-like bytes", new Uint8Array([0, 0, 0, 0x2a, 0xff])],
      ["non-canonical JSON", utf8('{ "b":1, "a":2 }')],
      ["NFD text", utf8(`"${NFD_E}"`)],
    ];
    for (const [name, data] of rows) {
      it(`is keccak256 of the exact bytes (${name}), as callbackDigest and the contract`, function () {
        expect(resultDigestForCallback(data)).to.equal(keccak256(data));
        expect(resultDigestForCallback(data)).to.equal(callbackDigest(data));
      });
    }

    it("does not canonicalise, unlike resultDigest", function () {
      const data = utf8('{ "b":1, "a":2 }');
      expect(resultDigestForCallback(data)).to.not.equal(resultDigest(data));
    });
  });
});
