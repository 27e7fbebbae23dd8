/**
 * Applies the Hub's task events to the task state, idempotently: each event is keyed by its position in the chain
 * (transaction hash + log index) and recorded in the task's timeline, so a replay after a restart (the watcher resumes
 * from its cursor, possibly re-reading a block) changes nothing. The chain is the source of truth: its events move
 * the task's status forward whatever the scheduler thought (e.g. a finalize the scheduler sent before crashing).
 *
 * DealMatched is not handled here: recording a deal needs `viewDeal` too (tasks.ts `recordDealMatched`).
 * The event shapes mirror scheduler/chain/events.ts (HubEvent), structurally, so this module does not depend on it.
 */
import { resultHash as computeResultHash } from "../../sdk/eip712";
import type { TaskStatus } from "../core/types";
import { address, bytes32, hexData, int, now as clock } from "./codec";
import type { Db } from "./db";
import { addTaskEvent, hasTaskEvent } from "./events";
import { failReplica, listReplicas, markOnChain, settleOutcome } from "./replicas";
import { advanceTask, getTask, updateTask } from "./tasks";

type TaskEventArgs =
  | { name: "TaskInitialized"; args: { taskId: string } }
  | { name: "ContributionCommitted"; args: { taskId: string; worker: string; resultHash: string } }
  | { name: "ConsensusReached"; args: { taskId: string; consensusHash: string; revealDeadline: bigint | number } }
  | { name: "ContributionRevealed"; args: { taskId: string; worker: string; resultDigest: string } }
  | { name: "TaskReopened"; args: { taskId: string } }
  | { name: "TaskFinalized"; args: { taskId: string; resultDigest: string; results: string } }
  | { name: "CallbackFailed"; args: { taskId: string; callback: string } }
  | { name: "TaskClaimed"; args: { taskId: string } };

/** A Hub task event with its position in the chain. */
export type TaskChainEvent = TaskEventArgs & { blockNumber: number; transactionHash: string; logIndex: number };

/** `applied`; `duplicate` (seen before, nothing written); `unknown-task` (not one of this scheduler's tasks). */
export type ApplyResult = "applied" | "duplicate" | "unknown-task";

export const TASK_CHAIN_EVENTS: readonly TaskChainEvent["name"][] = [
  "TaskInitialized",
  "ContributionCommitted",
  "ConsensusReached",
  "ContributionRevealed",
  "TaskReopened",
  "TaskFinalized",
  "CallbackFailed",
  "TaskClaimed",
];

/** Applies one event (see the module comment). `at` is when the scheduler saw it (ms). */
export function applyChainEvent(db: Db, event: TaskChainEvent, at = clock()): ApplyResult {
  const taskId = bytes32("taskId", event.args.taskId);
  const key = `${bytes32("transactionHash", event.transactionHash)}:${int("logIndex", event.logIndex)}`;
  int("at", at);
  return db.transaction((): ApplyResult => {
    if (hasTaskEvent(db, key)) return "duplicate";
    const task = getTask(db, taskId);
    if (!task) return "unknown-task";
    const detail: Record<string, unknown> = { block: event.blockNumber, tx: event.transactionHash.toLowerCase() };

    switch (event.name) {
      case "TaskInitialized":
        if (task.initializedAt === null) updateTask(db, taskId, { initializedAt: at }, at);
        break;
      case "ContributionCommitted": {
        const worker = address("worker", event.args.worker);
        markOnChain(db, taskId, worker, "contribution", at);
        detail.worker = worker;
        break;
      }
      case "ConsensusReached": {
        const consensusHash = bytes32("consensusHash", event.args.consensusHash);
        updateTask(db, taskId, { consensusHash, revealDeadline: Number(event.args.revealDeadline) }, at);
        advanceTask(db, taskId, "revealing", ["pending", "dispatched", "committing"], { at });
        detail.revealDeadline = Number(event.args.revealDeadline);
        break;
      }
      case "ContributionRevealed": {
        const worker = address("worker", event.args.worker);
        markOnChain(db, taskId, worker, "reveal", at);
        detail.worker = worker;
        break;
      }
      case "TaskReopened": {
        // The winners that stayed silent are REJECTED on chain: they no longer count, the task needs new commits.
        const silent = listReplicas(db, taskId).filter(
          (r) => r.resultHash === task.consensusHash && r.relayedAt !== null && r.revealRelayedAt === null && (r.status === "committed" || r.status === "lost"),
        );
        for (const r of silent) {
          failReplica(db, r.replicaId, { code: "REJECTED", message: "silent winner rejected at reopen", at });
          settleOutcome(db, r.replicaId, "disagreed", at);
        }
        updateTask(db, taskId, { consensusHash: null, revealDeadline: null }, at);
        advanceTask(db, taskId, "committing", ["revealing", "finalizing"], { at, reason: "reopened" });
        detail.rejected = silent.map((r) => r.worker);
        break;
      }
      case "TaskFinalized": {
        const digest = bytes32("resultDigest", event.args.resultDigest);
        const consensusHash = computeResultHash(taskId, digest).toLowerCase();
        updateTask(db, taskId, { resultDigest: digest, results: hexData("results", event.args.results), consensusHash }, at);
        advanceTask(db, taskId, "completed", ["pending", "dispatched", "committing", "revealing", "finalizing", "failed"], { at });
        // Every worker that committed gets its outcome, once: agreed when it had the result and did not stay silent.
        for (const r of listReplicas(db, taskId)) {
          if (r.resultHash === null || r.outcome !== null) continue;
          const agreed = r.resultHash === consensusHash && (r.revealRelayedAt !== null || r.relayedAt === null);
          settleOutcome(db, r.replicaId, agreed ? "agreed" : "disagreed", at);
        }
        break;
      }
      case "CallbackFailed":
        detail.callback = address("callback", event.args.callback);
        break;
      case "TaskClaimed":
        advanceTask(db, taskId, "claimed", ["pending", "dispatched", "committing", "revealing", "finalizing", "failed"], { at });
        break;
    }
    addTaskEvent(db, { taskId, at, kind: `chain.${event.name}`, detail, dedupeKey: key });
    return "applied";
  })();
}
