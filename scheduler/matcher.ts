/**
 * The matcher: turns the order book into deals for this scheduler's pool. For each open request order that names
 * no pool or ours, `selectOrders` (pure, table-tested) picks the cheapest compatible app order, dataset order (when
 * the request names a dataset) and one of our workerpool orders, mirroring the Clerk's checks (`MatchLib.check`:
 * assets, prices, category, trust, tags, restrictions, live volume and expiry). The loop then asks the chain
 * `canMatch` first, so a set that would revert costs no gas (a chain client that simulates every transaction before
 * sending it reports the same refusal from `matchOrders` itself, as MatchRefusedError: `precheck: false` then saves
 * the extra round trip); a refusal that condemns one order (consumed, expired, revoked, bad signature) retires that
 * order and the request is retried with the next candidates. On success the book's volumes are decreased by the
 * deal's volume.
 *
 * I/O is injected: the store (SQLite), the chain (`MatcherChain`: `canMatch` + `matchOrders`), the clock, the logger.
 */
import { ZeroAddress, getAddress } from "ethers";
import type { Interface, TypedDataDomain } from "ethers";
import type { Logger } from "pino";
import { dealId as dealIdOf, hashOrder } from "../sdk/eip712";
import type { AppOrder, DatasetOrder, OrderKind, OrderOf, RequestOrder, Signed, WorkerpoolOrder } from "../sdk/eip712";
import { EMPTY_DATASET_ORDER, recoverOrderSigner } from "../sdk/orders";
import type { Hub } from "../typechain-types";
import type { Db } from "./store/db";
import { consumeOrder, getOrder, insertOrder, noteOrder, openOrders, setOrderStatus } from "./store/orders";
import type { OrderStatus, StoredOrder } from "./store/orders";

// ------------------------------------------------------------------ types

/** The four orders of a `matchOrders` call. */
export interface OrderSet {
  app: Signed<AppOrder>;
  dataset: Signed<DatasetOrder>;
  workerpool: Signed<WorkerpoolOrder>;
  request: Signed<RequestOrder>;
}

export { EMPTY_DATASET_ORDER };

/** A decoded `canMatch` reason: the Clerk's custom error, e.g. `ClerkOrderConsumed(0x…)`. */
export interface MatchRefusal {
  name: string;
  args: unknown[];
  /** One line, e.g. `ClerkPriceTooHigh(App, 5, 3)`. */
  message: string;
}

export type CanMatchResult = { ok: true } | { ok: false; refusal: MatchRefusal };

export interface MatchedDeal {
  dealId: string;
  volume: bigint;
  txHash?: string;
}

/** `matchOrders` was refused before anything was sent: the Clerk's reason, as `canMatch` would have given it. */
export class MatchRefusedError extends Error {
  constructor(readonly refusal: MatchRefusal) {
    super(`matchOrders refused: ${refusal.message}`);
    this.name = "MatchRefusedError";
  }
}

/**
 * The deal a `matchOrders` should create, as the book sees it: the Clerk's id (sdk `dealId`: the request's hash and
 * the volume it had consumed) and the volume (the smallest remaining volume of the four orders). The chain has the
 * last word: another match of the same request in between gives another deal.
 */
export interface ExpectedDeal {
  dealId: string;
  volume: bigint;
  requestHash: string;
}

/** The chain as the matcher needs it. */
export interface MatcherChain {
  canMatch(orders: OrderSet): Promise<CanMatchResult>;
  /**
   * Sends `matchOrders` and waits for it to be mined; throws when it reverts or cannot be sent, MatchRefusedError
   * when the Clerk's reason is known without sending (a simulation reverted). `expected` is the book's guess of the
   * deal (the scheduler starts its tasks while the transaction is mined).
   */
  matchOrders(orders: OrderSet, expected: ExpectedDeal): Promise<MatchedDeal>;
}

// ------------------------------------------------------------------ pure selection

/** An order of the book as the selection sees it (a `StoredOrder` is one). */
export interface BookEntry<K extends OrderKind> {
  hash: string;
  order: Signed<OrderOf<K>>;
  remaining: bigint;
}

