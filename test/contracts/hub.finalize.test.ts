/**
 * Hub.finalize: the scheduler completes a task once its winners revealed. Exact escrow arithmetic for every party
 * (owners, winners, dissenters, silent winners, scheduler, requester, kitty: the scheduler's kitty reward is capped by
 * the stakes that very finalization seized), every custom error with its arguments,
 * the reveal and final deadline edges, callback data checks, and the EIP-1154 callback delivery with its gas
 * guarantees (reverting, gas-burning and re-entrant consumers never block finalization; a caller cannot starve a
 * consumer of its guaranteed gas).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { takeSnapshot } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { hexlify, keccak256, parseEther, toUtf8Bytes } from "ethers";
import {
  CALLBACK_GAS,
  CALLBACK_GAS_NEEDED,
  OrderOverrides,
  PRICES,
  SCHEDULER_STAKE,
  TASK_PRICE,
  WORKER_STAKE,
  Fixture,
} from "../helpers/fixture";
import { RESULTS, TaskDriver, digestOf, setup } from "../helpers/driver";
import { expectMoves, ledger } from "../helpers/ledger";
import { Status } from "../helpers/status";
import { callbackDigest } from "../../sdk/eip712";
import {
  GasBurnerConsumer__factory,
  GasMeterConsumer__factory,
  ReentrantConsumer__factory,
  ResultStoreConsumer__factory,
  RevertingConsumer__factory,
} from "../../typechain-types";

// ---------------------------------------------------------------------------------------------------------- helpers

const E = parseEther;
const { UNSET, ACTIVE, REVEALING, COMPLETED, FAILED } = Status;
/** `allowed` bitmap of finalize: REVEALING only. */
const ONLY_REVEALING = 1n << REVEALING;

interface TaskOptions {
  overrides?: OrderOverrides;
  /** Workers that commit, in order, with their digests (default: workers 0..2 all on `digest`). */
  commits?: [HardhatEthersSigner, string][];
  /** Workers that reveal `digest` (default: every worker that committed `digest`). */
  revealers?: HardhatEthersSigner[];
  digest?: string;
  index?: number;
  dealId?: string;
}

/** Matches a trust-3 deal (unless `dealId` is given), commits and reveals. */
async function task(f: Fixture, d: TaskDriver, o: TaskOptions = {}) {
  const digest = o.digest ?? digestOf("result");
  const dealId =
    o.dealId ?? (await d.match({ ...o.overrides, request: { trust: 3n, ...o.overrides?.request } })).dealId;
  const index = o.index ?? 0;
  const commits = o.commits ?? f.workers.slice(0, 3).map((w): [HardhatEthersSigner, string] => [w, digest]);
  for (const [w, dg] of commits) await d.contribute(w, dealId, index, dg);
  const taskId = d.taskId(dealId, index);
  const revealers = o.revealers ?? commits.filter(([, dg]) => dg === digest).map(([w]) => w);
  for (const w of revealers) await d.reveal(w, taskId, digest);
  return { dealId, taskId, digest };
}

/** Gives `worker` a score of `wins` by winning `wins` single-worker tasks of one deal. */
async function winTasks(f: Fixture, d: TaskDriver, worker: HardhatEthersSigner, wins: number) {
  const m = await d.match({ request: { trust: 1n, volume: BigInt(wins) } });
  for (let i = 0; i < wins; i++) await d.contributeAndFinalize(worker, m.dealId, i, digestOf(`win ${i}`));
  expect(await f.hub.scoreOf(worker.address)).to.equal(BigInt(wins));
}

/** Adds the scheduler stake (30%) of a never-initialized task of a deal with pool price `poolPrice` to the kitty. */
async function fillKitty(f: Fixture, d: TaskDriver, poolPrice: bigint) {
  const kitty = await f.hub.kitty();
  const m = await d.match({ workerpool: { workerpoolprice: poolPrice }, request: { workerpoolmaxprice: poolPrice } });
  await d.advanceToFinalDeadline(m.dealId);
  await f.hub.claim(m.dealId, 0);
  expect(await f.hub.kitty()).to.equal(kitty + (poolPrice * 30n) / 100n);
}

/** Split of a pool price between `winners` revealers and the scheduler, as the protocol defines it. */
function split(poolPrice: bigint, winners: bigint) {
  const workersPart = poolPrice - (poolPrice * 10n) / 100n;
  const perWorker = workersPart / winners;
  return { perWorker, toScheduler: poolPrice - perWorker * winners };
}

// ---------------------------------------------------------------------------------------------------------- tests

