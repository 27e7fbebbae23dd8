/**
 * scheduler/router.ts, speculative deals: the JobRouter starts a deal's tasks while its own `matchOrders` is being
 * mined (`speculate`), runs them without putting anything on chain, and then either confirms the deal (its
 * DealMatched, or reconciliation with the chain) or drops it (`abandon`, or reconciliation when the match never
 * landed).
 *
 * The router runs for real on an in-memory store; the chain and the WorkerManager are fakes that record what the
 * router asks of them (router-world.ts). Workers are real ethers wallets: their Contribution signatures are checked by
 * the router.
 */
import { expect } from "chai";
import { Wallet, id, verifyTypedData } from "ethers";
import type { HubEvent } from "../../scheduler/chain/events";
import { openDatabase } from "../../scheduler/store/state";
import { getDeal, upsertDeal, type NewDeal } from "../../scheduler/store/deals";
import { taskTimeline } from "../../scheduler/store/events";
import { getReplica, listReplicas } from "../../scheduler/store/replicas";
import { getTask, listTasks, recordDealMatched } from "../../scheduler/store/tasks";
import { MESSAGE_TYPES, dealId as dealIdOf } from "../../sdk/eip712";
import { commitment } from "../../sdk/orders";
import {
  DIGEST,
  MATCH_TX,
  POOL,
  TIMEREF,
  assignsOf,
  commit,
  kinds,
  nowSec,
  opened,
  ordersFor,
  taskOf,
  until,
  world,
  type World,
} from "./router-world";

/** A speculative deal of one task with quorum 2 (three replicas), two of them committed to the same digest. */
async function speculativeQuorum(w: World) {
  const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust: 2n });
  await w.router.speculate(expected, orders);
  const taskId = taskOf(expected.dealId, 0);
  await until(() => assignsOf(w, taskId).length === 3, "three replicas of the task");
  const [a, b, c] = assignsOf(w, taskId);
  await commit(w, a, DIGEST);
  await commit(w, b, DIGEST);
  // the third replica is cancelled by the very decision that saw the quorum (and would have relayed it)
  await until(() => w.manager.frames("cancel", (f) => f.replicaId === c.replicaId).length === 1, "the spare replica's cancel");
  return { orders, expected, taskId, winners: [a, b], spare: c };
}

// ------------------------------------------------------------------------------------------------ tests

