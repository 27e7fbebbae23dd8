/**
 * The order book over HTTP. `POST /orders` takes what `concord order publish` sends, `{kind, order}` (kind
 * `AppOrder`… or `app`…), and answers 201 `{hash, kind, status, remaining}` (200 when the order was already in the
 * book); `GET /orders` lists with filters, `GET /orders/:hash` shows one. Handlers stay thin: validation is in
 * `admission.ts`, storage in `store/orders.ts`.
 */
import express, { Router } from "express";
import type { Request } from "express";
import { getAddress } from "ethers";
import type { TypedDataDomain } from "ethers";
import type { Logger } from "pino";
import { orderToJson, recoverOrderSigner } from "../../sdk/orders";
import type { RequestOrder, Signed } from "../../sdk/eip712";
import type { Db } from "../store/db";
import { ORDER_STATUSES, MAX_LIST_LIMIT, consumeOrder, dropUntouchedOrder, getOrder, insertOrder, listOrders } from "../store/orders";
import type { OrderFilter, OrderStatus, StoredOrder } from "../store/orders";
import { normaliseKind, parseSubmission, verifyOnChain, type Admitted } from "./admission";
import type { OrderChecks } from "./checks";
import { ApiError, sendJson } from "./errors";

export interface OrdersRouterOptions {
  /** Largest accepted body; beyond it the answer is 413. Default 64 KiB. */
  bodyLimitBytes: number;
}

export const defaultOrdersRouterOptions: OrdersRouterOptions = { bodyLimitBytes: 64 * 1024 };

export interface OrdersRouterModules {
  db: Db;
  /** The Hub's EIP-712 domain. */
  domain: TypedDataDomain;
  checks: OrderChecks;
  /** The scheduler's pool: orders that can never match with it are refused. Omit to accept every pool. */
  workerpool?: bigint;
  logger?: Logger;
  /** Called after a new order is stored (e.g. to wake the matcher). Errors are logged, never returned. */
  onAccepted?: (order: StoredOrder) => void;
}

/** The JSON an order is shown as. */
export function orderView(o: StoredOrder) {
  return {
    hash: o.hash,
    kind: o.kind,
    signer: o.signer,
    status: o.status,
    volume: o.volume.toString(10),
    remaining: o.remaining.toString(10),
    reason: o.reason,
    createdAt: new Date(o.createdAt).toISOString(),
    updatedAt: new Date(o.updatedAt).toISOString(),
    order: orderToJson(o.order),
  };
}

const HASH = /^0x[0-9a-fA-F]{64}$/;
const UINT = /^[0-9]{1,78}$/;
const LIST_PARAMS = ["kind", "status", "signer", "app", "dataset", "workerpool", "requester", "limit", "offset"];

/** `GET /orders` query → store filter. @throws ApiError 400 naming the parameter */
export function parseListQuery(query: Request["query"]): OrderFilter {
  const filter: OrderFilter = {};
  for (const [name, raw] of Object.entries(query)) {
    if (!LIST_PARAMS.includes(name)) throw new ApiError(400, "UNKNOWN_PARAMETER", `${name}: unknown query parameter (expected ${LIST_PARAMS.join(", ")})`);
    if (typeof raw !== "string") throw new ApiError(400, "INVALID_PARAMETER", `${name}: expected one value`);
    if (raw === "") continue; // `?kind=&status=open`: an empty filter filters nothing
    const fail = (expected: string) => new ApiError(400, "INVALID_PARAMETER", `${name}: expected ${expected}, got ${JSON.stringify(raw.slice(0, 80))}`);
    const address = () => {
      if (!/^0x[0-9a-fA-F]{40}$/.test(raw)) throw fail("an address");
      return getAddress(raw.toLowerCase());
    };
    const uint = () => {
      if (!UINT.test(raw)) throw fail("an unsigned integer");
      return BigInt(raw);
    };
    switch (name) {
      case "kind": {
        const kind = normaliseKind(raw);
        if (!kind) throw fail("AppOrder, DatasetOrder, WorkerpoolOrder, RequestOrder (or app, dataset, workerpool, request)");
        filter.kind = kind;
        break;
      }
      case "status":
        if (!(ORDER_STATUSES as readonly string[]).includes(raw)) throw fail(`one of ${ORDER_STATUSES.join(", ")}`);
        filter.status = raw as OrderStatus;
        break;
      case "signer":
        filter.signer = address();
        break;
      case "requester":
        filter.requester = address();
        break;
      case "app":
        filter.app = uint();
        break;
      case "dataset":
        filter.dataset = uint();
        break;
      case "workerpool":
        filter.workerpool = uint();
        break;
      case "limit": {
        const n = Number(raw);
        if (!/^[0-9]+$/.test(raw) || n < 1 || n > MAX_LIST_LIMIT) throw fail(`an integer from 1 to ${MAX_LIST_LIMIT}`);
        filter.limit = n;
        break;
      }
      case "offset": {
        if (!/^[0-9]{1,9}$/.test(raw)) throw fail("a non-negative integer");
        filter.offset = Number(raw);
        break;
      }
    }
  }
  return filter;
}

