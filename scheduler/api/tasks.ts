/**
 * `GET /tasks/:id`: one task with its replicas and timeline, as the scheduler's state knows it. The lookup is
 * injected (the state lives in other modules); this router only validates the id and shapes the answer.
 *
 * Long poll: `GET /tasks/:id?after=N&waitMs=T` answers as soon as the task's timeline has more than N entries or the
 * task has ended (completed, failed, claimed), and otherwise after T ms (default 10 000, at most 60 000) with the
 * task as it is then (404 if it is still unknown). A client that passes the length of the timeline it last saw
 * hears of every step as it happens, without polling. With `&until=ended` it hears only of the end: the answer comes
 * once the task has ended (or after T ms), however many steps it takes meanwhile, which spares the scheduler building
 * a view per step for a client that only wants the result. A server that shuts down answers its waiting long polls at
 * once.
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
  /** What the long poll (`after`, `until`) needs; without it, `GET /tasks/:id` always answers at once. */
  longPoll?: LongPollModules;
}

export interface LongPollModules {
  /** Calls back with a task id whenever that task's timeline grows; returns the unsubscribe function. */
  onTaskEvent(listener: (taskId: string) => void): () => void;
  /** The task's status alone (cheaper than `getTask`), or null when unknown: what `until=ended` checks at each step. */
  statusOf(id: string): string | null;
  /** Aborted when the server shuts down: waiting long polls answer at once, so that closing never waits for them. */
  closing?: AbortSignal;
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

/** Whether a waiting client has news: the task exists and grew past `after` entries (unless it waits for the end), or it has ended. */
function hasNews(view: TaskView | null, after: number, onlyEnd: boolean): boolean {
  if (!view) return false;
  const status = (view.task as { status?: unknown } | null)?.status;
  return (!onlyEnd && view.timeline.length > after) || ENDED.has(String(status));
}

export function tasksRouter(modules: TasksRouterModules): Router {
  const router = Router();
  router.get("/tasks/:id", async (req, res) => {
    const raw = req.params.id;
    if (!TASK_ID.test(raw)) throw new ApiError(400, "INVALID_TASK_ID", `expected a task id (0x + 64 hex), got ${JSON.stringify(raw.slice(0, 80))}`);
    const id = raw.toLowerCase();
    const until = req.query.until;
    if (until !== undefined && until !== "ended") throw new ApiError(400, "INVALID_QUERY", `until: expected "ended", got ${JSON.stringify(until).slice(0, 40)}`);
    const onlyEnd = until === "ended";
    // `until=ended` waits whatever the timeline length, so `after` may be left out
    const after = count(req.query.after, "after", 1e9) ?? (onlyEnd ? 0 : undefined);
    const waitMs = count(req.query.waitMs, "waitMs", MAX_TASK_WAIT_MS) ?? DEFAULT_TASK_WAIT_MS;
    const poll = modules.longPoll;
    // a long poll listens before it reads: a step made between the read and the wait is not missed
    const waiter =
      after !== undefined && poll ? listen(id, waitMs, poll, res, onlyEnd ? () => ENDED.has(String(poll.statusOf(id))) : undefined) : null;
    let view: TaskView | null;
    try {
      view = await modules.getTask(id);
      if (waiter && !hasNews(view, after!, onlyEnd)) {
        await waiter.next;
        view = await modules.getTask(id);
      }
    } finally {
      waiter?.stop();
    }
    if (!view) throw new ApiError(404, "TASK_NOT_FOUND", `no task ${id} known here`);
    sendJson(res, 200, view);
  });
  return router;
}

/**
 * `next` resolves at the task's next timeline event (the next one after which `ready` holds, when given), after
 * `waitMs`, when the client goes away (the response closes) or when the server is closing; `stop` releases the
 * listener, the timer and the handlers.
 */
function listen(
  id: string,
  waitMs: number,
  { onTaskEvent, closing }: LongPollModules,
  res: Response,
  ready?: () => boolean,
): { next: Promise<void>; stop: () => void } {
  let stop = (): void => undefined;
  const next = new Promise<void>((resolve) => {
    stop = (): void => {
      clearTimeout(timer);
      unsubscribe();
      res.off("close", stop);
      closing?.removeEventListener("abort", stop);
      resolve();
    };
    // the listener is called from inside the store's write: `ready` reads only the status, already written
    const unsubscribe = onTaskEvent((taskId) => taskId === id && (!ready || ready()) && stop());
    const timer = setTimeout(stop, waitMs);
    res.once("close", stop);
    closing?.addEventListener("abort", stop, { once: true });
    if (closing?.aborted) stop();
  });
  return { next, stop };
}