describe("Hub.finalize", function () {
  describe("payments", function () {
    it("pays the owners, each winner its stake plus a third of the workers' part, and the scheduler its stake plus 10%", async function () {
      const { f, d } = await setup();
      const atStart = await ledger(f);
      const t = await task(f, d);
      const before = await ledger(f);
      await expect(d.finalize(t.taskId, RESULTS))
        .to.emit(f.hub, "TaskFinalized")
        .withArgs(t.taskId, t.digest, RESULTS)
        .and.not.to.emit(f.hub, "CallbackFailed");
      const after = await ledger(f);
      // workers' part = 10 − 10·10/100 = 9, i.e. 3 each; scheduler keeps 1 (no dust); the kitty is empty.
      const win = { balance: WORKER_STAKE + E("3"), frozen: -WORKER_STAKE };
      expectMoves(before, after, {
        requester: { frozen: -TASK_PRICE },
        appOwner: { balance: PRICES.app },
        datasetOwner: { balance: PRICES.dataset },
        w0: win,
        w1: win,
        w2: win,
        scheduler: { balance: SCHEDULER_STAKE + E("1"), frozen: -SCHEDULER_STAKE },
      });
      // Over the whole task: the requester paid exactly the price, every stake came back.
      expectMoves(atStart, after, {
        requester: { balance: -TASK_PRICE },
        appOwner: { balance: PRICES.app },
        datasetOwner: { balance: PRICES.dataset },
        w0: { balance: E("3") },
        w1: { balance: E("3") },
        w2: { balance: E("3") },
        scheduler: { balance: E("1") },
      });
      expect(after.accounts.requester).to.deep.equal({ balance: E("87"), frozen: 0n });
    });

    it("marks the task COMPLETED, raises every winner's score and exposes the 32-byte digest through resultFor", async function () {
      const { f, d } = await setup();
      const t = await task(f, d);
      await d.finalize(t.taskId, RESULTS);
      const view = await f.hub.viewTask(t.taskId);
      expect(view.status).to.equal(COMPLETED);
      expect(view.winnerCount).to.equal(3n);
      expect(view.revealCount).to.equal(3n);
      expect(view.resultDigest).to.equal(t.digest);
      for (const w of f.workers.slice(0, 3)) {
        expect(await f.hub.scoreOf(w.address)).to.equal(1n);
        expect((await f.hub.viewContribution(t.taskId, w.address)).status).to.equal(2n); // REVEALED
      }
      const result = await f.hub.resultFor(t.taskId);
      expect(result).to.equal(t.digest);
      expect(ethers.getBytes(result).length).to.equal(32);
    });

    it("gives the scheduler the rounding dust when the workers' part does not split evenly", async function () {
      const { f, d } = await setup();
      const poolPrice = E("10") + 2n; // 10% = 1 ether (floor); workers' part 9 ether + 2 wei: 3 ether each, 2 wei dust
      const t = await task(f, d, {
        overrides: { workerpool: { workerpoolprice: poolPrice }, request: { workerpoolmaxprice: poolPrice } },
      });
      const stake = (poolPrice * 30n) / 100n;
      expect(stake).to.equal(E("3"));
      const before = await ledger(f);
      await d.finalize(t.taskId);
      const after = await ledger(f);
      const { perWorker, toScheduler } = split(poolPrice, 3n);
      expect(perWorker).to.equal(E("3"));
      expect(toScheduler).to.equal(E("1") + 2n);
      const win = { balance: stake + E("3"), frozen: -stake };
      expectMoves(before, after, {
        requester: { frozen: -(PRICES.app + PRICES.dataset + poolPrice) },
        appOwner: { balance: PRICES.app },
        datasetOwner: { balance: PRICES.dataset },
        w0: win,
        w1: win,
        w2: win,
        scheduler: { balance: stake + E("1") + 2n, frozen: -stake },
      });
    });

    it("pays no dataset owner on a deal without a dataset", async function () {
      const { f, d } = await setup();
      const t = await task(f, d, { overrides: { request: { dataset: 0n, datasetmaxprice: 0n } } });
      const before = await ledger(f);
      await d.finalize(t.taskId);
      const after = await ledger(f);
      const win = { balance: WORKER_STAKE + E("3"), frozen: -WORKER_STAKE };
      expectMoves(before, after, {
        requester: { frozen: -(PRICES.app + PRICES.workerpool) },
        appOwner: { balance: PRICES.app },
        w0: win,
        w1: win,
        w2: win,
        scheduler: { balance: SCHEDULER_STAKE + E("1"), frozen: -SCHEDULER_STAKE },
      });
    });

    it("seizes a dissenter's stake into the kitty and halves its score while the three agreeing winners are paid", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2, w3] = f.workers;
      await winTasks(f, d, w3, 3); // the dissenter starts with a score of 3
      const digest = digestOf("majority");
      const t = await task(f, d, {
        digest,
        commits: [
          [w0, digest],
          [w3, digestOf("minority")],
          [w1, digest],
          [w2, digest],
        ],
      });
      expect(await f.hub.contributorsOf(t.taskId)).to.deep.equal([w0.address, w3.address, w1.address, w2.address]);
      const before = await ledger(f);
      expect(before.kitty).to.equal(0n);
      await d.finalize(t.taskId, RESULTS);
      const after = await ledger(f);
      // The dissenter's 3 ether enter the kitty before the scheduler's reward is taken from it:
      // reward = min(kitty 3, max(0.1, 3·10/100), seized 3) = 0.3, so the kitty ends at 2.7.
      const win = { balance: WORKER_STAKE + E("3"), frozen: -WORKER_STAKE };
      expectMoves(
        before,
        after,
        {
          requester: { frozen: -TASK_PRICE },
          appOwner: { balance: PRICES.app },
          datasetOwner: { balance: PRICES.dataset },
          w0: win,
          w1: win,
          w2: win,
          w3: { frozen: -WORKER_STAKE },
          scheduler: { balance: SCHEDULER_STAKE + E("1") + E("0.3"), frozen: -SCHEDULER_STAKE },
        },
        WORKER_STAKE - E("0.3"),
      );
      expect(await f.hub.scoreOf(w3.address)).to.equal(1n); // 3 / 2
      for (const w of [w0, w1, w2]) expect(await f.hub.scoreOf(w.address)).to.equal(1n);
      expect((await f.hub.viewContribution(t.taskId, w3.address)).status).to.equal(1n); // still CONTRIBUTED
    });

    it("after the reveal deadline splits the workers' part between the two revealers and seizes the silent winner", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2] = f.workers;
      await winTasks(f, d, w2, 2); // the silent winner starts with a score of 2
      const t = await task(f, d, { revealers: [w0, w1] });
      const revealDeadline = await d.revealDeadline(t.taskId);
      await d.nextBlockAt(revealDeadline, -1n);
      await expect(d.finalize(t.taskId))
        .to.be.revertedWithCustomError(f.hub, "HubRevealsPending")
        .withArgs(t.taskId, 2n, 3n);
      const before = await ledger(f);
      await d.nextBlockAt(revealDeadline);
      await expect(d.finalize(t.taskId, RESULTS)).to.emit(f.hub, "TaskFinalized").withArgs(t.taskId, t.digest, RESULTS);
      const after = await ledger(f);
      const { perWorker, toScheduler } = split(PRICES.workerpool, 2n);
      expect(perWorker).to.equal(E("4.5"));
      expect(toScheduler).to.equal(E("1"));
      const win = { balance: WORKER_STAKE + E("4.5"), frozen: -WORKER_STAKE };
      // kitty: 0 + 3 seized = 3, reward min(3, max(0.1, 0.3), seized 3) = 0.3 → 2.7
      expectMoves(
        before,
        after,
        {
          requester: { frozen: -TASK_PRICE },
          appOwner: { balance: PRICES.app },
          datasetOwner: { balance: PRICES.dataset },
          w0: win,
          w1: win,
          w2: { frozen: -WORKER_STAKE },
          scheduler: { balance: SCHEDULER_STAKE + E("1") + E("0.3"), frozen: -SCHEDULER_STAKE },
        },
        E("2.7"),
      );
      expect(await f.hub.scoreOf(w0.address)).to.equal(1n);
      expect(await f.hub.scoreOf(w1.address)).to.equal(1n);
      expect(await f.hub.scoreOf(w2.address)).to.equal(1n); // 2 / 2
      const view = await f.hub.viewTask(t.taskId);
      expect(view.status).to.equal(COMPLETED);
      expect(view.revealCount).to.equal(2n);
    });

    it("after the reveal deadline pays a single revealer the whole workers' part", async function () {
      const { f, d } = await setup();
      const [w0] = f.workers;
      const t = await task(f, d, { revealers: [w0] });
      await d.nextBlockAt(await d.revealDeadline(t.taskId));
      const before = await ledger(f);
      await d.finalize(t.taskId);
      const after = await ledger(f);
      // two silent winners seized: kitty 6, reward min(6, max(0.1, 0.6), seized 6) = 0.6 → 5.4
      expectMoves(
        before,
        after,
        {
          requester: { frozen: -TASK_PRICE },
          appOwner: { balance: PRICES.app },
          datasetOwner: { balance: PRICES.dataset },
          w0: { balance: WORKER_STAKE + E("9"), frozen: -WORKER_STAKE },
          w1: { frozen: -WORKER_STAKE },
          w2: { frozen: -WORKER_STAKE },
          scheduler: { balance: SCHEDULER_STAKE + E("1") + E("0.6"), frozen: -SCHEDULER_STAKE },
        },
        E("5.4"),
      );
    });

    it("pays no kitty reward when the finalization seized no stake, even with a full kitty", async function () {
      const { f, d } = await setup();
      await fillKitty(f, d, E("50")); // kitty 15: a tenth (1.5) would have been paid before the cap by seized stakes
      await fillKitty(f, d, E("50")); // kitty 30
      const t = await task(f, d); // three winners, all revealed: nobody loses a stake
      const before = await ledger(f);
      expect(before.kitty).to.equal(E("30"));
      await d.finalize(t.taskId);
      const after = await ledger(f);
      // min(30, max(0.1, 3), seized 0) = 0
      const win = { balance: WORKER_STAKE + E("3"), frozen: -WORKER_STAKE };
      expectMoves(before, after, {
        requester: { frozen: -TASK_PRICE },
        appOwner: { balance: PRICES.app },
        datasetOwner: { balance: PRICES.dataset },
        w0: win,
        w1: win,
        w2: win,
        scheduler: { balance: SCHEDULER_STAKE + E("1"), frozen: -SCHEDULER_STAKE },
      });
      expect(after.kitty).to.equal(E("30"));
    });

    it("caps the kitty reward at the stake this finalization seized (a large kitty, one dissenter)", async function () {
      const { f, d } = await setup();
      await fillKitty(f, d, E("50"));
      await fillKitty(f, d, E("50")); // kitty 30
      const [w0, w1, w2, w3] = f.workers;
      const digest = digestOf("majority");
      const t = await task(f, d, {
        digest,
        commits: [
          [w0, digest],
          [w3, digestOf("minority")],
          [w1, digest],
          [w2, digest],
        ],
      });
      const before = await ledger(f);
      expect(before.kitty).to.equal(E("30"));
      await d.finalize(t.taskId);
      const after = await ledger(f);
      // The dissenter's 3 enter the kitty (33), then min(33, max(0.1, 3.3), seized 3) = 3 goes to the scheduler.
      const win = { balance: WORKER_STAKE + E("3"), frozen: -WORKER_STAKE };
      expectMoves(
        before,
        after,
        {
          requester: { frozen: -TASK_PRICE },
          appOwner: { balance: PRICES.app },
          datasetOwner: { balance: PRICES.dataset },
          w0: win,
          w1: win,
          w2: win,
          w3: { frozen: -WORKER_STAKE },
          scheduler: { balance: SCHEDULER_STAKE + E("1") + E("3"), frozen: -SCHEDULER_STAKE },
        },
        0n,
      );
      expect(after.kitty).to.equal(E("30"));
    });

    it("rewards the scheduler with a tenth of the kitty when that is below the seized stake (above the kitty minimum)", async function () {
      const { f, d } = await setup();
      await fillKitty(f, d, PRICES.workerpool); // kitty = 3 ether
      const [w0, w1, w2, w3] = f.workers;
      const digest = digestOf("majority");
      const t = await task(f, d, {
        digest,
        commits: [
          [w0, digest],
          [w1, digest],
          [w3, digestOf("minority")],
          [w2, digest],
        ],
      });
      const before = await ledger(f);
      await d.finalize(t.taskId);
      const after = await ledger(f);
      // kitty 3 + 3 seized = 6; min(6, max(0.1, 0.6), seized 3) = 0.6
      const win = { balance: WORKER_STAKE + E("3"), frozen: -WORKER_STAKE };
      expectMoves(
        before,
        after,
        {
          requester: { frozen: -TASK_PRICE },
          appOwner: { balance: PRICES.app },
          datasetOwner: { balance: PRICES.dataset },
          w0: win,
          w1: win,
          w2: win,
          w3: { frozen: -WORKER_STAKE },
          scheduler: { balance: SCHEDULER_STAKE + E("1") + E("0.6"), frozen: -SCHEDULER_STAKE },
        },
        WORKER_STAKE - E("0.6"),
      );
      expect(after.kitty).to.equal(E("5.4"));
    });

    it("rewards the scheduler with the kitty minimum when a tenth of the kitty is below it", async function () {
      const { f, d } = await setup();
      // Pool price 1: worker stake max(0.1, 0.3) = 0.3, scheduler stake 0.3; the workers share 0.9, the scheduler keeps 0.1.
      const poolPrice = E("1");
      const [w0, w1, w2, w3] = f.workers;
      const digest = digestOf("majority");
      const t = await task(f, d, {
        digest,
        overrides: { workerpool: { workerpoolprice: poolPrice }, request: { workerpoolmaxprice: poolPrice } },
        commits: [
          [w3, digestOf("minority")],
          [w0, digest],
          [w1, digest],
          [w2, digest],
        ],
      });
      const stake = E("0.3");
      expect(await f.hub.workerStakeOf(t.dealId)).to.equal(stake);
      expect(await f.hub.schedulerStakeOf(t.dealId)).to.equal(stake);
      const before = await ledger(f);
      expect(before.kitty).to.equal(0n);
      await d.finalize(t.taskId);
      const after = await ledger(f);
      // kitty 0 + 0.3 seized = 0.3; a tenth is 0.03 < 0.1: min(0.3, max(0.1, 0.03), seized 0.3) = 0.1
      const win = { balance: stake + E("0.3"), frozen: -stake };
      expectMoves(
        before,
        after,
        {
          requester: { frozen: -(PRICES.app + PRICES.dataset + poolPrice) },
          appOwner: { balance: PRICES.app },
          datasetOwner: { balance: PRICES.dataset },
          w0: win,
          w1: win,
          w2: win,
          w3: { frozen: -stake },
          scheduler: { balance: stake + E("0.1") + E("0.1"), frozen: -stake },
        },
        E("0.2"),
      );
    });

    it("pays out the whole kitty when it holds only the minimum stake this finalization seized", async function () {
      const { f, d } = await setup();
      // Pool price 0.2: worker stake max(0.1, 0.06) = 0.1, scheduler stake 0.06; the workers share 0.18, 0.06 each,
      // the scheduler keeps 0.02. The kitty always holds at least what the finalization seized, so its own cap can
      // only tie with the seized-stake cap: here kitty = seized = kittyMin = 0.1.
      const poolPrice = E("0.2");
      const [w0, w1, w2, w3] = f.workers;
      const digest = digestOf("majority");
      const t = await task(f, d, {
        digest,
        overrides: { workerpool: { workerpoolprice: poolPrice }, request: { workerpoolmaxprice: poolPrice } },
        commits: [
          [w3, digestOf("minority")],
          [w0, digest],
          [w1, digest],
          [w2, digest],
        ],
      });
      const stake = E("0.1");
      expect(await f.hub.workerStakeOf(t.dealId)).to.equal(stake);
      expect(await f.hub.schedulerStakeOf(t.dealId)).to.equal(E("0.06"));
      const before = await ledger(f);
      expect(before.kitty).to.equal(0n);
      await d.finalize(t.taskId);
      const after = await ledger(f);
      // kitty 0 + 0.1 seized = 0.1: min(0.1, max(0.1, 0.01), seized 0.1) = 0.1, the whole kitty
      const win = { balance: stake + E("0.06"), frozen: -stake };
      expectMoves(
        before,
        after,
        {
          requester: { frozen: -(PRICES.app + PRICES.dataset + poolPrice) },
          appOwner: { balance: PRICES.app },
          datasetOwner: { balance: PRICES.dataset },
          w0: win,
          w1: win,
          w2: win,
          w3: { frozen: -stake },
          scheduler: { balance: E("0.06") + E("0.02") + E("0.1"), frozen: -E("0.06") },
        },
        0n,
      );
      expect(after.kitty).to.equal(0n);
    });
  });

  describe("errors", function () {
    it("reverts with HubNotScheduler when anyone but the deal's scheduler finalizes", async function () {
      const { f, d } = await setup();
      const t = await task(f, d);
      for (const caller of [f.other, f.requester, f.workers[0], f.poolOwner]) {
        await expect(f.hub.connect(caller).finalize(t.taskId, "0x", "0x"))
          .to.be.revertedWithCustomError(f.hub, "HubNotScheduler")
          .withArgs(t.dealId, caller.address);
      }
    });

    it("reverts with HubUnexpectedTaskStatus on a task that was never initialized", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 3n } });
      const taskId = d.taskId(m.dealId, 0);
      await expect(d.finalize(taskId))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(taskId, UNSET, ONLY_REVEALING);
      const unknown = d.taskId(d.nextDealId(m), 0);
      await expect(d.finalize(unknown))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(unknown, UNSET, ONLY_REVEALING);
    });

    it("reverts with HubUnexpectedTaskStatus on an ACTIVE task (no consensus yet)", async function () {
      const { f, d } = await setup();
      const digest = digestOf("result");
      const t = await task(f, d, { commits: [[f.workers[0], digest], [f.workers[1], digest]], revealers: [] });
      expect((await f.hub.viewTask(t.taskId)).status).to.equal(ACTIVE);
      await expect(d.finalize(t.taskId))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(t.taskId, ACTIVE, ONLY_REVEALING);
    });

    it("reverts with HubUnexpectedTaskStatus on a COMPLETED task, leaving every account untouched", async function () {
      const { f, d } = await setup();
      const t = await task(f, d);
      await d.finalize(t.taskId);
      const before = await ledger(f);
      await expect(d.finalize(t.taskId))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(t.taskId, COMPLETED, ONLY_REVEALING);
      expectMoves(before, await ledger(f), {});
    });

    it("reverts with HubUnexpectedTaskStatus on a FAILED (claimed) task", async function () {
      const { f, d } = await setup();
      const t = await task(f, d);
      await d.advanceToFinalDeadline(t.dealId);
      await f.hub.claim(t.dealId, 0);
      await expect(d.finalize(t.taskId))
        .to.be.revertedWithCustomError(f.hub, "HubUnexpectedTaskStatus")
        .withArgs(t.taskId, FAILED, ONLY_REVEALING);
    });

    it("reverts with HubRevealsPending when nobody revealed, even after the reveal deadline", async function () {
      const { f, d } = await setup();
      const t = await task(f, d, { revealers: [] });
      expect((await f.hub.viewTask(t.taskId)).status).to.equal(REVEALING);
      await expect(d.finalize(t.taskId))
        .to.be.revertedWithCustomError(f.hub, "HubRevealsPending")
        .withArgs(t.taskId, 0n, 3n);
      await d.nextBlockAt(await d.revealDeadline(t.taskId));
      await expect(d.finalize(t.taskId))
        .to.be.revertedWithCustomError(f.hub, "HubRevealsPending")
        .withArgs(t.taskId, 0n, 3n);
      await d.nextBlockAt(await d.finalDeadline(t.dealId), -1n);
      await expect(d.finalize(t.taskId))
        .to.be.revertedWithCustomError(f.hub, "HubRevealsPending")
        .withArgs(t.taskId, 0n, 3n);
    });

    it("reverts with HubRevealsPending when 1 of 3 winners revealed before the reveal deadline", async function () {
      const { f, d } = await setup();
      const t = await task(f, d, { revealers: [f.workers[0]] });
      await expect(d.finalize(t.taskId))
        .to.be.revertedWithCustomError(f.hub, "HubRevealsPending")
        .withArgs(t.taskId, 1n, 3n);
      await d.nextBlockAt(await d.revealDeadline(t.taskId), -1n);
      await expect(d.finalize(t.taskId))
        .to.be.revertedWithCustomError(f.hub, "HubRevealsPending")
        .withArgs(t.taskId, 1n, 3n);
    });

    it("succeeds one second before the final deadline and reverts with HubDeadlineReached at it", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 3n, volume: 2n } });
      const first = await task(f, d, { dealId: m.dealId, index: 0 });
      const second = await task(f, d, { dealId: m.dealId, index: 1 });
      const finalDeadline = await d.finalDeadline(m.dealId);
      await d.nextBlockAt(finalDeadline, -1n);
      await expect(d.finalize(first.taskId)).to.emit(f.hub, "TaskFinalized");
      expect((await f.hub.viewTask(first.taskId)).status).to.equal(COMPLETED);
      await d.nextBlockAt(finalDeadline);
      await expect(d.finalize(second.taskId))
        .to.be.revertedWithCustomError(f.hub, "HubDeadlineReached")
        .withArgs(second.taskId, finalDeadline);
      expect((await f.hub.viewTask(second.taskId)).status).to.equal(REVEALING);
    });

    it("reverts with HubCallbackDataMismatch when a deal with a callback gets data that does not hash to the digest", async function () {
      const { f, d } = await setup();
      const consumer = await new ResultStoreConsumer__factory(f.owner).deploy(await f.hub.getAddress());
      const data = "0x2a";
      const t = await task(f, d, {
        digest: callbackDigest(data),
        overrides: { request: { callback: await consumer.getAddress() } },
      });
      const wrong = "0x2b";
      await expect(d.finalize(t.taskId, "0x", wrong))
        .to.be.revertedWithCustomError(f.hub, "HubCallbackDataMismatch")
        .withArgs(t.taskId, t.digest, keccak256(wrong));
      // With a callback the data is required: empty data hashes to keccak256("").
      await expect(d.finalize(t.taskId, "0x", "0x"))
        .to.be.revertedWithCustomError(f.hub, "HubCallbackDataMismatch")
        .withArgs(t.taskId, t.digest, keccak256("0x"));
      expect(await consumer.received()).to.equal(0n);
      expect((await f.hub.viewTask(t.taskId)).status).to.equal(REVEALING);
    });

    it("reverts with HubCallbackDataMismatch when a deal without a callback gets non-empty data that does not hash to the digest", async function () {
      const { f, d } = await setup();
      const t = await task(f, d);
      const wrong = hexlify(toUtf8Bytes("not the result"));
      await expect(d.finalize(t.taskId, "0x", wrong))
        .to.be.revertedWithCustomError(f.hub, "HubCallbackDataMismatch")
        .withArgs(t.taskId, t.digest, keccak256(wrong));
    });
  });

  describe("result data", function () {
    it("stores callback data that hashes to the digest on a deal without callback and returns it from resultFor", async function () {
      const { f, d } = await setup();
      const data = hexlify(toUtf8Bytes("the full result, delivered on chain"));
      const t = await task(f, d, { digest: callbackDigest(data) });
      await expect(d.finalize(t.taskId, RESULTS, data))
        .to.emit(f.hub, "TaskFinalized")
        .withArgs(t.taskId, callbackDigest(data), RESULTS);
      expect(await f.hub.resultFor(t.taskId)).to.equal(data);
    });

    it("emits the results argument as given, without storing it", async function () {
      const { f, d } = await setup();
      const t = await task(f, d);
      const results = hexlify(toUtf8Bytes("x".repeat(300)));
      await expect(d.finalize(t.taskId, results)).to.emit(f.hub, "TaskFinalized").withArgs(t.taskId, t.digest, results);
      expect(await f.hub.resultFor(t.taskId)).to.equal(t.digest);
    });
  });

  describe("callbacks", function () {
    const DATA = "0x2a"; // short: a ResultStoreConsumer stores it well within the 100 000 gas it is given

    async function callbackTask(f: Fixture, d: TaskDriver, callback: string) {
      return task(f, d, { digest: callbackDigest(DATA), overrides: { request: { callback } } });
    }

    it("delivers (taskId, data) to the deal's consumer exactly once", async function () {
      const { f, d } = await setup();
      const consumer = await new ResultStoreConsumer__factory(f.owner).deploy(await f.hub.getAddress());
      const t = await callbackTask(f, d, await consumer.getAddress());
      const before = await ledger(f);
      await expect(d.finalize(t.taskId, RESULTS, DATA))
        .to.emit(consumer, "ResultReceived")
        .withArgs(t.taskId, DATA)
        .and.to.emit(f.hub, "TaskFinalized")
        .withArgs(t.taskId, t.digest, RESULTS)
        .and.not.to.emit(f.hub, "CallbackFailed");
      expect(await consumer.received()).to.equal(1n);
      expect(await consumer.results(t.taskId)).to.equal(DATA);
      expect(await f.hub.resultFor(t.taskId)).to.equal(DATA);
      const win = { balance: WORKER_STAKE + E("3"), frozen: -WORKER_STAKE };
      expectMoves(before, await ledger(f), {
        requester: { frozen: -TASK_PRICE },
        appOwner: { balance: PRICES.app },
        datasetOwner: { balance: PRICES.dataset },
        w0: win,
        w1: win,
        w2: win,
        scheduler: { balance: SCHEDULER_STAKE + E("1"), frozen: -SCHEDULER_STAKE },
      });
    });

    for (const [name, deploy] of [
      ["a reverting consumer", async (f: Fixture) => new RevertingConsumer__factory(f.owner).deploy()],
      ["a consumer that burns all its gas", async (f: Fixture) => new GasBurnerConsumer__factory(f.owner).deploy()],
    ] as const) {
      it(`completes the task and emits CallbackFailed with ${name}`, async function () {
        const { f, d } = await setup();
        const consumer = await deploy(f);
        const address = await consumer.getAddress();
        const t = await callbackTask(f, d, address);
        const before = await ledger(f);
        await expect(d.finalize(t.taskId, RESULTS, DATA))
          .to.emit(f.hub, "CallbackFailed")
          .withArgs(t.taskId, address)
          .and.to.emit(f.hub, "TaskFinalized")
          .withArgs(t.taskId, t.digest, RESULTS);
        expect((await f.hub.viewTask(t.taskId)).status).to.equal(COMPLETED);
        expect(await f.hub.resultFor(t.taskId)).to.equal(DATA);
        const win = { balance: WORKER_STAKE + E("3"), frozen: -WORKER_STAKE };
        expectMoves(before, await ledger(f), {
          requester: { frozen: -TASK_PRICE },
          appOwner: { balance: PRICES.app },
          datasetOwner: { balance: PRICES.dataset },
          w0: win,
          w1: win,
          w2: win,
          scheduler: { balance: SCHEDULER_STAKE + E("1"), frozen: -SCHEDULER_STAKE },
        });
      });
    }

    it("refuses a consumer's re-entrant finalize: the task completes once and CallbackFailed is emitted", async function () {
      const { f, d } = await setup();
      const consumer = await new ReentrantConsumer__factory(f.owner).deploy(await f.hub.getAddress());
      const address = await consumer.getAddress();
      const t = await callbackTask(f, d, address);
      const before = await ledger(f);
      await expect(d.finalize(t.taskId, RESULTS, DATA))
        .to.emit(f.hub, "CallbackFailed")
        .withArgs(t.taskId, address)
        .and.to.emit(f.hub, "TaskFinalized")
        .withArgs(t.taskId, t.digest, RESULTS);
      expect(await consumer.reentered()).to.equal(false);
      expect((await f.hub.viewTask(t.taskId)).status).to.equal(COMPLETED);
      const after = await ledger(f);
      // Paid exactly once.
      expect(after.accounts.requester.frozen - before.accounts.requester.frozen).to.equal(-TASK_PRICE);
      expect(after.accounts.appOwner.balance - before.accounts.appOwner.balance).to.equal(PRICES.app);
      expect(after.accounts.w0.balance - before.accounts.w0.balance).to.equal(WORKER_STAKE + E("3"));
    });

    it("gives the consumer the guaranteed 100 000 gas (the callee sees at least 95 000)", async function () {
      const { f, d } = await setup();
      const consumer = await new GasMeterConsumer__factory(f.owner).deploy();
      const t = await callbackTask(f, d, await consumer.getAddress());
      await expect(d.finalize(t.taskId, "0x", DATA)).not.to.emit(f.hub, "CallbackFailed");
      const gas = await consumer.gasReceived();
      expect(gas).to.be.gte(95_000n);
      expect(gas).to.be.lte(CALLBACK_GAS);
    });

    it("reverts a finalize sent with too little gas for the callback, leaving the task REVEALING and the consumer unserved", async function () {
      const { f, d } = await setup();
      const consumer = await new ResultStoreConsumer__factory(f.owner).deploy(await f.hub.getAddress());
      const t = await callbackTask(f, d, await consumer.getAddress());
      const needs = await f.hub.connect(f.scheduler).finalize.estimateGas(t.taskId, "0x", DATA);
      const before = await ledger(f);
      await expect(d.finalize(t.taskId, "0x", DATA, { gasLimit: needs - 60_000n }))
        .to.be.revertedWithCustomError(f.hub, "HubNotEnoughGasForCallback")
        .withArgs(t.taskId, (gasLeft: bigint) => gasLeft < CALLBACK_GAS_NEEDED, CALLBACK_GAS_NEEDED);
      expect((await f.hub.viewTask(t.taskId)).status).to.equal(REVEALING);
      expect(await consumer.received()).to.equal(0n);
      expectMoves(before, await ledger(f), {});
      // With the estimated gas it goes through and the consumer is served.
      await expect(d.finalize(t.taskId, "0x", DATA, { gasLimit: needs })).not.to.emit(f.hub, "CallbackFailed");
      expect(await consumer.received()).to.equal(1n);
    });

    it("never completes with a starved callback, whatever the gas limit: it reverts or the consumer is served", async function () {
      const { f, d } = await setup();
      const consumer = await new ResultStoreConsumer__factory(f.owner).deploy(await f.hub.getAddress());
      const t = await callbackTask(f, d, await consumer.getAddress());
      const needs = await f.hub.connect(f.scheduler).finalize.estimateGas(t.taskId, "0x", DATA);
      const limits = new Set<bigint>([80_000n, 150_000n, needs - 1n, needs, needs + 1n]);
      for (let g = needs - 60_000n; g <= needs + 6_000n; g += 1_500n) limits.add(g);
      const snapshot = await takeSnapshot();
      let reverted = 0;
      let served = 0;
      for (const gasLimit of [...limits].sort((a, b) => (a < b ? -1 : 1))) {
        let receipt;
        try {
          receipt = await (await d.finalize(t.taskId, "0x", DATA, { gasLimit })).wait();
        } catch (e: unknown) {
          const err = e as { data?: unknown; message?: string };
          if (typeof err.data === "string" && err.data !== "0x") {
            const parsed = f.hub.interface.parseError(err.data);
            expect(parsed?.name, `gas limit ${gasLimit}`).to.equal("HubNotEnoughGasForCallback");
            expect(parsed!.args[0]).to.equal(t.taskId);
            expect(parsed!.args[1]).to.be.lt(CALLBACK_GAS_NEEDED);
            expect(parsed!.args[2]).to.equal(CALLBACK_GAS_NEEDED);
          } else {
            expect(String(err.message), `gas limit ${gasLimit}`).to.match(/out of gas/i);
          }
          expect((await f.hub.viewTask(t.taskId)).status).to.equal(REVEALING);
          expect(await consumer.received()).to.equal(0n);
          reverted++;
          continue;
        }
        const names = receipt!.logs
          .filter((l) => l.address === receipt!.to)
          .map((l) => f.hub.interface.parseLog(l)?.name);
        expect(names, `gas limit ${gasLimit}`).to.include("TaskFinalized");
        expect(names, `gas limit ${gasLimit}`).not.to.include("CallbackFailed");
        expect(await consumer.received(), `gas limit ${gasLimit}`).to.equal(1n);
        expect(await consumer.results(t.taskId)).to.equal(DATA);
        served++;
        await snapshot.restore();
      }
      expect(reverted).to.be.greaterThan(0);
      expect(served).to.be.greaterThan(0);
    });
  });
});
