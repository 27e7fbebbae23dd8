/**
 * scheduler/store chain events: the Hub's task events move the state forward, idempotently (a replayed log changes
 * nothing), a reopen rejects the silent winners, a finalize settles every committer's outcome, a claim closes the task.
 */
import { expect } from "chai";
import { resultHash, taskId as taskIdOf } from "../../../sdk/eip712";
import { TaskChainEvent, applyChainEvent } from "../../../scheduler/store/chain-events";
import { taskTimeline } from "../../../scheduler/store/events";
import { insertReplica, recordCommit, recordReveal, requireReplica } from "../../../scheduler/store/replicas";
import { taskDetail } from "../../../scheduler/store/state";
import { recordDealMatched, requireTask, setTaskStatus } from "../../../scheduler/store/tasks";
import { getWorker } from "../../../scheduler/store/workers";
import { START, T0, deal, hash, memoryDb, sig, workerAddr } from "./fixtures";

let log = 0;
/** An event at a fresh chain position (or at `position` to replay one). */
function ev<E extends TaskChainEvent["name"]>(name: E, args: Extract<TaskChainEvent, { name: E }>["args"], position = ++log): TaskChainEvent {
  return { name, args, blockNumber: 100 + position, transactionHash: hash(0xf000 + position), logIndex: 0 } as TaskChainEvent;
}

function setup() {
  const db = memoryDb();
  recordDealMatched(db, deal(), T0);
  const taskId = taskIdOf(deal().dealId, 0).toLowerCase();
  const digest = hash(0xd1);
  const agreed = resultHash(taskId, digest).toLowerCase();
  /** Three replicas: w1, w2 commit the agreed hash, w3 dissents. */
  for (const i of [1, 2, 3]) {
    insertReplica(db, { replicaId: `r${i}`, taskId, worker: workerAddr(i), at: T0 });
    recordCommit(db, `r${i}`, { resultHash: i === 3 ? hash(0xbad) : agreed, resultSeal: hash(0x5ea1 + i), signature: sig(i), at: T0 + i * 1000 });
  }
  setTaskStatus(db, taskId, "revealing", { at: T0 + 4000 });
  return { db, taskId, digest, agreed };
}

