/**
 * JobRouter: drives every task of the pool's deals from dispatch to finalize. All its state lives in the scheduler's
 * SQLite store (scheduler/store), so a restart resumes every task where it was; only chain steps in flight are kept in
 * memory. Each tick asks the pure policy (core/policy.ts) what to do with each active task, then carries it out:
 * - dispatch: pick workers (core/replicas.ts: top half by score + a random tail, never twice the same worker for a
 *   task), sign their Authorization, record the replica, send `assign`;
 * - commits arrive (WorkerManager `commit`): the Contribution signature is checked, the commit recorded;
 * - quorum reached: the commits are relayed on chain in one `contributeBatch` (core/consensus.ts relayPlan: the
 *   divergent ones too, so they are punished), the winners are asked to reveal, the other replicas cancelled;
 * - reveals arrive: the digest must match the commit and the files must hash to it (ResultStore); then one
 *   `revealBatch` and `finalize` with the result's URL (and the callback data for a callback deal);
 * - a winner does not reveal: the reveals in go on chain before the deadline, and after it `finalize` seizes the silent
 *   winner; with no reveal at all, `reopen`, and the policy dispatches again.
 * Chain events (watcher) are applied to the store idempotently. Lost workers' replicas are reassigned by the policy; a
 * worker that comes back with pending commits is asked again to reveal. Chain failures are retried on the next tick.
 */
import { getAddress, keccak256, solidityPacked, toUtf8Bytes } from "ethers";
import { recoverSigner } from "../sdk/crypto";
import type { Logger } from "pino";
import { hashMessage, taskId as taskIdOf } from "../sdk/eip712";
import type { ChainClient, AppEntry, CategoryView, DatasetEntry, DealView, FinalizeResult, TxResult } from "./chain/client";
import { ChainError } from "./chain/errors";
import type { HubEvent } from "./chain/events";
import { initialBucket, nextActions, policyOptions, type PolicyOptions } from "./core/policy";
import { relayPlan, type Consensus } from "./core/consensus";
import { chooseReplicas, type Candidate } from "./core/replicas";
import { seededRng, type Rng } from "./core/random";
import type { TokenBucket } from "./core/bucket";
import { percentile } from "./core/latency";
import { REVEAL_DEADLINE_RATIO } from "./core/deadlines";
import { decodeResultFiles, type ResultStore } from "./api/result-store";
import type { TaskView } from "./api/tasks";
import type { ExpectedDeal, OrderSet } from "./matcher";
import type { CommitFrame, FailedFrame, Pending, RevealedFrame, WorkerManager } from "./session/manager";
import type { Db } from "./store/db";
import { applyChainEvent, TASK_CHAIN_EVENTS } from "./store/chain-events";
import { getDeal, type Deal } from "./store/deals";
import { addTaskEvent, lastTaskEventAt } from "./store/events";
import {
  cancelReplica,
  failReplica,
  getReplica,
  insertReplica,
  listReplicas,
  markReplaced,
  markRevealRequested,
  markWorkerLost,
  recentCommitLatencies,
  recordCommit,
  recordReveal,
  restoreCommitted,
  runningCounts,
  type Replica,
} from "./store/replicas";
import { dropSpeculativeTasks, taskDetail, taskView } from "./store/state";
import { advanceTask, getTask, listTasks, recordDealMatched, setTaskStatus, tasksNeedingAction, updateTask, type Task } from "./store/tasks";
import { closeAllSessions, getWorker, scoreOf, workerConnected, workerDisconnected } from "./store/workers";

export interface JobRouterOptions {
  /** the pool whose deals this scheduler runs */
  workerpool: bigint;
  policy: Partial<PolicyOptions>;
  tickMs: number;
  /** base URL of this scheduler's result store, put in `finalize`'s `results` */
  publicUrl: string;
  /** replicas one worker runs at once */
  workerCapacity: number;
  /** how often active tasks are checked against the chain (and at start) */
  reconcileMs: number;
  /** relay: the scheduler relays workers' signed commits in one batch; direct: each worker sends `contribute` itself */
  commitMode: "relay" | "direct";
}

/** Tasks of one deal started before its matchOrders is mined, at most (the rest start once it is). */
const SPECULATIVE_TASKS_MAX = 16;
/**
 * The gas limit of a finalize sent right behind its revealBatch (unestimated): twice what the last finalize of its kind
 * used, 50k more (a cold slot or two), 40k per contribution on chain (each is settled), and for a callback 150k more
 * (the Hub must be able to hand the consumer 100k gas, whatever it used last time).
 */
function pipelinedFinalizeGas(lastUsed: bigint, contributors: number, callback: boolean): bigint {
  return 2n * lastUsed + 50_000n + 40_000n * BigInt(contributors) + (callback ? 150_000n : 0n);
}

/**
 * The gas limit of an unestimated batch (contributeBatch, revealBatch): 1.5 times what the last batch of its kind with
 * as many items used, and 30k more. A batch of n items does the same writes every time (a contributeBatch may find
 * its task initialized already, which costs less).
 */
function unestimatedBatchGas(lastUsed: bigint): bigint {
  return (3n * lastUsed) / 2n + 30_000n;
}

/** A finalize under way: its revealBatch (when reveals were pending) and its finalize, sent or still to send. */
interface FinalizeSteps {
  digest: string;
  results: Uint8Array;
  /** "0x" when the deal has no callback */
  callbackData: string;
  callback: boolean;
  reveals: number;
  revealing?: Promise<TxResult>;
  /** sent right behind the reveals; absent: sent (estimated) once they are mined */
  finalizing?: Promise<FinalizeResult>;
  /** the revealBatch went out unestimated, with a gas limit learnt from the last one of its size */
  unestimated?: boolean;
}

/** secp256k1's n / 2: a larger s is refused by OpenZeppelin's ECDSA, so by the Hub. */
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

/**
 * The address that signed `digest`, or null when `signature` is not one the Hub accepts (OpenZeppelin's ECDSA): 65
 * bytes, v 27 or 28, a low s. ethers also takes a compact 64-byte signature or v 0/1, which the Hub would refuse.
 */
function signerOf(digest: string, signature: string): string | null {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) return null;
  const v = parseInt(signature.slice(130, 132), 16);
  if ((v !== 27 && v !== 28) || BigInt("0x" + signature.slice(66, 130)) > HALF_N) return null;
  try {
    return recoverSigner(digest, signature);
  } catch {
    return null;
  }
}

