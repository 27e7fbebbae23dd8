/**
 * The matcher without a chain: `selectOrders` table-tested (the cheapest compatible set, or the first reason there
 * is none, mirroring the Clerk's checks), and `matchOnce` over an in-memory book with a fake chain (canMatch first,
 * refusals retire orders or skip the request with a reason, volumes consumed after a deal).
 */
import { expect } from "chai";
import { ZeroAddress, getAddress, zeroPadValue } from "ethers";
import type { TypedDataDomain } from "ethers";
import { domain, hashOrder } from "../../../sdk/eip712";
import type { AppOrder, DatasetOrder, OrderKind, OrderOf, RequestOrder, Signed, WorkerpoolOrder } from "../../../sdk/eip712";
import { buildAppOrder, buildDatasetOrder, buildRequestOrder, buildWorkerpoolOrder } from "../../../sdk/orders";
import { EMPTY_DATASET_ORDER, Matcher, MatchRefusedError, orderSetOf, selectOrders } from "../../../scheduler/matcher";
import type { Book, BookEntry, CanMatchResult, MatchRefusal, MatcherChain, OrderSet } from "../../../scheduler/matcher";
import { openDatabase } from "../../../scheduler/store/db";
import type { Db } from "../../../scheduler/store/db";
import { getOrder, insertOrder } from "../../../scheduler/store/orders";

const POOL = 1n;
const NOW = 1_700_000_000n;
const D: TypedDataDomain = domain(31337, getAddress("0x00000000000000000000000000000000000c0de1"));
const REQUESTER = getAddress("0x000000000000000000000000000000000000beef");
const OTHER = getAddress("0x000000000000000000000000000000000000f00d");
const tag = (bits: number) => zeroPadValue(`0x${bits.toString(16).padStart(2, "0")}`, 32);

const signed = <T>(o: T): Signed<T> => ({ ...o, sign: "0x" });
const app = (o: Partial<AppOrder> = {}) => signed(buildAppOrder({ app: 1n, appprice: 2n, volume: 10n, ...o }));
const dataset = (o: Partial<DatasetOrder> = {}) => signed(buildDatasetOrder({ dataset: 1n, datasetprice: 1n, volume: 10n, ...o }));
const pool = (o: Partial<WorkerpoolOrder> = {}) =>
  signed(buildWorkerpoolOrder({ workerpool: POOL, workerpoolprice: 3n, category: 0n, trust: 3n, volume: 10n, ...o }));
const request = (o: Partial<RequestOrder> = {}) =>
  signed(buildRequestOrder({ app: 1n, appmaxprice: 5n, workerpoolmaxprice: 5n, category: 0n, requester: REQUESTER, ...o }));

function entry<K extends OrderKind>(kind: K, order: Signed<OrderOf<K>>, remaining = order.volume): BookEntry<K> {
  return { hash: hashOrder(D, kind, order), order, remaining };
}

function book(b: { apps?: Signed<AppOrder>[]; datasets?: Signed<DatasetOrder>[]; pools?: Signed<WorkerpoolOrder>[] }): Book {
  return {
    apps: (b.apps ?? [app()]).map((o) => entry("AppOrder", o)),
    datasets: (b.datasets ?? []).map((o) => entry("DatasetOrder", o)),
    workerpools: (b.pools ?? [pool()]).map((o) => entry("WorkerpoolOrder", o)),
  };
}

const ctx = { workerpool: POOL, now: NOW };

