/**
 * The order book over real HTTP (express on 127.0.0.1, fetch) with a fake chain: every bad input gets its 4xx with a
 * code and a one-line message naming the field or the reason, the server keeps serving, valid orders are stored,
 * shown and listed.
 */
import { expect } from "chai";
import { ZeroHash, getAddress } from "ethers";
import type { TypedDataDomain } from "ethers";
import { domain, hashOrder, signOrder } from "../../../sdk/eip712";
import type { AppOrder, OrderKind, OrderOf, Signed } from "../../../sdk/eip712";
import { buildAppOrder, buildDatasetOrder, buildRequestOrder, buildWorkerpoolOrder, orderToJson } from "../../../sdk/orders";
import { ordersRouter } from "../../../scheduler/api/orders";
import { openDatabase } from "../../../scheduler/store/db";
import type { Db } from "../../../scheduler/store/db";
import { FakeChecks, Served, get, post, serve, wallet } from "./helpers";

const HUB = getAddress("0x00000000000000000000000000000000000c0de1");
const D: TypedDataDomain = domain(31337, HUB);
const POOL = 1n;

const appOwner = wallet("app owner");
const datasetOwner = wallet("dataset owner");
const poolOwner = wallet("pool owner");
const requester = wallet("requester");
const stranger = wallet("stranger");

function sign<K extends OrderKind>(kind: K, order: OrderOf<K>, by = appOwner, d: TypedDataDomain = D): Promise<Signed<OrderOf<K>>> {
  return signOrder(by, d, kind, order);
}

const appOrder = (o: Partial<AppOrder> = {}) => buildAppOrder({ app: 1n, appprice: 5n, volume: 5n, ...o });
const requestOrder = (o: Partial<OrderOf<"RequestOrder">> = {}) =>
  buildRequestOrder({ app: 1n, appmaxprice: 5n, workerpoolmaxprice: 10n, category: 0n, requester: requester.address, ...o });

