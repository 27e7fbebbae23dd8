/**
 * scheduler/store replicas and workers: one replica per (task, worker), guarded status moves with their timeline,
 * idempotent commits and reveals (a different second commit is a conflict), lost workers, and the worker statistics
 * that feed the score (latency once per commit, outcomes once per replica, uptime from sessions). Ends with the store
 * feeding the policy: the view it builds drives nextActions.
 */
import { expect } from "chai";
import { taskId as taskIdOf } from "../../../sdk/eip712";
import { tokenBucket } from "../../../scheduler/core/bucket";
import { nextActions } from "../../../scheduler/core/policy";
import { taskTimeline } from "../../../scheduler/store/events";
import {
  cancelReplica,
  canMoveReplica,
  failReplica,
  getReplica,
  insertReplica,
  listReplicas,
  markLost,
  markReplaced,
  markRevealRequested,
  markRunning,
  markWorkerLost,
  recentCommitLatencies,
  recordCommit,
  recordReveal,
  replicaOf,
  replicaViews,
  requireReplica,
  restoreCommitted,
  runningCount,
  runningCounts,
  settleOutcome,
  workerReplicas,
} from "../../../scheduler/store/replicas";
import { taskView } from "../../../scheduler/store/state";
import { recordDealMatched } from "../../../scheduler/store/tasks";
import {
  closeAllSessions,
  getWorker,
  listWorkers,
  scoreOf,
  workerConnected,
  workerDisconnected,
  workerSeen,
  workerStats,
} from "../../../scheduler/store/workers";
import { T0, deal, expectStoreError, hash, memoryDb, sig, workerAddr } from "./fixtures";

function setup() {
  const db = memoryDb();
  recordDealMatched(db, deal(), T0);
  const taskId = taskIdOf(deal().dealId, 0).toLowerCase();
  return { db, taskId };
}

const commit = (n: number, at: number) => ({ resultHash: hash(n), resultSeal: hash(1000 + n), signature: sig(n), at });

