/**
 * Hub.contributeAndFinalize: the single-worker path (trust 0 or 1). One transaction by the worker commits, reveals
 * and finalizes: the owners are paid, the worker gets the whole workers' part, the scheduler its stake back plus its
 * share (never a kitty reward: the path seizes no stake), and no stake stays frozen. Every custom error with its
 * arguments, the contribution deadline edge, callback data checks and delivery.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { ZeroHash, hexlify, keccak256, parseEther, toUtf8Bytes } from "ethers";
import {
  OrderOverrides,
  PRICES,
  SCHEDULER_STAKE,
  TASK_PRICE,
  WORKER_STAKE,
  appOrder,
  datasetOrder,
  Fixture,
  requestOrder,
  workerpoolOrder,
} from "../helpers/fixture";
import { RESULTS, TaskDriver, digestOf, setup } from "../helpers/driver";
import { Change, expectMoves, ledger } from "../helpers/ledger";
import { Status } from "../helpers/status";
import { callbackDigest, dealId as dealIdOf, resultHash, signMessage, signOrder } from "../../sdk/eip712";
import { ResultStoreConsumer__factory } from "../../typechain-types";

// ---------------------------------------------------------------------------------------------------------- helpers

const E = parseEther;
const { ACTIVE, REVEALING, COMPLETED, FAILED } = Status;
/** `allowed` bitmap of the single-worker path: UNSET or ACTIVE (the latter only without contributions). */
const UNSET_OR_ACTIVE = (1n << 0n) | (1n << 1n);
const WORKERS_PART = PRICES.workerpool - (PRICES.workerpool * 10n) / 100n; // 9 ether
const SCHEDULER_SHARE = PRICES.workerpool - WORKERS_PART; // 1 ether

/** What one default single-worker task moves, the worker being `worker`. */
function singleWorkerMoves(worker: string, kittyReward = 0n): Change {
  return {
    requester: { frozen: -TASK_PRICE },
    appOwner: { balance: PRICES.app },
    datasetOwner: { balance: PRICES.dataset },
    [worker]: { balance: WORKERS_PART },
    scheduler: { balance: SCHEDULER_STAKE + SCHEDULER_SHARE + kittyReward, frozen: -SCHEDULER_STAKE },
  };
}

async function matchSingle(d: TaskDriver, o: OrderOverrides = {}) {
  return d.matchTrust(1n, o);
}

/** contributeAndFinalize by `worker` with an explicit authorization. */
async function caf(
  f: Fixture,
  worker: HardhatEthersSigner,
  dealId: string,
  index: bigint | number,
  digest: string,
  authorization: string,
  results = "0x",
  resultsCallback = "0x",
) {
  return f.hub.connect(worker).contributeAndFinalize(dealId, index, digest, results, resultsCallback, authorization);
}

// ---------------------------------------------------------------------------------------------------------- tests

