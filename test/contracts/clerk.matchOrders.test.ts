/**
 * Clerk matching: matchOrders, canMatch, depositAndMatchOrders and categories. Every failing case asserts both the
 * revert (custom error and arguments) and that canMatch reports the same ABI-encoded error.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  AbiCoder,
  ZeroAddress,
  ZeroHash,
  concat,
  dataSlice,
  getAddress,
  getBytes,
  hexlify,
  keccak256,
  parseEther,
  toBeHex,
  zeroPadValue,
} from "ethers";
import {
  CATEGORY,
  INITIAL_DEPOSIT,
  INITIAL_TOKENS,
  PRICES,
  SCHEDULER_REWARD_RATIO,
  SCHEDULER_STAKE,
  TASK_PRICE,
  TIMEREF,
  WORKER_STAKE_RATIO,
  deployFixture,
  Fixture,
  OrderOverrides,
  OrderSet,
  datasetOrder,
  newcomer,
  signedOrders,
  unsigned,
} from "../helpers/fixture";
import { Kind, KINDS, article, expectMatchFails, expectMatchable, hashOf, match, signerOf } from "../helpers/orders";
import { permitSignature } from "../helpers/permit";
import { dealId, signOrder } from "../../sdk/eip712";
import { WalletMock__factory } from "../../typechain-types";

/** IClerk.OrderKind */
const App = 0n;
const Dataset = 1n;
const Workerpool = 2n;
const Request = 3n;

const U96 = 2n ** 96n;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** Four compatible signed orders where `kind`'s order takes the `fields` overrides. */
function orders(
  f: Fixture,
  kind: Kind,
  fields: Record<string, unknown>,
  extra: OrderOverrides = {},
): Promise<OrderSet> {
  return signedOrders(f, { ...extra, [kind]: { ...(extra[kind] as object | undefined), ...fields } });
}

/** The same set with `kind`'s signature replaced. */
function withSign(o: OrderSet, kind: Kind, sign: string): OrderSet {
  return { ...o, [kind]: { ...o[kind], sign } };
}

/** The same set with `kind`'s order re-signed by `signer`. */
async function resignedBy(f: Fixture, o: OrderSet, kind: Kind, signer: HardhatEthersSigner): Promise<OrderSet> {
  switch (kind) {
    case "app":
      return { ...o, app: await signOrder(signer, f.domain, "AppOrder", o.app) };
    case "dataset":
      return { ...o, dataset: await signOrder(signer, f.domain, "DatasetOrder", o.dataset) };
    case "workerpool":
      return { ...o, workerpool: await signOrder(signer, f.domain, "WorkerpoolOrder", o.workerpool) };
    case "request":
      return { ...o, request: await signOrder(signer, f.domain, "RequestOrder", o.request) };
  }
}

/** The other valid-looking ECDSA signature of the same digest: s' = n - s, v flipped (EIP-2 forbids it). */
function highS(sign: string): string {
  const bytes = getBytes(sign);
  const s = BigInt(hexlify(bytes.slice(32, 64)));
  expect(s <= SECP256K1_N / 2n, "ethers signs with a low s").to.equal(true);
  return concat([bytes.slice(0, 32), toBeHex(SECP256K1_N - s, 32), toBeHex(bytes[64] === 27 ? 28 : 27, 1)]);
}

function tag(bits: bigint): string {
  return toBeHex(bits, 32);
}

/** The id of the deal `o`'s request order makes after `consumed` of its volume was matched (0: its first deal). */
function idOf(f: Fixture, o: OrderSet, consumed = 0n): string {
  return dealId(hashOf(f, "request", o), consumed);
}

/**
 * The deal id as the Clerk derives it, computed here without the SDK: the low 152 bits of
 * keccak256(abi.encode(requestHash, consumed)), `consumed` being the request's consumed volume before the match.
 */
function derivedDealId(requestHash: string, consumed: bigint): string {
  const hash = keccak256(AbiCoder.defaultAbiCoder().encode(["bytes32", "uint256"], [requestHash, consumed]));
  return zeroPadValue(dataSlice(hash, 32 - 19), 32);
}

/** DealMatched's arguments for the deal `id` of `volume` tasks made from the set `o`. */
function dealMatched(f: Fixture, o: OrderSet, id: string, volume: bigint): unknown[] {
  return [
    id,
    hashOf(f, "request", o),
    f.workerpoolId,
    hashOf(f, "app", o),
    hashOf(f, "dataset", o),
    hashOf(f, "workerpool", o),
    o.request.beneficiary,
    volume,
    o.request.params,
  ];
}

