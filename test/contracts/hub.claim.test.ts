/**
 * Hub.claim and Hub.claimDeal: after the final deadline anyone fails a task that is not COMPLETED. The requester is
 * refunded, the scheduler's stake is seized into the kitty, the stakes of the winners rejected at a reopen are seized
 * into the kitty (their scores halved) and every other contributor's stake is unlocked, whatever stage the task
 * reached (never initialized, initialized, consensus without reveal, partial reveals, reopened).
 */
import { expect } from "chai";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { ZeroHash } from "ethers";
import { Fixture, INITIAL_DEPOSIT, SCHEDULER_STAKE, TASK_PRICE, WORKER_STAKE } from "../helpers/fixture";
import { TaskDriver, digestOf, setup } from "../helpers/driver";
import { Change, expectMoves, ledger } from "../helpers/ledger";
import { CLAIMABLE, Status } from "../helpers/status";
import { dealId as dealIdOf } from "../../sdk/eip712";

// ---------------------------------------------------------------------------------------------------------- helpers

const { UNSET, ACTIVE, REVEALING, COMPLETED, FAILED } = Status;

/** The moves of one claimed default task: refund, seized scheduler stake, `unlocked` contributors' stakes back. */
function claimMoves(unlocked: string[], tasks = 1n): Change {
  const change: Change = {
    requester: { balance: tasks * TASK_PRICE, frozen: -tasks * TASK_PRICE },
    scheduler: { frozen: -tasks * SCHEDULER_STAKE },
  };
  for (const w of unlocked) change[w] = { balance: WORKER_STAKE, frozen: -WORKER_STAKE };
  return change;
}

async function contributeAll(d: TaskDriver, dealId: string, index: number, commits: [HardhatEthersSigner, string][]) {
  for (const [w, digest] of commits) await d.contribute(w, dealId, index, digest);
}

// ---------------------------------------------------------------------------------------------------------- tests

