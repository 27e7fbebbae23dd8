/**
 * Hub.reveal and Hub.revealBatch: the winners of a task in REVEALING disclose the digest behind their commitment,
 * which must match both the consensus hash and their own seal; only members of the winning group (the contributions
 * that committed the consensus hash) can reveal.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { ZeroHash, hexlify, parseEther, randomBytes } from "ethers";
import type { Hub } from "../../typechain-types";
import { Fixture, INITIAL_DEPOSIT, PRICES, SCHEDULER_STAKE, TASK_PRICE, WORKER_STAKE, deployFixture } from "../helpers/fixture";
import { Matched, TaskDriver, digestOf } from "../helpers/driver";
import { Contribution, Status, bit } from "../helpers/status";
import { eventNames } from "../helpers/views";
import { expectMoves, ledger } from "../helpers/ledger";
import { resultHash, resultSeal } from "../../sdk/eip712";

const D = digestOf("consensus result");
const E = digestOf("dissenting result");

describe("Hub.reveal", function () {
  let f: Fixture;
  let d: TaskDriver;
  let hub: Hub;
  let m: Matched;
  let taskId: string;
  let winners: HardhatEthersSigner[];
  let dissenter: HardhatEthersSigner;

  /** Trust 3: workers[3] commits E first, then workers[0..2] commit D and reach consensus. */
  beforeEach(async function () {
    f = await loadFixture(deployFixture);
    d = new TaskDriver(f);
    hub = f.hub;
    ({ m, taskId, winners, dissenter } = await d.consensusWithDissenter(D, E));
  });

  describe("reveal", function () {
    it("reveals the consensus digest: REVEALED contribution, result digest visible, consensus hash kept", async function () {
      const before = await hub.viewTask(taskId);
      expect([before.status, before.revealCount, before.resultDigest, before.consensusHash]).to.deep.equal([
        Status.REVEALING,
        0n,
        ZeroHash,
        resultHash(taskId, D),
      ]);
      await expect(d.reveal(winners[0], taskId, D))
        .to.emit(hub, "ContributionRevealed")
        .withArgs(taskId, winners[0].address, D);
      const c = await hub.viewContribution(taskId, winners[0].address);
      expect([c.status, c.sealPrefix, c.stake]).to.deep.equal([
        Contribution.REVEALED,
        resultSeal(winners[0].address, taskId, D).slice(0, 24),
        WORKER_STAKE,
      ]);
      const t = await hub.viewTask(taskId);
      expect([
        t.status,
        t.contributorCount,
        t.winnerCount,
        t.revealCount,
        t.revealDeadline,
        t.consensusHash,
        t.resultDigest,
      ]).to.deep.equal([Status.REVEALING, 4n, 3n, 1n, before.revealDeadline, resultHash(taskId, D), D]);
      // The other contributions are untouched.
      for (const w of [winners[1], winners[2], dissenter]) {
        expect((await hub.viewContribution(taskId, w.address)).status).to.equal(Contribution.CONTRIBUTED);
      }
    });

    it("accepts the other winners after the first reveal", async function () {
      for (const [i, w] of winners.entries()) {
        await expect(d.reveal(w, taskId, D)).to.emit(hub, "ContributionRevealed").withArgs(taskId, w.address, D);
        expect((await hub.viewTask(taskId)).revealCount).to.equal(BigInt(i + 1));
      }
      const t = await hub.viewTask(taskId);
      expect([t.status, t.revealCount, t.consensusHash, t.resultDigest]).to.deep.equal([
        Status.REVEALING,
        3n,
        resultHash(taskId, D),
        D,
      ]);
      for (const w of winners) {
        expect((await hub.viewContribution(taskId, w.address)).status).to.equal(Contribution.REVEALED);
      }
    });

    it("moves no escrow funds", async function () {
      const accounts = await Promise.all(winners.map((w) => hub.accountOf(w.address)));
      await d.reveal(winners[0], taskId, D);
      expect(await hub.accountOf(winners[0].address)).to.deep.equal(accounts[0]);
      expect(accounts[0]).to.deep.equal([INITIAL_DEPOSIT - WORKER_STAKE, WORKER_STAKE]);
    });

    it("rejects a reveal on an ACTIVE task", async function () {
      const other = d.taskId(m.dealId, 1);
      await d.contribute(f.workers[0], m.dealId, 1, D);
      await expect(d.reveal(f.workers[0], other, D))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(other, Status.ACTIVE, bit(Status.REVEALING));
    });

    it("rejects a reveal on a task never initialized", async function () {
      const other = d.taskId(m.dealId, 1);
      await expect(d.reveal(f.workers[0], other, D))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(other, Status.UNSET, bit(Status.REVEALING));
    });

    it("rejects a reveal on a COMPLETED task", async function () {
      await d.reveal(winners[0], taskId, D);
      await d.reveal(winners[1], taskId, D);
      await d.advanceToRevealDeadline(taskId);
      await d.finalize(taskId);
      await expect(d.reveal(winners[2], taskId, D))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, Status.COMPLETED, bit(Status.REVEALING));
    });

    it("accepts a reveal in the last second before the reveal deadline", async function () {
      const deadline = await d.revealDeadline(taskId);
      await time.setNextBlockTimestamp(deadline - 1n);
      await expect(d.reveal(winners[0], taskId, D))
        .to.emit(hub, "ContributionRevealed")
        .withArgs(taskId, winners[0].address, D);
    });

    it("rejects a reveal at the reveal deadline", async function () {
      const deadline = await d.revealDeadline(taskId);
      await time.setNextBlockTimestamp(deadline);
      await expect(d.reveal(winners[0], taskId, D))
        .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
        .withArgs(taskId, deadline);
    });

    it("rejects a late winner at the reveal deadline after others revealed", async function () {
      await d.reveal(winners[0], taskId, D);
      const deadline = await d.revealDeadline(taskId);
      await time.setNextBlockTimestamp(deadline);
      await expect(d.reveal(winners[1], taskId, D))
        .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
        .withArgs(taskId, deadline);
    });

    it("rejects a reveal by a worker that did not contribute", async function () {
      for (const w of [f.other, f.workers[4], f.scheduler]) {
        await expect(d.reveal(w, taskId, D))
          .to.be.revertedWithCustomError(hub, "HubUnexpectedContributionStatus")
          .withArgs(taskId, w.address, Contribution.UNSET);
      }
    });

    it("rejects a second reveal by the same worker", async function () {
      await d.reveal(winners[0], taskId, D);
      await expect(d.reveal(winners[0], taskId, D))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedContributionStatus")
        .withArgs(taskId, winners[0].address, Contribution.REVEALED);
      expect((await hub.viewTask(taskId)).revealCount).to.equal(1n);
    });

    it("rejects a reveal by a winner rejected when the task was reopened", async function () {
      // Nobody reveals: the scheduler reopens, rejecting workers[0..2]; the dissenter's side then wins with E.
      await d.advanceToRevealDeadline(taskId);
      await hub.connect(f.scheduler).reopen(taskId);
      await d.contribute(f.workers[4], m.dealId, 0, E);
      await d.contribute(f.workers[5], m.dealId, 0, E);
      expect((await hub.viewTask(taskId)).status).to.equal(Status.REVEALING);
      for (const digest of [D, E]) {
        await expect(d.reveal(winners[0], taskId, digest))
          .to.be.revertedWithCustomError(hub, "HubUnexpectedContributionStatus")
          .withArgs(taskId, winners[0].address, Contribution.REJECTED);
      }
      await expect(d.reveal(dissenter, taskId, E))
        .to.emit(hub, "ContributionRevealed")
        .withArgs(taskId, dissenter.address, E);
    });

    it("rejects a wrong digest, before and after the first reveal", async function () {
      await expect(d.reveal(winners[0], taskId, digestOf("wrong")))
        .to.be.revertedWithCustomError(hub, "HubInvalidReveal")
        .withArgs(taskId, winners[0].address);
      await expect(d.reveal(winners[0], taskId, ZeroHash))
        .to.be.revertedWithCustomError(hub, "HubInvalidReveal")
        .withArgs(taskId, winners[0].address);
      // The consensus hash itself is not the digest.
      await expect(d.reveal(winners[0], taskId, resultHash(taskId, D)))
        .to.be.revertedWithCustomError(hub, "HubInvalidReveal")
        .withArgs(taskId, winners[0].address);
      await d.reveal(winners[0], taskId, D);
      await expect(d.reveal(winners[1], taskId, digestOf("wrong")))
        .to.be.revertedWithCustomError(hub, "HubInvalidReveal")
        .withArgs(taskId, winners[1].address);
      const c = await hub.viewContribution(taskId, winners[1].address);
      expect(c.status).to.equal(Contribution.CONTRIBUTED);
    });

    it("rejects a dissenting worker, with its own digest or with the consensus digest", async function () {
      for (const digest of [E, D]) {
        await expect(d.reveal(dissenter, taskId, digest))
          .to.be.revertedWithCustomError(hub, "HubInvalidReveal")
          .withArgs(taskId, dissenter.address);
      }
      await d.reveal(winners[0], taskId, D);
      for (const digest of [E, D]) {
        await expect(d.reveal(dissenter, taskId, digest))
          .to.be.revertedWithCustomError(hub, "HubInvalidReveal")
          .withArgs(taskId, dissenter.address);
      }
      expect((await hub.viewContribution(taskId, dissenter.address)).status).to.equal(Contribution.CONTRIBUTED);
    });
  });

  describe("copiers", function () {
    it("stops a copier that committed the winners' hash with a seal it made up, even with the right digest", async function () {
      // Trust 4 on task 1: two honest workers, a copier with a random seal, a copier replaying an honest seal.
      const m4 = await d.match({ request: { trust: 4n } });
      const task = d.taskId(m4.dealId, 0);
      const [honest1, honest2, copier, replayer] = f.workers.slice(0, 4);
      const h = resultHash(task, D);
      await d.contribute(honest1, m4.dealId, 0, D);
      await f.hub
        .connect(copier)
        .contribute(m4.dealId, 0, h, hexlify(randomBytes(32)), await d.authorize(copier, task));
      await f.hub
        .connect(replayer)
        .contribute(m4.dealId, 0, h, resultSeal(honest1.address, task, D), await d.authorize(replayer, task));
      await d.contribute(honest2, m4.dealId, 0, D);
      const t = await hub.viewTask(task);
      expect([t.status, t.winnerCount, t.consensusHash]).to.deep.equal([Status.REVEALING, 4n, h]);

      // Before anyone revealed: the digest matches the consensus hash but not the copiers' seals.
      for (const w of [copier, replayer]) {
        await expect(d.reveal(w, task, D)).to.be.revertedWithCustomError(hub, "HubInvalidReveal").withArgs(task, w.address);
      }
      // After an honest reveal made D public, the copiers still cannot reveal it.
      await d.reveal(honest1, task, D);
      for (const w of [copier, replayer]) {
        await expect(d.reveal(w, task, D)).to.be.revertedWithCustomError(hub, "HubInvalidReveal").withArgs(task, w.address);
        expect((await hub.viewContribution(task, w.address)).status).to.equal(Contribution.CONTRIBUTED);
      }
      await d.reveal(honest2, task, D);

      // At finalization the copiers lose their stakes; the honest workers are paid.
      await d.advanceToRevealDeadline(task);
      const copierAccounts = await Promise.all([copier, replayer].map((w) => hub.accountOf(w.address)));
      // Each copier holds two locked stakes: one here, one on the first deal's task.
      for (const a of copierAccounts) expect(a.frozen).to.equal(2n * WORKER_STAKE);
      await d.finalize(task);
      for (const [i, w] of [copier, replayer].entries()) {
        expect(await hub.accountOf(w.address)).to.deep.equal([copierAccounts[i].balance, WORKER_STAKE]);
      }
      for (const w of [honest1, honest2]) {
        expect((await hub.viewContribution(task, w.address)).status).to.equal(Contribution.REVEALED);
      }
    });
  });

  describe("workers outside the winning group", function () {
    it("refuses a worker that committed another resultHash with a seal made for the consensus digest, so it cannot dilute the winners", async function () {
      // Trust 3 on a fresh deal: the mole commits E's resultHash (it is not in D's group) but a seal computed for D,
      // then workers[0..2] commit D and reach consensus.
      const m3 = await d.match({ request: { trust: 3n } });
      const task = d.taskId(m3.dealId, 0);
      const [w0, w1, w2] = winners;
      const mole = f.workers[4];
      await hub
        .connect(mole)
        .contribute(m3.dealId, 0, resultHash(task, E), resultSeal(mole.address, task, D), await d.authorize(mole, task));
      for (const w of [w0, w1, w2]) await d.contribute(w, m3.dealId, 0, D);
      const t = await hub.viewTask(task);
      expect([t.status, t.contributorCount, t.winnerCount, t.consensusHash]).to.deep.equal([
        Status.REVEALING,
        4n,
        3n,
        resultHash(task, D),
      ]);

      // D matches the consensus hash and the mole's seal, but the mole is not a member of the winning group.
      for (const digest of [D, E]) {
        await expect(d.reveal(mole, task, digest))
          .to.be.revertedWithCustomError(hub, "HubInvalidReveal")
          .withArgs(task, mole.address);
      }
      // Not after a winner made D public either, directly or relayed by the scheduler.
      await d.reveal(w0, task, D);
      await expect(d.reveal(mole, task, D)).to.be.revertedWithCustomError(hub, "HubInvalidReveal").withArgs(task, mole.address);
      await expect(hub.connect(f.scheduler).revealBatch([await d.relayedReveal(mole, task, D)]))
        .to.be.revertedWithCustomError(hub, "HubInvalidReveal")
        .withArgs(task, mole.address);
      expect((await hub.viewContribution(task, mole.address)).status).to.equal(Contribution.CONTRIBUTED);

      // The mole's reveal cannot stand in for a winner's: before the reveal deadline, finalize still waits for w2.
      await d.reveal(w1, task, D);
      expect((await hub.viewTask(task)).revealCount).to.equal(2n);
      const deadline = await d.revealDeadline(task);
      await time.setNextBlockTimestamp(deadline - 2n);
      await expect(d.finalize(task)).to.be.revertedWithCustomError(hub, "HubRevealsPending").withArgs(task, 2n, 3n);

      // Once w2 revealed too (in the last second), finalize pays the three real winners 9 / 3 = 3 each (not 9 / 4)
      // and seizes the mole's stake: kitty 0 + 3, reward min(3, max(0.1, 0.3), seized 3) = 0.3.
      await time.setNextBlockTimestamp(deadline - 1n);
      await d.reveal(w2, task, D);
      const before = await ledger(f);
      expect(before.kitty).to.equal(0n);
      await d.finalize(task);
      const ether = parseEther;
      const win = { balance: WORKER_STAKE + ether("3"), frozen: -WORKER_STAKE };
      expectMoves(
        before,
        await ledger(f),
        {
          requester: { frozen: -TASK_PRICE },
          appOwner: { balance: PRICES.app },
          datasetOwner: { balance: PRICES.dataset },
          w0: win,
          w1: win,
          w2: win,
          w4: { frozen: -WORKER_STAKE },
          scheduler: { balance: SCHEDULER_STAKE + ether("1") + ether("0.3"), frozen: -SCHEDULER_STAKE },
        },
        WORKER_STAKE - ether("0.3"),
      );
      expect([(await hub.viewTask(task)).status, (await hub.viewTask(task)).revealCount]).to.deep.equal([
        Status.COMPLETED,
        3n,
      ]);
      expect((await hub.viewContribution(task, mole.address)).status).to.equal(Contribution.CONTRIBUTED);
    });
  });

  describe("revealBatch", function () {
    it("relays reveals signed by the winners", async function () {
      const items = [];
      for (const w of winners) items.push(await d.relayedReveal(w, taskId, D));
      const tx = await hub.connect(f.scheduler).revealBatch(items);
      for (const w of winners) await expect(tx).to.emit(hub, "ContributionRevealed").withArgs(taskId, w.address, D);
      expect(await eventNames(hub, tx)).to.deep.equal([
        "ContributionRevealed",
        "ContributionRevealed",
        "ContributionRevealed",
      ]);
      const t = await hub.viewTask(taskId);
      expect([t.status, t.revealCount, t.resultDigest, t.consensusHash]).to.deep.equal([
        Status.REVEALING,
        3n,
        D,
        resultHash(taskId, D),
      ]);
      for (const w of winners) {
        expect((await hub.viewContribution(taskId, w.address)).status).to.equal(Contribution.REVEALED);
      }
    });

    it("relays reveals for several tasks of the deal", async function () {
      const other = d.taskId(m.dealId, 1);
      for (const w of winners) await d.contribute(w, m.dealId, 1, E);
      const items = [await d.relayedReveal(winners[0], taskId, D), await d.relayedReveal(winners[1], other, E)];
      await hub.connect(f.scheduler).revealBatch(items);
      expect((await hub.viewTask(taskId)).resultDigest).to.equal(D);
      expect((await hub.viewTask(other)).resultDigest).to.equal(E);
    });

    it("rejects a batch sent by anyone but the deal's scheduler", async function () {
      const item = await d.relayedReveal(winners[0], taskId, D);
      for (const caller of [f.other, winners[0], f.poolOwner]) {
        await expect(hub.connect(caller).revealBatch([item]))
          .to.be.revertedWithCustomError(hub, "HubNotScheduler")
          .withArgs(m.dealId, caller.address);
      }
    });

    it("rejects a reveal signed by another key", async function () {
      const good = await d.relayedReveal(winners[0], taskId, D);
      const byOther = await d.relayedReveal(winners[1], taskId, D);
      await expect(hub.connect(f.scheduler).revealBatch([good, { ...good, signature: byOther.signature }]))
        .to.be.revertedWithCustomError(hub, "HubInvalidWorkerSignature")
        .withArgs(taskId, winners[0].address);
      // The batch reverted as a whole.
      expect((await hub.viewTask(taskId)).revealCount).to.equal(0n);
      // A signature of one worker cannot be relayed for another.
      await expect(hub.connect(f.scheduler).revealBatch([{ ...good, worker: winners[1].address }]))
        .to.be.revertedWithCustomError(hub, "HubInvalidWorkerSignature")
        .withArgs(taskId, winners[1].address);
    });

    it("rejects a relayed reveal whose digest was tampered with", async function () {
      const good = await d.relayedReveal(winners[0], taskId, D);
      await expect(hub.connect(f.scheduler).revealBatch([{ ...good, resultDigest: E }]))
        .to.be.revertedWithCustomError(hub, "HubInvalidWorkerSignature")
        .withArgs(taskId, winners[0].address);
    });

    it("rejects a properly signed reveal of a wrong digest", async function () {
      const wrong = await d.relayedReveal(winners[0], taskId, E);
      await expect(hub.connect(f.scheduler).revealBatch([wrong]))
        .to.be.revertedWithCustomError(hub, "HubInvalidReveal")
        .withArgs(taskId, winners[0].address);
    });

    it("rejects a relayed reveal for a task that is not REVEALING, naming its status", async function () {
      const never = d.taskId(m.dealId, 1);
      await expect(hub.connect(f.scheduler).revealBatch([await d.relayedReveal(winners[0], never, D)]))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(never, Status.UNSET, bit(Status.REVEALING));
      await d.contribute(winners[0], m.dealId, 1, D);
      await expect(hub.connect(f.scheduler).revealBatch([await d.relayedReveal(winners[0], never, D)]))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(never, Status.ACTIVE, bit(Status.REVEALING));
    });

    it("rejects an empty batch", async function () {
      await expect(hub.connect(f.scheduler).revealBatch([])).to.be.revertedWithCustomError(hub, "HubEmptyBatch").withArgs();
    });

    it("applies the reveal deadline to relayed reveals", async function () {
      const item = await d.relayedReveal(winners[0], taskId, D);
      const deadline = await d.revealDeadline(taskId);
      await time.setNextBlockTimestamp(deadline);
      await expect(hub.connect(f.scheduler).revealBatch([item]))
        .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
        .withArgs(taskId, deadline);
    });
  });
});