/** `read(id)` once per id, kept (registry entries and categories never change); a failed read is asked again next time. */
function readOnce<T>(cache: Map<string, Promise<T>>, id: bigint, read: (id: bigint) => Promise<T>): Promise<T> {
  const key = String(id);
  let entry = cache.get(key);
  if (!entry) {
    entry = read(id);
    cache.set(key, entry);
    entry.catch(() => cache.delete(key));
  }
  return entry;
}
/** A speculative deal the chain still does not have after this long is dropped (its matchOrders did not land). */
const SPECULATION_TTL_MS = 60_000;

/** What a DealMatched says beyond the Deal struct. */
interface DealSeen {
  params: string;
  beneficiary: string;
  requestOrderHash: string;
  blockNumber: number | null;
  txHash: string | null;
}

export const defaultJobRouterOptions: Omit<JobRouterOptions, "workerpool" | "publicUrl"> = {
  policy: { mode: "fixed", extra: 1, deadlineMarginMs: 5_000 },
  tickMs: 100,
  workerCapacity: 2,
  reconcileMs: 10_000,
  commitMode: "relay",
};

export class JobRouter {
  private bucket: TokenBucket;
  /**
   * p95 of the recent commit latencies (the adaptive policy's hedging delay), read again after a commit changed them
   * (undefined) and, while there is none yet (null), at every tick
   */
  private p95CommitMs: number | null | undefined;
  private timer?: NodeJS.Timeout;
  private ticking = false;
  /** an event arrived during a tick: run another one as soon as it ends */
  private tickAgain = false;
  private readonly rng: Rng;
  /** tasks with a chain step in flight: the next tick leaves them alone */
  private readonly inflight = new Set<string>();
  private readonly apps = new Map<string, Promise<AppEntry | null>>();
  private readonly datasets = new Map<string, Promise<DatasetEntry | null>>();
  private readonly categories = new Map<string, Promise<CategoryView | null>>();
  /** the gas the last finalize used, with a callback or without (see `finalize`) */
  private readonly finalizeGasUsed = new Map<boolean, bigint>();
  /** the gas the last revealBatch of n reveals used, by n (see `finalize`) */
  private readonly revealGasUsed = new Map<number, bigint>();
  /** the gas the last contributeBatch of n contributions used, by n (see `relay`) */
  private readonly contributeGasUsed = new Map<number, bigint>();
  /** speculative deals whose DealMatched came in, the chain's terms not recorded yet: their tasks may relay */
  private readonly confirmed = new Set<string>();
  /**
   * speculative deals whose matchOrders this process has queued (`speculate`) and not seen the end of: a transaction
   * this key sends from now on takes a later nonce, so the chain runs it after the match (see `relay`)
   */
  private readonly matching = new Set<string>();
  /** speculative deals whose drop waits until no task of theirs has a relay that may still land (see `abandon`) */
  private readonly dropLater = new Map<string, string>();
  private lastReconcile = 0;
  private chainClock = { readAt: -Infinity, timestamp: 0 };

  constructor(
    private readonly opts: JobRouterOptions,
    private readonly m: { db: Db; chain: ChainClient; manager: WorkerManager; results: ResultStore; log: Logger },
  ) {
    this.bucket = initialBucket(policyOptions(opts.policy));
    this.rng = seededRng(`${opts.workerpool}:${Date.now()}`);
    closeAllSessions(m.db); // sessions do not survive a restart; workers log in again
    m.manager.on("commit", (w, f) => this.guard("commit", () => this.onCommit(w, f)));
    m.manager.on("revealed", (w, f) => this.guard("revealed", () => this.onRevealed(w, f)));
    m.manager.on("failed", (w, f) => this.guard("failed", () => this.onFailed(w, f)));
    m.manager.on("lost", (w) => this.guard("lost", () => this.onLost(w)));
    m.manager.on("joined", (w, p) => this.guard("joined", () => this.onJoined(w, p)));
  }

