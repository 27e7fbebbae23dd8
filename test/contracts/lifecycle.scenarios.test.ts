/**
 * Whole-task scenarios, driven by TaskDriver. Each scenario checks the final state of EVERY party (free balance and
 * frozen funds of every fixture account and of any extra account it creates, the kitty, and that the Hub holds
 * exactly the tokens its books account for), the task's status, the workers' scores and the events.
 *
 * Fixture numbers: price per task 13 (app 1 + dataset 2 + pool 10); worker stake per contribution
 * max(0.1, 10·30/100) = 3; scheduler stake per task 10·30/100 = 3; pool split: workers share 10 − 10·10/100 = 9,
 * the scheduler keeps the rest (1 with 1 or 3 winners); kitty reward min(kitty, max(0.1, kitty/10), seized) where
 * `seized` is what that very finalization took from losers (so nothing without a loser, nothing on the single-worker
 * path).
 * The scheduler, the requester and the six workers start with 100 deposited; every other account with 0.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { setBalance, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { AbiCoder, ContractTransactionResponse, MaxUint256, Wallet, ZeroHash, parseEther } from "ethers";
import {
  CALLBACK_GAS_NEEDED,
  Fixture,
  INITIAL_DEPOSIT,
  INITIAL_TOKENS,
  SCHEDULER_STAKE,
  TASK_PRICE,
  TIMEREF,
  WORKER_STAKE,
  requestOrder,
  signedOrders,
} from "../helpers/fixture";
import { TaskDriver, digestOf, setup } from "../helpers/driver";
import { parties } from "../helpers/ledger";
import { permitSignature } from "../helpers/permit";
import { CLAIMABLE, Contribution, Status, allowed } from "../helpers/status";
import { blockTimeOf, taskOf } from "../helpers/views";
import { callbackDigest, dealId as dealIdOf, hashOrder, resultHash, resultSeal, signOrder } from "../../sdk/eip712";
import {
  GasBurnerConsumer__factory,
  ResultStoreConsumer__factory,
  RevertingConsumer__factory,
  WalletMock__factory,
} from "../../typechain-types";

// ------------------------------------------------------------------------------------------------ constants

const E = (amount: string) => parseEther(amount);

// ------------------------------------------------------------------------------------------------ helpers

type Book = Record<string, readonly [balance: bigint, frozen: bigint]>;

const FUNDED = new Set(["scheduler", "requester", "worker0", "worker1", "worker2", "worker3", "worker4", "worker5"]);

/**
 * Asserts the escrow account of every party: those named in `expected` must hold exactly that, every other one its
 * initial state (100/0 for the funded accounts, 0/0 otherwise). Then the kitty, and token conservation: the Hub
 * holds exactly the sum of every balance and frozen amount plus the kitty.
 */
async function expectLedger(f: Fixture, expected: Book, kitty: bigint, extra: Record<string, string> = {}) {
  const all = { ...parties(f, "worker"), ...extra };
  for (const name of Object.keys(expected)) expect(all, `unknown party ${name}`).to.have.property(name);
  let sum = 0n;
  for (const [name, address] of Object.entries(all)) {
    const [balance, frozen] = await f.hub.accountOf(address);
    const want = expected[name] ?? (FUNDED.has(name) ? [INITIAL_DEPOSIT, 0n] : [0n, 0n]);
    expect(balance, `${name} balance`).to.equal(want[0]);
    expect(frozen, `${name} frozen`).to.equal(want[1]);
    expect(await f.hub.balanceOf(address), `${name} balanceOf`).to.equal(balance);
    expect(await f.hub.frozenOf(address), `${name} frozenOf`).to.equal(frozen);
    sum += balance + frozen;
  }
  expect(await f.hub.kitty(), "kitty").to.equal(kitty);
  expect(await f.token.balanceOf(await f.hub.getAddress()), "tokens held by the hub").to.equal(sum + kitty);
}

/** Asserts every worker's score (0 unless given) and the scheduler's (always 0). */
async function expectScores(f: Fixture, scores: Record<number, bigint>) {
  for (let i = 0; i < f.workers.length; i++) {
    expect(await f.hub.scoreOf(f.workers[i].address), `worker${i} score`).to.equal(scores[i] ?? 0n);
  }
  expect(await f.hub.scoreOf(f.scheduler.address), "scheduler score").to.equal(0n);
}

interface TaskExpectation {
  status: bigint;
  dealId: string;
  index: bigint;
  contributorCount: bigint;
  winnerCount: bigint;
  revealCount: bigint;
  consensusHash: string;
  resultDigest: string;
  revealDeadline: bigint;
}

async function expectTask(f: Fixture, taskId: string, want: Partial<TaskExpectation>) {
  const actual: TaskExpectation = await taskOf(f.hub, taskId);
  for (const [key, value] of Object.entries(want)) {
    expect(actual[key as keyof TaskExpectation], `task.${key}`).to.equal(value);
  }
}

async function contributionStatus(f: Fixture, taskId: string, worker: HardhatEthersSigner): Promise<bigint> {
  return (await f.hub.viewContribution(taskId, worker.address)).status;
}

type HubEvent = [name: string, ...args: unknown[]];

/** Every event the Hub emitted in a transaction, in order, as [name, ...args]. */
async function hubEvents(
  f: Fixture,
  pending: Promise<ContractTransactionResponse> | ContractTransactionResponse,
): Promise<HubEvent[]> {
  const receipt = await (await pending).wait();
  const hub = (await f.hub.getAddress()).toLowerCase();
  return receipt!.logs
    .filter((log) => log.address.toLowerCase() === hub)
    .map((log) => {
      const event = f.hub.interface.parseLog(log)!;
      return [event.name, ...event.args.toArray()] as HubEvent;
    });
}

async function latest(): Promise<bigint> {
  return BigInt(await time.latest());
}