export interface Book {
  apps: BookEntry<"AppOrder">[];
  datasets: BookEntry<"DatasetOrder">[];
  /** This pool's workerpool orders. */
  workerpools: BookEntry<"WorkerpoolOrder">[];
}

export interface Selection {
  app: BookEntry<"AppOrder">;
  /** null when the request names no dataset. */
  dataset: BookEntry<"DatasetOrder"> | null;
  workerpool: BookEntry<"WorkerpoolOrder">;
}

export type SelectionResult = { ok: true; selection: Selection } | { ok: false; reason: string };

export interface SelectionContext {
  /** This scheduler's pool id. */
  workerpool: bigint;
  /** Chain-ish time in seconds: orders with expiry ≤ now are not live. */
  now: bigint;
}

const allows = (restrict: bigint, value: bigint) => restrict === 0n || restrict === value;
const allowsAddress = (restrict: string, value: string) => restrict === ZeroAddress || getAddress(restrict) === getAddress(value);
const live = (now: bigint) => (e: BookEntry<OrderKind>) => e.remaining > 0n && (e.order.expiry === 0n || now < e.order.expiry);

/**
 * Narrows `candidates` stage by stage; the first stage that leaves none gives the reason. Survivors keep their order.
 */
function narrow<T>(candidates: T[], stages: [reason: string, keep: (c: T) => boolean][]): { ok: true; list: T[] } | { ok: false; reason: string } {
  let list = candidates;
  for (const [reason, keep] of stages) {
    list = list.filter(keep);
    if (list.length === 0) return { ok: false, reason };
  }
  return { ok: true, list };
}

/** Cheapest first; equal prices keep the book's order (oldest first). */
function byPrice<T>(list: T[], price: (c: T) => bigint): T[] {
  return list
    .map((c, i) => ({ c, i }))
    .sort((a, b) => (price(a.c) < price(b.c) ? -1 : price(a.c) > price(b.c) ? 1 : a.i - b.i))
    .map(({ c }) => c);
}

const tagOf = (hex: string) => BigInt(hex);
const showTag = (tag: bigint) => `0x${tag.toString(16).padStart(64, "0")}`;

/**
 * The cheapest set of orders the Clerk would accept with `request` for pool `ctx.workerpool`, or the first reason
 * there is none. Pure: no I/O, no clock (time comes in `ctx.now`).
 */
export function selectOrders(request: Signed<RequestOrder>, book: Book, ctx: SelectionContext): SelectionResult {
  const r = request;
  const pool = ctx.workerpool;
  const isLive = live(ctx.now);
  if (r.workerpool !== 0n && r.workerpool !== pool) return { ok: false, reason: `the request names workerpool ${r.workerpool}, not ${pool}` };

  const apps = narrow(book.apps, [
    [`no open app order for app ${r.app}`, (e) => e.order.app === r.app && isLive(e)],
    [`every app order for app ${r.app} costs more than appmaxprice ${r.appmaxprice}`, (e) => e.order.appprice <= r.appmaxprice],
    [
      `every app order for app ${r.app} excludes this dataset, pool or requester`,
      (e) => allows(e.order.datasetrestrict, r.dataset) && allows(e.order.workerpoolrestrict, pool) && allowsAddress(e.order.requesterrestrict, r.requester),
    ],
  ]);
  if (!apps.ok) return apps;

  let datasets: (BookEntry<"DatasetOrder"> | null)[] = [null];
  if (r.dataset !== 0n) {
    const found = narrow(book.datasets, [
      [`no open dataset order for dataset ${r.dataset}`, (e) => e.order.dataset === r.dataset && isLive(e)],
      [`every dataset order for dataset ${r.dataset} costs more than datasetmaxprice ${r.datasetmaxprice}`, (e) => e.order.datasetprice <= r.datasetmaxprice],
      [
        `every dataset order for dataset ${r.dataset} excludes this app, pool or requester`,
        (e) => allows(e.order.apprestrict, r.app) && allows(e.order.workerpoolrestrict, pool) && allowsAddress(e.order.requesterrestrict, r.requester),
      ],
    ]);
    if (!found.ok) return found;
    datasets = byPrice(found.list, (e) => e.order.datasetprice);
  }

  const pools = narrow(book.workerpools, [
    [`no open workerpool order of pool ${pool}`, (e) => e.order.workerpool === pool && isLive(e)],
    [`no workerpool order of pool ${pool} for category ${r.category}`, (e) => e.order.category === r.category],
    [`no workerpool order of pool ${pool} serves trust ${r.trust}`, (e) => e.order.trust >= r.trust],
    [`every workerpool order of pool ${pool} costs more than workerpoolmaxprice ${r.workerpoolmaxprice}`, (e) => e.order.workerpoolprice <= r.workerpoolmaxprice],
    [
      `every workerpool order of pool ${pool} excludes this app, dataset or requester`,
      (e) => allows(e.order.apprestrict, r.app) && allows(e.order.datasetrestrict, r.dataset) && allowsAddress(e.order.requesterrestrict, r.requester),
    ],
  ]);
  if (!pools.ok) return pools;
  const poolList = byPrice(pools.list, (e) => e.order.workerpoolprice);

  // Tags: what the request, the app and the dataset need must all be offered by the pool's order.
  let firstRequired: bigint | null = null;
  for (const app of byPrice(apps.list, (e) => e.order.appprice)) {
    for (const dataset of datasets) {
      const required = tagOf(r.tag) | tagOf(app.order.tag) | (dataset ? tagOf(dataset.order.tag) : 0n);
      firstRequired ??= required;
      const workerpool = poolList.find((p) => (required & ~tagOf(p.order.tag)) === 0n);
      if (workerpool) return { ok: true, selection: { app, dataset, workerpool } };
    }
  }
  return { ok: false, reason: `no workerpool order of pool ${pool} offers the tag ${showTag(firstRequired ?? 0n)}` };
}