describe("Hub.claim", function () {
  describe("refunds", function () {
    it("fails a never-initialized task: refunds the requester and seizes the scheduler's stake into the kitty", async function () {
      const { f, d } = await setup();
      const m = await d.matchTrust(3n);
      const taskId = d.taskId(m.dealId, 0);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([INITIAL_DEPOSIT - TASK_PRICE, TASK_PRICE]);
      await d.advanceToFinalDeadline(m.dealId);
      const before = await ledger(f);
      await expect(f.hub.connect(f.other).claim(m.dealId, 0))
        .to.emit(f.hub, "TaskClaimed")
        .withArgs(taskId, m.dealId, 0n);
      const after = await ledger(f);
      expectMoves(before, after, claimMoves([]), SCHEDULER_STAKE);
      expect(after.accounts.requester).to.deep.equal({ balance: INITIAL_DEPOSIT, frozen: 0n });
      expect(after.accounts.scheduler).to.deep.equal({ balance: INITIAL_DEPOSIT - SCHEDULER_STAKE, frozen: 0n });
      const view = await f.hub.viewTask(taskId);
      expect(view.status).to.equal(FAILED);
      expect(view.dealId).to.equal(m.dealId);
      expect(view.index).to.equal(0n);
      expect(view.contributorCount).to.equal(0n);
    });

    it("fails an explicitly initialized task without contributions the same way", async function () {
      const { f, d } = await setup();
      const m = await d.matchTrust(3n);
      await f.hub.connect(f.scheduler).initialize(m.dealId, 0);
      await d.advanceToFinalDeadline(m.dealId);
      const before = await ledger(f);
      await expect(f.hub.claim(m.dealId, 0)).to.emit(f.hub, "TaskClaimed").withArgs(d.taskId(m.dealId, 0), m.dealId, 0n);
      expectMoves(before, await ledger(f), claimMoves([]), SCHEDULER_STAKE);
    });

    it("unlocks every contributor's stake on an initialized task without consensus", async function () {
      const { f, d } = await setup();
      const m = await d.matchTrust(3n);
      const [w0, w1] = f.workers;
      await contributeAll(d, m.dealId, 0, [
        [w0, digestOf("a")],
        [w1, digestOf("b")],
      ]);
      const taskId = d.taskId(m.dealId, 0);
      expect((await f.hub.viewTask(taskId)).status).to.equal(ACTIVE);
      await d.advanceToFinalDeadline(m.dealId);
      const before = await ledger(f);
      await expect(f.hub.connect(f.other).claim(m.dealId, 0)).to.emit(f.hub, "TaskClaimed").withArgs(taskId, m.dealId, 0n);
      const after = await ledger(f);
      expectMoves(before, after, claimMoves(["w0", "w1"]), SCHEDULER_STAKE);
      expect(after.accounts.w0).to.deep.equal({ balance: INITIAL_DEPOSIT, frozen: 0n });
      expect(after.accounts.w1).to.deep.equal({ balance: INITIAL_DEPOSIT, frozen: 0n });
      expect((await f.hub.viewTask(taskId)).status).to.equal(FAILED);
    });

    it("unlocks winners and dissenter alike on a REVEALING task whose winners never revealed, without touching scores", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2, w3] = f.workers;
      // w3 wins a task first, so that a score change would show.
      const win = await d.matchTrust(1n);
      await d.contributeAndFinalize(w3, win.dealId, 0, digestOf("win"));
      const m = await d.matchTrust(3n);
      const digest = digestOf("r");
      await contributeAll(d, m.dealId, 0, [
        [w0, digest],
        [w3, digestOf("dissent")],
        [w1, digest],
        [w2, digest],
      ]);
      const taskId = d.taskId(m.dealId, 0);
      expect((await f.hub.viewTask(taskId)).status).to.equal(REVEALING);
      await d.advanceToFinalDeadline(m.dealId);
      const before = await ledger(f);
      await f.hub.claim(m.dealId, 0);
      expectMoves(before, await ledger(f), claimMoves(["w0", "w1", "w2", "w3"]), SCHEDULER_STAKE);
      expect(await f.hub.scoreOf(w3.address)).to.equal(1n);
      for (const w of [w0, w1, w2]) expect(await f.hub.scoreOf(w.address)).to.equal(0n);
      expect((await f.hub.viewTask(taskId)).status).to.equal(FAILED);
    });

    it("unlocks every stake on a task with partial reveals that the scheduler never finalized", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2] = f.workers;
      const m = await d.matchTrust(3n);
      const digest = digestOf("r");
      await contributeAll(d, m.dealId, 0, [
        [w0, digest],
        [w1, digest],
        [w2, digest],
      ]);
      const taskId = d.taskId(m.dealId, 0);
      await d.reveal(w0, taskId, digest);
      await d.reveal(w1, taskId, digest);
      expect((await f.hub.viewTask(taskId)).revealCount).to.equal(2n);
      await d.advanceToFinalDeadline(m.dealId);
      const before = await ledger(f);
      await expect(f.hub.claim(m.dealId, 0)).to.emit(f.hub, "TaskClaimed").withArgs(taskId, m.dealId, 0n);
      expectMoves(before, await ledger(f), claimMoves(["w0", "w1", "w2"]), SCHEDULER_STAKE);
      expect((await f.hub.viewTask(taskId)).status).to.equal(FAILED);
      await expect(f.hub.resultFor(taskId))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, FAILED, 1n << COMPLETED);
    });

    it("seizes the stakes of winners rejected by a reopen, halving their scores, and unlocks later contributors", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2, w3] = f.workers;
      // Scores before: w0 2, w1 1, w3 1 (single-worker wins), so that the halving and its absence show.
      const wins = await d.matchTrust(1n, { request: { volume: 4n } });
      for (const [i, w] of [w0, w0, w1, w3].entries()) await d.contributeAndFinalize(w, wins.dealId, i, digestOf(`win ${i}`));
      const m = await d.matchTrust(3n);
      const taskId = d.taskId(m.dealId, 0);
      await contributeAll(d, m.dealId, 0, [
        [w0, digestOf("r")],
        [w1, digestOf("r")],
        [w2, digestOf("r")],
      ]);
      await d.advanceToRevealDeadline(taskId);
      await f.hub.connect(f.scheduler).reopen(taskId);
      await d.contribute(w3, m.dealId, 0, digestOf("late"));
      expect((await f.hub.viewContribution(taskId, w0.address)).status).to.equal(3n); // REJECTED
      await d.advanceToFinalDeadline(m.dealId);
      const before = await ledger(f);
      await f.hub.claim(m.dealId, 0);
      const moves = claimMoves(["w3"]);
      for (const w of ["w0", "w1", "w2"]) moves[w] = { frozen: -WORKER_STAKE };
      expectMoves(before, await ledger(f), moves, SCHEDULER_STAKE + 3n * WORKER_STAKE);
      expect(await Promise.all([w0, w1, w2, w3].map((w) => f.hub.scoreOf(w.address)))).to.deep.equal([1n, 0n, 0n, 1n]);
      for (const w of [w0, w1, w2]) {
        expect((await f.hub.viewContribution(taskId, w.address)).status).to.equal(3n); // still REJECTED
      }
      expect((await f.hub.viewContribution(taskId, w3.address)).status).to.equal(1n); // CONTRIBUTED
      expect((await f.hub.viewTask(taskId)).status).to.equal(FAILED);
    });

    it("leaves the other tasks of the deal frozen", async function () {
      const { f, d } = await setup();
      const m = await d.matchTrust(3n, { request: { volume: 3n } });
      await d.advanceToFinalDeadline(m.dealId);
      await f.hub.claim(m.dealId, 1);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([
        INITIAL_DEPOSIT - 2n * TASK_PRICE,
        2n * TASK_PRICE,
      ]);
      expect(await f.hub.frozenOf(f.scheduler.address)).to.equal(2n * SCHEDULER_STAKE);
      expect((await f.hub.viewTask(d.taskId(m.dealId, 0))).status).to.equal(UNSET);
      expect((await f.hub.viewTask(d.taskId(m.dealId, 2))).status).to.equal(UNSET);
    });
  });

  describe("errors", function () {
    it("reverts with HubDeadlineNotReached one second before the final deadline and succeeds at it", async function () {
      const { f, d } = await setup();
      const m = await d.matchTrust(3n);
      const taskId = d.taskId(m.dealId, 0);
      const finalDeadline = await d.finalDeadline(m.dealId);
      await expect(f.hub.claim(m.dealId, 0))
        .to.be.revertedWithCustomError(f.hub, "HubDeadlineNotReached")
        .withArgs(taskId, finalDeadline);
      await d.nextBlockAt(finalDeadline, -1n);
      await expect(f.hub.claim(m.dealId, 0))
        .to.be.revertedWithCustomError(f.hub, "HubDeadlineNotReached")
        .withArgs(taskId, finalDeadline);
      await d.nextBlockAt(finalDeadline);
      await expect(f.hub.claim(m.dealId, 0)).to.emit(f.hub, "TaskClaimed").withArgs(taskId, m.dealId, 0n);
    });

    it("reverts with HubUnexpectedTaskStatus on a COMPLETED task", async function () {
      const { f, d } = await setup();
      const m = await d.matchTrust(1n);
      const taskId = d.taskId(m.dealId, 0);
      await d.contributeAndFinalize(f.workers[0], m.dealId, 0, digestOf("r"));
      await d.advanceToFinalDeadline(m.dealId);
      const before = await ledger(f);
      await expect(f.hub.claim(m.dealId, 0))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, COMPLETED, CLAIMABLE);
      expectMoves(before, await ledger(f), {});
    });

    it("reverts with HubUnexpectedTaskStatus on a FAILED task (no double refund)", async function () {
      const { f, d } = await setup();
      const m = await d.matchTrust(3n);
      const taskId = d.taskId(m.dealId, 0);
      await d.advanceToFinalDeadline(m.dealId);
      await f.hub.claim(m.dealId, 0);
      const before = await ledger(f);
      await expect(f.hub.connect(f.requester).claim(m.dealId, 0))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, FAILED, CLAIMABLE);
      expectMoves(before, await ledger(f), {});
    });

    it("reverts with HubUnknownDeal for a deal id that names no deal", async function () {
      const { f, d } = await setup();
      const m = await d.matchTrust(3n);
      for (const dealId of [d.nextDealId(m), ZeroHash]) {
        await expect(f.hub.claim(dealId, 0)).to.be.revertedWithCustomError(f.hub, "HubUnknownDeal").withArgs(dealId);
      }
    });

    it("reverts with HubTaskIndexOutOfRange for an index not below the deal's volume", async function () {
      const { f, d } = await setup();
      const m = await d.matchTrust(3n, { request: { volume: 4n } });
      await d.advanceToFinalDeadline(m.dealId);
      for (const index of [4n, 5n]) {
        await expect(f.hub.claim(m.dealId, index))
          .to.be.revertedWithCustomError(f.hub, "HubTaskIndexOutOfRange")
          .withArgs(m.dealId, index, 4n);
      }
    });
  });
});

