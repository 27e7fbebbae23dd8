/**
 * Regression tests for the attacks found in the security review of the contracts: each one replays the attack and
 * shows that it now fails with a named error and moves nobody's money.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { MaxUint256, parseEther } from "ethers";
import {
  Fixture,
  INITIAL_DEPOSIT,
  WORKER_STAKE,
  appOrder,
  datasetOrder,
  deployFixture,
  requestOrder,
  signedOrders,
  unsigned,
  workerpoolOrder,
} from "../helpers/fixture";
import { TaskDriver, digestOf } from "../helpers/driver";
import { deployConcord } from "../../deploy/lib";
import { resultHash, resultSeal, signOrder } from "../../sdk/eip712";

/** The attacker's own free app and a pool it owns, named with `scheduler` as scheduler. */
async function attackerAssets(f: Fixture, attacker: HardhatEthersSigner, scheduler: string) {
  await f.apps.register(attacker.address, "free", "wasi", "file://free.wasm", ethers.id("free"));
  const appId = await f.apps.count();
  await f.workerpools.connect(attacker).register(attacker.address, "attacker pool", scheduler, 100, 100);
  const poolId = await f.workerpools.count();
  return { appId, poolId };
}

/** Orders of the attacker dealing with itself: its app, its pool (price `price`), its request. */
async function selfDealtOrders(f: Fixture, attacker: HardhatEthersSigner, appId: bigint, poolId: bigint, price: bigint, trust = 1n) {
  return {
    app: await signOrder(attacker, f.domain, "AppOrder", appOrder(f, { app: appId, appprice: 0n })),
    dataset: unsigned(datasetOrder(f)), // ignored: the request has no dataset
    workerpool: await signOrder(
      attacker,
      f.domain,
      "WorkerpoolOrder",
      workerpoolOrder(f, { workerpool: poolId, workerpoolprice: price, trust: 32n }),
    ),
    request: await signOrder(
      attacker,
      f.domain,
      "RequestOrder",
      requestOrder(f, {
        app: appId,
        appmaxprice: 0n,
        dataset: 0n,
        datasetmaxprice: 0n,
        workerpool: poolId,
        workerpoolmaxprice: price,
        requester: attacker.address,
        beneficiary: attacker.address,
        trust,
      }),
    ),
  };
}

