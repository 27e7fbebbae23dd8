/**
 * The scheduler's HTTP API as one express app: the given routers, then a JSON 404 and the one error handler. The
 * composition root builds the routers (orders, results, tasks, dashboard…) and listens on 127.0.0.1 by default.
 */
import express from "express";
import type { Express, Router } from "express";
import type { Logger } from "pino";
import { errorHandler, notFound } from "./errors";

export { ApiError, errorHandler, notFound, sendJson } from "./errors";
export { ordersRouter, defaultOrdersRouterOptions } from "./orders";
export type { OrdersRouterModules, OrdersRouterOptions } from "./orders";
export { resultsRouter } from "./results";
export { ResultStore, ResultStoreError, decodeResultFiles, defaultResultStoreOptions } from "./result-store";
export type { ResultFileInput, StoredResult } from "./result-store";
export { tasksRouter } from "./tasks";
export type { TaskView, TasksRouterModules } from "./tasks";
export { EthersOrderChecks } from "./checks";
export type { OrderChecks, OnChainOrderState, AssetKind } from "./checks";

export function createApi(routers: Router[], logger?: Logger): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");
  for (const router of routers) app.use(router);
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
