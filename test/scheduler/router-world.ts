/**
 * The JobRouter's test world, shared by the router's test files: the router runs for real on an in-memory store; the
 * chain and the WorkerManager are fakes that record what the router asks of them. Workers are real ethers wallets:
 * their Contribution signatures are checked by the router, their Reveal signatures are real.
 *
 * The chain's writes resolve at once by default (mined as soon as sent). A test drives them when it needs to:
 * `holdBatches` keeps every contributeBatch pending until the test `mine`s or `fail`s it; `holdNext` / `failNext` do the same for the next write of a method. A revealAndFinalize lands behind its
 * task's contributeBatch (nonce order): it fails when that batch fails.
 */
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet, ZeroHash, getAddress, hexlify, id } from "ethers";
import type { BytesLike, TypedDataDomain } from "ethers";
import pino from "pino";
import { JobRouter, defaultJobRouterOptions, type JobRouterOptions } from "../../scheduler/router";
import type { ExpectedDeal, OrderSet } from "../../scheduler/matcher";
import type { AppEntry, CategoryView, ChainClient, DealTerms, FinalizeResult, TaskView, TxOptions, TxResult } from "../../scheduler/chain/client";
import { ChainError } from "../../scheduler/chain/errors";
import type { HubEvent } from "../../scheduler/chain/events";
import type { WorkerManager } from "../../scheduler/session/manager";
import { ResultStore, type StoredResult } from "../../scheduler/api";
import { openDatabase } from "../../scheduler/store/state";
import type { Db } from "../../scheduler/store/db";
import { taskTimeline } from "../../scheduler/store/events";
import { getReplica } from "../../scheduler/store/replicas";
import { listWorkers } from "../../scheduler/store/workers";
import { dealId as dealIdOf, domain as concordDomain, hashOrder, signMessage, taskId as taskIdOf } from "../../sdk/eip712";
import {
  EMPTY_DATASET_ORDER,
  buildAppOrder,
  buildRequestOrder,
  buildWorkerpoolOrder,
  commitment,
  authorizationSignature,
  type RelayedContribution,
  type RelayedReveal,
} from "../../sdk/orders";
import type { SchedulerFrame } from "../../sdk/session";

export const POOL = 1n;
export const CHAIN_ID = 31337;
export const HUB = getAddress("0x00000000000000000000000000000000000c0c0d");
export const TIMEREF = 60;
export const MATCH_TX = id("matchOrders tx");
export const nowSec = () => Math.floor(Date.now() / 1000);

// ------------------------------------------------------------------------------------------------ fakes

export type Frame<T extends SchedulerFrame["type"]> = Extract<SchedulerFrame, { type: T }> & { worker: string };

/** The WorkerManager as the router uses it: events in, frames out (recorded), a fixed set of connected workers. */
export class FakeManager extends EventEmitter {
  readonly sent: { worker: string; frame: SchedulerFrame }[] = [];

  constructor(private readonly addresses: readonly string[]) {
    super();
  }

  workers(): { address: string; connectedAt: number; lastSeen: number }[] {
    return this.addresses.map((address) => ({ address, connectedAt: 0, lastSeen: 0 }));
  }

  send(worker: string, frame: SchedulerFrame): boolean {
    this.sent.push({ worker, frame });
    return true;
  }

  frames<T extends SchedulerFrame["type"]>(type: T, filter: (f: Frame<T>) => boolean = () => true): Frame<T>[] {
    return this.sent.filter((s) => s.frame.type === type).map((s) => ({ ...(s.frame as Extract<SchedulerFrame, { type: T }>), worker: s.worker })).filter(filter);
  }
}

/** The ResultStore as the router uses it (`put`, recorded), without a disk: the router's checks before it are real. */
export class FakeResults {
  readonly puts: { digest: string; files: number; callbackData: unknown }[] = [];

