/**
 * Hub.reopen: when no winner revealed by the reveal deadline, the scheduler rejects the silent winning group and the
 * task is ACTIVE again, so that other contributions can reach a new consensus before the final deadline.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { ZeroHash, parseEther } from "ethers";
import type { Hub } from "../../typechain-types";
import {
  Fixture,
  INITIAL_DEPOSIT,
  PRICES,
  SCHEDULER_STAKE,
  TIMEREF,
  WORKER_STAKE,
  deployFixture,
} from "../helpers/fixture";
import { Matched, TaskDriver, digestOf } from "../helpers/driver";
import { Contribution, Status, bit } from "../helpers/status";
import { taskOf } from "../helpers/views";
import { resultHash } from "../../sdk/eip712";

const D = digestOf("silent winners' result");
const E = digestOf("dissenting result");

describe("Hub.reopen", function () {
  let f: Fixture;
  let d: TaskDriver;
  let hub: Hub;
  let m: Matched;
  let taskId: string;
  let winners: HardhatEthersSigner[];
  let dissenter: HardhatEthersSigner;

  /** Trust 3: workers[3] commits E first, then workers[0..2] commit D and reach consensus; nobody reveals. */
  beforeEach(async function () {
    f = await loadFixture(deployFixture);
    d = new TaskDriver(f);
    hub = f.hub.connect(f.scheduler);
    ({ m, taskId, winners, dissenter } = await d.consensusWithDissenter(D, E));
  });

  async function statusOf(worker: HardhatEthersSigner): Promise<bigint> {
    return (await hub.viewContribution(taskId, worker.address)).status;
  }

  it("reopens a task nobody revealed at the reveal deadline", async function () {
    const deadline = await d.revealDeadline(taskId);
    const before = await hub.viewTask(taskId);
    await time.setNextBlockTimestamp(deadline);
    await expect(hub.reopen(taskId)).to.emit(hub, "TaskReopened").withArgs(taskId);
    expect(await taskOf(hub, taskId)).to.deep.equal({
      status: Status.ACTIVE,
      dealId: m.dealId,
      index: 0n,
      contributionDeadline: before.contributionDeadline,
      revealDeadline: 0n,
      finalDeadline: before.finalDeadline,
      contributorCount: 4n,
      winnerCount: 0n,
      revealCount: 0n,
      consensusHash: ZeroHash,
      resultDigest: ZeroHash,
    });
  });

  it("rejects the silent winners and leaves the dissenting contributor CONTRIBUTED", async function () {
    await d.advanceToRevealDeadline(taskId);
    await hub.reopen(taskId);
    for (const w of winners) {
      const c = await hub.viewContribution(taskId, w.address);
      expect([c.status, c.stake]).to.deep.equal([Contribution.REJECTED, WORKER_STAKE]);
    }
    expect(await statusOf(dissenter)).to.equal(Contribution.CONTRIBUTED);
    expect(await hub.contributorsOf(taskId)).to.deep.equal([dissenter, ...winners].map((w) => w.address));
  });

  it("keeps every stake locked and moves no funds", async function () {
    const parties = [...winners, dissenter, f.scheduler, f.requester];
    const accounts = await Promise.all(parties.map((p) => hub.accountOf(p.address)));
    await d.advanceToRevealDeadline(taskId);
    await hub.reopen(taskId);
    for (const [i, p] of parties.entries()) expect(await hub.accountOf(p.address)).to.deep.equal(accounts[i]);
    expect(await hub.kitty()).to.equal(0n);
    for (const w of winners) expect(await hub.frozenOf(w.address)).to.equal(WORKER_STAKE);
  });

  it("refuses a new contribution from a rejected worker", async function () {
    await d.advanceToRevealDeadline(taskId);
    await hub.reopen(taskId);
    for (const w of winners) {
      await expect(d.contribute(w, m.dealId, 0, D))
        .to.be.revertedWithCustomError(hub, "HubAlreadyContributed")
        .withArgs(taskId, w.address);
    }
  });

  it("forgets the rejected group's agreement", async function () {
    await d.advanceToRevealDeadline(taskId);
    await hub.reopen(taskId);
    await d.contribute(f.workers[4], m.dealId, 0, D);
    await d.contribute(f.workers[5], m.dealId, 0, D);
    const t = await hub.viewTask(taskId);
    expect([t.status, t.contributorCount, t.consensusHash]).to.deep.equal([Status.ACTIVE, 6n, ZeroHash]);
  });

  it("lets new contributions reach a new consensus, and finalizes with the new winners", async function () {
    await d.advanceToRevealDeadline(taskId);
    await hub.reopen(taskId);
    const newWinners = [dissenter, f.workers[4], f.workers[5]];
    await d.contribute(f.workers[4], m.dealId, 0, E);
    const at = (await time.latest()) + 5;
    await time.setNextBlockTimestamp(at);
    await expect(d.contribute(f.workers[5], m.dealId, 0, E))
      .to.emit(hub, "ConsensusReached")
      .withArgs(taskId, resultHash(taskId, E), BigInt(at) + 2n * TIMEREF);
    const t = await hub.viewTask(taskId);
    expect([t.status, t.contributorCount, t.winnerCount, t.revealDeadline, t.consensusHash]).to.deep.equal([
      Status.REVEALING,
      6n,
      3n,
      BigInt(at) + 2n * TIMEREF,
      resultHash(taskId, E),
    ]);

    for (const w of newWinners) await d.reveal(w, taskId, E);
    const scheduler = await hub.accountOf(f.scheduler.address);
    const requester = await hub.accountOf(f.requester.address);
    const appOwner = await hub.balanceOf(f.appOwner.address);
    const datasetOwner = await hub.balanceOf(f.datasetOwner.address);
    await expect(d.finalize(taskId, "0xab")).to.emit(hub, "TaskFinalized").withArgs(taskId, E, "0xab");
    expect((await hub.viewTask(taskId)).status).to.equal(Status.COMPLETED);

    // Pool price 10: the scheduler keeps 10%, the three new winners share 9.
    const perWorker = parseEther("3");
    for (const w of newWinners) {
      expect(await hub.accountOf(w.address)).to.deep.equal([INITIAL_DEPOSIT + perWorker, 0n]);
      expect(await hub.scoreOf(w.address)).to.equal(1n);
      expect((await hub.viewContribution(taskId, w.address)).status).to.equal(Contribution.REVEALED);
    }
    // The rejected winners lose their stakes to the kitty.
    for (const w of winners) {
      expect(await hub.accountOf(w.address)).to.deep.equal([INITIAL_DEPOSIT - WORKER_STAKE, 0n]);
      expect(await hub.scoreOf(w.address)).to.equal(0n);
      expect(await statusOf(w)).to.equal(Contribution.REJECTED);
    }
    const seized = 3n * WORKER_STAKE;
    const kittyReward = seized / 10n; // min(kitty 9, max(kittyMin 0.1, 10% of 9), seized by this finalization 9) = 0.9
    expect(await hub.kitty()).to.equal(seized - kittyReward);
    expect(await hub.accountOf(f.scheduler.address)).to.deep.equal([
      scheduler.balance + SCHEDULER_STAKE + parseEther("1") + kittyReward,
      scheduler.frozen - SCHEDULER_STAKE,
    ]);
    expect(await hub.accountOf(f.requester.address)).to.deep.equal([
      requester.balance,
      requester.frozen - (PRICES.app + PRICES.dataset + PRICES.workerpool),
    ]);
    expect(await hub.balanceOf(f.appOwner.address)).to.equal(appOwner + PRICES.app);
    expect(await hub.balanceOf(f.datasetOwner.address)).to.equal(datasetOwner + PRICES.dataset);
  });

  it("reopens a second time, rejecting only the second silent group", async function () {
    await d.advanceToRevealDeadline(taskId);
    await hub.reopen(taskId);
    await d.contribute(f.workers[4], m.dealId, 0, E);
    await d.contribute(f.workers[5], m.dealId, 0, E);
    await d.advanceToRevealDeadline(taskId);
    await expect(hub.reopen(taskId)).to.emit(hub, "TaskReopened").withArgs(taskId);
    for (const w of f.workers) expect(await statusOf(w)).to.equal(Contribution.REJECTED);
    const t = await hub.viewTask(taskId);
    expect([t.status, t.contributorCount, t.winnerCount, t.consensusHash]).to.deep.equal([
      Status.ACTIVE,
      6n,
      0n,
      ZeroHash,
    ]);
  });

  it("rejects a caller that is not the deal's scheduler", async function () {
    await d.advanceToRevealDeadline(taskId);
    for (const caller of [f.other, f.requester, f.poolOwner, dissenter]) {
      await expect(hub.connect(caller).reopen(taskId))
        .to.be.revertedWithCustomError(hub, "HubNotScheduler")
        .withArgs(m.dealId, caller.address);
    }
  });

  it("rejects an ACTIVE task and a task never initialized", async function () {
    const other = d.taskId(m.dealId, 1);
    await expect(hub.reopen(other))
      .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
      .withArgs(other, Status.UNSET, bit(Status.REVEALING));
    await d.contribute(f.workers[0], m.dealId, 1, D);
    await expect(hub.reopen(other))
      .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
      .withArgs(other, Status.ACTIVE, bit(Status.REVEALING));
  });

  it("rejects reopening a task twice", async function () {
    await d.advanceToRevealDeadline(taskId);
    await hub.reopen(taskId);
    await expect(hub.reopen(taskId))
      .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
      .withArgs(taskId, Status.ACTIVE, bit(Status.REVEALING));
  });

  it("rejects a COMPLETED task", async function () {
    await d.reveal(winners[0], taskId, D);
    await d.advanceToRevealDeadline(taskId);
    await d.finalize(taskId);
    await expect(hub.reopen(taskId))
      .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
      .withArgs(taskId, Status.COMPLETED, bit(Status.REVEALING));
  });

  it("rejects reopening in the last second before the reveal deadline", async function () {
    const deadline = await d.revealDeadline(taskId);
    await time.setNextBlockTimestamp(deadline - 1n);
    await expect(hub.reopen(taskId))
      .to.be.revertedWithCustomError(hub, "HubDeadlineNotReached")
      .withArgs(taskId, deadline);
    expect((await hub.viewTask(taskId)).status).to.equal(Status.REVEALING);
  });

  it("rejects a task where a winner revealed", async function () {
    await d.reveal(winners[0], taskId, D);
    await d.advanceToRevealDeadline(taskId);
    await expect(hub.reopen(taskId)).to.be.revertedWithCustomError(hub, "HubHasReveals").withArgs(taskId, 1n);
  });

  it("reports how many winners revealed", async function () {
    await d.reveal(winners[0], taskId, D);
    await d.reveal(winners[2], taskId, D);
    await d.advanceToRevealDeadline(taskId);
    await expect(hub.reopen(taskId)).to.be.revertedWithCustomError(hub, "HubHasReveals").withArgs(taskId, 2n);
  });

  it("accepts reopening in the last second before the final deadline", async function () {
    const deadline = await d.finalDeadline(m.dealId);
    await time.setNextBlockTimestamp(deadline - 1n);
    await expect(hub.reopen(taskId)).to.emit(hub, "TaskReopened").withArgs(taskId);
  });

  it("rejects reopening at the final deadline", async function () {
    const deadline = await d.finalDeadline(m.dealId);
    await time.setNextBlockTimestamp(deadline);
    await expect(hub.reopen(taskId))
      .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
      .withArgs(taskId, deadline);
  });

  it("leaves a task reopened after the contribution deadline to be claimed", async function () {
    const contributionDeadline = await d.contributionDeadline(m.dealId);
    await d.advanceTo(contributionDeadline);
    await hub.reopen(taskId);
    await expect(d.contribute(f.workers[4], m.dealId, 0, E))
      .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
      .withArgs(taskId, contributionDeadline);
    await d.advanceToFinalDeadline(m.dealId);
    await expect(hub.claim(m.dealId, 0)).to.emit(hub, "TaskClaimed").withArgs(taskId, m.dealId, 0n);
    // Claiming seizes the rejected (silent) winners' stakes and unlocks the dissenter's.
    for (const w of winners) {
      expect(await hub.accountOf(w.address)).to.deep.equal([INITIAL_DEPOSIT - WORKER_STAKE, 0n]);
    }
    expect(await hub.accountOf(dissenter.address)).to.deep.equal([INITIAL_DEPOSIT, 0n]);
    // The kitty holds the scheduler's stake and the three rejected stakes; nothing was paid out of it.
    expect(await hub.kitty()).to.equal(SCHEDULER_STAKE + 3n * WORKER_STAKE);
  });
});
