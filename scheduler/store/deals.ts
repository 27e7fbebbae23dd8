/**
 * Deals this scheduler took (one row per `DealMatched` of its pool, completed with `viewDeal`): what to run, for whom,
 * at what price, and the deadlines every task of the deal shares. The chain is the source of truth: `upsertDeal` is
 * idempotent, so replaying events after a restart or a reorg rewrites the same row (or corrects it).
 */
import { dealDeadlines } from "../core/deadlines";
import { address, bytes32, int, now as clock, optionalBytes32, text, uint } from "./codec";
import type { Db } from "./db";
import { migration } from "./db";
import { StoreError } from "./errors";

migration(
  "deals-1",
  `CREATE TABLE deals (
     deal_id                TEXT PRIMARY KEY,
     app                    TEXT NOT NULL,
     dataset                TEXT NOT NULL,
     workerpool             TEXT NOT NULL,
     requester              TEXT NOT NULL,
     beneficiary            TEXT NOT NULL,
     scheduler              TEXT NOT NULL,
     callback               TEXT,
     category               TEXT,
     trust                  INTEGER NOT NULL,
     params                 TEXT NOT NULL,
     volume                 INTEGER NOT NULL,
     start_time             INTEGER NOT NULL,
     timeref                INTEGER NOT NULL,
     contribution_deadline  INTEGER NOT NULL,
     final_deadline         INTEGER NOT NULL,
     app_price              TEXT NOT NULL,
     dataset_price          TEXT NOT NULL,
     workerpool_price       TEXT NOT NULL,
     worker_stake_ratio     INTEGER NOT NULL,
     scheduler_reward_ratio INTEGER NOT NULL,
     request_order_hash     TEXT,
     app_order_hash         TEXT,
     dataset_order_hash     TEXT,
     workerpool_order_hash  TEXT,
     block_number           INTEGER,
     tx_hash                TEXT,
     created_at             INTEGER NOT NULL,
     updated_at             INTEGER NOT NULL
   );
   CREATE INDEX deals_final_deadline ON deals (final_deadline);`,
);

// A deal recorded from the scheduler's own matchOrders while it is in flight (its id is known in advance): its tasks
// may run, nothing goes on chain for them until the DealMatched confirms it (or it is dropped).
migration("deals-2", "ALTER TABLE deals ADD COLUMN speculative INTEGER NOT NULL DEFAULT 0");

/** A deal as the scheduler records it. Token ids and prices are bigints; times are unix seconds unless `*At` (ms). */
export interface NewDeal {
  dealId: string;
  app: bigint;
  /** 0n: no dataset */
  dataset: bigint;
  workerpool: bigint;
  requester: string;
  beneficiary: string;
  scheduler: string;
  /** null (or the zero address): no callback */
  callback: string | null;
  /** the request's category, when known (the Deal struct keeps only its timeref) */
  category: bigint | null;
  trust: number;
  params: string;
  volume: number;
  startTime: number;
  timeref: number;
  appPrice: bigint;
  datasetPrice: bigint;
  workerpoolPrice: bigint;
  workerStakeRatio: number;
  schedulerRewardRatio: number;
  requestOrderHash?: string | null;
  appOrderHash?: string | null;
  datasetOrderHash?: string | null;
  workerpoolOrderHash?: string | null;
  blockNumber?: number | null;
  txHash?: string | null;
  /**
   * Recorded from our own matchOrders before it is mined (terms from the orders, start time estimated): never
   * overwrites a deal already recorded; a later non-speculative upsert (the DealMatched) confirms it.
   */
  speculative?: boolean;
}

export interface Deal extends Required<NewDeal> {
  /** contributions refused from this unix second on */
  contributionDeadline: number;
  /** finalize refused, claims allowed, from this unix second on */
  finalDeadline: number;
  createdAt: number;
  updatedAt: number;
}

