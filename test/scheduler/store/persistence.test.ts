/**
 * scheduler/store on a file: everything written before a restart is there after reopening (deals, tasks with their
 * phase times, replicas with their signed commits, workers, the timeline), migrations are not applied twice, and the
 * replayed chain events and deal records stay no-ops after the restart.
 */
import { expect } from "chai";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { taskId as taskIdOf } from "../../../sdk/eip712";
import { tokenBucket } from "../../../scheduler/core/bucket";
import { nextActions } from "../../../scheduler/core/policy";
import { TaskChainEvent, applyChainEvent } from "../../../scheduler/store/chain-events";
import { requireDeal } from "../../../scheduler/store/deals";
import { taskTimeline } from "../../../scheduler/store/events";
import { insertReplica, listReplicas, markWorkerLost, recordCommit } from "../../../scheduler/store/replicas";
import { openDatabase, taskView } from "../../../scheduler/store/state";
import { recordDealMatched, requireTask, setTaskStatus, tasksNeedingAction } from "../../../scheduler/store/tasks";
import { closeAllSessions, getWorker, workerConnected } from "../../../scheduler/store/workers";
import { T0, deal, hash, sig, workerAddr } from "./fixtures";

describe("scheduler/store: persistence across a restart", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "concord-state-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps every record, and replays stay no-ops", () => {
    const path = join(dir, "scheduler.db");
    const taskId = taskIdOf(deal().dealId, 0).toLowerCase();
    const init: TaskChainEvent = { name: "TaskInitialized", args: { taskId }, blockNumber: 7, transactionHash: hash(0xabc), logIndex: 3 };

    // ---- first process
    let db = openDatabase(path);
    recordDealMatched(db, deal(1, { volume: 2 }), T0);
    workerConnected(db, workerAddr(1), { at: T0, capacity: 3 });
    insertReplica(db, { replicaId: "r1", taskId, worker: workerAddr(1), authorization: sig(1), at: T0 + 10 });
    insertReplica(db, { replicaId: "r2", taskId, worker: workerAddr(2), at: T0 + 10 });
    setTaskStatus(db, taskId, "dispatched", { at: T0 + 10 });
    recordCommit(db, "r1", { resultHash: hash(1), resultSeal: hash(2), signature: sig(3), at: T0 + 2000 });
    setTaskStatus(db, taskId, "committing", { at: T0 + 2000 });
    applyChainEvent(db, init, T0 + 2500);
    const timelineBefore = taskTimeline(db, taskId);
    db.close();

    // ---- second process
    db = openDatabase(path);
    const applied = db.prepare("SELECT name FROM migrations ORDER BY name").all() as { name: string }[];
    expect(applied.map((m) => m.name)).to.include.members(["deals-1", "tasks-1", "replicas-1", "workers-1", "task-events-1"]);
    expect(new Set(applied.map((m) => m.name)).size).to.equal(applied.length);

    expect(requireDeal(db, deal().dealId).workerpoolPrice).to.equal(10n ** 19n);
    const t = requireTask(db, taskId);
    expect([t.status, t.times.dispatched, t.times.committing, t.initializedAt]).to.deep.equal(["committing", T0 + 10, T0 + 2000, T0 + 2500]);
    const [r1, r2] = listReplicas(db, taskId);
    expect(r1).to.deep.include({ status: "committed", resultHash: hash(1), resultSeal: hash(2), contributionSignature: sig(3), authorization: sig(1) });
    expect(r2.status).to.equal("assigned");
    expect(getWorker(db, workerAddr(1))).to.deep.include({ capacity: 3, commits: 1, latencyMs: 1990 });
    expect(taskTimeline(db, taskId)).to.deep.equal(timelineBefore);

    // Replays after the restart: nothing new.
    expect(recordDealMatched(db, deal(1, { volume: 2 }), T0 + 9000)).to.deep.equal({ deal: "unchanged", tasksCreated: 0 });
    expect(applyChainEvent(db, init, T0 + 9000)).to.equal("duplicate");
    expect(recordCommit(db, "r1", { resultHash: hash(1), resultSeal: hash(2), signature: sig(3), at: T0 + 9000 })).to.equal("unchanged");
    expect(taskTimeline(db, taskId)).to.deep.equal(timelineBefore);

    // The restarted scheduler resumes: stale sessions closed, the worker lost, its replica reassigned by the policy.
    expect(closeAllSessions(db, T0 + 9000)).to.equal(1);
    markWorkerLost(db, workerAddr(2), T0 + 9000);
    expect(tasksNeedingAction(db).map((a) => a.task.taskId)).to.include(taskId);
    const decision = nextActions(taskView(db, taskId)!, T0 + 9000, { p95CommitMs: null }, tokenBucket(10));
    expect(decision.actions).to.deep.equal([{ type: "reassign", replicaId: "r2" }]);
    db.close();
  });
});
