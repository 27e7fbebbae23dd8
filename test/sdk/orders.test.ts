/**
 * sdk/orders.ts: order JSON validation (zod), the JSON round trip, builders, signature verification and the
 * task-level message builders, checked against the deployed contracts.
 */
import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import fc from "fast-check";
import {
  AbiCoder,
  Wallet,
  ZeroAddress,
  ZeroHash,
  dataSlice,
  getAddress,
  hexlify,
  id,
  keccak256,
  randomBytes,
  toUtf8Bytes,
  zeroPadValue,
} from "ethers";
import { Fixture, PRICES, deployFixture, signedOrders } from "../helpers/fixture";
import { Contribution, Status } from "../helpers/status";
import {
  AppOrder,
  DatasetOrder,
  ORDER_TYPES,
  OrderKind,
  OrderOf,
  RequestOrder,
  Signed,
  WorkerpoolOrder,
  callbackDigest,
  dealId as dealIdOf,
  domain,
  hashOrder,
  resultHash,
  resultSeal,
  signOrder,
  taskId as taskIdOf,
} from "../../sdk/eip712";
import {
  MAX_UINT256,
  ORDER_KINDS,
  ORDER_SCHEMAS,
  OrderErrorCode,
  OrderValidationError,
  SIGNED_ORDER_SCHEMAS,
  authorizationSignature,
  buildAppOrder,
  buildDatasetOrder,
  buildRequestOrder,
  buildWorkerpoolOrder,
  commitment,
  isSigned,
  orderToJson,
  parseOrder,
  parseOrderJson,
  parseSignedOrder,
  parseSignedOrderJson,
  parseUnsignedOrder,
  randomSalt,
  recoverOrderSigner,
  relayedContribution,
  relayedReveal,
  verifyOrderSignature,
} from "../../sdk/orders";

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** A fresh random checksummed address. */
function randomAddress(): string {
  return getAddress(hexlify(randomBytes(20)));
}

/** One order of each kind with non-default values everywhere (restricts, tags, expiry, nonce, unicode params). */
function sampleOrders(ids = { app: 1n, dataset: 1n, workerpool: 1n }, requester = randomAddress()) {
  const tag = "0x" + "00".repeat(31) + "03";
  return {
    AppOrder: buildAppOrder({
      app: ids.app,
      appprice: PRICES.app,
      volume: 100,
      tag,
      datasetrestrict: 7,
      workerpoolrestrict: "9",
      requesterrestrict: requester,
      expiry: 2_000_000_000,
      nonce: 4n,
    }),
    DatasetOrder: buildDatasetOrder({
      dataset: ids.dataset,
      datasetprice: "2000000000000000000",
      volume: MAX_UINT256,
      apprestrict: 11n,
      requesterrestrict: requester.toLowerCase(),
    }),
    WorkerpoolOrder: buildWorkerpoolOrder({
      workerpool: ids.workerpool,
      workerpoolprice: PRICES.workerpool,
      category: 0,
      trust: 32,
      volume: 100,
      tag,
      apprestrict: 1,
      datasetrestrict: 1,
    }),
    RequestOrder: buildRequestOrder({
      app: ids.app,
      appmaxprice: PRICES.app,
      dataset: ids.dataset,
      datasetmaxprice: PRICES.dataset,
      workerpoolmaxprice: PRICES.workerpool,
      category: 0,
      requester,
      volume: 3,
      trust: 2,
      beneficiary: randomAddress(),
      callback: randomAddress(),
      params: '{"args":"héllo ✓ 🚀","iexec_input_files":["https://example.org/a b"]}',
    }),
  } satisfies { [K in OrderKind]: OrderOf<K> };
}

/** The thrown OrderValidationError of `fn` (fails the test when `fn` returns or throws something else). */
function errorOf(fn: () => unknown): OrderValidationError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(OrderValidationError);
    expect(e).to.be.instanceOf(Error);
    const err = e as OrderValidationError;
    expect(err.message, "one line").not.to.match(/[\r\n]/);
    expect(err.message.startsWith(`${err.path}: `), err.message).to.equal(true);
    return err;
  }
  expect.fail("expected an OrderValidationError");
}

/** hub.hashXOrder of an order of `kind` (the on-chain EIP-712 digest). */
function hubHash<K extends OrderKind>(f: Fixture, kind: K, order: OrderOf<K>): Promise<string> {
  const o = { ...order, sign: "0x" };
  switch (kind) {
    case "AppOrder":
      return f.hub.hashAppOrder(o as Signed<AppOrder>);
    case "DatasetOrder":
      return f.hub.hashDatasetOrder(o as Signed<DatasetOrder>);
    case "WorkerpoolOrder":
      return f.hub.hashWorkerpoolOrder(o as Signed<WorkerpoolOrder>);
    default:
      return f.hub.hashRequestOrder(o as Signed<RequestOrder>);
  }
}