describe("scheduler/store: chain events", () => {
  it("records contributions and consensus on chain, once per log", () => {
    const { db, taskId, agreed } = setup();
    const init = ev("TaskInitialized", { taskId });
    expect(applyChainEvent(db, init, T0 + 5000)).to.equal("applied");
    expect(applyChainEvent(db, init, T0 + 6000)).to.equal("duplicate");
    expect(requireTask(db, taskId).initializedAt).to.equal(T0 + 5000);
    for (const i of [3, 1, 2]) applyChainEvent(db, ev("ContributionCommitted", { taskId, worker: workerAddr(i).toLowerCase(), resultHash: hash(i) }), T0 + 6000 + i);
    expect(requireReplica(db, "r1").relayedAt).to.equal(T0 + 6001);
    applyChainEvent(db, ev("ConsensusReached", { taskId, consensusHash: agreed, revealDeadline: BigInt(START + 300) }), T0 + 7000);
    const t = requireTask(db, taskId);
    expect([t.consensusHash, t.revealDeadline, t.status]).to.deep.equal([agreed, START + 300, "revealing"]);
    const chainKinds = taskTimeline(db, taskId).filter((e) => e.kind.startsWith("chain."));
    expect(chainKinds.map((e) => e.kind)).to.deep.equal([
      "chain.TaskInitialized",
      "chain.ContributionCommitted",
      "chain.ContributionCommitted",
      "chain.ContributionCommitted",
      "chain.ConsensusReached",
    ]);
    // Ordered by when the scheduler saw them.
    expect(chainKinds.slice(1, 4).map((e) => e.detail.worker)).to.deep.equal([1, 2, 3].map(workerAddr));
  });

  it("a consensus on chain moves a task the scheduler still thought was committing", () => {
    const db = memoryDb();
    recordDealMatched(db, deal(), T0);
    const taskId = taskIdOf(deal().dealId, 1).toLowerCase();
    setTaskStatus(db, taskId, "committing", { at: T0 });
    applyChainEvent(db, ev("ConsensusReached", { taskId, consensusHash: hash(1), revealDeadline: 5 }), T0 + 1);
    expect(requireTask(db, taskId).status).to.equal("revealing");
  });

  it("a reopen rejects the relayed winners that stayed silent and sends the task back to committing", () => {
    const { db, taskId, agreed } = setup();
    for (const i of [1, 2, 3]) applyChainEvent(db, ev("ContributionCommitted", { taskId, worker: workerAddr(i), resultHash: hash(i) }), T0 + 5000);
    applyChainEvent(db, ev("ConsensusReached", { taskId, consensusHash: agreed, revealDeadline: START + 300 }), T0 + 5001);
    applyChainEvent(db, ev("TaskReopened", { taskId }), T0 + 9000);
    expect(requireReplica(db, "r1")).to.deep.include({ status: "failed", failureCode: "REJECTED", outcome: "disagreed" });
    expect(requireReplica(db, "r2").status).to.equal("failed");
    expect(requireReplica(db, "r3").status).to.equal("committed"); // the dissenter is not a winner
    const t = requireTask(db, taskId);
    expect([t.status, t.consensusHash, t.revealDeadline]).to.deep.equal(["committing", null, null]);
    expect(getWorker(db, workerAddr(1))!.disagreed).to.equal(1);
  });

  it("a finalize completes the task and settles every committer once: winners agreed, the dissenter disagreed", () => {
    const { db, taskId, digest } = setup();
    for (const i of [1, 2, 3]) applyChainEvent(db, ev("ContributionCommitted", { taskId, worker: workerAddr(i), resultHash: hash(i) }), T0 + 5000);
    for (const i of [1, 2]) {
      recordReveal(db, `r${i}`, { resultDigest: digest, signature: sig(10 + i), at: T0 + 6000 });
      applyChainEvent(db, ev("ContributionRevealed", { taskId, worker: workerAddr(i), resultDigest: digest }), T0 + 6500);
    }
    const fin = ev("TaskFinalized", { taskId, resultDigest: digest, results: "0x1234" });
    expect(applyChainEvent(db, fin, T0 + 7000)).to.equal("applied");
    expect(applyChainEvent(db, fin, T0 + 7001)).to.equal("duplicate");
    const t = requireTask(db, taskId);
    expect([t.status, t.resultDigest, t.results, t.times.completed]).to.deep.equal(["completed", digest, "0x1234", T0 + 7000]);
    expect(["r1", "r2", "r3"].map((id) => requireReplica(db, id).outcome)).to.deep.equal(["agreed", "agreed", "disagreed"]);
    expect([1, 2, 3].map((i) => getWorker(db, workerAddr(i))!.agreed)).to.deep.equal([1, 1, 0]);
    expect(getWorker(db, workerAddr(3))!.disagreed).to.equal(1);
    // The API detail shows the digest once completed, never the signatures.
    const detail = taskDetail(db, taskId)!;
    expect(detail.replicas[0].resultDigest).to.equal(digest);
    expect(detail.replicas[0]).not.to.have.property("revealSignature");
    expect(detail.replicas[0]).not.to.have.property("contributionSignature");
  });

  it("the API detail hides revealed digests until the task is completed", () => {
    const { db, digest } = setup();
    const taskId = taskIdOf(deal().dealId, 0);
    recordReveal(db, "r1", { resultDigest: digest, signature: sig(11), at: T0 + 6000 });
    expect(taskDetail(db, taskId)!.replicas[0].resultDigest).to.equal(null);
    expect(taskDetail(db, hash(77))).to.equal(null);
  });

  it("a finalize the scheduler had given up on still completes the task (the chain wins)", () => {
    const { db, taskId, digest } = setup();
    setTaskStatus(db, taskId, "failed", { reason: "contribution deadline reached" });
    applyChainEvent(db, ev("TaskFinalized", { taskId, resultDigest: digest, results: "0x" }), T0 + 9000);
    expect(requireTask(db, taskId).status).to.equal("completed");
  });

  it("a claim closes the task; a later replay of it changes nothing", () => {
    const { db, taskId } = setup();
    const claim = ev("TaskClaimed", { taskId });
    applyChainEvent(db, claim, T0 + 9000);
    expect(requireTask(db, taskId).status).to.equal("claimed");
    expect(applyChainEvent(db, claim, T0 + 9001)).to.equal("duplicate");
  });

  it("ignores events of tasks this scheduler does not know, and records callback failures", () => {
    const { db, taskId } = setup();
    expect(applyChainEvent(db, ev("TaskInitialized", { taskId: hash(0x4242) }))).to.equal("unknown-task");
    expect(applyChainEvent(db, ev("CallbackFailed", { taskId, callback: workerAddr(9).toLowerCase() }), T0 + 10_000)).to.equal("applied");
    expect(taskTimeline(db, taskId).at(-1)!.detail).to.deep.include({ callback: workerAddr(9) });
  });
});