  async put(digest: string, files: readonly unknown[], options: { callbackData?: unknown } = {}): Promise<StoredResult> {
    this.puts.push({ digest: digest.toLowerCase(), files: files.length, callbackData: options.callbackData ?? null });
    return { digest: digest.toLowerCase(), kind: "directory", files: [], storedAt: new Date(0).toISOString() };
  }
}

export type WriteMethod = "contributeBatch" | "revealBatch" | "finalize" | "revealAndFinalize";

/** A write the router sent to the fake chain. */
export interface WriteCall {
  /** order among every write and viewTask call of the chain */
  seq: number;
  method: WriteMethod;
  taskId: string;
  /** the task's last contributeBatch was not mined (nor failed) yet when this one went out */
  beforeBatch: boolean;
  items?: RelayedContribution[];
  reveals?: RelayedReveal[];
  /** finalize: `results` and `resultsCallback`, hex */
  results?: string;
  resultsCallback?: string;
  /** contributeBatch: its gas limit; revealAndFinalize: the finalize's, and the revealBatch's (absent: estimated) */
  gasLimit?: bigint;
  revealGasLimit?: bigint;
  /** what it resolves with once mined (revealAndFinalize: the revealBatch's receipt; `finalizeReceipt` the finalize's) */
  receipt: TxResult;
  finalizeReceipt?: FinalizeResult;
  state: "pending" | "mined" | "failed";
  /** the error it rejected with (revealAndFinalize: its revealBatch's) */
  error?: string;
  /** resolves it (a held write) */
  mine(): void;
  /**
   * rejects it (a held write): with ChainError REVERTED (mined and reverted) when the message says "revert", else with
   * a plain error (a failure whose outcome the sender does not know, like a receipt that never came)
   */
  fail(message?: string): void;
}

/** The result of a promise settled from outside. */
export class Deferred<T> {
  readonly promise: Promise<T>;
  resolve!: (value: T) => void;
  reject!: (error: Error) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

type ChainPart = Pick<
  ChainClient,
  | "chainId"
  | "hub"
  | "address"
  | "domain"
  | "category"
  | "app"
  | "dataset"
  | "signAuthorization"
  | "viewDeal"
  | "dealTerms"
  | "viewTask"
  | "latestBlock"
  | "contributeBatch"
  | "revealBatch"
  | "finalize"
  | "revealAndFinalize"
>;

/** The chain as the router reads and writes it: `deals` is what the chain has; every write is recorded. */
export class FakeChain implements ChainPart {
  readonly chainId = CHAIN_ID;
  readonly hub = HUB;
  readonly scheduler = new Wallet(id("scheduler key"));
  readonly address = this.scheduler.address;
  readonly domain: TypedDataDomain = concordDomain(CHAIN_ID, HUB);
  /** the deals the chain has (matched) */
  readonly deals = new Map<string, DealTerms>();
  readonly batches: RelayedContribution[][] = [];
  readonly calls = { category: 0, latestBlock: 0, dealTerms: [] as string[], viewTask: [] as { seq: number; taskId: string }[] };
  /** every write, in the order sent */
  readonly writes: WriteCall[] = [];
  /** viewDeal calls that fail (an RPC error) before it answers again */
  failViewDeal = 0;
  /** contributeBatch stays pending until the test sends and mines (or fails) it */
  holdBatches = false;
  /** how far the chain's clock (latestBlock) is ahead of the host's at the world's start, in seconds */
  clockAheadSec = 0;
  /** the chain's clock stands still but for `clockAheadSec`: a second ticking by during a test moves no deadline */
  private readonly clockBase = nowSec();
  /** the gas each write uses (revealBatch: by number of reveals) */
  readonly gas = { contributeBatch: 100_000n, revealBatch: (reveals: number) => 44_000n + 26_482n * BigInt(reveals), finalize: 98_764n };
  private seq = 0;
  /** per task: its last contributeBatch, `mined` resolving true once mined, false once failed */
  private readonly batchOf = new Map<string, { mined: Promise<boolean>; settled: boolean }>();
  /** per task: the digest its reveals put on chain (what its TaskFinalized carries) */
  private readonly digests = new Map<string, string>();
  private readonly holds: WriteMethod[] = [];
  private readonly failures: { method: WriteMethod; message: string }[] = [];