describe("scheduler matcher", function () {
  describe("selectOrders (pure)", function () {
    it("picks the cheapest app order within the request's max price, oldest first on equal prices", function () {
      const cheap = app({ appprice: 1n });
      const cheapLater = app({ appprice: 1n });
      const result = selectOrders(request(), book({ apps: [app({ appprice: 4n }), cheap, cheapLater, app({ appprice: 9n })] }), ctx);
      expect(result.ok).to.equal(true);
      if (!result.ok) return;
      expect(result.selection.app.order).to.equal(cheap);
      expect(result.selection.dataset).to.equal(null);
      expect(orderSetOf(request(), result.selection).dataset).to.equal(EMPTY_DATASET_ORDER);
    });

    it("picks a dataset order when the request names a dataset, and a pool order whose tag covers every need", function () {
      const r = request({ dataset: 1n, datasetmaxprice: 2n, tag: tag(1) });
      const ds = dataset({ tag: tag(4) });
      const narrow = pool({ tag: tag(1) });
      const wide = pool({ tag: tag(7), workerpoolprice: 4n });
      const result = selectOrders(r, book({ apps: [app({ tag: tag(2) })], datasets: [dataset({ datasetprice: 3n }), ds], pools: [narrow, wide] }), ctx);
      expect(result.ok).to.equal(true);
      if (!result.ok) return;
      expect(result.selection.dataset!.order).to.equal(ds);
      expect(result.selection.workerpool.order).to.equal(wide);
    });

    it("ignores expired orders and orders with no volume left", function () {
      const expired = app({ appprice: 1n, expiry: NOW });
      const empty = entry("AppOrder", app({ appprice: 1n }), 0n);
      const live = app({ appprice: 2n, expiry: NOW + 1n });
      const b = book({ apps: [expired, live] });
      b.apps.unshift(empty);
      const result = selectOrders(request(), b, ctx);
      expect(result.ok && result.selection.app.order).to.equal(live);
    });

    const refusals: [string, Partial<RequestOrder>, Parameters<typeof book>[0], RegExp][] = [
      ["a request for another pool", { workerpool: 2n }, {}, /the request names workerpool 2, not 1/],
      ["no app order for the app", { app: 2n }, {}, /no open app order for app 2/],
      ["every app order too expensive", { appmaxprice: 1n }, {}, /every app order for app 1 costs more than appmaxprice 1/],
      ["an app order for another requester", {}, { apps: [app({ requesterrestrict: OTHER })] }, /excludes this dataset, pool or requester/],
      ["an app order for another pool", {}, { apps: [app({ workerpoolrestrict: 2n })] }, /excludes this dataset, pool or requester/],
      ["an app order for a dataset the request lacks", {}, { apps: [app({ datasetrestrict: 1n })] }, /excludes this dataset/],
      ["no dataset order", { dataset: 1n, datasetmaxprice: 5n }, {}, /no open dataset order for dataset 1/],
      ["a dataset order too expensive", { dataset: 1n, datasetmaxprice: 0n }, { datasets: [dataset()] }, /costs more than datasetmaxprice 0/],
      ["a dataset order for another app", { dataset: 1n, datasetmaxprice: 5n }, { datasets: [dataset({ apprestrict: 9n })] }, /excludes this app, pool or requester/],
      ["no order of our pool", {}, { pools: [pool({ workerpool: 2n })] }, /no open workerpool order of pool 1/],
      ["another category", { category: 1n }, {}, /no workerpool order of pool 1 for category 1/],
      ["more trust than offered", { trust: 4n }, {}, /no workerpool order of pool 1 serves trust 4/],
      ["a pool too expensive", { workerpoolmaxprice: 2n }, {}, /costs more than workerpoolmaxprice 2/],
      ["a pool order for another requester", {}, { pools: [pool({ requesterrestrict: OTHER })] }, /excludes this app, dataset or requester/],
      ["a tag the pool does not offer", { tag: tag(1) }, { apps: [app({ tag: tag(2) })], pools: [pool({ tag: tag(1) })] }, /offers the tag 0x0{62}03/],
    ];
    for (const [what, r, b, reason] of refusals) {
      it(`finds nothing, with the reason, for ${what}`, function () {
        const result = selectOrders(request(r), book(b), ctx);
        expect(result.ok).to.equal(false);
        if (!result.ok) expect(result.reason).to.match(reason);
      });
    }
  });

  describe("matchOnce (fake chain)", function () {
    let db: Db;
    let calls: string[];
    let refusals: MatchRefusal[];
    let deals: number;
    let failMatch: boolean;
    /** the chain client simulates matchOrders: refusals come from it (MatchRefusedError), canMatch is never asked */
    let refusesInMatch: boolean;

    const chain: MatcherChain = {
      async canMatch(o: OrderSet): Promise<CanMatchResult> {
        calls.push(`canMatch ${hashOrder(D, "AppOrder", o.app)}`);
        const refusal = refusals.shift();
        return refusal ? { ok: false, refusal } : { ok: true };
      },
      async matchOrders(o: OrderSet) {
        calls.push(`matchOrders ${hashOrder(D, "AppOrder", o.app)}`);
        const refused = refusesInMatch ? refusals.shift() : undefined;
        if (refused) throw new MatchRefusedError(refused);
        if (failMatch) throw new Error("execution reverted: ClerkOrderConsumed");
        deals++;
        const remaining = (k: OrderKind, order: Signed<OrderOf<OrderKind>>) => getOrder(db, hashOrder(D, k, order))!.remaining;
        let volume = [remaining("AppOrder", o.app), remaining("WorkerpoolOrder", o.workerpool), remaining("RequestOrder", o.request)].reduce((a, b) => (a < b ? a : b));
        if (o.request.dataset !== 0n) volume = volume < remaining("DatasetOrder", o.dataset) ? volume : remaining("DatasetOrder", o.dataset);
        return { dealId: zeroPadValue(`0x${deals.toString(16).padStart(2, "0")}`, 32), volume };
      },
    };

    const add = <K extends OrderKind>(kind: K, order: Signed<OrderOf<K>>) => {
      const hash = hashOrder(D, kind, order);
      insertOrder(db, { hash, kind, signer: ZeroAddress, order, now: 1 });
      return hash;
    };
    const matcher = (own: Signed<WorkerpoolOrder>[] = [pool()]) =>
      new Matcher({ workerpool: POOL }, { db, domain: D, chain, workerpoolOrders: own, now: () => Number(NOW) * 1000 });

    beforeEach(function () {
      db = openDatabase(":memory:");
      calls = [];
      refusals = [];
      deals = 0;
      failMatch = false;
      refusesInMatch = false;
    });
    afterEach(() => db.close());

    it("matches an open request: canMatch, then matchOrders, then the volumes are consumed", async function () {
      const appHash = add("AppOrder", app({ volume: 10n }));
      const requestHash = add("RequestOrder", request({ volume: 3n }));
      const own = pool({ volume: 10n });
      const report = await matcher([own]).matchOnce();
      expect(calls).to.deep.equal([`canMatch ${appHash}`, `matchOrders ${appHash}`]);
      expect(report.matched).to.have.length(1);
      expect(report.matched[0]).to.include({ request: requestHash, app: appHash, volume: 3n, dataset: null });
      expect(getOrder(db, requestHash)).to.include({ status: "consumed", remaining: 0n });
      expect(getOrder(db, appHash)).to.include({ status: "open", remaining: 7n });
      expect(getOrder(db, hashOrder(D, "WorkerpoolOrder", own))).to.include({ status: "open", remaining: 7n });

      // Nothing left to match: no chain call at all.
      calls = [];
      expect((await matcher([own]).matchOnce()).matched).to.deep.equal([]);
      expect(calls).to.deep.equal([]);
    });

    it("matches a request larger than one app order in several deals, and keeps the rest open", async function () {
      const first = add("AppOrder", app({ volume: 1n }));
      const second = add("AppOrder", app({ volume: 1n, appprice: 3n }));
      const requestHash = add("RequestOrder", request({ volume: 3n }));
      const report = await matcher().matchOnce();
      expect(report.matched.map((x) => [x.app, x.volume])).to.deep.equal([[first, 1n], [second, 1n]]);
      expect(report.skipped).to.deep.equal([{ request: requestHash, reason: "no open app order for app 1" }]);
      expect(getOrder(db, requestHash)).to.include({ status: "open", remaining: 1n, reason: "no open app order for app 1" });
    });

    it("sends at most maxMatchesPerRound deals per round", async function () {
      add("AppOrder", app());
      for (let i = 0; i < 3; i++) add("RequestOrder", request());
      const m = new Matcher({ workerpool: POOL, maxMatchesPerRound: 2 }, { db, domain: D, chain, workerpoolOrders: [pool()] });
      expect((await m.matchOnce()).matched).to.have.length(2);
      expect((await m.matchOnce()).matched).to.have.length(1);
    });

    it("skips a request canMatch refuses, keeps the reason on the request, and tries again next round", async function () {
      const requestHash = add("RequestOrder", request());
      add("AppOrder", app());
      const message = `ClerkInsufficientBalance(${REQUESTER}, 0, 5)`;
      refusals.push({ name: "ClerkInsufficientBalance", args: [REQUESTER, 0n, 5n], message });
      const report = await matcher().matchOnce();
      expect(calls).to.have.length(1); // no matchOrders
      expect(report.skipped).to.deep.equal([{ request: requestHash, reason: `canMatch: ${message}` }]);
      expect(getOrder(db, requestHash)).to.include({ status: "open", reason: `canMatch: ${message}` });
      expect((await matcher().matchOnce()).matched).to.have.length(1);
      expect(getOrder(db, requestHash)!.reason).to.equal(null);
    });

    it("retires an order canMatch reports consumed and retries the request with the next app order", async function () {
      const stale = add("AppOrder", app({ appprice: 1n }));
      const fresh = add("AppOrder", app({ appprice: 2n }));
      add("RequestOrder", request());
      refusals.push({ name: "ClerkOrderConsumed", args: [stale], message: `ClerkOrderConsumed(${stale})` });
      const report = await matcher().matchOnce();
      expect(calls).to.deep.equal([`canMatch ${stale}`, `canMatch ${fresh}`, `matchOrders ${fresh}`]);
      expect(report.retired).to.deep.equal([{ hash: stale, status: "consumed", reason: `ClerkOrderConsumed(${stale})` }]);
      expect(getOrder(db, stale)).to.include({ status: "consumed", remaining: 0n });
      expect(report.matched[0].app).to.equal(fresh);
    });

    it("precheck: false sends matchOrders at once and handles its refusals as canMatch's (retire, retry, skip)", async function () {
      refusesInMatch = true;
      const stale = add("AppOrder", app({ appprice: 1n }));
      const fresh = add("AppOrder", app({ appprice: 2n }));
      const first = add("RequestOrder", request());
      refusals.push({ name: "ClerkOrderConsumed", args: [stale], message: `ClerkOrderConsumed(${stale})` });
      const m = new Matcher({ workerpool: POOL, precheck: false }, { db, domain: D, chain, workerpoolOrders: [pool()], now: () => Number(NOW) * 1000 });
      const report = await m.matchOnce();
      expect(calls).to.deep.equal([`matchOrders ${stale}`, `matchOrders ${fresh}`]);
      expect(report.retired).to.deep.equal([{ hash: stale, status: "consumed", reason: `ClerkOrderConsumed(${stale})` }]);
      expect(report.matched.map((d) => [d.request, d.app])).to.deep.equal([[first, fresh]]);

      calls = [];
      const second = add("RequestOrder", request());
      const message = `ClerkInsufficientBalance(${REQUESTER}, 0, 5)`;
      refusals.push({ name: "ClerkInsufficientBalance", args: [REQUESTER, 0n, 5n], message });
      const again = await m.matchOnce();
      expect(calls).to.deep.equal([`matchOrders ${fresh}`]);
      expect(again.skipped).to.deep.equal([{ request: second, reason: `canMatch: ${message}` }]);
      expect(getOrder(db, second)).to.include({ status: "open", reason: `canMatch: ${message}` });
    });

    it("precheck: false stops the round when matchOrders fails for another reason (e.g. the chain is unreachable)", async function () {
      failMatch = true;
      const first = add("RequestOrder", request());
      const second = add("RequestOrder", request());
      add("AppOrder", app());
      const m = new Matcher({ workerpool: POOL, precheck: false }, { db, domain: D, chain, workerpoolOrders: [pool()], now: () => Number(NOW) * 1000 });
      const report = await m.matchOnce();
      expect(calls).to.have.length(1); // the second request waits for the next round
      expect(report.skipped).to.deep.equal([{ request: first, reason: "matchOrders failed: execution reverted: ClerkOrderConsumed" }]);
      expect(getOrder(db, second)!.status).to.equal("open");
    });

    it("retires a request whose nonce was revoked, and stops the round when the scheduler cannot stake", async function () {
      const revoked = add("RequestOrder", request());
      const next = add("RequestOrder", request());
      const last = add("RequestOrder", request());
      add("AppOrder", app());
      refusals.push({ name: "ClerkOrderNonceRevoked", args: [revoked, 0n, 1n], message: "ClerkOrderNonceRevoked(…)" });
      const scheduler = getAddress("0x0000000000000000000000000000000000005c4e");
      refusals.push({ name: "ClerkInsufficientBalance", args: [scheduler, 0n, 1n], message: "ClerkInsufficientBalance(scheduler)" });
      const report = await matcher().matchOnce();
      expect(getOrder(db, revoked)!.status).to.equal("cancelled");
      expect(report.skipped).to.deep.equal([{ request: next, reason: "ClerkInsufficientBalance(scheduler)" }]);
      expect(calls).to.have.length(2); // the third request is left for the next round
      expect(getOrder(db, last)!.status).to.equal("open");
    });

    it("retires expired orders, ignores requests for other pools, and leaves a request open when matchOrders fails", async function () {
      const expired = add("AppOrder", app({ expiry: NOW - 1n }));
      add("RequestOrder", request({ workerpool: 2n }));
      const requestHash = add("RequestOrder", request());
      add("AppOrder", app());
      failMatch = true;
      const report = await matcher().matchOnce();
      expect(report.retired).to.deep.equal([{ hash: expired, status: "expired", reason: `expired at ${NOW - 1n}` }]);
      expect(calls).to.have.length(2); // one request only: canMatch + matchOrders
      expect(report.skipped).to.deep.equal([{ request: requestHash, reason: "matchOrders failed: execution reverted: ClerkOrderConsumed" }]);
      expect(getOrder(db, requestHash)!.status).to.equal("open");
    });

    it("wake() ends the pause between rounds early, and run() stops on abort", async function () {
      add("AppOrder", app());
      const m = new Matcher({ workerpool: POOL, intervalMs: 3_600_000 }, { db, domain: D, chain, workerpoolOrders: [pool()] });
      const controller = new AbortController();
      const running = m.run(controller.signal);
      add("RequestOrder", request());
      m.wake();
      while (deals === 0) await new Promise((resolve) => setImmediate(resolve));
      controller.abort();
      await running;
      expect(deals).to.equal(1);
    });
  });
});