describe("scheduler/router: speculative deals (tasks started while their matchOrders is mined)", () => {
  afterEach(async () => {
    for (const w of opened.splice(0)) await w.close();
  });

  describe("speculate", () => {
    it("records the deal from the orders as speculative and dispatches q + 1 replicas of each task, on distinct workers", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 2n, trust: 2n, params: '{"args":["a","b"]}' });
      await w.router.speculate(expected, orders);

      const deal = getDeal(w.db, expected.dealId)!;
      expect(deal).to.include({ speculative: true, volume: 2, trust: 2, params: '{"args":["a","b"]}', timeref: TIMEREF, scheduler: w.chain.address });
      expect(deal).to.include({ workerpool: POOL, app: 1n, appPrice: 5n, workerpoolPrice: 7n, category: 0n, requestOrderHash: expected.requestHash.toLowerCase() });

      for (const index of [0, 1]) {
        const taskId = taskOf(expected.dealId, index);
        await until(() => assignsOf(w, taskId).length === 3, `three replicas of task ${index}`);
        const assigns = assignsOf(w, taskId);
        expect(new Set(assigns.map((a) => a.worker)).size, "one replica per worker").to.equal(3);
        for (const a of assigns) {
          expect(a).to.include({ dealId: expected.dealId.toLowerCase(), index, taskId, params: '{"args":["a","b"]}', commitMode: "relay", callback: false });
          expect(a.app).to.deep.include({ id: "1", runtime: "wasi" });
          const signer = verifyTypedData(w.chain.domain, { Authorization: [...MESSAGE_TYPES.Authorization] }, { worker: a.worker, taskId }, a.authorization);
          expect(signer, "the scheduler's Authorization").to.equal(w.chain.address);
        }
        expect(getTask(w.db, taskId)!.status).to.equal("dispatched");
        expect(taskTimeline(w.db, taskId)[0]).to.deep.include({ kind: "task.created", detail: { dealId: expected.dealId.toLowerCase(), index, speculative: true } });
      }
    });

    const volumes: [expected: bigint, started: number][] = [
      [1n, 1],
      [16n, 16],
      [40n, 16],
    ];
    for (const [volume, started] of volumes) {
      it(`starts min(volume, 16) tasks: volume ${volume} → ${started}`, async () => {
        const w = await world();
        const { orders, expected } = ordersFor(w.chain, { volume });
        await w.router.speculate(expected, orders);
        expect(getDeal(w.db, expected.dealId)!.volume).to.equal(started);
        expect(listTasks(w.db, { dealId: expected.dealId }).map((t) => t.index).sort((a, b) => a - b)).to.deep.equal([...Array(started).keys()]);
      });
    }

    it("does nothing when the deal is already recorded (its receipt came first)", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 3n });
      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders, { volume: 1 }))]);
      const before = getDeal(w.db, expected.dealId)!;
      expect(before.speculative).to.equal(false);

      await w.router.speculate(expected, orders);

      expect(getDeal(w.db, expected.dealId)).to.deep.equal(before);
      expect(listTasks(w.db, { dealId: expected.dealId })).to.have.length(1);
      expect(taskTimeline(w.db, taskOf(expected.dealId, 0)).filter((e) => e.kind === "task.created")).to.have.length(1);
    });

    it("does nothing in direct commit mode (the workers' own contribute needs the deal on chain)", async () => {
      const w = await world({ commitMode: "direct" });
      const { orders, expected } = ordersFor(w.chain, { volume: 2n });
      await w.router.speculate(expected, orders);
      expect(getDeal(w.db, expected.dealId)).to.equal(null);
      expect(listTasks(w.db)).to.deep.equal([]);
      expect(w.chain.calls.category, "not even the category is read").to.equal(0);
    });
  });

  describe("running unconfirmed", () => {
    it("commits reaching the quorum, with no batch of as many commits gone through yet, relay nothing: no contributeBatch, no reveal request, the spare replica cancelled", async () => {
      const w = await world();
      const { taskId, spare } = await speculativeQuorum(w);

      expect(w.chain.batches, "contributeBatch calls").to.deep.equal([]);
      expect(w.manager.frames("reveal"), "reveal frames").to.deep.equal([]);
      expect(w.manager.frames("cancel")).to.deep.equal([{ type: "cancel", replicaId: spare.replicaId, taskId, reason: "quorum reached", worker: spare.worker }]);
      expect(getTask(w.db, taskId)).to.include({ status: "dispatched", consensusHash: null });
    });

    it("a task past its contribution deadline is not given up while speculative (only its replicas stop), and is once confirmed", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust: 0n });
      await w.router.speculate(expected, orders);
      const taskId = taskOf(expected.dealId, 0);
      await until(() => assignsOf(w, taskId).length === 2, "two replicas of the task");
      w.db.prepare("UPDATE deals SET contribution_deadline = ? WHERE deal_id = ?").run(nowSec(), expected.dealId.toLowerCase());

      // cancel and giveUp come from the same decision: once the cancels are out, the giveUp was skipped
      await until(() => w.manager.frames("cancel", (f) => f.reason === "gave up").length === 2, "the replicas' cancels");
      expect(getTask(w.db, taskId)!.status).to.equal("dispatched");

      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders, { startTime: nowSec() - 10 * TIMEREF }))]);
      await until(() => getTask(w.db, taskId)!.status === "failed", "the task given up once confirmed");
      expect(getTask(w.db, taskId)!.failureReason).to.equal("contribution deadline reached");
    });
  });

  describe("relaying behind the match, before the DealMatched", () => {
    /** A first speculative deal confirmed and relayed: the router learns what a contributeBatch of two commits uses. */
    async function learnt(w: World) {
      const first = await speculativeQuorum(w);
      await w.router.onReceipt([w.chain.match(w.chain.termsOf(first.expected, first.orders))]);
      await until(() => getTask(w.db, first.taskId)!.status === "revealing", "the first relay");
      const [batch] = w.chain.writesOf(first.taskId, "contributeBatch");
      expect(batch.gasLimit, "the first batch of its size is estimated").to.equal(undefined);
      return first;
    }
    const unestimated = (w: World) => (3n * w.chain.gas.contributeBatch) / 2n + 30_000n;

    /** Two of the task's three replicas commit the same digest; several ticks later nothing went on chain. */
    async function quorumWithoutRelay(w: World, dealId: string): Promise<string> {
      const taskId = taskOf(dealId, 0);
      await until(() => assignsOf(w, taskId).length === 3, "three replicas of the task");
      const [a, b] = assignsOf(w, taskId);
      await commit(w, a, DIGEST);
      await commit(w, b, DIGEST);
      await until(() => w.manager.frames("cancel", (f) => f.taskId === taskId).length === 1, "the spare replica's cancel");
      await new Promise((resolve) => setTimeout(resolve, 60)); // several ticks
      expect(w.chain.writesOf(taskId, "contributeBatch"), "no contributeBatch").to.deep.equal([]);
      return taskId;
    }

    it("once a batch of as many commits went through, the quorum relays at once, unestimated, and the mined batch confirms the deal", async () => {
      const w = await world();
      const first = await learnt(w);
      const { orders, expected, taskId, winners } = await speculativeQuorum(w);
      expect(expected.dealId).to.not.equal(first.expected.dealId);

      await until(() => getTask(w.db, taskId)!.status === "revealing", "the relay before the DealMatched");
      const [batch] = w.chain.writesOf(taskId, "contributeBatch");
      expect(batch.gasLimit, "1.5 x the last batch's gas + 30k").to.equal(unestimated(w));
      expect(batch.items!.map((c) => c.worker).sort()).to.deep.equal(winners.map((a) => a.worker).sort());
      expect(getDeal(w.db, expected.dealId)!.speculative, "the chain's terms come with the DealMatched").to.equal(true);
      const timeline = taskTimeline(w.db, taskId);
      const consensus = timeline.find((e) => e.kind === "consensus")!;
      expect(consensus.detail).to.include({ behindMatch: true, relayed: 2 });
      expect(timeline.find((e) => e.kind === "deal.confirmed")!.detail).to.deep.equal({ tx: batch.receipt.hash });
      expect(timeline.find((e) => e.kind === "contributed")!.detail).to.include({ tx: batch.receipt.hash, unestimated: true });
      // the batch's events were applied (the deal counts as confirmed): the winners are on chain, asked to reveal
      expect(listReplicas(w.db, taskId).filter((r) => r.relayedAt !== null).map((r) => r.replicaId).sort()).to.deep.equal(winners.map((a) => a.replicaId).sort());
      expect(w.manager.frames("reveal", (f) => f.taskId === taskId).map((f) => f.replicaId).sort()).to.deep.equal(winners.map((a) => a.replicaId).sort());

      // the DealMatched that follows records the chain's terms and relays nothing again
      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders))]);
      expect(getDeal(w.db, expected.dealId)!.speculative).to.equal(false);
      expect(w.chain.writesOf(taskId, "contributeBatch"), "relayed once").to.have.length(1);
      expect(taskTimeline(w.db, taskId).filter((e) => e.kind === "deal.confirmed"), "confirmed once").to.have.length(1);
    });

    it("a batch that reverts (the match did not land) is told (relay.failed): the task waits for the DealMatched, then relays estimated", async () => {
      const w = await world();
      await learnt(w);
      w.chain.failNext("contributeBatch", "contributeBatch reverted: HubUnknownDeal");
      const { orders, expected, taskId } = await speculativeQuorum(w);
      await until(() => w.chain.writesOf(taskId, "contributeBatch")[0]?.state === "failed", "the failed batch");
      await until(() => getTask(w.db, taskId)!.status === "dispatched", "the relay undone");
      expect(getTask(w.db, taskId)!.consensusHash).to.equal(null);
      expect(taskTimeline(w.db, taskId).find((e) => e.kind === "relay.failed")!.detail).to.deep.equal({ code: "REVERTED", unestimated: true });

      await new Promise((resolve) => setTimeout(resolve, 60)); // several ticks
      expect(w.chain.writesOf(taskId, "contributeBatch"), "no second unestimated batch").to.have.length(1);

      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders))]);
      await until(() => getTask(w.db, taskId)!.status === "revealing", "the relay once confirmed");
      const batches = w.chain.writesOf(taskId, "contributeBatch");
      expect(batches.map((b) => [b.state, b.gasLimit])).to.deep.equal([
        ["failed", unestimated(w)],
        ["mined", undefined],
      ]);
    });

    it("a speculative deal whose match this process did not queue (left by an earlier run) waits for its DealMatched", async () => {
      const w = await world();
      await learnt(w);
      const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust: 2n });
      const { request } = orders;
      // what `speculate` records, written by another process before this one started
      recordDealMatched(w.db, {
        dealId: expected.dealId,
        app: request.app,
        dataset: 0n,
        workerpool: POOL,
        requester: request.requester,
        beneficiary: request.beneficiary,
        scheduler: w.chain.address,
        callback: null,
        category: 0n,
        trust: 2,
        params: request.params,
        volume: 1,
        startTime: nowSec(),
        timeref: TIMEREF,
        appPrice: 5n,
        datasetPrice: 0n,
        workerpoolPrice: 7n,
        workerStakeRatio: 0,
        schedulerRewardRatio: 0,
        requestOrderHash: expected.requestHash,
        speculative: true,
      });
      const taskId = await quorumWithoutRelay(w, expected.dealId);
      expect(getTask(w.db, taskId)).to.include({ status: "dispatched", consensusHash: null });
    });

    it("once the match has ended without a DealMatched (no receipt in time), nothing more goes behind it", async () => {
      const w = await world();
      await learnt(w);
      const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust: 2n });
      await w.router.speculate(expected, orders);
      w.router.matchEnded(expected.dealId); // its nonce may be taken by the next transaction
      const taskId = await quorumWithoutRelay(w, expected.dealId);
      expect(getDeal(w.db, expected.dealId), "the deal stays").to.not.equal(null);
    });

    describe("the deal is not dropped while a batch behind its match may land", () => {
      /** A learnt figure, then a second speculative task whose batch goes out behind the match and is held. */
      async function pendingBehindMatch(w: World) {
        await learnt(w);
        w.chain.holdBatches = true;
        const t = await speculativeQuorum(w);
        await until(() => w.chain.writesOf(t.taskId, "contributeBatch").length === 1, "the batch behind the match");
        const batch = w.chain.writesOf(t.taskId, "contributeBatch")[0];
        expect([batch.state, batch.gasLimit]).to.deep.equal(["pending", unestimated(w)]);
        expect(getTask(w.db, t.taskId)!.status).to.equal("committing");
        return { ...t, batch };
      }
      const cancelsOf = (w: World, taskId: string) => w.manager.frames("cancel", (f) => f.taskId === taskId && f.reason !== "quorum reached");

      it("abandoned meanwhile (the match seemed to fail), the deal stays; the batch mined confirms it and the task goes on", async () => {
        const w = await world();
        const t = await pendingBehindMatch(w);
        w.router.abandon(t.expected.dealId, "matchOrders failed: socket hang up");
        expect(getDeal(w.db, t.expected.dealId), "kept").to.not.equal(null);
        expect(cancelsOf(w, t.taskId), "no replica cancelled").to.deep.equal([]);

        t.batch.mine();
        await until(() => getTask(w.db, t.taskId)?.status === "revealing", "the task going on");
        expect(kinds(w, t.taskId)).to.include("deal.confirmed");
        await new Promise((resolve) => setTimeout(resolve, 60)); // several ticks: the drop does not come back
        expect(getDeal(w.db, t.expected.dealId)).to.not.equal(null);
      });

      it("nor once its commits are on chain, when the confirmation was forgotten (a restart): a task past committing keeps it", async () => {
        const w = await world();
        const t = await pendingBehindMatch(w);
        t.batch.mine();
        await until(() => getTask(w.db, t.taskId)?.status === "revealing", "the task revealing");
        (w.router as unknown as { confirmed: Set<string> }).confirmed.clear(); // what a restart forgets
        w.router.abandon(t.expected.dealId, "its matchOrders did not land within 60 s");
        expect(getTask(w.db, t.taskId)?.status).to.equal("revealing");
        expect(cancelsOf(w, t.taskId)).to.deep.equal([]);
      });

      it("abandoned meanwhile, then the batch reverts: the deal is dropped then, its replicas cancelled", async () => {
        const w = await world();
        const t = await pendingBehindMatch(w);
        w.router.abandon(t.expected.dealId, "matchOrders failed: socket hang up");
        expect(getDeal(w.db, t.expected.dealId)).to.not.equal(null);

        t.batch.fail("contributeBatch reverted: HubUnknownDeal");
        await until(() => getDeal(w.db, t.expected.dealId) === null, "the deal dropped");
        expect(getTask(w.db, t.taskId)).to.equal(null);
        expect(cancelsOf(w, t.taskId).map((f) => [f.replicaId, f.reason]).sort()).to.deep.equal(
          t.winners.map((a) => [a.replicaId, "matchOrders failed: socket hang up"]).sort(),
        );
      });

      it("a batch with no known end (no receipt in time) leaves the task committing and the deal kept; the DealMatched resumes it", async () => {
        const w = await world();
        const t = await pendingBehindMatch(w);
        t.batch.fail("contributeBatch: not confirmed within 120000 ms");
        await until(() => kinds(w, t.taskId).includes("relay.failed"), "the failure told");
        await new Promise((resolve) => setTimeout(resolve, 60)); // several ticks
        expect(getTask(w.db, t.taskId)!.status, "the batch may still land").to.equal("committing");
        w.router.abandon(t.expected.dealId, "its matchOrders did not land within 60 s");
        expect(getDeal(w.db, t.expected.dealId), "kept").to.not.equal(null);
        expect(cancelsOf(w, t.taskId)).to.deep.equal([]);

        // the match did land: the chain has the deal, but not the commits (the fake's viewTask says UNSET)
        w.chain.holdBatches = false;
        await w.router.onChainEvent(w.chain.match(w.chain.termsOf(t.expected, t.orders)));
        await until(() => w.chain.writesOf(t.taskId, "contributeBatch").length === 2, "the relay again");
        expect(w.chain.writesOf(t.taskId, "contributeBatch")[1].gasLimit, "estimated after a failure").to.equal(undefined);
        await until(() => getTask(w.db, t.taskId)!.status === "revealing", "the task going on");
      });
    });
  });

  describe("confirmation by the DealMatched", () => {
    const paths: [string, (w: World, e: HubEvent) => Promise<void>][] = [
      ["our receipt (onReceipt)", (w, e) => w.router.onReceipt([e])],
      ["the watcher (onChainEvent)", (w, e) => w.router.onChainEvent(e)],
    ];
    for (const [path, deliver] of paths) {
      it(`through ${path}: the chain's terms, not speculative, deal.confirmed, then one contributeBatch of the quorum`, async () => {
        const w = await world();
        const { orders, expected, taskId, winners } = await speculativeQuorum(w);
        const terms = w.chain.termsOf(expected, orders);

        await deliver(w, w.chain.match(terms));

        const deal = getDeal(w.db, expected.dealId)!;
        expect(deal).to.include({ speculative: false, volume: 1, startTime: terms.startTime, workerStakeRatio: 30, schedulerRewardRatio: 10 });
        expect(deal).to.include({ blockNumber: terms.matchedBlock, txHash: MATCH_TX.toLowerCase(), category: 0n });
        expect(taskTimeline(w.db, taskId).filter((e) => e.kind === "deal.confirmed").map((e) => e.detail)).to.deep.equal([{ tx: MATCH_TX }]);

        await until(() => w.chain.batches.length === 1 && getTask(w.db, taskId)!.status === "revealing", "the relay");
        const [batch] = w.chain.batches;
        expect(batch.map((c) => [c.dealId.toLowerCase(), c.index, c.worker]).sort()).to.deep.equal(
          winners.map((a) => [expected.dealId.toLowerCase(), 0n, a.worker]).sort(),
        );
        expect(w.manager.frames("reveal").map((f) => f.replicaId).sort()).to.deep.equal(winners.map((a) => a.replicaId).sort());
        expect(getTask(w.db, taskId)!.consensusHash).to.equal(commitment(winners[0].worker, taskId, DIGEST).resultHash.toLowerCase());
        expect(w.chain.batches, "relayed once").to.have.length(1);
      });
    }

    it("a DealMatched of another pool confirms nothing", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 1n });
      await w.router.speculate(expected, orders);
      await w.router.onChainEvent(w.chain.match(w.chain.termsOf(expected, orders, { workerpool: 2n })));
      expect(getDeal(w.db, expected.dealId)!.speculative).to.equal(true);
    });

    it("a smaller real volume drops the extra tasks (replicas, timeline) and cancels their replicas still held", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 3n, trust: 0n });
      await w.router.speculate(expected, orders);
      const tasks = [0, 1, 2].map((i) => taskOf(expected.dealId, i));
      await until(() => tasks.every((t) => assignsOf(w, t).length === 2), "two replicas of each task");
      await commit(w, assignsOf(w, tasks[2])[0], DIGEST); // a committed replica of a dropped task is cancelled too
      const dropped = [...assignsOf(w, tasks[1]), assignsOf(w, tasks[2])[0]];
      await until(() => w.manager.frames("cancel").length === 1, "the quorum's cancel on task 2");

      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders, { volume: 1 }))]);

      expect(getDeal(w.db, expected.dealId)).to.include({ speculative: false, volume: 1 });
      const table = tasks.map((t) => [getTask(w.db, t)?.index ?? null, listReplicas(w.db, t).length, kinds(w, t).includes("deal.confirmed")]);
      expect(table).to.deep.equal([
        [0, 2, true],
        [null, 0, false],
        [null, 0, false],
      ]);
      const cancels = w.manager.frames("cancel", (f) => f.reason === "the deal has fewer tasks");
      expect(cancels.map((f) => [f.worker, f.replicaId, f.taskId]).sort()).to.deep.equal(dropped.map((a) => [a.worker, a.replicaId, a.taskId]).sort());
      expect(w.manager.frames("cancel", (f) => f.taskId === tasks[0]), "task 0 keeps its replicas").to.deep.equal([]);
    });

    it("a real volume above the 16 started creates the other tasks", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 20n });
      await w.router.speculate(expected, orders);
      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders, { volume: 20 }))]);
      const tasks = listTasks(w.db, { dealId: expected.dealId }).sort((a, b) => a.index - b.index);
      expect(tasks.map((t) => t.index)).to.deep.equal([...Array(20).keys()]);
      const confirmed = tasks.map((t) => kinds(w, t.taskId).includes("deal.confirmed"));
      expect(confirmed).to.deep.equal([...Array(20).keys()].map((i) => i < 16));
    });

    // the store keeps the deal speculative until the chain's terms are read, so a replay of the DealMatched (the watcher)
    // records them and the tasks past the 16 started
    it("a DealMatched whose viewDeal failed is recorded in full when the watcher delivers it again", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 20n });
      await w.router.speculate(expected, orders);
      const terms = w.chain.termsOf(expected, orders, { volume: 20 });
      const event = w.chain.match(terms);
      w.chain.failViewDeal = 1;
      const first = await w.router.onReceipt([event]).then(() => "recorded", (e: Error) => e.message);
      expect(first).to.equal("viewDeal: connection reset");

      await w.router.onChainEvent(event); // the watcher's copy of the same event

      expect(getDeal(w.db, expected.dealId)).to.include({ speculative: false, volume: 20, startTime: terms.startTime, workerStakeRatio: 30 });
      expect(listTasks(w.db, { dealId: expected.dealId })).to.have.length(20);
    });
  });

  describe("abandon", () => {
    it("a worker that comes back announcing a commit of a dropped task is told to cancel it (it stops announcing it)", async () => {
      const w = await world({ workers: 2 });
      const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust: 0n });
      await w.router.speculate(expected, orders);
      const taskId = taskOf(expected.dealId, 0);
      await until(() => assignsOf(w, taskId).length === 2, "two replicas");
      const [a] = assignsOf(w, taskId);
      w.router.abandon(expected.dealId, "matchOrders failed: reverted");
      const sentBefore = w.manager.sent.length;
      const pending = [{ replicaId: a.replicaId, taskId, resultHash: id("hash"), resultSeal: id("seal"), signature: "0x" }];
      w.manager.emit("joined", a.worker, pending);
      await until(() => w.manager.sent.length > sentBefore, "the cancel");
      expect(w.manager.sent.slice(sentBefore).map((x) => ({ worker: x.worker, ...x.frame }))).to.deep.equal([
        { worker: a.worker, type: "cancel", replicaId: a.replicaId, taskId, reason: "unknown task: its deal was never matched" },
      ]);
      expect(getTask(w.db, taskId)).to.equal(null);
    });

    it("drops the deal with its tasks, replicas and timeline, and cancels the replicas still assigned, running or committed", async () => {
      const w = await world({ workers: 2 });
      const { orders, expected } = ordersFor(w.chain, { volume: 2n, trust: 0n });
      await w.router.speculate(expected, orders);
      const [t0, t1] = [0, 1].map((i) => taskOf(expected.dealId, i));
      await until(() => assignsOf(w, t0).length === 2 && assignsOf(w, t1).length === 2, "two replicas of each task");
      const [winner, spare] = assignsOf(w, t0);
      await commit(w, winner, DIGEST); // quorum 1: the spare is cancelled at once
      await until(() => getReplica(w.db, spare.replicaId)?.status === "cancelled", "the spare's cancel");
      const sentBefore = w.manager.sent.length;
      const replicas = [...listReplicas(w.db, t0), ...listReplicas(w.db, t1)].map((r) => r.replicaId);
      const reason = "matchOrders failed: reverted";

      w.router.abandon(expected.dealId, reason);

      const cancels = w.manager.sent.slice(sentBefore).map((s) => ({ worker: s.worker, ...s.frame }));
      const expectedCancels = [winner, ...assignsOf(w, t1)].map((a) => ({ worker: a.worker, type: "cancel", replicaId: a.replicaId, taskId: a.taskId, reason }));
      expect(cancels).to.have.deep.members(expectedCancels);
      expect(getDeal(w.db, expected.dealId)).to.equal(null);
      expect([getTask(w.db, t0), getTask(w.db, t1)]).to.deep.equal([null, null]);
      expect(replicas.map((r) => getReplica(w.db, r))).to.deep.equal(replicas.map(() => null));
      expect([taskTimeline(w.db, t0), taskTimeline(w.db, t1)]).to.deep.equal([[], []]);

      // a commit arriving for a dropped replica is ignored; the router goes on with other deals
      const late = assignsOf(w, t1)[0];
      await commit(w, late, DIGEST, { recorded: false });
      expect(getReplica(w.db, late.replicaId)).to.equal(null);
      const next = ordersFor(w.chain, { volume: 1n });
      await w.router.speculate(next.expected, next.orders);
      await until(() => assignsOf(w, taskOf(next.expected.dealId, 0)).length === 2, "the next deal's replicas");
      expect(w.manager.frames("assign", (f) => f.dealId === expected.dealId.toLowerCase())).to.have.length(4);
    });

    it("leaves a confirmed deal alone (and an unknown one)", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 1n });
      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders))]);
      const taskId = taskOf(expected.dealId, 0);
      await until(() => assignsOf(w, taskId).length === 2, "the confirmed deal's replicas");
      const deal = getDeal(w.db, expected.dealId);
      const sentBefore = w.manager.sent.length;

      w.router.abandon(expected.dealId, "should not happen");
      w.router.abandon(dealIdOf(id("unknown request"), 0n), "unknown");

      expect(getDeal(w.db, expected.dealId)).to.deep.equal(deal);
      expect(getTask(w.db, taskId)!.status).to.equal("dispatched");
      expect(listReplicas(w.db, taskId)).to.have.length(2);
      expect(w.manager.sent.slice(sentBefore).filter((s) => s.frame.type === "cancel")).to.deep.equal([]);
    });
  });

  describe("a deal id that is not ours yet", () => {
    it("abandon leaves a deal whose DealMatched came in, even before the chain's terms are recorded: its relayed task goes on", async () => {
      const w = await world();
      const { orders, expected, taskId } = await speculativeQuorum(w);
      const terms = w.chain.termsOf(expected, orders);
      w.chain.failViewDeal = 1; // confirmed by the event, its terms not read yet
      await w.router.onChainEvent(w.chain.match(terms)).catch(() => undefined);
      await until(() => w.chain.batches.length === 1, "the relay of the confirmed deal");
      w.router.abandon(expected.dealId, "matchOrders created deal 0xother instead");
      expect(getDeal(w.db, expected.dealId)).to.not.equal(null);
      expect(getTask(w.db, taskId)!.status).to.equal("revealing");
      expect(w.manager.frames("cancel", (f) => f.taskId === taskId && /0xother/.test(f.reason))).to.deep.equal([]);
      // the watcher's replay records the chain's terms
      await w.router.onChainEvent(w.chain.match(terms));
      expect(getDeal(w.db, expected.dealId)).to.include({ speculative: false, workerStakeRatio: 30 });
    });

    it("another pool's task events under the same id move nothing of a speculative task", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust: 2n });
      await w.router.speculate(expected, orders);
      const taskId = taskOf(expected.dealId, 0);
      await until(() => assignsOf(w, taskId).length === 3, "three replicas");
      const at = (logIndex: number) => ({ blockNumber: 150, blockHash: id("b150"), transactionHash: id("other pool tx"), transactionIndex: 0, logIndex });
      await w.router.onChainEvent({ name: "ConsensusReached", args: { taskId, consensusHash: id("x"), revealDeadline: BigInt(nowSec() - 1) }, ...at(0) } as HubEvent);
      await w.router.onChainEvent({ name: "TaskFinalized", args: { taskId, resultDigest: id("d"), results: "0x" }, ...at(1) } as HubEvent);
      const task = getTask(w.db, taskId)!;
      expect(task.status).to.equal("dispatched");
      expect(task.consensusHash).to.equal(null);
      expect(kinds(w, taskId).filter((k) => k.startsWith("chain."))).to.deep.equal([]);
    });
  });

  describe("reconciliation (speculative deals older than 60 s)", () => {
    const ageMs = 61_000;
    type ChainHas = "nothing" | "our deal" | "our deal, category unknown";
    const cases: { chain: ChainHas; outcome: string; settled: (w: World, dealId: string) => boolean }[] = [
      { chain: "nothing", outcome: "dropped", settled: (w, d) => getDeal(w.db, d) === null },
      // the chain client reads the category from the matching transaction: a number for our own matchOrders
      { chain: "our deal", outcome: "confirmed", settled: (w, d) => getDeal(w.db, d)?.speculative === false },
      { chain: "our deal, category unknown", outcome: "confirmed", settled: (w, d) => getDeal(w.db, d)?.speculative === false },
    ];
    for (const { chain, outcome, settled } of cases) {
      it(`the chain has ${chain}: ${outcome}; a younger speculative deal is left alone`, async () => {
        const w = await world({ reconcileMs: 20 });
        const stale = ordersFor(w.chain, { volume: 2n });
        const fresh = ordersFor(w.chain, { volume: 1n, params: "fresh" });
        await w.router.speculate(stale.expected, stale.orders);
        await w.router.speculate(fresh.expected, fresh.orders);
        const staleTasks = [0, 1].map((i) => taskOf(stale.expected.dealId, i));
        await until(() => staleTasks.every((t) => assignsOf(w, t).length === 2), "the stale deal's replicas");
        if (chain !== "nothing") w.chain.match(w.chain.termsOf(stale.expected, stale.orders, { category: chain === "our deal" ? 0 : null }));
        w.db.prepare("UPDATE deals SET created_at = created_at - ? WHERE deal_id = ?").run(ageMs, stale.expected.dealId.toLowerCase());

        await until(() => settled(w, stale.expected.dealId), `the stale deal ${outcome}`);

        if (chain === "nothing") {
          expect(staleTasks.map((t) => getTask(w.db, t))).to.deep.equal([null, null]);
          const cancelled = w.manager.frames("cancel").map((f) => f.replicaId).sort();
          expect(cancelled).to.deep.equal(staleTasks.flatMap((t) => assignsOf(w, t).map((a) => a.replicaId)).sort());
        } else {
          expect(getDeal(w.db, stale.expected.dealId)).to.include({ volume: 2, workerStakeRatio: 30, category: 0n });
          expect(staleTasks.map((t) => kinds(w, t).includes("deal.confirmed"))).to.deep.equal([true, true]);
          expect(w.manager.frames("cancel")).to.deep.equal([]);
        }
        // both deals were looked at in the same pass: the young one is still speculative, its terms never asked
        expect(getDeal(w.db, fresh.expected.dealId)!.speculative).to.equal(true);
        expect(w.chain.calls.dealTerms).to.not.include(fresh.expected.dealId.toLowerCase());
      });
    }

    // another pool that matched the same request first has the same id (dealId depends only on the request and its
    // consumed volume): after a restart, this scheduler must not adopt that deal
    it("a stale speculative deal the chain has for another pool is dropped, not confirmed", async () => {
      const w = await world({ reconcileMs: 20 });
      const { orders, expected } = ordersFor(w.chain, { volume: 1n });
      await w.router.speculate(expected, orders);
      w.chain.match(w.chain.termsOf(expected, orders, { workerpool: 2n, scheduler: new Wallet(id("other scheduler")).address, category: null }));
      w.db.prepare("UPDATE deals SET created_at = created_at - ? WHERE deal_id = ?").run(ageMs, expected.dealId.toLowerCase());
      await until(() => getDeal(w.db, expected.dealId)?.speculative !== true, "the stale deal settled");
      expect(getDeal(w.db, expected.dealId)).to.equal(null);
    });
  });

  describe("store: upsertDeal with speculative: true never overwrites", () => {
    const base = (o: Partial<NewDeal> = {}): NewDeal => ({
      dealId: dealIdOf(id("request"), 0n),
      app: 1n,
      dataset: 0n,
      workerpool: POOL,
      requester: new Wallet(id("requester")).address,
      beneficiary: new Wallet(id("requester")).address,
      scheduler: new Wallet(id("scheduler key")).address,
      callback: null,
      category: 0n,
      trust: 1,
      params: "chain",
      volume: 2,
      startTime: 1_700_000_000,
      timeref: TIMEREF,
      appPrice: 5n,
      datasetPrice: 0n,
      workerpoolPrice: 7n,
      workerStakeRatio: 30,
      schedulerRewardRatio: 10,
      ...o,
    });
    const guess = base({ speculative: true, params: "guess", volume: 16, trust: 3, startTime: 1_700_000_100, workerStakeRatio: 0, schedulerRewardRatio: 0 });
    const cases: [string, NewDeal, NewDeal, "unchanged" | "updated", Partial<NewDeal>][] = [
      ["a guess over a confirmed deal", base(), guess, "unchanged", { params: "chain", volume: 2, speculative: false }],
      ["a guess over a guess", guess, base({ speculative: true, params: "other guess" }), "unchanged", { params: "guess", volume: 16, speculative: true }],
      ["the chain over a guess (confirmation)", guess, base(), "updated", { params: "chain", volume: 2, speculative: false, workerStakeRatio: 30 }],
    ];
    for (const [name, first, second, result, after] of cases) {
      it(`${name}: ${result}`, () => {
        const db = openDatabase(":memory:");
        try {
          expect(upsertDeal(db, first, 1_000)).to.equal("inserted");
          const before = getDeal(db, first.dealId)!;
          expect(upsertDeal(db, second, 2_000)).to.equal(result);
          const row = getDeal(db, first.dealId)!;
          expect(row).to.include(after);
          if (result === "unchanged") expect(row).to.deep.equal(before);
          else expect(row).to.include({ createdAt: 1_000, updatedAt: 2_000 });
        } finally {
          db.close();
        }
      });
    }
  });
});