  /** The next write of `method` stays pending until the test calls its `mine` or `fail`. */
  holdNext(method: Exclude<WriteMethod, "contributeBatch">): void {
    this.holds.push(method);
  }

  /** The next write of `method` fails (revealAndFinalize: its revealBatch reverts, so its finalize too). */
  failNext(method: WriteMethod, message: string): void {
    this.failures.push({ method, message });
  }

  /** The writes for `taskId` (every method, or one). */
  writesOf(taskId: string, method?: WriteMethod): WriteCall[] {
    return this.writes.filter((c) => c.taskId === taskId.toLowerCase() && (method === undefined || c.method === method));
  }

  async category(id: number | bigint): Promise<CategoryView | null> {
    this.calls.category += 1;
    return { id: Number(id), name: "S", timeref: TIMEREF };
  }

  async app(appId: bigint | number): Promise<AppEntry | null> {
    return { id: BigInt(appId), name: "echo", runtime: "wasi", uri: "http://127.0.0.1:1/apps/echo.wasm", checksum: id("echo.wasm") };
  }

  async dataset(): Promise<null> {
    return null;
  }

  signAuthorization(worker: string, taskId: string): Promise<string> {
    return authorizationSignature(this.scheduler, this.domain, worker, taskId);
  }

  async viewDeal(dealId: string): Promise<DealTerms | null> {
    if (this.failViewDeal > 0) {
      this.failViewDeal -= 1;
      throw new Error("viewDeal: connection reset");
    }
    return this.deals.get(dealId.toLowerCase()) ?? null;
  }

  async dealTerms(dealId: string): Promise<DealTerms | null> {
    this.calls.dealTerms.push(dealId.toLowerCase());
    return this.deals.get(dealId.toLowerCase()) ?? null;
  }

  async viewTask(taskId: string): Promise<TaskView> {
    this.calls.viewTask.push({ seq: ++this.seq, taskId: taskId.toLowerCase() });
    return {
      taskId: taskId.toLowerCase(),
      status: "UNSET",
      dealId: ZeroHash,
      index: 0,
      contributionDeadline: 0,
      revealDeadline: 0,
      finalDeadline: 0,
      contributorCount: 0,
      winnerCount: 0,
      revealCount: 0,
      consensusHash: ZeroHash,
      resultDigest: ZeroHash,
    };
  }

  async latestBlock(): Promise<{ number: number; timestamp: number }> {
    this.calls.latestBlock += 1;
    return { number: 300, timestamp: this.clockBase + this.clockAheadSec };
  }

  /**
   * Every relayed commit is recorded on chain, and the consensus is the hash most of them carry. Mined at once, or,
   * with `holdBatches`, when the test says.
   */
  contributeBatch(items: RelayedContribution[], opts: TxOptions = {}): Promise<TxResult> {
    this.batches.push(items);
    const taskId = taskIdOf(items[0].dealId, items[0].index);
    const tx = this.tx(`contributeBatch ${this.batches.length}`);
    const events: HubEvent[] = items.map((c, i) => ({ name: "ContributionCommitted", args: { taskId, worker: c.worker, resultHash: c.resultHash }, ...tx.at(i) }));
    // the Hub's consensus: the hash most items carry (relayPlan puts the divergent ones first)
    const count = (h: string) => items.filter((c) => c.resultHash === h).length;
    const consensusHash = items.map((c) => c.resultHash).reduce((best, h) => (count(h) > count(best) ? h : best));
    events.push({ name: "ConsensusReached", args: { taskId, consensusHash, revealDeadline: BigInt(this.clockBase + this.clockAheadSec + 2 * TIMEREF) }, ...tx.at(items.length) });
    const gate = new Deferred<boolean>();
    const batch = { mined: gate.promise, settled: false };
    const call = this.record({ method: "contributeBatch", taskId, items, ...(opts.gasLimit === undefined ? {} : { gasLimit: opts.gasLimit }) }, { hash: tx.hash, blockNumber: tx.blockNumber, gasUsed: this.gas.contributeBatch, events });
    this.batchOf.set(taskId.toLowerCase(), batch); // after `record`: its own beforeBatch looks at the previous one
    const result = this.settle(call, { hold: this.holdBatches }, (ok) => {
      batch.settled = true;
      gate.resolve(ok);
    });
    return result;
  }