describe("scheduler API: order book (POST/GET /orders)", function () {
  let db: Db;
  let checks: FakeChecks;
  let server: Served;
  let url: string;
  const accepted: string[] = [];

  beforeEach(async function () {
    db = openDatabase(":memory:");
    checks = new FakeChecks();
    checks.setOwner("app", 1n, appOwner.address);
    checks.setOwner("dataset", 1n, datasetOwner.address);
    checks.setOwner("workerpool", POOL, poolOwner.address);
    checks.setOwner("workerpool", 2n, stranger.address);
    accepted.length = 0;
    server = await serve([
      ordersRouter({}, { db, domain: D, checks, workerpool: POOL, onAccepted: (o) => accepted.push(o.hash) }),
    ]);
    url = `${server.url}/orders`;
  });

  afterEach(async function () {
    // Whatever a test sent, the server still answers.
    expect((await get(url)).status).to.equal(200);
    await server.close();
    db.close();
  });

  const publish = (kind: string, order: object) => post(url, { kind, order: orderToJson(order) });

  function expectError(r: { status: number; json: any }, status: number, code: string, message?: RegExp) {
    expect(r.status, JSON.stringify(r.json)).to.equal(status);
    expect(r.json.error.code).to.equal(code);
    expect(r.json.error.message).to.be.a("string").and.not.match(/\n/);
    if (message) expect(r.json.error.message).to.match(message);
  }

  it("accepts a signed app order: 201 {hash, status open}, then shows and lists it", async function () {
    const order = await sign("AppOrder", appOrder());
    const hash = hashOrder(D, "AppOrder", order);
    const r = await publish("AppOrder", order);
    expect(r.status).to.equal(201);
    expect(r.json).to.deep.equal({ hash, kind: "AppOrder", status: "open", remaining: "5" });
    expect(accepted).to.deep.equal([hash]);

    const shown = await get(`${url}/${hash}`);
    expect(shown.status).to.equal(200);
    expect(shown.json).to.include({ hash, kind: "AppOrder", signer: appOwner.address, status: "open", volume: "5", remaining: "5" });
    expect(shown.json.order).to.deep.equal(orderToJson(order));

    const list = await get(url);
    expect(list.json.count).to.equal(1);
    expect(list.json.orders[0].hash).to.equal(hash);
  });

  it("accepts the CLI's kind names (app…) as well as AppOrder…; publishing again is a 200 that changes nothing", async function () {
    const order = await sign("AppOrder", appOrder());
    expect((await publish("app", order)).status).to.equal(201);
    const again = await publish("AppOrder", order);
    expect(again.status).to.equal(200);
    expect(again.json.status).to.equal("open");
    expect(accepted).to.have.length(1);
    expect((await get(url)).json.count).to.equal(1);
  });

  it("accepts dataset, workerpool and request orders, keeping the volume the chain says is left", async function () {
    const dataset = await sign("DatasetOrder", buildDatasetOrder({ dataset: 1n, datasetprice: 1n }), datasetOwner);
    const pool = await sign("WorkerpoolOrder", buildWorkerpoolOrder({ workerpool: POOL, workerpoolprice: 3n, category: 0n, volume: 10n }), poolOwner);
    const request = await sign("RequestOrder", requestOrder({ volume: 5n, params: '{"args":["--n","3"]}' }), requester);
    checks.states.set(hashOrder(D, "RequestOrder", request), { consumed: 2n, presigned: false, cancelled: false });
    expect((await publish("dataset", dataset)).status).to.equal(201);
    expect((await publish("workerpool", pool)).status).to.equal(201);
    const r = await publish("request", request);
    expect(r.status).to.equal(201);
    expect(r.json.remaining).to.equal("3");
  });

  it("accepts a presigned order (empty signature) and an EIP-1271 wallet's order", async function () {
    const presigned = { ...appOrder(), sign: "0x" };
    checks.states.set(hashOrder(D, "AppOrder", presigned), { consumed: 0n, presigned: true, cancelled: false });
    expect((await publish("app", presigned)).status).to.equal(201);

    const walletContract = getAddress("0x000000000000000000000000000000000000a11e");
    checks.setOwner("app", 7n, walletContract);
    const signature = `0x${"ab".repeat(70)}`;
    checks.contractSignatures.set(walletContract, signature);
    const byWallet = { ...appOrder({ app: 7n }), sign: signature };
    expect((await publish("app", byWallet)).status).to.equal(201);
  });

  describe("refuses malformed input with 400 (or 413/415) naming the problem", function () {
    const valid = async () => orderToJson(await sign("AppOrder", appOrder()));

    it("a body that is not JSON, not an object, or not sent as JSON", async function () {
      expectError(await post(url, null, { text: "{ not json" }), 400, "INVALID_JSON", /not valid JSON/);
      expectError(await post(url, null, { text: JSON.stringify({ kind: "app" }), contentType: "text/plain" }), 415, "UNSUPPORTED_MEDIA_TYPE");
      expectError(await post(url, []), 400, "INVALID_BODY", /expected a JSON object/);
      expectError(await post(url, "AppOrder"), 400, "INVALID_BODY");
      expectError(await post(url, null, { text: "" }), 400, "MISSING_FIELD", /^kind: missing field/);
    });

    it("a missing or unknown kind, a missing order, an unknown envelope field", async function () {
      const order = await valid();
      expectError(await post(url, { order }), 400, "MISSING_FIELD", /^kind: missing field/);
      expectError(await post(url, { kind: "Banana", order }), 400, "UNKNOWN_KIND", /unknown order kind "Banana"/);
      expectError(await post(url, { kind: 3, order }), 400, "UNKNOWN_KIND");
      expectError(await post(url, { kind: "app" }), 400, "MISSING_FIELD", /^order: missing field/);
      expectError(await post(url, { kind: "app", order, colour: "red" }), 400, "UNKNOWN_FIELD", /^colour: unknown field/);
    });

    it("schema errors name the order's field", async function () {
      const order = await valid();
      const request = orderToJson(await sign("RequestOrder", requestOrder(), requester));
      expectError(await post(url, { kind: "app", order: "x" }), 400, "NOT_AN_OBJECT", /^AppOrder: expected a JSON object/);
      expectError(await post(url, { kind: "request", order: { ...request, trust: "abc" } }), 400, "INVALID_UINT", /^RequestOrder\.trust: /);
      expectError(await post(url, { kind: "request", order: { ...request, trust: true } }), 400, "INVALID_TYPE", /^RequestOrder\.trust: /);
      const { sign: _sign, ...unsigned } = order;
      expectError(await post(url, { kind: "app", order: unsigned }), 400, "MISSING_FIELD", /^AppOrder\.sign: missing field/);
      expectError(await post(url, { kind: "app", order: { ...order, colour: "red" } }), 400, "UNKNOWN_FIELD", /^AppOrder\.colour: unknown field/);
      expectError(await post(url, { kind: "request", order: { ...request, requester: "0x1234" } }), 400, "INVALID_ADDRESS", /^RequestOrder\.requester: /);
      expectError(await post(url, { kind: "app", order: { ...order, sign: "0xabc" } }), 400, "INVALID_BYTES", /^AppOrder\.sign: /);
      expectError(await post(url, { kind: "app", order: { ...order, volume: "0" } }), 400, "INVALID_VOLUME", /^AppOrder\.volume: must be at least 1/);
      expectError(await post(url, { kind: "request", order: { ...request, params: '{"x":1}' } }), 400, "INVALID_PARAMS", /^RequestOrder\.params: unknown member/);
    });

    it("a body over the 64 KiB limit gets 413", async function () {
      const order = await valid();
      expectError(await post(url, { kind: "app", order, padding: "x".repeat(70 * 1024) }), 413, "BODY_TOO_LARGE", /65536 bytes/);
    });
  });

  describe("refuses well-formed but unusable orders with 422 and the reason", function () {
    it("a signature that is not ECDSA, or by someone else than the owner or the requester", async function () {
      const order = await sign("AppOrder", appOrder());
      expectError(await publish("app", { ...order, sign: `0x${"11".repeat(65)}` }), 422, "INVALID_SIGNATURE", /not a 65-byte low-s ECDSA signature/);
      const byStranger = await sign("AppOrder", appOrder(), stranger);
      expectError(
        await publish("app", byStranger),
        422,
        "NOT_OWNER",
        new RegExp(`signed by ${stranger.address}, but app 1's owner is ${appOwner.address}`),
      );
      const request = await sign("RequestOrder", requestOrder(), stranger);
      expectError(await publish("request", request), 422, "INVALID_SIGNATURE", new RegExp(`not by the requester ${requester.address}`));
      expectError(await publish("app", { ...appOrder(), sign: "0x" }), 422, "INVALID_SIGNATURE", /no signature and is not presigned/);
    });

    it("an order signed for another chain, or declared for another chain or Hub", async function () {
      const otherChain = await sign("AppOrder", appOrder(), appOwner, domain(1, HUB));
      expectError(await publish("app", otherChain), 422, "NOT_OWNER", /signed for another chain or Hub than chain 31337/);
      const order = orderToJson(await sign("AppOrder", appOrder()));
      expectError(await post(url, { kind: "app", order, chainId: 1 }), 422, "WRONG_CHAIN", /for chain 1, this scheduler serves chain 31337/);
      expectError(await post(url, { kind: "app", order, hub: stranger.address }), 422, "WRONG_CHAIN", /Hub/);
      expectError(await post(url, { kind: "app", order, chainId: "x" }), 400, "INVALID_TYPE", /^chainId: /);
      expect((await post(url, { kind: "app", order, chainId: "31337", hub: HUB.toLowerCase() })).status).to.equal(201);
    });

    it("expired by chain time, an unregistered asset, a revoked nonce, cancelled, fully consumed", async function () {
      expectError(await publish("app", await sign("AppOrder", appOrder({ expiry: checks.time }))), 422, "EXPIRED", /expired at 2023-/);
      expectError(await publish("app", await sign("AppOrder", appOrder({ app: 9n }))), 422, "UNKNOWN_ASSET", /^app 9 is not registered$/);

      checks.nonces.set(appOwner.address, 1n);
      expectError(await publish("app", await sign("AppOrder", appOrder())), 422, "NONCE_REVOKED", /carries nonce 0 but .* order nonce is 1 \(revoked\)/);
      checks.nonces.clear();

      const cancelled = await sign("AppOrder", appOrder());
      checks.states.set(hashOrder(D, "AppOrder", cancelled), { consumed: 0n, presigned: false, cancelled: true });
      expectError(await publish("app", cancelled), 422, "CANCELLED", /is cancelled on chain/);

      const consumed = await sign("AppOrder", appOrder());
      checks.states.set(hashOrder(D, "AppOrder", consumed), { consumed: 5n, presigned: false, cancelled: false });
      expectError(await publish("app", consumed), 422, "CONSUMED", /fully consumed \(5\/5\)/);
      expect((await get(url)).json.count).to.equal(0);
    });

    it("orders that can never match with this scheduler's pool", async function () {
      const otherPool = await sign("WorkerpoolOrder", buildWorkerpoolOrder({ workerpool: 2n, workerpoolprice: 1n, category: 0n }), stranger);
      expectError(await publish("workerpool", otherPool), 422, "WRONG_WORKERPOOL", /serves workerpool 1 only/);
      const request = await sign("RequestOrder", requestOrder({ workerpool: 2n }), requester);
      expectError(await publish("request", request), 422, "WRONG_WORKERPOOL", /RequestOrder\.workerpool is 2/);
      const app = await sign("AppOrder", appOrder({ workerpoolrestrict: 2n }));
      expectError(await publish("app", app), 422, "WRONG_WORKERPOOL", /AppOrder\.workerpoolrestrict is 2/);
    });
  });

  it("takes a request signed by its requester into the book before its chain checks answer; one they refuse leaves it again", async function () {
    // refused on chain: 422 as before, and nothing left in the book (the matcher was woken for it meanwhile)
    checks.nonces.set(requester.address, 1n);
    const revoked = await sign("RequestOrder", requestOrder(), requester);
    expectError(await publish("request", revoked), 422, "NONCE_REVOKED", /revoked/);
    checks.nonces.clear();
    const consumed = await sign("RequestOrder", requestOrder({ volume: 2n }), requester);
    checks.states.set(hashOrder(D, "RequestOrder", consumed), { consumed: 2n, presigned: false, cancelled: false });
    expectError(await publish("request", consumed), 422, "CONSUMED", /fully consumed \(2\/2\)/);
    const late = await sign("RequestOrder", requestOrder(), requester);
    checks.failing = true;
    expectError(await publish("request", late), 503, "CHAIN_UNAVAILABLE");
    checks.failing = false;
    expect(accepted).to.deep.equal([revoked, consumed, late].map((o) => hashOrder(D, "RequestOrder", o)));
    expect((await get(url)).json.count).to.equal(0);
    for (const o of [revoked, consumed, late]) expect((await get(`${url}/${hashOrder(D, "RequestOrder", o)}`)).status).to.equal(404);
    // once the chain answers, the same request is accepted
    expect((await publish("request", late)).status).to.equal(201);
    expect((await get(`${url}/${hashOrder(D, "RequestOrder", late)}`)).json.status).to.equal("open");
  });

  it("answers 503 while the chain cannot be asked, and accepts the order once it can", async function () {
    const order = await sign("AppOrder", appOrder());
    checks.failing = true;
    expectError(await publish("app", order), 503, "CHAIN_UNAVAILABLE", /cannot check the order on chain .*ECONNREFUSED/);
    checks.failing = false;
    expect((await publish("app", order)).status).to.equal(201);
  });

  it("lists with filters (kind, status, app, requester…) and refuses unknown or malformed filters", async function () {
    const app = await sign("AppOrder", appOrder());
    const app2 = await sign("AppOrder", appOrder({ app: 2n }));
    checks.setOwner("app", 2n, appOwner.address);
    const request = await sign("RequestOrder", requestOrder(), requester);
    for (const [kind, o] of [["app", app], ["app", app2], ["request", request]] as const) expect((await publish(kind, o)).status).to.equal(201);

    const hashes = async (query: string) => ((await get(`${url}?${query}`)).json.orders as { hash: string }[]).map((o) => o.hash);
    expect(await hashes("kind=app")).to.have.length(2);
    expect(await hashes("kind=RequestOrder")).to.deep.equal([hashOrder(D, "RequestOrder", request)]);
    expect(await hashes("app=1")).to.have.length(2); // the app order and the request for app 1
    expect(await hashes("app=2&kind=AppOrder")).to.deep.equal([hashOrder(D, "AppOrder", app2)]);
    expect(await hashes(`requester=${requester.address.toLowerCase()}`)).to.have.length(1);
    expect(await hashes("status=open&limit=2")).to.have.length(2);
    expect(await hashes("status=consumed")).to.deep.equal([]);
    expect(await hashes("kind=&status=&app=&requester=")).to.have.length(3);

    expectError(await get(`${url}?colour=red`), 400, "UNKNOWN_PARAMETER", /^colour: unknown query parameter/);
    expectError(await get(`${url}?kind=banana`), 400, "INVALID_PARAMETER", /^kind: expected AppOrder/);
    expectError(await get(`${url}?status=gone`), 400, "INVALID_PARAMETER", /^status: expected one of open, consumed/);
    expectError(await get(`${url}?app=-1`), 400, "INVALID_PARAMETER", /^app: expected an unsigned integer/);
    expectError(await get(`${url}?requester=bob`), 400, "INVALID_PARAMETER", /^requester: expected an address/);
    expectError(await get(`${url}?limit=0`), 400, "INVALID_PARAMETER", /^limit: /);
    expectError(await get(`${url}?app=1&app=2`), 400, "INVALID_PARAMETER", /^app: expected one value/);
  });

  it("shows one order by hash: 400 for a malformed hash, 404 for an unknown one; unknown routes are JSON 404s", async function () {
    expectError(await get(`${url}/0x1234`), 400, "INVALID_HASH", /expected an order hash/);
    expectError(await get(`${url}/${ZeroHash}`), 404, "ORDER_NOT_FOUND");
    expectError(await get(`${server.url}/nowhere`), 404, "NOT_FOUND", /no route GET \/nowhere/);
  });
});