describe("scheduler/store: replicas and workers", () => {
  describe("assignment", () => {
    it("records a replica as assigned, with its authorization and a timeline event", () => {
      const { db, taskId } = setup();
      const r = insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1).toLowerCase(), authorization: sig(7), at: T0 + 5 });
      expect(r).to.deep.include({ replicaId: "r1", taskId, worker: workerAddr(1), status: "assigned", authorization: sig(7) });
      expect(r.times.assigned).to.equal(T0 + 5);
      expect(taskTimeline(db, taskId).at(-1)).to.deep.include({ kind: "replica.assigned", replicaId: "r1", worker: workerAddr(1) });
    });

    it("is idempotent for the same replica, and never gives a worker two replicas of a task", () => {
      const { db, taskId } = setup();
      insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1), at: T0 });
      expect(insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1), at: T0 + 9 }).times.assigned).to.equal(T0);
      expectStoreError(() => insertReplica(db, { replicaId: "r2", taskId, worker: workerAddr(1) }), "CONFLICT");
      expectStoreError(() => insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(2) }), "CONFLICT");
      expect(listReplicas(db, taskId)).to.have.length(1);
    });

    it("refuses unknown tasks and malformed fields", () => {
      const { db, taskId } = setup();
      expectStoreError(() => insertReplica(db, { replicaId: "r1", taskId: hash(5), worker: workerAddr(1) }), "NOT_FOUND");
      expectStoreError(() => insertReplica(db, { replicaId: "", taskId, worker: workerAddr(1) }), "INVALID_RECORD");
      expectStoreError(() => insertReplica(db, { replicaId: "r 1", taskId, worker: workerAddr(1) }), "INVALID_RECORD");
      expectStoreError(() => insertReplica(db, { replicaId: "r1", taskId, worker: "0x12" }), "INVALID_RECORD");
      expectStoreError(() => insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1), authorization: "zz" }), "INVALID_RECORD");
      expectStoreError(() => requireReplica(db, "nope"), "NOT_FOUND");
    });
  });

  describe("commit and reveal", () => {
    it("commits once: the same commit again is a no-op, another one a conflict; the latency feeds the worker", () => {
      const { db, taskId } = setup();
      insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1), at: T0 });
      markRunning(db, "r1", T0 + 100);
      expect(recordCommit(db, "r1", commit(1, T0 + 4000))).to.equal("committed");
      expect(recordCommit(db, "r1", commit(1, T0 + 5000))).to.equal("unchanged");
      expectStoreError(() => recordCommit(db, "r1", commit(2, T0 + 6000)), "CONFLICT");
      const r = requireReplica(db, "r1");
      expect(r).to.deep.include({ status: "committed", resultHash: hash(1), resultSeal: hash(1001), contributionSignature: sig(1) });
      expect(r.times.committed).to.equal(T0 + 4000);
      expect(getWorker(db, workerAddr(1))).to.deep.include({ commits: 1, latencyMs: 4000 });
      expect(recentCommitLatencies(db)).to.deep.equal([4000]);
    });

    it("asks for the reveal once and records it; a second different digest is a conflict", () => {
      const { db, taskId } = setup();
      insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1), at: T0 });
      expectStoreError(() => markRevealRequested(db, "r1", T0 + 1), "INVALID_TRANSITION");
      expectStoreError(() => recordReveal(db, "r1", { resultDigest: hash(9), signature: sig(9) }), "INVALID_TRANSITION");
      recordCommit(db, "r1", commit(1, T0 + 10));
      expect(markRevealRequested(db, "r1", T0 + 20)).to.equal(true);
      expect(markRevealRequested(db, "r1", T0 + 30)).to.equal(false);
      expect(recordReveal(db, "r1", { resultDigest: hash(9), signature: sig(9), callbackData: "0xBEEF", at: T0 + 40 })).to.equal(true);
      expect(recordReveal(db, "r1", { resultDigest: hash(9), signature: sig(9), at: T0 + 50 })).to.equal(false);
      expectStoreError(() => recordReveal(db, "r1", { resultDigest: hash(8), signature: sig(9) }), "CONFLICT");
      const r = requireReplica(db, "r1");
      expect(r).to.deep.include({ status: "revealed", resultDigest: hash(9), revealSignature: sig(9), callbackData: "0xbeef" });
      expect(r.times).to.deep.include({ revealRequested: T0 + 20, revealed: T0 + 40 });
      expect(taskTimeline(db, taskId).map((e) => e.kind)).to.deep.equal([
        "task.created",
        "replica.assigned",
        "replica.committed",
        "replica.reveal_requested",
        "replica.revealed",
      ]);
    });

    it("keeps a late commit of a cancelled replica without reviving it", () => {
      const { db, taskId } = setup();
      insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1), at: T0 });
      cancelReplica(db, "r1", "quorum reached", T0 + 5);
      expect(recordCommit(db, "r1", commit(3, T0 + 9))).to.equal("late");
      expect(requireReplica(db, "r1")).to.deep.include({ status: "cancelled", resultHash: hash(3), cancelReason: "quorum reached" });
    });
  });

  describe("status guard", () => {
    it("final statuses never move; a lost replica may still commit or reveal", () => {
      expect(canMoveReplica("revealed", "cancelled")).to.equal(false);
      expect(canMoveReplica("failed", "running")).to.equal(false);
      expect(canMoveReplica("lost", "committed")).to.equal(true);
      expect(canMoveReplica("committed", "assigned")).to.equal(false);
      const { db, taskId } = setup();
      insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1), at: T0 });
      cancelReplica(db, "r1", "gave up", T0 + 1);
      expect(cancelReplica(db, "r1", "gave up", T0 + 2)).to.equal(false);
      expectStoreError(() => markRunning(db, "r1"), "INVALID_TRANSITION");
      expectStoreError(() => markLost(db, "r1"), "INVALID_TRANSITION");
    });

    it("a failed run is recorded with its code and counts against the worker once", () => {
      const { db, taskId } = setup();
      insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1), at: T0 });
      expect(failReplica(db, "r1", { code: "NON_ZERO_EXIT", message: "exit 1", at: T0 + 3 })).to.equal(true);
      expect(failReplica(db, "r1", { code: "NON_ZERO_EXIT", message: "exit 1", at: T0 + 4 })).to.equal(false);
      expect(requireReplica(db, "r1")).to.deep.include({ status: "failed", failureCode: "NON_ZERO_EXIT", failureMessage: "exit 1", outcome: "failed" });
      expect(getWorker(db, workerAddr(1))!.failures).to.equal(1);
    });
  });

  describe("lost workers", () => {
    it("marks every replica a worker holds lost, links the replacement once, restores a commit when the worker is back", () => {
      const { db, taskId } = setup();
      const other = taskIdOf(deal().dealId, 1);
      insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1), at: T0 });
      insertReplica(db, { replicaId: "r2", taskId: other, worker: workerAddr(1), at: T0 });
      insertReplica(db, { replicaId: "r3", taskId, worker: workerAddr(2), at: T0 });
      recordCommit(db, "r2", commit(1, T0 + 5));
      expect(runningCount(db, workerAddr(1))).to.equal(1);
      expect(runningCounts(db)).to.deep.equal(new Map([[workerAddr(1), 1], [workerAddr(2), 1]]));
      expect(markWorkerLost(db, workerAddr(1), T0 + 10)).to.deep.equal(["r1", "r2"]);
      expect(workerReplicas(db, workerAddr(1), ["lost"]).map((r) => r.replicaId)).to.deep.equal(["r1", "r2"]);
      expect(runningCount(db, workerAddr(1))).to.equal(0);

      insertReplica(db, { replicaId: "r4", taskId, worker: workerAddr(3), at: T0 + 11 });
      markReplaced(db, "r1", "r4", T0 + 11);
      markReplaced(db, "r1", "r4", T0 + 12);
      expectStoreError(() => markReplaced(db, "r1", "r5"), "CONFLICT");
      expectStoreError(() => markReplaced(db, "r3", "r5"), "INVALID_TRANSITION");
      expect(requireReplica(db, "r1").replacedBy).to.equal("r4");

      // The worker restarts and lists its pending commit: the replica is committed again.
      expect(restoreCommitted(db, "r2", hash(1), T0 + 20)).to.equal(true);
      expect(restoreCommitted(db, "r2", hash(1), T0 + 21)).to.equal(false);
      expectStoreError(() => restoreCommitted(db, "r2", hash(2)), "CONFLICT");
      expect(requireReplica(db, "r2").status).to.equal("committed");
      expect(replicaOf(db, other, workerAddr(1))!.replicaId).to.equal("r2");
    });
  });

  describe("workers", () => {
    it("uptime counts connected time over time since first seen; a lost session ends at its last frame", () => {
      const db = memoryDb();
      const w = workerAddr(1);
      workerConnected(db, w, { at: T0, capacity: 4 });
      workerSeen(db, w, T0 + 3000);
      workerDisconnected(db, w, { at: T0 + 9000, lost: true }); // online 3 s (last frame), not 9 s
      expect(getWorker(db, w)).to.deep.include({ onlineMs: 3000, sessions: 1, lostCount: 1, capacity: 4, connectedSince: null });
      workerConnected(db, w, { at: T0 + 10_000 });
      const stats = workerStats(getWorker(db, w)!, T0 + 12_000);
      expect(stats.uptime).to.be.closeTo(5000 / 12_000, 1e-12);
      expect(workerDisconnected(db, w, { at: T0 + 12_000 })).to.equal(true);
      expect(workerDisconnected(db, w, { at: T0 + 13_000 })).to.equal(false);
      expect(getWorker(db, w)!.onlineMs).to.equal(5000);
      expectStoreError(() => workerSeen(db, workerAddr(9)), "NOT_FOUND");
    });

    it("on start, closes the sessions the previous process left open", () => {
      const db = memoryDb();
      workerConnected(db, workerAddr(1), { at: T0 });
      workerSeen(db, workerAddr(1), T0 + 2000);
      workerConnected(db, workerAddr(2), { at: T0 });
      expect(closeAllSessions(db, T0 + 60_000)).to.equal(2);
      expect(listWorkers(db).map((w) => [w.address, w.connectedSince, w.onlineMs])).to.deep.equal([
        [workerAddr(1), null, 2000],
        [workerAddr(2), null, 0],
      ]);
    });

    it("settles each replica's outcome once; the score follows", () => {
      const { db, taskId } = setup();
      const w = workerAddr(1);
      workerConnected(db, w, { at: T0 });
      insertReplica(db, { replicaId: "r1", taskId, worker: w, at: T0 });
      recordCommit(db, "r1", commit(1, T0 + 10_000));
      const before = scoreOf(getWorker(db, w)!, T0 + 10_000);
      expect(settleOutcome(db, "r1", "agreed", T0 + 11_000)).to.equal(true);
      expect(settleOutcome(db, "r1", "agreed", T0 + 12_000)).to.equal(false);
      const after = getWorker(db, w)!;
      expect(after).to.deep.include({ agreed: 1, disagreed: 0 });
      // agreement 2/3, speed 10/(10+10) = 0.5, uptime 1
      expect(scoreOf(after, T0 + 10_000)).to.be.closeTo(0.6 * (2 / 3) + 0.25 * 0.5 + 0.15, 1e-12);
      expect(scoreOf(after, T0 + 10_000)).to.be.greaterThan(before);
    });
  });

  describe("feeding the policy", () => {
    it("the store's view of a task drives nextActions: reveal the agreeing pair, cancel the rest", () => {
      const { db, taskId } = setup();
      for (const i of [1, 2, 3, 4]) insertReplica(db, { replicaId: `r${i}`, taskId, worker: workerAddr(i), at: T0 });
      recordCommit(db, "r1", commit(1, T0 + 1000));
      recordCommit(db, "r2", commit(2, T0 + 2000));
      recordCommit(db, "r3", commit(1, T0 + 3000));
      const view = taskView(db, taskId)!;
      expect(view).to.deep.include({ quorum: 2, status: "pending", consensusHash: null });
      expect(view.contributionDeadline).to.equal((1_700_000_000 + 420) * 1000);
      expect(replicaViews(db, taskId).map((r) => [r.replicaId, r.status, r.committedAt])).to.deep.equal([
        ["r1", "committed", T0 + 1000],
        ["r2", "committed", T0 + 2000],
        ["r3", "committed", T0 + 3000],
        ["r4", "assigned", null],
      ]);
      const d = nextActions(view, T0 + 4000, { p95CommitMs: null }, tokenBucket(10));
      expect(d.actions).to.deep.equal([
        { type: "reveal", replicaIds: ["r1", "r3"] },
        { type: "cancel", replicaIds: ["r2", "r4"], reason: "quorum reached" },
      ]);
      expect(d.consensus.divergent).to.deep.equal([workerAddr(2)]);
      expect(getReplica(db, "r9")).to.equal(null);
    });
  });
});
