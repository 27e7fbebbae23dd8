/**
 * scheduler/router.ts, speculative deals: the JobRouter starts a deal's tasks while its own `matchOrders` is being
 * mined (`speculate`), runs them without putting anything on chain, and then either confirms the deal (its
 * DealMatched, or reconciliation with the chain) or drops it (`abandon`, or reconciliation when the match never
 * landed).
 *
 * The router runs for real on an in-memory store; the chain and the WorkerManager are fakes that record what the
 * router asks of them. Workers are real ethers wallets: their Contribution signatures are checked by the router.
 */
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Wallet, ZeroHash, getAddress, id, verifyTypedData } from "ethers";
import type { TypedDataDomain } from "ethers";
import pino from "pino";
import { JobRouter, defaultJobRouterOptions, type JobRouterOptions } from "../../scheduler/router";
import type { ExpectedDeal, OrderSet } from "../../scheduler/matcher";
import type { AppEntry, CategoryView, ChainClient, DealTerms, TaskView, TxResult } from "../../scheduler/chain/client";
import type { HubEvent } from "../../scheduler/chain/events";
import type { WorkerManager } from "../../scheduler/session/manager";
import { ResultStore } from "../../scheduler/api";
import { openDatabase } from "../../scheduler/store/state";
import type { Db } from "../../scheduler/store/db";
import { getDeal, upsertDeal, type NewDeal } from "../../scheduler/store/deals";
import { taskTimeline } from "../../scheduler/store/events";
import { getReplica, listReplicas } from "../../scheduler/store/replicas";
import { getTask, listTasks } from "../../scheduler/store/tasks";
import { listWorkers } from "../../scheduler/store/workers";
import { MESSAGE_TYPES, dealId as dealIdOf, domain as concordDomain, hashOrder, signMessage, taskId as taskIdOf } from "../../sdk/eip712";
import {
  EMPTY_DATASET_ORDER,
  buildAppOrder,
  buildRequestOrder,
  buildWorkerpoolOrder,
  commitment,
  authorizationSignature,
  type RelayedContribution,
} from "../../sdk/orders";
import type { SchedulerFrame } from "../../sdk/session";

const POOL = 1n;
const CHAIN_ID = 31337;
const HUB = getAddress("0x00000000000000000000000000000000000c0c0d");
const TIMEREF = 60;
const MATCH_TX = id("matchOrders tx");
const nowSec = () => Math.floor(Date.now() / 1000);

// ------------------------------------------------------------------------------------------------ fakes

type Frame<T extends SchedulerFrame["type"]> = Extract<SchedulerFrame, { type: T }> & { worker: string };

/** The WorkerManager as the router uses it: events in, frames out (recorded), a fixed set of connected workers. */
class FakeManager extends EventEmitter {
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

type ChainPart = Pick<
  ChainClient,
  "chainId" | "hub" | "address" | "domain" | "category" | "app" | "dataset" | "signAuthorization" | "viewDeal" | "dealTerms" | "viewTask" | "latestBlock" | "contributeBatch"
>;

/** The chain as the router reads and writes it: `deals` is what the chain has; every write is recorded. */
class FakeChain implements ChainPart {
  readonly chainId = CHAIN_ID;
  readonly hub = HUB;
  readonly scheduler = new Wallet(id("scheduler key"));
  readonly address = this.scheduler.address;
  readonly domain: TypedDataDomain = concordDomain(CHAIN_ID, HUB);
  /** the deals the chain has (matched) */
  readonly deals = new Map<string, DealTerms>();
  readonly batches: RelayedContribution[][] = [];
  readonly calls = { category: 0, dealTerms: [] as string[] };
  /** viewDeal calls that fail (an RPC error) before it answers again */
  failViewDeal = 0;

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
    return { number: 300, timestamp: nowSec() };
  }

