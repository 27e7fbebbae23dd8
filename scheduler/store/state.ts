/**
 * The task state as one unit: importing this module registers every table of deals, tasks, replicas, workers and the
 * timeline (their migrations), so `openDatabase` after it creates them all. Also the two read models other modules
 * need: the policy's view of a task (core/policy.ts TaskView) and the API's detail of a task (with its deal, replicas
 * and timeline).
 */
import type { TaskView } from "../core/policy";
import type { Db } from "./db";
import { type Deal, getDeal } from "./deals";
import { type TaskEvent, taskTimeline } from "./events";
import { type Replica, listReplicas, replicaViews } from "./replicas";
import { LIVE_REPLICA_STATUSES } from "../core/types";
import { type Task, getTask } from "./tasks";
import { quorumOf } from "../core/types";
import "./workers";
import "./chain-events";

export { openDatabase } from "./db";

/** The policy's input for a task, or null when the task is unknown. Deadlines converted to ms. */
export function taskView(db: Db, taskId: string): TaskView | null {
  const task = getTask(db, taskId);
  if (!task) return null;
  const deal = getDeal(db, task.dealId)!;
  return {
    taskId: task.taskId,
    status: task.status,
    quorum: quorumOf(deal.trust),
    contributionDeadline: deal.contributionDeadline * 1000,
    consensusHash: task.consensusHash,
    replicas: replicaViews(db, task.taskId),
  };
}

/** A replica as shown outside the scheduler: no signatures, no authorization, no digest before the task completes. */
export type PublicReplica = Omit<Replica, "authorization" | "contributionSignature" | "revealSignature" | "resultSeal" | "callbackData">;

export interface TaskDetail {
  task: Task;
  deal: Deal;
  replicas: PublicReplica[];
  timeline: TaskEvent[];
}

/**
 * Everything known about a task, for the HTTP API and the dashboard (null when unknown). Signatures are left out, and
 * the revealed digests too while the task is not completed: until finalize, a digest shown here could be copied.
 */
export function taskDetail(db: Db, taskId: string): TaskDetail | null {
  const task = getTask(db, taskId);
  if (!task) return null;
  const completed = task.status === "completed";
  const replicas = listReplicas(db, task.taskId).map((r): PublicReplica => {
    const { authorization: _a, contributionSignature: _c, revealSignature: _r, resultSeal: _s, callbackData: _d, ...rest } = r;
    return completed ? rest : { ...rest, resultDigest: null };
  });
  return { task, deal: getDeal(db, task.dealId)!, replicas, timeline: taskTimeline(db, task.taskId) };
}

/**
 * Forgets tasks of a speculative deal (deals.ts `speculative`) that the chain will not have: every task and the deal
 * itself when `fromIndex` is 0 (its matchOrders failed, or mined another deal), or the tasks from `fromIndex` on (the
 * DealMatched gave a smaller volume). Their timeline and replicas go with them. Returns the replicas that were still
 * computing, whose workers should be told to stop. A deal that is not speculative is left alone (returns null).
 */
export function dropSpeculativeTasks(db: Db, dealId: string, fromIndex = 0): Replica[] | null {
  return db.transaction((): Replica[] | null => {
    const deal = getDeal(db, dealId);
    if (!deal?.speculative) return null;
    const tasks = db.prepare("SELECT task_id FROM tasks WHERE deal_id = ? AND task_index >= ?").all(deal.dealId, fromIndex) as { task_id: string }[];
    const live: Replica[] = [];
    for (const { task_id } of tasks) {
      live.push(...listReplicas(db, task_id).filter((r) => LIVE_REPLICA_STATUSES.includes(r.status) || r.status === "committed"));
      db.prepare("DELETE FROM task_events WHERE task_id = ?").run(task_id);
      db.prepare("DELETE FROM replicas WHERE task_id = ?").run(task_id);
      db.prepare("DELETE FROM tasks WHERE task_id = ?").run(task_id);
    }
    if (fromIndex === 0) db.prepare("DELETE FROM deals WHERE deal_id = ?").run(deal.dealId);
    return live;
  })();
}