/** Contributes with every worker in turn, `digests[i]` for `workers[i]`; returns the last transaction. */
async function contributeAll(
  d: TaskDriver,
  dealId: string,
  index: number,
  workers: HardhatEthersSigner[],
  digests: string[],
): Promise<ContractTransactionResponse> {
  let last: ContractTransactionResponse | undefined;
  for (let i = 0; i < workers.length; i++) last = await d.contribute(workers[i], dealId, index, digests[i]);
  return last!;
}

// ------------------------------------------------------------------------------------------------ scenarios

describe("lifecycle scenarios", function () {
  describe("1. trust 1: a single worker through contributeAndFinalize", function () {
    it("pays the owners, the worker and the scheduler from the requester's frozen payment in one transaction", async function () {
      const { f, d } = await setup();
      const w = f.workers[0];
      const m = await d.match({ request: { trust: 1n } });
      expect(m.dealId).to.equal(dealIdOf(hashOrder(f.domain, "RequestOrder", m.orders.request)));
      expect(m.volume).to.equal(1n);
      expect(await f.hub.workerStakeOf(m.dealId)).to.equal(WORKER_STAKE);
      expect(await f.hub.schedulerStakeOf(m.dealId)).to.equal(SCHEDULER_STAKE);
      // After the match: the requester's payment and the scheduler's stake are locked.
      await expectLedger(f, { requester: [E("87"), E("13")], scheduler: [E("97"), E("3")] }, 0n);

      const task = d.taskId(m.dealId, 0);
      const digest = digestOf("single");
      const events = await hubEvents(f, d.contributeAndFinalize(w, m.dealId, 0, digest, "0xc0ffee"));
      expect(events).to.deep.equal([
        ["ContributionRevealed", task, w.address, digest],
        ["TaskFinalized", task, digest, "0xc0ffee"],
      ]);

      await expectLedger(
        f,
        {
          requester: [E("87"), 0n],
          appOwner: [E("1"), 0n],
          datasetOwner: [E("2"), 0n],
          worker0: [E("109"), 0n], // share 9; its stake was never locked
          scheduler: [E("101"), 0n], // stake 3 back + 1, empty kitty
        },
        0n,
      );
      await expectScores(f, { 0: 1n });
      await expectTask(f, task, {
        status: Status.COMPLETED,
        dealId: m.dealId,
        index: 0n,
        contributorCount: 0n,
        winnerCount: 1n,
        revealCount: 1n,
        resultDigest: digest,
        consensusHash: resultHash(task, digest),
      });
      expect(await f.hub.contributorsOf(task)).to.deep.equal([]);
      expect(await f.hub.resultFor(task)).to.equal(digest);

      // The task is final: neither a second single-worker run nor a claim can touch it.
      await expect(d.contributeAndFinalize(f.workers[1], m.dealId, 0, digest))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(task, Status.COMPLETED, allowed(Status.UNSET, Status.ACTIVE));
      await d.advanceToFinalDeadline(m.dealId);
      await expect(f.hub.claim(m.dealId, 0))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(task, Status.COMPLETED, CLAIMABLE);
    });
  });

  describe("2. trust 1 through contribute, reveal and finalize", function () {
    it("reaches consensus on the first contribution and pays like the single-worker path", async function () {
      const { f, d } = await setup();
      const w = f.workers[0];
      const m = await d.match({ request: { trust: 1n } });
      const task = d.taskId(m.dealId, 0);
      const digest = digestOf("normal path");
      const h = resultHash(task, digest);

      const contributeTx = await d.contribute(w, m.dealId, 0, digest);
      const revealDeadline = (await blockTimeOf(contributeTx)) + 2n * TIMEREF;
      expect(await hubEvents(f, contributeTx)).to.deep.equal([
        ["TaskInitialized", task, m.dealId, 0n],
        ["ContributionCommitted", task, w.address, h],
        ["ConsensusReached", task, h, revealDeadline],
      ]);
      await expectTask(f, task, {
        status: Status.REVEALING,
        contributorCount: 1n,
        winnerCount: 1n,
        revealCount: 0n,
        consensusHash: h,
        resultDigest: ZeroHash,
        revealDeadline,
      });
      await expectLedger(
        f,
        { requester: [E("87"), E("13")], scheduler: [E("97"), E("3")], worker0: [E("97"), E("3")] },
        0n,
      );
      const contribution = await f.hub.viewContribution(task, w.address);
      expect(contribution.status).to.equal(Contribution.CONTRIBUTED);
      expect(contribution.sealPrefix).to.equal(resultSeal(w.address, task, digest).slice(0, 24));
      expect(contribution.stake).to.equal(WORKER_STAKE);

      expect(await hubEvents(f, d.reveal(w, task, digest))).to.deep.equal([["ContributionRevealed", task, w.address, digest]]);
      expect(await hubEvents(f, d.finalize(task, "0x1234"))).to.deep.equal([["TaskFinalized", task, digest, "0x1234"]]);

      await expectLedger(
        f,
        {
          requester: [E("87"), 0n],
          appOwner: [E("1"), 0n],
          datasetOwner: [E("2"), 0n],
          worker0: [E("109"), 0n], // stake 3 back + share 9
          scheduler: [E("101"), 0n],
        },
        0n,
      );
      await expectScores(f, { 0: 1n });
      await expectTask(f, task, {
        status: Status.COMPLETED,
        contributorCount: 1n,
        winnerCount: 1n,
        revealCount: 1n,
        consensusHash: h,
        resultDigest: digest,
      });
      expect(await contributionStatus(f, task, w)).to.equal(Contribution.REVEALED);
      expect(await f.hub.contributorsOf(task)).to.deep.equal([w.address]);
      expect(await f.hub.resultFor(task)).to.equal(digest);
    });
  });

  describe("3. trust 3 with one dissenting worker among 4", function () {
    it("pays the 3 agreeing workers and seizes the dissenter's stake into the kitty", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2, w3] = f.workers;
      const m = await d.match({ request: { trust: 3n } });
      const task = d.taskId(m.dealId, 0);
      const good = digestOf("good");
      const bad = digestOf("bad");

      await contributeAll(d, m.dealId, 0, [w0, w1, w2], [good, bad, good]);
      await expectTask(f, task, { status: Status.ACTIVE, contributorCount: 3n });
      const consensusTx = await d.contribute(w3, m.dealId, 0, good);
      expect(await hubEvents(f, consensusTx)).to.deep.equal([
        ["ContributionCommitted", task, w3.address, resultHash(task, good)],
        ["ConsensusReached", task, resultHash(task, good), (await blockTimeOf(consensusTx)) + 2n * TIMEREF],
      ]);
      await expectLedger(
        f,
        {
          requester: [E("87"), E("13")],
          scheduler: [E("97"), E("3")],
          worker0: [E("97"), E("3")],
          worker1: [E("97"), E("3")],
          worker2: [E("97"), E("3")],
          worker3: [E("97"), E("3")],
        },
        0n,
      );
      // The dissenter cannot reveal: its digest does not match the consensus.
      await expect(d.reveal(w1, task, bad)).to.be.revertedWithCustomError(f.hub, "HubInvalidReveal").withArgs(task, w1.address);

      for (const w of [w0, w2, w3]) await d.reveal(w, task, good);
      expect(await hubEvents(f, d.finalize(task, "0xabcd"))).to.deep.equal([["TaskFinalized", task, good, "0xabcd"]]);

      await expectLedger(
        f,
        {
          requester: [E("87"), 0n],
          appOwner: [E("1"), 0n],
          datasetOwner: [E("2"), 0n],
          worker0: [E("103"), 0n], // stake back + 9/3
          worker1: [E("97"), 0n], // stake seized
          worker2: [E("103"), 0n],
          worker3: [E("103"), 0n],
          scheduler: [E("101.3"), 0n], // stake back + 1 + kitty reward min(3, max(0.1, 3/10), seized 3)
        },
        E("2.7"), // 3 seized − 0.3 reward
      );
      await expectScores(f, { 0: 1n, 2: 1n, 3: 1n });
      await expectTask(f, task, {
        status: Status.COMPLETED,
        contributorCount: 4n,
        winnerCount: 3n,
        revealCount: 3n,
        resultDigest: good,
        consensusHash: resultHash(task, good),
      });
      expect(await contributionStatus(f, task, w1)).to.equal(Contribution.CONTRIBUTED);
      for (const w of [w0, w2, w3]) expect(await contributionStatus(f, task, w)).to.equal(Contribution.REVEALED);
      expect(await f.hub.contributorsOf(task)).to.deep.equal([w0.address, w1.address, w2.address, w3.address]);
    });

    it("halves the reputation the dissenter had earned before", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2, w3] = f.workers;
      // Two single-worker tasks give worker1 a score of 2.
      for (let i = 0; i < 2; i++) {
        const earlier = await d.match({ request: { trust: 1n } });
        await d.contributeAndFinalize(w1, earlier.dealId, 0, digestOf(`earlier ${i}`));
      }
      await expectScores(f, { 1: 2n });

      const m = await d.match({ request: { trust: 3n } });
      const task = d.taskId(m.dealId, 0);
      const good = digestOf("good");
      await contributeAll(d, m.dealId, 0, [w0, w1, w2, w3], [good, digestOf("bad"), good, good]);
      for (const w of [w0, w2, w3]) await d.reveal(w, task, good);
      await d.finalize(task);

      await expectLedger(
        f,
        {
          requester: [E("61"), 0n], // 3 tasks of 13
          appOwner: [E("3"), 0n],
          datasetOwner: [E("6"), 0n],
          worker0: [E("103"), 0n],
          worker1: [E("115"), 0n], // +9 +9 −3
          worker2: [E("103"), 0n],
          worker3: [E("103"), 0n],
          scheduler: [E("103.3"), 0n], // +1 +1 +1.3
        },
        E("2.7"),
      );
      await expectScores(f, { 0: 1n, 1: 1n, 2: 1n, 3: 1n });
    });
  });

  describe("4. trust 3 through the batched relay with a dissenter", function () {
    it("settles exactly like individual transactions when the scheduler relays every contribution and reveal", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2, w3] = f.workers;
      const m = await d.match({ request: { trust: 3n } });
      const task = d.taskId(m.dealId, 0);
      const good = digestOf("good");
      const bad = digestOf("bad");
      const hGood = resultHash(task, good);

      const items = [
        await d.relayedContribution(w0, m.dealId, 0, good),
        await d.relayedContribution(w1, m.dealId, 0, bad),
        await d.relayedContribution(w2, m.dealId, 0, good),
        await d.relayedContribution(w3, m.dealId, 0, good),
      ];
      const batchTx = await f.hub.connect(f.scheduler).contributeBatch(items);
      expect(await hubEvents(f, batchTx)).to.deep.equal([
        ["TaskInitialized", task, m.dealId, 0n],
        ["ContributionCommitted", task, w0.address, hGood],
        ["ContributionCommitted", task, w1.address, resultHash(task, bad)],
        ["ContributionCommitted", task, w2.address, hGood],
        ["ContributionCommitted", task, w3.address, hGood],
        ["ConsensusReached", task, hGood, (await blockTimeOf(batchTx)) + 2n * TIMEREF],
      ]);
      // The relayed stakes are the workers' own, not the scheduler's.
      await expectLedger(
        f,
        {
          requester: [E("87"), E("13")],
          scheduler: [E("97"), E("3")],
          worker0: [E("97"), E("3")],
          worker1: [E("97"), E("3")],
          worker2: [E("97"), E("3")],
          worker3: [E("97"), E("3")],
        },
        0n,
      );

      const reveals = [
        await d.relayedReveal(w0, task, good),
        await d.relayedReveal(w2, task, good),
        await d.relayedReveal(w3, task, good),
      ];
      expect(await hubEvents(f, f.hub.connect(f.scheduler).revealBatch(reveals))).to.deep.equal([
        ["ContributionRevealed", task, w0.address, good],
        ["ContributionRevealed", task, w2.address, good],
        ["ContributionRevealed", task, w3.address, good],
      ]);
      expect(await hubEvents(f, d.finalize(task, "0x1234"))).to.deep.equal([["TaskFinalized", task, good, "0x1234"]]);

      await expectLedger(
        f,
        {
          requester: [E("87"), 0n],
          appOwner: [E("1"), 0n],
          datasetOwner: [E("2"), 0n],
          worker0: [E("103"), 0n],
          worker1: [E("97"), 0n],
          worker2: [E("103"), 0n],
          worker3: [E("103"), 0n],
          scheduler: [E("101.3"), 0n],
        },
        E("2.7"),
      );
      await expectScores(f, { 0: 1n, 2: 1n, 3: 1n });
      await expectTask(f, task, {
        status: Status.COMPLETED,
        contributorCount: 4n,
        winnerCount: 3n,
        revealCount: 3n,
        resultDigest: good,
        consensusHash: hGood,
      });
      expect(await contributionStatus(f, task, w1)).to.equal(Contribution.CONTRIBUTED);
      for (const w of [w0, w2, w3]) expect(await contributionStatus(f, task, w)).to.equal(Contribution.REVEALED);
    });
  });

  describe("5. reopen, then success", function () {
    it("rejects the silent group at reopen, pays the new group and seizes the silent stakes at finalize", async function () {
      const { f, d } = await setup();
      const silent = f.workers.slice(0, 3);
      const fresh = f.workers.slice(3, 6);
      const m = await d.match({ request: { trust: 3n } });
      const task = d.taskId(m.dealId, 0);
      const digest = digestOf("result");
      const h = resultHash(task, digest);

      await contributeAll(d, m.dealId, 0, silent, [digest, digest, digest]);
      const revealDeadline = await d.revealDeadline(task);
      await expectTask(f, task, { status: Status.REVEALING, winnerCount: 3n, revealDeadline });

      // Not before the reveal deadline...
      await time.setNextBlockTimestamp(revealDeadline - 1n);
      await expect(f.hub.connect(f.scheduler).reopen(task))
        .to.be.revertedWithCustomError(f.hub, "HubDeadlineNotReached")
        .withArgs(task, revealDeadline);
      // ...and from it on.
      await time.setNextBlockTimestamp(revealDeadline);
      expect(await hubEvents(f, f.hub.connect(f.scheduler).reopen(task))).to.deep.equal([["TaskReopened", task]]);

      await expectTask(f, task, {
        status: Status.ACTIVE,
        contributorCount: 3n,
        winnerCount: 0n,
        revealCount: 0n,
        revealDeadline: 0n,
        consensusHash: ZeroHash,
      });
      for (const w of silent) expect(await contributionStatus(f, task, w)).to.equal(Contribution.REJECTED);
      // The rejected stakes stay frozen until the task settles.
      await expectLedger(
        f,
        {
          requester: [E("87"), E("13")],
          scheduler: [E("97"), E("3")],
          worker0: [E("97"), E("3")],
          worker1: [E("97"), E("3")],
          worker2: [E("97"), E("3")],
        },
        0n,
      );
      await expect(d.reveal(silent[0], task, digest))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(task, Status.ACTIVE, allowed(Status.REVEALING));
      await expect(d.contribute(silent[0], m.dealId, 0, digest))
        .to.be.revertedWithCustomError(f.hub, "HubAlreadyContributed")
        .withArgs(task, silent[0].address);

      // The same result from new workers: the rejected group no longer counts towards the quorum.
      await contributeAll(d, m.dealId, 0, fresh.slice(0, 2), [digest, digest]);
      await expectTask(f, task, { status: Status.ACTIVE, contributorCount: 5n });
      const consensusTx = await d.contribute(fresh[2], m.dealId, 0, digest);
      expect(await hubEvents(f, consensusTx)).to.deep.equal([
        ["ContributionCommitted", task, fresh[2].address, h],
        ["ConsensusReached", task, h, (await blockTimeOf(consensusTx)) + 2n * TIMEREF],
      ]);
      for (const w of fresh) await d.reveal(w, task, digest);
      expect(await hubEvents(f, d.finalize(task, "0x01"))).to.deep.equal([["TaskFinalized", task, digest, "0x01"]]);

      await expectLedger(
        f,
        {
          requester: [E("87"), 0n],
          appOwner: [E("1"), 0n],
          datasetOwner: [E("2"), 0n],
          worker0: [E("97"), 0n], // silent: stake seized
          worker1: [E("97"), 0n],
          worker2: [E("97"), 0n],
          worker3: [E("103"), 0n], // new group: stake back + 3
          worker4: [E("103"), 0n],
          worker5: [E("103"), 0n],
          scheduler: [E("101.9"), 0n], // stake back + 1 + kitty reward min(9, max(0.1, 9/10), seized 9)
        },
        E("8.1"), // 9 seized − 0.9
      );
      await expectScores(f, { 3: 1n, 4: 1n, 5: 1n });
      await expectTask(f, task, {
        status: Status.COMPLETED,
        contributorCount: 6n,
        winnerCount: 3n,
        revealCount: 3n,
        resultDigest: digest,
        consensusHash: h,
      });
      for (const w of silent) expect(await contributionStatus(f, task, w)).to.equal(Contribution.REJECTED);
      for (const w of fresh) expect(await contributionStatus(f, task, w)).to.equal(Contribution.REVEALED);
    });
  });

  describe("6. claims", function () {
    it("refunds the requester and seizes the scheduler's stake when a task was never initialized", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 1n } });
      const task = d.taskId(m.dealId, 0);
      const finalDeadline = await d.finalDeadline(m.dealId);
      expect((await f.hub.viewTask(task)).status).to.equal(Status.UNSET);

      await time.setNextBlockTimestamp(finalDeadline - 1n);
      await expect(f.hub.connect(f.other).claim(m.dealId, 0))
        .to.be.revertedWithCustomError(f.hub, "HubDeadlineNotReached")
        .withArgs(task, finalDeadline);
      await time.setNextBlockTimestamp(finalDeadline);
      expect(await hubEvents(f, f.hub.connect(f.other).claim(m.dealId, 0))).to.deep.equal([
        ["TaskClaimed", task, m.dealId, 0n],
      ]);

      await expectLedger(f, { requester: [E("100"), 0n], scheduler: [E("97"), 0n] }, SCHEDULER_STAKE);
      await expectScores(f, {});
      await expectTask(f, task, { status: Status.FAILED, dealId: m.dealId, index: 0n, contributorCount: 0n });
      await expect(f.hub.claim(m.dealId, 0))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(task, Status.FAILED, CLAIMABLE);
      await expect(f.hub.resultFor(task))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(task, Status.FAILED, allowed(Status.COMPLETED));
    });

    it("unlocks the stakes of two disagreeing contributions when no consensus was reached", async function () {
      const { f, d } = await setup();
      const [w0, w1] = f.workers;
      const m = await d.match({ request: { trust: 3n } });
      const task = d.taskId(m.dealId, 0);
      await contributeAll(d, m.dealId, 0, [w0, w1], [digestOf("a"), digestOf("b")]);
      await expectTask(f, task, { status: Status.ACTIVE, contributorCount: 2n });

      await d.advanceToFinalDeadline(m.dealId);
      expect(await hubEvents(f, f.hub.connect(f.other).claim(m.dealId, 0))).to.deep.equal([
        ["TaskClaimed", task, m.dealId, 0n],
      ]);

      await expectLedger(f, { requester: [E("100"), 0n], scheduler: [E("97"), 0n] }, SCHEDULER_STAKE);
      await expectScores(f, {});
      await expectTask(f, task, { status: Status.FAILED, contributorCount: 2n, winnerCount: 0n, revealCount: 0n });
    });

    it("unlocks the silent winners' stakes, refunds the requester and seizes the scheduler's stake when nobody revealed", async function () {
      const { f, d } = await setup();
      const workers = f.workers.slice(0, 3);
      const m = await d.match({ request: { trust: 3n } });
      const task = d.taskId(m.dealId, 0);
      const digest = digestOf("unrevealed");
      await contributeAll(d, m.dealId, 0, workers, [digest, digest, digest]);
      await expectTask(f, task, { status: Status.REVEALING, winnerCount: 3n, revealCount: 0n });
      await expect(d.finalize(task))
        .to.be.revertedWithCustomError(f.hub, "HubRevealsPending")
        .withArgs(task, 0n, 3n);

      await d.advanceToFinalDeadline(m.dealId);
      expect(await hubEvents(f, f.hub.connect(f.other).claim(m.dealId, 0))).to.deep.equal([
        ["TaskClaimed", task, m.dealId, 0n],
      ]);

      await expectLedger(f, { requester: [E("100"), 0n], scheduler: [E("97"), 0n] }, SCHEDULER_STAKE);
      await expectScores(f, {});
      await expectTask(f, task, { status: Status.FAILED, contributorCount: 3n, revealCount: 0n });
    });

    it("seizes the stakes of the silent winners rejected at a reopen when the task is then claimed", async function () {
      const { f, d } = await setup();
      const silent = f.workers.slice(0, 3);
      const late = f.workers[3];
      const m = await d.match({ request: { trust: 3n } });
      const task = d.taskId(m.dealId, 0);
      const digest = digestOf("never revealed");
      await contributeAll(d, m.dealId, 0, silent, [digest, digest, digest]);
      await d.advanceToRevealDeadline(task);
      expect(await hubEvents(f, f.hub.connect(f.scheduler).reopen(task))).to.deep.equal([["TaskReopened", task]]);
      await d.contribute(late, m.dealId, 0, digestOf("alone"));
      await expectTask(f, task, { status: Status.ACTIVE, contributorCount: 4n, winnerCount: 0n });

      await d.advanceToFinalDeadline(m.dealId);
      expect(await hubEvents(f, f.hub.connect(f.other).claim(m.dealId, 0))).to.deep.equal([
        ["TaskClaimed", task, m.dealId, 0n],
      ]);

      await expectLedger(
        f,
        {
          requester: [E("100"), 0n],
          scheduler: [E("97"), 0n], // stake seized
          worker0: [E("97"), 0n], // rejected at the reopen: stake seized
          worker1: [E("97"), 0n],
          worker2: [E("97"), 0n],
          worker3: [E("100"), 0n], // contributed after the reopen: stake unlocked
        },
        SCHEDULER_STAKE + 3n * WORKER_STAKE,
      );
      await expectScores(f, {});
      await expectTask(f, task, { status: Status.FAILED, contributorCount: 4n });
      for (const w of silent) expect(await contributionStatus(f, task, w)).to.equal(Contribution.REJECTED);
      expect(await contributionStatus(f, task, late)).to.equal(Contribution.CONTRIBUTED);
    });
  });

  describe("7. callbacks", function () {
    // One word: ResultStoreConsumer stores it (length + 1 slot, counter, event) well within CALLBACK_GAS. A longer
    // value, such as abi.encode("42") (96 bytes, 4 fresh slots), would not fit in 100,000 gas.
    const data = AbiCoder.defaultAbiCoder().encode(["uint256"], [42n]);
    const digest = callbackDigest(data);
    const PAID: Book = {
      requester: [E("87"), 0n],
      appOwner: [E("1"), 0n],
      datasetOwner: [E("2"), 0n],
      worker0: [E("109"), 0n],
      scheduler: [E("101"), 0n],
    };

    it("delivers the result to a ResultStoreConsumer, which stores it", async function () {
      const { f, d } = await setup();
      const w = f.workers[0];
      const consumer = await new ResultStoreConsumer__factory(f.owner).deploy(await f.hub.getAddress());
      const m = await d.match({ request: { trust: 1n, callback: await consumer.getAddress() } });
      const task = d.taskId(m.dealId, 0);
      await d.contribute(w, m.dealId, 0, digest);
      await d.reveal(w, task, digest);

      const tx = await d.finalize(task, "0x", data);
      await expect(tx).to.emit(consumer, "ResultReceived").withArgs(task, data);
      expect(await hubEvents(f, tx)).to.deep.equal([["TaskFinalized", task, digest, "0x"]]);

      expect(await consumer.results(task)).to.equal(data);
      expect(await consumer.received()).to.equal(1n);
      expect(await f.hub.resultFor(task)).to.equal(data);
      await expectTask(f, task, { status: Status.COMPLETED, resultDigest: digest });
      await expectLedger(f, PAID, 0n);
      await expectScores(f, { 0: 1n });
    });

    it("completes the task and pays everyone when a RevertingConsumer reverts (CallbackFailed)", async function () {
      const { f, d } = await setup();
      const w = f.workers[0];
      const consumer = await new RevertingConsumer__factory(f.owner).deploy();
      const callback = await consumer.getAddress();
      const m = await d.match({ request: { trust: 1n, callback } });
      const task = d.taskId(m.dealId, 0);

      expect(await hubEvents(f, d.contributeAndFinalize(w, m.dealId, 0, digest, "0x99", data))).to.deep.equal([
        ["ContributionRevealed", task, w.address, digest],
        ["TaskFinalized", task, digest, "0x99"],
        ["CallbackFailed", task, callback],
      ]);

      await expectTask(f, task, { status: Status.COMPLETED, resultDigest: digest, revealCount: 1n });
      expect(await f.hub.resultFor(task)).to.equal(data);
      await expectLedger(f, PAID, 0n);
      await expectScores(f, { 0: 1n });
    });

    it("completes the task and pays everyone when a GasBurnerConsumer runs out of gas (CallbackFailed)", async function () {
      const { f, d } = await setup();
      const w = f.workers[0];
      const consumer = await new GasBurnerConsumer__factory(f.owner).deploy();
      const callback = await consumer.getAddress();
      const m = await d.match({ request: { trust: 1n, callback } });
      const task = d.taskId(m.dealId, 0);
      await d.contribute(w, m.dealId, 0, digest);
      await d.reveal(w, task, digest);

      const tx = await d.finalize(task, "0x", data);
      expect(await hubEvents(f, tx)).to.deep.equal([
        ["TaskFinalized", task, digest, "0x"],
        ["CallbackFailed", task, callback],
      ]);
      // The consumer burnt the whole callback allowance.
      expect((await tx.wait())!.gasUsed).to.be.greaterThan(100_000n);

      await expectTask(f, task, { status: Status.COMPLETED, resultDigest: digest });
      await expectLedger(f, PAID, 0n);
      await expectScores(f, { 0: 1n });
    });

    it("refuses a finalize sent with too little gas for the callback, then delivers on a normal finalize", async function () {
      const { f, d } = await setup();
      const w = f.workers[0];
      const consumer = await new ResultStoreConsumer__factory(f.owner).deploy(await f.hub.getAddress());
      const m = await d.match({ request: { trust: 1n, callback: await consumer.getAddress() } });
      const task = d.taskId(m.dealId, 0);
      await d.contribute(w, m.dealId, 0, digest);
      await d.reveal(w, task, digest);

      const estimate = await f.hub.connect(f.scheduler).finalize.estimateGas(task, "0x", data);
      await expect(d.finalize(task, "0x", data, { gasLimit: estimate - 60_000n }))
        .to.be.revertedWithCustomError(f.hub, "HubNotEnoughGasForCallback")
        .withArgs(task, anyValue, CALLBACK_GAS_NEEDED);

      // Nothing moved: the task still waits for its finalization.
      await expectTask(f, task, { status: Status.REVEALING, revealCount: 1n });
      expect(await consumer.received()).to.equal(0n);
      await expectLedger(
        f,
        { requester: [E("87"), E("13")], scheduler: [E("97"), E("3")], worker0: [E("97"), E("3")] },
        0n,
      );

      const tx = await d.finalize(task, "0x", data);
      await expect(tx).to.emit(consumer, "ResultReceived").withArgs(task, data);
      expect(await hubEvents(f, tx)).to.deep.equal([["TaskFinalized", task, digest, "0x"]]);
      expect(await consumer.results(task)).to.equal(data);
      expect(await consumer.received()).to.equal(1n);
      await expectTask(f, task, { status: Status.COMPLETED, resultDigest: digest });
      await expectLedger(f, PAID, 0n);
      await expectScores(f, { 0: 1n });
    });
  });

  describe("8. an EIP-1271 contract wallet as requester", function () {
    async function fundedWallet(f: Fixture) {
      const wallet = await new WalletMock__factory(f.owner).deploy(f.other.address);
      const address = await wallet.getAddress();
      const hub = await f.hub.getAddress();
      await f.token.mint(address, INITIAL_DEPOSIT);
      await wallet.connect(f.other).approve(await f.token.getAddress(), hub, MaxUint256);
      const depositTx = await wallet
        .connect(f.other)
        .execute(hub, f.hub.interface.encodeFunctionData("deposit", [INITIAL_DEPOSIT]));
      expect(await hubEvents(f, depositTx)).to.deep.equal([["Deposited", address, address, INITIAL_DEPOSIT]]);
      return { wallet, address };
    }

    it("matches a request signed by the wallet's owner and spends the wallet's frozen funds", async function () {
      const { f, d } = await setup();
      const { address } = await fundedWallet(f);
      const extra = { wallet: address };
      await expectLedger(f, { wallet: [E("100"), 0n] }, 0n, extra);

      const m = await d.match({
        request: { requester: address, beneficiary: address },
        requesterSigner: f.other, // the wallet's owner: the hub asks the wallet through isValidSignature
      });
      expect((await f.hub.viewDeal(m.dealId)).requester).to.equal(address);
      await expectLedger(f, { wallet: [E("87"), E("13")], scheduler: [E("97"), E("3")] }, 0n, extra);

      const task = d.taskId(m.dealId, 0);
      const digest = digestOf("wallet");
      await d.contribute(f.workers[0], m.dealId, 0, digest);
      await d.reveal(f.workers[0], task, digest);
      expect(await hubEvents(f, d.finalize(task))).to.deep.equal([["TaskFinalized", task, digest, "0x"]]);

      await expectLedger(
        f,
        {
          wallet: [E("87"), 0n], // the requester EOA of the fixture is untouched
          appOwner: [E("1"), 0n],
          datasetOwner: [E("2"), 0n],
          worker0: [E("109"), 0n],
          scheduler: [E("101"), 0n],
        },
        0n,
        extra,
      );
      await expectScores(f, { 0: 1n });
      await expectTask(f, task, { status: Status.COMPLETED, resultDigest: digest });
      expect(await f.token.balanceOf(address)).to.equal(0n);
    });

    it("refuses a wallet request signed by someone other than the wallet's owner", async function () {
      const { f, d } = await setup();
      const { address } = await fundedWallet(f);
      const orders = await signedOrders(f, {
        request: { requester: address, beneficiary: address },
        requesterSigner: f.requester,
      });
      const { sign: _sign, ...request } = orders.request;
      void _sign;
      const hash = await f.hub.hashRequestOrder(orders.request);
      expect(hash).to.equal(hashOrder(f.domain, "RequestOrder", request));

      await expect(d.matchOrders(orders))
        .to.be.revertedWithCustomError(f.hub, "ClerkInvalidSignature")
        .withArgs(hash, address);
      expect(await f.hub.dealCount()).to.equal(0n);
      await expectLedger(f, { wallet: [E("100"), 0n] }, 0n, { wallet: address });
    });
  });

  describe("9. deposit-and-match with a permit", function () {
    it("deposits the exact total with an EIP-2612 permit, matches in the same transaction, then completes", async function () {
      const { f, d } = await setup();
      const hubAddress = await f.hub.getAddress();
      const newcomer = Wallet.createRandom().connect(ethers.provider);
      await setBalance(newcomer.address, E("10"));
      await f.token.mint(newcomer.address, E("20"));
      expect(await f.token.allowance(newcomer.address, hubAddress)).to.equal(0n);
      const extra = { newcomer: newcomer.address };
      await expectLedger(f, {}, 0n, extra);

      const orders = await signedOrders(f);
      const request = await signOrder(
        newcomer,
        f.domain,
        "RequestOrder",
        requestOrder(f, { requester: newcomer.address, beneficiary: newcomer.address, trust: 1n }),
      );
      const deadline = (await latest()) + 3600n;
      const permit = await permitSignature(f, newcomer, TASK_PRICE, deadline);

      const tx = await f.hub
        .connect(newcomer)
        .depositAndMatchOrders(TASK_PRICE, deadline, permit.v, permit.r, permit.s, orders.app, orders.dataset, orders.workerpool, request);
      const dealId = dealIdOf(hashOrder(f.domain, "RequestOrder", request));
      expect(await hubEvents(f, tx)).to.deep.equal([
        ["Deposited", newcomer.address, newcomer.address, TASK_PRICE],
        [
          "DealMatched",
          dealId,
          await f.hub.hashRequestOrder(request),
          f.workerpoolId,
          await f.hub.hashAppOrder(orders.app),
          await f.hub.hashDatasetOrder(orders.dataset),
          await f.hub.hashWorkerpoolOrder(orders.workerpool),
          newcomer.address,
          1n,
          request.params,
        ],
      ]);
      // The permit's allowance was consumed exactly; the newcomer's whole deposit is frozen.
      expect(await f.token.allowance(newcomer.address, hubAddress)).to.equal(0n);
      expect(await f.token.nonces(newcomer.address)).to.equal(1n);
      expect(await f.token.balanceOf(newcomer.address)).to.equal(E("7"));
      await expectLedger(f, { newcomer: [0n, E("13")], scheduler: [E("97"), E("3")] }, 0n, extra);

      const task = d.taskId(dealId, 0);
      const digest = digestOf("permit");
      await d.contributeAndFinalize(f.workers[0], dealId, 0, digest);

      await expectLedger(
        f,
        {
          newcomer: [0n, 0n],
          appOwner: [E("1"), 0n],
          datasetOwner: [E("2"), 0n],
          worker0: [E("109"), 0n],
          scheduler: [E("101"), 0n],
        },
        0n,
        extra,
      );
      await expectScores(f, { 0: 1n });
      await expectTask(f, task, { status: Status.COMPLETED, resultDigest: digest });
      expect(await f.token.balanceOf(newcomer.address)).to.equal(E("7"));
    });
  });

  describe("10. a volume-3 deal: completed, claimed, completed", function () {
    it("charges the requester for exactly the 2 completed tasks", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2] = f.workers;
      const m = await d.match({ request: { trust: 1n, volume: 3n } });
      expect(m.volume).to.equal(3n);
      await expectLedger(f, { requester: [E("61"), E("39")], scheduler: [E("91"), E("9")] }, 0n);
      const [t0, t1, t2] = [0, 1, 2].map((i) => d.taskId(m.dealId, i));

      // Task 0: contribute, reveal, finalize.
      const d0 = digestOf("task 0");
      await d.contribute(w0, m.dealId, 0, d0);
      await d.reveal(w0, t0, d0);
      await d.finalize(t0);

      // Task 1: initialized and contributed, never revealed.
      await f.hub.connect(f.scheduler).initialize(m.dealId, 1);
      await d.contribute(w1, m.dealId, 1, digestOf("task 1"));

      // Task 2: single-worker path.
      const d2 = digestOf("task 2");
      expect(await hubEvents(f, d.contributeAndFinalize(w2, m.dealId, 2, d2))).to.deep.equal([
        ["ContributionRevealed", t2, w2.address, d2],
        ["TaskFinalized", t2, d2, "0x"],
      ]);

      await d.advanceToFinalDeadline(m.dealId);
      expect(await hubEvents(f, f.hub.connect(f.other).claim(m.dealId, 1))).to.deep.equal([
        ["TaskClaimed", t1, m.dealId, 1n],
      ]);
      // Nothing is left to claim.
      expect(await f.hub.claimDeal.staticCall(m.dealId)).to.equal(0n);
      await expect(f.hub.claim(m.dealId, 0))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(t0, Status.COMPLETED, CLAIMABLE);

      await expectLedger(
        f,
        {
          requester: [E("74"), 0n], // 100 − 2·13
          appOwner: [E("2"), 0n],
          datasetOwner: [E("4"), 0n],
          worker0: [E("109"), 0n],
          worker1: [E("100"), 0n], // stake unlocked by the claim
          worker2: [E("109"), 0n],
          scheduler: [E("99"), 0n], // 100 − 9 + (3 + 1)·2; the third stake seized
        },
        SCHEDULER_STAKE,
      );
      await expectScores(f, { 0: 1n, 2: 1n });
      await expectTask(f, t0, { status: Status.COMPLETED, index: 0n, resultDigest: d0 });
      await expectTask(f, t1, { status: Status.FAILED, index: 1n, contributorCount: 1n, revealCount: 0n });
      await expectTask(f, t2, { status: Status.COMPLETED, index: 2n, resultDigest: d2 });
      expect(await f.token.balanceOf(f.requester.address)).to.equal(INITIAL_TOKENS - INITIAL_DEPOSIT);
    });
  });

  describe("11. the kitty: filled by failures, paid out only against the stakes a finalization seizes", function () {
    it("pays nothing from a full kitty on the single-worker path or a clean finalize, then a tenth on a finalize with a loser", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2, w3] = f.workers;

      // A task nobody initialized is claimed: the scheduler's stake fills the kitty.
      const lost = await d.match({ request: { trust: 1n } });
      await d.advanceToFinalDeadline(lost.dealId);
      await f.hub.connect(f.other).claim(lost.dealId, 0);
      await expectLedger(f, { scheduler: [E("97"), 0n] }, E("3"));

      // The single-worker path seizes nothing: no kitty reward.
      const single = await d.match({ request: { trust: 1n } });
      await d.contributeAndFinalize(w0, single.dealId, 0, digestOf("single"));
      const afterSingle: Book = {
        requester: [E("87"), 0n],
        appOwner: [E("1"), 0n],
        datasetOwner: [E("2"), 0n],
        worker0: [E("109"), 0n],
        scheduler: [E("98"), 0n], // 97 − 3 + 3 + 1
      };
      await expectLedger(f, afterSingle, E("3"));

      // Three agreeing winners, all revealed: nothing seized, no kitty reward.
      const clean = await d.match({ request: { trust: 3n } });
      const cleanTask = d.taskId(clean.dealId, 0);
      const good = digestOf("good");
      await contributeAll(d, clean.dealId, 0, [w0, w1, w2], [good, good, good]);
      for (const w of [w0, w1, w2]) await d.reveal(w, cleanTask, good);
      expect(await hubEvents(f, d.finalize(cleanTask))).to.deep.equal([["TaskFinalized", cleanTask, good, "0x"]]);
      await expectLedger(
        f,
        {
          requester: [E("74"), 0n],
          appOwner: [E("2"), 0n],
          datasetOwner: [E("4"), 0n],
          worker0: [E("112"), 0n],
          worker1: [E("103"), 0n],
          worker2: [E("103"), 0n],
          scheduler: [E("99"), 0n], // + 1, no kitty reward
        },
        E("3"),
      );

      // A dissenter loses 3: kitty 6, reward min(6, max(0.1, 0.6), seized 3) = 0.6.
      const lossy = await d.match({ request: { trust: 3n } });
      const lossyTask = d.taskId(lossy.dealId, 0);
      await contributeAll(d, lossy.dealId, 0, [w3, w0, w1, w2], [digestOf("bad"), good, good, good]);
      for (const w of [w0, w1, w2]) await d.reveal(w, lossyTask, good);
      await d.finalize(lossyTask);
      await expectLedger(
        f,
        {
          requester: [E("61"), 0n],
          appOwner: [E("3"), 0n],
          datasetOwner: [E("6"), 0n],
          worker0: [E("115"), 0n],
          worker1: [E("106"), 0n],
          worker2: [E("106"), 0n],
          worker3: [E("97"), 0n],
          scheduler: [E("100.6"), 0n], // + 1 + 0.6
        },
        E("5.4"),
      );
      await expectScores(f, { 0: 3n, 1: 2n, 2: 2n });
    });
  });

  describe("12. a pool registered for a scheduler by someone else", function () {
    it("matches no deal until the named scheduler consents, then completes a task with it", async function () {
      const { f, d } = await setup();
      // The pool owner registers a second pool naming the fixture's scheduler, which has not agreed to stake for it.
      await f.workerpools.connect(f.poolOwner).register(f.poolOwner.address, "second pool", f.scheduler.address, 30, 10);
      const pool = await f.workerpools.count();
      expect(pool).to.equal(2n);
      expect((await f.workerpools.dealTerms(pool)).schedulerConsent).to.equal(false);
      const overrides = { workerpool: { workerpool: pool }, request: { trust: 1n } };
      const refused = await signedOrders(f, overrides);
      await expect(d.matchOrders(refused))
        .to.be.revertedWithCustomError(f.hub, "ClerkSchedulerWithoutConsent")
        .withArgs(pool, f.scheduler.address);
      expect(await f.hub.dealCount()).to.equal(0n);
      await expectLedger(f, {}, 0n); // nobody's funds were locked, least of all the scheduler's

      await f.workerpools.connect(f.scheduler).setSchedulerConsent(pool, true);
      const m = await d.match(overrides);
      expect((await f.hub.viewDeal(m.dealId)).scheduler).to.equal(f.scheduler.address);
      await expectLedger(f, { requester: [E("87"), E("13")], scheduler: [E("97"), E("3")] }, 0n);
      const task = d.taskId(m.dealId, 0);
      const digest = digestOf("consented");
      await d.contributeAndFinalize(f.workers[0], m.dealId, 0, digest);
      await expectLedger(
        f,
        {
          requester: [E("87"), 0n],
          appOwner: [E("1"), 0n],
          datasetOwner: [E("2"), 0n],
          worker0: [E("109"), 0n],
          scheduler: [E("101"), 0n],
        },
        0n,
      );
      await expectTask(f, task, { status: Status.COMPLETED, resultDigest: digest });
    });
  });
});