/** The `matchOrders` arguments of a selection. */
export function orderSetOf(request: Signed<RequestOrder>, s: Selection): OrderSet {
  return { app: s.app.order, dataset: s.dataset?.order ?? EMPTY_DATASET_ORDER, workerpool: s.workerpool.order, request };
}

/** The deal `matchOrders` of `request` with `s` creates if the book is right about the orders' consumed volumes. */
export function expectedDealOf(request: BookEntry<"RequestOrder">, s: Selection): ExpectedDeal {
  const remaining = [request.remaining, s.app.remaining, s.workerpool.remaining, ...(s.dataset ? [s.dataset.remaining] : [])];
  return {
    dealId: dealIdOf(request.hash, request.order.volume - request.remaining),
    volume: remaining.reduce((a, b) => (b < a ? b : a)),
    requestHash: request.hash,
  };
}

// ------------------------------------------------------------------ the loop

export interface MatcherOptions {
  /** This scheduler's pool id. */
  workerpool: bigint;
  /** Pause between rounds of `run` (a new order wakes it earlier through `wake`). */
  intervalMs: number;
  /** Deals sent per round at most: one round never holds the chain client for long. */
  maxMatchesPerRound: number;
  /** How many order sets one request tries in a round when `canMatch` retires an order. */
  maxAttemptsPerRequest: number;
  /** Ask `canMatch` before `matchOrders`; false when `matchOrders` reports refusals itself (MatchRefusedError). */
  precheck: boolean;
}

export const defaultMatcherOptions: Omit<MatcherOptions, "workerpool"> = {
  intervalMs: 2_000,
  maxMatchesPerRound: 20,
  maxAttemptsPerRequest: 3,
  precheck: true,
};

export interface MatcherModules {
  db: Db;
  /** The Hub's EIP-712 domain (hashes of our own orders). */
  domain: TypedDataDomain;
  chain: MatcherChain;
  /** The scheduler's own signed workerpool orders: added to the book on the first round. */
  workerpoolOrders?: Signed<WorkerpoolOrder>[];
  logger?: Logger;
  /** ms since the epoch. */
  now?: () => number;
}

export interface MatchOutcome {
  request: string;
  dealId: string;
  volume: bigint;
  app: string;
  dataset: string | null;
  workerpool: string;
  txHash?: string;
}

