/**
 * scheduler/store deals, tasks and the timeline: recording a matched deal creates its tasks once, status moves are
 * guarded and stamped, the tasks needing action come most urgent first, and bad records are refused with a code.
 */
import { expect } from "chai";
import { taskId as taskIdOf } from "../../../sdk/eip712";
import { getDeal, listDeals, requireDeal, upsertDeal } from "../../../scheduler/store/deals";
import { addTaskEvent, taskTimeline } from "../../../scheduler/store/events";
import {
  canMoveTask,
  claimableTasks,
  countTasksByStatus,
  getTask,
  listTasks,
  recordDealMatched,
  requireTask,
  setTaskStatus,
  tasksNeedingAction,
  updateTask,
} from "../../../scheduler/store/tasks";
import { START, T0, addr, deal, expectStoreError, hash, memoryDb } from "./fixtures";

describe("scheduler/store: deals and tasks", () => {
  describe("deals", () => {
    it("records a matched deal with its deadlines (start + 7·timeref, start + 10·timeref) and its volume of pending tasks", () => {
      const db = memoryDb();
      expect(recordDealMatched(db, deal(1, { volume: 3 }), T0)).to.deep.equal({ deal: "inserted", tasksCreated: 3 });
      const d = requireDeal(db, deal(1).dealId);
      expect(d.contributionDeadline).to.equal(START + 420);
      expect(d.finalDeadline).to.equal(START + 600);
      expect(d.workerpoolPrice).to.equal(10n ** 19n);
      expect(d.category).to.equal(0n);
      const tasks = listTasks(db, { dealId: d.dealId });
      expect(tasks.map((t) => [t.index, t.status]).sort()).to.deep.equal([
        [0, "pending"],
        [1, "pending"],
        [2, "pending"],
      ]);
      expect(tasks.map((t) => t.taskId).sort()).to.deep.equal([0, 1, 2].map((i) => taskIdOf(d.dealId, i).toLowerCase()).sort());
    });

    it("replaying DealMatched writes nothing new", () => {
      const db = memoryDb();
      recordDealMatched(db, deal(), T0);
      expect(recordDealMatched(db, deal(), T0 + 5)).to.deep.equal({ deal: "unchanged", tasksCreated: 0 });
      expect(listTasks(db)).to.have.length(2);
      expect(taskTimeline(db, taskIdOf(deal().dealId, 0))).to.have.length(1);
    });

    it("a corrected deal (reorg) is updated; optional fields left out keep their value", () => {
      const db = memoryDb();
      upsertDeal(db, deal(1, { blockNumber: 10 }), T0);
      expect(upsertDeal(db, deal(1, { params: "", requestOrderHash: null, blockNumber: null }), T0 + 1)).to.equal("updated");
      const d = getDeal(db, deal().dealId)!;
      expect(d.params).to.equal("");
      expect(d.requestOrderHash).to.equal(hash(0x99));
      expect(d.blockNumber).to.equal(10);
      expect(d.updatedAt).to.equal(T0 + 1);
      expect(d.createdAt).to.equal(T0);
    });

    it("stores the zero callback as none and addresses checksummed", () => {
      const db = memoryDb();
      upsertDeal(db, deal(1, { callback: "0x0000000000000000000000000000000000000000", requester: addr(0xabc).toLowerCase() }));
      const d = getDeal(db, deal().dealId)!;
      expect(d.callback).to.equal(null);
      expect(d.requester).to.equal(addr(0xabc));
    });

    it("lists deals newest first, and by requester", () => {
      const db = memoryDb();
      upsertDeal(db, deal(1, { startTime: START }));
      upsertDeal(db, deal(2, { startTime: START + 10, requester: addr(7) }));
      expect(listDeals(db).map((d) => d.startTime)).to.deep.equal([START + 10, START]);
      expect(listDeals(db, { requester: addr(7) })).to.have.length(1);
    });

    it("refuses malformed deals with INVALID_RECORD", () => {
      const db = memoryDb();
      for (const bad of [
        { dealId: "0x12" },
        { requester: "not an address" },
        { volume: 0 },
        { trust: -1 },
        { workerStakeRatio: 101 },
        { appPrice: -1n },
        { startTime: 1.5 },
        { requestOrderHash: "0xzz" },
      ]) {
        expectStoreError(() => upsertDeal(db, deal(1, bad as never)), "INVALID_RECORD");
      }
      expect(getDeal(db, deal().dealId)).to.equal(null);
      expectStoreError(() => requireDeal(db, deal().dealId), "NOT_FOUND");
    });
  });

  describe("task status", () => {
    const setup = () => {
      const db = memoryDb();
      recordDealMatched(db, deal(), T0);
      return { db, id: taskIdOf(deal().dealId, 0).toLowerCase() };
    };

    it("stamps each phase the first time it is reached and logs the move in the timeline", () => {
      const { db, id } = setup();
      expect(setTaskStatus(db, id, "dispatched", { at: T0 + 10 })).to.equal(true);
      expect(setTaskStatus(db, id, "committing", { at: T0 + 20 })).to.equal(true);
      expect(setTaskStatus(db, id, "revealing", { at: T0 + 30 })).to.equal(true);
      expect(setTaskStatus(db, id, "committing", { at: T0 + 40 })).to.equal(true); // reopened
      expect(setTaskStatus(db, id, "revealing", { at: T0 + 50 })).to.equal(true);
      const t = requireTask(db, id);
      expect(t.times).to.deep.include({ created: T0, dispatched: T0 + 10, committing: T0 + 20, revealing: T0 + 30, completed: null });
      const kinds = taskTimeline(db, id).map((e) => [e.kind, e.offsetMs, e.detail.to ?? null]);
      expect(kinds).to.deep.equal([
        ["task.created", 0, null],
        ["task.status", 10, "dispatched"],
        ["task.status", 20, "committing"],
        ["task.status", 30, "revealing"],
        ["task.status", 40, "committing"],
        ["task.status", 50, "revealing"],
      ]);
    });

    it("setting the same status again is a no-op", () => {
      const { db, id } = setup();
      setTaskStatus(db, id, "dispatched", { at: T0 + 10 });
      expect(setTaskStatus(db, id, "dispatched", { at: T0 + 99 })).to.equal(false);
      expect(requireTask(db, id).times.dispatched).to.equal(T0 + 10);
      expect(taskTimeline(db, id)).to.have.length(2);
    });

    it("a final task never moves again; a failed one only to what the chain says", () => {
      const { db, id } = setup();
      setTaskStatus(db, id, "failed", { at: T0 + 1, reason: "quorum 2 unreachable within 6 replicas" });
      expect(requireTask(db, id).failureReason).to.equal("quorum 2 unreachable within 6 replicas");
      expectStoreError(() => setTaskStatus(db, id, "dispatched"), "INVALID_TRANSITION");
      setTaskStatus(db, id, "claimed", { at: T0 + 2 });
      for (const s of ["pending", "completed", "failed"] as const) expectStoreError(() => setTaskStatus(db, id, s), "INVALID_TRANSITION");
      expect(canMoveTask("completed", "claimed")).to.equal(false);
      expect(canMoveTask("failed", "completed")).to.equal(true);
    });

    it("refuses an unknown task or status", () => {
      const { db } = setup();
      expectStoreError(() => setTaskStatus(db, hash(5), "dispatched"), "NOT_FOUND");
      expectStoreError(() => setTaskStatus(db, taskIdOf(deal().dealId, 0), "zombie" as never), "INVALID_RECORD");
      expectStoreError(() => updateTask(db, hash(5), { consensusHash: hash(1) }), "NOT_FOUND");
      expectStoreError(() => getTask(db, "0x1234"), "INVALID_RECORD");
    });

    it("updates data fields without touching the status", () => {
      const { db, id } = setup();
      updateTask(db, id, { consensusHash: hash(1).toUpperCase().replace("0X", "0x"), revealDeadline: START + 500, results: "0xABCD" }, T0 + 5);
      const t = requireTask(db, id);
      expect([t.consensusHash, t.revealDeadline, t.results, t.status]).to.deep.equal([hash(1), START + 500, "0xabcd", "pending"]);
      updateTask(db, id, { consensusHash: null });
      expect(requireTask(db, id).consensusHash).to.equal(null);
      expectStoreError(() => updateTask(db, id, { results: "xyz" }), "INVALID_RECORD");
    });
  });

  describe("queries", () => {
    it("tasks needing action: active ones only, the earliest contribution deadline first, with their quorum", () => {
      const db = memoryDb();
      recordDealMatched(db, deal(1, { startTime: START + 100, trust: 3, volume: 1 }), T0);
      recordDealMatched(db, deal(2, { startTime: START, trust: 0, volume: 2 }), T0);
      const done = taskIdOf(deal(2).dealId, 1);
      setTaskStatus(db, done, "completed");
      const active = tasksNeedingAction(db);
      expect(active.map((a) => [a.task.dealId, a.task.index, a.quorum, a.contributionDeadline])).to.deep.equal([
        [deal(2).dealId, 0, 1, START + 420],
        [deal(1).dealId, 0, 3, START + 520],
      ]);
      expect(tasksNeedingAction(db, 1)).to.have.length(1);
    });

    it("claimable tasks: not completed nor claimed, final deadline passed", () => {
      const db = memoryDb();
      recordDealMatched(db, deal(1, { volume: 3 }), T0);
      const [a, b, c] = [0, 1, 2].map((i) => taskIdOf(deal(1).dealId, i).toLowerCase());
      setTaskStatus(db, a, "completed");
      setTaskStatus(db, b, "failed");
      expect(claimableTasks(db, START + 599)).to.deep.equal([]);
      expect(claimableTasks(db, START + 600).map((t) => t.taskId)).to.deep.equal([b, c]);
    });

    it("lists by status and counts by status", () => {
      const db = memoryDb();
      recordDealMatched(db, deal(1, { volume: 3 }), T0);
      setTaskStatus(db, taskIdOf(deal(1).dealId, 0), "dispatched");
      expect(listTasks(db, { status: "pending" })).to.have.length(2);
      expect(listTasks(db, { status: ["pending", "dispatched"] })).to.have.length(3);
      expect(listTasks(db, { limit: 1 })).to.have.length(1);
      expect(countTasksByStatus(db)).to.include({ pending: 2, dispatched: 1, completed: 0 });
      expectStoreError(() => listTasks(db, { status: "nope" as never }), "INVALID_RECORD");
      expectStoreError(() => listTasks(db, { limit: 0 }), "INVALID_RECORD");
    });
  });

  describe("timeline", () => {
    it("appends custom events, dedupes by key, serialises bigints", () => {
      const db = memoryDb();
      recordDealMatched(db, deal(), T0);
      const id = taskIdOf(deal().dealId, 0);
      expect(addTaskEvent(db, { taskId: id, at: T0 + 7, kind: "offer", detail: { price: 10n ** 19n }, dedupeKey: "k1" })).to.equal(true);
      expect(addTaskEvent(db, { taskId: id, at: T0 + 8, kind: "offer", dedupeKey: "k1" })).to.equal(false);
      const last = taskTimeline(db, id).at(-1)!;
      expect(last).to.deep.include({ kind: "offer", offsetMs: 7, detail: { price: "10000000000000000000" } });
    });

    it("refuses an event for an unknown task (foreign key)", () => {
      const db = memoryDb();
      expect(() => addTaskEvent(db, { taskId: hash(1), kind: "offer" })).to.throw(/FOREIGN KEY/);
    });
  });
});
