/**
 * The order book's table: every signed order the scheduler accepted (published over HTTP, or its own workerpool
 * orders), keyed by its EIP-712 hash, with its status and the volume the book believes is left.
 *
 * The chain is the source of truth for consumed volume, cancels and nonces: `remaining` is the book's view, updated
 * when the matcher matches an order and corrected when `canMatch` reports an order consumed, expired or revoked.
 * uint256 values are stored as decimal TEXT (SQLite integers stop at 2^63); the filter columns (`app`, `dataset`,
 * `workerpool`, `requester`) are copies of order fields so that listing does not parse every JSON.
 */
import { getAddress } from "ethers";
import type { OrderKind, OrderOf, RequestOrder, Signed } from "../../sdk/eip712";
import { orderToJson, parseSignedOrder } from "../../sdk/orders";
import type { Db } from "./db";
import { migration } from "./db";

export const ORDER_STATUSES = ["open", "consumed", "cancelled", "expired", "invalid"] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

migration(
  "orders-1",
  `CREATE TABLE orders (
     hash       TEXT PRIMARY KEY,
     kind       TEXT NOT NULL CHECK (kind IN ('AppOrder', 'DatasetOrder', 'WorkerpoolOrder', 'RequestOrder')),
     signer     TEXT NOT NULL,
     app        TEXT,
     dataset    TEXT,
     workerpool TEXT,
     requester  TEXT,
     json       TEXT NOT NULL,
     status     TEXT NOT NULL CHECK (status IN ('open', 'consumed', 'cancelled', 'expired', 'invalid')),
     volume     TEXT NOT NULL,
     remaining  TEXT NOT NULL,
     reason     TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX orders_kind_status ON orders (kind, status, created_at);
   CREATE INDEX orders_requester ON orders (requester) WHERE requester IS NOT NULL;`,
);