export interface MatchReport {
  matched: MatchOutcome[];
  /** Requests left open this round, with why. */
  skipped: { request: string; reason: string }[];
  /** Orders retired this round (expired, or condemned by `canMatch`). */
  retired: { hash: string; status: OrderStatus; reason: string }[];
}

/** Clerk errors that condemn one order (its hash is the first argument), and the status it gets. */
const ORDER_REFUSALS: Record<string, OrderStatus> = {
  ClerkOrderConsumed: "consumed",
  ClerkOrderExpired: "expired",
  ClerkOrderNonceRevoked: "cancelled",
  ClerkInvalidSignature: "invalid",
};

/** `IClerk.OrderKind` enum values. */
const CLERK_KINDS = ["App", "Dataset", "Workerpool", "Request"] as const;

/** After one attempt: next request, another order set for this one, stop the round, or match this one again. */
type Step = "next" | "retry" | "stop" | "again";

export class Matcher {
  readonly options: MatcherOptions;
  private readonly now: () => number;
  private wakeUp: (() => void) | null = null;
  private woken = false;

  constructor(
    options: Partial<MatcherOptions> & { workerpool: bigint },
    private readonly modules: MatcherModules,
  ) {
    this.options = { ...defaultMatcherOptions, ...options };
    this.now = modules.now ?? Date.now;
  }

  private get log(): Logger | undefined {
    return this.modules.logger;
  }

  /** Adds one of our workerpool orders to the book (no-op when already there). Returns its hash. */
  addWorkerpoolOrder(order: Signed<WorkerpoolOrder>): string {
    const hash = hashOrder(this.modules.domain, "WorkerpoolOrder", order);
    if (!getOrder(this.modules.db, hash)) {
      const signer = recoverOrderSigner(this.modules.domain, "WorkerpoolOrder", order) ?? ZeroAddress;
      insertOrder(this.modules.db, { hash, kind: "WorkerpoolOrder", signer, order, now: this.now() });
    }
    return hash;
  }

  /** One round: retire expired orders, then try every open request for our pool. Never throws for one request. */
  async matchOnce(): Promise<MatchReport> {
    const { db } = this.modules;
    const report: MatchReport = { matched: [], skipped: [], retired: [] };
    for (const order of this.modules.workerpoolOrders ?? []) this.addWorkerpoolOrder(order);
    const nowSeconds = BigInt(Math.floor(this.now() / 1000));
    this.retireExpired(nowSeconds, report);

    const book: Book = {
      apps: openOrders(db, "AppOrder"),
      datasets: openOrders(db, "DatasetOrder"),
      workerpools: openOrders(db, "WorkerpoolOrder").filter((o) => o.order.workerpool === this.options.workerpool),
    };
    const requests = openOrders(db, "RequestOrder").filter(
      (r) => r.order.workerpool === 0n || r.order.workerpool === this.options.workerpool,
    );
    rounds: for (const request of requests) {
      let step: Step;
      do {
        if (report.matched.length >= this.options.maxMatchesPerRound) break rounds;
        step = await this.tryRequest(request, book, nowSeconds, report);
      } while (step === "again"); // volume left: the next app order may take it
      if (step === "stop") break;
    }
    return report;
  }