interface DealRow {
  deal_id: string;
  app: string;
  dataset: string;
  workerpool: string;
  requester: string;
  beneficiary: string;
  scheduler: string;
  callback: string | null;
  category: string | null;
  trust: number;
  params: string;
  volume: number;
  start_time: number;
  timeref: number;
  contribution_deadline: number;
  final_deadline: number;
  app_price: string;
  dataset_price: string;
  workerpool_price: string;
  worker_stake_ratio: number;
  scheduler_reward_ratio: number;
  request_order_hash: string | null;
  app_order_hash: string | null;
  dataset_order_hash: string | null;
  workerpool_order_hash: string | null;
  block_number: number | null;
  tx_hash: string | null;
  speculative: number;
  created_at: number;
  updated_at: number;
}

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

function toRow(d: NewDeal, at: number): Omit<DealRow, "created_at"> {
  if (!d || typeof d !== "object") throw new StoreError("INVALID_RECORD", "deal must be an object");
  const ratio = (name: string, v: number) => {
    int(name, v);
    if (v > 100) throw new StoreError("INVALID_RECORD", `${name} must be a percentage <= 100, got ${v}`);
    return v;
  };
  const callback = d.callback === null || d.callback === undefined ? null : address("callback", d.callback);
  const deadlines = dealDeadlines(int("startTime", d.startTime), int("timeref", d.timeref));
  return {
    deal_id: bytes32("dealId", d.dealId),
    app: uint("app", d.app),
    dataset: uint("dataset", d.dataset),
    workerpool: uint("workerpool", d.workerpool),
    requester: address("requester", d.requester),
    beneficiary: address("beneficiary", d.beneficiary),
    scheduler: address("scheduler", d.scheduler),
    callback: callback === ZERO_ADDRESS ? null : callback,
    category: d.category === null || d.category === undefined ? null : uint("category", d.category),
    trust: int("trust", d.trust),
    params: text("params", d.params),
    volume: int("volume", d.volume, 1),
    start_time: d.startTime,
    timeref: d.timeref,
    contribution_deadline: deadlines.contribution,
    final_deadline: deadlines.final,
    app_price: uint("appPrice", d.appPrice),
    dataset_price: uint("datasetPrice", d.datasetPrice),
    workerpool_price: uint("workerpoolPrice", d.workerpoolPrice),
    worker_stake_ratio: ratio("workerStakeRatio", d.workerStakeRatio),
    scheduler_reward_ratio: ratio("schedulerRewardRatio", d.schedulerRewardRatio),
    request_order_hash: optionalBytes32("requestOrderHash", d.requestOrderHash),
    app_order_hash: optionalBytes32("appOrderHash", d.appOrderHash),
    dataset_order_hash: optionalBytes32("datasetOrderHash", d.datasetOrderHash),
    workerpool_order_hash: optionalBytes32("workerpoolOrderHash", d.workerpoolOrderHash),
    block_number: d.blockNumber === null || d.blockNumber === undefined ? null : int("blockNumber", d.blockNumber),
    tx_hash: optionalBytes32("txHash", d.txHash),
    speculative: d.speculative ? 1 : 0,
    updated_at: at,
  };
}

