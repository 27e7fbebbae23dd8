/**
 * JobRouter: drives every task of the pool's deals from dispatch to finalize. Each tick asks the pure policy
 * (core/policy.ts) what to do with a task, then carries it out:
 * - dispatch: pick workers (core/replicas.ts: top half by score + a random tail, never twice the same worker for a
 *   task), sign their Authorization, send `assign`;
 * - commits arrive (WorkerManager `commit`): the Contribution signature is checked, the commit recorded;
 * - quorum reached: the commits are relayed on chain in one `contributeBatch` (core/consensus.ts relayPlan: the
 *   divergent ones too, so they are punished), the winners are asked to reveal, the other replicas cancelled;
 * - reveals arrive: the digest must match the commit and the files must hash to it (ResultStore), then one
 *   `revealBatch` and `finalize` with the result's URL (and the callback data for a callback deal).
 * Lost workers' replicas are reassigned by the policy; a worker that comes back with pending commits is asked again to
 * reveal. Chain failures are logged and retried on the next tick.
 */
import { keccak256, solidityPacked, toUtf8Bytes, verifyTypedData } from "ethers";
import type { Logger } from "pino";
import { MESSAGE_TYPES, taskId as taskIdOf } from "../sdk/eip712";
import type { ChainClient } from "./chain/client";
import type { HubEvent } from "./chain/events";
import { initialBucket, nextActions, policyOptions, type PolicyOptions, type ReplicaView, type TaskView } from "./core/policy";
import { relayPlan } from "./core/consensus";
import { chooseReplicas, type Candidate } from "./core/replicas";
import { seededRng, type Rng } from "./core/random";
import { quorumOf, type TaskStatus } from "./core/types";
import type { TokenBucket } from "./core/bucket";
import { pushSample, percentile } from "./core/latency";
import { decodeResultFiles, type ResultStore } from "./api/result-store";
import type { CommitFrame, FailedFrame, Pending, RevealedFrame, WorkerManager } from "./session/manager";

export interface JobRouterOptions {
  /** the pool whose deals this scheduler runs */
  workerpool: bigint;
  policy: Partial<PolicyOptions>;
  tickMs: number;
  /** base URL of this scheduler's result store, put in `finalize`'s `results` */
  publicUrl: string;
  /** replicas one worker runs at once */
  workerCapacity: number;
  /** how long to wait for the last winners' reveals once one arrived */
  revealGraceMs: number;
}

export const defaultJobRouterOptions: Omit<JobRouterOptions, "workerpool" | "publicUrl"> = {
  policy: { mode: "fixed", extra: 1, deadlineMarginMs: 5_000 },
  tickMs: 100,
  workerCapacity: 2,
  revealGraceMs: 1_000,
};

interface Replica extends ReplicaView {
  resultSeal?: string;
  contribution?: string;
  relayed?: boolean;
  reveal?: { digest: string; signature: string; callbackData: string | null };
}

interface TimelineEntry {
  at: number;
  event: string;
  detail?: Record<string, unknown>;
}

export interface RouterTask extends TaskView {
  dealId: string;
  index: number;
  app: { id: string; runtime: "wasi" | "sql"; uri: string; checksum: string };
  dataset: { id: string; name: string; uri: string; checksum: string } | null;
  params: string;
  callback: string | null;
  timeoutMs: number;
  replicas: Replica[];
  resultDigest?: string;
  finalizeTx?: string;
  timeline: TimelineEntry[];
  error?: string;
  /** a chain step is in flight: the next tick does not start another */
  busy?: boolean;
  firstRevealAt?: number;
}

export class JobRouter {
  private readonly tasks = new Map<string, RouterTask>();
  private bucket: TokenBucket;
  private commitLatencies: number[] = [];
  private timer?: NodeJS.Timeout;
  private readonly rng: Rng;
  private seq = 0;
  private readonly started = Date.now();

  constructor(
    private readonly opts: JobRouterOptions,
    private readonly m: { chain: ChainClient; manager: WorkerManager; results: ResultStore; log: Logger },
  ) {
    this.bucket = initialBucket(policyOptions(opts.policy));
    this.rng = seededRng(`${opts.workerpool}:${Date.now()}`);
    m.manager.on("commit", (w, f) => this.guard("commit", () => this.onCommit(w, f)));
    m.manager.on("revealed", (w, f) => this.guard("revealed", () => this.onRevealed(w, f)));
    m.manager.on("failed", (w, f) => this.guard("failed", () => this.onFailed(w, f)));
    m.manager.on("lost", (w) => this.guard("lost", () => this.onLost(w)));
    m.manager.on("joined", (w, p) => this.guard("joined", () => this.onJoined(w, p)));
  }