  revealBatch(items: RelayedReveal[]): Promise<TxResult> {
    const taskId = items[0].taskId;
    const call = this.record({ method: "revealBatch", taskId, reveals: items }, this.revealReceipt(items));
    return this.settle(call, {}, (ok) => ok && this.digests.set(taskId.toLowerCase(), items[0].resultDigest.toLowerCase()));
  }

  finalize(taskId: string, results: BytesLike, resultsCallback: BytesLike = "0x"): Promise<FinalizeResult> {
    const digest = this.digests.get(taskId.toLowerCase());
    if (!digest) return Promise.reject(new Error(`finalize: no reveal of ${taskId} on chain`));
    const receipt = this.finalizeReceipt(taskId, digest, results);
    const call = this.record({ method: "finalize", taskId, results: hexlify(results), resultsCallback: hexlify(resultsCallback) }, receipt);
    return this.settle(call, {}) as Promise<FinalizeResult>;
  }

  /** Both land behind the task's contributeBatch: they revert when it fails (or when `failNext` says so). */
  revealAndFinalize(
    reveals: RelayedReveal[],
    f: { taskId: string; results: BytesLike; resultsCallback?: BytesLike; gasLimit: bigint; revealGasLimit?: bigint },
  ): { reveal: Promise<TxResult>; finalize: Promise<FinalizeResult> } {
    const taskId = f.taskId.toLowerCase();
    const finalizeReceipt = this.finalizeReceipt(taskId, reveals[0].resultDigest, f.results);
    const call = this.record(
      {
        method: "revealAndFinalize",
        taskId,
        reveals,
        results: hexlify(f.results),
        resultsCallback: hexlify(f.resultsCallback ?? "0x"),
        gasLimit: f.gasLimit,
        ...(f.revealGasLimit === undefined ? {} : { revealGasLimit: f.revealGasLimit }),
      },
      this.revealReceipt(reveals),
    );
    call.finalizeReceipt = finalizeReceipt;
    const behind = this.batchOf.get(taskId)?.mined ?? Promise.resolve(true);
    const failure = this.takeFailure("revealAndFinalize");
    const held = this.takeHold("revealAndFinalize");
    const released = new Deferred<void>();
    call.mine = () => released.resolve();
    call.fail = (message = "reverted") => {
      call.error = message;
      released.resolve();
    };
    if (!held) released.resolve();
    // each promise on its own (no handler of the fake on either): whoever gets them must handle both
    const outcome = Promise.all([behind, released.promise]).then(([mined]) => {
      const error = !mined ? "revealBatch reverted: the contributions are not on chain" : failure ?? call.error;
      call.state = error === undefined ? "mined" : "failed";
      if (error !== undefined) call.error = error;
      else this.digests.set(taskId, reveals[0].resultDigest.toLowerCase());
      return error;
    });
    const reveal = outcome.then((error) => {
      if (error !== undefined) throw new Error(error);
      return call.receipt;
    });
    const finalize = outcome.then((error) => {
      if (error !== undefined) throw new Error(`finalize reverted behind its revealBatch (${error})`);
      return finalizeReceipt;
    });
    return { reveal, finalize };
  }

