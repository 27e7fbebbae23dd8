/**
 * The order book and the matcher against a real local chain (`hardhat node` + Concord deployed): the ethers
 * `OrderChecks` refuses what the Clerk would refuse (wrong owner, cancelled, revoked nonce, expired, unknown asset)
 * and accepts signed and presigned orders; `matchOnce` with the ethers `MatcherChain` turns the book into a deal on
 * chain, and leaves a request whose requester cannot pay open with the Clerk's reason.
 */
import { expect } from "chai";
import { parseEther } from "ethers";
import type { TypedDataDomain, Wallet } from "ethers";
import { dealId as dealIdOf, domain, hashOrder, signOrder } from "../../../sdk/eip712";
import type { OrderKind, OrderOf } from "../../../sdk/eip712";
import { buildAppOrder, buildDatasetOrder, buildRequestOrder, buildWorkerpoolOrder, orderToJson } from "../../../sdk/orders";
import { EthersOrderChecks } from "../../../scheduler/api/checks";
import { ordersRouter } from "../../../scheduler/api/orders";
import { EthersMatcherChain, Matcher } from "../../../scheduler/matcher";
import { openDatabase } from "../../../scheduler/store/db";
import type { Db } from "../../../scheduler/store/db";
import { getOrder } from "../../../scheduler/store/orders";
import { Hub__factory } from "../../../typechain-types";
import { startChain } from "../../cli/harness";
import type { Chain } from "../../cli/harness";
import { Served, post, serve } from "./helpers";