function fromRow(r: DealRow): Deal {
  return {
    dealId: r.deal_id,
    app: BigInt(r.app),
    dataset: BigInt(r.dataset),
    workerpool: BigInt(r.workerpool),
    requester: r.requester,
    beneficiary: r.beneficiary,
    scheduler: r.scheduler,
    callback: r.callback,
    category: r.category === null ? null : BigInt(r.category),
    trust: r.trust,
    params: r.params,
    volume: r.volume,
    startTime: r.start_time,
    timeref: r.timeref,
    contributionDeadline: r.contribution_deadline,
    finalDeadline: r.final_deadline,
    appPrice: BigInt(r.app_price),
    datasetPrice: BigInt(r.dataset_price),
    workerpoolPrice: BigInt(r.workerpool_price),
    workerStakeRatio: r.worker_stake_ratio,
    schedulerRewardRatio: r.scheduler_reward_ratio,
    requestOrderHash: r.request_order_hash,
    appOrderHash: r.app_order_hash,
    datasetOrderHash: r.dataset_order_hash,
    workerpoolOrderHash: r.workerpool_order_hash,
    blockNumber: r.block_number,
    txHash: r.tx_hash,
    speculative: r.speculative === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const COLUMNS = [
  "deal_id", "app", "dataset", "workerpool", "requester", "beneficiary", "scheduler", "callback", "category", "trust",
  "params", "volume", "start_time", "timeref", "contribution_deadline", "final_deadline", "app_price", "dataset_price",
  "workerpool_price", "worker_stake_ratio", "scheduler_reward_ratio", "request_order_hash", "app_order_hash",
  "dataset_order_hash", "workerpool_order_hash", "block_number", "tx_hash", "speculative",
] as const;

export type UpsertResult = "inserted" | "updated" | "unchanged";

/**
 * Inserts a deal, or brings a stored one up to date (chain replay, reorg). Returns what happened. Optional fields left
 * out (order hashes, block, category) keep their stored value.
 */
export function upsertDeal(db: Db, deal: NewDeal, at = clock()): UpsertResult {
  const row = toRow(deal, at);
  return db.transaction((): UpsertResult => {
    const existing = db.prepare("SELECT * FROM deals WHERE deal_id = ?").get(row.deal_id) as DealRow | undefined;
    if (!existing) {
      db.prepare(`INSERT INTO deals (${COLUMNS.join(", ")}, created_at, updated_at) VALUES (${COLUMNS.map((c) => "@" + c).join(", ")}, @created_at, @updated_at)`).run({
        ...row,
        created_at: at,
      });
      return "inserted";
    }
    if (row.speculative === 1) return "unchanged"; // a guess never overwrites what is recorded
    const merged: Record<string, unknown> = { ...row };
    for (const c of ["category", "request_order_hash", "app_order_hash", "dataset_order_hash", "workerpool_order_hash", "block_number", "tx_hash"] as const) {
      if (merged[c] === null) merged[c] = existing[c];
    }
    const changed = COLUMNS.filter((c) => merged[c] !== existing[c]);
    if (changed.length === 0) return "unchanged";
    db.prepare(`UPDATE deals SET ${changed.map((c) => `${c} = @${c}`).join(", ")}, updated_at = @updated_at WHERE deal_id = @deal_id`).run(
      Object.fromEntries([...changed.map((c) => [c, merged[c]]), ["updated_at", at], ["deal_id", row.deal_id]]),
    );
    return "updated";
  })();
}

export function getDeal(db: Db, dealId: string): Deal | null {
  const row = db.prepare("SELECT * FROM deals WHERE deal_id = ?").get(bytes32("dealId", dealId)) as DealRow | undefined;
  return row ? fromRow(row) : null;
}

/** Like getDeal, but a missing deal is a StoreError NOT_FOUND. */
export function requireDeal(db: Db, dealId: string): Deal {
  const d = getDeal(db, dealId);
  if (!d) throw new StoreError("NOT_FOUND", `no deal ${dealId}`);
  return d;
}

export interface DealFilter {
  requester?: string;
  limit?: number;
  offset?: number;
}

/** Deals, newest first. */
export function listDeals(db: Db, filter: DealFilter = {}): Deal[] {
  const limit = int("limit", filter.limit ?? 100, 1);
  const offset = int("offset", filter.offset ?? 0);
  const rows = (
    filter.requester
      ? db.prepare("SELECT * FROM deals WHERE requester = ? ORDER BY start_time DESC, deal_id DESC LIMIT ? OFFSET ?").all(address("requester", filter.requester), limit, offset)
      : db.prepare("SELECT * FROM deals ORDER BY start_time DESC, deal_id DESC LIMIT ? OFFSET ?").all(limit, offset)
  ) as DealRow[];
  return rows.map(fromRow);
}
