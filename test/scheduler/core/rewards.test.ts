/**
 * scheduler/core/rewards: the settlement arithmetic mirrored from the contracts. Table rows per formula, each citing
 * the Solidity it mirrors (RewardLib.sol, Hub.sol), then whole settlements checked against the real Hub on the
 * in-process Hardhat network: the escrow moves the contract makes equal the payout the scheduler predicts.
 */
import { expect } from "chai";
import { parseEther } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { isCoreError } from "../../../scheduler/core/errors";
import {
  ClaimPayout,
  DealTerms,
  FinalizePayout,
  claimPayout,
  finalizePayout,
  kittyReward,
  schedulerStake,
  singleWorkerPayout,
  splitPoolPrice,
  workerStake,
} from "../../../scheduler/core/rewards";
import { KITTY_MIN, MIN_WORKER_STAKE, type Fixture } from "../../helpers/fixture";
import { RESULTS, TaskDriver, digestOf, setup } from "../../helpers/driver";
import { Change, expectMoves, ledger, parties } from "../../helpers/ledger";

const E = parseEther;

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isCoreError(e), String(e)).to.equal(true);
    return (e as { code: string }).code;
  }
  return "none";
}

describe("scheduler/core/rewards", () => {
  describe("workerStake = max(min, price·ratio/100) — RewardLib.sol l. 12–15", () => {
    const rows: [bigint, number, bigint, bigint][] = [
      [E("10"), 30, E("0.1"), E("3")],
      [0n, 30, E("0.1"), E("0.1")], // a free pool still stakes the protocol minimum
      [E("0.1"), 30, E("0.1"), E("0.1")], // 0.03 < minimum
      [99n, 30, 1n, 29n], // rounds down like Solidity
      [E("10"), 0, 5n, 5n],
    ];
    for (const [price, ratio, min, expected] of rows) it(`price ${price}, ratio ${ratio} %, min ${min} → ${expected}`, () => expect(workerStake(price, ratio, min)).to.equal(expected));
  });

  describe("schedulerStake = price·30/100 — RewardLib.sol l. 18–20", () => {
    const rows: [bigint, bigint][] = [
      [E("10"), E("3")],
      [E("10") + 2n, E("3")],
      [9n, 2n],
      [0n, 0n],
    ];
    for (const [price, expected] of rows) it(`price ${price} → ${expected}`, () => expect(schedulerStake(price)).to.equal(expected));
  });

  describe("split: workers' part = price − price·ratio/100, split evenly; dust to the scheduler — RewardLib.sol l. 23–31", () => {
    const rows: [bigint, number, number, bigint, bigint][] = [
      [E("10"), 10, 3, E("3"), E("1")],
      [100n, 10, 3, 30n, 10n],
      [100n, 10, 7, 12n, 16n], // 90 / 7 = 12, dust 6 to the scheduler
      [E("10") + 2n, 10, 3, E("3"), E("1") + 2n],
      [100n, 0, 3, 33n, 1n],
      [100n, 100, 2, 0n, 100n],
      [1n, 50, 1, 1n, 0n], // 1·50/100 = 0: the whole wei to the worker
      [0n, 10, 2, 0n, 0n],
    ];
    for (const [price, ratio, winners, per, sched] of rows) {
      it(`price ${price}, scheduler ${ratio} %, ${winners} winners → ${per} each, ${sched} to the scheduler`, () => {
        expect(splitPoolPrice(price, ratio, winners)).to.deep.equal({ perWorker: per, toScheduler: sched });
      });
    }
  });

  describe("kittyReward = min(kitty, max(kittyMin, kitty·10/100), seized) — RewardLib.sol l. 37–42", () => {
    const rows: [bigint, bigint, bigint, bigint][] = [
      [E("100"), E("0.1"), E("50"), E("10")],
      [E("100"), E("0.1"), E("3"), E("3")], // capped by what this task seized
      [E("0.5"), E("0.1"), E("3"), E("0.1")], // 10 % = 0.05 < kittyMin
      [E("0.05"), E("0.1"), E("3"), E("0.05")], // kittyMin > kitty: the whole kitty
      [E("100"), E("0.1"), 0n, 0n], // nothing seized, nothing earned
      [0n, E("0.1"), E("3"), 0n],
    ];
    for (const [kitty, min, seized, expected] of rows) {
      it(`kitty ${kitty}, min ${min}, seized ${seized} → ${expected}`, () => expect(kittyReward(kitty, min, seized)).to.equal(expected));
    }
  });

  describe("finalizePayout — Hub.sol finalize l. 265–288", () => {
    const deal: DealTerms = { appPrice: E("1"), datasetPrice: E("2"), workerpoolPrice: E("10"), workerStakeRatio: 30, schedulerRewardRatio: 10 };
    const protocol = { minWorkerStake: E("0.1"), kittyMin: E("0.1") };

    it("three winners and a dissenter: the kitty reward is computed after the dissenter's stake reached the kitty (l. 284–285)", () => {
      const p = finalizePayout(deal, protocol, 0n, [
        { worker: "w0", revealed: true },
        { worker: "w3", revealed: false },
        { worker: "w1", revealed: true },
        { worker: "w2", revealed: true },
      ]);
      expect(p.requesterSpent).to.equal(E("13"));
      expect([p.appOwner, p.datasetOwner, p.stake, p.perWinner]).to.deep.equal([E("1"), E("2"), E("3"), E("3")]);
      expect(p.winners.map((w) => w.worker)).to.deep.equal(["w0", "w1", "w2"]);
      expect(p.losers).to.deep.equal([{ worker: "w3", seized: E("3") }]);
      // kitty 0 + 3 seized → 10 % = 0.3 (≥ kittyMin 0.1, ≤ seized 3)
      expect([p.seized, p.kittyReward, p.schedulerShare, p.schedulerReward]).to.deep.equal([E("3"), E("0.3"), E("1"), E("1.3")]);
      expect([p.schedulerStakeReturned, p.kittyBefore, p.kittyAfter]).to.deep.equal([E("3"), 0n, E("2.7")]);
    });

    it("splits by the revealed winners only (l. 283): a silent winner loses its stake and shrinks nobody's share", () => {
      const p = finalizePayout(deal, protocol, E("50"), [
        { worker: "w0", revealed: true },
        { worker: "w1", revealed: false },
      ]);
      expect(p.perWinner).to.equal(E("9"));
      expect(p.schedulerShare).to.equal(E("1"));
      // kitty 50 + 3 = 53 → 10 % = 5.3, capped by the 3 seized
      expect(p.kittyReward).to.equal(E("3"));
      expect(p.kittyAfter).to.equal(E("50"));
    });

    it("refuses a finalize without any revealed winner (the Hub reverts, l. 274)", () => {
      expect(code(() => finalizePayout(deal, protocol, 0n, [{ worker: "w0", revealed: false }]))).to.equal("NO_REVEALED_WINNER");
      expect(code(() => finalizePayout(deal, protocol, 0n, []))).to.equal("NO_REVEALED_WINNER");
    });

    it("refuses amounts and ratios the contracts cannot hold", () => {
      expect(code(() => finalizePayout({ ...deal, appPrice: -1n }, protocol, 0n, [{ worker: "w", revealed: true }]))).to.equal("INVALID_AMOUNT");
      expect(code(() => finalizePayout({ ...deal, workerStakeRatio: 101 }, protocol, 0n, [{ worker: "w", revealed: true }]))).to.equal("INVALID_AMOUNT");
      expect(code(() => finalizePayout(deal, protocol, 0n, Array.from({ length: 33 }, () => ({ worker: "w", revealed: true }))))).to.equal("INVALID_AMOUNT");
      expect(code(() => splitPoolPrice(E("1"), 10, 0))).to.equal("NO_REVEALED_WINNER");
    });

    it("single-worker path: no stake moves, nothing seized, no kitty reward (l. 318–320)", () => {
      const p = singleWorkerPayout(deal, protocol, E("100"), "w0");
      expect([p.stake, p.perWinner, p.schedulerShare, p.kittyReward, p.kittyAfter]).to.deep.equal([0n, E("9"), E("1"), 0n, E("100")]);
      expect(p.winners).to.deep.equal([{ worker: "w0", reward: E("9"), stakeReturned: 0n }]);
    });

    it("claim: requester refunded, scheduler stake and rejected winners' stakes seized, others unlocked (l. 456–482)", () => {
      const p = claimPayout(deal, protocol, E("1"), [
        { worker: "w0", rejected: true },
        { worker: "w1", rejected: false },
      ]);
      expect(p.requesterRefund).to.equal(E("13"));
      expect(p.schedulerSeized).to.equal(E("3"));
      expect(p.seized).to.deep.equal([{ worker: "w0", amount: E("3") }]);
      expect(p.unlocked).to.deep.equal([{ worker: "w1", amount: E("3") }]);
      expect(p.kittyAfter).to.equal(E("7"));
    });
  });

  // ------------------------------------------------------------------------------------------- against the real Hub

  describe("matches the real Hub's escrow moves", function () {
    async function terms(f: Fixture, dealId: string): Promise<DealTerms> {
      const d = await f.hub.viewDeal(dealId);
      return { appPrice: d.appPrice, datasetPrice: d.datasetPrice, workerpoolPrice: d.workerpoolPrice, workerStakeRatio: d.workerStakeRatio, schedulerRewardRatio: d.schedulerRewardRatio };
    }
    const protocol = { minWorkerStake: MIN_WORKER_STAKE, kittyMin: KITTY_MIN };
    const add = (c: Change, name: string, balance: bigint, frozen: bigint) => {
      const e = (c[name] ??= {});
      e.balance = (e.balance ?? 0n) + balance;
      e.frozen = (e.frozen ?? 0n) + frozen;
      if (e.balance === 0n) delete e.balance;
      if (e.frozen === 0n) delete e.frozen;
    };
    function finalizeMoves(f: Fixture, p: FinalizePayout): Change {
      const names = Object.fromEntries(Object.entries(parties(f)).map(([n, a]) => [a, n]));
      const c: Change = {};
      add(c, "requester", 0n, -p.requesterSpent);
      if (p.appOwner) add(c, "appOwner", p.appOwner, 0n);
      if (p.datasetOwner) add(c, "datasetOwner", p.datasetOwner, 0n);
      for (const w of p.winners) add(c, names[w.worker], w.stakeReturned + w.reward, -w.stakeReturned);
      for (const l of p.losers) add(c, names[l.worker], 0n, -l.seized);
      add(c, "scheduler", p.schedulerStakeReturned + p.schedulerReward, -p.schedulerStakeReturned);
      return c;
    }
    function claimMoves(f: Fixture, p: ClaimPayout): Change {
      const names = Object.fromEntries(Object.entries(parties(f)).map(([n, a]) => [a, n]));
      const c: Change = {};
      add(c, "requester", p.requesterRefund, -p.requesterRefund);
      add(c, "scheduler", 0n, -p.schedulerSeized);
      for (const s of p.seized) add(c, names[s.worker], 0n, -s.amount);
      for (const u of p.unlocked) add(c, names[u.worker], u.amount, -u.amount);
      return c;
    }
    /** Puts the scheduler stake of a never-run task into the kitty. */
    async function fillKitty(d: TaskDriver, poolPrice: bigint) {
      const m = await d.match({ workerpool: { workerpoolprice: poolPrice }, request: { workerpoolmaxprice: poolPrice } });
      await d.advanceToFinalDeadline(m.dealId);
      await d.f.hub.claim(m.dealId, 0);
    }

    it("trust 3 with a dissenter, a kitty already filled, a pool price with rounding dust", async function () {
      const { f, d } = await setup();
      await fillKitty(d, E("40"));
      const price = E("10") + 7n;
      const m = await d.match({ workerpool: { workerpoolprice: price }, request: { workerpoolmaxprice: price, trust: 3n } });
      const taskId = d.taskId(m.dealId, 0);
      const [w0, w1, w2, w3] = f.workers;
      const digest = digestOf("agreed");
      const commits: [HardhatEthersSigner, string][] = [[w0, digest], [w3, digestOf("dissent")], [w1, digest], [w2, digest]];
      for (const [w, dg] of commits) await d.contribute(w, m.dealId, 0, dg);
      for (const w of [w0, w1, w2]) await d.reveal(w, taskId, digest);
      const before = await ledger(f);
      const p = finalizePayout(await terms(f, m.dealId), protocol, before.kitty, commits.map(([w, dg]) => ({ worker: w.address, revealed: dg === digest })));
      await d.finalize(taskId, RESULTS);
      expectMoves(before, await ledger(f), finalizeMoves(f, p), p.kittyAfter - p.kittyBefore);
    });

    it("trust 2 where one winner stays silent past the reveal deadline", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 2n } });
      const taskId = d.taskId(m.dealId, 0);
      const [w0, w1, w2] = f.workers;
      const digest = digestOf("agreed");
      await d.contribute(w2, m.dealId, 0, digestOf("dissent"));
      await d.contribute(w0, m.dealId, 0, digest);
      await d.contribute(w1, m.dealId, 0, digest);
      await d.reveal(w0, taskId, digest);
      await d.advanceToRevealDeadline(taskId);
      const before = await ledger(f);
      const p = finalizePayout(await terms(f, m.dealId), protocol, before.kitty, [
        { worker: w2.address, revealed: false },
        { worker: w0.address, revealed: true },
        { worker: w1.address, revealed: false },
      ]);
      await d.finalize(taskId, RESULTS);
      expectMoves(before, await ledger(f), finalizeMoves(f, p), p.kittyAfter - p.kittyBefore);
    });

    it("single-worker contributeAndFinalize", async function () {
      const { f, d } = await setup();
      await fillKitty(d, E("10"));
      const m = await d.match({ request: { trust: 1n } });
      const before = await ledger(f);
      const p = singleWorkerPayout(await terms(f, m.dealId), protocol, before.kitty, f.workers[0].address);
      await d.contributeAndFinalize(f.workers[0], m.dealId, 0, digestOf("alone"));
      expectMoves(before, await ledger(f), finalizeMoves(f, p), 0n);
    });

    it("claim after a reopen: silent winners seized, the dissenter unlocked", async function () {
      const { f, d } = await setup();
      const m = await d.match({ request: { trust: 2n } });
      const taskId = d.taskId(m.dealId, 0);
      const [w0, w1, w2] = f.workers;
      await d.contribute(w2, m.dealId, 0, digestOf("dissent"));
      await d.contribute(w0, m.dealId, 0, digestOf("agreed"));
      await d.contribute(w1, m.dealId, 0, digestOf("agreed"));
      await d.advanceToRevealDeadline(taskId);
      await f.hub.connect(f.scheduler).reopen(taskId);
      await d.advanceToFinalDeadline(m.dealId);
      const before = await ledger(f);
      const p = claimPayout(await terms(f, m.dealId), protocol, before.kitty, [
        { worker: w2.address, rejected: false },
        { worker: w0.address, rejected: true },
        { worker: w1.address, rejected: true },
      ]);
      await f.hub.claim(m.dealId, 0);
      expectMoves(before, await ledger(f), claimMoves(f, p), p.kittyAfter - p.kittyBefore);
    });
  });
});