describe("sdk/orders", function () {
  describe("schemas", function () {
    it("have exactly the EIP-712 fields of each kind (plus sign for the signed form)", function () {
      for (const kind of ORDER_KINDS) {
        const names = ORDER_TYPES[kind].map((f) => f.name);
        expect(Object.keys(ORDER_SCHEMAS[kind].shape), kind).to.deep.equal(names);
        expect(Object.keys(SIGNED_ORDER_SCHEMAS[kind].shape), kind).to.deep.equal([...names, "sign"]);
      }
    });

    it("are usable directly with zod's safeParse", function () {
      const json = orderToJson(sampleOrders().AppOrder);
      const ok = ORDER_SCHEMAS.AppOrder.safeParse(json);
      expect(ok.success).to.equal(true);
      const bad = ORDER_SCHEMAS.AppOrder.safeParse({ ...json, volume: -1 });
      expect(bad.success).to.equal(false);
    });
  });

  describe("round trip", function () {
    const signer = Wallet.createRandom();
    const d = domain(31337n, randomAddress());

    for (const kind of ["AppOrder", "DatasetOrder", "WorkerpoolOrder", "RequestOrder"] as const) {
      it(`${kind}: build → sign → orderToJson → JSON.stringify → parseOrderJson gives the original`, async function () {
        const order = sampleOrders()[kind] as OrderOf<typeof kind>;
        const signed = await signOrder(signer, d, kind, order);
        const json = orderToJson(signed);
        for (const [key, value] of Object.entries(json)) expect(typeof value, key).not.to.equal("bigint");
        const text = JSON.stringify(json);
        const parsed = parseOrderJson(kind, text);
        expect(parsed).to.deep.equal(signed);
        expect(isSigned(parsed)).to.equal(true);
        expect(parseSignedOrderJson(kind, text)).to.deep.equal(signed);
        expect(parseOrder(kind, JSON.parse(text))).to.deep.equal(signed);
        expect(verifyOrderSignature(d, kind, parseSignedOrderJson(kind, text), signer.address)).to.equal(true);
        // Unsigned: no `sign` key comes back.
        const unsignedParsed = parseOrderJson(kind, JSON.stringify(orderToJson(order)));
        expect(unsignedParsed).to.deep.equal(order);
        expect("sign" in unsignedParsed).to.equal(false);
        expect(isSigned(unsignedParsed)).to.equal(false);
      });
    }

    it("holds for arbitrary orders of every kind (property)", function () {
      const u256 = fc.oneof(fc.constant(0n), fc.constant(MAX_UINT256), fc.bigInt({ min: 0n, max: MAX_UINT256 }));
      const b32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hexlify(b));
      const addr = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => getAddress(hexlify(b)));
      const str = fc.string({ unit: "binary", maxLength: 40 });
      const arbOf = { uint256: u256, bytes32: b32, address: addr, string: str } as Record<string, fc.Arbitrary<unknown>>;
      for (const kind of ORDER_KINDS) {
        const record = fc.record(Object.fromEntries(ORDER_TYPES[kind].map((f) => [f.name, arbOf[f.type]])));
        fc.assert(
          fc.property(record, (raw) => {
            const order = parseOrder(kind, raw);
            expect(order).to.deep.equal(raw);
            expect(parseOrderJson(kind, JSON.stringify(orderToJson(order)))).to.deep.equal(order);
          }),
          { numRuns: 100 },
        );
      }
    });

    it("normalises addresses to checksummed and hex to lowercase, leaving the hash unchanged", function () {
      const d2 = domain(1n, randomAddress());
      const order = sampleOrders().RequestOrder;
      const json = {
        ...orderToJson(order),
        requester: order.requester.toLowerCase(),
        salt: order.salt.toUpperCase().replace(/^0X/, "0x"),
        volume: 3, // a number
        trust: 2n, // a bigint
      };
      const parsed = parseOrder("RequestOrder", json);
      expect(parsed).to.deep.equal(order);
      expect(hashOrder(d2, "RequestOrder", parsed)).to.equal(hashOrder(d2, "RequestOrder", order));
      const sign = "0x" + "AB".repeat(65);
      expect(parseSignedOrder("RequestOrder", { ...json, sign }).sign).to.equal(sign.toLowerCase());
    });

    it("accepts the bounds and forms of a uint256", function () {
      const base = orderToJson(sampleOrders().AppOrder);
      const cases: [unknown, bigint][] = [
        [0, 0n],
        ["0", 0n],
        [0n, 0n],
        ["000123", 123n],
        [Number.MAX_SAFE_INTEGER, BigInt(Number.MAX_SAFE_INTEGER)],
        [MAX_UINT256.toString(), MAX_UINT256],
        [MAX_UINT256, MAX_UINT256],
      ];
      for (const [input, expected] of cases) {
        expect(parseOrder("AppOrder", { ...base, volume: input }).volume, String(input)).to.equal(expected);
      }
    });

    it("accepts the empty signature of a presigned order", function () {
      const order = sampleOrders().AppOrder;
      expect(parseSignedOrder("AppOrder", { ...orderToJson(order), sign: "0x" })).to.deep.equal({ ...order, sign: "0x" });
    });
  });

  describe("builders", function () {
    it("fill the defaults: volume 1, zero tag, zero restricts, expiry 0, nonce 0, a random salt", function () {
      const a = buildAppOrder({ app: 1, appprice: "5" });
      expect({ ...a, salt: undefined }).to.deep.equal({
        app: 1n,
        appprice: 5n,
        volume: 1n,
        tag: ZeroHash,
        datasetrestrict: 0n,
        workerpoolrestrict: 0n,
        requesterrestrict: ZeroAddress,
        expiry: 0n,
        nonce: 0n,
        salt: undefined,
      });
      expect(a.salt).to.match(/^0x[0-9a-f]{64}$/);
      expect(buildAppOrder({ app: 1, appprice: 5 }).salt).not.to.equal(a.salt);
      expect(randomSalt()).not.to.equal(randomSalt());

      const ds = buildDatasetOrder({ dataset: 2, datasetprice: 0 });
      expect([ds.volume, ds.tag, ds.apprestrict, ds.workerpoolrestrict, ds.requesterrestrict]).to.deep.equal([
        1n,
        ZeroHash,
        0n,
        0n,
        ZeroAddress,
      ]);
      const wp = buildWorkerpoolOrder({ workerpool: 3, workerpoolprice: 10, category: 1 });
      expect([wp.trust, wp.apprestrict, wp.datasetrestrict, wp.expiry, wp.nonce]).to.deep.equal([0n, 0n, 0n, 0n, 0n]);
    });

    it("default the request's beneficiary to its requester, with no dataset, any pool, no callback", function () {
      const requester = randomAddress();
      const r = buildRequestOrder({
        app: 1,
        appmaxprice: 1,
        workerpoolmaxprice: 10,
        category: 0,
        requester: requester.toLowerCase(),
      });
      expect(r.requester).to.equal(requester);
      expect(r.beneficiary).to.equal(requester);
      expect([r.dataset, r.datasetmaxprice, r.workerpool, r.volume, r.trust, r.callback, r.params]).to.deep.equal([
        0n,
        0n,
        0n,
        1n,
        0n,
        ZeroAddress,
        "",
      ]);
    });

    it("validate their input", function () {
      const err = errorOf(() => buildAppOrder({ app: 1, appprice: -1 }));
      expect([err.code, err.path]).to.deep.equal(["OUT_OF_RANGE", "AppOrder.appprice"]);
      const err2 = errorOf(() =>
        buildRequestOrder({ app: 1, appmaxprice: 1, workerpoolmaxprice: 1, category: 0, requester: "0x1234" }),
      );
      // The beneficiary defaults to the (bad) requester: both are reported, the first in the message.
      expect([err2.code, err2.path]).to.deep.equal(["INVALID_ADDRESS", "RequestOrder.requester"]);
      expect(err2.issues.map((i) => i.path)).to.deep.equal(["RequestOrder.requester", "RequestOrder.beneficiary"]);
    });
  });

  describe("validation errors", function () {
    const orders = sampleOrders();
    const jsonOf = (kind: OrderKind): Record<string, unknown> => ({ ...orderToJson(orders[kind]) });
    const badChecksum = (() => {
      const a = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"; // EIP-55 test vector
      expect(getAddress(a)).to.equal(a);
      return a.replace("aA", "AA"); // one letter's case flipped
    })();

    interface Case {
      name: string;
      kind: OrderKind;
      field: string;
      value?: unknown;
      /** Remove the field instead of setting it. */
      remove?: boolean;
      code: OrderErrorCode;
      problem: RegExp;
    }

    const cases: Case[] = [
      { name: "missing field", kind: "RequestOrder", field: "trust", remove: true, code: "MISSING_FIELD", problem: /^missing field$/ },
      { name: "missing field (address)", kind: "AppOrder", field: "requesterrestrict", remove: true, code: "MISSING_FIELD", problem: /^missing field$/ },
      { name: "missing field (string)", kind: "RequestOrder", field: "params", remove: true, code: "MISSING_FIELD", problem: /^missing field$/ },
      { name: "unknown field", kind: "RequestOrder", field: "priority", value: 1, code: "UNKNOWN_FIELD", problem: /^unknown field$/ },
      { name: "unknown field (typo)", kind: "WorkerpoolOrder", field: "workerPool", value: "1", code: "UNKNOWN_FIELD", problem: /^unknown field$/ },
      { name: "negative number", kind: "RequestOrder", field: "volume", value: -1, code: "OUT_OF_RANGE", problem: /negative -1/ },
      { name: "negative decimal string", kind: "DatasetOrder", field: "datasetprice", value: "-5", code: "OUT_OF_RANGE", problem: /negative "-5"/ },
      { name: "negative bigint", kind: "AppOrder", field: "appprice", value: -1n, code: "OUT_OF_RANGE", problem: /negative -1n/ },
      { name: "2^256 as a string", kind: "WorkerpoolOrder", field: "workerpoolprice", value: (2n ** 256n).toString(), code: "OUT_OF_RANGE", problem: /exceeds 2\^256-1/ },
      { name: "2^256 as a bigint", kind: "RequestOrder", field: "nonce", value: 2n ** 256n, code: "OUT_OF_RANGE", problem: /exceeds 2\^256-1/ },
      { name: "non-integer number", kind: "RequestOrder", field: "trust", value: 1.5, code: "INVALID_UINT", problem: /expected an unsigned integer, got 1\.5/ },
      { name: "non-integer string", kind: "RequestOrder", field: "trust", value: "1.5", code: "INVALID_UINT", problem: /decimal string, got "1\.5"/ },
      { name: "exponent string", kind: "AppOrder", field: "volume", value: "1e3", code: "INVALID_UINT", problem: /decimal string/ },
      { name: "hex string", kind: "AppOrder", field: "app", value: "0x10", code: "INVALID_UINT", problem: /decimal string/ },
      { name: "empty string", kind: "AppOrder", field: "expiry", value: "", code: "INVALID_UINT", problem: /decimal string/ },
      { name: "padded string", kind: "AppOrder", field: "expiry", value: " 1", code: "INVALID_UINT", problem: /decimal string/ },
      { name: "NaN", kind: "DatasetOrder", field: "volume", value: NaN, code: "INVALID_UINT", problem: /got NaN/ },
      { name: "Infinity", kind: "DatasetOrder", field: "volume", value: Infinity, code: "INVALID_UINT", problem: /got Infinity/ },
      { name: "unsafe number", kind: "RequestOrder", field: "appmaxprice", value: 1e21, code: "UNSAFE_NUMBER", problem: /decimal string/ },
      { name: "2^53", kind: "RequestOrder", field: "appmaxprice", value: 2 ** 53, code: "UNSAFE_NUMBER", problem: /above 2\^53-1/ },
      { name: "wrong type (boolean uint)", kind: "RequestOrder", field: "trust", value: true, code: "INVALID_TYPE", problem: /^expected an unsigned integer .*got true$/ },
      { name: "wrong type (null uint)", kind: "WorkerpoolOrder", field: "category", value: null, code: "INVALID_TYPE", problem: /got null/ },
      { name: "wrong type (array uint)", kind: "WorkerpoolOrder", field: "trust", value: [1], code: "INVALID_TYPE", problem: /got an array/ },
      { name: "wrong type (object uint)", kind: "WorkerpoolOrder", field: "trust", value: { n: 1 }, code: "INVALID_TYPE", problem: /got an object/ },
      { name: "bad address (short)", kind: "RequestOrder", field: "requester", value: "0x1234", code: "INVALID_ADDRESS", problem: /0x \+ 40 hex/ },
      { name: "bad address (no 0x)", kind: "RequestOrder", field: "beneficiary", value: "52908400098527886e0f7030069857d2e4169ee7", code: "INVALID_ADDRESS", problem: /0x \+ 40 hex/ },
      { name: "bad address (not hex)", kind: "RequestOrder", field: "callback", value: "0x" + "zz".repeat(20), code: "INVALID_ADDRESS", problem: /0x \+ 40 hex/ },
      { name: "bad address (checksum)", kind: "AppOrder", field: "requesterrestrict", value: badChecksum, code: "INVALID_ADDRESS", problem: /checksum/ },
      { name: "bad address (ENS name)", kind: "DatasetOrder", field: "requesterrestrict", value: "alice.eth", code: "INVALID_ADDRESS", problem: /alice\.eth/ },
      { name: "wrong type (address)", kind: "DatasetOrder", field: "requesterrestrict", value: 0, code: "INVALID_TYPE", problem: /expected an address string, got 0/ },
      { name: "bad bytes32 (short)", kind: "AppOrder", field: "tag", value: "0x1234", code: "INVALID_BYTES32", problem: /0x \+ 64 hex/ },
      { name: "bad bytes32 (not hex)", kind: "RequestOrder", field: "salt", value: "0x" + "g".repeat(64), code: "INVALID_BYTES32", problem: /0x \+ 64 hex/ },
      { name: "bad bytes32 (no 0x)", kind: "WorkerpoolOrder", field: "salt", value: "ab".repeat(32), code: "INVALID_BYTES32", problem: /0x \+ 64 hex/ },
      { name: "bad bytes32 (long)", kind: "DatasetOrder", field: "tag", value: ZeroHash + "00", code: "INVALID_BYTES32", problem: /0x \+ 64 hex/ },
      { name: "wrong type (bytes32)", kind: "DatasetOrder", field: "tag", value: 0, code: "INVALID_TYPE", problem: /expected a bytes32 hex string/ },
      { name: "wrong type (params)", kind: "RequestOrder", field: "params", value: { args: "x" }, code: "INVALID_TYPE", problem: /expected a string, got an object/ },
      { name: "bad sign (odd length)", kind: "AppOrder", field: "sign", value: "0x123", code: "INVALID_BYTES", problem: /even number of hex digits/ },
      { name: "bad sign (not hex)", kind: "AppOrder", field: "sign", value: "hello", code: "INVALID_BYTES", problem: /"hello"/ },
      { name: "wrong type (sign)", kind: "AppOrder", field: "sign", value: 65, code: "INVALID_TYPE", problem: /hex bytes string/ },
    ];

    for (const c of cases) {
      it(`${c.name}: ${c.kind}.${c.field} → ${c.code}`, function () {
        const json = jsonOf(c.kind);
        if (c.remove) delete json[c.field];
        else json[c.field] = c.value;
        const err = errorOf(() => parseOrder(c.kind, json));
        expect(err.code).to.equal(c.code);
        expect(err.kind).to.equal(c.kind);
        expect(err.path).to.equal(`${c.kind}.${c.field}`);
        expect(err.message).to.match(new RegExp(`^${c.kind}\\.${c.field}: `));
        expect(err.message.slice(err.path.length + 2)).to.match(c.problem);
        expect(err.issues).to.have.length(1);
        // The same through raw JSON text, when JSON can carry the value.
        if (typeof c.value !== "bigint" && typeof c.value !== "number" || Number.isFinite(c.value)) {
          const viaText = errorOf(() => parseOrderJson(c.kind, JSON.stringify(json)));
          expect([viaText.code, viaText.path]).to.deep.equal([c.code, err.path]);
        }
      });
    }

    it("RequestOrder.trust: expected an unsigned integer (the message form)", function () {
      const err = errorOf(() => parseOrderJson("RequestOrder", JSON.stringify({ ...jsonOf("RequestOrder"), trust: "x" })));
      expect(err.message).to.equal('RequestOrder.trust: expected an unsigned integer as a decimal string, got "x"');
    });

    it("a signed order without sign: missing field", function () {
      const err = errorOf(() => parseSignedOrder("AppOrder", jsonOf("AppOrder")));
      expect([err.code, err.message]).to.deep.equal(["MISSING_FIELD", "AppOrder.sign: missing field"]);
    });

    it("an unsigned order with sign: unknown field", function () {
      const err = errorOf(() => parseUnsignedOrder("DatasetOrder", { ...jsonOf("DatasetOrder"), sign: "0x" }));
      expect([err.code, err.message]).to.deep.equal(["UNKNOWN_FIELD", "DatasetOrder.sign: unknown field"]);
    });

    it("the wrong kind of order: unknown and missing fields of that kind", function () {
      const err = errorOf(() => parseOrder("AppOrder", jsonOf("DatasetOrder")));
      const byCode = (code: OrderErrorCode) => err.issues.filter((i) => i.code === code).map((i) => i.path);
      expect(byCode("MISSING_FIELD")).to.have.members([
        "AppOrder.app",
        "AppOrder.appprice",
        "AppOrder.datasetrestrict",
      ]);
      expect(byCode("UNKNOWN_FIELD")).to.have.members([
        "AppOrder.dataset",
        "AppOrder.datasetprice",
        "AppOrder.apprestrict",
      ]);
      expect(err.message).to.match(/ \(and 5 more problems\)$/);
    });

    it("reports every problem, the first in the message", function () {
      const json = { ...jsonOf("RequestOrder"), volume: -1, tag: "0x", extra: true };
      const err = errorOf(() => parseOrder("RequestOrder", json));
      expect(err.issues.map((i) => [i.path, i.code])).to.deep.equal([
        ["RequestOrder.volume", "OUT_OF_RANGE"],
        ["RequestOrder.tag", "INVALID_BYTES32"],
        ["RequestOrder.extra", "UNKNOWN_FIELD"],
      ]);
      expect(err.message).to.equal(
        "RequestOrder.volume: expected an unsigned integer, got negative -1 (and 2 more problems)",
      );
    });

    for (const [label, value] of [
      ["an array", []],
      ["null", null],
      ["a string", "order"],
      ["a number", 5],
      ["undefined", undefined],
    ] as const) {
      it(`an order that is ${label}: NOT_AN_OBJECT`, function () {
        const err = errorOf(() => parseOrder("WorkerpoolOrder", value));
        expect([err.code, err.path]).to.deep.equal(["NOT_AN_OBJECT", "WorkerpoolOrder"]);
        expect(err.message).to.match(/^WorkerpoolOrder: expected a JSON object, got /);
      });
    }

    for (const text of ["{", "", "{'app': 1}", '{"app": 1,}', "undefined"]) {
      it(`invalid JSON text ${JSON.stringify(text)}: INVALID_JSON`, function () {
        const err = errorOf(() => parseOrderJson("RequestOrder", text));
        expect([err.code, err.path]).to.deep.equal(["INVALID_JSON", "RequestOrder"]);
        expect(err.message).to.match(/^RequestOrder: invalid JSON: /);
      });
    }

    it("JSON text that is not a string: INVALID_JSON", function () {
      const err = errorOf(() => parseOrderJson("RequestOrder", { app: 1 } as unknown as string));
      expect(err.code).to.equal("INVALID_JSON");
    });

    it("an unknown kind: UNKNOWN_KIND", function () {
      const err = errorOf(() => parseOrder("BidOrder" as OrderKind, {}));
      expect(err.code).to.equal("UNKNOWN_KIND");
      expect(err.message).to.match(/unknown order kind "BidOrder"/);
    });

    it("a JSON __proto__ key is an unknown field (no prototype pollution)", function () {
      const text = JSON.stringify(jsonOf("AppOrder")).replace(/^\{/, '{"__proto__":{"polluted":1},');
      const err = errorOf(() => parseOrderJson("AppOrder", text));
      expect([err.code, err.path]).to.deep.equal(["UNKNOWN_FIELD", "AppOrder.__proto__"]);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    });
  });

  describe("signature verification (off chain)", function () {
    const signer = Wallet.createRandom();
    const d = domain(31337n, randomAddress());

    it("recovers the signer, and refuses another signer, a tampered order, another domain", async function () {
      const order = await signOrder(signer, d, "WorkerpoolOrder", sampleOrders().WorkerpoolOrder);
      expect(recoverOrderSigner(d, "WorkerpoolOrder", order)).to.equal(signer.address);
      expect(verifyOrderSignature(d, "WorkerpoolOrder", order, signer.address)).to.equal(true);
      expect(verifyOrderSignature(d, "WorkerpoolOrder", order, signer.address.toLowerCase())).to.equal(true);
      expect(verifyOrderSignature(d, "WorkerpoolOrder", order, randomAddress())).to.equal(false);
      expect(verifyOrderSignature(d, "WorkerpoolOrder", { ...order, volume: order.volume + 1n }, signer.address)).to.equal(
        false,
      );
      expect(verifyOrderSignature(domain(1n, d.verifyingContract!), "WorkerpoolOrder", order, signer.address)).to.equal(
        false,
      );
      expect(verifyOrderSignature(d, "WorkerpoolOrder", order, "not an address")).to.equal(false);
    });

    it("refuses what the Clerk's ECDSA path refuses: empty, garbage, high s, v 0/1", async function () {
      const order = await signOrder(signer, d, "AppOrder", sampleOrders().AppOrder);
      const r = order.sign.slice(2, 66);
      const s = BigInt("0x" + order.sign.slice(66, 130));
      const v = parseInt(order.sign.slice(130), 16);
      const highS = "0x" + r + (SECP256K1_N - s).toString(16).padStart(64, "0") + (v === 27 ? "1c" : "1b");
      const v01 = "0x" + order.sign.slice(2, 130) + (v - 27).toString(16).padStart(2, "0");
      for (const sign of ["0x", "0x1234", "0x" + "00".repeat(65), highS, v01, order.sign + "00"]) {
        expect(verifyOrderSignature(d, "AppOrder", { ...order, sign }, signer.address), sign).to.equal(false);
        expect(recoverOrderSigner(d, "AppOrder", { ...order, sign }), sign).to.equal(null);
      }
    });
  });

  describe("parity with the deployed contracts", function () {
    let f: Fixture;

    beforeEach(async function () {
      f = await loadFixture(deployFixture);
    });

    const signerOf = (kind: OrderKind): HardhatEthersSigner =>
      ({ AppOrder: f.appOwner, DatasetOrder: f.datasetOwner, WorkerpoolOrder: f.poolOwner, RequestOrder: f.requester })[
        kind
      ];

    it("hashOrder equals hub.hashXOrder for every kind, after a JSON round trip", async function () {
      const orders = sampleOrders();
      for (const kind of ORDER_KINDS) {
        const order = parseOrderJson(kind, JSON.stringify(orderToJson(orders[kind])));
        expect(hashOrder(f.domain, kind, order), kind).to.equal(await hubHash(f, kind, order));
      }
    });

    it("hashOrder equals hub.hashXOrder for arbitrary orders parsed from JSON (property)", async function () {
      const u256 = fc.oneof(fc.constant(0n), fc.constant(MAX_UINT256), fc.bigInt({ min: 0n, max: MAX_UINT256 }));
      const uintJson = u256.chain((n) =>
        n <= BigInt(Number.MAX_SAFE_INTEGER) ? fc.constantFrom<unknown>(n.toString(), Number(n)) : fc.constant(n.toString()),
      );
      const b32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hexlify(b));
      const addr = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => hexlify(b)); // lowercase
      const str = fc.string({ unit: "binary", maxLength: 40 });
      const arbOf = { uint256: uintJson, bytes32: b32, address: addr, string: str } as Record<string, fc.Arbitrary<unknown>>;
      for (const kind of ORDER_KINDS) {
        const record = fc.record(Object.fromEntries(ORDER_TYPES[kind].map((x) => [x.name, arbOf[x.type]])));
        await fc.assert(
          fc.asyncProperty(record, async (raw) => {
            const order = parseOrderJson(kind, JSON.stringify(raw));
            expect(hashOrder(f.domain, kind, order)).to.equal(await hubHash(f, kind, order));
          }),
          { numRuns: 15 },
        );
      }
    });

    it("a request order parsed from JSON and signed with signOrder matches the fixture's orders on chain", async function () {
      // A requester's order as a CLI or web client writes it: numbers, decimal strings, a lowercase address.
      const text = JSON.stringify({
        app: 1,
        appmaxprice: PRICES.app.toString(),
        dataset: "1",
        datasetmaxprice: PRICES.dataset.toString(),
        workerpool: 0,
        workerpoolmaxprice: PRICES.workerpool.toString(),
        requester: f.requester.address.toLowerCase(),
        volume: 2,
        tag: ZeroHash,
        category: 0,
        trust: "1",
        beneficiary: f.other.address,
        callback: ZeroAddress,
        params: '{"args":"héllo ✓"}',
        expiry: 0,
        nonce: 0,
        salt: randomSalt(),
      });
      const request = await signOrder(f.requester, f.domain, "RequestOrder", parseOrderJson("RequestOrder", text));
      // The other three: the fixture's signed orders, through their JSON form (the signature survives).
      const set = await signedOrders(f);
      const app = parseSignedOrderJson("AppOrder", JSON.stringify(orderToJson(set.app)));
      const dataset = parseSignedOrderJson("DatasetOrder", JSON.stringify(orderToJson(set.dataset)));
      const workerpool = parseSignedOrderJson("WorkerpoolOrder", JSON.stringify(orderToJson(set.workerpool)));
      expect([app, dataset, workerpool]).to.deep.equal([set.app, set.dataset, set.workerpool]);

      const signed = { AppOrder: app, DatasetOrder: dataset, WorkerpoolOrder: workerpool, RequestOrder: request };
      for (const kind of ORDER_KINDS) {
        expect(verifyOrderSignature(f.domain, kind, signed[kind], signerOf(kind).address), kind).to.equal(true);
        expect(verifyOrderSignature(f.domain, kind, signed[kind], f.other.address), kind).to.equal(false);
      }

      expect(await f.hub.canMatch(app, dataset, workerpool, request)).to.deep.equal([true, "0x"]);
      const tx = await f.hub.connect(f.requester).matchOrders(app, dataset, workerpool, request);
      const deal = dealIdOf(hashOrder(f.domain, "RequestOrder", request));
      await expect(tx)
        .to.emit(f.hub, "DealMatched")
        .withArgs(
          deal,
          hashOrder(f.domain, "RequestOrder", request),
          1n,
          hashOrder(f.domain, "AppOrder", app),
          hashOrder(f.domain, "DatasetOrder", dataset),
          hashOrder(f.domain, "WorkerpoolOrder", workerpool),
          f.other.address,
          2n,
          '{"args":"héllo ✓"}',
        );
      expect(await f.hub.dealCount()).to.equal(1n);
      expect((await f.hub.viewDeal(deal)).requester).to.equal(f.requester.address);
      const [consumed] = await f.hub.orderState(hashOrder(f.domain, "RequestOrder", request));
      expect(consumed).to.equal(2n);
    });

    it("an order verifyOrderSignature refuses is refused on chain too (high-s and v 0/1 signatures)", async function () {
      const set = await signedOrders(f);
      const sign = set.request.sign;
      const s = BigInt("0x" + sign.slice(66, 130));
      const v = parseInt(sign.slice(130), 16);
      const highS = "0x" + sign.slice(2, 66) + (SECP256K1_N - s).toString(16).padStart(64, "0") + (v === 27 ? "1c" : "1b");
      const v01 = "0x" + sign.slice(2, 130) + (v - 27).toString(16).padStart(2, "0");
      const hash = hashOrder(f.domain, "RequestOrder", set.request);
      for (const bad of [highS, v01]) {
        const request = { ...set.request, sign: bad };
        expect(verifyOrderSignature(f.domain, "RequestOrder", request, f.requester.address)).to.equal(false);
        await expect(f.hub.connect(f.requester).matchOrders(set.app, set.dataset, set.workerpool, request))
          .to.be.revertedWithCustomError(f.hub, "ClerkInvalidSignature")
          .withArgs(hash, f.requester.address);
      }
    });

    it("dealId and taskId equal the contract's", async function () {
      const set = await signedOrders(f, { request: { volume: 3n } });
      const requestHash = hashOrder(f.domain, "RequestOrder", set.request);
      // Known before the match is mined: the low 152 bits of keccak256(abi.encode(requestHash, consumed)), where
      // consumed is the volume the request order had consumed before (none yet).
      const deal = dealIdOf(requestHash);
      const hash = keccak256(AbiCoder.defaultAbiCoder().encode(["bytes32", "uint256"], [requestHash, 0n]));
      expect(deal).to.equal(zeroPadValue(dataSlice(hash, 32 - 19), 32));
      const tx = await f.hub.connect(f.requester).matchOrders(set.app, set.dataset, set.workerpool, set.request);
      await expect(tx).to.emit(f.hub, "DealMatched").withArgs(deal, requestHash, 1n, ...Array(6).fill(anyValue));
      for (const index of [0n, 1n, 2n]) {
        const task = taskIdOf(deal, index);
        expect(await f.hub.taskIdOf(deal, index)).to.equal(task);
        await expect(f.hub.connect(f.scheduler).initialize(deal, index))
          .to.emit(f.hub, "TaskInitialized")
          .withArgs(task, deal, index);
      }
      for (const [anyDeal, index] of [
        [id("any deal"), 7n],
        [dealIdOf(id("any request"), 2n ** 88n - 1n), MAX_UINT256],
        [ZeroHash, 0n],
      ] as const) {
        expect(await f.hub.taskIdOf(anyDeal, index)).to.equal(taskIdOf(anyDeal, index));
      }
    });

    it("a contribution with the sdk's resultHash/resultSeal and Authorization is accepted, then reveal and finalize", async function () {
      const set = await signedOrders(f, { request: { trust: 1n } });
      await f.hub.connect(f.requester).matchOrders(set.app, set.dataset, set.workerpool, set.request);
      const deal = dealIdOf(hashOrder(f.domain, "RequestOrder", set.request));
      const task = taskIdOf(deal, 0);
      const worker = f.workers[0];
      const data = toUtf8Bytes('{"answer":42}');
      const digest = callbackDigest(data);
      const c = commitment(worker.address, task, digest);
      expect(c).to.deep.equal({ resultHash: resultHash(task, digest), resultSeal: resultSeal(worker.address, task, digest) });
      const auth = await authorizationSignature(f.scheduler, f.domain, worker.address, task);

      await expect(f.hub.connect(worker).contribute(deal, 0, c.resultHash, c.resultSeal, auth))
        .to.emit(f.hub, "ContributionCommitted")
        .withArgs(task, worker.address, c.resultHash);
      const t = await f.hub.viewTask(task);
      expect([t.status, t.consensusHash]).to.deep.equal([Status.REVEALING, c.resultHash]);
      const contribution = await f.hub.viewContribution(task, worker.address);
      expect(contribution.sealPrefix).to.equal(c.resultSeal.slice(0, 2 + 22));

      // The Hub recomputes keccak256(taskId ‖ digest) and keccak256(worker ‖ taskId ‖ digest): they match ours.
      await expect(f.hub.connect(worker).reveal(task, digest))
        .to.emit(f.hub, "ContributionRevealed")
        .withArgs(task, worker.address, digest);
      // And the callback data hashes (callbackDigest) to the revealed digest.
      await expect(f.hub.connect(f.scheduler).finalize(task, "0x1234", data))
        .to.emit(f.hub, "TaskFinalized")
        .withArgs(task, digest, "0x1234");
      expect((await f.hub.viewTask(task)).status).to.equal(Status.COMPLETED);
      expect(await f.hub.resultFor(task)).to.equal(hexlify(data));
    });

    it("a seal made for another worker is refused at reveal (the seal binds the worker)", async function () {
      const set = await signedOrders(f, { request: { trust: 2n } });
      await f.hub.connect(f.requester).matchOrders(set.app, set.dataset, set.workerpool, set.request);
      const deal = dealIdOf(hashOrder(f.domain, "RequestOrder", set.request));
      const task = taskIdOf(deal, 0);
      const [honest, copier] = f.workers;
      const digest = id("result");
      const c = commitment(honest.address, task, digest);
      await f.hub
        .connect(honest)
        .contribute(deal, 0, c.resultHash, c.resultSeal, await authorizationSignature(f.scheduler, f.domain, honest.address, task));
      // The copier commits the honest worker's hash and seal.
      await f.hub
        .connect(copier)
        .contribute(deal, 0, c.resultHash, c.resultSeal, await authorizationSignature(f.scheduler, f.domain, copier.address, task));
      expect((await f.hub.viewTask(task)).status).to.equal(Status.REVEALING);
      await expect(f.hub.connect(copier).reveal(task, digest))
        .to.be.revertedWithCustomError(f.hub, "HubInvalidReveal")
        .withArgs(task, copier.address);
      await expect(f.hub.connect(honest).reveal(task, digest)).to.emit(f.hub, "ContributionRevealed");
    });

    it("an Authorization signed by someone other than the scheduler is refused", async function () {
      const set = await signedOrders(f);
      await f.hub.connect(f.requester).matchOrders(set.app, set.dataset, set.workerpool, set.request);
      const deal = dealIdOf(hashOrder(f.domain, "RequestOrder", set.request));
      const task = taskIdOf(deal, 0);
      const worker = f.workers[0];
      const c = commitment(worker.address, task, id("r"));
      const forged = await authorizationSignature(f.other, f.domain, worker.address, task);
      await expect(f.hub.connect(worker).contribute(deal, 0, c.resultHash, c.resultSeal, forged))
        .to.be.revertedWithCustomError(f.hub, "HubInvalidAuthorization")
        .withArgs(task, worker.address);
      // Authorizing another worker does not authorize this one.
      const other = await authorizationSignature(f.scheduler, f.domain, f.workers[1].address, task);
      await expect(f.hub.connect(worker).contribute(deal, 0, c.resultHash, c.resultSeal, other))
        .to.be.revertedWithCustomError(f.hub, "HubInvalidAuthorization")
        .withArgs(task, worker.address);
    });

    it("relayed Contribution and Reveal signatures are accepted by contributeBatch and revealBatch", async function () {
      const set = await signedOrders(f, { request: { trust: 3n } });
      await f.hub.connect(f.requester).matchOrders(set.app, set.dataset, set.workerpool, set.request);
      const deal = dealIdOf(hashOrder(f.domain, "RequestOrder", set.request));
      const task = taskIdOf(deal, 0);
      const digest = id("relayed result");
      const workers = f.workers.slice(0, 3);

      const items = [];
      for (const w of workers) items.push(await relayedContribution(w, f.domain, deal, 0, digest));
      expect(items[0]).to.include({ dealId: deal, index: 0n, worker: workers[0].address });
      expect(items[0].resultHash).to.equal(resultHash(task, digest));
      expect(items[0].resultSeal).to.equal(resultSeal(workers[0].address, task, digest));
      await expect(f.hub.connect(f.scheduler).contributeBatch(items))
        .to.emit(f.hub, "ConsensusReached")
        .withArgs(task, resultHash(task, digest), anyValue);
      for (const w of workers) {
        expect((await f.hub.viewContribution(task, w.address)).status).to.equal(Contribution.CONTRIBUTED);
      }

      const reveals = [];
      for (const w of workers) reveals.push(await relayedReveal(w, f.domain, task, digest));
      const tx = f.hub.connect(f.scheduler).revealBatch(reveals);
      for (const w of workers) await expect(tx).to.emit(f.hub, "ContributionRevealed").withArgs(task, w.address, digest);
      expect((await f.hub.viewTask(task)).revealCount).to.equal(3n);
      await expect(f.hub.connect(f.scheduler).finalize(task, "0x", "0x")).to.emit(f.hub, "TaskFinalized");
      const t = await f.hub.viewTask(task);
      expect([t.status, t.resultDigest]).to.deep.equal([Status.COMPLETED, digest]);
    });

    it("relayed items signed by the wrong worker are refused", async function () {
      const set = await signedOrders(f, { request: { trust: 2n } });
      await f.hub.connect(f.requester).matchOrders(set.app, set.dataset, set.workerpool, set.request);
      const deal = dealIdOf(hashOrder(f.domain, "RequestOrder", set.request));
      const task = taskIdOf(deal, 0);
      const digest = id("r");
      const [a, b] = f.workers;
      // b signs a contribution in a's name.
      const forged = { ...(await relayedContribution(b, f.domain, deal, 0, digest)), worker: a.address };
      forged.resultSeal = resultSeal(a.address, task, digest);
      await expect(f.hub.connect(f.scheduler).contributeBatch([forged]))
        .to.be.revertedWithCustomError(f.hub, "HubInvalidWorkerSignature")
        .withArgs(task, a.address);

      await f.hub
        .connect(f.scheduler)
        .contributeBatch([
          await relayedContribution(a, f.domain, deal, 0, digest),
          await relayedContribution(b, f.domain, deal, 0, digest),
        ]);
      const forgedReveal = { ...(await relayedReveal(b, f.domain, task, digest)), worker: a.address };
      await expect(f.hub.connect(f.scheduler).revealBatch([forgedReveal]))
        .to.be.revertedWithCustomError(f.hub, "HubInvalidWorkerSignature")
        .withArgs(task, a.address);
      await expect(f.hub.connect(f.scheduler).revealBatch([await relayedReveal(a, f.domain, task, digest)]))
        .to.emit(f.hub, "ContributionRevealed")
        .withArgs(task, a.address, digest);
    });
  });
});