  /** Runs rounds until `signal` aborts; errors of a round are logged and the next round comes anyway. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.matchOnce();
      } catch (error) {
        this.log?.error({ err: error }, "matcher round failed");
      }
      await this.pause(signal);
    }
  }

  /** Starts the next round now (e.g. a new order came in). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private pause(signal: AbortSignal): Promise<void> {
    if (this.woken || signal.aborted) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.wakeUp = null;
        this.woken = false;
        resolve();
      };
      const timer = setTimeout(done, this.options.intervalMs);
      signal.addEventListener("abort", done, { once: true });
      this.wakeUp = done;
    });
  }

  private retireExpired(now: bigint, report: MatchReport): void {
    for (const kind of ["AppOrder", "DatasetOrder", "WorkerpoolOrder", "RequestOrder"] as const) {
      for (const o of openOrders(this.modules.db, kind)) {
        if (o.order.expiry !== 0n && now >= o.order.expiry) this.retire(o.hash, "expired", `expired at ${o.order.expiry}`, report);
      }
    }
  }

  private retire(hash: string, status: OrderStatus, reason: string, report: MatchReport, book?: Book): void {
    setOrderStatus(this.modules.db, hash, status, reason, this.now());
    report.retired.push({ hash, status, reason });
    this.log?.info({ hash, status, reason }, "order retired");
    if (book) {
      book.apps = book.apps.filter((e) => e.hash !== hash);
      book.datasets = book.datasets.filter((e) => e.hash !== hash);
      book.workerpools = book.workerpools.filter((e) => e.hash !== hash);
    }
  }

  private skip(request: StoredOrder<"RequestOrder">, reason: string, report: MatchReport): void {
    report.skipped.push({ request: request.hash, reason });
    const stored = getOrder(this.modules.db, request.hash);
    if (stored?.reason !== reason) {
      noteOrder(this.modules.db, request.hash, reason, this.now());
      this.log?.info({ request: request.hash, reason }, "request not matched");
    } else {
      this.log?.debug({ request: request.hash, reason }, "request not matched");
    }
  }

  private async tryRequest(request: StoredOrder<"RequestOrder">, book: Book, now: bigint, report: MatchReport): Promise<Step> {
    const ctx = { workerpool: this.options.workerpool, now };
    for (let attempt = 0; attempt < this.options.maxAttemptsPerRequest; attempt++) {
      const selected = selectOrders(request.order, book, ctx);
      if (!selected.ok) {
        this.skip(request, selected.reason, report);
        return "next";
      }
      const { selection } = selected;
      const set = orderSetOf(request.order, selection);

      let check: CanMatchResult = { ok: true };
      if (this.options.precheck) {
        try {
          check = await this.modules.chain.canMatch(set);
        } catch (error) {
          this.log?.warn({ err: error, request: request.hash }, "canMatch failed: round stopped");
          report.skipped.push({ request: request.hash, reason: `canMatch failed: ${messageOf(error)}` });
          return "stop";
        }
      }
      let deal: MatchedDeal | null = null;
      if (check.ok) {
        try {
          deal = await this.modules.chain.matchOrders(set, expectedDealOf(request, selection));
        } catch (error) {
          if (!(error instanceof MatchRefusedError)) {
            this.log?.error({ err: error, request: request.hash }, "matchOrders failed");
            this.skip(request, `matchOrders failed: ${messageOf(error)}`, report);
            // without a canMatch first, this is also how an unreachable chain shows: the round stops, as it would have
            return this.options.precheck ? "next" : "stop";
          }
          check = { ok: false, refusal: error.refusal };
        }
      }
      if (!check.ok) {
        const step = this.onRefusal(check.refusal, request, selection, book, report);
        if (step === "retry") continue;
        return step;
      }
      this.recordDeal(request, selection, deal!, book, report);
      return request.remaining > 0n ? "again" : "next";
    }
    this.skip(request, `no usable order set after ${this.options.maxAttemptsPerRequest} attempts`, report);
    return "next";
  }

  /** What a `canMatch` refusal means for the book, and what to do next. */
  private onRefusal(refusal: MatchRefusal, request: StoredOrder<"RequestOrder">, selection: Selection, book: Book, report: MatchReport): Step {
    const status = ORDER_REFUSALS[refusal.name];
    if (status) {
      const hash = String(refusal.args[0]).toLowerCase();
      this.retire(hash, status, refusal.message, report, book);
      if (hash === request.hash) return "next";
      return "retry";
    }
    if (refusal.name === "ClerkUnknownAsset") {
      const kind = CLERK_KINDS[Number(refusal.args[0])];
      const entry = kind === "App" ? selection.app : kind === "Dataset" ? selection.dataset : null;
      if (entry) {
        this.retire(entry.hash, "invalid", refusal.message, report, book);
        return "retry";
      }
    }
    if (refusal.name === "ClerkSchedulerWithoutConsent" || refusal.name === "ClerkUnknownAsset") {
      this.log?.warn({ reason: refusal.message }, "the pool cannot match: round stopped");
      report.skipped.push({ request: request.hash, reason: refusal.message });
      return "stop";
    }
    if (refusal.name === "ClerkInsufficientBalance" && getAddress(String(refusal.args[0])) !== getAddress(request.order.requester)) {
      this.log?.warn({ reason: refusal.message }, "the scheduler cannot stake: round stopped");
      report.skipped.push({ request: request.hash, reason: refusal.message });
      return "stop";
    }
    this.skip(request, `canMatch: ${refusal.message}`, report);
    return "next";
  }