describe("security regressions", function () {
  describe("nobody can make another account stake by naming it scheduler", function () {
    it("refuses a pool whose scheduler never consented, and leaves the victim's funds alone", async function () {
      const f = await loadFixture(deployFixture);
      const attacker = f.other;
      const victim = f.workers[5];
      await f.hub.connect(attacker).deposit(parseEther("10"));
      const { appId, poolId } = await attackerAssets(f, attacker, victim.address);
      const price = (INITIAL_DEPOSIT * 100n) / 30n; // its 30 % stake would freeze the victim's whole deposit
      const o = await selfDealtOrders(f, attacker, appId, poolId, price);
      const [ok, reason] = await f.hub.canMatch(o.app, o.dataset, o.workerpool, o.request);
      expect(ok).to.equal(false);
      expect(reason).to.equal(
        f.hub.interface.encodeErrorResult("ClerkSchedulerWithoutConsent", [poolId, victim.address]),
      );
      await expect(f.hub.connect(attacker).matchOrders(o.app, o.dataset, o.workerpool, o.request))
        .to.be.revertedWithCustomError(f.hub, "ClerkSchedulerWithoutConsent")
        .withArgs(poolId, victim.address);
      expect(await f.hub.accountOf(victim.address)).to.deep.equal([INITIAL_DEPOSIT, 0n]);
    });

    it("resets the consent when the pool changes hands, so the buyer cannot spend the seller's scheduler stake", async function () {
      const f = await loadFixture(deployFixture);
      const d = new TaskDriver(f);
      await d.match(); // the fixture's pool works: its scheduler consented
      await f.workerpools.connect(f.poolOwner).transferFrom(f.poolOwner.address, f.other.address, f.workerpoolId);
      const o = await signedOrders(f);
      const pool = await signOrder(f.other, f.domain, "WorkerpoolOrder", workerpoolOrder(f));
      await expect(f.hub.connect(f.requester).matchOrders(o.app, o.dataset, pool, o.request))
        .to.be.revertedWithCustomError(f.hub, "ClerkSchedulerWithoutConsent")
        .withArgs(f.workerpoolId, f.scheduler.address);
      await f.workerpools.connect(f.scheduler).setSchedulerConsent(f.workerpoolId, true);
      await expect(f.hub.connect(f.requester).matchOrders(o.app, o.dataset, pool, o.request)).to.emit(f.hub, "DealMatched");
    });
  });

  describe("only the winning group reveals", function () {
    it("refuses a worker that committed another hash with a seal made for the consensus digest", async function () {
      const f = await loadFixture(deployFixture);
      const d = new TaskDriver(f);
      const [w0, w1, outsider] = f.workers;
      const m = await d.match({ request: { trust: 2n } });
      const task = d.taskId(m.dealId, 0);
      const D = digestOf("consensus");
      // The outsider commits a different resultHash but the seal of the consensus digest.
      await f.hub
        .connect(outsider)
        .contribute(m.dealId, 0, resultHash(task, digestOf("other")), resultSeal(outsider.address, task, D), await d.authorize(outsider, task));
      await d.contribute(w0, m.dealId, 0, D);
      await d.contribute(w1, m.dealId, 0, D);
      await d.reveal(w0, task, D);
      await expect(d.reveal(outsider, task, D))
        .to.be.revertedWithCustomError(f.hub, "HubInvalidReveal")
        .withArgs(task, outsider.address);
      // The real quorum is not complete yet: no early finalize that would rob w1.
      await expect(d.finalize(task)).to.be.revertedWithCustomError(f.hub, "HubRevealsPending").withArgs(task, 1n, 2n);
      await d.reveal(w1, task, D);
      await d.finalize(task);
      expect((await f.hub.accountOf(outsider.address))[0]).to.equal(INITIAL_DEPOSIT - WORKER_STAKE);
      expect((await f.hub.accountOf(w1.address))[1]).to.equal(0n);
    });
  });

  describe("the kitty cannot be drained by self-dealing", function () {
    it("pays no kitty reward to tasks that seized nothing, however many an attacker self-deals", async function () {
      const f = await loadFixture(deployFixture);
      const d = new TaskDriver(f);
      // Fill the kitty: a task that fails seizes the scheduler's stake.
      const failed = await d.match();
      await d.advanceToFinalDeadline(failed.dealId);
      await f.hub.claim(failed.dealId, 0);
      const kitty = await f.hub.kitty();
      expect(kitty).to.be.greaterThan(0n);

      const attacker = f.other;
      await f.hub.connect(attacker).deposit(parseEther("100"));
      const { appId, poolId } = await attackerAssets(f, attacker, attacker.address);
      const before = await f.hub.accountOf(attacker.address);
      for (let i = 0; i < 5; i++) {
        const o = await selfDealtOrders(f, attacker, appId, poolId, parseEther("40"));
        const m = await d.matchOrders(o, attacker);
        await f.hub
          .connect(attacker)
          .contributeAndFinalize(m.dealId, 0, digestOf(`self ${i}`), "0x", "0x", await d.authorize(attacker, d.taskId(m.dealId, 0), attacker));
      }
      expect(await f.hub.kitty()).to.equal(kitty);
      expect(await f.hub.accountOf(attacker.address)).to.deep.equal(before);
    });
  });

  describe("deployment", function () {
    it("refuses a zero protocol minimum stake, so that a wrong answer always costs something", async function () {
      const [deployer] = await ethers.getSigners();
      const hub = (await loadFixture(deployFixture)).hub;
      await expect(deployConcord(deployer, { minWorkerStake: 0n }))
        .to.be.revertedWithCustomError(hub, "ClerkInvalidAmount")
        .withArgs(0n);
    });
  });

  describe("order cancellation", function () {
    it("cancels an order of any volume, even 2^256-1, with a named error", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { volume: MaxUint256 } });
      await f.hub.connect(f.requester).cancelRequestOrder(o.request);
      const hash = await f.hub.hashRequestOrder(o.request);
      const [ok, reason] = await f.hub.canMatch(o.app, o.dataset, o.workerpool, o.request);
      expect(ok).to.equal(false);
      expect(reason).to.equal(f.hub.interface.encodeErrorResult("ClerkOrderConsumed", [hash]));
      await expect(f.hub.matchOrders(o.app, o.dataset, o.workerpool, o.request))
        .to.be.revertedWithCustomError(f.hub, "ClerkOrderConsumed")
        .withArgs(hash);
      expect(await f.hub.orderState(hash)).to.deep.equal([0n, false, true]);
    });
  });
});
