/**
 * `GET /tasks/:id`: one task with its replicas and timeline, as the scheduler's state knows it. The lookup is
 * injected (the state lives in other modules); this router only validates the id and shapes the answer.
 */
import { Router } from "express";
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
}

const TASK_ID = /^0x[0-9a-fA-F]{64}$/;

export function tasksRouter(modules: TasksRouterModules): Router {
  const router = Router();
  router.get("/tasks/:id", async (req, res) => {
    const raw = req.params.id;
    if (!TASK_ID.test(raw)) throw new ApiError(400, "INVALID_TASK_ID", `expected a task id (0x + 64 hex), got ${JSON.stringify(raw.slice(0, 80))}`);
    const id = raw.toLowerCase();
    const view = await modules.getTask(id);
    if (!view) throw new ApiError(404, "TASK_NOT_FOUND", `no task ${id} known here`);
    sendJson(res, 200, view);
  });
  return router;
}