  start(): void {
    this.timer = setInterval(() => {
      if (!this.ticking) this.runTick();
    }, this.opts.tickMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** What `GET /tasks/:id` shows: the task, its replicas (no signatures) and its timeline with ms offsets. */
  view(taskId: string): TaskView | null {
    const d = taskDetail(this.m.db, taskId.toLowerCase());
    if (!d) return null;
    return {
      task: {
        ...d.task,
        quorum: Math.max(1, d.deal.trust),
        commits: d.replicas.filter((r) => r.resultHash !== null).length,
        app: String(d.deal.app),
        dataset: String(d.deal.dataset),
        params: d.deal.params,
        callback: d.deal.callback,
      },
      replicas: d.replicas.map((r) => ({ ...r, revealed: r.times.revealed !== null })),
      timeline: d.timeline.map((e) => ({ ms: e.offsetMs, event: e.kind, replicaId: e.replicaId, worker: e.worker, ...e.detail })),
    };
  }

  /**
   * Chain events (idempotent): a deal matched for our pool creates its tasks (or confirms the speculative deal our
   * matchOrders recorded, see `speculate`); task events move the store.
   */
  async onChainEvent(event: HubEvent): Promise<void> {
    if (event.name === "DealMatched") {
      const e = event.args;
      if (e.workerpool !== this.opts.workerpool) return;
      const known = getDeal(this.m.db, e.dealId);
      if (known && !known.speculative) return;
      const seen = { params: e.params, beneficiary: e.beneficiary, requestOrderHash: e.requestOrderHash, blockNumber: event.blockNumber, txHash: event.transactionHash };
      // a speculative deal is confirmed at once, so that its tasks can relay; the chain's terms follow
      if (known) this.confirm(e.dealId, Number(e.volume), event.transactionHash);
      // params and beneficiary come with the event; the rest is the Deal struct (one read, no log search)
      const t = await this.m.chain.viewDeal(e.dealId);
      if (!t) throw new Error(`deal ${e.dealId} not found`);
      this.recordDeal(t, seen);
      return;
    }
    this.applyTaskEvent(event);
  }

  /**
   * A speculative deal is on chain (its DealMatched; or one of its tasks' contributeBatch mined, `volume` null): its tasks
   * past the chain's volume are dropped (once the volume is known), each task is told in its timeline, and the next
   * tick may relay. The store keeps it `speculative` until `recordDeal` has the chain's terms (start time, the pool's
   * ratios, the full volume), so a failed read of those is retried with the event.
   */
  private confirm(dealId: string, volume: number | null, txHash: string | null): void {
    this.matching.delete(dealId);
    this.dropLater.delete(dealId);
    const known = getDeal(this.m.db, dealId);
    if (!known?.speculative) return;
    if (volume !== null) this.dropSpeculative(dealId, "the deal has fewer tasks", volume);
    if (this.confirmed.has(dealId)) return;
    this.confirmed.add(dealId);
    for (let index = 0; index < Math.min(known.volume, volume ?? known.volume); index++) {
      const taskId = taskIdOf(dealId, index).toLowerCase();
      addTaskEvent(this.m.db, { taskId, kind: "deal.confirmed", detail: { tx: txHash }, dedupeKey: `deal.confirmed:${taskId}` });
    }
    this.m.log.info({ dealId, txHash }, "deal confirmed");
    this.kick();
  }

  /** Records a deal as the chain has it (a speculative record of it is confirmed first). */
  private recordDeal(t: DealView, e: DealSeen): void {
    const known = getDeal(this.m.db, t.dealId);
    if (known?.speculative) this.confirm(t.dealId, t.volume, e.txHash);
    const recorded = recordDealMatched(this.m.db, {
      dealId: t.dealId,
      app: t.app,
      dataset: t.dataset,
      workerpool: this.opts.workerpool,
      requester: t.requester,
      beneficiary: e.beneficiary,
      scheduler: t.scheduler,
      callback: t.callback,
      category: known?.category ?? null, // not kept on chain (the deal keeps its timeref)
      trust: t.trust,
      params: e.params,
      volume: t.volume,
      startTime: t.startTime,
      timeref: t.timeref,
      appPrice: t.appPrice,
      datasetPrice: t.datasetPrice,
      workerpoolPrice: t.workerpoolPrice,
      workerStakeRatio: t.workerStakeRatio,
      schedulerRewardRatio: t.schedulerRewardRatio,
      requestOrderHash: e.requestOrderHash,
      blockNumber: e.blockNumber,
      txHash: e.txHash,
    });
    const speculated = known?.speculative === true;
    this.confirmed.delete(t.dealId); // the store has it now
    this.m.log.info({ dealId: t.dealId, tasks: recorded.tasksCreated, trust: t.trust, ...(speculated ? { speculated } : {}) }, "deal received");
  }

  /**
   * Our matchOrders of `orders` passed its gas estimate (the Clerk accepts it) and is on its way: its deal is recorded
   * now from the orders, as `speculative` (id known in advance, start time estimated, up to SPECULATIVE_TASKS_MAX
   * tasks), so its tasks are dispatched and run while the transaction is mined. Nothing goes on chain for them until the
   * DealMatched confirms the deal (onChainEvent); `abandon` drops it if the match fails. Not in direct mode, where the
   * workers' own `contribute` needs the deal on chain. Returns whether it recorded the deal (only then may the caller
   * `abandon` it).
   */
  async speculate(expected: ExpectedDeal, orders: OrderSet): Promise<boolean> {
    if (this.opts.commitMode !== "relay" || expected.volume < 1n) return false;
    const { app, dataset, workerpool, request } = orders;
    const category = await this.category(request.category);
    if (!category || getDeal(this.m.db, expected.dealId)) return false; // the receipt may have come first
    const volume = Number(expected.volume < BigInt(SPECULATIVE_TASKS_MAX) ? expected.volume : BigInt(SPECULATIVE_TASKS_MAX));
    recordDealMatched(this.m.db, {
      dealId: expected.dealId,
      app: request.app,
      dataset: request.dataset,
      workerpool: workerpool.workerpool,
      requester: request.requester,
      beneficiary: request.beneficiary,
      scheduler: this.m.chain.address,
      callback: request.callback,
      category: request.category,
      trust: Number(request.trust),
      params: request.params,
      volume,
      startTime: Math.floor(Date.now() / 1000),
      timeref: category.timeref,
      appPrice: app.appprice,
      datasetPrice: request.dataset === 0n ? 0n : dataset.datasetprice,
      workerpoolPrice: workerpool.workerpoolprice,
      workerStakeRatio: 0, // known once confirmed (the pool's ratios are read by the Clerk)
      schedulerRewardRatio: 0,
      requestOrderHash: expected.requestHash,
      speculative: true,
    });
    this.matching.add(expected.dealId);
    this.m.log.info({ dealId: expected.dealId, tasks: volume }, "deal started while its match is mined");
    this.kick({ now: true }); // its dispatch goes first: the match's own signing and broadcast can wait a moment
    return true;
  }

  /**
   * Our matchOrders did not create `dealId` (it failed, or mined another deal): its speculative tasks stop and go. A
   * deal whose DealMatched came in meanwhile is the chain's and stays. While a task of the deal is `committing` (its
   * contributeBatch sent behind the match, see `relay`, and not known to have failed), the drop waits: should the
   * batch land after all, the deal is on chain and those commits are honest workers' stake. The batch's end decides
   * (mined: the deal is confirmed; reverted: the drop goes ahead); one whose fate is unknown keeps the deal until the
   * chain shows it (reconciliation).
   */
  abandon(dealId: string, reason: string): void {
    this.matching.delete(dealId);
    if (this.confirmed.has(dealId)) return;
    // a task past `committing` has its commits on chain already (a batch mined before a restart forgot `confirmed`)
    if (listTasks(this.m.db, { dealId, status: ["committing", "revealing", "finalizing"] }).length > 0) {
      if (!this.dropLater.has(dealId)) this.m.log.warn({ dealId, reason }, "speculative deal kept: a relay of its task may still land");
      this.dropLater.set(dealId, reason);
      return;
    }
    this.dropLater.delete(dealId);
    if (this.dropSpeculative(dealId, reason)) this.m.log.warn({ dealId, reason }, "speculative deal dropped");
  }

  /**
   * This process's matchOrders of `dealId` ended without a known DealMatched (failed, or no receipt in time): its
   * nonce may be taken again, so nothing more of the deal goes behind it (see `relay`). The deal itself stays, unless
   * `abandon` drops it.
   */
  matchEnded(dealId: string): void {
    this.matching.delete(dealId);
  }

  private dropSpeculative(dealId: string, reason: string, fromIndex = 0): boolean {
    const live = dropSpeculativeTasks(this.m.db, dealId, fromIndex);
    for (const r of live ?? []) this.m.manager.send(r.worker, { type: "cancel", replicaId: r.replicaId, taskId: r.taskId, reason });
    return live !== null;
  }

  private category(id: bigint): Promise<CategoryView | null> {
    return readOnce(this.categories, id, (i) => this.m.chain.category(i));
  }

  /**
   * A task event of the chain moves the store (synchronously; other events are ignored). Not for a task of a deal
   * still speculative: the deal id names the request, not the pool, so until our DealMatched (which comes before any
   * event of our tasks) that id may be another pool's deal of the same request, whose events are not ours.
   */
  private applyTaskEvent(event: HubEvent): void {
    if (!(TASK_CHAIN_EVENTS as readonly string[]).includes(event.name)) return;
    const task = "taskId" in event.args ? getTask(this.m.db, event.args.taskId.toLowerCase()) : null;
    if (task && this.unconfirmed(task.dealId)) return;
    applyChainEvent(this.m.db, event as Parameters<typeof applyChainEvent>[1]);
  }

  /** The deal is speculative and no DealMatched of ours confirmed it yet. */
  private unconfirmed(dealId: string): boolean {
    return getDeal(this.m.db, dealId)?.speculative === true && !this.confirmed.has(dealId);
  }

  /**
   * The events of a receipt of our own transaction, applied at once instead of at the watcher's next poll (the watcher
   * sees them again later: every handler is idempotent, chain events are deduplicated by transaction and log index).
   */
  async onReceipt(events: readonly HubEvent[]): Promise<void> {
    // task events are applied synchronously, all of them before anyone reading the store (a long poll) runs again
    for (const e of events) {
      if (e.name === "DealMatched") await this.onChainEvent(e);
      else this.applyTaskEvent(e);
      if (e.name === "ConsensusReached") this.consensusClock(e.args.taskId, e.args.revealDeadline);
    }
    this.kick();
  }

  /**
   * A ConsensusReached in a receipt just read dates its block: the Hub set the reveal deadline REVEAL_DEADLINE_RATIO
   * timerefs after it. That is the chain's clock as of that block (behind the latest one by the confirmations waited
   * for, never ahead of it), so the step right after the batch does not wait for a read of the latest block
   * (`chainTime`).
   */
  private consensusClock(taskId: string, revealDeadline: bigint): void {
    const task = getTask(this.m.db, taskId.toLowerCase());
    const deal = task && getDeal(this.m.db, task.dealId);
    if (!deal) return;
    const timestamp = Number(revealDeadline) - REVEAL_DEADLINE_RATIO * deal.timeref;
    if (timestamp >= this.chainClock.timestamp) this.chainClock = { readAt: Date.now(), timestamp };
  }

  /**
   * Runs a tick soon (after an event that may unblock a task) rather than at the next interval: on the next turn of
   * the event loop, or with `now` before any other pending work; during a tick, which may have looked at the task
   * before the event, another tick follows at once.
   */
  private kick({ now = false } = {}): void {
    if (this.ticking) this.tickAgain = true;
    else if (now) this.runTick();
    else setImmediate(() => this.ticking || this.runTick());
  }

  private runTick(): void {
    this.ticking = true;
    this.tickAgain = false;
    this.guard("tick", () =>
      this.tick().finally(() => {
        this.ticking = false;
        if (this.tickAgain) this.kick();
      }),
    );
  }

  // ------------------------------------------------------------------------------------------------ tick

  private async tick(): Promise<void> {
    const now = Date.now();
    if (now - this.lastReconcile >= this.opts.reconcileMs) {
      this.lastReconcile = now;
      await this.reconcile();
    }
    this.p95CommitMs ??= percentile(recentCommitLatencies(this.m.db), 0.95);
    const stats = { p95CommitMs: this.p95CommitMs };
    for (const active of tasksNeedingAction(this.m.db)) {
      const task = active.task;
      if (this.inflight.has(task.taskId)) continue;
      const speculative = active.speculative && !this.confirmed.has(task.dealId);
      switch (speculative ? null : task.status) {
        case "revealing":
          await this.onRevealing(task, now);
          continue;
        case "finalizing":
          this.finalize(task, { resumed: true }); // a finalize interrupted by a restart (or a failed step) is resumed
          continue;
        case "committing":
          if (task.consensusHash) {
            await this.resumeRelay(task);
            continue;
          }
      }
      const view = taskView(this.m.db, task.taskId);
      if (!view) continue; // a speculative task dropped during this tick
      const decision = nextActions(view, now, stats, this.bucket, this.opts.policy);
      this.bucket = decision.bucket;
      for (const action of decision.actions) {
        // a speculative deal's tasks run, but are not given up before the deal is there (nor relayed, but see `relay`)
        if (speculative && action.type === "giveUp") continue;
        switch (action.type) {
          case "dispatch":
            await this.dispatch(task, action.count);
            break;
          case "reassign":
            await this.dispatch(task, 1, action.replicaId);
            break;
          case "cancel":
            this.cancel(task, action.replicaIds, action.reason);
            break;
          case "reveal":
            if (decision.consensus.winner) this.relay(task, decision.consensus, action.replicaIds, speculative);
            break;
          case "giveUp":
            setTaskStatus(this.m.db, task.taskId, "failed", { reason: action.reason });
            this.m.log.warn({ taskId: task.taskId, reason: action.reason }, "task given up");
            break;
        }
      }
    }
  }

  /**
   * The chain is the truth: a task it completed or refunded while the scheduler was not looking is closed here too; a
   * speculative deal older than SPECULATION_TTL_MS is confirmed if the chain has it (the watcher missed nothing: this is
   * a restart's leftover), dropped otherwise.
   */
  private async reconcile(): Promise<void> {
    const stale = new Set<string>();
    for (const { task, speculative } of tasksNeedingAction(this.m.db)) {
      if (speculative) {
        const deal = getDeal(this.m.db, task.dealId);
        if (deal && deal.createdAt < Date.now() - SPECULATION_TTL_MS) stale.add(deal.dealId);
        continue;
      }
      if (this.inflight.has(task.taskId)) continue;
      const onChain = await this.m.chain.viewTask(task.taskId);
      if (onChain.status === "COMPLETED") setTaskStatus(this.m.db, task.taskId, "completed", { reason: "reconciled with the chain" });
      else if (onChain.status === "FAILED") setTaskStatus(this.m.db, task.taskId, "claimed", { reason: "reconciled with the chain" });
    }
    for (const dealId of stale) {
      const terms = await this.m.chain.dealTerms(dealId);
      if (terms && terms.workerpool === this.opts.workerpool && getAddress(terms.scheduler) === getAddress(this.m.chain.address)) {
        const seen = { params: terms.params, beneficiary: terms.beneficiary, requestOrderHash: terms.requestOrderHash, blockNumber: terms.matchedBlock, txHash: null };
        this.recordDeal(terms, seen);
      } else {
        // not on chain, or another pool matched the request first (the deal id names the request, not the pool)
        this.abandon(dealId, terms ? `deal ${dealId} was matched by another pool` : `its matchOrders did not land within ${SPECULATION_TTL_MS / 1000} s`);
      }
    }
  }

  private app(id: bigint): Promise<AppEntry | null> {
    return readOnce(this.apps, id, (i) => this.m.chain.app(i));
  }

  private dataset(id: bigint): Promise<DatasetEntry | null> {
    return readOnce(this.datasets, id, (i) => this.m.chain.dataset(i));
  }

  private async dispatch(task: Task, count: number, replaces?: string): Promise<void> {
    const deal = getDeal(this.m.db, task.dealId);
    if (!deal) return; // a speculative deal dropped during this tick
    const app = await this.app(deal.app);
    if (!app) throw new Error(`app ${deal.app} is not registered`);
    const dataset = deal.dataset ? await this.dataset(deal.dataset) : null;
    const holding = new Set(listReplicas(this.m.db, task.taskId).map((r) => r.worker));
    const running = runningCounts(this.m.db);
    const candidates: Candidate[] = this.m.manager.workers().map((w) => {
      const record = getWorker(this.m.db, w.address);
      return {
        worker: w.address,
        score: record ? scoreOf(record) : 0.5,
        running: running.get(w.address) ?? 0,
        capacity: this.opts.workerCapacity,
        connected: true,
      };
    });
    for (const worker of chooseReplicas(candidates, count, { exclude: holding, rng: this.rng })) {
      const replicaId = `${task.taskId.slice(2, 10)}-${worker.slice(2, 8).toLowerCase()}-${Date.now().toString(36)}`;
      const authorization = await this.m.chain.signAuthorization(worker, task.taskId);
      if (!getTask(this.m.db, task.taskId)) return; // a speculative task dropped meanwhile
      insertReplica(this.m.db, { replicaId, taskId: task.taskId, worker, authorization });
      if (replaces) markReplaced(this.m.db, replaces, replicaId);
      if (task.status === "pending") setTaskStatus(this.m.db, task.taskId, "dispatched");
      const sent = this.m.manager.send(worker, {
        type: "assign",
        replicaId,
        dealId: task.dealId,
        index: task.index,
        taskId: task.taskId,
        app: { id: String(deal.app), runtime: app.runtime === "sql" ? "sql" : "wasi", uri: app.uri, checksum: app.checksum },
        dataset: dataset ? { id: String(deal.dataset), name: dataset.name, uri: dataset.uri, checksum: dataset.checksum } : null,
        params: deal.params,
        callback: deal.callback !== null,
        timeoutMs: Math.max(1_000, deal.timeref * 1000 * 5),
        authorization,
        commitMode: this.opts.commitMode,
      });
      if (!sent) markWorkerLost(this.m.db, worker);
    }
  }

  private cancel(task: Task, replicaIds: string[], reason: string): void {
    for (const id of replicaIds) {
      const r = getReplica(this.m.db, id);
      if (r && cancelReplica(this.m.db, id, reason)) {
        this.m.manager.send(r.worker, { type: "cancel", replicaId: id, taskId: task.taskId, reason });
      }
    }
  }

  /**
   * Quorum: relay the commits (winners and divergent, relayPlan order) in one batch and, meanwhile, ask the winners to
   * reveal to us: their reveals travel while the batch is mined, so revealBatch can follow the batch's receipt at once.
   * Nothing leaks by revealing this early: the reveals stay here until their commits are on chain (revealBatch needs
   * the Hub in REVEALING), and once the quorum is recorded the Hub takes no further contribution for the task.
   *
   * Once a contributeBatch of as many commits went through, the next ones skip their estimate and its round trip
   * (`unestimatedBatchGas`): the commits' signatures were checked on arrival. A task whose relay failed before (its
   * timeline's `relay.failed`) relays estimated from then on: whatever refused it (a worker's stake locked elsewhere, a
   * deadline) is then refused by the estimate, which costs no gas, rather than by the chain at every try.
   *
   * A task of a `speculative` deal (its DealMatched not in yet) relays only that way, unestimated, and only while this
   * process has its matchOrders queued (`matching`): the batch then takes a later nonce than the match, so the chain
   * runs it after the match (an estimate, which would not see the deal yet, is not needed), and it reverts if the
   * match failed (no such deal, or another pool's: `_onlyScheduler`). Otherwise it waits for the DealMatched. Until
   * such a batch has ended, the task stays `committing`, which keeps `abandon` from dropping the deal; a batch whose
   * end is unknown (no receipt in time) leaves it so, and the chain decides (the watcher, reconciliation).
   */
  private relay(task: Task, consensus: Consensus, winners: string[], speculative = false): void {
    const plan = relayPlan(consensus);
    const replicas = listReplicas(this.m.db, task.taskId);
    const byWorker = new Map(replicas.filter((r) => r.resultHash).map((r) => [r.worker.toLowerCase(), r]));
    const relayed = plan.relay.map((c) => byWorker.get(c.worker.toLowerCase())!);
    const items = relayed.map((r) => ({ dealId: task.dealId, index: BigInt(task.index), worker: r.worker, resultHash: r.resultHash!, resultSeal: r.resultSeal!, signature: r.contributionSignature! }));
    const failedBefore = lastTaskEventAt(this.m.db, task.taskId, "relay.failed") !== null;
    const lastUsed = failedBefore ? undefined : this.contributeGasUsed.get(items.length);
    if (speculative && (lastUsed === undefined || !this.matching.has(task.dealId))) return; // waits for the DealMatched
    const gasLimit = lastUsed === undefined ? undefined : unestimatedBatchGas(lastUsed);
    updateTask(this.m.db, task.taskId, { consensusHash: consensus.winner!.resultHash });
    setTaskStatus(this.m.db, task.taskId, "committing");
    const detail = { resultHash: consensus.winner!.resultHash, relayed: items.length, divergent: consensus.divergent.length };
    addTaskEvent(this.m.db, { taskId: task.taskId, kind: "consensus", detail: { ...detail, ...(speculative ? { behindMatch: true } : {}) } });
    if (this.opts.commitMode === "direct") {
      // the workers' own `contribute` transactions reach the quorum on chain: resumeRelay waits for REVEALING
      this.kick();
      return;
    }
    let mined = false;
    this.chainStep(task, "contributeBatch", async () => {
      const tx = await this.m.chain.contributeBatch(items, { gasLimit });
      mined = true;
      this.contributeGasUsed.set(items.length, tx.gasUsed);
      // it passed the Hub's check that this scheduler runs the deal: the deal is on chain, whether or not the match's
      // receipt was read yet (the volume comes with the DealMatched)
      if (speculative) this.confirm(task.dealId, null, tx.hash);
      addTaskEvent(this.m.db, { taskId: task.taskId, kind: "contributed", detail: { tx: tx.hash, gasUsed: String(tx.gasUsed), ...(gasLimit === undefined ? {} : { unestimated: true }) } });
      advanceTask(this.m.db, task.taskId, "revealing", ["committing"]); // forward only: the watcher may have been first
      await this.onReceipt(tx.events); // records the relayed winners; the tick it starts finalizes if they revealed
    }, (e) => {
      if (mined) return; // the commits are on chain: the task goes on from where it is (the tick, the watcher)
      if (gasLimit !== undefined) this.contributeGasUsed.delete(items.length);
      if (!getTask(this.m.db, task.taskId)) return; // dropped meanwhile (a smaller volume on chain)
      const reverted = e instanceof ChainError && e.code === "REVERTED";
      // the timeline is public: the error's code and the Hub's error name, not the node's text
      const failure = { code: e instanceof ChainError ? e.code : "UNKNOWN", ...(e instanceof ChainError && e.revert ? { revert: e.revert.name } : {}) };
      const ended = !speculative || reverted;
      if (ended) {
        // not on chain: forget the winner, the next tick decides again (with an estimate, see above)
        updateTask(this.m.db, task.taskId, { consensusHash: null });
        setTaskStatus(this.m.db, task.taskId, "dispatched", { reason: "relay failed" });
      } else {
        // behind a match: the batch may still land (after the match); the task stays `committing` and its deal is kept
        this.m.log.warn({ taskId: task.taskId, ...failure }, "relay behind the match has no known end: left to the chain");
      }
      addTaskEvent(this.m.db, { taskId: task.taskId, kind: "relay.failed", detail: { ...failure, ...(gasLimit === undefined ? {} : { unestimated: true }) } });
      const dropLater = speculative && ended ? this.dropLater.get(task.dealId) : undefined;
      if (dropLater !== undefined) this.abandon(task.dealId, dropLater);
    });
    this.requestReveals(task.taskId, winners);
  }

  /** In `committing` after a restart (or in direct mode): the chain tells whether the quorum is on chain. */
  private async resumeRelay(task: Task): Promise<void> {
    const onChain = await this.m.chain.viewTask(task.taskId);
    if (onChain.status === "REVEALING") {
      setTaskStatus(this.m.db, task.taskId, "revealing");
      const winners = listReplicas(this.m.db, task.taskId).filter((r) => r.resultHash === task.consensusHash && r.status !== "failed");
      this.requestReveals(task.taskId, winners.map((r) => r.replicaId));
    } else if (this.opts.commitMode === "direct" && Date.now() < (getDeal(this.m.db, task.dealId)!.contributionDeadline - 1) * 1000) {
      // direct commits: the workers' transactions may still be on their way
    } else {
      updateTask(this.m.db, task.taskId, { consensusHash: null });
      setTaskStatus(this.m.db, task.taskId, "dispatched", { reason: "relay did not land" });
    }
  }

  private requestReveals(taskId: string, replicaIds: string[]): void {
    for (const id of replicaIds) {
      const r = getReplica(this.m.db, id);
      if (!r || r.times.revealed !== null) continue;
      markRevealRequested(this.m.db, id);
      this.m.manager.send(r.worker, { type: "reveal", replicaId: id, taskId });
    }
  }

  /**
   * Revealing: the Hub finalizes only when every winner on chain revealed, or after the reveal deadline with at least
   * one reveal on chain (the silent winners then lose their stake); with none by then, the task is reopened. The
   * winners are the replicas of the consensus hash whose contribution the chain recorded (the watcher's
   * ContributionCommitted), a failed one included: the chain still waits for it. Reveals go on chain before the
   * deadline (revealBatch refuses them after it): all together once every winner revealed; the ones in so far as soon
   * as a winner is known never to reveal (its reveal failed), or once the deadline is less than a timeref away.
   */
  private async onRevealing(task: Task, now: number): Promise<void> {
    const winners = this.roundWinners(task, listReplicas(this.m.db, task.taskId));
    this.requestReveals(task.taskId, winners.filter((r) => r.times.revealRequested === null && r.status !== "lost" && r.status !== "failed").map((r) => r.replicaId));
    const revealed = winners.filter((r) => r.times.revealed !== null);
    const all = winners.length > 0 && revealed.length === winners.length;
    if (task.revealDeadline === null) {
      if (all) this.startFinalize(task);
      return;
    }
    const chainNow = await this.chainTime(now);
    if (chainNow < task.revealDeadline) {
      if (all) return this.startFinalize(task);
      const pending = revealed.filter((r) => r.revealRelayedAt === null);
      const timeref = getDeal(this.m.db, task.dealId)?.timeref ?? 0;
      const silentForSure = winners.some((r) => r.status === "failed" && r.times.revealed === null);
      if (pending.length > 0 && (silentForSure || chainNow >= task.revealDeadline - timeref)) this.relayReveals(task, pending);
      return;
    }
    // the deadline passed: no reveal goes on chain any more
    if (winners.some((r) => r.revealRelayedAt !== null)) {
      setTaskStatus(this.m.db, task.taskId, "finalizing", { reason: "reveal deadline passed: silent winners are seized" });
      this.finalize(task, { revealsClosed: true });
    } else if (revealed.length > 0) {
      // reveals came in but none reached the chain in time: a reopen would seize their stake; the claim at the final
      // deadline refunds the requester and unlocks every stake instead
      setTaskStatus(this.m.db, task.taskId, "failed", { reason: "reveal deadline passed with no reveal on chain (left to the claim)" });
      this.m.log.warn({ taskId: task.taskId }, "reveal deadline passed with the reveals received but none on chain: left to the claim");
    } else {
      this.chainStep(task, "reopen", async () => {
        const tx = await this.m.chain.reopen(task.taskId);
        addTaskEvent(this.m.db, { taskId: task.taskId, kind: "reopened", detail: { tx: tx.hash } });
      });
    }
  }

  /**
   * The task's winners on chain in this round: the replicas of the consensus hash whose contribution was recorded after
   * the last reopen (a reopen rejects the last round's winners; the new round relays after it).
   */
  private roundWinners(task: Task, replicas: Replica[]): Replica[] {
    const reopenedAt = lastTaskEventAt(this.m.db, task.taskId, "chain.TaskReopened") ?? -Infinity;
    return replicas.filter((r) => r.resultHash === task.consensusHash && r.relayedAt !== null && r.relayedAt > reopenedAt && r.failureCode !== "REJECTED");
  }

  private startFinalize(task: Task): void {
    setTaskStatus(this.m.db, task.taskId, "finalizing");
    this.finalize(task);
  }

  /** The reveals in so far, on chain before the deadline (some winner may never reveal); the task stays `revealing`. */
  private relayReveals(task: Task, pending: Replica[]): void {
    const reveals = pending.map((r) => ({ taskId: task.taskId, worker: r.worker, resultDigest: r.resultDigest!, signature: r.revealSignature! }));
    this.chainStep(task, "revealBatch", async () => {
      const rtx = await this.m.chain.revealBatch(reveals);
      addTaskEvent(this.m.db, { taskId: task.taskId, kind: "revealed", detail: { tx: rtx.hash, reveals: reveals.length, partial: true } });
      await this.onReceipt(rtx.events);
    });
  }

  /** The chain's clock (its latest block's timestamp, s), read at most once a second for all tasks. */
  private async chainTime(now: number): Promise<number> {
    if (now - this.chainClock.readAt >= 1_000) this.chainClock = { readAt: now, timestamp: (await this.m.chain.latestBlock()).timestamp };
    return this.chainClock.timestamp;
  }

  /**
   * revealBatch of the reveals not yet on chain, then finalize. `resumed`: the task was left in `finalizing` (restart,
   * failed step), so the chain is asked first whether it is already completed; on the live path the task was just
   * seen in REVEALING and only this scheduler can finalize it. Once a finalize of the same kind (with a callback or
   * not) went through, the next ones go out right behind their revealBatch, unestimated, with a gas limit from that
   * one's gas used (`pipelinedFinalizeGas`): on a chain with blocks both land in the same block. Then the revealBatch
   * itself also skips its estimate (and the fee read: the sender reuses recent fees) once one of as many reveals went
   * through (`unestimatedBatchGas`): its commits are mined, the reveals checked on arrival. A step that fails (say, out
   * of gas) forgets both figures, and the resumed step finalizes the estimated way.
   */
  private finalize(task: Task, { resumed = false, revealsClosed = false } = {}): void {
    const deal = getDeal(this.m.db, task.dealId)!;
    const replicas = listReplicas(this.m.db, task.taskId);
    const revealed = this.roundWinners(task, replicas).filter(
      (r) => r.times.revealed !== null && r.resultDigest && r.revealSignature && (!revealsClosed || r.revealRelayedAt !== null),
    );
    if (revealed.length === 0) {
      setTaskStatus(this.m.db, task.taskId, "revealing", { reason: "no reveal to finalize with" });
      return;
    }
    const pendingReveals = revealsClosed ? [] : revealed.filter((r) => r.revealRelayedAt === null);
    const steps = this.finalizeSteps(task, deal, revealed, pendingReveals.length);
    const lastUsed = resumed ? undefined : this.finalizeGasUsed.get(steps.callback);
    const contributors = replicas.filter((r) => r.relayedAt !== null).length;
    const gasLimit = lastUsed === undefined ? undefined : pipelinedFinalizeGas(lastUsed, contributors, steps.callback);
    const revealUsed = gasLimit === undefined ? undefined : this.revealGasUsed.get(pendingReveals.length);
    const revealGasLimit = revealUsed === undefined ? undefined : unestimatedBatchGas(revealUsed);
    steps.unestimated = revealGasLimit !== undefined;
    this.chainStep(task, "finalize", async () => {
      if (resumed && (await this.m.chain.viewTask(task.taskId)).status === "COMPLETED") {
        setTaskStatus(this.m.db, task.taskId, "completed");
        return;
      }
      if (resumed && pendingReveals.length && task.revealDeadline !== null && (await this.chainTime(Date.now())) >= task.revealDeadline) {
        // too late to reveal: onRevealing finalizes with the reveals already on chain, or leaves the task to the claim
        setTaskStatus(this.m.db, task.taskId, "revealing", { reason: "reveal deadline passed before the reveals went on chain" });
        return;
      }
      if (pendingReveals.length) {
        const reveals = pendingReveals.map((r) => ({ taskId: task.taskId, worker: r.worker, resultDigest: r.resultDigest!, signature: r.revealSignature! }));
        if (gasLimit !== undefined) {
          ({ reveal: steps.revealing, finalize: steps.finalizing } = this.m.chain.revealAndFinalize(reveals, { taskId: task.taskId, results: steps.results, resultsCallback: steps.callbackData, gasLimit, revealGasLimit }));
          steps.finalizing.catch(() => undefined); // awaited in settleFinalize, unless the reveals fail first
        } else {
          steps.revealing = this.m.chain.revealBatch(reveals);
        }
      }
      await this.settleFinalize(task, steps);
    }, () => {
      this.finalizeGasUsed.delete(steps.callback);
      this.revealGasUsed.delete(steps.reveals);
    });
  }

  /** What a finalize of `task` sends, from its revealed replicas (`revealed[0]` gives the digest and callback data). */
  private finalizeSteps(task: Task, deal: Deal, revealed: Replica[], reveals: number): FinalizeSteps {
    const digest = revealed[0].resultDigest!;
    const callbackData = deal.callback ? revealed[0].callbackData ?? "0x" : "0x";
    return { digest, results: toUtf8Bytes(`${this.opts.publicUrl}/results/${digest}`), callbackData, callback: callbackData !== "0x", reveals };
  }

  /**
   * Waits for a finalize's transactions (the finalize is sent, estimated, once the reveals are mined when it was not
   * sent behind them) and records each: each step's own record first, then its receipt's events, so whoever reads the
   * task once it shows the step (a long poll woken by the first of these events) sees all of it.
   */
  private async settleFinalize(task: Task, steps: FinalizeSteps): Promise<void> {
    if (steps.revealing) {
      const rtx = await steps.revealing;
      this.revealGasUsed.set(steps.reveals, rtx.gasUsed);
      addTaskEvent(this.m.db, { taskId: task.taskId, kind: "revealed", detail: { tx: rtx.hash, reveals: steps.reveals, ...(steps.unestimated ? { unestimated: true } : {}) } });
      await this.onReceipt(rtx.events);
    }
    const ftx = await (steps.finalizing ?? this.m.chain.finalize(task.taskId, steps.results, steps.callbackData));
    this.finalizeGasUsed.set(steps.callback, ftx.gasUsed);
    updateTask(this.m.db, task.taskId, { resultDigest: steps.digest, callbackData: steps.callback ? steps.callbackData : null });
    addTaskEvent(this.m.db, { taskId: task.taskId, kind: "finalized", detail: { tx: ftx.hash, digest: steps.digest, callbackFailed: ftx.callbackFailed, ...(steps.finalizing ? { pipelined: true } : {}) } });
    setTaskStatus(this.m.db, task.taskId, "completed");
    await this.onReceipt(ftx.events);
    this.m.log.info({ taskId: task.taskId, digest: steps.digest, tx: ftx.hash }, "task finalized");
  }

  /** Runs one chain step for a task, never two at once; a failure is logged and the task retried next tick. */
  private chainStep(task: Task, what: string, step: () => Promise<void>, onError?: (e: Error) => void): void {
    this.inflight.add(task.taskId);
    step()
      .then(() => this.kick()) // the task may have a next step now (a failed one waits for the next interval)
      .catch((e: Error) => {
        this.m.log.error({ taskId: task.taskId, err: e.message, step: what }, "chain step failed; retried next tick");
        try {
          onError?.(e);
        } catch (e2) {
          this.m.log.error({ taskId: task.taskId, err: (e2 as Error).message, step: what }, "recovery after a failed chain step failed");
        }
      })
      .finally(() => this.inflight.delete(task.taskId));
  }

  // ------------------------------------------------------------------------------------------------ worker events

  private replicaOf(worker: string, replicaId: string, taskId: string): { task: Task; replica: Replica } | undefined {
    const replica = getReplica(this.m.db, replicaId);
    const task = getTask(this.m.db, taskId.toLowerCase());
    if (!task || !replica || replica.worker !== worker || replica.taskId !== task.taskId) {
      this.m.log.warn({ worker, replicaId, taskId }, "frame for an unknown replica ignored");
      return undefined;
    }
    return { task, replica };
  }

  private onCommit(worker: string, f: CommitFrame): void {
    const found = this.replicaOf(worker, f.replicaId, f.taskId);
    if (!found) return;
    const digest = hashMessage(this.m.chain.domain, "Contribution", { taskId: found.task.taskId, resultHash: f.resultHash, resultSeal: f.resultSeal });
    const signer = signerOf(digest, f.signature);
    if (signer !== worker) {
      failReplica(this.m.db, f.replicaId, { code: "BAD_SIGNATURE", message: `the Contribution is signed by ${signer ?? "nobody (not a signature)"}` });
      return;
    }
    recordCommit(this.m.db, f.replicaId, { resultHash: f.resultHash, resultSeal: f.resultSeal, signature: f.signature });
    this.p95CommitMs = undefined;
    this.kick();
  }

  private async onRevealed(worker: string, f: RevealedFrame): Promise<void> {
    const found = this.replicaOf(worker, f.replicaId, f.taskId);
    if (!found) return;
    const { task, replica } = found;
    if (replica.times.revealed !== null || replica.times.revealRequested === null) return;
    const expected = keccak256(solidityPacked(["bytes32", "bytes32"], [task.taskId, f.resultDigest])).toLowerCase();
    if (expected !== replica.resultHash) {
      failReplica(this.m.db, f.replicaId, { code: "BAD_REVEAL", message: "the revealed digest does not match the commit" });
      return;
    }
    // the Hub refuses a whole revealBatch for one bad signature: it never gets there
    const signer = signerOf(hashMessage(this.m.chain.domain, "Reveal", { taskId: task.taskId, resultDigest: f.resultDigest }), f.signature);
    if (signer !== worker) {
      failReplica(this.m.db, f.replicaId, { code: "BAD_SIGNATURE", message: `the Reveal is signed by ${signer ?? "nobody (not a signature)"}` });
      return;
    }
    const deal = getDeal(this.m.db, task.dealId)!;
    try {
      await this.m.results.put(f.resultDigest, decodeResultFiles(f.files), { callbackData: deal.callback ? f.callbackData : null });
    } catch (e) {
      failReplica(this.m.db, f.replicaId, { code: "BAD_RESULT", message: (e as Error).message });
      return;
    }
    recordReveal(this.m.db, f.replicaId, { resultDigest: f.resultDigest, signature: f.signature, callbackData: f.callbackData });
    this.kick();
  }

  private onFailed(worker: string, f: FailedFrame): void {
    if (this.replicaOf(worker, f.replicaId, f.taskId)) failReplica(this.m.db, f.replicaId, { code: f.code, message: f.message });
  }

  private onLost(worker: string): void {
    markWorkerLost(this.m.db, worker);
    workerDisconnected(this.m.db, worker, { lost: true });
  }

  /** A worker (re)joined: record it; ask again for the reveals it owes, restore commits it made while away. */
  private onJoined(worker: string, pending: Pending): void {
    workerConnected(this.m.db, worker, { capacity: this.opts.workerCapacity });
    for (const p of pending) {
      const r = getReplica(this.m.db, p.replicaId);
      if (!r && !getTask(this.m.db, p.taskId.toLowerCase())) {
        // a task this scheduler forgot (a speculative deal dropped while the worker was away): it stops announcing it
        this.m.manager.send(worker, { type: "cancel", replicaId: p.replicaId, taskId: p.taskId, reason: "unknown task: its deal was never matched" });
        continue;
      }
      if (!r || r.worker !== worker) continue;
      if (r.resultHash === null && p.resultSeal && p.signature) {
        // committed while the socket was down: the same checks as a live commit
        this.onCommit(worker, { type: "commit", replicaId: p.replicaId, taskId: p.taskId, resultHash: p.resultHash, resultSeal: p.resultSeal, signature: p.signature });
        continue;
      }
      if (r.status === "lost" && r.resultHash === p.resultHash.toLowerCase()) {
        // its commit counts again; if it is a winner on chain, onRevealing asks for the reveal
        restoreCommitted(this.m.db, r.replicaId, p.resultHash);
        continue;
      }
      if (r.times.revealRequested !== null && r.times.revealed === null) {
        this.m.manager.send(worker, { type: "reveal", replicaId: r.replicaId, taskId: r.taskId });
      }
    }
  }

  private guard(what: string, fn: () => unknown): void {
    Promise.resolve()
      .then(fn)
      .catch((e: Error) => this.m.log.error({ err: e.message, what }, "router step failed"));
  }
}
