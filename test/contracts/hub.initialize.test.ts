/**
 * Hub.initialize and Hub.initializeBatch: the scheduler activates tasks of its deals before the contribution deadline.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ContractTransactionResponse, ZeroHash, parseEther } from "ethers";
import type { Hub } from "../../typechain-types";
import { Fixture, TIMEREF, deployFixture } from "../helpers/fixture";
import { Matched, TaskDriver, digestOf } from "../helpers/driver";
import { Status, bit } from "../helpers/status";
import { taskOf } from "../helpers/views";
import { dealId as dealIdOf } from "../../sdk/eip712";

/** The `TaskInitialized` events of a transaction, as [taskId, dealId, index]. */
async function initializedEvents(hub: Hub, tx: ContractTransactionResponse): Promise<[string, string, bigint][]> {
  const receipt = await tx.wait();
  const out: [string, string, bigint][] = [];
  for (const log of receipt!.logs) {
    const parsed = hub.interface.parseLog(log);
    if (parsed?.name === "TaskInitialized") out.push([parsed.args.taskId, parsed.args.dealId, parsed.args.index]);
  }
  return out;
}

describe("Hub.initialize", function () {
  let f: Fixture;
  let d: TaskDriver;
  let hub: Hub;
  let m: Matched;

  beforeEach(async function () {
    f = await loadFixture(deployFixture);
    d = new TaskDriver(f);
    hub = f.hub.connect(f.scheduler);
    m = await d.match({ request: { trust: 3n, volume: 4n } });
  });

  describe("initialize", function () {
    it("activates the task with its deal, index and deadlines and emits TaskInitialized", async function () {
      const taskId = d.taskId(m.dealId, 1);
      const start = await d.startTime(m.dealId);
      await expect(hub.initialize(m.dealId, 1)).to.emit(hub, "TaskInitialized").withArgs(taskId, m.dealId, 1n);
      expect(await taskOf(hub, taskId)).to.deep.equal({
        status: Status.ACTIVE,
        dealId: m.dealId,
        index: 1n,
        contributionDeadline: start + 7n * TIMEREF,
        revealDeadline: 0n,
        finalDeadline: start + 10n * TIMEREF,
        contributorCount: 0n,
        winnerCount: 0n,
        revealCount: 0n,
        consensusHash: ZeroHash,
        resultDigest: ZeroHash,
      });
      expect(await hub.contributorsOf(taskId)).to.deep.equal([]);
    });

    it("returns the task id keccak256(dealId, index)", async function () {
      expect(await hub.initialize.staticCall(m.dealId, 2)).to.equal(d.taskId(m.dealId, 2));
      expect(await hub.taskIdOf(m.dealId, 2)).to.equal(d.taskId(m.dealId, 2));
    });

    it("leaves the other tasks of the deal uninitialized", async function () {
      await hub.initialize(m.dealId, 1);
      for (const index of [0, 2, 3]) {
        expect((await hub.viewTask(d.taskId(m.dealId, index))).status).to.equal(Status.UNSET);
      }
    });

    it("moves no escrow funds", async function () {
      const scheduler = await hub.accountOf(f.scheduler.address);
      const requester = await hub.accountOf(f.requester.address);
      const kitty = await hub.kitty();
      await hub.initialize(m.dealId, 0);
      expect(await hub.accountOf(f.scheduler.address)).to.deep.equal(scheduler);
      expect(await hub.accountOf(f.requester.address)).to.deep.equal(requester);
      expect(await hub.kitty()).to.equal(kitty);
      // The stakes and payments were locked at match time: 4 tasks.
      expect(scheduler.frozen).to.equal(4n * parseEther("3"));
      expect(requester.frozen).to.equal(4n * parseEther("13"));
    });

    it("rejects a caller that is not the deal's scheduler", async function () {
      for (const caller of [f.other, f.requester, f.poolOwner, f.workers[0]]) {
        await expect(hub.connect(caller).initialize(m.dealId, 0))
          .to.be.revertedWithCustomError(hub, "HubNotScheduler")
          .withArgs(m.dealId, caller.address);
      }
    });

    it("rejects an unknown deal", async function () {
      for (const unknown of [ZeroHash, d.nextDealId(m), dealIdOf(d.requestHash(m), 1n)]) {
        await expect(hub.initialize(unknown, 0)).to.be.revertedWithCustomError(hub, "HubUnknownDeal").withArgs(unknown);
      }
    });

    it("reports an unknown deal before checking the caller", async function () {
      const unknown = d.nextDealId(m);
      await expect(hub.connect(f.other).initialize(unknown, 0))
        .to.be.revertedWithCustomError(hub, "HubUnknownDeal")
        .withArgs(unknown);
    });

    it("rejects an index at or beyond the deal's volume", async function () {
      for (const index of [4n, 5n, 2n ** 32n, 2n ** 256n - 1n]) {
        await expect(hub.initialize(m.dealId, index))
          .to.be.revertedWithCustomError(hub, "HubTaskIndexOutOfRange")
          .withArgs(m.dealId, index, 4n);
      }
    });

    it("initializes the last index of the deal", async function () {
      await expect(hub.initialize(m.dealId, 3))
        .to.emit(hub, "TaskInitialized")
        .withArgs(d.taskId(m.dealId, 3), m.dealId, 3n);
    });

    it("rejects a task that is already active", async function () {
      const taskId = d.taskId(m.dealId, 0);
      await hub.initialize(m.dealId, 0);
      await expect(hub.initialize(m.dealId, 0))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, Status.ACTIVE, bit(Status.UNSET));
    });

    it("rejects a task initialized lazily by a contribution", async function () {
      const taskId = d.taskId(m.dealId, 0);
      await d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
      await expect(hub.initialize(m.dealId, 0))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, Status.ACTIVE, bit(Status.UNSET));
    });

    it("rejects a task in REVEALING and a COMPLETED task", async function () {
      const taskId = d.taskId(m.dealId, 0);
      const digest = digestOf("r");
      for (const w of f.workers.slice(0, 3)) await d.contribute(w, m.dealId, 0, digest);
      await expect(hub.initialize(m.dealId, 0))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, Status.REVEALING, bit(Status.UNSET));
      for (const w of f.workers.slice(0, 3)) await d.reveal(w, taskId, digest);
      await d.finalize(taskId);
      await expect(hub.initialize(m.dealId, 0))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, Status.COMPLETED, bit(Status.UNSET));
    });

    it("rejects a FAILED task with the status error rather than the deadline", async function () {
      const taskId = d.taskId(m.dealId, 0);
      await d.advanceToFinalDeadline(m.dealId);
      await hub.claim(m.dealId, 0);
      await expect(hub.initialize(m.dealId, 0))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, Status.FAILED, bit(Status.UNSET));
    });

    it("succeeds in the last second before the contribution deadline", async function () {
      const deadline = await d.contributionDeadline(m.dealId);
      await time.setNextBlockTimestamp(deadline - 1n);
      await expect(hub.initialize(m.dealId, 0))
        .to.emit(hub, "TaskInitialized")
        .withArgs(d.taskId(m.dealId, 0), m.dealId, 0n);
      expect((await hub.viewTask(d.taskId(m.dealId, 0))).status).to.equal(Status.ACTIVE);
    });

    it("rejects initialization at the contribution deadline", async function () {
      const deadline = await d.contributionDeadline(m.dealId);
      await time.setNextBlockTimestamp(deadline);
      await expect(hub.initialize(m.dealId, 0))
        .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
        .withArgs(d.taskId(m.dealId, 0), deadline);
    });

    it("rejects initialization after the contribution deadline", async function () {
      const deadline = await d.contributionDeadline(m.dealId);
      await time.setNextBlockTimestamp(deadline + 100n);
      await expect(hub.initialize(m.dealId, 2))
        .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
        .withArgs(d.taskId(m.dealId, 2), deadline);
    });
  });

  describe("initializeBatch", function () {
    it("activates every listed task and emits TaskInitialized for each", async function () {
      const tx = await hub.initializeBatch(m.dealId, [0, 2, 3]);
      expect(await initializedEvents(hub, tx)).to.deep.equal([
        [d.taskId(m.dealId, 0), m.dealId, 0n],
        [d.taskId(m.dealId, 2), m.dealId, 2n],
        [d.taskId(m.dealId, 3), m.dealId, 3n],
      ]);
      for (const index of [0, 2, 3]) {
        const t = await hub.viewTask(d.taskId(m.dealId, index));
        expect([t.status, t.dealId, t.index]).to.deep.equal([Status.ACTIVE, m.dealId, BigInt(index)]);
      }
      expect((await hub.viewTask(d.taskId(m.dealId, 1))).status).to.equal(Status.UNSET);
    });

    it("skips tasks that are already initialized", async function () {
      await hub.initialize(m.dealId, 1);
      const digest = digestOf("r");
      for (const w of f.workers.slice(0, 3)) await d.contribute(w, m.dealId, 2, digest);
      const tx = await hub.initializeBatch(m.dealId, [0, 1, 2, 3]);
      expect(await initializedEvents(hub, tx)).to.deep.equal([
        [d.taskId(m.dealId, 0), m.dealId, 0n],
        [d.taskId(m.dealId, 3), m.dealId, 3n],
      ]);
      expect((await hub.viewTask(d.taskId(m.dealId, 1))).status).to.equal(Status.ACTIVE);
      // The task in REVEALING keeps its consensus.
      const revealing = await hub.viewTask(d.taskId(m.dealId, 2));
      expect([revealing.status, revealing.contributorCount, revealing.winnerCount]).to.deep.equal([
        Status.REVEALING,
        3n,
        3n,
      ]);
    });

    it("initializes a task listed twice only once", async function () {
      const tx = await hub.initializeBatch(m.dealId, [2, 2]);
      expect(await initializedEvents(hub, tx)).to.deep.equal([[d.taskId(m.dealId, 2), m.dealId, 2n]]);
    });

    it("rejects an empty batch", async function () {
      await expect(hub.initializeBatch(m.dealId, [])).to.be.revertedWithCustomError(hub, "HubEmptyBatch").withArgs();
      await expect(hub.connect(f.other).initializeBatch(m.dealId, []))
        .to.be.revertedWithCustomError(hub, "HubEmptyBatch")
        .withArgs();
    });

    it("rejects a caller that is not the deal's scheduler", async function () {
      for (const caller of [f.other, f.poolOwner, f.workers[0]]) {
        await expect(hub.connect(caller).initializeBatch(m.dealId, [0, 1]))
          .to.be.revertedWithCustomError(hub, "HubNotScheduler")
          .withArgs(m.dealId, caller.address);
      }
    });

    it("rejects an unknown deal", async function () {
      const unknown = d.nextDealId(m);
      await expect(hub.initializeBatch(unknown, [0])).to.be.revertedWithCustomError(hub, "HubUnknownDeal").withArgs(unknown);
    });

    it("rejects the whole batch when one index is out of range", async function () {
      await expect(hub.initializeBatch(m.dealId, [0, 1, 4]))
        .to.be.revertedWithCustomError(hub, "HubTaskIndexOutOfRange")
        .withArgs(m.dealId, 4n, 4n);
      for (const index of [0, 1]) {
        expect((await hub.viewTask(d.taskId(m.dealId, index))).status).to.equal(Status.UNSET);
      }
    });

    it("succeeds in the last second before the contribution deadline", async function () {
      const deadline = await d.contributionDeadline(m.dealId);
      await time.setNextBlockTimestamp(deadline - 1n);
      const tx = await hub.initializeBatch(m.dealId, [0, 1]);
      expect((await initializedEvents(hub, tx)).length).to.equal(2);
    });

    it("rejects the batch at the contribution deadline, naming the first task to initialize", async function () {
      await hub.initialize(m.dealId, 0);
      const deadline = await d.contributionDeadline(m.dealId);
      await time.setNextBlockTimestamp(deadline);
      await expect(hub.initializeBatch(m.dealId, [0, 3, 1]))
        .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
        .withArgs(d.taskId(m.dealId, 3), deadline);
    });
  });
});
