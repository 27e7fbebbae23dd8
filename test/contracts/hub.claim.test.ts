/**
 * Hub.claim and Hub.claimDeal: after the final deadline anyone fails a task that is not COMPLETED. The requester is
 * refunded, the scheduler's stake is seized into the kitty and every contributor's stake is unlocked, whatever stage
 * the task reached (never initialized, initialized, consensus without reveal, partial reveals, reopened).
 */
import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { ZeroHash, parseEther } from "ethers";
import { INITIAL_DEPOSIT, OrderOverrides, PRICES, deployFixture, Fixture } from "../helpers/fixture";
import { TaskDriver, digestOf } from "../helpers/driver";
import { dealId as dealIdOf } from "../../sdk/eip712";

// ---------------------------------------------------------------------------------------------------------- helpers

const E = parseEther;
const UNSET = 0n;
const ACTIVE = 1n;
const REVEALING = 2n;
const COMPLETED = 3n;
const FAILED = 4n;
/** `allowed` bitmap of claim: UNSET, ACTIVE or REVEALING. */
const CLAIMABLE = (1n << UNSET) | (1n << ACTIVE) | (1n << REVEALING);
const PRICE = PRICES.app + PRICES.dataset + PRICES.workerpool; // 13 ether
const WORKER_STAKE = E("3");
const SCHEDULER_STAKE = E("3");

interface Entry {
  balance: bigint;
  frozen: bigint;
}
interface Ledger {
  accounts: Record<string, Entry>;
  kitty: bigint;
  held: bigint;
}
type Change = Record<string, Partial<Entry>>;

function parties(f: Fixture): Record<string, string> {
  const p: Record<string, string> = {
    requester: f.requester.address,
    scheduler: f.scheduler.address,
    appOwner: f.appOwner.address,
    datasetOwner: f.datasetOwner.address,
    poolOwner: f.poolOwner.address,
    other: f.other.address,
    owner: f.owner.address,
  };
  f.workers.forEach((w, i) => (p[`w${i}`] = w.address));
  return p;
}

/** Every party's escrow account, the kitty and the hub's token holdings. */
async function ledger(f: Fixture): Promise<Ledger> {
  const accounts: Record<string, Entry> = {};
  for (const [name, address] of Object.entries(parties(f))) {
    const [balance, frozen] = await f.hub.accountOf(address);
    accounts[name] = { balance, frozen };
  }
  return { accounts, kitty: await f.hub.kitty(), held: await f.token.balanceOf(await f.hub.getAddress()) };
}

/**
 * Asserts every party moved exactly by `change` (parties not listed did not move at all), the kitty by `kitty`,
 * no token left or entered the hub, and the hub still holds exactly every balance, every frozen amount and the kitty.
 */
function expectMoves(before: Ledger, after: Ledger, change: Change, kitty = 0n) {
  for (const name of Object.keys(change)) {
    if (!(name in before.accounts)) throw new Error(`unknown party ${name}`);
  }
  const actual: Record<string, Entry> = {};
  const expected: Record<string, Entry> = {};
  for (const name of Object.keys(before.accounts)) {
    actual[name] = {
      balance: after.accounts[name].balance - before.accounts[name].balance,
      frozen: after.accounts[name].frozen - before.accounts[name].frozen,
    };
    expected[name] = { balance: change[name]?.balance ?? 0n, frozen: change[name]?.frozen ?? 0n };
  }
  expect(actual).to.deep.equal(expected);
  expect(after.kitty - before.kitty, "kitty change").to.equal(kitty);
  expect(after.held, "tokens held by the hub").to.equal(before.held);
  let total = after.kitty;
  for (const e of Object.values(after.accounts)) total += e.balance + e.frozen;
  expect(after.held, "hub solvency").to.equal(total);
}

async function setup() {
  const f = await loadFixture(deployFixture);
  return { f, d: new TaskDriver(f) };
}

/** The moves of one claimed default task: refund, seized scheduler stake, `unlocked` contributors' stakes back. */
function claimMoves(unlocked: string[], tasks = 1n): Change {
  const change: Change = {
    requester: { balance: tasks * PRICE, frozen: -tasks * PRICE },
    scheduler: { frozen: -tasks * SCHEDULER_STAKE },
  };
  for (const w of unlocked) change[w] = { balance: WORKER_STAKE, frozen: -WORKER_STAKE };
  return change;
}