describe("Clerk matchOrders", function () {
  describe("happy path", function () {
    it("turns four compatible orders into a deal and locks the payment and the scheduler's stake", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { volume: 3n, trust: 2n, params: '{"args":"x"}' } });
      await expectMatchable(f, o);
      expect(await f.hub.dealCount()).to.equal(0n);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
      const id = idOf(f, o);
      expect(await f.hub.dealCount()).to.equal(1n);
      const deal = await f.hub.viewDeal(id);
      expect(deal.requester).to.equal(f.requester.address);
      expect(deal.appPrice).to.equal(PRICES.app);
      expect(deal.scheduler).to.equal(f.scheduler.address);
      expect(deal.workerpoolPrice).to.equal(PRICES.workerpool);
      expect(deal.callback).to.equal(ZeroAddress);
      expect(deal.datasetPrice).to.equal(PRICES.dataset);
      expect(deal.startTime).to.equal(BigInt(await time.latest()));
      expect(deal.timeref).to.equal(TIMEREF);
      expect(deal.volume).to.equal(3n);
      expect(deal.trust).to.equal(2n);
      expect(deal.workerStakeRatio).to.equal(WORKER_STAKE_RATIO);
      expect(deal.schedulerRewardRatio).to.equal(SCHEDULER_REWARD_RATIO);
      expect(deal.app).to.equal(f.appId);
      expect(deal.dataset).to.equal(f.datasetId);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([
        INITIAL_DEPOSIT - TASK_PRICE * 3n,
        TASK_PRICE * 3n,
      ]);
      expect(await f.hub.accountOf(f.scheduler.address)).to.deep.equal([
        INITIAL_DEPOSIT - SCHEDULER_STAKE * 3n,
        SCHEDULER_STAKE * 3n,
      ]);
      for (const kind of KINDS) expect(await f.hub.orderState(hashOf(f, kind, o))).to.deep.equal([3n, false, false]);
    });

    it("emits DealMatched with the order hashes, beneficiary, volume and params", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, {
        request: { volume: 2n, beneficiary: f.other.address, params: '{"args":"héllo"}' },
      });
      await expect(match(f, o))
        .to.emit(f.hub, "DealMatched")
        .withArgs(
          idOf(f, o),
          hashOf(f, "request", o),
          f.workerpoolId,
          hashOf(f, "app", o),
          hashOf(f, "dataset", o),
          hashOf(f, "workerpool", o),
          f.other.address,
          2n,
          '{"args":"héllo"}',
        );
    });

    it("returns the deal id derived from the request order, and the deal's volume", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { volume: 2n } });
      expect(
        await f.hub.connect(f.requester).matchOrders.staticCall(o.app, o.dataset, o.workerpool, o.request),
      ).to.deep.equal([idOf(f, o), 2n]);
      await match(f, o);
      const next = await signedOrders(f, { request: { volume: 4n } });
      expect(
        await f.hub.connect(f.requester).matchOrders.staticCall(next.app, next.dataset, next.workerpool, next.request),
      ).to.deep.equal([idOf(f, next), 4n]);
      await match(f, next);
      expect(await f.hub.dealCount()).to.equal(2n);
      expect((await f.hub.viewDeal(idOf(f, next))).volume).to.equal(4n);
    });

    it("charges the offered prices, not the requester's maxima", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, {
        request: {
          appmaxprice: parseEther("5"),
          datasetmaxprice: parseEther("6"),
          workerpoolmaxprice: parseEther("70"),
        },
      });
      await match(f, o);
      const deal = await f.hub.viewDeal(idOf(f, o));
      expect([deal.appPrice, deal.datasetPrice, deal.workerpoolPrice]).to.deep.equal([
        PRICES.app,
        PRICES.dataset,
        PRICES.workerpool,
      ]);
      expect(await f.hub.frozenOf(f.requester.address)).to.equal(TASK_PRICE);
    });

    it("lets anyone submit the match; the requester pays and the scheduler stakes", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f);
      await match(f, o, f.other);
      expect(await f.hub.accountOf(f.other.address)).to.deep.equal([0n, 0n]);
      expect(await f.hub.frozenOf(f.requester.address)).to.equal(TASK_PRICE);
      expect(await f.hub.frozenOf(f.scheduler.address)).to.equal(SCHEDULER_STAKE);
    });

    it("locks nothing for a free deal", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, {
        app: { appprice: 0n },
        dataset: { datasetprice: 0n },
        workerpool: { workerpoolprice: 0n },
        request: { volume: 5n },
      });
      await match(f, o);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([INITIAL_DEPOSIT, 0n]);
      expect(await f.hub.accountOf(f.scheduler.address)).to.deep.equal([INITIAL_DEPOSIT, 0n]);
      expect((await f.hub.viewDeal(idOf(f, o))).volume).to.equal(5n);
    });

    it("stores the request's callback in the deal", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { callback: f.workers[5].address } });
      await match(f, o);
      expect((await f.hub.viewDeal(idOf(f, o))).callback).to.equal(f.workers[5].address);
    });

    it("matches a request that names the workerpool of the pool order", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { workerpool: f.workerpoolId } });
      await expectMatchable(f, o);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
    });

    it("matches orders whose restrictions name exactly the deal's parties", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, {
        app: {
          datasetrestrict: f.datasetId,
          workerpoolrestrict: f.workerpoolId,
          requesterrestrict: f.requester.address,
        },
        dataset: { apprestrict: f.appId, workerpoolrestrict: f.workerpoolId, requesterrestrict: f.requester.address },
        workerpool: { apprestrict: f.appId, datasetrestrict: f.datasetId, requesterrestrict: f.requester.address },
      });
      await expectMatchable(f, o);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
    });

    it("matches when the pool's tag covers the union of the request, app and dataset tags", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, {
        request: { tag: tag(1n) },
        app: { tag: tag(2n) },
        dataset: { tag: tag(4n) },
        workerpool: { tag: tag(0xffn) },
      });
      await expectMatchable(f, o);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
    });

    it("accepts trust 0 and trust up to the pool's (at most 32)", async function () {
      const f = await loadFixture(deployFixture);
      const zero = await signedOrders(f, { request: { trust: 0n } });
      await match(f, zero);
      expect((await f.hub.viewDeal(idOf(f, zero))).trust).to.equal(0n);
      const o = await signedOrders(f, { request: { trust: 32n }, workerpool: { trust: 32n } });
      await expectMatchable(f, o);
      await match(f, o);
      expect((await f.hub.viewDeal(idOf(f, o))).trust).to.equal(32n);
    });

    it("accepts an EIP-1271 contract requester whose owner signed the request", async function () {
      const f = await loadFixture(deployFixture);
      const wallet = await new WalletMock__factory(f.owner).deploy(f.requester.address);
      const walletAddress = await wallet.getAddress();
      await f.token.mint(walletAddress, INITIAL_TOKENS);
      await wallet
        .connect(f.requester)
        .approve(await f.token.getAddress(), await f.hub.getAddress(), ethers.MaxUint256);
      await wallet
        .connect(f.requester)
        .execute(await f.hub.getAddress(), f.hub.interface.encodeFunctionData("deposit", [INITIAL_DEPOSIT]));
      const o = await signedOrders(f, { request: { requester: walletAddress, beneficiary: walletAddress } });
      await expectMatchable(f, o);
      await match(f, o);
      expect(await f.hub.accountOf(walletAddress)).to.deep.equal([INITIAL_DEPOSIT - TASK_PRICE, TASK_PRICE]);
      expect((await f.hub.viewDeal(idOf(f, o))).requester).to.equal(walletAddress);
      // The wallet refuses a signature that is not its owner's.
      const forged = await signedOrders(f, {
        request: { requester: walletAddress, beneficiary: walletAddress },
        requesterSigner: f.other,
      });
      await expectMatchFails(f, forged, "ClerkInvalidSignature", [hashOf(f, "request", forged), walletAddress]);
    });
  });

  describe("deal id", function () {
    it("is the low 152 bits of keccak256(abi.encode(requestHash, 0)) for a request order's first deal", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { volume: 2n } });
      const requestHash = hashOf(f, "request", o);
      const id = derivedDealId(requestHash, 0n);
      await expect(match(f, o))
        .to.emit(f.hub, "DealMatched")
        .withArgs(...dealMatched(f, o, id, 2n));
      const deal = await f.hub.viewDeal(id);
      expect([deal.requester, deal.volume]).to.deep.equal([f.requester.address, 2n]);
      expect(await f.hub.orderState(requestHash)).to.deep.equal([2n, false, false]);
      expect(await f.hub.dealCount()).to.equal(1n);
    });

    it("gives each deal of a partially matched request order its own id, derived from the volume consumed before it", async function () {
      const f = await loadFixture(deployFixture);
      // The request asks 5 tasks and the first app order offers 2: deals of 2, then 3 tasks (with fresh offers).
      const first = await signedOrders(f, { app: { volume: 2n }, request: { volume: 5n } });
      const second = { ...(await signedOrders(f)), request: first.request };
      const requestHash = hashOf(f, "request", first);
      const [id1, id2] = [derivedDealId(requestHash, 0n), derivedDealId(requestHash, 2n)];
      expect(id1).to.not.equal(id2);
      await expect(match(f, first))
        .to.emit(f.hub, "DealMatched")
        .withArgs(...dealMatched(f, first, id1, 2n));
      expect(await f.hub.orderState(requestHash)).to.deep.equal([2n, false, false]);
      await expect(match(f, second))
        .to.emit(f.hub, "DealMatched")
        .withArgs(...dealMatched(f, second, id2, 3n));
      expect(await f.hub.orderState(requestHash)).to.deep.equal([5n, false, false]);
      expect(await f.hub.dealCount()).to.equal(2n);
      expect((await f.hub.viewDeal(id1)).volume).to.equal(2n);
      expect((await f.hub.viewDeal(id2)).volume).to.equal(3n);
      expect(await f.hub.frozenOf(f.requester.address)).to.equal(TASK_PRICE * 5n);
      expect([dealId(requestHash), dealId(requestHash, 2n)]).to.deep.equal([id1, id2]);
      await expectMatchFails(f, second, "ClerkOrderConsumed", [requestHash]);
    });

    it("refuses a match whose deal id is taken (a 152-bit collision, planted here in storage) with ClerkDealExists", async function () {
      const f = await loadFixture(deployFixture);
      // find the storage slot of the deals mapping from a real deal (its requester is the first word of the record)
      const first = await signedOrders(f);
      await match(f, first);
      const firstId = dealId(hashOf(f, "request", first));
      const slotOf = (id: string, base: number) => keccak256(AbiCoder.defaultAbiCoder().encode(["bytes32", "uint256"], [id, base]));
      const hub = await f.hub.getAddress();
      let base = -1;
      for (let p = 0; p < 64 && base < 0; p++) {
        const word = await ethers.provider.getStorage(hub, slotOf(firstId, p));
        if (BigInt(word) & ((1n << 160n) - 1n) && getAddress(`0x${word.slice(-40)}`) === f.requester.address) base = p;
      }
      expect(base, "the deals mapping's slot").to.be.at.least(0);

      // another request order whose id would collide: a deal already sits under it
      const second = await signedOrders(f, { request: { volume: 2n } });
      const secondId = dealId(hashOf(f, "request", second));
      await ethers.provider.send("hardhat_setStorageAt", [hub, slotOf(secondId, base), zeroPadValue(f.other.address, 32)]);
      await expectMatchFails(f, second, "ClerkDealExists", [secondId]);
      expect(await f.hub.orderState(hashOf(f, "request", second))).to.deep.equal([0n, false, false]);
      expect(await f.hub.dealCount()).to.equal(1n);
    });

    it("returns from a static call the id the match then emits: the SDK's dealId, known before the match", async function () {
      const f = await loadFixture(deployFixture);
      const hub = f.hub.connect(f.requester);
      const o = await signedOrders(f, { app: { volume: 1n }, request: { volume: 3n } });
      const requestHash = hashOf(f, "request", o);
      const known = dealId(requestHash);
      expect(known).to.equal(derivedDealId(requestHash, 0n));
      expect(await hub.matchOrders.staticCall(o.app, o.dataset, o.workerpool, o.request)).to.deep.equal([known, 1n]);
      await expect(match(f, o))
        .to.emit(f.hub, "DealMatched")
        .withArgs(...dealMatched(f, o, known, 1n));
      // The request's next deal, with a fresh app order: its id counts the one task already matched.
      const next = { ...(await signedOrders(f)), request: o.request };
      const nextKnown = dealId(requestHash, 1n);
      expect(nextKnown).to.equal(derivedDealId(requestHash, 1n));
      expect(await hub.matchOrders.staticCall(next.app, next.dataset, next.workerpool, next.request)).to.deep.equal([
        nextKnown,
        2n,
      ]);
      await expect(match(f, next))
        .to.emit(f.hub, "DealMatched")
        .withArgs(...dealMatched(f, next, nextKnown, 2n));
      expect((await f.hub.viewDeal(nextKnown)).volume).to.equal(2n);
    });

    it("is derived the same way by depositAndMatchOrders", async function () {
      const f = await loadFixture(deployFixture);
      const buyer = await newcomer(f);
      const hub = f.hub.connect(buyer);
      const total = TASK_PRICE * 3n;
      const deadline = BigInt(await time.latest()) + 3600n;
      const p = await permitSignature(f, buyer.address, total, deadline);
      // 3 tasks asked, 2 offered by the first app order: the deposit and a deal of 2, then a deal of 1.
      const first = await signedOrders(f, {
        app: { volume: 2n },
        request: { requester: buyer.address, beneficiary: buyer.address, volume: 3n },
        requesterSigner: buyer,
      });
      const rest = { ...(await signedOrders(f)), request: first.request };
      const requestHash = hashOf(f, "request", first);
      const [id1, id2] = [derivedDealId(requestHash, 0n), derivedDealId(requestHash, 2n)];
      const { app, dataset, workerpool, request } = first;
      expect(
        await hub.depositAndMatchOrders.staticCall(total, deadline, p.v, p.r, p.s, app, dataset, workerpool, request),
      ).to.deep.equal([id1, 2n]);
      await expect(hub.depositAndMatchOrders(total, deadline, p.v, p.r, p.s, app, dataset, workerpool, request))
        .to.emit(f.hub, "DealMatched")
        .withArgs(...dealMatched(f, first, id1, 2n));
      await expect(
        hub.depositAndMatchOrders(0, 0, 0, ZeroHash, ZeroHash, rest.app, rest.dataset, rest.workerpool, rest.request),
      )
        .to.emit(f.hub, "DealMatched")
        .withArgs(...dealMatched(f, rest, id2, 1n));
      expect([dealId(requestHash), dealId(requestHash, 2n)]).to.deep.equal([id1, id2]);
      expect((await f.hub.viewDeal(id1)).requester).to.equal(buyer.address);
      expect((await f.hub.viewDeal(id2)).volume).to.equal(1n);
      expect(await f.hub.accountOf(buyer.address)).to.deep.equal([0n, total]);
    });
  });

  describe("volume", function () {
    const cases: { name: string; volumes: [bigint, bigint, bigint, bigint]; expected: bigint }[] = [
      { name: "the app order", volumes: [3n, 5n, 6n, 7n], expected: 3n },
      { name: "the dataset order", volumes: [7n, 2n, 6n, 7n], expected: 2n },
      { name: "the workerpool order", volumes: [7n, 5n, 4n, 7n], expected: 4n },
      { name: "the request order", volumes: [7n, 5n, 6n, 1n], expected: 1n },
    ];
    for (const c of cases) {
      it(`is the smallest remaining volume when ${c.name} has the least`, async function () {
        const f = await loadFixture(deployFixture);
        const [app, dataset, workerpool, request] = c.volumes;
        const o = await signedOrders(f, {
          app: { volume: app },
          dataset: { volume: dataset },
          workerpool: { volume: workerpool },
          request: { volume: request },
        });
        await expect(match(f, o)).to.emit(f.hub, "DealMatched");
        expect((await f.hub.viewDeal(idOf(f, o))).volume).to.equal(c.expected);
        expect(await f.hub.frozenOf(f.requester.address)).to.equal(TASK_PRICE * c.expected);
        expect(await f.hub.frozenOf(f.scheduler.address)).to.equal(SCHEDULER_STAKE * c.expected);
      });
    }

    it("ignores the dataset order's volume when the request has no dataset", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, {
        dataset: { volume: 1n },
        request: { volume: 4n, dataset: 0n, datasetmaxprice: 0n },
      });
      await match(f, o);
      expect((await f.hub.viewDeal(idOf(f, o))).volume).to.equal(4n);
    });

    it("caps a deal at MAX_DEAL_VOLUME (256) and matches the rest in a further deal", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.hub.MAX_DEAL_VOLUME()).to.equal(256n);
      const o = await signedOrders(f, {
        app: { volume: 1000n, appprice: 1000n },
        dataset: { volume: 1000n, datasetprice: 2000n },
        workerpool: { volume: 1000n, workerpoolprice: 10_000n },
        request: { volume: 300n },
      });
      await expect(match(f, o))
        .to.emit(f.hub, "DealMatched")
        .withArgs(
          idOf(f, o),
          hashOf(f, "request", o),
          f.workerpoolId,
          hashOf(f, "app", o),
          hashOf(f, "dataset", o),
          hashOf(f, "workerpool", o),
          f.requester.address,
          256n,
          o.request.params,
        );
      expect((await f.hub.viewDeal(idOf(f, o))).volume).to.equal(256n);
      await match(f, o);
      expect((await f.hub.viewDeal(idOf(f, o, 256n))).volume).to.equal(44n);
      for (const kind of KINDS) expect((await f.hub.orderState(hashOf(f, kind, o)))[0]).to.equal(300n);
      expect(await f.hub.frozenOf(f.requester.address)).to.equal(13_000n * 300n);
      expect(await f.hub.frozenOf(f.scheduler.address)).to.equal(3_000n * 300n);
      await expectMatchFails(f, o, "ClerkOrderConsumed", [hashOf(f, "request", o)]);
    });

    it("consumes an offer across matches until it is exhausted", async function () {
      const f = await loadFixture(deployFixture);
      const first = await signedOrders(f, { app: { volume: 3n }, request: { volume: 2n } });
      await match(f, first);
      const appHash = hashOf(f, "app", first);
      expect(await f.hub.orderState(appHash)).to.deep.equal([2n, false, false]);
      const second = { ...(await signedOrders(f, { request: { volume: 2n } })), app: first.app };
      await match(f, second);
      expect((await f.hub.viewDeal(idOf(f, second))).volume).to.equal(1n);
      expect(await f.hub.orderState(appHash)).to.deep.equal([3n, false, false]);
      expect(await f.hub.orderState(hashOf(f, "request", second))).to.deep.equal([1n, false, false]);
      const third = { ...(await signedOrders(f)), app: first.app };
      await expectMatchFails(f, third, "ClerkOrderConsumed", [appHash]);
      expect(await f.hub.dealCount()).to.equal(2n);
    });

    it("refuses to match a fully consumed request again", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f);
      await match(f, o);
      await expectMatchFails(f, o, "ClerkOrderConsumed", [hashOf(f, "request", o)]);
    });
  });

  describe("request without a dataset", function () {
    it("ignores the dataset order entirely and charges no dataset price", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { dataset: 0n, datasetmaxprice: 0n, volume: 2n } });
      // A dataset order that would fail every check: unknown, overpriced, expired, exhausted, unsigned, restricted.
      const junk = unsigned(
        datasetOrder(f, {
          dataset: 99n,
          datasetprice: U96 * 4n,
          volume: 0n,
          tag: tag(0xffn),
          apprestrict: 77n,
          workerpoolrestrict: 77n,
          requesterrestrict: f.other.address,
          expiry: 1n,
          nonce: 5n,
        }),
      );
      const set = { ...o, dataset: junk };
      await expectMatchable(f, set);
      await expect(match(f, set))
        .to.emit(f.hub, "DealMatched")
        .withArgs(
          idOf(f, set),
          hashOf(f, "request", set),
          f.workerpoolId,
          hashOf(f, "app", set),
          ZeroHash,
          hashOf(f, "workerpool", set),
          f.requester.address,
          2n,
          set.request.params,
        );
      const deal = await f.hub.viewDeal(idOf(f, set));
      expect(deal.dataset).to.equal(0n);
      expect(deal.datasetPrice).to.equal(0n);
      expect(await f.hub.frozenOf(f.requester.address)).to.equal((PRICES.app + PRICES.workerpool) * 2n);
      expect(await f.hub.orderState(hashOf(f, "dataset", set))).to.deep.equal([0n, false, false]);
    });

    it("refuses an app order restricted to a dataset when the request has none", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, {
        app: { datasetrestrict: f.datasetId },
        request: { dataset: 0n, datasetmaxprice: 0n },
      });
      await expectMatchFails(f, o, "ClerkRestricted", [App, Dataset]);
    });

    it("refuses a workerpool order restricted to a dataset when the request has none", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, {
        workerpool: { datasetrestrict: f.datasetId },
        request: { dataset: 0n, datasetmaxprice: 0n },
      });
      await expectMatchFails(f, o, "ClerkRestricted", [Workerpool, Dataset]);
    });
  });

  describe("asset and price checks", function () {
    it("refuses an app order for another app", async function () {
      const f = await loadFixture(deployFixture);
      await expectMatchFails(f, await orders(f, "app", { app: 2n }), "ClerkAssetMismatch", [App, 2n, 1n]);
    });

    it("refuses a dataset order for another dataset", async function () {
      const f = await loadFixture(deployFixture);
      await expectMatchFails(f, await orders(f, "dataset", { dataset: 2n }), "ClerkAssetMismatch", [Dataset, 2n, 1n]);
    });

    it("refuses a workerpool order for another pool than the one the request names", async function () {
      const f = await loadFixture(deployFixture);
      await expectMatchFails(f, await orders(f, "request", { workerpool: 2n }), "ClerkAssetMismatch", [
        Workerpool,
        1n,
        2n,
      ]);
    });

    it("refuses an app price above the requester's maximum", async function () {
      const f = await loadFixture(deployFixture);
      const o = await orders(f, "app", { appprice: parseEther("2") });
      await expectMatchFails(f, o, "ClerkPriceTooHigh", [App, parseEther("2"), PRICES.app]);
    });

    it("refuses a dataset price above the requester's maximum", async function () {
      const f = await loadFixture(deployFixture);
      const o = await orders(f, "dataset", { datasetprice: parseEther("3") });
      await expectMatchFails(f, o, "ClerkPriceTooHigh", [Dataset, parseEther("3"), PRICES.dataset]);
    });

    it("refuses a workerpool price above the requester's maximum", async function () {
      const f = await loadFixture(deployFixture);
      const o = await orders(f, "workerpool", { workerpoolprice: parseEther("11") });
      await expectMatchFails(f, o, "ClerkPriceTooHigh", [Workerpool, parseEther("11"), PRICES.workerpool]);
    });

    it("refuses an app price that does not fit 96 bits", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { app: { appprice: U96 }, request: { appmaxprice: U96 } });
      await expectMatchFails(f, o, "ClerkPriceOverflow", [U96]);
    });

    it("refuses a dataset price that does not fit 96 bits", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { dataset: { datasetprice: U96 }, request: { datasetmaxprice: U96 } });
      await expectMatchFails(f, o, "ClerkPriceOverflow", [U96]);
    });

    it("refuses a workerpool price that does not fit 96 bits", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { workerpool: { workerpoolprice: U96 }, request: { workerpoolmaxprice: U96 } });
      await expectMatchFails(f, o, "ClerkPriceOverflow", [U96]);
    });

    it("accepts the largest 96-bit price", async function () {
      const f = await loadFixture(deployFixture);
      await f.token.mint(f.requester.address, U96);
      await f.hub.connect(f.requester).deposit(U96);
      const o = await signedOrders(f, { app: { appprice: U96 - 1n }, request: { appmaxprice: U96 - 1n } });
      await expectMatchable(f, o);
      await match(f, o);
      expect((await f.hub.viewDeal(idOf(f, o))).appPrice).to.equal(U96 - 1n);
      expect(await f.hub.frozenOf(f.requester.address)).to.equal(U96 - 1n + PRICES.dataset + PRICES.workerpool);
    });
  });

  describe("category, trust and tag checks", function () {
    it("refuses a pool order for another category", async function () {
      const f = await loadFixture(deployFixture);
      await expectMatchFails(f, await orders(f, "workerpool", { category: 1n }), "ClerkCategoryMismatch", [
        1n,
        CATEGORY,
      ]);
    });

    it("refuses a category that does not exist", async function () {
      const f = await loadFixture(deployFixture);
      const count = await f.hub.categoryCount();
      const o = await signedOrders(f, { workerpool: { category: count }, request: { category: count } });
      await expectMatchFails(f, o, "ClerkUnknownCategory", [count]);
    });

    it("refuses a request asking more trust than the pool offers", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { workerpool: { trust: 3n }, request: { trust: 5n } });
      await expectMatchFails(f, o, "ClerkTrustMismatch", [3n, 5n]);
    });

    it("refuses a trust above 32 even when the pool offers it", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { workerpool: { trust: 40n }, request: { trust: 33n } });
      await expectMatchFails(f, o, "ClerkTrustMismatch", [40n, 33n]);
    });

    it("refuses a request tag the pool does not offer", async function () {
      const f = await loadFixture(deployFixture);
      const o = await orders(f, "request", { tag: tag(1n) });
      await expectMatchFails(f, o, "ClerkTagMismatch", [tag(1n), ZeroHash]);
    });

    it("refuses an app tag the pool does not offer", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, {
        request: { tag: tag(1n) },
        app: { tag: tag(2n) },
        workerpool: { tag: tag(1n) },
      });
      await expectMatchFails(f, o, "ClerkTagMismatch", [tag(3n), tag(1n)]);
    });

    it("refuses a dataset tag the pool does not offer", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { dataset: { tag: tag(4n) }, workerpool: { tag: tag(3n) } });
      await expectMatchFails(f, o, "ClerkTagMismatch", [tag(4n), tag(3n)]);
    });

    it("ignores the dataset order's tag when the request has no dataset", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { dataset: { tag: tag(4n) }, request: { dataset: 0n, datasetmaxprice: 0n } });
      await expectMatchable(f, o);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
    });
  });

  describe("restrictions", function () {
    const cases: { kind: Kind; field: string; value: (f: Fixture) => unknown; error: [bigint, bigint] }[] = [
      { kind: "app", field: "datasetrestrict", value: () => 2n, error: [App, Dataset] },
      { kind: "app", field: "workerpoolrestrict", value: () => 2n, error: [App, Workerpool] },
      { kind: "app", field: "requesterrestrict", value: (f) => f.other.address, error: [App, Request] },
      { kind: "dataset", field: "apprestrict", value: () => 2n, error: [Dataset, App] },
      { kind: "dataset", field: "workerpoolrestrict", value: () => 2n, error: [Dataset, Workerpool] },
      { kind: "dataset", field: "requesterrestrict", value: (f) => f.other.address, error: [Dataset, Request] },
      { kind: "workerpool", field: "apprestrict", value: () => 2n, error: [Workerpool, App] },
      { kind: "workerpool", field: "datasetrestrict", value: () => 2n, error: [Workerpool, Dataset] },
      { kind: "workerpool", field: "requesterrestrict", value: (f) => f.other.address, error: [Workerpool, Request] },
    ];
    for (const c of cases) {
      it(`refuses ${article(c.kind)} order whose ${c.field} excludes the deal's party`, async function () {
        const f = await loadFixture(deployFixture);
        const o = await orders(f, c.kind, { [c.field]: c.value(f) });
        await expectMatchFails(f, o, "ClerkRestricted", c.error);
      });
    }

    it("ignores the dataset order's restrictions when the request has no dataset", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, {
        dataset: { apprestrict: 2n, workerpoolrestrict: 2n, requesterrestrict: f.other.address },
        request: { dataset: 0n, datasetmaxprice: 0n },
      });
      await expectMatchable(f, o);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
    });
  });

  describe("unknown assets", function () {
    it("refuses an app that is not registered", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { app: { app: 99n }, request: { app: 99n } });
      await expectMatchFails(f, o, "ClerkUnknownAsset", [App, 99n]);
    });

    it("refuses a dataset that is not registered", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { dataset: { dataset: 99n }, request: { dataset: 99n } });
      await expectMatchFails(f, o, "ClerkUnknownAsset", [Dataset, 99n]);
    });

    it("refuses a workerpool that is not registered", async function () {
      const f = await loadFixture(deployFixture);
      await expectMatchFails(f, await orders(f, "workerpool", { workerpool: 99n }), "ClerkUnknownAsset", [
        Workerpool,
        99n,
      ]);
    });

    it("refuses workerpool id 0", async function () {
      const f = await loadFixture(deployFixture);
      await expectMatchFails(f, await orders(f, "workerpool", { workerpool: 0n }), "ClerkUnknownAsset", [
        Workerpool,
        0n,
      ]);
    });

    it("reports asset, price, category, trust, tag and restriction failures before an unknown asset", async function () {
      const f = await loadFixture(deployFixture);
      const unknown = { app: { app: 99n }, request: { app: 99n } };
      const o1 = await signedOrders(f, { ...unknown, app: { app: 99n, appprice: parseEther("2") } });
      await expectMatchFails(f, o1, "ClerkPriceTooHigh", [App, parseEther("2"), PRICES.app]);
      const o2 = await signedOrders(f, { ...unknown, workerpool: { category: 1n } });
      await expectMatchFails(f, o2, "ClerkCategoryMismatch", [1n, CATEGORY]);
      const o3 = await signedOrders(f, { ...unknown, request: { app: 99n, trust: 33n } });
      await expectMatchFails(f, o3, "ClerkTrustMismatch", [32n, 33n]);
      const o4 = await signedOrders(f, { ...unknown, request: { app: 99n, tag: tag(1n) } });
      await expectMatchFails(f, o4, "ClerkTagMismatch", [tag(1n), ZeroHash]);
      const o5 = await signedOrders(f, { ...unknown, workerpool: { apprestrict: 1n } });
      await expectMatchFails(f, o5, "ClerkRestricted", [Workerpool, App]);
      const o6 = await signedOrders(f, {
        ...unknown,
        workerpool: { workerpool: 98n },
        request: { app: 99n, workerpool: 97n },
      });
      await expectMatchFails(f, o6, "ClerkAssetMismatch", [Workerpool, 98n, 97n]);
    });

    it("reports an unknown app before the signature of any order", async function () {
      const f = await loadFixture(deployFixture);
      let o = await signedOrders(f, { app: { app: 99n }, request: { app: 99n } });
      for (const kind of KINDS) o = withSign(o, kind, "0x");
      await expectMatchFails(f, o, "ClerkUnknownAsset", [App, 99n]);
    });
  });

  describe("scheduler consent", function () {
    /** Registers pool 2, owned and registered by the pool owner, naming `other` (funded) as its scheduler. */
    async function poolNamingOther(f: Fixture): Promise<bigint> {
      await f.workerpools.connect(f.poolOwner).register(f.poolOwner.address, "pool 2", f.other.address, 30, 10);
      await f.hub.connect(f.other).deposit(INITIAL_DEPOSIT);
      return 2n;
    }

    it("refuses a pool whose owner named a scheduler that has not consented, in matchOrders and canMatch", async function () {
      const f = await loadFixture(deployFixture);
      const pool = await poolNamingOther(f);
      const o = await signedOrders(f, { workerpool: { workerpool: pool } });
      const [ok, reason] = await f.hub.canMatch(o.app, o.dataset, o.workerpool, o.request);
      expect(ok).to.equal(false);
      expect(reason).to.equal(
        f.hub.interface.encodeErrorResult("ClerkSchedulerWithoutConsent", [pool, f.other.address]),
      );
      await expect(match(f, o))
        .to.be.revertedWithCustomError(f.hub, "ClerkSchedulerWithoutConsent")
        .withArgs(pool, f.other.address);
      // Nothing was locked on the named scheduler's account, nothing consumed.
      expect(await f.hub.accountOf(f.other.address)).to.deep.equal([INITIAL_DEPOSIT, 0n]);
      expect(await f.hub.dealCount()).to.equal(0n);
      for (const kind of KINDS) expect(await f.hub.orderState(hashOf(f, kind, o))).to.deep.equal([0n, false, false]);
    });

    it("matches the same orders once the named scheduler consents, and makes it stake", async function () {
      const f = await loadFixture(deployFixture);
      const pool = await poolNamingOther(f);
      const o = await signedOrders(f, { workerpool: { workerpool: pool }, request: { volume: 2n } });
      await expectMatchFails(f, o, "ClerkSchedulerWithoutConsent", [pool, f.other.address]);
      await f.workerpools.connect(f.other).setSchedulerConsent(pool, true);
      await expectMatchable(f, o);
      await expect(match(f, o))
        .to.emit(f.hub, "DealMatched")
        .withArgs(
          idOf(f, o),
          hashOf(f, "request", o),
          pool,
          hashOf(f, "app", o),
          hashOf(f, "dataset", o),
          hashOf(f, "workerpool", o),
          f.requester.address,
          2n,
          o.request.params,
        );
      expect((await f.hub.viewDeal(idOf(f, o))).scheduler).to.equal(f.other.address);
      expect(await f.hub.accountOf(f.other.address)).to.deep.equal([
        INITIAL_DEPOSIT - SCHEDULER_STAKE * 2n,
        SCHEDULER_STAKE * 2n,
      ]);
      // The fixture's scheduler stakes nothing for a pool it does not run.
      expect(await f.hub.accountOf(f.scheduler.address)).to.deep.equal([INITIAL_DEPOSIT, 0n]);
    });

    it("matches at once a pool its scheduler registered for another owner", async function () {
      const f = await loadFixture(deployFixture);
      await f.workerpools.connect(f.other).register(f.poolOwner.address, "pool 2", f.other.address, 30, 10);
      await f.hub.connect(f.other).deposit(INITIAL_DEPOSIT);
      const o = await signedOrders(f, { workerpool: { workerpool: 2n } });
      await expectMatchable(f, o);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
      expect((await f.hub.viewDeal(idOf(f, o))).scheduler).to.equal(f.other.address);
    });

    it("refuses the fixture's pool once its scheduler withdraws its consent", async function () {
      const f = await loadFixture(deployFixture);
      await f.workerpools.connect(f.scheduler).setSchedulerConsent(f.workerpoolId, false);
      const o = await signedOrders(f);
      await expectMatchFails(f, o, "ClerkSchedulerWithoutConsent", [f.workerpoolId, f.scheduler.address]);
    });

    it("checks the consent right after the pool exists, before the pool order's expiry, nonce, signature and volume", async function () {
      const f = await loadFixture(deployFixture);
      const pool = await poolNamingOther(f);
      // An unknown pool is reported as such, not as a lack of consent.
      const unknown = await signedOrders(f, { workerpool: { workerpool: 3n } });
      await expectMatchFails(f, unknown, "ClerkUnknownAsset", [Workerpool, 3n]);
      // Expired, carrying a revoked nonce, unsigned: the consent is still what is reported.
      const expiry = BigInt(await time.latest());
      await f.hub.connect(f.poolOwner).incrementOrderNonce();
      const bad = withSign(await signedOrders(f, { workerpool: { workerpool: pool, expiry } }), "workerpool", "0x");
      await expectMatchFails(f, bad, "ClerkSchedulerWithoutConsent", [pool, f.other.address]);
      // A cancelled pool order too.
      const cancelled = await signedOrders(f, { workerpool: { workerpool: pool, nonce: 1n } });
      await f.hub.connect(f.poolOwner).cancelWorkerpoolOrder(cancelled.workerpool);
      await expectMatchFails(f, cancelled, "ClerkSchedulerWithoutConsent", [pool, f.other.address]);
      // Once the scheduler consents, the pool order's own failures show up again, in their usual order.
      await f.workerpools.connect(f.other).setSchedulerConsent(pool, true);
      await expectMatchFails(f, bad, "ClerkOrderExpired", [hashOf(f, "workerpool", bad), expiry]);
      await expectMatchFails(f, cancelled, "ClerkOrderConsumed", [hashOf(f, "workerpool", cancelled)]);
    });

    it("reports the app and dataset orders' failures before the consent, and the consent before the request's and the balances", async function () {
      const f = await loadFixture(deployFixture);
      const pool = await poolNamingOther(f);
      const o = await signedOrders(f, { workerpool: { workerpool: pool } });
      const noApp = withSign(o, "app", "0x");
      await expectMatchFails(f, noApp, "ClerkInvalidSignature", [hashOf(f, "app", noApp), f.appOwner.address]);
      const noDataset = withSign(o, "dataset", "0x");
      await expectMatchFails(f, noDataset, "ClerkInvalidSignature", [
        hashOf(f, "dataset", noDataset),
        f.datasetOwner.address,
      ]);
      await expectMatchFails(f, withSign(o, "request", "0x"), "ClerkSchedulerWithoutConsent", [pool, f.other.address]);
      // The named scheduler has no funds left for a stake, and the requester cannot pay 8 tasks: consent first.
      await f.hub.connect(f.other).withdraw(INITIAL_DEPOSIT);
      const broke = await signedOrders(f, { workerpool: { workerpool: pool }, request: { volume: 8n } });
      await expectMatchFails(f, broke, "ClerkSchedulerWithoutConsent", [pool, f.other.address]);
      await f.workerpools.connect(f.other).setSchedulerConsent(pool, true);
      await expectMatchFails(f, broke, "ClerkInsufficientBalance", [
        f.requester.address,
        INITIAL_DEPOSIT,
        TASK_PRICE * 8n,
      ]);
    });
  });

  describe("expiry", function () {
    for (const kind of KINDS) {
      it(`refuses an expired ${kind} order`, async function () {
        const f = await loadFixture(deployFixture);
        const expiry = BigInt(await time.latest());
        const o = await orders(f, kind, { expiry });
        await expectMatchFails(f, o, "ClerkOrderExpired", [hashOf(f, kind, o), expiry]);
      });

      it(`matches ${article(kind)} order one second before its expiry`, async function () {
        const f = await loadFixture(deployFixture);
        const expiry = BigInt(await time.latest()) + 1000n;
        const o = await orders(f, kind, { expiry });
        await time.setNextBlockTimestamp(expiry - 1n);
        await expect(match(f, o)).to.emit(f.hub, "DealMatched");
        expect((await f.hub.viewDeal(idOf(f, o))).startTime).to.equal(expiry - 1n);
      });

      it(`refuses ${article(kind)} order at its expiry`, async function () {
        const f = await loadFixture(deployFixture);
        const expiry = BigInt(await time.latest()) + 1000n;
        const o = await orders(f, kind, { expiry });
        await time.setNextBlockTimestamp(expiry);
        await expect(match(f, o))
          .to.be.revertedWithCustomError(f.hub, "ClerkOrderExpired")
          .withArgs(hashOf(f, kind, o), expiry);
      });
    }

    it("never expires an order with expiry 0", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f);
      await time.increase(10n * 365n * 24n * 3600n);
      await expectMatchable(f, o);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
    });
  });

  describe("nonce", function () {
    for (const kind of KINDS) {
      it(`refuses ${article(kind)} order whose signer has since bumped its nonce`, async function () {
        const f = await loadFixture(deployFixture);
        const o = await signedOrders(f);
        await f.hub.connect(signerOf(f, kind)).incrementOrderNonce();
        await expectMatchFails(f, o, "ClerkOrderNonceRevoked", [hashOf(f, kind, o), 0n, 1n]);
      });
    }

    it("checks the pool order against the pool owner's nonce, not the scheduler's", async function () {
      const f = await loadFixture(deployFixture);
      await f.hub.connect(f.scheduler).incrementOrderNonce();
      const o = await signedOrders(f);
      await expectMatchable(f, o);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
    });
  });

  describe("signature", function () {
    for (const kind of KINDS) {
      it(`refuses ${article(kind)} order signed by someone else than its signer`, async function () {
        const f = await loadFixture(deployFixture);
        const o = await resignedBy(f, await signedOrders(f), kind, f.other);
        await expectMatchFails(f, o, "ClerkInvalidSignature", [hashOf(f, kind, o), signerOf(f, kind).address]);
      });

      it(`refuses the malleable high-s twin of a valid ${kind} signature`, async function () {
        const f = await loadFixture(deployFixture);
        const valid = await signedOrders(f);
        await expectMatchable(f, valid);
        const twin = highS(valid[kind].sign);
        // The twin is a genuine signature of the signer: the raw ecrecover precompile accepts it.
        const b = getBytes(twin);
        const recovered = await ethers.provider.call({
          to: "0x0000000000000000000000000000000000000001",
          data: concat([hashOf(f, kind, valid), toBeHex(b[64], 32), b.slice(0, 32), b.slice(32, 64)]),
        });
        expect(getAddress(dataSlice(recovered, 12))).to.equal(signerOf(f, kind).address);
        const o = withSign(valid, kind, twin);
        await expectMatchFails(f, o, "ClerkInvalidSignature", [hashOf(f, kind, o), signerOf(f, kind).address]);
      });
    }

    it("refuses a garbage signature", async function () {
      const f = await loadFixture(deployFixture);
      const o = withSign(await signedOrders(f), "request", "0x1234");
      await expectMatchFails(f, o, "ClerkInvalidSignature", [hashOf(f, "request", o), f.requester.address]);
    });

    it("refuses a 65-byte signature of zeros", async function () {
      const f = await loadFixture(deployFixture);
      const o = withSign(await signedOrders(f), "app", hexlify(new Uint8Array(65)));
      await expectMatchFails(f, o, "ClerkInvalidSignature", [hashOf(f, "app", o), f.appOwner.address]);
    });

    it("refuses an empty signature on an order that was not presigned", async function () {
      const f = await loadFixture(deployFixture);
      const o = withSign(await signedOrders(f), "dataset", "0x");
      await expectMatchFails(f, o, "ClerkInvalidSignature", [hashOf(f, "dataset", o), f.datasetOwner.address]);
    });

    it("refuses a pool order signed by the scheduler instead of the pool owner", async function () {
      const f = await loadFixture(deployFixture);
      const o = await resignedBy(f, await signedOrders(f), "workerpool", f.scheduler);
      await expectMatchFails(f, o, "ClerkInvalidSignature", [hashOf(f, "workerpool", o), f.poolOwner.address]);
    });

    it("refuses an order signed for another chain", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f);
      const foreign = { ...f.domain, chainId: 1n };
      const request = await signOrder(f.requester, foreign, "RequestOrder", o.request);
      const set = { ...o, request };
      await expectMatchFails(f, set, "ClerkInvalidSignature", [hashOf(f, "request", set), f.requester.address]);
    });

    it("checks expiry, then nonce, then signature, then remaining volume", async function () {
      const f = await loadFixture(deployFixture);
      await f.hub.connect(f.requester).incrementOrderNonce();
      const expiry = BigInt(await time.latest());
      const all = withSign(await orders(f, "request", { expiry }), "request", "0x");
      await expectMatchFails(f, all, "ClerkOrderExpired", [hashOf(f, "request", all), expiry]);
      const noExpiry = withSign(await signedOrders(f), "request", "0x");
      await expectMatchFails(f, noExpiry, "ClerkOrderNonceRevoked", [hashOf(f, "request", noExpiry), 0n, 1n]);
      const consumed = await signedOrders(f, { request: { nonce: 1n } });
      await match(f, consumed);
      const badSign = withSign(consumed, "request", "0x");
      await expectMatchFails(f, badSign, "ClerkInvalidSignature", [hashOf(f, "request", badSign), f.requester.address]);
      await expectMatchFails(f, consumed, "ClerkOrderConsumed", [hashOf(f, "request", consumed)]);
    });

    it("checks the app, dataset, workerpool and request orders in that order", async function () {
      const f = await loadFixture(deployFixture);
      let o = await signedOrders(f);
      for (const kind of KINDS) o = withSign(o, kind, "0x");
      for (const kind of KINDS) {
        await expectMatchFails(f, o, "ClerkInvalidSignature", [hashOf(f, kind, o), signerOf(f, kind).address]);
        o = withSign(o, kind, (await resignedBy(f, o, kind, signerOf(f, kind)))[kind].sign);
      }
      await expectMatchable(f, o);
    });
  });

  describe("balances", function () {
    it("refuses when the requester cannot pay every task", async function () {
      const f = await loadFixture(deployFixture);
      const o = await orders(f, "request", { volume: 8n });
      await expectMatchFails(f, o, "ClerkInsufficientBalance", [
        f.requester.address,
        INITIAL_DEPOSIT,
        TASK_PRICE * 8n,
      ]);
    });

    it("refuses when the scheduler cannot stake on every task", async function () {
      const f = await loadFixture(deployFixture);
      await f.hub.connect(f.scheduler).withdraw(parseEther("98"));
      const o = await signedOrders(f);
      await expectMatchFails(f, o, "ClerkInsufficientBalance", [f.scheduler.address, parseEther("2"), SCHEDULER_STAKE]);
    });

    it("checks the requester's balance before the scheduler's", async function () {
      const f = await loadFixture(deployFixture);
      await f.hub.connect(f.scheduler).withdraw(INITIAL_DEPOSIT);
      const o = await orders(f, "request", { volume: 8n });
      await expectMatchFails(f, o, "ClerkInsufficientBalance", [
        f.requester.address,
        INITIAL_DEPOSIT,
        TASK_PRICE * 8n,
      ]);
    });

    it("needs both the payment and the stake when the requester is the scheduler", async function () {
      const f = await loadFixture(deployFixture);
      const asScheduler = { requester: f.scheduler.address, beneficiary: f.scheduler.address };
      // 7 tasks: 91 ether of payment and 21 ether of stake each fit in 100 ether, but not together.
      const o = await signedOrders(f, { request: { ...asScheduler, volume: 7n }, requesterSigner: f.scheduler });
      await expectMatchFails(f, o, "ClerkInsufficientBalance", [
        f.scheduler.address,
        INITIAL_DEPOSIT,
        (TASK_PRICE + SCHEDULER_STAKE) * 7n,
      ]);
      const ok = await signedOrders(f, { request: { ...asScheduler, volume: 6n }, requesterSigner: f.scheduler });
      await expectMatchable(f, ok);
      await match(f, ok, f.scheduler);
      const locked = (TASK_PRICE + SCHEDULER_STAKE) * 6n;
      expect(await f.hub.accountOf(f.scheduler.address)).to.deep.equal([INITIAL_DEPOSIT - locked, locked]);
    });

    it("reports order failures before balance failures", async function () {
      const f = await loadFixture(deployFixture);
      const o = withSign(await orders(f, "request", { volume: 8n }), "workerpool", "0x");
      await expectMatchFails(f, o, "ClerkInvalidSignature", [hashOf(f, "workerpool", o), f.poolOwner.address]);
    });
  });

  describe("depositAndMatchOrders", function () {
    it("lets a newcomer deposit the exact total with a permit and match in one transaction", async function () {
      const f = await loadFixture(deployFixture);
      const buyer = await newcomer(f);
      const total = TASK_PRICE * 2n;
      const deadline = BigInt(await time.latest()) + 3600n;
      const p = await permitSignature(f, buyer.address, total, deadline);
      const o = await signedOrders(f, {
        request: { requester: buyer.address, beneficiary: buyer.address, volume: 2n },
        requesterSigner: buyer,
      });
      const tx = f.hub
        .connect(buyer)
        .depositAndMatchOrders(total, deadline, p.v, p.r, p.s, o.app, o.dataset, o.workerpool, o.request);
      await expect(tx).to.emit(f.hub, "Deposited").withArgs(buyer.address, buyer.address, total);
      await expect(tx).to.emit(f.hub, "DealMatched");
      await expect(tx).to.changeTokenBalances(f.token, [buyer, f.hub], [-total, total]);
      expect(await f.hub.accountOf(buyer.address)).to.deep.equal([0n, total]);
      expect(await f.token.allowance(buyer.address, await f.hub.getAddress())).to.equal(0n);
      const deal = await f.hub.viewDeal(idOf(f, o));
      expect(deal.requester).to.equal(buyer.address);
      expect(deal.volume).to.equal(2n);
    });

    it("skips the deposit when the amount is 0", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f);
      const tx = f.hub
        .connect(f.requester)
        .depositAndMatchOrders(0, 0, 0, ZeroHash, ZeroHash, o.app, o.dataset, o.workerpool, o.request);
      await expect(tx).to.not.emit(f.hub, "Deposited");
      await expect(tx).to.emit(f.hub, "DealMatched");
      await expect(tx).to.changeTokenBalances(f.token, [f.requester, f.hub], [0n, 0n]);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([
        INITIAL_DEPOSIT - TASK_PRICE,
        TASK_PRICE,
      ]);
    });

    it("reverts the deposit too when the deposited amount does not cover the deal", async function () {
      const f = await loadFixture(deployFixture);
      const buyer = await newcomer(f);
      const deadline = BigInt(await time.latest()) + 3600n;
      const p = await permitSignature(f, buyer.address, TASK_PRICE, deadline);
      const o = await signedOrders(f, {
        request: { requester: buyer.address, beneficiary: buyer.address, volume: 2n },
        requesterSigner: buyer,
      });
      await expect(
        f.hub
          .connect(buyer)
          .depositAndMatchOrders(TASK_PRICE, deadline, p.v, p.r, p.s, o.app, o.dataset, o.workerpool, o.request),
      )
        .to.be.revertedWithCustomError(f.hub, "ClerkInsufficientBalance")
        .withArgs(buyer.address, TASK_PRICE, TASK_PRICE * 2n);
      expect(await f.hub.accountOf(buyer.address)).to.deep.equal([0n, 0n]);
      expect(await f.token.balanceOf(buyer.address)).to.equal(INITIAL_TOKENS);
      expect(await f.token.nonces(buyer.address)).to.equal(0n);
    });
  });

  describe("categories", function () {
    it("lets the owner create a category that deals then use", async function () {
      const f = await loadFixture(deployFixture);
      const count = await f.hub.categoryCount();
      expect(count).to.equal(5n);
      expect(await f.hub.createCategory.staticCall("XXL", 86400)).to.equal(count);
      await expect(f.hub.createCategory("XXL", 86400)).to.emit(f.hub, "CategoryCreated").withArgs(count, "XXL", 86400n);
      expect(await f.hub.categoryCount()).to.equal(count + 1n);
      const category = await f.hub.viewCategory(count);
      expect(category.workClockTimeRef).to.equal(86400n);
      expect(category.name).to.equal("XXL");
      const o = await signedOrders(f, { workerpool: { category: count }, request: { category: count } });
      await match(f, o);
      expect((await f.hub.viewDeal(idOf(f, o))).timeref).to.equal(86400n);
    });

    it("shows the fixture's first category", async function () {
      const f = await loadFixture(deployFixture);
      const category = await f.hub.viewCategory(CATEGORY);
      expect([category.workClockTimeRef, category.name]).to.deep.equal([TIMEREF, "XS"]);
    });

    it("refuses category creation by anyone but the owner", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.hub.connect(f.other).createCategory("X", 60))
        .to.be.revertedWithCustomError(f.hub, "OwnableUnauthorizedAccount")
        .withArgs(f.other.address);
    });

    it("refuses a zero work clock", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.hub.createCategory("X", 0)).to.be.revertedWithCustomError(f.hub, "ClerkInvalidAmount").withArgs(0);
    });

    it("refuses a work clock above 2^32-1 and accepts 2^32-1", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.hub.createCategory("X", 2n ** 32n))
        .to.be.revertedWithCustomError(f.hub, "ClerkInvalidAmount")
        .withArgs(2n ** 32n);
      await f.hub.createCategory("X", 2n ** 32n - 1n);
      expect((await f.hub.viewCategory(5)).workClockTimeRef).to.equal(2n ** 32n - 1n);
    });

    it("refuses to show an unknown category", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.hub.viewCategory(5)).to.be.revertedWithCustomError(f.hub, "ClerkUnknownCategory").withArgs(5);
    });
  });

  it("returns an all-zero deal for an unknown id", async function () {
    const f = await loadFixture(deployFixture);
    // The id the fixture's orders would get, before they are matched.
    const deal = await f.hub.viewDeal(idOf(f, await signedOrders(f)));
    expect(deal.requester).to.equal(ZeroAddress);
    expect(deal.volume).to.equal(0n);
    expect(deal.startTime).to.equal(0n);
  });
});