export function ordersRouter(options: Partial<OrdersRouterOptions>, modules: OrdersRouterModules): Router {
  const opts = { ...defaultOrdersRouterOptions, ...options };
  const { db, domain, checks, workerpool, logger, onAccepted } = modules;
  const router = Router();

  router.post("/orders", express.json({ limit: opts.bodyLimitBytes, strict: false }), async (req, res) => {
    if (req.body === undefined) {
      // express.json leaves the body alone when the request is not JSON, or has no body at all.
      if (req.headers["content-type"] !== undefined && !req.is("application/json")) {
        throw new ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send the order as JSON (Content-Type: application/json)");
      }
      throw new ApiError(400, "INVALID_BODY", 'empty body: expected a JSON object {"kind": …, "order": {…}}');
    }
    const submission = parseSubmission(req.body, { domain, workerpool });
    const known = getOrder(db, submission.hash);
    if (known) {
      sendJson(res, 200, { hash: known.hash, kind: known.kind, status: known.status, remaining: known.remaining });
      return;
    }
    const accepted = (order: StoredOrder) => {
      logger?.info({ hash: order.hash, kind: order.kind, signer: order.signer, remaining: String(order.remaining) }, "order accepted");
      try {
        onAccepted?.(order);
      } catch (error) {
        logger?.error({ err: error, hash: order.hash }, "onAccepted hook failed");
      }
    };
    const answer = (order: StoredOrder, status: number) =>
      sendJson(res, status, { hash: order.hash, kind: order.kind, status: order.status, remaining: order.remaining });

    const request = submission.kind === "RequestOrder" ? (submission.order as Signed<RequestOrder>) : null;
    if (request && recoverOrderSigner(domain, "RequestOrder", request) === getAddress(request.requester)) {
      // Signed by its requester: the request goes into the book at once, and the matcher's simulation of matchOrders
      // (the Clerk's own check, balances included) runs while the chain checks below are read. A request they refuse
      // leaves the book again, untouched (a refusal means the Clerk refuses it too); one partly consumed on chain
      // before keeps only what is left.
      const { inserted, order } = insertOrder(db, { ...submission, signer: request.requester, remaining: request.volume } as Admitted);
      if (!inserted) return answer(order, 200);
      accepted(order);
      let admitted: Admitted;
      try {
        admitted = await verifyOnChain(submission, { domain, workerpool, checks });
      } catch (e) {
        if (!dropUntouchedOrder(db, order.hash)) logger?.warn({ hash: order.hash, err: (e as Error).message }, "a request refused by its chain checks stays in the book: the matcher already acted on it");
        throw e;
      }
      if (admitted.remaining < request.volume) consumeOrder(db, order.hash, request.volume - admitted.remaining);
      return answer(getOrder(db, order.hash) ?? order, 201);
    }

    const admitted = await verifyOnChain(submission, { domain, workerpool, checks });
    const { inserted, order } = insertOrder(db, admitted);
    if (inserted) accepted(order);
    answer(order, inserted ? 201 : 200);
  });

  router.get("/orders", (req, res) => {
    const orders = listOrders(db, parseListQuery(req.query)).map(orderView);
    sendJson(res, 200, { orders, count: orders.length });
  });

  router.get("/orders/:hash", (req, res) => {
    const hash = req.params.hash;
    if (!HASH.test(hash)) throw new ApiError(400, "INVALID_HASH", `expected an order hash (0x + 64 hex), got ${JSON.stringify(hash.slice(0, 80))}`);
    const order = getOrder(db, hash);
    if (!order) throw new ApiError(404, "ORDER_NOT_FOUND", `no order ${hash.toLowerCase()} in the book`);
    sendJson(res, 200, orderView(order));
  });

  return router;
}