describe("Hub.claimDeal", function () {
  /** A volume-4 trust-1 deal: task 0 completed, 1 initialized, 2 REVEALING with w1's stake, 3 never initialized. */
  async function mixedDeal(f: Fixture, d: TaskDriver) {
    const m = await d.matchTrust(1n, { request: { volume: 4n } });
    await d.contributeAndFinalize(f.workers[0], m.dealId, 0, digestOf("done"));
    await f.hub.connect(f.scheduler).initialize(m.dealId, 1);
    await d.contribute(f.workers[1], m.dealId, 2, digestOf("pending"));
    expect((await f.hub.viewTask(d.taskId(m.dealId, 0))).status).to.equal(COMPLETED);
    expect((await f.hub.viewTask(d.taskId(m.dealId, 1))).status).to.equal(ACTIVE);
    expect((await f.hub.viewTask(d.taskId(m.dealId, 2))).status).to.equal(REVEALING);
    expect((await f.hub.viewTask(d.taskId(m.dealId, 3))).status).to.equal(UNSET);
    return m;
  }

  it("claims every remaining task of a deal and leaves the completed one untouched", async function () {
    const { f, d } = await setup();
    const m = await mixedDeal(f, d);
    await d.advanceToFinalDeadline(m.dealId);
    expect(await f.hub.connect(f.other).claimDeal.staticCall(m.dealId)).to.equal(3n);
    const before = await ledger(f);
    const tx = f.hub.connect(f.other).claimDeal(m.dealId);
    await expect(tx)
      .to.emit(f.hub, "TaskClaimed")
      .withArgs(d.taskId(m.dealId, 1), m.dealId, 1n)
      .and.to.emit(f.hub, "TaskClaimed")
      .withArgs(d.taskId(m.dealId, 2), m.dealId, 2n)
      .and.to.emit(f.hub, "TaskClaimed")
      .withArgs(d.taskId(m.dealId, 3), m.dealId, 3n);
    const receipt = await (await tx).wait();
    const claimed = receipt!.logs
      .map((l) => f.hub.interface.parseLog(l))
      .filter((e) => e?.name === "TaskClaimed")
      .map((e) => e!.args.index);
    expect(claimed).to.deep.equal([1n, 2n, 3n]);
    const after = await ledger(f);
    expectMoves(before, after, claimMoves(["w1"], 3n), 3n * SCHEDULER_STAKE);
    expect(after.accounts.requester).to.deep.equal({ balance: INITIAL_DEPOSIT - TASK_PRICE, frozen: 0n });
    expect(after.accounts.scheduler.frozen).to.equal(0n);
    const done = d.taskId(m.dealId, 0);
    expect((await f.hub.viewTask(done)).status).to.equal(COMPLETED);
    expect(await f.hub.resultFor(done)).to.equal(digestOf("done"));
    for (const i of [1, 2, 3]) expect((await f.hub.viewTask(d.taskId(m.dealId, i))).status).to.equal(FAILED);
  });

  it("claims nothing the second time", async function () {
    const { f, d } = await setup();
    const m = await mixedDeal(f, d);
    await d.advanceToFinalDeadline(m.dealId);
    await f.hub.claimDeal(m.dealId);
    expect(await f.hub.claimDeal.staticCall(m.dealId)).to.equal(0n);
    const before = await ledger(f);
    await expect(f.hub.claimDeal(m.dealId)).not.to.emit(f.hub, "TaskClaimed");
    expectMoves(before, await ledger(f), {});
  });

  it("skips tasks already claimed one by one", async function () {
    const { f, d } = await setup();
    const m = await mixedDeal(f, d);
    await d.advanceToFinalDeadline(m.dealId);
    await f.hub.claim(m.dealId, 2);
    expect(await f.hub.claimDeal.staticCall(m.dealId)).to.equal(2n);
    const before = await ledger(f);
    await f.hub.claimDeal(m.dealId);
    expectMoves(before, await ledger(f), claimMoves([], 2n), 2n * SCHEDULER_STAKE);
  });

  it("reverts with HubDeadlineNotReached one second before the final deadline and succeeds at it", async function () {
    const { f, d } = await setup();
    const m = await mixedDeal(f, d);
    const finalDeadline = await d.finalDeadline(m.dealId);
    await d.nextBlockAt(finalDeadline, -1n);
    await expect(f.hub.claimDeal(m.dealId))
      .to.be.revertedWithCustomError(f.hub, "HubDeadlineNotReached")
      .withArgs(d.taskId(m.dealId, 0), finalDeadline);
    await d.nextBlockAt(finalDeadline);
    await expect(f.hub.claimDeal(m.dealId)).to.emit(f.hub, "TaskClaimed");
  });

  it("reverts with HubUnknownDeal for a deal id that names no deal", async function () {
    const { f, d } = await setup();
    const m = await mixedDeal(f, d);
    for (const dealId of [d.nextDealId(m), dealIdOf(d.requestHash(m), 1n), ZeroHash]) {
      await expect(f.hub.claimDeal(dealId)).to.be.revertedWithCustomError(f.hub, "HubUnknownDeal").withArgs(dealId);
    }
  });
});
