/**
 * Hub views: resultFor (EIP-1154 pull), taskIdOf, viewTask (deadlines, consensus hash, digest), viewContribution,
 * contributorsOf, scoreOf, workerStakeOf, schedulerStakeOf and viewDeal, through every stage of a task.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroAddress, ZeroHash, dataSlice, parseEther } from "ethers";
import {
  MIN_WORKER_STAKE,
  PRICES,
  SCHEDULER_REWARD_RATIO,
  TIMEREF,
  WORKER_STAKE_RATIO,
  signedOrders,
} from "../helpers/fixture";
import { digestOf, setup } from "../helpers/driver";
import { Status } from "../helpers/status";
import { blockTimeOf } from "../helpers/views";
import { dealId as dealIdOf, hashOrder, resultHash, resultSeal, taskId as sdkTaskId } from "../../sdk/eip712";
import { ResultStoreConsumer__factory } from "../../typechain-types";

const E = parseEther;
const { UNSET, ACTIVE, REVEALING, COMPLETED, FAILED } = Status;
const ONLY_COMPLETED = 1n << COMPLETED;
const ZERO_SEAL = "0x" + "00".repeat(11);

describe("Hub views", function () {
  describe("resultFor", function () {
    it("reverts with HubUnexpectedTaskStatus for a task that is not COMPLETED", async function () {
      const { f, d } = await setup();
      const unknown = d.taskId(dealIdOf(ethers.id("unsigned request")), 0);
      await expect(f.hub.resultFor(unknown))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(unknown, UNSET, ONLY_COMPLETED);

      const m = await d.match({ request: { trust: 3n, volume: 2n } });
      const taskId = d.taskId(m.dealId, 0);
      await expect(f.hub.resultFor(taskId))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, UNSET, ONLY_COMPLETED);
      const digest = digestOf("r");
      await d.contribute(f.workers[0], m.dealId, 0, digest);
      await expect(f.hub.resultFor(taskId))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, ACTIVE, ONLY_COMPLETED);
      await d.contribute(f.workers[1], m.dealId, 0, digest);
      await d.contribute(f.workers[2], m.dealId, 0, digest);
      await d.reveal(f.workers[0], taskId, digest);
      await expect(f.hub.resultFor(taskId))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, REVEALING, ONLY_COMPLETED);

      await d.advanceToFinalDeadline(m.dealId);
      await f.hub.claim(m.dealId, 1);
      const failed = d.taskId(m.dealId, 1);
      await expect(f.hub.resultFor(failed))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(failed, FAILED, ONLY_COMPLETED);
    });

    it("returns the 32-byte result digest of a COMPLETED task without callback data", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 1n } });
      await d.contributeAndFinalize(f.workers[0], m.dealId, 0, digestOf("r"));
      expect(await f.hub.resultFor(d.taskId(m.dealId, 0))).to.equal(digestOf("r"));
    });
  });

  describe("taskIdOf", function () {
    it("equals the SDK's keccak256(dealId ‖ index)", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { volume: 3n } });
      for (const [dealId, index] of [
        [m.dealId, 0n],
        [m.dealId, 2n],
        [d.nextDealId(m), 255n],
        [ZeroHash, 0n],
        [ethers.id("any"), 2n ** 256n - 1n],
      ] as const) {
        expect(await f.hub.taskIdOf(dealId, index)).to.equal(sdkTaskId(dealId, index));
        expect(sdkTaskId(dealId, index)).to.equal(ethers.solidityPackedKeccak256(["bytes32", "uint256"], [dealId, index]));
      }
    });
  });

  describe("viewTask", function () {
    it("is all zero for a task that was never initialized", async function () {
      const { f, d } = await setup();
      const m = await d.match();
      for (const taskId of [d.taskId(m.dealId, 0), d.taskId(d.nextDealId(m), 0), ZeroHash]) {
        const t = await f.hub.viewTask(taskId);
        expect(t.status).to.equal(UNSET);
        expect(t.dealId).to.equal(ZeroHash);
        expect(t.index).to.equal(0n);
        expect(t.contributionDeadline).to.equal(0n);
        expect(t.revealDeadline).to.equal(0n);
        expect(t.finalDeadline).to.equal(0n);
        expect(t.contributorCount).to.equal(0n);
        expect(t.winnerCount).to.equal(0n);
        expect(t.revealCount).to.equal(0n);
        expect(t.consensusHash).to.equal(ZeroHash);
        expect(t.resultDigest).to.equal(ZeroHash);
      }
    });

    it("derives the deadlines from the deal's start: contribution at start + 7·timeref, final at start + 10·timeref", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 3n, volume: 2n } });
      const start = await blockTimeOf(m.tx);
      expect((await f.hub.viewDeal(m.dealId)).startTime).to.equal(start);
      await time.increase(100);
      await f.hub.connect(f.scheduler).initialize(m.dealId, 1);
      const taskId = d.taskId(m.dealId, 1);
      const t = await f.hub.viewTask(taskId);
      expect(t.status).to.equal(ACTIVE);
      expect(t.dealId).to.equal(m.dealId);
      expect(t.index).to.equal(1n);
      expect(t.contributionDeadline).to.equal(start + 7n * 60n);
      expect(t.finalDeadline).to.equal(start + 10n * 60n);
      expect(t.revealDeadline).to.equal(0n);
      expect(t.contributorCount).to.equal(0n);
      expect(t.winnerCount).to.equal(0n);
      expect(t.consensusHash).to.equal(ZeroHash);
    });

    it("tracks consensus and reveals: consensus hash, reveal deadline at consensus + 2·timeref, then the digest", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 3n } });
      const taskId = d.taskId(m.dealId, 0);
      const digest = digestOf("r");
      await d.contribute(f.workers[0], m.dealId, 0, digest);
      await d.contribute(f.workers[1], m.dealId, 0, digestOf("other"));
      await d.contribute(f.workers[2], m.dealId, 0, digest);
      let t = await f.hub.viewTask(taskId);
      expect(t.status).to.equal(ACTIVE);
      expect(t.contributorCount).to.equal(3n);
      expect(t.consensusHash).to.equal(ZeroHash);
      await time.increase(30);
      const consensus = await d.contribute(f.workers[3], m.dealId, 0, digest);
      const at = await blockTimeOf(consensus);
      t = await f.hub.viewTask(taskId);
      expect(t.status).to.equal(REVEALING);
      expect(t.contributorCount).to.equal(4n);
      expect(t.winnerCount).to.equal(3n);
      expect(t.revealCount).to.equal(0n);
      expect(t.revealDeadline).to.equal(at + 2n * TIMEREF);
      expect(t.consensusHash).to.equal(resultHash(taskId, digest));
      expect(t.resultDigest).to.equal(ZeroHash);

      await d.reveal(f.workers[0], taskId, digest);
      t = await f.hub.viewTask(taskId);
      expect(t.revealCount).to.equal(1n);
      expect(t.resultDigest).to.equal(digest);
      expect(t.consensusHash).to.equal(resultHash(taskId, digest));
      expect(t.revealDeadline).to.equal(at + 2n * TIMEREF);

      await d.reveal(f.workers[2], taskId, digest);
      await d.reveal(f.workers[3], taskId, digest);
      await d.finalize(taskId);
      t = await f.hub.viewTask(taskId);
      expect(t.status).to.equal(COMPLETED);
      expect(t.revealCount).to.equal(3n);
      expect(t.resultDigest).to.equal(digest);
    });
  });

  describe("viewContribution and contributorsOf", function () {
    it("is zero for a worker that did not contribute, and for an unknown task", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 3n } });
      const taskId = d.taskId(m.dealId, 0);
      await d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
      for (const [task, worker] of [
        [taskId, f.workers[1].address],
        [taskId, ZeroAddress],
        [d.taskId(d.nextDealId(m), 0), f.workers[0].address],
      ] as const) {
        const c = await f.hub.viewContribution(task, worker);
        expect(c.status).to.equal(0n);
        expect(c.sealPrefix).to.equal(ZERO_SEAL);
        expect(c.stake).to.equal(0n);
      }
    });

    it("shows a contribution's status, the first 11 bytes of its seal and its stake", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 3n } });
      const taskId = d.taskId(m.dealId, 0);
      const digest = digestOf("r");
      const [w0, w1, w2, w3] = f.workers;
      await d.contribute(w0, m.dealId, 0, digest);
      await d.contribute(w3, m.dealId, 0, digestOf("dissent"));
      await d.contribute(w1, m.dealId, 0, digest);
      await d.contribute(w2, m.dealId, 0, digest);
      const c = await f.hub.viewContribution(taskId, w0.address);
      expect(c.status).to.equal(1n); // CONTRIBUTED
      expect(c.sealPrefix).to.equal(dataSlice(resultSeal(w0.address, taskId, digest), 0, 11));
      expect(c.stake).to.equal(E("3"));
      const dissent = await f.hub.viewContribution(taskId, w3.address);
      expect(dissent.sealPrefix).to.equal(dataSlice(resultSeal(w3.address, taskId, digestOf("dissent")), 0, 11));
      await d.reveal(w0, taskId, digest);
      expect((await f.hub.viewContribution(taskId, w0.address)).status).to.equal(2n); // REVEALED
      expect((await f.hub.viewContribution(taskId, w1.address)).status).to.equal(1n);
    });

    it("lists the contributors in contribution order", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 3n } });
      const taskId = d.taskId(m.dealId, 0);
      expect(await f.hub.contributorsOf(taskId)).to.deep.equal([]);
      const order = [f.workers[4], f.workers[1], f.workers[5], f.workers[0]];
      for (const [i, w] of order.entries()) {
        await d.contribute(w, m.dealId, 0, digestOf(`r${i}`));
        expect(await f.hub.contributorsOf(taskId)).to.deep.equal(order.slice(0, i + 1).map((s) => s.address));
      }
      expect(await f.hub.contributorsOf(d.taskId(d.nextDealId(m), 0))).to.deep.equal([]);
    });
  });

  describe("scoreOf", function () {
    it("counts won tasks and halves on a lost stake", async function () {
      const { f, d } = await setup();
      const w = f.workers[2];
      expect(await f.hub.scoreOf(w.address)).to.equal(0n);
      const single = await d.match({ request: { trust: 1n, volume: 4n } });
      for (let i = 0; i < 4; i++) {
        await d.contributeAndFinalize(w, single.dealId, i, digestOf(`w${i}`));
        expect(await f.hub.scoreOf(w.address)).to.equal(BigInt(i + 1));
      }
      const m = await d.match({ request: { trust: 3n } });
      const taskId = d.taskId(m.dealId, 0);
      const digest = digestOf("majority");
      await d.contribute(w, m.dealId, 0, digestOf("minority"));
      for (const x of [f.workers[0], f.workers[1], f.workers[3]]) await d.contribute(x, m.dealId, 0, digest);
      for (const x of [f.workers[0], f.workers[1], f.workers[3]]) await d.reveal(x, taskId, digest);
      await d.finalize(taskId);
      expect(await f.hub.scoreOf(w.address)).to.equal(2n);
      expect(await f.hub.scoreOf(f.workers[0].address)).to.equal(1n);
      expect(await f.hub.scoreOf(f.other.address)).to.equal(0n);
    });
  });

  describe("stakes", function () {
    it("stakes max(protocol minimum, pool price · ratio / 100) per contribution and 30% of the pool price per task", async function () {
      const { f, d } = await setup();
      const m = await d.match();
      expect(await f.hub.workerStakeOf(m.dealId)).to.equal((PRICES.workerpool * WORKER_STAKE_RATIO) / 100n);
      expect(await f.hub.workerStakeOf(m.dealId)).to.equal(E("3"));
      expect(await f.hub.schedulerStakeOf(m.dealId)).to.equal(E("3"));
    });

    it("stakes the protocol minimum of 0.1 ether on a free pool, and when the ratio gives less", async function () {
      const { f, d } = await setup();
      const free = await d.match({ workerpool: { workerpoolprice: 0n } });
      expect(await f.hub.workerStakeOf(free.dealId)).to.equal(MIN_WORKER_STAKE);
      expect(await f.hub.workerStakeOf(free.dealId)).to.equal(E("0.1"));
      expect(await f.hub.schedulerStakeOf(free.dealId)).to.equal(0n);
      const cheap = await d.match({ workerpool: { workerpoolprice: E("0.2") } });
      expect(await f.hub.workerStakeOf(cheap.dealId)).to.equal(E("0.1")); // 0.06 < 0.1
      expect(await f.hub.schedulerStakeOf(cheap.dealId)).to.equal(E("0.06"));
      const edge = await d.match({ workerpool: { workerpoolprice: E("1") / 3n + 1n } });
      // (1/3 ether + 1 wei)·30/100 rounds down to exactly the 0.1 ether minimum.
      expect(await f.hub.workerStakeOf(edge.dealId)).to.equal(E("0.1"));
    });

    it("keeps the stake ratio the deal was matched with when the pool is reconfigured afterwards", async function () {
      const { f, d } = await setup();
      const before = await d.match();
      await f.workerpools.connect(f.poolOwner).configure(f.workerpoolId, f.scheduler.address, 50, 20);
      const after = await d.match();
      expect(await f.hub.workerStakeOf(before.dealId)).to.equal(E("3"));
      expect(await f.hub.workerStakeOf(after.dealId)).to.equal(E("5"));
      expect(await f.hub.schedulerStakeOf(after.dealId)).to.equal(E("3"));
      expect((await f.hub.viewDeal(after.dealId)).workerStakeRatio).to.equal(50n);
      expect((await f.hub.viewDeal(after.dealId)).schedulerRewardRatio).to.equal(20n);
    });
  });

  describe("viewDeal", function () {
    it("returns every term of a matched deal", async function () {
      const { f, d } = await setup();
      const consumer = await new ResultStoreConsumer__factory(f.owner).deploy(await f.hub.getAddress());
      const callback = await consumer.getAddress();
      const m = await d.match({ request: { trust: 3n, volume: 5n, callback } });
      const deal = await f.hub.viewDeal(m.dealId);
      expect(m.dealId).to.equal(dealIdOf(d.requestHash(m)));
      expect(deal.requester).to.equal(f.requester.address);
      expect(deal.appPrice).to.equal(PRICES.app);
      expect(deal.scheduler).to.equal(f.scheduler.address);
      expect(deal.workerpoolPrice).to.equal(PRICES.workerpool);
      expect(deal.callback).to.equal(callback);
      expect(deal.datasetPrice).to.equal(PRICES.dataset);
      expect(deal.startTime).to.equal(await blockTimeOf(m.tx));
      expect(deal.timeref).to.equal(TIMEREF);
      expect(deal.volume).to.equal(5n);
      expect(deal.trust).to.equal(3n);
      expect(deal.workerStakeRatio).to.equal(WORKER_STAKE_RATIO);
      expect(deal.schedulerRewardRatio).to.equal(SCHEDULER_REWARD_RATIO);
      expect(deal.app).to.equal(f.appId);
      expect(deal.dataset).to.equal(f.datasetId);
    });

    it("records no dataset and a zero dataset price for a request without dataset", async function () {
      const { f, d } = await setup();
      await d.match();
      const m = await d.match({ request: { dataset: 0n, datasetmaxprice: 0n } });
      expect(m.dealId).to.equal(dealIdOf(d.requestHash(m)));
      const deal = await f.hub.viewDeal(m.dealId);
      expect(deal.dataset).to.equal(0n);
      expect(deal.datasetPrice).to.equal(0n);
      expect(deal.callback).to.equal(ZeroAddress);
    });

    it("is all zero for an unknown deal id", async function () {
      const { f } = await setup();
      // The id the fixture's orders would get, before they are matched.
      const unknown = dealIdOf(hashOrder(f.domain, "RequestOrder", (await signedOrders(f)).request));
      const deal = await f.hub.viewDeal(unknown);
      expect(deal.requester).to.equal(ZeroAddress);
      expect(deal.scheduler).to.equal(ZeroAddress);
      expect(deal.callback).to.equal(ZeroAddress);
      for (const v of [
        deal.appPrice,
        deal.workerpoolPrice,
        deal.datasetPrice,
        deal.startTime,
        deal.timeref,
        deal.volume,
        deal.trust,
        deal.workerStakeRatio,
        deal.schedulerRewardRatio,
        deal.app,
        deal.dataset,
      ]) {
        expect(v).to.equal(0n);
      }
      expect(await f.hub.schedulerStakeOf(unknown)).to.equal(0n);
    });
  });
});