describe("scheduler order book and matcher on a real chain", function () {
  this.timeout(180_000);
  let chain: Chain;
  let d: TypedDataDomain;
  let db: Db;
  let server: Served;
  let appOwner: Wallet, datasetOwner: Wallet, scheduler: Wallet, requester: Wallet, stranger: Wallet, poor: Wallet;
  let poolId: bigint;

  const publish = async (kind: string, order: object) => post(`${server.url}/orders`, { kind, order: orderToJson(order) });
  const sign = <K extends OrderKind>(by: Wallet, kind: K, order: OrderOf<K>) => signOrder(by, d, kind, order);
  const chainTime = async () => BigInt((await chain.provider.getBlock("latest"))!.timestamp);

  before(async function () {
    chain = await startChain(7);
    [, appOwner, datasetOwner, scheduler, requester, stranger, poor] = chain.accounts;
    d = domain(chain.deployment.chainId, chain.deployment.hub);
    await (await chain.apps.connect(appOwner).register(appOwner.address, "echo", "wasi", "file:///echo.wasm", `0x${"11".repeat(32)}`)).wait();
    await (await chain.datasets.connect(datasetOwner).register(datasetOwner.address, "customers", "file:///c.csv", `0x${"22".repeat(32)}`)).wait();
    await (await chain.workerpools.connect(scheduler).register(scheduler.address, "pool", scheduler.address, 30, 10)).wait();
    poolId = await chain.workerpools.count();
    for (const account of [requester, scheduler]) {
      await (await chain.token.connect(account).approve(chain.deployment.hub, parseEther("100"))).wait();
      await (await chain.hub.connect(account).deposit(parseEther("100"))).wait();
    }
    db = openDatabase(":memory:");
    const checks = new EthersOrderChecks(chain.provider, chain.deployment);
    server = await serve([ordersRouter({}, { db, domain: d, checks, workerpool: poolId })]);
  });

  after(async function () {
    await server?.close();
    db?.close();
    await chain?.stop();
  });

  it("refuses what the Clerk would refuse: not the owner, cancelled, revoked nonce, expired, unknown asset", async function () {
    const expectRefused = (r: { status: number; json: any }, code: string, message: RegExp) => {
      expect(r.status, JSON.stringify(r.json)).to.equal(422);
      expect(r.json.error.code).to.equal(code);
      expect(r.json.error.message).to.match(message);
    };
    const byStranger = await sign(stranger, "AppOrder", buildAppOrder({ app: 1n, appprice: 1n }));
    expectRefused(await publish("app", byStranger), "NOT_OWNER", new RegExp(`but app 1's owner is ${appOwner.address}`));

    const cancelled = await sign(appOwner, "AppOrder", buildAppOrder({ app: 1n, appprice: 1n }));
    await (await chain.hub.connect(appOwner).cancelAppOrder(cancelled)).wait();
    expectRefused(await publish("app", cancelled), "CANCELLED", /cancelled on chain/);

    const revoked = await sign(stranger, "RequestOrder", buildRequestOrder({ app: 1n, appmaxprice: 1n, workerpoolmaxprice: 1n, category: 0n, requester: stranger.address }));
    await (await chain.hub.connect(stranger).incrementOrderNonce()).wait();
    expectRefused(await publish("request", revoked), "NONCE_REVOKED", /nonce 0 but .* order nonce is 1/);

    const expired = await sign(appOwner, "AppOrder", buildAppOrder({ app: 1n, appprice: 1n, expiry: await chainTime() }));
    expectRefused(await publish("app", expired), "EXPIRED", /expired at/);

    const unknown = await sign(appOwner, "AppOrder", buildAppOrder({ app: 42n, appprice: 1n }));
    expectRefused(await publish("app", unknown), "UNKNOWN_ASSET", /app 42 is not registered/);
  });

  it("accepts signed and presigned orders, then matchOnce makes a deal on chain and consumes the book's volumes", async function () {
    const presignedApp = { ...buildAppOrder({ app: 1n, appprice: parseEther("3"), volume: 5n }), sign: "0x" };
    await (await chain.hub.connect(appOwner).presignAppOrder(presignedApp)).wait();
    const app = await sign(appOwner, "AppOrder", buildAppOrder({ app: 1n, appprice: parseEther("1"), volume: 5n }));
    const dataset = await sign(datasetOwner, "DatasetOrder", buildDatasetOrder({ dataset: 1n, datasetprice: parseEther("0.5"), volume: 5n }));
    const request = await sign(
      requester,
      "RequestOrder",
      buildRequestOrder({
        app: 1n,
        appmaxprice: parseEther("1"),
        dataset: 1n,
        datasetmaxprice: parseEther("1"),
        workerpoolmaxprice: parseEther("2"),
        category: 0n,
        trust: 1n,
        volume: 2n,
        requester: requester.address,
        params: '{"query":"SELECT 1"}',
      }),
    );
    // A requester with no deposit: the Clerk refuses the match, the request stays open with the reason.
    const unpaid = await sign(
      poor,
      "RequestOrder",
      buildRequestOrder({ app: 1n, appmaxprice: parseEther("1"), workerpoolmaxprice: parseEther("2"), category: 0n, requester: poor.address }),
    );
    for (const [kind, order] of [["app", presignedApp], ["app", app], ["dataset", dataset], ["request", request], ["request", unpaid]] as const) {
      const r = await publish(kind, order);
      expect(r.status, `${kind}: ${JSON.stringify(r.json)}`).to.equal(201);
    }

    const own = await sign(scheduler, "WorkerpoolOrder", buildWorkerpoolOrder({ workerpool: poolId, workerpoolprice: parseEther("2"), category: 0n, trust: 3n, volume: 10n }));
    const matcher = new Matcher(
      { workerpool: poolId },
      { db, domain: d, chain: new EthersMatcherChain(Hub__factory.connect(chain.deployment.hub, scheduler)), workerpoolOrders: [own] },
    );
    const report = await matcher.matchOnce();

    expect(report.matched).to.have.length(1);
    const requestHash = hashOrder(d, "RequestOrder", request);
    const [deal] = report.matched;
    expect(deal.dealId).to.equal(dealIdOf(requestHash, 0));
    expect(deal).to.include({ request: requestHash, app: hashOrder(d, "AppOrder", app), dataset: hashOrder(d, "DatasetOrder", dataset), volume: 2n });
    expect(await chain.hub.dealCount()).to.equal(1n);
    const onChain = await chain.hub.viewDeal(deal.dealId);
    expect(onChain.requester).to.equal(requester.address);
    expect(onChain.scheduler).to.equal(scheduler.address);
    expect(onChain.volume).to.equal(2n);
    expect(onChain.app).to.equal(1n);
    expect(onChain.dataset).to.equal(1n);
    expect(onChain.appPrice).to.equal(parseEther("1")); // the cheaper app order, not the presigned one

    expect(getOrder(db, requestHash)).to.include({ status: "consumed", remaining: 0n });
    expect(getOrder(db, hashOrder(d, "AppOrder", app))).to.include({ status: "open", remaining: 3n });
    expect((await chain.hub.orderState(requestHash))[0]).to.equal(2n);

    const unpaidHash = hashOrder(d, "RequestOrder", unpaid);
    expect(report.skipped).to.have.length(1);
    expect(report.skipped[0].request).to.equal(unpaidHash);
    expect(report.skipped[0].reason).to.match(new RegExp(`^canMatch: ClerkInsufficientBalance\\(${poor.address}, 0, `));
    expect(getOrder(db, unpaidHash)!.status).to.equal("open");
  });
});