  /** Mined at once: every relayed commit is recorded on chain, and the first one's hash is the consensus. */
  async contributeBatch(items: RelayedContribution[]): Promise<TxResult> {
    this.batches.push(items);
    const hash = id(`contributeBatch ${this.batches.length}`);
    const taskId = taskIdOf(items[0].dealId, items[0].index);
    const at = (logIndex: number) => ({ blockNumber: 200, blockHash: id("block 200"), transactionHash: hash, transactionIndex: 0, logIndex });
    const events: HubEvent[] = items.map((c, i) => ({ name: "ContributionCommitted", args: { taskId, worker: c.worker, resultHash: c.resultHash }, ...at(i) }));
    events.push({ name: "ConsensusReached", args: { taskId, consensusHash: items[0].resultHash, revealDeadline: BigInt(nowSec() + 600) }, ...at(items.length) });
    return { hash, blockNumber: 200, gasUsed: 100_000n, events };
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
}

// ------------------------------------------------------------------------------------------------ the world

interface World {
  router: JobRouter;
  db: Db;
  chain: FakeChain;
  manager: FakeManager;
  workers: Map<string, Wallet>;
  close(): Promise<void>;
}

const opened: World[] = [];

async function world(o: { workers?: number; commitMode?: JobRouterOptions["commitMode"]; reconcileMs?: number } = {}): Promise<World> {
  const wallets = Array.from({ length: o.workers ?? 3 }, (_, i) => new Wallet(id(`worker ${i}`)));
  const db = openDatabase(":memory:");
  const chain = new FakeChain();
  const manager = new FakeManager(wallets.map((w) => w.address));
  const dir = mkdtempSync(join(tmpdir(), "concord-router-speculation-"));
  const router = new JobRouter(
    {
      ...defaultJobRouterOptions,
      workerpool: POOL,
      publicUrl: "http://127.0.0.1:1",
      tickMs: 10,
      workerCapacity: 8,
      reconcileMs: o.reconcileMs ?? 3_600_000,
      commitMode: o.commitMode ?? "relay",
    },
    { db, chain: chain as unknown as ChainClient, manager: manager as unknown as WorkerManager, results: new ResultStore({ dir }), log: pino({ level: "silent" }) },
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
async function until(condition: () => boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Orders of a request for `volume` tasks with `trust`, and the deal the book expects their match to create. */
function ordersFor(chain: FakeChain, o: { volume?: bigint; trust?: bigint; params?: string } = {}): { orders: OrderSet; expected: ExpectedDeal } {
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
async function commit(w: World, assign: Frame<"assign">, digest: string, { recorded = true } = {}): Promise<void> {
  const wallet = w.workers.get(assign.worker)!;
  const { resultHash, resultSeal } = commitment(wallet.address, assign.taskId, digest);
  const signature = await signMessage(wallet, w.chain.domain, "Contribution", { taskId: assign.taskId, resultHash, resultSeal });
  w.manager.emit("commit", wallet.address, { type: "commit", replicaId: assign.replicaId, taskId: assign.taskId, resultHash, resultSeal, signature });
  if (!recorded) return new Promise((resolve) => setImmediate(resolve)); // the router handles it in a microtask
  await until(() => getReplica(w.db, assign.replicaId)?.resultHash === resultHash.toLowerCase(), `the commit of ${assign.replicaId}`);
}

const taskOf = (dealId: string, index: number) => taskIdOf(dealId, index).toLowerCase();
const assignsOf = (w: World, taskId: string) => w.manager.frames("assign", (f) => f.taskId === taskId);
const kinds = (w: World, taskId: string) => taskTimeline(w.db, taskId).map((e) => e.kind);
const DIGEST = id("the result");

/** A speculative deal of one task with quorum 2 (three replicas), two of them committed to the same digest. */
async function speculativeQuorum(w: World) {
  const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust: 2n });
  await w.router.speculate(expected, orders);
  const taskId = taskOf(expected.dealId, 0);
  await until(() => assignsOf(w, taskId).length === 3, "three replicas of the task");
  const [a, b, c] = assignsOf(w, taskId);
  await commit(w, a, DIGEST);
  await commit(w, b, DIGEST);
  // the third replica is cancelled by the very decision that saw the quorum (and would have relayed it)
  await until(() => w.manager.frames("cancel", (f) => f.replicaId === c.replicaId).length === 1, "the spare replica's cancel");
  return { orders, expected, taskId, winners: [a, b], spare: c };
}

// ------------------------------------------------------------------------------------------------ tests

describe("scheduler/router: speculative deals (tasks started while their matchOrders is mined)", () => {
  afterEach(async () => {
    for (const w of opened.splice(0)) await w.close();
  });

  describe("speculate", () => {
    it("records the deal from the orders as speculative and dispatches q + 1 replicas of each task, on distinct workers", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 2n, trust: 2n, params: '{"args":["a","b"]}' });
      await w.router.speculate(expected, orders);

      const deal = getDeal(w.db, expected.dealId)!;
      expect(deal).to.include({ speculative: true, volume: 2, trust: 2, params: '{"args":["a","b"]}', timeref: TIMEREF, scheduler: w.chain.address });
      expect(deal).to.include({ workerpool: POOL, app: 1n, appPrice: 5n, workerpoolPrice: 7n, category: 0n, requestOrderHash: expected.requestHash.toLowerCase() });

      for (const index of [0, 1]) {
        const taskId = taskOf(expected.dealId, index);
        await until(() => assignsOf(w, taskId).length === 3, `three replicas of task ${index}`);
        const assigns = assignsOf(w, taskId);
        expect(new Set(assigns.map((a) => a.worker)).size, "one replica per worker").to.equal(3);
        for (const a of assigns) {
          expect(a).to.include({ dealId: expected.dealId.toLowerCase(), index, taskId, params: '{"args":["a","b"]}', commitMode: "relay", callback: false });
          expect(a.app).to.deep.include({ id: "1", runtime: "wasi" });
          const signer = verifyTypedData(w.chain.domain, { Authorization: [...MESSAGE_TYPES.Authorization] }, { worker: a.worker, taskId }, a.authorization);
          expect(signer, "the scheduler's Authorization").to.equal(w.chain.address);
        }
        expect(getTask(w.db, taskId)!.status).to.equal("dispatched");
        expect(taskTimeline(w.db, taskId)[0]).to.deep.include({ kind: "task.created", detail: { dealId: expected.dealId.toLowerCase(), index, speculative: true } });
      }
    });

    const volumes: [expected: bigint, started: number][] = [
      [1n, 1],
      [16n, 16],
      [40n, 16],
    ];
    for (const [volume, started] of volumes) {
      it(`starts min(volume, 16) tasks: volume ${volume} → ${started}`, async () => {
        const w = await world();
        const { orders, expected } = ordersFor(w.chain, { volume });
        await w.router.speculate(expected, orders);
        expect(getDeal(w.db, expected.dealId)!.volume).to.equal(started);
        expect(listTasks(w.db, { dealId: expected.dealId }).map((t) => t.index).sort((a, b) => a - b)).to.deep.equal([...Array(started).keys()]);
      });
    }

    it("does nothing when the deal is already recorded (its receipt came first)", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 3n });
      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders, { volume: 1 }))]);
      const before = getDeal(w.db, expected.dealId)!;
      expect(before.speculative).to.equal(false);

      await w.router.speculate(expected, orders);

      expect(getDeal(w.db, expected.dealId)).to.deep.equal(before);
      expect(listTasks(w.db, { dealId: expected.dealId })).to.have.length(1);
      expect(taskTimeline(w.db, taskOf(expected.dealId, 0)).filter((e) => e.kind === "task.created")).to.have.length(1);
    });

    it("does nothing in direct commit mode (the workers' own contribute needs the deal on chain)", async () => {
      const w = await world({ commitMode: "direct" });
      const { orders, expected } = ordersFor(w.chain, { volume: 2n });
      await w.router.speculate(expected, orders);
      expect(getDeal(w.db, expected.dealId)).to.equal(null);
      expect(listTasks(w.db)).to.deep.equal([]);
      expect(w.chain.calls.category, "not even the category is read").to.equal(0);
    });
  });

  describe("running unconfirmed", () => {
    it("commits reaching the quorum relay nothing: no contributeBatch, no reveal request, the spare replica cancelled", async () => {
      const w = await world();
      const { taskId, spare } = await speculativeQuorum(w);

      expect(w.chain.batches, "contributeBatch calls").to.deep.equal([]);
      expect(w.manager.frames("reveal"), "reveal frames").to.deep.equal([]);
      expect(w.manager.frames("cancel")).to.deep.equal([{ type: "cancel", replicaId: spare.replicaId, taskId, reason: "quorum reached", worker: spare.worker }]);
      expect(getTask(w.db, taskId)).to.include({ status: "dispatched", consensusHash: null });
    });

    it("a task past its contribution deadline is not given up while speculative (only its replicas stop), and is once confirmed", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust: 0n });
      await w.router.speculate(expected, orders);
      const taskId = taskOf(expected.dealId, 0);
      await until(() => assignsOf(w, taskId).length === 2, "two replicas of the task");
      w.db.prepare("UPDATE deals SET contribution_deadline = ? WHERE deal_id = ?").run(nowSec(), expected.dealId.toLowerCase());

      // cancel and giveUp come from the same decision: once the cancels are out, the giveUp was skipped
      await until(() => w.manager.frames("cancel", (f) => f.reason === "gave up").length === 2, "the replicas' cancels");
      expect(getTask(w.db, taskId)!.status).to.equal("dispatched");

      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders, { startTime: nowSec() - 10 * TIMEREF }))]);
      await until(() => getTask(w.db, taskId)!.status === "failed", "the task given up once confirmed");
      expect(getTask(w.db, taskId)!.failureReason).to.equal("contribution deadline reached");
    });
  });

  describe("confirmation by the DealMatched", () => {
    const paths: [string, (w: World, e: HubEvent) => Promise<void>][] = [
      ["our receipt (onReceipt)", (w, e) => w.router.onReceipt([e])],
      ["the watcher (onChainEvent)", (w, e) => w.router.onChainEvent(e)],
    ];
    for (const [path, deliver] of paths) {
      it(`through ${path}: the chain's terms, not speculative, deal.confirmed, then one contributeBatch of the quorum`, async () => {
        const w = await world();
        const { orders, expected, taskId, winners } = await speculativeQuorum(w);
        const terms = w.chain.termsOf(expected, orders);

        await deliver(w, w.chain.match(terms));

        const deal = getDeal(w.db, expected.dealId)!;
        expect(deal).to.include({ speculative: false, volume: 1, startTime: terms.startTime, workerStakeRatio: 30, schedulerRewardRatio: 10 });
        expect(deal).to.include({ blockNumber: terms.matchedBlock, txHash: MATCH_TX.toLowerCase(), category: 0n });
        expect(taskTimeline(w.db, taskId).filter((e) => e.kind === "deal.confirmed").map((e) => e.detail)).to.deep.equal([{ tx: MATCH_TX }]);

        await until(() => w.chain.batches.length === 1 && getTask(w.db, taskId)!.status === "revealing", "the relay");
        const [batch] = w.chain.batches;
        expect(batch.map((c) => [c.dealId.toLowerCase(), c.index, c.worker]).sort()).to.deep.equal(
          winners.map((a) => [expected.dealId.toLowerCase(), 0n, a.worker]).sort(),
        );
        expect(w.manager.frames("reveal").map((f) => f.replicaId).sort()).to.deep.equal(winners.map((a) => a.replicaId).sort());
        expect(getTask(w.db, taskId)!.consensusHash).to.equal(commitment(winners[0].worker, taskId, DIGEST).resultHash.toLowerCase());
        expect(w.chain.batches, "relayed once").to.have.length(1);
      });
    }

    it("a DealMatched of another pool confirms nothing", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 1n });
      await w.router.speculate(expected, orders);
      await w.router.onChainEvent(w.chain.match(w.chain.termsOf(expected, orders, { workerpool: 2n })));
      expect(getDeal(w.db, expected.dealId)!.speculative).to.equal(true);
    });

    it("a smaller real volume drops the extra tasks (replicas, timeline) and cancels their replicas still held", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 3n, trust: 0n });
      await w.router.speculate(expected, orders);
      const tasks = [0, 1, 2].map((i) => taskOf(expected.dealId, i));
      await until(() => tasks.every((t) => assignsOf(w, t).length === 2), "two replicas of each task");
      await commit(w, assignsOf(w, tasks[2])[0], DIGEST); // a committed replica of a dropped task is cancelled too
      const dropped = [...assignsOf(w, tasks[1]), assignsOf(w, tasks[2])[0]];
      await until(() => w.manager.frames("cancel").length === 1, "the quorum's cancel on task 2");

      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders, { volume: 1 }))]);

      expect(getDeal(w.db, expected.dealId)).to.include({ speculative: false, volume: 1 });
      const table = tasks.map((t) => [getTask(w.db, t)?.index ?? null, listReplicas(w.db, t).length, kinds(w, t).includes("deal.confirmed")]);
      expect(table).to.deep.equal([
        [0, 2, true],
        [null, 0, false],
        [null, 0, false],
      ]);
      const cancels = w.manager.frames("cancel", (f) => f.reason === "the deal has fewer tasks");
      expect(cancels.map((f) => [f.worker, f.replicaId, f.taskId]).sort()).to.deep.equal(dropped.map((a) => [a.worker, a.replicaId, a.taskId]).sort());
      expect(w.manager.frames("cancel", (f) => f.taskId === tasks[0]), "task 0 keeps its replicas").to.deep.equal([]);
    });

    it("a real volume above the 16 started creates the other tasks", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 20n });
      await w.router.speculate(expected, orders);
      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders, { volume: 20 }))]);
      const tasks = listTasks(w.db, { dealId: expected.dealId }).sort((a, b) => a.index - b.index);
      expect(tasks.map((t) => t.index)).to.deep.equal([...Array(20).keys()]);
      const confirmed = tasks.map((t) => kinds(w, t.taskId).includes("deal.confirmed"));
      expect(confirmed).to.deep.equal([...Array(20).keys()].map((i) => i < 16));
    });

    // the store keeps the deal speculative until the chain's terms are read, so a replay of the DealMatched (the watcher)
    // records them and the tasks past the 16 started
    it("a DealMatched whose viewDeal failed is recorded in full when the watcher delivers it again", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 20n });
      await w.router.speculate(expected, orders);
      const terms = w.chain.termsOf(expected, orders, { volume: 20 });
      const event = w.chain.match(terms);
      w.chain.failViewDeal = 1;
      const first = await w.router.onReceipt([event]).then(() => "recorded", (e: Error) => e.message);
      expect(first).to.equal("viewDeal: connection reset");

      await w.router.onChainEvent(event); // the watcher's copy of the same event

      expect(getDeal(w.db, expected.dealId)).to.include({ speculative: false, volume: 20, startTime: terms.startTime, workerStakeRatio: 30 });
      expect(listTasks(w.db, { dealId: expected.dealId })).to.have.length(20);
    });
  });

  describe("abandon", () => {
    it("a worker that comes back announcing a commit of a dropped task is told to cancel it (it stops announcing it)", async () => {
      const w = await world({ workers: 2 });
      const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust: 0n });
      await w.router.speculate(expected, orders);
      const taskId = taskOf(expected.dealId, 0);
      await until(() => assignsOf(w, taskId).length === 2, "two replicas");
      const [a] = assignsOf(w, taskId);
      w.router.abandon(expected.dealId, "matchOrders failed: reverted");
      const sentBefore = w.manager.sent.length;
      const pending = [{ replicaId: a.replicaId, taskId, resultHash: id("hash"), resultSeal: id("seal"), signature: "0x" }];
      w.manager.emit("joined", a.worker, pending);
      await until(() => w.manager.sent.length > sentBefore, "the cancel");
      expect(w.manager.sent.slice(sentBefore).map((x) => ({ worker: x.worker, ...x.frame }))).to.deep.equal([
        { worker: a.worker, type: "cancel", replicaId: a.replicaId, taskId, reason: "unknown task: its deal was never matched" },
      ]);
      expect(getTask(w.db, taskId)).to.equal(null);
    });

    it("drops the deal with its tasks, replicas and timeline, and cancels the replicas still assigned, running or committed", async () => {
      const w = await world({ workers: 2 });
      const { orders, expected } = ordersFor(w.chain, { volume: 2n, trust: 0n });
      await w.router.speculate(expected, orders);
      const [t0, t1] = [0, 1].map((i) => taskOf(expected.dealId, i));
      await until(() => assignsOf(w, t0).length === 2 && assignsOf(w, t1).length === 2, "two replicas of each task");
      const [winner, spare] = assignsOf(w, t0);
      await commit(w, winner, DIGEST); // quorum 1: the spare is cancelled at once
      await until(() => getReplica(w.db, spare.replicaId)?.status === "cancelled", "the spare's cancel");
      const sentBefore = w.manager.sent.length;
      const replicas = [...listReplicas(w.db, t0), ...listReplicas(w.db, t1)].map((r) => r.replicaId);
      const reason = "matchOrders failed: reverted";

      w.router.abandon(expected.dealId, reason);

      const cancels = w.manager.sent.slice(sentBefore).map((s) => ({ worker: s.worker, ...s.frame }));
      const expectedCancels = [winner, ...assignsOf(w, t1)].map((a) => ({ worker: a.worker, type: "cancel", replicaId: a.replicaId, taskId: a.taskId, reason }));
      expect(cancels).to.have.deep.members(expectedCancels);
      expect(getDeal(w.db, expected.dealId)).to.equal(null);
      expect([getTask(w.db, t0), getTask(w.db, t1)]).to.deep.equal([null, null]);
      expect(replicas.map((r) => getReplica(w.db, r))).to.deep.equal(replicas.map(() => null));
      expect([taskTimeline(w.db, t0), taskTimeline(w.db, t1)]).to.deep.equal([[], []]);

      // a commit arriving for a dropped replica is ignored; the router goes on with other deals
      const late = assignsOf(w, t1)[0];
      await commit(w, late, DIGEST, { recorded: false });
      expect(getReplica(w.db, late.replicaId)).to.equal(null);
      const next = ordersFor(w.chain, { volume: 1n });
      await w.router.speculate(next.expected, next.orders);
      await until(() => assignsOf(w, taskOf(next.expected.dealId, 0)).length === 2, "the next deal's replicas");
      expect(w.manager.frames("assign", (f) => f.dealId === expected.dealId.toLowerCase())).to.have.length(4);
    });

    it("leaves a confirmed deal alone (and an unknown one)", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 1n });
      await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders))]);
      const taskId = taskOf(expected.dealId, 0);
      await until(() => assignsOf(w, taskId).length === 2, "the confirmed deal's replicas");
      const deal = getDeal(w.db, expected.dealId);
      const sentBefore = w.manager.sent.length;

      w.router.abandon(expected.dealId, "should not happen");
      w.router.abandon(dealIdOf(id("unknown request"), 0n), "unknown");

      expect(getDeal(w.db, expected.dealId)).to.deep.equal(deal);
      expect(getTask(w.db, taskId)!.status).to.equal("dispatched");
      expect(listReplicas(w.db, taskId)).to.have.length(2);
      expect(w.manager.sent.slice(sentBefore).filter((s) => s.frame.type === "cancel")).to.deep.equal([]);
    });
  });

  describe("a deal id that is not ours yet", () => {
    it("abandon leaves a deal whose DealMatched came in, even before the chain's terms are recorded: its relayed task goes on", async () => {
      const w = await world();
      const { orders, expected, taskId } = await speculativeQuorum(w);
      const terms = w.chain.termsOf(expected, orders);
      w.chain.failViewDeal = 1; // confirmed by the event, its terms not read yet
      await w.router.onChainEvent(w.chain.match(terms)).catch(() => undefined);
      await until(() => w.chain.batches.length === 1, "the relay of the confirmed deal");
      w.router.abandon(expected.dealId, "matchOrders created deal 0xother instead");
      expect(getDeal(w.db, expected.dealId)).to.not.equal(null);
      expect(getTask(w.db, taskId)!.status).to.equal("revealing");
      expect(w.manager.frames("cancel", (f) => f.taskId === taskId && /0xother/.test(f.reason))).to.deep.equal([]);
      // the watcher's replay records the chain's terms
      await w.router.onChainEvent(w.chain.match(terms));
      expect(getDeal(w.db, expected.dealId)).to.include({ speculative: false, workerStakeRatio: 30 });
    });

    it("another pool's task events under the same id move nothing of a speculative task", async () => {
      const w = await world();
      const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust: 2n });
      await w.router.speculate(expected, orders);
      const taskId = taskOf(expected.dealId, 0);
      await until(() => assignsOf(w, taskId).length === 3, "three replicas");
      const at = (logIndex: number) => ({ blockNumber: 150, blockHash: id("b150"), transactionHash: id("other pool tx"), transactionIndex: 0, logIndex });
      await w.router.onChainEvent({ name: "ConsensusReached", args: { taskId, consensusHash: id("x"), revealDeadline: BigInt(nowSec() - 1) }, ...at(0) } as HubEvent);
      await w.router.onChainEvent({ name: "TaskFinalized", args: { taskId, resultDigest: id("d"), results: "0x" }, ...at(1) } as HubEvent);
      const task = getTask(w.db, taskId)!;
      expect(task.status).to.equal("dispatched");
      expect(task.consensusHash).to.equal(null);
      expect(kinds(w, taskId).filter((k) => k.startsWith("chain."))).to.deep.equal([]);
    });
  });

  describe("reconciliation (speculative deals older than 60 s)", () => {
    const ageMs = 61_000;
    type ChainHas = "nothing" | "our deal" | "our deal, category unknown";
    const cases: { chain: ChainHas; outcome: string; settled: (w: World, dealId: string) => boolean }[] = [
      { chain: "nothing", outcome: "dropped", settled: (w, d) => getDeal(w.db, d) === null },
      // the chain client reads the category from the matching transaction: a number for our own matchOrders
      { chain: "our deal", outcome: "confirmed", settled: (w, d) => getDeal(w.db, d)?.speculative === false },
      { chain: "our deal, category unknown", outcome: "confirmed", settled: (w, d) => getDeal(w.db, d)?.speculative === false },
    ];
    for (const { chain, outcome, settled } of cases) {
      it(`the chain has ${chain}: ${outcome}; a younger speculative deal is left alone`, async () => {
        const w = await world({ reconcileMs: 20 });
        const stale = ordersFor(w.chain, { volume: 2n });
        const fresh = ordersFor(w.chain, { volume: 1n, params: "fresh" });
        await w.router.speculate(stale.expected, stale.orders);
        await w.router.speculate(fresh.expected, fresh.orders);
        const staleTasks = [0, 1].map((i) => taskOf(stale.expected.dealId, i));
        await until(() => staleTasks.every((t) => assignsOf(w, t).length === 2), "the stale deal's replicas");
        if (chain !== "nothing") w.chain.match(w.chain.termsOf(stale.expected, stale.orders, { category: chain === "our deal" ? 0 : null }));
        w.db.prepare("UPDATE deals SET created_at = created_at - ? WHERE deal_id = ?").run(ageMs, stale.expected.dealId.toLowerCase());

        await until(() => settled(w, stale.expected.dealId), `the stale deal ${outcome}`);

        if (chain === "nothing") {
          expect(staleTasks.map((t) => getTask(w.db, t))).to.deep.equal([null, null]);
          const cancelled = w.manager.frames("cancel").map((f) => f.replicaId).sort();
          expect(cancelled).to.deep.equal(staleTasks.flatMap((t) => assignsOf(w, t).map((a) => a.replicaId)).sort());
        } else {
          expect(getDeal(w.db, stale.expected.dealId)).to.include({ volume: 2, workerStakeRatio: 30, category: 0n });
          expect(staleTasks.map((t) => kinds(w, t).includes("deal.confirmed"))).to.deep.equal([true, true]);
          expect(w.manager.frames("cancel")).to.deep.equal([]);
        }
        // both deals were looked at in the same pass: the young one is still speculative, its terms never asked
        expect(getDeal(w.db, fresh.expected.dealId)!.speculative).to.equal(true);
        expect(w.chain.calls.dealTerms).to.not.include(fresh.expected.dealId.toLowerCase());
      });
    }

    // another pool that matched the same request first has the same id (dealId depends only on the request and its
    // consumed volume): after a restart, this scheduler must not adopt that deal
    it("a stale speculative deal the chain has for another pool is dropped, not confirmed", async () => {
      const w = await world({ reconcileMs: 20 });
      const { orders, expected } = ordersFor(w.chain, { volume: 1n });
      await w.router.speculate(expected, orders);
      w.chain.match(w.chain.termsOf(expected, orders, { workerpool: 2n, scheduler: new Wallet(id("other scheduler")).address, category: null }));
      w.db.prepare("UPDATE deals SET created_at = created_at - ? WHERE deal_id = ?").run(ageMs, expected.dealId.toLowerCase());
      await until(() => getDeal(w.db, expected.dealId)?.speculative !== true, "the stale deal settled");
      expect(getDeal(w.db, expected.dealId)).to.equal(null);
    });
  });

  describe("store: upsertDeal with speculative: true never overwrites", () => {
    const base = (o: Partial<NewDeal> = {}): NewDeal => ({
      dealId: dealIdOf(id("request"), 0n),
      app: 1n,
      dataset: 0n,
      workerpool: POOL,
      requester: new Wallet(id("requester")).address,
      beneficiary: new Wallet(id("requester")).address,
      scheduler: new Wallet(id("scheduler key")).address,
      callback: null,
      category: 0n,
      trust: 1,
      params: "chain",
      volume: 2,
      startTime: 1_700_000_000,
      timeref: TIMEREF,
      appPrice: 5n,
      datasetPrice: 0n,
      workerpoolPrice: 7n,
      workerStakeRatio: 30,
      schedulerRewardRatio: 10,
      ...o,
    });
    const guess = base({ speculative: true, params: "guess", volume: 16, trust: 3, startTime: 1_700_000_100, workerStakeRatio: 0, schedulerRewardRatio: 0 });
    const cases: [string, NewDeal, NewDeal, "unchanged" | "updated", Partial<NewDeal>][] = [
      ["a guess over a confirmed deal", base(), guess, "unchanged", { params: "chain", volume: 2, speculative: false }],
      ["a guess over a guess", guess, base({ speculative: true, params: "other guess" }), "unchanged", { params: "guess", volume: 16, speculative: true }],
      ["the chain over a guess (confirmation)", guess, base(), "updated", { params: "chain", volume: 2, speculative: false, workerStakeRatio: 30 }],
    ];
    for (const [name, first, second, result, after] of cases) {
      it(`${name}: ${result}`, () => {
        const db = openDatabase(":memory:");
        try {
          expect(upsertDeal(db, first, 1_000)).to.equal("inserted");
          const before = getDeal(db, first.dealId)!;
          expect(upsertDeal(db, second, 2_000)).to.equal(result);
          const row = getDeal(db, first.dealId)!;
          expect(row).to.include(after);
          if (result === "unchanged") expect(row).to.deep.equal(before);
          else expect(row).to.include({ createdAt: 1_000, updatedAt: 2_000 });
        } finally {
          db.close();
        }
      });
    }
  });
});