  /** The deal as the chain would have it once `orders` are matched (the chain's own terms: ratios, start time…). */
  termsOf(
    expected: ExpectedDeal,
    orders: OrderSet,
    o: { volume?: number; startTime?: number; workerpool?: bigint; scheduler?: string; category?: number | null } = {},
  ): DealTerms {
    const startTime = o.startTime ?? nowSec() + 2;
    const trust = Number(orders.request.trust);
    return {
      dealId: expected.dealId,
      requester: orders.request.requester,
      scheduler: o.scheduler ?? this.address,
      callback: null,
      app: orders.request.app,
      dataset: 0n,
      appPrice: orders.app.appprice,
      datasetPrice: 0n,
      workerpoolPrice: orders.workerpool.workerpoolprice,
      startTime,
      timeref: TIMEREF,
      volume: o.volume ?? Number(expected.volume),
      trust,
      quorum: Math.max(1, trust),
      workerStakeRatio: 30,
      schedulerRewardRatio: 10,
      contributionDeadline: startTime + 7 * TIMEREF,
      finalDeadline: startTime + 10 * TIMEREF,
      params: orders.request.params,
      beneficiary: orders.request.beneficiary,
      workerpool: o.workerpool ?? POOL,
      category: o.category === undefined ? Number(orders.request.category) : o.category,
      requestOrderHash: expected.requestHash,
      appOrderHash: id("app order"),
      datasetOrderHash: ZeroHash,
      workerpoolOrderHash: id("workerpool order"),
      matchedBlock: 101,
      matchedTx: MATCH_TX,
    };
  }

  /** The chain matched the deal: it has it from now on; returns its DealMatched event. */
  match(terms: DealTerms): HubEvent {
    this.deals.set(terms.dealId.toLowerCase(), terms);
    return {
      name: "DealMatched",
      args: {
        dealId: terms.dealId,
        requestOrderHash: terms.requestOrderHash,
        workerpool: terms.workerpool,
        appOrderHash: terms.appOrderHash,
        datasetOrderHash: terms.datasetOrderHash,
        workerpoolOrderHash: terms.workerpoolOrderHash,
        beneficiary: terms.beneficiary,
        volume: BigInt(terms.volume),
        params: terms.params,
      },
      blockNumber: terms.matchedBlock,
      blockHash: id("block 101"),
      transactionHash: terms.matchedTx,
      transactionIndex: 0,
      logIndex: 0,
    };
  }

  private tx(name: string) {
    const hash = id(name);
    const blockNumber = 200;
    const at = (logIndex: number) => ({ blockNumber, blockHash: id(`block ${blockNumber}`), transactionHash: hash, transactionIndex: 0, logIndex });
    return { hash, blockNumber, at };
  }

  private revealReceipt(items: RelayedReveal[]): TxResult {
    const tx = this.tx(`revealBatch ${this.seq + 1}`);
    const events: HubEvent[] = items.map((r, i) => ({ name: "ContributionRevealed", args: { taskId: r.taskId, worker: r.worker, resultDigest: r.resultDigest }, ...tx.at(i) }));
    return { hash: tx.hash, blockNumber: tx.blockNumber, gasUsed: this.gas.revealBatch(items.length), events };
  }

  private finalizeReceipt(taskId: string, digest: string, results: BytesLike): FinalizeResult {
    const tx = this.tx(`finalize ${this.seq + 1}`);
    const events: HubEvent[] = [{ name: "TaskFinalized", args: { taskId, resultDigest: digest, results: hexlify(results) }, ...tx.at(0) }];
    return { hash: tx.hash, blockNumber: tx.blockNumber, gasUsed: this.gas.finalize, events, resultDigest: digest, callbackFailed: false };
  }

  private record(c: Pick<WriteCall, "method" | "taskId"> & Partial<WriteCall>, receipt: TxResult): WriteCall {
    const taskId = c.taskId.toLowerCase();
    const batch = this.batchOf.get(taskId);
    const call: WriteCall = {
      ...c,
      taskId,
      seq: ++this.seq,
      beforeBatch: batch !== undefined && !batch.settled,
      receipt,
      state: "pending",
      mine: () => undefined,
      fail: () => undefined,
    };
    this.writes.push(call);
    return call;
  }

