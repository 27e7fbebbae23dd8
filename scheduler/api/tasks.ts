/**
 * `GET /tasks/:id`: one task with its replicas and timeline, as the scheduler's state knows it. The lookup is
 * injected (the state lives in other modules); this router only validates the id and shapes the answer.
 *
 * Long poll: `GET /tasks/:id?after=N&waitMs=T` answers as soon as the task's timeline has more than N entries or the
 * task has ended (completed, failed, claimed), and otherwise after T ms (default 10 000, at most 60 000) with the
 * task as it is then (404 if it is still unknown). A client that passes the length of the timeline it last saw
 * hears of every step as it happens, without polling.
 */
import { Router, type Response } from "express";
import { ApiError, sendJson } from "./errors";

/** Whatever the state module returns for a task (bigints are sent as decimal strings). */
export interface TaskView {
  task: unknown;
  replicas: unknown[];
  timeline: unknown[];
  [more: string]: unknown;
}

export interface TasksRouterModules {
  /** The task by id (lowercase 0x + 64 hex), or null when unknown. */
  getTask(id: string): TaskView | null | Promise<TaskView | null>;
  /** Calls back with a task id whenever that task's timeline grows; returns the unsubscribe function. */
  onTaskEvent?(listener: (taskId: string) => void): () => void;
}

const TASK_ID = /^0x[0-9a-fA-F]{64}$/;
const ENDED = new Set(["completed", "failed", "claimed"]);
export const MAX_TASK_WAIT_MS = 60_000;
const DEFAULT_TASK_WAIT_MS = 10_000;

/** A non-negative integer query parameter, or undefined when absent. */
function count(value: unknown, name: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === "string" && /^[0-9]{1,9}$/.test(value) ? Number(value) : NaN;
  if (!(n <= max)) throw new ApiError(400, "INVALID_QUERY", `${name}: expected an integer from 0 to ${max}, got ${JSON.stringify(value).slice(0, 40)}`);
  return n;
}

/** Whether a waiting client has news: the task exists and grew past `after` entries, or it has ended. */
function hasNews(view: TaskView | null, after: number): boolean {
  if (!view) return false;
  const status = (view.task as { status?: unknown } | null)?.status;
  return view.timeline.length > after || ENDED.has(String(status));
}

export function tasksRouter(modules: TasksRouterModules): Router {
  const router = Router();
  router.get("/tasks/:id", async (req, res) => {
    const raw = req.params.id;
    if (!TASK_ID.test(raw)) throw new ApiError(400, "INVALID_TASK_ID", `expected a task id (0x + 64 hex), got ${JSON.stringify(raw.slice(0, 80))}`);
    const id = raw.toLowerCase();
    const after = count(req.query.after, "after", 1e9);
    const waitMs = count(req.query.waitMs, "waitMs", MAX_TASK_WAIT_MS) ?? DEFAULT_TASK_WAIT_MS;
    let view = await modules.getTask(id);
    if (after !== undefined && !hasNews(view, after) && modules.onTaskEvent) {
      await news(id, waitMs, modules.onTaskEvent, res);
      view = await modules.getTask(id);
    }
    if (!view) throw new ApiError(404, "TASK_NOT_FOUND", `no task ${id} known here`);
    sendJson(res, 200, view);
  });
  return router;
}

/** Resolves at the task's next timeline event, after `waitMs`, or when the client goes away (the response closes). */
function news(id: string, waitMs: number, subscribe: NonNullable<TasksRouterModules["onTaskEvent"]>, res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      unsubscribe();
      res.off("close", done);
      resolve();
    };
    const unsubscribe = subscribe((taskId) => taskId === id && done());
    const timer = setTimeout(done, waitMs);
    res.once("close", done);
  });
}