  private recordDeal(request: StoredOrder<"RequestOrder">, selection: Selection, deal: MatchedDeal, book: Book, report: MatchReport): void {
    const now = this.now();
    const entries: BookEntry<OrderKind>[] = [selection.app, selection.workerpool, request];
    if (selection.dataset) entries.push(selection.dataset);
    for (const entry of entries) {
      const remaining = consumeOrder(this.modules.db, entry.hash, deal.volume, now);
      entry.remaining = remaining ?? 0n;
    }
    noteOrder(this.modules.db, request.hash, null, now);
    book.apps = book.apps.filter((e) => e.remaining > 0n);
    book.datasets = book.datasets.filter((e) => e.remaining > 0n);
    book.workerpools = book.workerpools.filter((e) => e.remaining > 0n);
    const outcome: MatchOutcome = {
      request: request.hash,
      dealId: deal.dealId,
      volume: deal.volume,
      app: selection.app.hash,
      dataset: selection.dataset?.hash ?? null,
      workerpool: selection.workerpool.hash,
      ...(deal.txHash ? { txHash: deal.txHash } : {}),
    };
    report.matched.push(outcome);
    this.log?.info({ dealId: deal.dealId, request: request.hash, volume: String(deal.volume), txHash: deal.txHash }, "deal matched");
  }
}

function messageOf(error: unknown): string {
  const e = error as { shortMessage?: string; message?: string };
  return (e?.shortMessage ?? e?.message ?? String(error)).split("\n")[0];
}

// ------------------------------------------------------------------ ethers implementation of MatcherChain

/** A `canMatch` reason (ABI-encoded custom error) as a `MatchRefusal`. */
export function decodeClerkError(iface: Interface, data: string): MatchRefusal {
  let parsed: ReturnType<Interface["parseError"]> = null;
  try {
    parsed = iface.parseError(data);
  } catch {
    parsed = null;
  }
  if (!parsed) return { name: "Unknown", args: [], message: `unknown refusal ${data.slice(0, 74)}` };
  const args = [...parsed.args];
  const shown = args.map((value, i) => {
    const input = parsed!.fragment.inputs[i];
    // `IClerk.OrderKind` parameters are uint8 enums: shown by name.
    if (input?.type === "uint8" && (input.name === "kind" || input.name === "party")) return CLERK_KINDS[Number(value)] ?? String(value);
    return String(value);
  });
  return { name: parsed.name, args, message: `${parsed.name}(${shown.join(", ")})` };
}

/**
 * `MatcherChain` over a typechain Hub connected to the scheduler's signer. The composition root may prefer the
 * scheduler's chain client (one nonce manager for every transaction); this one is enough for tests and tools.
 */
export class EthersMatcherChain implements MatcherChain {
  constructor(private readonly hub: Hub) {}

  async canMatch(o: OrderSet): Promise<CanMatchResult> {
    const [ok, reason] = await this.hub.canMatch(o.app, o.dataset, o.workerpool, o.request);
    return ok ? { ok: true } : { ok: false, refusal: decodeClerkError(this.hub.interface, reason) };
  }

  async matchOrders(o: OrderSet): Promise<MatchedDeal> {
    const tx = await this.hub.matchOrders(o.app, o.dataset, o.workerpool, o.request);
    const receipt = await tx.wait();
    if (!receipt) throw new Error(`matchOrders ${tx.hash}: no receipt`);
    for (const log of receipt.logs) {
      let parsed: ReturnType<Interface["parseLog"]> = null;
      try {
        parsed = this.hub.interface.parseLog(log);
      } catch {
        parsed = null;
      }
      if (parsed?.name === "DealMatched") {
        return { dealId: parsed.args.dealId as string, volume: parsed.args.volume as bigint, txHash: receipt.hash };
      }
    }
    throw new Error(`matchOrders ${receipt.hash}: no DealMatched event`);
  }
}