  /** Resolves the write with its receipt at once, or when the test says (held); `then` runs first, told whether it was mined. */
  private settle(call: WriteCall, { hold = this.takeHold(call.method) }: { hold?: boolean }, then?: (mined: boolean) => unknown): Promise<TxResult> {
    const result = new Deferred<TxResult>();
    const failure = this.takeFailure(call.method);
    call.mine = () => {
      if (call.state !== "pending") return;
      call.state = "mined";
      then?.(true);
      result.resolve(call.receipt);
    };
    call.fail = (message = "reverted") => {
      if (call.state !== "pending") return;
      call.state = "failed";
      call.error = message;
      then?.(false);
      result.reject(/revert/i.test(message) ? new ChainError("REVERTED", message, { action: call.method }) : new Error(message));
    };
    if (failure !== undefined) call.fail(failure);
    else if (!hold) call.mine();
    return result.promise;
  }

  private takeHold(method: WriteMethod): boolean {
    const i = this.holds.indexOf(method);
    if (i >= 0) this.holds.splice(i, 1);
    return i >= 0;
  }

  private takeFailure(method: WriteMethod): string | undefined {
    const i = this.failures.findIndex((f) => f.method === method);
    return i >= 0 ? this.failures.splice(i, 1)[0].message : undefined;
  }
}

// ------------------------------------------------------------------------------------------------ the world

export interface World {
  router: JobRouter;
  db: Db;
  chain: FakeChain;
  manager: FakeManager;
  workers: Map<string, Wallet>;
  /** what the router logged (info and above), parsed */
  logs: { level: number; msg: string; [key: string]: unknown }[];
  close(): Promise<void>;
}

export const opened: World[] = [];

export interface WorldOptions {
  workers?: number;
  commitMode?: JobRouterOptions["commitMode"];
  reconcileMs?: number;
  /** the router's interval (a tick also runs after each event that may unblock a task) */
  tickMs?: number;
  /** the router's result store (default: a real ResultStore in a temporary directory) */
  results?: Pick<ResultStore, "put">;
}

export async function world(o: WorldOptions = {}): Promise<World> {
  const wallets = Array.from({ length: o.workers ?? 3 }, (_, i) => new Wallet(id(`worker ${i}`)));
  const db = openDatabase(":memory:");
  const chain = new FakeChain();
  const manager = new FakeManager(wallets.map((w) => w.address));
  const dir = mkdtempSync(join(tmpdir(), "concord-router-world-"));
  const logs: World["logs"] = [];
  const log = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const router = new JobRouter(
    {
      ...defaultJobRouterOptions,
      workerpool: POOL,
      publicUrl: "http://127.0.0.1:1",
      tickMs: o.tickMs ?? 10,
      workerCapacity: 8,
      reconcileMs: o.reconcileMs ?? 3_600_000,
      commitMode: o.commitMode ?? "relay",
    },
    { db, chain: chain as unknown as ChainClient, manager: manager as unknown as WorkerManager, results: (o.results ?? new ResultStore({ dir })) as ResultStore, log },
  );
  for (const w of wallets) manager.emit("joined", w.address, []);
  await until(() => listWorkers(db).length === wallets.length, "the workers to join");
  router.start();
  const w: World = {
    router,
    db,
    chain,
    manager,
    workers: new Map(wallets.map((wallet) => [wallet.address, wallet])),
    logs,
    close: async () => {
      router.stop();
      await new Promise((resolve) => setTimeout(resolve, 30)); // let a tick already under way end before the store closes
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  opened.push(w);
  return w;
}

/** Waits until `condition` holds (polling), or fails naming what it waited for. */
export async function until(condition: () => boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Waits until `condition` holds, checking once per turn of the event loop, at most `turns` turns. */
export async function eventually(condition: () => boolean, what: string, turns = 20_000): Promise<void> {
  for (let i = 0; !condition(); i++) {
    if (i >= turns) throw new Error(`${what}: still not the case after ${turns} turns of the event loop`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Lets `turns` turns of the event loop go by (whatever is under way with no outside input runs meanwhile). */
export async function idle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Orders of a request for `volume` tasks with `trust`, and the deal the book expects their match to create. */
export function ordersFor(chain: FakeChain, o: { volume?: bigint; trust?: bigint; params?: string } = {}): { orders: OrderSet; expected: ExpectedDeal } {
  const requester = new Wallet(id("requester")).address;
  const volume = o.volume ?? 1n;
  const trust = o.trust ?? 0n;
  const request = buildRequestOrder({
    app: 1n,
    appmaxprice: 5n,
    workerpool: POOL,
    workerpoolmaxprice: 7n,
    category: 0n,
    requester,
    volume,
    trust,
    params: o.params ?? '{"args":["speculate"]}',
  });
  const orders: OrderSet = {
    app: { ...buildAppOrder({ app: 1n, appprice: 5n, volume: 1000n }), sign: "0x" },
    dataset: EMPTY_DATASET_ORDER,
    workerpool: { ...buildWorkerpoolOrder({ workerpool: POOL, workerpoolprice: 7n, category: 0n, volume: 1000n, trust }), sign: "0x" },
    request: { ...request, sign: "0x" },
  };
  const requestHash = hashOrder(chain.domain, "RequestOrder", request);
  return { orders, expected: { dealId: dealIdOf(requestHash, 0n), volume, requestHash } };
}

/**
 * The worker's signed commit of `digest` for the replica `assign` gave it, as its session delivers it; waits until the
 * store has it (`recorded: false`: until the router handled the frame, whatever it did with it).
 */
export async function commit(w: World, assign: Frame<"assign">, digest: string, { recorded = true } = {}): Promise<void> {
  const wallet = w.workers.get(assign.worker)!;
  const { resultHash, resultSeal } = commitment(wallet.address, assign.taskId, digest);
  const signature = await signMessage(wallet, w.chain.domain, "Contribution", { taskId: assign.taskId, resultHash, resultSeal });
  w.manager.emit("commit", wallet.address, { type: "commit", replicaId: assign.replicaId, taskId: assign.taskId, resultHash, resultSeal, signature });
  if (!recorded) return new Promise((resolve) => setImmediate(resolve)); // the router handles it in a microtask
  await until(() => getReplica(w.db, assign.replicaId)?.resultHash === resultHash.toLowerCase(), `the commit of ${assign.replicaId}`);
}

/** A worker's signed Reveal of `digest` (and its files) for the replica `assign` gave it, as its session delivers it. */
export async function revealedFrame(w: World, assign: Frame<"assign">, digest: string) {
  const wallet = w.workers.get(assign.worker)!;
  const signature = await signMessage(wallet, w.chain.domain, "Reveal", { taskId: assign.taskId, resultDigest: digest });
  const files = [{ path: "out.txt", base64: Buffer.from(`the result ${digest}`).toString("base64") }];
  return { type: "revealed" as const, replicaId: assign.replicaId, taskId: assign.taskId, resultDigest: digest, signature, files, callbackData: null };
}

/** The worker reveals `digest` for the replica `assign` gave it (after the router asked); waits until the store has it. */
export async function reveal(w: World, assign: Frame<"assign">, digest: string): Promise<RelayedReveal> {
  const frame = await revealedFrame(w, assign, digest);
  w.manager.emit("revealed", assign.worker, frame);
  await eventually(() => getReplica(w.db, assign.replicaId)?.times.revealed != null, `the reveal of ${assign.replicaId}`);
  return { taskId: assign.taskId, worker: assign.worker, resultDigest: digest, signature: frame.signature };
}

export const taskOf = (dealId: string, index: number) => taskIdOf(dealId, index).toLowerCase();
export const assignsOf = (w: World, taskId: string) => w.manager.frames("assign", (f) => f.taskId === taskId);
export const kinds = (w: World, taskId: string) => taskTimeline(w.db, taskId).map((e) => e.kind);
export const DIGEST = id("the result");