/** An order of the book, typed by its kind. */
export interface StoredOrder<K extends OrderKind = OrderKind> {
  hash: string;
  kind: K;
  /** Who signed it: the asset's owner, or the requester. */
  signer: string;
  order: Signed<OrderOf<K>>;
  status: OrderStatus;
  volume: bigint;
  /** Volume the book believes is left (0 once consumed, cancelled, expired or invalid). */
  remaining: bigint;
  /** Why the order left `open`, or why the matcher last skipped it. */
  reason: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface NewOrder<K extends OrderKind = OrderKind> {
  hash: string;
  kind: K;
  signer: string;
  order: Signed<OrderOf<K>>;
  /** Volume left on chain when accepted (volume - consumed). Default: the order's volume. */
  remaining?: bigint;
  status?: OrderStatus;
  reason?: string | null;
  /** ms since the epoch (tests pass a fixed clock). */
  now?: number;
}

export interface OrderFilter {
  kind?: OrderKind;
  status?: OrderStatus;
  signer?: string;
  /** The app of app and request orders. */
  app?: bigint;
  /** The dataset of dataset and request orders. */
  dataset?: bigint;
  /** The pool of workerpool orders, or the pool a request names (0: any pool). */
  workerpool?: bigint;
  requester?: string;
  /** Default 100, at most 1000. */
  limit?: number;
  offset?: number;
}

export const MAX_LIST_LIMIT = 1000;

interface Row {
  hash: string;
  kind: OrderKind;
  signer: string;
  json: string;
  status: OrderStatus;
  volume: string;
  remaining: string;
  reason: string | null;
  created_at: number;
  updated_at: number;
}

// An order's JSON never changes once stored (its hash names it): the matcher reads the open book at every round, so
// each JSON text is parsed once. Bounded: the cache is emptied when it is full.
const parsed = new Map<string, { json: string; order: Signed<OrderOf<OrderKind>> }>();
const PARSED_MAX = 10_000;

function parsedOrder(row: Row): Signed<OrderOf<OrderKind>> {
  const hit = parsed.get(row.hash);
  if (hit && hit.json === row.json) return { ...hit.order };
  // Stored by `insertOrder` from a parsed order: parsing again only restores the bigints.
  const order = parseSignedOrder(row.kind, JSON.parse(row.json)) as unknown as Signed<OrderOf<OrderKind>>;
  if (parsed.size >= PARSED_MAX) parsed.clear();
  parsed.set(row.hash, { json: row.json, order });
  return { ...order };
}

function fromRow<K extends OrderKind>(row: Row): StoredOrder<K> {
  return {
    hash: row.hash,
    kind: row.kind as K,
    signer: row.signer,
    order: parsedOrder(row) as unknown as Signed<OrderOf<K>>,
    status: row.status,
    volume: BigInt(row.volume),
    remaining: BigInt(row.remaining),
    reason: row.reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The filter columns of an order. */
function columnsOf(kind: OrderKind, order: Signed<OrderOf<OrderKind>>) {
  const o = order as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "bigint" ? v.toString(10) : null);
  switch (kind) {
    case "AppOrder":
      return { app: str(o.app), dataset: null, workerpool: null, requester: null };
    case "DatasetOrder":
      return { app: null, dataset: str(o.dataset), workerpool: null, requester: null };
    case "WorkerpoolOrder":
      return { app: null, dataset: null, workerpool: str(o.workerpool), requester: null };
    case "RequestOrder": {
      const r = order as Signed<RequestOrder>;
      return { app: str(r.app), dataset: str(r.dataset), workerpool: str(r.workerpool), requester: r.requester };
    }
  }
}

/**
 * Adds an order unless its hash is already in the book. Returns the stored order and whether it was new (a second
 * publication of the same order is not an error: it changes nothing).
 */
export function insertOrder<K extends OrderKind>(db: Db, o: NewOrder<K>): { inserted: boolean; order: StoredOrder<K> } {
  const now = o.now ?? Date.now();
  const remaining = o.remaining ?? o.order.volume;
  const status = o.status ?? (remaining === 0n ? "consumed" : "open");
  const result = db
    .prepare(
      `INSERT OR IGNORE INTO orders
         (hash, kind, signer, app, dataset, workerpool, requester, json, status, volume, remaining, reason, created_at, updated_at)
       VALUES (@hash, @kind, @signer, @app, @dataset, @workerpool, @requester, @json, @status, @volume, @remaining, @reason, @now, @now)`,
    )
    .run({
      hash: o.hash.toLowerCase(),
      kind: o.kind,
      signer: getAddress(o.signer),
      ...columnsOf(o.kind, o.order),
      json: JSON.stringify(orderToJson(o.order)),
      status,
      volume: o.order.volume.toString(10),
      remaining: remaining.toString(10),
      reason: o.reason ?? null,
      now,
    });
  return { inserted: result.changes === 1, order: getOrder<K>(db, o.hash)! };
}

export function getOrder<K extends OrderKind = OrderKind>(db: Db, hash: string): StoredOrder<K> | null {
  const row = db.prepare("SELECT * FROM orders WHERE hash = ?").get(hash.toLowerCase()) as Row | undefined;
  return row ? fromRow<K>(row) : null;
}

/** Orders matching every given field of `filter`, oldest first. */
export function listOrders(db: Db, filter: OrderFilter = {}): StoredOrder[] {
  const where: string[] = [];
  const params: Record<string, unknown> = {};
  const eq = (column: string, value: unknown) => {
    where.push(`${column} = @${column}`);
    params[column] = value;
  };
  if (filter.kind !== undefined) eq("kind", filter.kind);
  if (filter.status !== undefined) eq("status", filter.status);
  if (filter.signer !== undefined) eq("signer", getAddress(filter.signer));
  if (filter.app !== undefined) eq("app", filter.app.toString(10));
  if (filter.dataset !== undefined) eq("dataset", filter.dataset.toString(10));
  if (filter.workerpool !== undefined) eq("workerpool", filter.workerpool.toString(10));
  if (filter.requester !== undefined) eq("requester", getAddress(filter.requester));
  params.limit = Math.min(Math.max(filter.limit ?? 100, 0), MAX_LIST_LIMIT);
  params.offset = Math.max(filter.offset ?? 0, 0);
  const sql = `SELECT * FROM orders ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
               ORDER BY created_at, rowid LIMIT @limit OFFSET @offset`;
  return (db.prepare(sql).all(params) as Row[]).map((row) => fromRow(row));
}

/** Every open order of `kind`, oldest first (what the matcher works on). */
export function openOrders<K extends OrderKind>(db: Db, kind: K): StoredOrder<K>[] {
  const rows = db
    .prepare("SELECT * FROM orders WHERE kind = ? AND status = 'open' ORDER BY created_at, rowid")
    .all(kind) as Row[];
  return rows.map((row) => fromRow<K>(row));
}

/**
 * Records that `volume` of an order went into a deal: `remaining` drops (never below 0) and the order becomes
 * `consumed` at 0. Returns the new remaining volume, or null for an unknown hash.
 */
export function consumeOrder(db: Db, hash: string, volume: bigint, now = Date.now()): bigint | null {
  const current = getOrder(db, hash);
  if (!current) return null;
  const remaining = current.remaining > volume ? current.remaining - volume : 0n;
  const status: OrderStatus = remaining === 0n ? "consumed" : current.status;
  db.prepare("UPDATE orders SET remaining = ?, status = ?, updated_at = ? WHERE hash = ?").run(
    remaining.toString(10),
    status,
    now,
    current.hash,
  );
  return remaining;
}

/**
 * Moves an order to `status` with a one-line `reason`. Leaving `open` zeroes `remaining` for every status but
 * `open` (a cancelled or expired order has nothing left to sell). Returns false for an unknown hash.
 */
export function setOrderStatus(db: Db, hash: string, status: OrderStatus, reason: string | null, now = Date.now()): boolean {
  const sql =
    status === "open"
      ? "UPDATE orders SET status = ?, reason = ?, updated_at = ? WHERE hash = ?"
      : "UPDATE orders SET status = ?, reason = ?, remaining = '0', updated_at = ? WHERE hash = ?";
  return db.prepare(sql).run(status, reason, now, hash.toLowerCase()).changes === 1;
}

/** Notes why the matcher skipped an open order (shown by GET /orders); the status does not change. */
export function noteOrder(db: Db, hash: string, reason: string | null, now = Date.now()): void {
  db.prepare("UPDATE orders SET reason = ?, updated_at = ? WHERE hash = ?").run(reason, now, hash.toLowerCase());
}

/**
 * Removes an order the matcher has not touched (still open, nothing consumed): a request the book took in before its
 * chain checks came back, which they refused. Returns whether it went.
 */
export function dropUntouchedOrder(db: Db, hash: string): boolean {
  return db.prepare("DELETE FROM orders WHERE hash = ? AND status = 'open' AND remaining = volume").run(hash.toLowerCase()).changes === 1;
}