describe("Hub.contributeAndFinalize", function () {
  describe("happy paths", function () {
    for (const trust of [1n, 0n]) {
      it(`pays the single worker the whole workers' part and leaves no stake frozen (trust ${trust})`, async function () {
        const { f, d } = await setup();
        const m = await matchSingle(d, { request: { trust } });
        const taskId = d.taskId(m.dealId, 0);
        const digest = digestOf("single");
        const before = await ledger(f);
        await expect(d.contributeAndFinalize(f.workers[0], m.dealId, 0, digest, RESULTS))
          .to.emit(f.hub, "ContributionRevealed")
          .withArgs(taskId, f.workers[0].address, digest)
          .and.to.emit(f.hub, "TaskFinalized")
          .withArgs(taskId, digest, RESULTS)
          .and.not.to.emit(f.hub, "ContributionCommitted");
        const after = await ledger(f);
        expectMoves(before, after, singleWorkerMoves("w0"));
        expect(after.accounts.w0.frozen).to.equal(0n);
        expect(after.accounts.requester).to.deep.equal({ balance: E("87"), frozen: 0n });

        const view = await f.hub.viewTask(taskId);
        expect(view.status).to.equal(COMPLETED);
        expect(view.dealId).to.equal(m.dealId);
        expect(view.index).to.equal(0n);
        expect(view.winnerCount).to.equal(1n);
        expect(view.revealCount).to.equal(1n);
        expect(view.revealDeadline).to.equal(0n);
        expect(view.resultDigest).to.equal(digest);
        expect(view.consensusHash).to.equal(resultHash(taskId, digest));
        expect(await f.hub.scoreOf(f.workers[0].address)).to.equal(1n);
        expect(await f.hub.resultFor(taskId)).to.equal(digest);
      });
    }

    it("completes a task the scheduler initialized explicitly, with no contribution yet", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      const taskId = d.taskId(m.dealId, 0);
      await f.hub.connect(f.scheduler).initialize(m.dealId, 0);
      expect((await f.hub.viewTask(taskId)).status).to.equal(ACTIVE);
      const digest = digestOf("single");
      const before = await ledger(f);
      await expect(d.contributeAndFinalize(f.workers[1], m.dealId, 0, digest))
        .to.emit(f.hub, "TaskFinalized")
        .withArgs(taskId, digest, "0x");
      expectMoves(before, await ledger(f), singleWorkerMoves("w1"));
      const view = await f.hub.viewTask(taskId);
      expect(view.status).to.equal(COMPLETED);
      expect(view.winnerCount).to.equal(1n);
      expect(view.revealCount).to.equal(1n);
    });

    it("completes any task of a multi-task deal, each paying the same amounts", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d, { request: { volume: 3n } });
      const before = await ledger(f);
      await d.contributeAndFinalize(f.workers[0], m.dealId, 2, digestOf("a"));
      await d.contributeAndFinalize(f.workers[1], m.dealId, 0, digestOf("b"));
      const after = await ledger(f);
      expectMoves(before, after, {
        requester: { frozen: -2n * TASK_PRICE },
        appOwner: { balance: 2n * PRICES.app },
        datasetOwner: { balance: 2n * PRICES.dataset },
        w0: { balance: WORKERS_PART },
        w1: { balance: WORKERS_PART },
        scheduler: { balance: 2n * (SCHEDULER_STAKE + SCHEDULER_SHARE), frozen: -2n * SCHEDULER_STAKE },
      });
      // The third task's price and the scheduler's stake on it stay frozen.
      expect(after.accounts.requester.frozen).to.equal(TASK_PRICE);
      expect(after.accounts.scheduler.frozen).to.equal(SCHEDULER_STAKE);
      expect((await f.hub.viewTask(d.taskId(m.dealId, 1))).status).to.equal(0n);
    });

    it("pays no kitty reward even from a kitty that a claim filled: the single-worker path seizes nothing", async function () {
      const { f, d } = await setup();
      const lost = await matchSingle(d);
      await d.advanceToFinalDeadline(lost.dealId);
      await f.hub.claim(lost.dealId, 0);
      expect(await f.hub.kitty()).to.equal(SCHEDULER_STAKE);
      const m = await matchSingle(d);
      const before = await ledger(f);
      await d.contributeAndFinalize(f.workers[0], m.dealId, 0, digestOf("single"));
      // min(kitty 3, max(0.1, 0.3), seized 0) = 0: the scheduler gets its stake and its share only.
      expectMoves(before, await ledger(f), singleWorkerMoves("w0"), 0n);
      expect(await f.hub.kitty()).to.equal(SCHEDULER_STAKE);
    });

    it("on a free pool pays the owners only, and needs the worker to hold the protocol minimum stake", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d, { workerpool: { workerpoolprice: 0n } });
      expect(await f.hub.workerStakeOf(m.dealId)).to.equal(E("0.1"));
      const taskId = d.taskId(m.dealId, 0);
      await f.hub.connect(f.other).deposit(E("0.05"));
      const auth = await d.authorize(f.other, taskId);
      await expect(caf(f, f.other, m.dealId, 0, digestOf("free"), auth))
        .to.be.revertedWithCustomError(f.hub, "ClerkInsufficientBalance")
        .withArgs(f.other.address, E("0.05"), E("0.1"));
      await f.hub.connect(f.other).deposit(E("0.05"));
      const before = await ledger(f);
      await caf(f, f.other, m.dealId, 0, digestOf("free"), auth);
      expectMoves(before, await ledger(f), {
        requester: { frozen: -(PRICES.app + PRICES.dataset) },
        appOwner: { balance: PRICES.app },
        datasetOwner: { balance: PRICES.dataset },
      });
      expect(await f.hub.scoreOf(f.other.address)).to.equal(1n);
    });

    it("accepts a worker whose free balance equals the stake exactly", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      const taskId = d.taskId(m.dealId, 0);
      await f.hub.connect(f.other).deposit(WORKER_STAKE);
      const before = await ledger(f);
      await caf(f, f.other, m.dealId, 0, digestOf("exact"), await d.authorize(f.other, taskId));
      expectMoves(before, await ledger(f), singleWorkerMoves("other"));
      expect(await f.hub.accountOf(f.other.address)).to.deep.equal([WORKER_STAKE + WORKERS_PART, 0n]);
    });
  });

  describe("errors", function () {
    it("reverts with HubTrustTooHigh on a deal that needs more than one worker", async function () {
      const { f, d } = await setup();
      for (const trust of [3n, 2n]) {
        const m = await d.match({ request: { trust } });
        const taskId = d.taskId(m.dealId, 0);
        await expect(d.contributeAndFinalize(f.workers[0], m.dealId, 0, digestOf("x")))
          .to.be.revertedWithCustomError(f.hub, "HubTrustTooHigh")
          .withArgs(taskId, trust);
      }
    });

    it("reverts with HubInvalidAuthorization unless the deal's scheduler authorized this worker for this task", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d, { request: { volume: 2n } });
      const taskId = d.taskId(m.dealId, 0);
      const [w0, w1] = f.workers;
      const bySomeoneElse = await d.authorize(w0, taskId, f.other);
      const forAnotherWorker = await d.authorize(w1, taskId);
      const forAnotherTask = await d.authorize(w0, d.taskId(m.dealId, 1));
      for (const auth of [bySomeoneElse, forAnotherWorker, forAnotherTask, "0x"]) {
        await expect(caf(f, w0, m.dealId, 0, digestOf("x"), auth))
          .to.be.revertedWithCustomError(f.hub, "HubInvalidAuthorization")
          .withArgs(taskId, w0.address);
      }
    });

    it("reverts with HubUnexpectedTaskStatus when the task already has a contribution (REVEALING)", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      const taskId = d.taskId(m.dealId, 0);
      await d.contribute(f.workers[0], m.dealId, 0, digestOf("x"));
      expect((await f.hub.viewTask(taskId)).status).to.equal(REVEALING);
      await expect(d.contributeAndFinalize(f.workers[1], m.dealId, 0, digestOf("x")))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, REVEALING, UNSET_OR_ACTIVE);
    });

    it("reverts with HubUnexpectedTaskStatus on an ACTIVE task that holds a (rejected) contribution after a reopen", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      const taskId = d.taskId(m.dealId, 0);
      await d.contribute(f.workers[0], m.dealId, 0, digestOf("x"));
      await d.advanceToRevealDeadline(taskId);
      await f.hub.connect(f.scheduler).reopen(taskId);
      const view = await f.hub.viewTask(taskId);
      expect(view.status).to.equal(ACTIVE);
      expect(view.contributorCount).to.equal(1n);
      await expect(d.contributeAndFinalize(f.workers[1], m.dealId, 0, digestOf("x")))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, ACTIVE, UNSET_OR_ACTIVE);
    });

    it("reverts with HubUnexpectedTaskStatus on a COMPLETED task, paying nobody twice", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      const taskId = d.taskId(m.dealId, 0);
      await d.contributeAndFinalize(f.workers[0], m.dealId, 0, digestOf("x"));
      const before = await ledger(f);
      for (const w of [f.workers[0], f.workers[1]]) {
        await expect(d.contributeAndFinalize(w, m.dealId, 0, digestOf("x")))
          .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
          .withArgs(taskId, COMPLETED, UNSET_OR_ACTIVE);
      }
      expectMoves(before, await ledger(f), {});
    });

    it("reverts with HubUnexpectedTaskStatus on a FAILED (claimed) task", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      const taskId = d.taskId(m.dealId, 0);
      await d.advanceToFinalDeadline(m.dealId);
      await f.hub.claim(m.dealId, 0);
      await expect(d.contributeAndFinalize(f.workers[0], m.dealId, 0, digestOf("x")))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, FAILED, UNSET_OR_ACTIVE);
    });

    it("succeeds one second before the contribution deadline and reverts with HubDeadlineReached at it", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d, { request: { volume: 2n } });
      const deadline = await d.contributionDeadline(m.dealId);
      const first = d.taskId(m.dealId, 0);
      const second = d.taskId(m.dealId, 1);
      const auth0 = await d.authorize(f.workers[0], first);
      const auth1 = await d.authorize(f.workers[0], second);
      await d.nextBlockAt(deadline, -1n);
      await expect(caf(f, f.workers[0], m.dealId, 0, digestOf("x"), auth0)).to.emit(f.hub, "TaskFinalized");
      await d.nextBlockAt(deadline);
      await expect(caf(f, f.workers[0], m.dealId, 1, digestOf("x"), auth1))
        .to.be.revertedWithCustomError(f.hub, "HubDeadlineReached")
        .withArgs(second, deadline);
      expect((await f.hub.viewTask(second)).status).to.equal(0n);
    });

    it("reverts with HubEmptyCommitment for a zero digest", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      await expect(d.contributeAndFinalize(f.workers[0], m.dealId, 0, ZeroHash))
        .to.be.revertedWithCustomError(f.hub, "HubEmptyCommitment")
        .withArgs(d.taskId(m.dealId, 0));
    });

    it("reverts with ClerkInsufficientBalance for a worker holding less than the stake", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      const taskId = d.taskId(m.dealId, 0);
      const auth = await d.authorize(f.other, taskId);
      await expect(caf(f, f.other, m.dealId, 0, digestOf("x"), auth))
        .to.be.revertedWithCustomError(f.hub, "ClerkInsufficientBalance")
        .withArgs(f.other.address, 0n, WORKER_STAKE);
      await f.hub.connect(f.other).deposit(WORKER_STAKE - 1n);
      await expect(caf(f, f.other, m.dealId, 0, digestOf("x"), auth))
        .to.be.revertedWithCustomError(f.hub, "ClerkInsufficientBalance")
        .withArgs(f.other.address, WORKER_STAKE - 1n, WORKER_STAKE);
    });

    it("reverts with ClerkInsufficientBalance when the worker's funds are frozen as stakes elsewhere", async function () {
      const { f, d } = await setup();
      const w = f.workers[0];
      // Leave w0 with 4 ether, then lock 3 of them as a stake on a trust-3 task.
      await f.hub.connect(w).withdraw((await f.hub.balanceOf(w.address)) - E("4"));
      const busy = await d.match({ request: { trust: 3n } });
      await d.contribute(w, busy.dealId, 0, digestOf("busy"));
      expect(await f.hub.accountOf(w.address)).to.deep.equal([E("1"), WORKER_STAKE]);
      const m = await matchSingle(d);
      await expect(d.contributeAndFinalize(w, m.dealId, 0, digestOf("x")))
        .to.be.revertedWithCustomError(f.hub, "ClerkInsufficientBalance")
        .withArgs(w.address, E("1"), WORKER_STAKE);
    });

    it("reverts with HubUnknownDeal for a deal id that names no deal", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      for (const dealId of [d.nextDealId(m), dealIdOf(ethers.id("unsigned request")), ZeroHash]) {
        await expect(d.contributeAndFinalize(f.workers[0], dealId, 0, digestOf("x")))
          .to.be.revertedWithCustomError(f.hub, "HubUnknownDeal")
          .withArgs(dealId);
      }
    });

    it("reverts with HubTaskIndexOutOfRange for an index not below the deal's volume", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d, { request: { volume: 2n } });
      for (const index of [2n, 3n, 2n ** 255n]) {
        await expect(d.contributeAndFinalize(f.workers[0], m.dealId, index, digestOf("x")))
          .to.be.revertedWithCustomError(f.hub, "HubTaskIndexOutOfRange")
          .withArgs(m.dealId, index, 2n);
      }
    });

    it("reverts with HubCallbackDataMismatch when a deal with a callback gets data that does not hash to the digest", async function () {
      const { f, d } = await setup();
      const consumer = await new ResultStoreConsumer__factory(f.owner).deploy(await f.hub.getAddress());
      const m = await matchSingle(d, { request: { callback: await consumer.getAddress() } });
      const taskId = d.taskId(m.dealId, 0);
      const data = "0x2a";
      const digest = callbackDigest(data);
      for (const wrong of ["0x2b", "0x"]) {
        await expect(d.contributeAndFinalize(f.workers[0], m.dealId, 0, digest, "0x", wrong))
          .to.be.revertedWithCustomError(f.hub, "HubCallbackDataMismatch")
          .withArgs(taskId, digest, keccak256(wrong));
      }
      expect(await consumer.received()).to.equal(0n);
    });

    it("reverts with HubCallbackDataMismatch when a deal without a callback gets non-empty data that does not hash to the digest", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      const digest = digestOf("x");
      const wrong = hexlify(toUtf8Bytes("something else"));
      await expect(d.contributeAndFinalize(f.workers[0], m.dealId, 0, digest, "0x", wrong))
        .to.be.revertedWithCustomError(f.hub, "HubCallbackDataMismatch")
        .withArgs(d.taskId(m.dealId, 0), digest, keccak256(wrong));
    });
  });

  describe("callbacks and result data", function () {
    it("delivers (taskId, data) to the deal's consumer exactly once and returns the data from resultFor", async function () {
      const { f, d } = await setup();
      const consumer = await new ResultStoreConsumer__factory(f.owner).deploy(await f.hub.getAddress());
      const m = await matchSingle(d, { request: { callback: await consumer.getAddress() } });
      const taskId = d.taskId(m.dealId, 0);
      const data = "0x2a";
      await expect(d.contributeAndFinalize(f.workers[0], m.dealId, 0, callbackDigest(data), RESULTS, data))
        .to.emit(consumer, "ResultReceived")
        .withArgs(taskId, data)
        .and.not.to.emit(f.hub, "CallbackFailed");
      expect(await consumer.received()).to.equal(1n);
      expect(await consumer.results(taskId)).to.equal(data);
      expect(await f.hub.resultFor(taskId)).to.equal(data);
    });

    it("stores data that hashes to the digest on a deal without callback and returns it from resultFor", async function () {
      const { f, d } = await setup();
      const m = await matchSingle(d);
      const taskId = d.taskId(m.dealId, 0);
      const data = ethers.AbiCoder.defaultAbiCoder().encode(["string"], ["the answer is 42"]);
      await d.contributeAndFinalize(f.workers[0], m.dealId, 0, callbackDigest(data), RESULTS, data);
      expect(await f.hub.resultFor(taskId)).to.equal(data);
      expect((await f.hub.viewTask(taskId)).resultDigest).to.equal(callbackDigest(data));
    });
  });

  describe("kitty", function () {
    // Registries are permissionless: anyone can register an app and a pool it schedules itself and self-deal tasks.
    // The kitty reward is capped by the stakes the finalization itself seized, and the single-worker path seizes
    // nothing, so such tasks never take anything out of the kitty, whatever their prices.

    /** A kitty of 3 (a claimed default task), then an attacker's own app and pool (it is the scheduler, which
     * consents by registering) and a self-dealt single-worker deal at `poolPrice`, completed by the attacker. */
    async function selfDealt(f: Fixture, d: TaskDriver, poolPrice: bigint, deposit: bigint) {
      const lost = await matchSingle(d);
      await d.advanceToFinalDeadline(lost.dealId);
      await f.hub.claim(lost.dealId, 0);
      expect(await f.hub.kitty()).to.equal(SCHEDULER_STAKE);

      const attacker = (await ethers.getSigners())[18];
      await f.token.mint(attacker.address, deposit);
      await f.token.connect(attacker).approve(await f.hub.getAddress(), ethers.MaxUint256);
      await f.hub.connect(attacker).deposit(deposit);
      await f.apps.connect(attacker).register(attacker.address, "mine", "wasi", "file://mine.wasm", ethers.id("mine"));
      await f.workerpools.connect(attacker).register(attacker.address, "mine", attacker.address, 30, 0);
      const app = await f.apps.count();
      const pool = await f.workerpools.count();
      expect((await f.workerpools.dealTerms(pool)).schedulerConsent, "the registering scheduler consents").to.equal(true);
      const orders = {
        app: await signOrder(attacker, f.domain, "AppOrder", appOrder(f, { app, appprice: 0n })),
        dataset: await signOrder(f.datasetOwner, f.domain, "DatasetOrder", datasetOrder(f)),
        workerpool: await signOrder(
          attacker,
          f.domain,
          "WorkerpoolOrder",
          workerpoolOrder(f, { workerpool: pool, workerpoolprice: poolPrice }),
        ),
        request: await signOrder(
          attacker,
          f.domain,
          "RequestOrder",
          requestOrder(f, {
            app,
            appmaxprice: 0n,
            dataset: 0n,
            datasetmaxprice: 0n,
            workerpool: pool,
            workerpoolmaxprice: poolPrice,
            requester: attacker.address,
            beneficiary: attacker.address,
          }),
        ),
      };
      const m = await d.matchOrders(orders, attacker);
      const taskId = d.taskId(m.dealId, 0);
      const auth = await signMessage(attacker, f.domain, "Authorization", { worker: attacker.address, taskId });
      await caf(f, attacker, m.dealId, 0, digestOf("self-dealt"), auth);
      expect((await f.hub.viewTask(taskId)).status).to.equal(COMPLETED);
      return attacker;
    }

    it("pays no kitty reward to a scheduler that risked nothing on a zero-price self-dealt task", async function () {
      const { f, d } = await setup();
      // Only the protocol minimum stake, which is checked but never locked on this path.
      const attacker = await selfDealt(f, d, 0n, E("0.1"));
      expect(await f.hub.accountOf(attacker.address), "attacker's escrow account").to.deep.equal([E("0.1"), 0n]);
      expect(await f.hub.kitty(), "kitty").to.equal(SCHEDULER_STAKE);
    });

    it("pays no kitty reward on a priced self-dealt task either, although its scheduler staked", async function () {
      const { f, d } = await setup();
      // Pool price 10, reward ratio 0: the attacker, requester and scheduler at once, locks 10 + a stake of 3 (and
      // needs 3 more free as a worker), then gets the whole price back as the worker and its stake back as the
      // scheduler. Capped by its stake (3), the former rule would have paid it min(3, max(0.1, 0.3)) = 0.3 per task.
      const attacker = await selfDealt(f, d, E("10"), E("16"));
      expect(await f.hub.accountOf(attacker.address), "attacker's escrow account").to.deep.equal([E("16"), 0n]);
      expect(await f.hub.kitty(), "kitty").to.equal(SCHEDULER_STAKE);
    });
  });
});
