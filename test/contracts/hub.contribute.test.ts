/**
 * Hub.contribute and Hub.contributeBatch: authorized workers commit (resultHash, resultSeal), lock their stake, and
 * the task enters REVEALING once `max(trust, 1)` commitments share a resultHash.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { HDNodeWallet, Signer, ZeroHash, parseEther, toBeHex } from "ethers";
import type { Hub } from "../../typechain-types";
import { Fixture, INITIAL_DEPOSIT, TIMEREF, WORKER_STAKE, deployFixture } from "../helpers/fixture";
import { Matched, TaskDriver, digestOf } from "../helpers/driver";
import { Contribution, Status, bit } from "../helpers/status";
import { eventNames } from "../helpers/views";
import { resultHash, resultSeal, signMessage } from "../../sdk/eip712";

const REVEAL_WINDOW = 2n * TIMEREF;

type Actor = Signer & { address: string };

/** The first 11 bytes of a seal, as `viewContribution` reports them. */
function prefix(seal: string): string {
  return seal.slice(0, 2 + 22);
}

describe("Hub.contribute", function () {
  let f: Fixture;
  let d: TaskDriver;
  let hub: Hub;

  async function fresh() {
    f = await loadFixture(deployFixture);
    d = new TaskDriver(f);
    hub = f.hub;
  }

  async function match(trust: bigint, volume = 2n): Promise<Matched> {
    return d.match({ request: { trust, volume } });
  }

  /** Contributes as any signer (fixture signer or fresh wallet) with the scheduler's authorization. */
  async function contributeAs(worker: Actor, dealId: string, index: number, digest: string) {
    const taskId = d.taskId(dealId, index);
    const auth = await signMessage(f.scheduler, f.domain, "Authorization", { worker: worker.address, taskId });
    return hub
      .connect(worker)
      .contribute(dealId, index, resultHash(taskId, digest), resultSeal(worker.address, taskId, digest), auth);
  }

  /** Contributes with an explicit hash and seal. */
  async function commit(worker: HardhatEthersSigner, dealId: string, index: number, h: string, s: string) {
    const taskId = d.taskId(dealId, index);
    return hub.connect(worker).contribute(dealId, index, h, s, await d.authorize(worker, taskId));
  }

  /** Fresh wallets with gas, tokens and an escrow deposit. */
  async function fundedWallets(n: number): Promise<HDNodeWallet[]> {
    const wallets: HDNodeWallet[] = [];
    for (let i = 0; i < n; i++) {
      const w = ethers.Wallet.createRandom().connect(ethers.provider);
      await ethers.provider.send("hardhat_setBalance", [w.address, toBeHex(parseEther("10"))]);
      await f.token.mint(w.address, INITIAL_DEPOSIT);
      await f.token.connect(w).approve(await hub.getAddress(), INITIAL_DEPOSIT);
      await hub.connect(w).deposit(INITIAL_DEPOSIT);
      wallets.push(w);
    }
    return wallets;
  }

  beforeEach(fresh);

  describe("contribute", function () {
    it("initializes the task lazily on the first contribution", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      const { resultHash: h } = d.commitment(f.workers[0], taskId, digestOf("r"));
      const tx = d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
      await expect(tx).to.emit(hub, "TaskInitialized").withArgs(taskId, m.dealId, 0n);
      await expect(tx).to.emit(hub, "ContributionCommitted").withArgs(taskId, f.workers[0].address, h);
      expect(await eventNames(hub, await tx)).to.deep.equal(["TaskInitialized", "ContributionCommitted"]);
      const t = await hub.viewTask(taskId);
      expect([t.status, t.dealId, t.index, t.contributorCount, t.winnerCount, t.revealDeadline, t.consensusHash]).to.deep.equal(
        [Status.ACTIVE, m.dealId, 0n, 1n, 0n, 0n, ZeroHash],
      );
    });

    it("records the contribution with its seal prefix and stake", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      const { resultSeal: s } = d.commitment(f.workers[0], taskId, digestOf("r"));
      await d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
      const c = await hub.viewContribution(taskId, f.workers[0].address);
      expect([c.status, c.sealPrefix, c.stake]).to.deep.equal([Contribution.CONTRIBUTED, prefix(s), WORKER_STAKE]);
      expect(await hub.workerStakeOf(m.dealId)).to.equal(WORKER_STAKE);
      expect(await hub.contributorsOf(taskId)).to.deep.equal([f.workers[0].address]);
      const none = await hub.viewContribution(taskId, f.workers[1].address);
      expect([none.status, none.sealPrefix, none.stake]).to.deep.equal([Contribution.UNSET, "0x" + "00".repeat(11), 0n]);
    });

    it("locks the worker's stake in escrow", async function () {
      const m = await match(3n);
      const worker = f.workers[0].address;
      const [balance, frozen] = await hub.accountOf(worker);
      const held = await f.token.balanceOf(await hub.getAddress());
      await d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
      expect(await hub.accountOf(worker)).to.deep.equal([balance - WORKER_STAKE, frozen + WORKER_STAKE]);
      expect(await hub.balanceOf(worker)).to.equal(INITIAL_DEPOSIT - WORKER_STAKE);
      expect(await hub.frozenOf(worker)).to.equal(WORKER_STAKE);
      expect(await f.token.balanceOf(await hub.getAddress())).to.equal(held);
    });

    it("does not initialize the task again on later contributions", async function () {
      const m = await match(3n);
      await d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
      const tx = await d.contribute(f.workers[1], m.dealId, 0, digestOf("r"));
      expect(await eventNames(hub, tx)).to.deep.equal(["ContributionCommitted"]);
      expect(await hub.contributorsOf(d.taskId(m.dealId, 0))).to.deep.equal([
        f.workers[0].address,
        f.workers[1].address,
      ]);
    });

    it("accepts a contribution to a task the scheduler initialized", async function () {
      const m = await match(3n);
      await hub.connect(f.scheduler).initialize(m.dealId, 0);
      const tx = await d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
      expect(await eventNames(hub, tx)).to.deep.equal(["ContributionCommitted"]);
    });

    it("reaches consensus at trust 3 on the third agreeing contribution", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      const digest = digestOf("r");
      const h = d.commitment(f.workers[0], taskId, digest).resultHash;
      for (const w of f.workers.slice(0, 2)) {
        const tx = await d.contribute(w, m.dealId, 0, digest);
        expect(await eventNames(hub, tx)).to.not.include("ConsensusReached");
        expect((await hub.viewTask(taskId)).status).to.equal(Status.ACTIVE);
      }
      const at = (await time.latest()) + 10;
      await time.setNextBlockTimestamp(at);
      await expect(d.contribute(f.workers[2], m.dealId, 0, digest))
        .to.emit(hub, "ConsensusReached")
        .withArgs(taskId, h, BigInt(at) + REVEAL_WINDOW);
      const t = await hub.viewTask(taskId);
      expect([t.status, t.contributorCount, t.winnerCount, t.revealCount, t.revealDeadline, t.consensusHash, t.resultDigest]).to.deep.equal(
        [Status.REVEALING, 3n, 3n, 0n, BigInt(at) + REVEAL_WINDOW, h, ZeroHash],
      );
      expect(await hub.frozenOf(f.workers[2].address)).to.equal(WORKER_STAKE);
    });

    it("reaches consensus on the first contribution at trust 1", async function () {
      const m = await match(1n);
      const taskId = d.taskId(m.dealId, 0);
      const h = d.commitment(f.workers[0], taskId, digestOf("r")).resultHash;
      const at = (await time.latest()) + 5;
      await time.setNextBlockTimestamp(at);
      const tx = await d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
      await expect(tx).to.emit(hub, "ConsensusReached").withArgs(taskId, h, BigInt(at) + REVEAL_WINDOW);
      expect(await eventNames(hub, tx)).to.deep.equal(["TaskInitialized", "ContributionCommitted", "ConsensusReached"]);
      const t = await hub.viewTask(taskId);
      expect([t.status, t.winnerCount, t.consensusHash]).to.deep.equal([Status.REVEALING, 1n, h]);
    });

    it("reaches consensus on the first contribution at trust 0", async function () {
      const m = await match(0n);
      expect((await hub.viewDeal(m.dealId)).trust).to.equal(0n);
      const taskId = d.taskId(m.dealId, 0);
      const h = d.commitment(f.workers[0], taskId, digestOf("r")).resultHash;
      const at = (await time.latest()) + 5;
      await time.setNextBlockTimestamp(at);
      await expect(d.contribute(f.workers[0], m.dealId, 0, digestOf("r")))
        .to.emit(hub, "ConsensusReached")
        .withArgs(taskId, h, BigInt(at) + REVEAL_WINDOW);
      const t = await hub.viewTask(taskId);
      expect([t.status, t.winnerCount]).to.deep.equal([Status.REVEALING, 1n]);
    });

    it("does not count dissenting contributions toward the consensus group", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      const [a, b] = [digestOf("a"), digestOf("b")];
      await d.contribute(f.workers[0], m.dealId, 0, a);
      await d.contribute(f.workers[1], m.dealId, 0, b);
      await d.contribute(f.workers[2], m.dealId, 0, a);
      await d.contribute(f.workers[3], m.dealId, 0, b);
      const t = await hub.viewTask(taskId);
      expect([t.status, t.contributorCount, t.winnerCount, t.consensusHash]).to.deep.equal([Status.ACTIVE, 4n, 0n, ZeroHash]);
      const at = (await time.latest()) + 10;
      await time.setNextBlockTimestamp(at);
      await expect(d.contribute(f.workers[4], m.dealId, 0, a))
        .to.emit(hub, "ConsensusReached")
        .withArgs(taskId, resultHash(taskId, a), BigInt(at) + REVEAL_WINDOW);
      const after = await hub.viewTask(taskId);
      expect([after.status, after.contributorCount, after.winnerCount, after.consensusHash]).to.deep.equal([
        Status.REVEALING,
        5n,
        3n,
        resultHash(taskId, a),
      ]);
      // Every contributor, winners and dissenters, has its stake locked.
      for (const w of f.workers.slice(0, 5)) expect(await hub.frozenOf(w.address)).to.equal(WORKER_STAKE);
    });

    it("lets the group that dissented first win", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      await d.contribute(f.workers[0], m.dealId, 0, digestOf("a"));
      await d.contribute(f.workers[1], m.dealId, 0, digestOf("b"));
      await d.contribute(f.workers[2], m.dealId, 0, digestOf("b"));
      await d.contribute(f.workers[3], m.dealId, 0, digestOf("b"));
      expect((await hub.viewTask(taskId)).consensusHash).to.equal(resultHash(taskId, digestOf("b")));
    });

    it("keeps the tasks of a deal independent", async function () {
      const m = await match(3n);
      const digest = digestOf("r");
      await d.contribute(f.workers[0], m.dealId, 0, digest);
      await d.contribute(f.workers[1], m.dealId, 0, digest);
      await d.contribute(f.workers[2], m.dealId, 1, digest);
      expect((await hub.viewTask(d.taskId(m.dealId, 0))).status).to.equal(Status.ACTIVE);
      expect((await hub.viewTask(d.taskId(m.dealId, 1))).contributorCount).to.equal(1n);
      // The same worker contributes to both tasks; it locks one stake per contribution.
      await d.contribute(f.workers[0], m.dealId, 1, digest);
      expect(await hub.frozenOf(f.workers[0].address)).to.equal(2n * WORKER_STAKE);
    });

    describe("authorization", function () {
      it("rejects an authorization signed by someone other than the scheduler", async function () {
        const m = await match(3n);
        const taskId = d.taskId(m.dealId, 0);
        const w = f.workers[0];
        const { resultHash: h, resultSeal: s } = d.commitment(w, taskId, digestOf("r"));
        for (const signer of [f.other, f.poolOwner, w]) {
          const auth = await d.authorize(w, taskId, signer);
          await expect(hub.connect(w).contribute(m.dealId, 0, h, s, auth))
            .to.be.revertedWithCustomError(hub, "HubInvalidAuthorization")
            .withArgs(taskId, w.address);
        }
      });

      it("rejects an authorization given to another worker", async function () {
        const m = await match(3n);
        const taskId = d.taskId(m.dealId, 0);
        const w = f.workers[0];
        const { resultHash: h, resultSeal: s } = d.commitment(w, taskId, digestOf("r"));
        const auth = await d.authorize(f.workers[1], taskId);
        await expect(hub.connect(w).contribute(m.dealId, 0, h, s, auth))
          .to.be.revertedWithCustomError(hub, "HubInvalidAuthorization")
          .withArgs(taskId, w.address);
      });

      it("rejects an authorization given for another task", async function () {
        const m = await match(3n);
        const taskId = d.taskId(m.dealId, 0);
        const w = f.workers[0];
        const { resultHash: h, resultSeal: s } = d.commitment(w, taskId, digestOf("r"));
        const auth = await d.authorize(w, d.taskId(m.dealId, 1));
        await expect(hub.connect(w).contribute(m.dealId, 0, h, s, auth))
          .to.be.revertedWithCustomError(hub, "HubInvalidAuthorization")
          .withArgs(taskId, w.address);
      });

      it("rejects an empty or malformed authorization", async function () {
        const m = await match(3n);
        const taskId = d.taskId(m.dealId, 0);
        const w = f.workers[0];
        const { resultHash: h, resultSeal: s } = d.commitment(w, taskId, digestOf("r"));
        const auth = await d.authorize(w, taskId);
        for (const bad of ["0x", auth.slice(0, -2), "0x" + "00".repeat(65)]) {
          await expect(hub.connect(w).contribute(m.dealId, 0, h, s, bad))
            .to.be.revertedWithCustomError(hub, "HubInvalidAuthorization")
            .withArgs(taskId, w.address);
        }
      });
    });

    it("rejects a second contribution by the same worker", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      await d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
      await d.contribute(f.workers[1], m.dealId, 0, digestOf("r"));
      for (const digest of [digestOf("r"), digestOf("other")]) {
        await expect(d.contribute(f.workers[0], m.dealId, 0, digest))
          .to.be.revertedWithCustomError(hub, "HubAlreadyContributed")
          .withArgs(taskId, f.workers[0].address);
      }
      expect(await hub.frozenOf(f.workers[0].address)).to.equal(WORKER_STAKE);
    });

    it("rejects a 33rd contribution at trust 32", async function () {
      const extra = await fundedWallets(27);
      const m = await match(32n, 1n);
      const taskId = d.taskId(m.dealId, 0);
      const workers: Actor[] = [...f.workers, ...extra];
      expect(workers.length).to.equal(33);
      for (let i = 0; i < 32; i++) await contributeAs(workers[i], m.dealId, 0, digestOf(`result ${i}`));
      const t = await hub.viewTask(taskId);
      expect([t.status, t.contributorCount]).to.deep.equal([Status.ACTIVE, 32n]);
      expect(await hub.MAX_CONTRIBUTIONS()).to.equal(32n);
      await expect(contributeAs(workers[32], m.dealId, 0, digestOf("result 32")))
        .to.be.revertedWithCustomError(hub, "HubTooManyContributions")
        .withArgs(taskId);
      // Also for a digest that would complete no group, and before the duplicate check.
      await expect(contributeAs(workers[0], m.dealId, 0, digestOf("result 0")))
        .to.be.revertedWithCustomError(hub, "HubTooManyContributions")
        .withArgs(taskId);
      expect(await hub.frozenOf(workers[32].address)).to.equal(0n);
    });

    it("rejects a zero result hash and a zero seal", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      const w = f.workers[0];
      const { resultHash: h, resultSeal: s } = d.commitment(w, taskId, digestOf("r"));
      for (const [hh, ss] of [
        [ZeroHash, s],
        [h, ZeroHash],
        [ZeroHash, ZeroHash],
      ]) {
        await expect(commit(w, m.dealId, 0, hh, ss))
          .to.be.revertedWithCustomError(hub, "HubEmptyCommitment")
          .withArgs(taskId);
      }
      expect((await hub.viewTask(taskId)).status).to.equal(Status.UNSET);
    });

    it("rejects a worker whose free balance cannot cover the stake", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      // `other` holds tokens but never deposited.
      const auth = await d.authorize(f.other, taskId);
      const { resultHash: h, resultSeal: s } = d.commitment(f.other, taskId, digestOf("r"));
      await expect(hub.connect(f.other).contribute(m.dealId, 0, h, s, auth))
        .to.be.revertedWithCustomError(hub, "ClerkInsufficientBalance")
        .withArgs(f.other.address, 0n, WORKER_STAKE);
      // A worker with a deposit just under the stake.
      const w = f.workers[0];
      const left = WORKER_STAKE - 1n;
      await hub.connect(w).withdraw(INITIAL_DEPOSIT - left);
      await expect(d.contribute(w, m.dealId, 0, digestOf("r")))
        .to.be.revertedWithCustomError(hub, "ClerkInsufficientBalance")
        .withArgs(w.address, left, WORKER_STAKE);
      // The reverted lazy initialization left the task untouched.
      expect((await hub.viewTask(taskId)).status).to.equal(Status.UNSET);
    });

    it("accepts a worker whose free balance is exactly the stake", async function () {
      const m = await match(3n);
      const w = f.workers[0];
      await hub.connect(w).withdraw(INITIAL_DEPOSIT - WORKER_STAKE);
      await d.contribute(w, m.dealId, 0, digestOf("r"));
      expect(await hub.accountOf(w.address)).to.deep.equal([0n, WORKER_STAKE]);
    });

    it("rejects contributions once consensus is reached (REVEALING)", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      for (const w of f.workers.slice(0, 3)) await d.contribute(w, m.dealId, 0, digestOf("r"));
      await expect(d.contribute(f.workers[3], m.dealId, 0, digestOf("r")))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, Status.REVEALING, bit(Status.ACTIVE));
    });

    it("rejects contributions to a COMPLETED task", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      const digest = digestOf("r");
      for (const w of f.workers.slice(0, 3)) await d.contribute(w, m.dealId, 0, digest);
      for (const w of f.workers.slice(0, 3)) await d.reveal(w, taskId, digest);
      await d.finalize(taskId);
      await expect(d.contribute(f.workers[3], m.dealId, 0, digest))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, Status.COMPLETED, bit(Status.ACTIVE));
    });

    it("rejects contributions to a FAILED task", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      await d.advanceToFinalDeadline(m.dealId);
      await hub.claim(m.dealId, 0);
      await expect(d.contribute(f.workers[0], m.dealId, 0, digestOf("r")))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, Status.FAILED, bit(Status.ACTIVE));
    });

    it("rejects an unknown deal", async function () {
      const m = await match(3n);
      const unknown = d.nextDealId(m);
      const w = f.workers[0];
      const taskId = d.taskId(unknown, 0);
      const { resultHash: h, resultSeal: s } = d.commitment(w, taskId, digestOf("r"));
      await expect(hub.connect(w).contribute(unknown, 0, h, s, await d.authorize(w, taskId)))
        .to.be.revertedWithCustomError(hub, "HubUnknownDeal")
        .withArgs(unknown);
    });

    it("rejects an index out of the deal's range", async function () {
      const m = await match(3n, 2n);
      const w = f.workers[0];
      const taskId = d.taskId(m.dealId, 2);
      const { resultHash: h, resultSeal: s } = d.commitment(w, taskId, digestOf("r"));
      await expect(hub.connect(w).contribute(m.dealId, 2, h, s, await d.authorize(w, taskId)))
        .to.be.revertedWithCustomError(hub, "HubTaskIndexOutOfRange")
        .withArgs(m.dealId, 2n, 2n);
    });

    describe("contribution deadline", function () {
      it("accepts a first contribution in the last second before the deadline", async function () {
        const m = await match(3n);
        const deadline = await d.contributionDeadline(m.dealId);
        await time.setNextBlockTimestamp(deadline - 1n);
        await expect(d.contribute(f.workers[0], m.dealId, 0, digestOf("r")))
          .to.emit(hub, "TaskInitialized")
          .withArgs(d.taskId(m.dealId, 0), m.dealId, 0n);
      });

      it("rejects a first contribution at the deadline", async function () {
        const m = await match(3n);
        const deadline = await d.contributionDeadline(m.dealId);
        await time.setNextBlockTimestamp(deadline);
        await expect(d.contribute(f.workers[0], m.dealId, 0, digestOf("r")))
          .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
          .withArgs(d.taskId(m.dealId, 0), deadline);
      });

      it("accepts a contribution to an active task in the last second before the deadline", async function () {
        const m = await match(3n);
        const taskId = d.taskId(m.dealId, 0);
        await d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
        const deadline = await d.contributionDeadline(m.dealId);
        await time.setNextBlockTimestamp(deadline - 1n);
        await expect(d.contribute(f.workers[1], m.dealId, 0, digestOf("r")))
          .to.emit(hub, "ContributionCommitted")
          .withArgs(taskId, f.workers[1].address, resultHash(taskId, digestOf("r")));
      });

      it("reaches consensus in the last second with a full reveal window", async function () {
        const m = await match(3n);
        const taskId = d.taskId(m.dealId, 0);
        for (const w of f.workers.slice(0, 2)) await d.contribute(w, m.dealId, 0, digestOf("r"));
        const deadline = await d.contributionDeadline(m.dealId);
        await time.setNextBlockTimestamp(deadline - 1n);
        await expect(d.contribute(f.workers[2], m.dealId, 0, digestOf("r")))
          .to.emit(hub, "ConsensusReached")
          .withArgs(taskId, resultHash(taskId, digestOf("r")), deadline - 1n + REVEAL_WINDOW);
      });

      it("rejects a contribution to an active task at the deadline", async function () {
        const m = await match(3n);
        await d.contribute(f.workers[0], m.dealId, 0, digestOf("r"));
        const deadline = await d.contributionDeadline(m.dealId);
        await time.setNextBlockTimestamp(deadline);
        await expect(d.contribute(f.workers[1], m.dealId, 0, digestOf("r")))
          .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
          .withArgs(d.taskId(m.dealId, 0), deadline);
      });

      it("rejects a contribution to a task the scheduler initialized, at the deadline", async function () {
        const m = await match(3n);
        await hub.connect(f.scheduler).initialize(m.dealId, 1);
        const deadline = await d.contributionDeadline(m.dealId);
        await time.setNextBlockTimestamp(deadline);
        await expect(d.contribute(f.workers[0], m.dealId, 1, digestOf("r")))
          .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
          .withArgs(d.taskId(m.dealId, 1), deadline);
      });
    });
  });

  describe("contributeBatch", function () {
    it("relays contributions signed by the workers, locking the workers' stakes", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      const digest = digestOf("r");
      const items = [
        await d.relayedContribution(f.workers[0], m.dealId, 0, digest),
        await d.relayedContribution(f.workers[1], m.dealId, 0, digest),
      ];
      const schedulerBefore = await hub.accountOf(f.scheduler.address);
      const tx = await hub.connect(f.scheduler).contributeBatch(items);
      await expect(tx).to.emit(hub, "TaskInitialized").withArgs(taskId, m.dealId, 0n);
      await expect(tx)
        .to.emit(hub, "ContributionCommitted")
        .withArgs(taskId, f.workers[0].address, resultHash(taskId, digest));
      await expect(tx)
        .to.emit(hub, "ContributionCommitted")
        .withArgs(taskId, f.workers[1].address, resultHash(taskId, digest));
      expect(await eventNames(hub, tx)).to.deep.equal([
        "TaskInitialized",
        "ContributionCommitted",
        "ContributionCommitted",
      ]);
      for (const w of f.workers.slice(0, 2)) {
        const c = await hub.viewContribution(taskId, w.address);
        expect([c.status, c.sealPrefix, c.stake]).to.deep.equal([
          Contribution.CONTRIBUTED,
          prefix(resultSeal(w.address, taskId, digest)),
          WORKER_STAKE,
        ]);
        expect(await hub.accountOf(w.address)).to.deep.equal([INITIAL_DEPOSIT - WORKER_STAKE, WORKER_STAKE]);
      }
      expect(await hub.accountOf(f.scheduler.address)).to.deep.equal(schedulerBefore);
      const t = await hub.viewTask(taskId);
      expect([t.status, t.contributorCount]).to.deep.equal([Status.ACTIVE, 2n]);
    });

    it("reaches consensus inside a batch", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      const digest = digestOf("r");
      const items = [];
      items.push(await d.relayedContribution(f.workers[0], m.dealId, 0, digestOf("dissent")));
      for (const w of f.workers.slice(1, 4)) items.push(await d.relayedContribution(w, m.dealId, 0, digest));
      const at = (await time.latest()) + 3;
      await time.setNextBlockTimestamp(at);
      const tx = await hub.connect(f.scheduler).contributeBatch(items);
      await expect(tx)
        .to.emit(hub, "ConsensusReached")
        .withArgs(taskId, resultHash(taskId, digest), BigInt(at) + REVEAL_WINDOW);
      const t = await hub.viewTask(taskId);
      expect([t.status, t.contributorCount, t.winnerCount, t.consensusHash]).to.deep.equal([
        Status.REVEALING,
        4n,
        3n,
        resultHash(taskId, digest),
      ]);
    });

    it("rejects the rest of a batch that goes on after consensus", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      const items = [];
      for (const w of f.workers.slice(0, 4)) items.push(await d.relayedContribution(w, m.dealId, 0, digestOf("r")));
      await expect(hub.connect(f.scheduler).contributeBatch(items))
        .to.be.revertedWithCustomError(hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, Status.REVEALING, bit(Status.ACTIVE));
    });

    it("relays a batch over two deals of the same scheduler", async function () {
      const m1 = await match(1n);
      const m2 = await match(3n);
      const items = [
        await d.relayedContribution(f.workers[0], m1.dealId, 0, digestOf("one")),
        await d.relayedContribution(f.workers[0], m2.dealId, 1, digestOf("two")),
        await d.relayedContribution(f.workers[1], m2.dealId, 1, digestOf("two")),
      ];
      const tx = await hub.connect(f.scheduler).contributeBatch(items);
      expect(await eventNames(hub, tx)).to.deep.equal([
        "TaskInitialized",
        "ContributionCommitted",
        "ConsensusReached",
        "TaskInitialized",
        "ContributionCommitted",
        "ContributionCommitted",
      ]);
      expect((await hub.viewTask(d.taskId(m1.dealId, 0))).status).to.equal(Status.REVEALING);
      const t2 = await hub.viewTask(d.taskId(m2.dealId, 1));
      expect([t2.status, t2.contributorCount]).to.deep.equal([Status.ACTIVE, 2n]);
      expect(await hub.frozenOf(f.workers[0].address)).to.equal(2n * WORKER_STAKE);
    });

    it("rejects a batch sent by anyone but the deal's scheduler", async function () {
      const m = await match(3n);
      const item = await d.relayedContribution(f.workers[0], m.dealId, 0, digestOf("r"));
      for (const caller of [f.other, f.workers[0], f.poolOwner]) {
        await expect(hub.connect(caller).contributeBatch([item]))
          .to.be.revertedWithCustomError(hub, "HubNotScheduler")
          .withArgs(m.dealId, caller.address);
      }
    });

    it("checks the scheduler of every deal in a batch", async function () {
      const m1 = await match(3n);
      // A second pool whose scheduler is `other`.
      await f.workerpools.register(f.poolOwner.address, "pool 2", f.other.address, 30, 10);
      // Registered by someone else: `other` must consent to serve (and stake for) the pool before it matches.
      await f.workerpools.connect(f.other).setSchedulerConsent(2, true);
      await hub.connect(f.other).deposit(INITIAL_DEPOSIT);
      const m2 = await d.match({ workerpool: { workerpool: 2n }, request: { trust: 3n } });
      expect((await hub.viewDeal(m2.dealId)).scheduler).to.equal(f.other.address);
      const items = [
        await d.relayedContribution(f.workers[0], m1.dealId, 0, digestOf("r")),
        await d.relayedContribution(f.workers[0], m2.dealId, 0, digestOf("r")),
      ];
      await expect(hub.connect(f.scheduler).contributeBatch(items))
        .to.be.revertedWithCustomError(hub, "HubNotScheduler")
        .withArgs(m2.dealId, f.scheduler.address);
      await expect(hub.connect(f.other).contributeBatch(items))
        .to.be.revertedWithCustomError(hub, "HubNotScheduler")
        .withArgs(m1.dealId, f.other.address);
      await expect(hub.connect(f.scheduler).contributeBatch([items[0], items[1], items[0]]))
        .to.be.revertedWithCustomError(hub, "HubNotScheduler")
        .withArgs(m2.dealId, f.scheduler.address);
    });

    it("rejects a contribution signed by another key", async function () {
      const m = await match(3n);
      const taskId = d.taskId(m.dealId, 0);
      const good = await d.relayedContribution(f.workers[0], m.dealId, 0, digestOf("r"));
      const forged = await d.relayedContribution(f.workers[1], m.dealId, 0, digestOf("r"));
      const item = { ...good, signature: forged.signature };
      await expect(hub.connect(f.scheduler).contributeBatch([good, item]))
        .to.be.revertedWithCustomError(hub, "HubInvalidWorkerSignature")
        .withArgs(taskId, f.workers[0].address);
      // A scheduler cannot sign for its workers either.
      const bySchedulerKey = {
        ...good,
        worker: f.workers[2].address,
        signature: (await d.relayedContribution(f.scheduler, m.dealId, 0, digestOf("r"))).signature,
      };
      await expect(hub.connect(f.scheduler).contributeBatch([bySchedulerKey]))
        .to.be.revertedWithCustomError(hub, "HubInvalidWorkerSignature")
        .withArgs(taskId, f.workers[2].address);
      // The whole batch reverted: the first (valid) item left nothing behind.
      expect((await hub.viewTask(taskId)).status).to.equal(Status.UNSET);
      expect(await hub.frozenOf(f.workers[0].address)).to.equal(0n);
    });

    it("rejects a relayed contribution whose result hash, seal or task was tampered with", async function () {
      const m = await match(3n, 2n);
      const taskId = d.taskId(m.dealId, 0);
      const good = await d.relayedContribution(f.workers[0], m.dealId, 0, digestOf("r"));
      const tampered = [
        { ...good, resultHash: resultHash(taskId, digestOf("other")) },
        { ...good, resultSeal: resultSeal(f.workers[0].address, taskId, digestOf("other")) },
      ];
      for (const item of tampered) {
        await expect(hub.connect(f.scheduler).contributeBatch([item]))
          .to.be.revertedWithCustomError(hub, "HubInvalidWorkerSignature")
          .withArgs(taskId, f.workers[0].address);
      }
      await expect(hub.connect(f.scheduler).contributeBatch([{ ...good, index: 1 }]))
        .to.be.revertedWithCustomError(hub, "HubInvalidWorkerSignature")
        .withArgs(d.taskId(m.dealId, 1), f.workers[0].address);
    });

    it("rejects an empty batch", async function () {
      await match(3n);
      await expect(hub.connect(f.scheduler).contributeBatch([]))
        .to.be.revertedWithCustomError(hub, "HubEmptyBatch")
        .withArgs();
    });

    it("rejects a worker listed twice in a batch", async function () {
      const m = await match(3n);
      const item = await d.relayedContribution(f.workers[0], m.dealId, 0, digestOf("r"));
      await expect(hub.connect(f.scheduler).contributeBatch([item, item]))
        .to.be.revertedWithCustomError(hub, "HubAlreadyContributed")
        .withArgs(d.taskId(m.dealId, 0), f.workers[0].address);
    });

    it("rejects relayed items for an unknown deal or an index out of range", async function () {
      const m = await match(3n, 2n);
      const item = await d.relayedContribution(f.workers[0], m.dealId, 0, digestOf("r"));
      const unknown = d.nextDealId(m);
      await expect(hub.connect(f.scheduler).contributeBatch([{ ...item, dealId: unknown }]))
        .to.be.revertedWithCustomError(hub, "HubUnknownDeal")
        .withArgs(unknown);
      await expect(hub.connect(f.scheduler).contributeBatch([{ ...item, index: 2 }]))
        .to.be.revertedWithCustomError(hub, "HubTaskIndexOutOfRange")
        .withArgs(m.dealId, 2n, 2n);
    });

    it("applies the contribution deadline to relayed contributions", async function () {
      const m = await match(3n);
      const items = [
        await d.relayedContribution(f.workers[0], m.dealId, 0, digestOf("r")),
        await d.relayedContribution(f.workers[1], m.dealId, 1, digestOf("r")),
      ];
      const deadline = await d.contributionDeadline(m.dealId);
      await time.setNextBlockTimestamp(deadline);
      await expect(hub.connect(f.scheduler).contributeBatch(items))
        .to.be.revertedWithCustomError(hub, "HubDeadlineReached")
        .withArgs(d.taskId(m.dealId, 0), deadline);
    });

    it("accepts relayed contributions in the last second before the deadline", async function () {
      const m = await match(3n);
      const items = [await d.relayedContribution(f.workers[0], m.dealId, 0, digestOf("r"))];
      const deadline = await d.contributionDeadline(m.dealId);
      await time.setNextBlockTimestamp(deadline - 1n);
      await expect(hub.connect(f.scheduler).contributeBatch(items))
        .to.emit(hub, "ContributionCommitted")
        .withArgs(d.taskId(m.dealId, 0), f.workers[0].address, resultHash(d.taskId(m.dealId, 0), digestOf("r")));
    });
  });
});