async function matchTrust(d: TaskDriver, trust: bigint, o: OrderOverrides = {}) {
  return d.match({ ...o, request: { trust, ...o.request } });
}

async function contributeAll(d: TaskDriver, dealId: string, index: number, commits: [HardhatEthersSigner, string][]) {
  for (const [w, digest] of commits) await d.contribute(w, dealId, index, digest);
}

// ---------------------------------------------------------------------------------------------------------- tests

describe("Hub.claim", function () {
  describe("refunds", function () {
    it("fails a never-initialized task: refunds the requester and seizes the scheduler's stake into the kitty", async function () {
      const { f, d } = await setup();
      const m = await matchTrust(d, 3n);
      const taskId = d.taskId(m.dealId, 0);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([INITIAL_DEPOSIT - PRICE, PRICE]);
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
      const m = await matchTrust(d, 3n);
      await f.hub.connect(f.scheduler).initialize(m.dealId, 0);
      await d.advanceToFinalDeadline(m.dealId);
      const before = await ledger(f);
      await expect(f.hub.claim(m.dealId, 0)).to.emit(f.hub, "TaskClaimed").withArgs(d.taskId(m.dealId, 0), m.dealId, 0n);
      expectMoves(before, await ledger(f), claimMoves([]), SCHEDULER_STAKE);
    });

    it("unlocks every contributor's stake on an initialized task without consensus", async function () {
      const { f, d } = await setup();
      const m = await matchTrust(d, 3n);
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
      const win = await matchTrust(d, 1n);
      await d.contributeAndFinalize(w3, win.dealId, 0, digestOf("win"));
      const m = await matchTrust(d, 3n);
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
      const m = await matchTrust(d, 3n);
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

    it("unlocks the stakes of winners rejected by a reopen as well as later contributors", async function () {
      const { f, d } = await setup();
      const [w0, w1, w2, w3] = f.workers;
      const m = await matchTrust(d, 3n);
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
      expectMoves(before, await ledger(f), claimMoves(["w0", "w1", "w2", "w3"]), SCHEDULER_STAKE);
    });

    it("leaves the other tasks of the deal frozen", async function () {
      const { f, d } = await setup();
      const m = await matchTrust(d, 3n, { request: { volume: 3n } });
      await d.advanceToFinalDeadline(m.dealId);
      await f.hub.claim(m.dealId, 1);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([INITIAL_DEPOSIT - 2n * PRICE, 2n * PRICE]);
      expect(await f.hub.frozenOf(f.scheduler.address)).to.equal(2n * SCHEDULER_STAKE);
      expect((await f.hub.viewTask(d.taskId(m.dealId, 0))).status).to.equal(UNSET);
      expect((await f.hub.viewTask(d.taskId(m.dealId, 2))).status).to.equal(UNSET);
    });
  });

  describe("errors", function () {
    it("reverts with HubDeadlineNotReached one second before the final deadline and succeeds at it", async function () {
      const { f, d } = await setup();
      const m = await matchTrust(d, 3n);
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
      const m = await matchTrust(d, 1n);
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
      const m = await matchTrust(d, 3n);
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
      await matchTrust(d, 3n);
      for (const dealId of [dealIdOf(2), ZeroHash]) {
        await expect(f.hub.claim(dealId, 0)).to.be.revertedWithCustomError(f.hub, "HubUnknownDeal").withArgs(dealId);
      }
    });

    it("reverts with HubTaskIndexOutOfRange for an index not below the deal's volume", async function () {
      const { f, d } = await setup();
      const m = await matchTrust(d, 3n, { request: { volume: 4n } });
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
    const m = await matchTrust(d, 1n, { request: { volume: 4n } });
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
    expect(after.accounts.requester).to.deep.equal({ balance: INITIAL_DEPOSIT - PRICE, frozen: 0n });
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
    await mixedDeal(f, d);
    for (const dealId of [dealIdOf(2), dealIdOf(99), ZeroHash]) {
      await expect(f.hub.claimDeal(dealId)).to.be.revertedWithCustomError(f.hub, "HubUnknownDeal").withArgs(dealId);
    }
  });
});