  start(): void {
    this.timer = setInterval(() => this.guard("tick", () => this.tick()), this.opts.tickMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  task(taskId: string): RouterTask | undefined {
    return this.tasks.get(taskId.toLowerCase());
  }

  list(): RouterTask[] {
    return [...this.tasks.values()];
  }

  /** Chain events (idempotent): a deal matched for our pool creates its tasks. */
  async onChainEvent(event: HubEvent): Promise<void> {
    if (event.name !== "DealMatched") return;
    const e = event.args;
    if (e.workerpool !== this.opts.workerpool) return;
    const terms = await this.m.chain.dealTerms(e.dealId, { blockNumber: event.blockNumber });
    if (!terms) throw new Error(`deal ${e.dealId} not found`);
    const app = await this.m.chain.app(terms.app);
    if (!app) throw new Error(`app ${terms.app} of deal ${e.dealId} not found`);
    const dataset = terms.dataset ? await this.m.chain.dataset(terms.dataset) : null;
    for (let i = 0; i < terms.volume; i++) {
      const id = taskIdOf(e.dealId, i).toLowerCase();
      if (this.tasks.has(id)) continue;
      this.tasks.set(id, {
        taskId: id,
        dealId: e.dealId,
        index: i,
        status: "pending",
        quorum: quorumOf(terms.trust),
        contributionDeadline: terms.contributionDeadline * 1000,
        consensusHash: null,
        replicas: [],
        app: { id: String(terms.app), runtime: app.runtime === "sql" ? "sql" : "wasi", uri: app.uri, checksum: app.checksum },
        dataset: dataset ? { id: String(terms.dataset), name: dataset.name, uri: dataset.uri, checksum: dataset.checksum } : null,
        params: terms.params,
        callback: terms.callback,
        timeoutMs: Math.max(1_000, terms.timeref * 1000 * 5),
        timeline: [{ at: Date.now(), event: "matched", detail: { dealId: e.dealId, index: i } }],
      });
      this.m.log.info({ taskId: id, dealId: e.dealId, trust: terms.trust }, "task received");
    }
  }

  // ------------------------------------------------------------------------------------------------ tick

  private async tick(): Promise<void> {
    const now = Date.now();
    const stats = { p95CommitMs: percentile(this.commitLatencies, 0.95) };
    for (const task of this.tasks.values()) {
      if (task.busy || !["pending", "dispatched", "committing", "revealing"].includes(task.status)) continue;
      if (task.status === "revealing") {
        this.maybeFinalize(task, now);
        continue;
      }
      const decision = nextActions(task, now, stats, this.bucket, this.opts.policy);
      this.bucket = decision.bucket;
      for (const action of decision.actions) {
        switch (action.type) {
          case "dispatch":
            await this.dispatch(task, action.count);
            break;
          case "reassign": {
            const r = task.replicas.find((x) => x.replicaId === action.replicaId);
            if (r) r.replacedBy = "pending";
            await this.dispatch(task, 1, r);
            break;
          }
          case "cancel":
            this.cancel(task, action.replicaIds, action.reason);
            break;
          case "reveal":
            if (!task.consensusHash && decision.consensus.winner) {
              task.consensusHash = decision.consensus.winner.resultHash;
              this.relayAndReveal(task, decision.consensus, action.replicaIds);
            }
            break;
          case "giveUp":
            task.status = "failed";
            task.error = action.reason;
            this.mark(task, "gave up", { reason: action.reason });
            break;
        }
      }
    }
  }

  private async dispatch(task: RouterTask, count: number, replaces?: Replica): Promise<void> {
    const holding = new Set(task.replicas.map((r) => r.worker));
    const running = new Map<string, number>();
    for (const t of this.tasks.values()) {
      for (const r of t.replicas) if (r.status === "assigned" || r.status === "running") running.set(r.worker, (running.get(r.worker) ?? 0) + 1);
    }
    const candidates: Candidate[] = this.m.manager.workers().map((w) => ({
      worker: w.address,
      score: 0.5,
      running: running.get(w.address) ?? 0,
      capacity: this.opts.workerCapacity,
      connected: true,
    }));
    const chosen = chooseReplicas(candidates, count, { exclude: holding, rng: this.rng });
    for (const worker of chosen) {
      const replicaId = `${task.taskId.slice(2, 10)}-${++this.seq}`;
      const authorization = await this.m.chain.signAuthorization(worker, task.taskId);
      const replica: Replica = {
        replicaId,
        worker,
        status: "running",
        dispatchedAt: Date.now(),
        resultHash: null,
        committedAt: null,
        revealRequestedAt: null,
        replacedBy: null,
      };
      task.replicas.push(replica);
      if (replaces) replaces.replacedBy = replicaId;
      const sent = this.m.manager.send(worker, {
        type: "assign",
        replicaId,
        dealId: task.dealId,
        index: task.index,
        taskId: task.taskId,
        app: task.app,
        dataset: task.dataset,
        params: task.params,
        callback: task.callback !== null,
        timeoutMs: task.timeoutMs,
        authorization,
      });
      if (!sent) replica.status = "lost";
      if (task.status === "pending") task.status = "dispatched";
      this.mark(task, "dispatched", { replicaId, worker });
    }
  }

  private cancel(task: RouterTask, replicaIds: string[], reason: string): void {
    for (const r of task.replicas) {
      if (!replicaIds.includes(r.replicaId)) continue;
      if (r.status === "assigned" || r.status === "running") {
        r.status = "cancelled";
        this.m.manager.send(r.worker, { type: "cancel", replicaId: r.replicaId, taskId: task.taskId, reason });
        this.mark(task, "cancelled", { replicaId: r.replicaId, worker: r.worker, reason });
      }
    }
  }

  /** Quorum: relay the commits (winners and divergent) in one batch, then ask the winners to reveal. */
  private relayAndReveal(task: RouterTask, consensus: ReturnType<typeof nextActions>["consensus"], winners: string[]): void {
    task.status = "committing";
    task.busy = true;
    const plan = relayPlan(consensus);
    const byWorker = new Map(task.replicas.filter((r) => r.resultHash).map((r) => [r.worker.toLowerCase(), r]));
    const items = plan.relay.map((c) => {
      const r = byWorker.get(c.worker.toLowerCase())!;
      return { dealId: task.dealId, index: BigInt(task.index), worker: r.worker, resultHash: r.resultHash!, resultSeal: r.resultSeal!, signature: r.contribution! };
    });
    this.mark(task, "consensus", { resultHash: task.consensusHash, relayed: items.length, divergent: consensus.divergent?.length ?? 0 });
    void this.m.chain
      .contributeBatch(items)
      .then((tx) => {
        for (const i of items) byWorker.get(i.worker.toLowerCase())!.relayed = true;
        this.mark(task, "contributed", { tx: tx.hash, gasUsed: String(tx.gasUsed) });
        task.status = "revealing";
        for (const r of task.replicas) {
          if (!winners.includes(r.replicaId)) continue;
          r.revealRequestedAt = Date.now();
          this.m.manager.send(r.worker, { type: "reveal", replicaId: r.replicaId, taskId: task.taskId });
        }
      })
      .catch((e: Error) => {
        this.m.log.error({ taskId: task.taskId, err: e.message }, "contributeBatch failed; retried next tick");
        task.consensusHash = null;
        task.status = "dispatched";
      })
      .finally(() => (task.busy = false));
  }

  /** Once every asked winner revealed (or the grace after the first reveal passed): revealBatch + finalize. */
  private maybeFinalize(task: RouterTask, now: number): void {
    const asked = task.replicas.filter((r) => r.revealRequestedAt !== null);
    const revealed = asked.filter((r) => r.reveal);
    if (revealed.length === 0) return;
    if (revealed.length < asked.length && now - (task.firstRevealAt ?? now) < this.opts.revealGraceMs) return;
    task.busy = true;
    task.status = "finalizing";
    const digest = revealed[0].reveal!.digest;
    const items = revealed.map((r) => ({ taskId: task.taskId, worker: r.worker, resultDigest: r.reveal!.digest, signature: r.reveal!.signature }));
    const callbackData = task.callback ? revealed[0].reveal!.callbackData ?? "0x" : "0x";
    const results = toUtf8Bytes(`${this.opts.publicUrl}/results/${digest}`);
    void (async () => {
      const rtx = await this.m.chain.revealBatch(items);
      this.mark(task, "revealed", { tx: rtx.hash, reveals: items.length });
      const ftx = await this.m.chain.finalize(task.taskId, results, callbackData);
      task.resultDigest = digest;
      task.finalizeTx = ftx.hash;
      task.status = "completed";
      this.mark(task, "finalized", { tx: ftx.hash, digest, callbackFailed: ftx.callbackFailed });
      this.m.log.info({ taskId: task.taskId, digest, tx: ftx.hash }, "task finalized");
    })()
      .catch((e: Error) => {
        this.m.log.error({ taskId: task.taskId, err: e.message }, "finalize failed; retried next tick");
        task.status = "revealing";
      })
      .finally(() => (task.busy = false));
  }

  // ------------------------------------------------------------------------------------------------ worker events

  private replicaOf(worker: string, replicaId: string, taskId: string): { task: RouterTask; replica: Replica } | undefined {
    const task = this.tasks.get(taskId.toLowerCase());
    const replica = task?.replicas.find((r) => r.replicaId === replicaId);
    if (!task || !replica || replica.worker !== worker) {
      this.m.log.warn({ worker, replicaId, taskId }, "frame for an unknown replica ignored");
      return undefined;
    }
    return { task, replica };
  }

  private onCommit(worker: string, f: CommitFrame): void {
    const found = this.replicaOf(worker, f.replicaId, f.taskId);
    if (!found) return;
    const { task, replica } = found;
    if (replica.resultHash) return; // one commit per replica
    const signer = verifyTypedData(this.m.chain.domain, { Contribution: [...MESSAGE_TYPES.Contribution] }, {
      taskId: task.taskId,
      resultHash: f.resultHash,
      resultSeal: f.resultSeal,
    }, f.signature);
    if (signer !== worker) {
      replica.status = "failed";
      this.mark(task, "bad commit", { replicaId: f.replicaId, worker, reason: "signature" });
      return;
    }
    replica.resultHash = f.resultHash.toLowerCase();
    replica.resultSeal = f.resultSeal;
    replica.contribution = f.signature;
    replica.committedAt = Date.now();
    if (replica.status === "running" || replica.status === "assigned") replica.status = "committed";
    this.commitLatencies = pushSample(this.commitLatencies, replica.committedAt - replica.dispatchedAt);
    this.mark(task, "commit", { replicaId: f.replicaId, worker, resultHash: replica.resultHash });
  }

  private async onRevealed(worker: string, f: RevealedFrame): Promise<void> {
    const found = this.replicaOf(worker, f.replicaId, f.taskId);
    if (!found) return;
    const { task, replica } = found;
    if (replica.reveal || replica.revealRequestedAt === null) return;
    const expected = keccak256(solidityPacked(["bytes32", "bytes32"], [task.taskId, f.resultDigest])).toLowerCase();
    if (expected !== replica.resultHash) {
      this.mark(task, "bad reveal", { replicaId: f.replicaId, worker, reason: "digest does not match the commit" });
      return;
    }
    try {
      await this.m.results.put(f.resultDigest, decodeResultFiles(f.files), { callbackData: task.callback ? f.callbackData : null });
    } catch (e) {
      this.mark(task, "bad reveal", { replicaId: f.replicaId, worker, reason: (e as Error).message });
      return;
    }
    replica.reveal = { digest: f.resultDigest, signature: f.signature, callbackData: f.callbackData };
    replica.status = "revealed";
    task.firstRevealAt ??= Date.now();
    this.mark(task, "reveal", { replicaId: f.replicaId, worker });
  }

  private onFailed(worker: string, f: FailedFrame): void {
    const found = this.replicaOf(worker, f.replicaId, f.taskId);
    if (!found) return;
    found.replica.status = "failed";
    this.mark(found.task, "run failed", { replicaId: f.replicaId, worker, code: f.code, message: f.message });
  }

  private onLost(worker: string): void {
    for (const task of this.tasks.values()) {
      for (const r of task.replicas) {
        if (r.worker === worker && (r.status === "assigned" || r.status === "running")) {
          r.status = "lost";
          this.mark(task, "lost", { replicaId: r.replicaId, worker });
        }
      }
    }
  }

  private onJoined(worker: string, pending: Pending): void {
    for (const p of pending) {
      const task = this.tasks.get(p.taskId.toLowerCase());
      const r = task?.replicas.find((x) => x.replicaId === p.replicaId && x.worker === worker);
      if (task && r && r.revealRequestedAt !== null && !r.reveal) {
        this.m.manager.send(worker, { type: "reveal", replicaId: r.replicaId, taskId: task.taskId });
      }
    }
  }

  private mark(task: RouterTask, event: string, detail?: Record<string, unknown>): void {
    task.timeline.push({ at: Date.now(), event, detail });
  }

  private guard(what: string, fn: () => unknown): void {
    Promise.resolve()
      .then(fn)
      .catch((e: Error) => this.m.log.error({ err: e.message, what }, "router step failed"));
  }

  /** Elapsed ms since the router started (timeline offsets). */
  uptimeMs(): number {
    return Date.now() - this.started;
  }
}

export type { TaskStatus };
