/**
 * What the worker does with the scheduler's task frames: `assign` runs a replica and commits to its result, `reveal`
 * discloses a committed result, `cancel` stops a replica at once.
 *
 * An assigned replica goes: wait for a run slot → cross-check app and dataset against the registry (when a chain is
 * configured) → fetch both through the artifact cache (refused on checksum mismatch) → run in the sandbox (seed = the
 * task id, its own AbortSignal) → digest → commitment → RECORD on disk → sign the EIP-712 Contribution → `commit`.
 * The record comes before the frame (see store/commits.ts): a commit the worker cannot reveal later, or a second,
 * different commit for the same task, would cost its stake. Any failure before the commit is reported as
 * `failed {code, message}`; a cancelled replica reports nothing.
 */
import { readFileSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { getAddress, hexlify } from "ethers";
import type { BaseWallet } from "ethers";
import type { Logger } from "pino";
import { domain as eip712Domain, signMessage, taskId as computeTaskId } from "../../sdk/eip712";
import { MAX_FRAME_BYTES, type WorkerFrame } from "../../sdk/session";
import type { ArtifactCache, Lease } from "../runtime/cache";
import { CALLBACK_FILE, type Limits, type Runtime, type RunResult } from "../runtime";
import { isRuntimeError } from "../runtime/errors";
import type { Behaviour } from "../core/behaviour";
import { committedDigest } from "../core/behaviour";
import { WorkerError, oneLine } from "../core/errors";
import { Limiter } from "../core/limiter";
import { commitTo, resultDigestOf } from "../core/result";
import type { WorkerChain } from "../chain/client";
import { OUTPUT_IN_RECORD_MAX_BYTES, OUTPUT_IN_RECORD_MAX_FILES, type CommitRecord, type CommitStore } from "../store/commits";
import type { SessionDomain, TaskFrame } from "./client";
import { framedSize, readListedFiles, readResultFiles, unrevealable } from "./files";

type AssignFrame = Extract<TaskFrame, { type: "assign" }>;
type RevealFrame = Extract<TaskFrame, { type: "reveal" }>;
type CancelFrame = Extract<TaskFrame, { type: "cancel" }>;

export interface ReplicaOptions {
  /** TEST HOOK (core/behaviour.ts): how this worker misbehaves on purpose; `honest` in production */
  behaviour: Behaviour;
  /** the `slow` behaviour's delay between the end of a run and its commit */
  slowDelayMs: number;
  /** a run's wall-clock budget is the scheduler's `timeoutMs`, capped by this */
  maxRunMs: number;
  /** sandbox limits other than the deadline (memory, output, logs) */
  limits: Partial<Omit<Limits, "timeoutMs">>;
  /** replicas running at once; others wait in arrival order */
  maxConcurrentRuns: number;
}

export interface ReplicaModules {
  signer: BaseWallet;
  store: CommitStore;
  cache: ArtifactCache;
  runtime: Runtime;
  /** absent: no registry cross-check */
  chain?: WorkerChain;
  /** sends a frame on the current session; false when it could not be sent */
  send(frame: WorkerFrame): Promise<boolean>;
  log: Logger;
}

export type ReplicaState = "queued" | "fetching" | "running" | "committing";

export interface ReplicaInfo {
  replicaId: string;
  taskId: string;
  state: ReplicaState;
}

interface Replica extends ReplicaInfo {
  controller: AbortController;
}

/** Room kept in a `revealed` frame for everything but the files. */
const FRAME_OVERHEAD = 64 * 1024;

export class ReplicaHandler {
  private readonly address: string;
  private readonly replicas = new Map<string, Replica>();
  private readonly jobs = new Set<Promise<void>>();
  private readonly limiter: Limiter;
  private closed = false;

  constructor(
    private readonly opts: ReplicaOptions,
    private readonly modules: ReplicaModules,
  ) {
    this.address = getAddress(modules.signer.address);
    this.limiter = new Limiter(opts.maxConcurrentRuns);
  }

  /** Handles one task frame in the background; never throws (every failure is logged and/or reported). */
  handle(frame: TaskFrame, domain: SessionDomain): void {
    if (this.closed) return;
    switch (frame.type) {
      case "assign":
        return this.track(this.assign(frame, domain));
      case "reveal":
        return this.track(this.reveal(frame));
      case "cancel":
        return this.track(this.cancel(frame));
    }
  }

  /** The replicas in progress (not yet committed or failed). */
  active(): ReplicaInfo[] {
    return [...this.replicas.values()].map(({ replicaId, taskId, state }) => ({ replicaId, taskId, state }));
  }

  /** Aborts every run and waits for every handler to finish (records in flight are completed). */
  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.replicas.values()) r.controller.abort(new WorkerError("CANCELLED", "the worker is shutting down"));
    while (this.jobs.size > 0) await Promise.allSettled([...this.jobs]);
  }

  // ------------------------------------------------------------------------------------------------------ assign

  private async assign(frame: AssignFrame, domain: SessionDomain): Promise<void> {
    const { replicaId, taskId } = frame;
    const log = this.modules.log.child({ replicaId, taskId, dealId: frame.dealId, index: frame.index });
    if (this.replicas.has(replicaId)) return void log.warn("assign of a replica already in progress ignored");
    if (computeTaskId(frame.dealId, frame.index).toLowerCase() !== taskId.toLowerCase()) {
      return this.fail(frame, log, new WorkerError("INVALID_ASSIGNMENT", `taskId is not keccak256(dealId, ${frame.index})`));
    }
    if ([...this.replicas.values()].some((r) => r.taskId.toLowerCase() === taskId.toLowerCase())) {
      return this.fail(frame, log, new WorkerError("DUPLICATE_TASK", "another replica of this task is already running here"));
    }
    const existing = this.modules.store.get(taskId);
    if (existing) return this.commitAgain(frame, existing, domain, log);

    const replica: Replica = { replicaId, taskId, state: "queued", controller: new AbortController() };
    this.replicas.set(replicaId, replica);
    const signal = replica.controller.signal;
    const outputDir = this.modules.store.outputDirFor(taskId);
    log.info({ app: frame.app.id, runtime: frame.app.runtime, dataset: frame.dataset?.id ?? null, callback: frame.callback }, "replica assigned");
    try {
      if (this.modules.store.isBlocked(taskId)) {
        throw new WorkerError("STORE_CORRUPT", "the commit record of this task was unreadable: not committing again");
      }
      this.modules.store.reserve(taskId); // the record's file is made while the task runs: the commit only fills it
      const release = await this.limiter.acquire(signal);
      let run: RunResult;
      try {
        run = await this.run(frame, replica, outputDir, log);
      } finally {
        release();
      }
      const refused = unrevealable(run.files, MAX_FRAME_BYTES - FRAME_OVERHEAD);
      if (refused) throw refused; // never committed: it could never be revealed
      // the record must never name files a crash can lose: a small output goes into the record itself; a larger one
      // goes to disk for good while the commit is signed
      const small = run.outputBytes <= OUTPUT_IN_RECORD_MAX_BYTES && run.files.length <= OUTPUT_IN_RECORD_MAX_FILES;
      const inRecord = small ? readListedFiles(outputDir, run.files.map((f) => f.path)) : undefined;
      const outputDurable = inRecord ? Promise.resolve() : this.modules.store.syncOutput(outputDir, run.files);
      outputDurable.catch(() => undefined); // awaited below, unless the commit stops before
      const digest = committedDigest(resultDigestOf(run, frame.callback), this.opts.behaviour);
      replica.state = "committing";
      if (this.opts.behaviour === "slow") {
        log.info({ delayMs: this.opts.slowDelayMs }, "slow behaviour (test hook): delaying the commit");
        await sleep(this.opts.slowDelayMs, signal);
      }
      signal.throwIfAborted();
      if (frame.commitMode === "direct" && !this.modules.chain) {
        throw new WorkerError("NO_CHAIN", "the pool asks for direct commits: start the worker with --rpc");
      }
      const c = commitTo(this.address, taskId, digest);
      const signature = await signMessage(this.modules.signer, eip712Domain(domain.chainId, domain.hub), "Contribution", {
        taskId,
        resultHash: c.resultHash,
        resultSeal: c.resultSeal,
      });
      signal.throwIfAborted();
      await outputDurable;
      // Durable BEFORE the frame leaves: slashing protection and restart safety.
      const record = await this.modules.store.record({
        taskId,
        replicaId,
        dealId: frame.dealId,
        index: frame.index,
        resultHash: c.resultHash,
        resultSeal: c.resultSeal,
        resultDigest: c.resultDigest,
        signature,
        chainId: domain.chainId,
        hub: domain.hub,
        callback: frame.callback,
        outputDir,
        ...(inRecord ? { files: inRecord } : {}),
        committedAt: Date.now(),
      });
      if (signal.aborted) return void log.info("cancelled after its commit was recorded: commit not sent");
      if (frame.commitMode === "direct") {
        // The pool asks its workers to commit on chain themselves: the recorded commit goes out as our own transaction.
        const tx = await this.modules.chain!.contribute({
          dealId: frame.dealId,
          index: frame.index,
          resultHash: record.resultHash,
          resultSeal: record.resultSeal,
          authorization: frame.authorization,
        });
        log.info({ tx }, "contributed on chain");
      }
      const sent = await this.modules.send(commitFrame(record, replicaId));
      if (sent) log.info({ resultHash: record.resultHash }, "committed");
      else log.warn("commit recorded but not sent (disconnected): announced as pending at the next login");
    } catch (e) {
      const cancelled = signal.aborted;
      if (!cancelled) await this.fail(frame, log, e);
      if (!this.modules.store.get(taskId)) {
        this.modules.store.release(taskId);
        await rm(outputDir, { recursive: true, force: true }).catch(() => undefined);
      }
      this.replicas.delete(replicaId);
      if (cancelled) log.info({ reason: reasonOf(signal) }, "replica cancelled");
    } finally {
      this.replicas.delete(replicaId);
    }
  }

  /** Fetches (and checks) the app and dataset, then runs the replica in the sandbox. */
  private async run(frame: AssignFrame, replica: Replica, outputDir: string, log: Logger): Promise<RunResult> {
    const signal = replica.controller.signal;
    replica.state = "fetching";
    await this.checkRegistry(frame);
    const leases: Lease[] = [];
    try {
      let app: Uint8Array | undefined;
      if (frame.app.runtime === "wasi") {
        const lease = await this.modules.cache.acquire(frame.app.uri, frame.app.checksum, { signal });
        leases.push(lease);
        app = readFileSync(lease.path); // a local module: cheaper than four thread-pool round trips on a busy machine
      }
      let dataset: { path: string; name: string } | undefined;
      if (frame.dataset) {
        const lease = await this.modules.cache.acquire(frame.dataset.uri, frame.dataset.checksum, { signal });
        leases.push(lease);
        dataset = { path: lease.path, name: frame.dataset.name };
      }
      signal.throwIfAborted();
      rmSync(outputDir, { recursive: true, force: true }); // normally absent: one syscall
      replica.state = "running";
      const timeoutMs = Math.min(frame.timeoutMs, this.opts.maxRunMs);
      log.info({ timeoutMs }, "run started");
      const result = await this.modules.runtime.run({
        runtime: frame.app.runtime,
        app,
        dataset,
        params: frame.params,
        seed: frame.taskId,
        outputDir,
        limits: { ...this.opts.limits, timeoutMs },
        signal,
      });
      log.info({ durationMs: Math.round(result.durationMs), outputBytes: result.outputBytes, files: result.files.length }, "run finished");
      return result;
    } finally {
      for (const lease of leases) lease.release();
    }
  }

  /**
   * The registry is the source of truth for what an app or dataset is: a scheduler that sends another checksum,
   * runtime or dataset name than the registered ones is refused. Registered assets never change, so the chain client
   * reads each id once.
   */
  private async checkRegistry(frame: AssignFrame): Promise<void> {
    const chain = this.modules.chain;
    if (!chain) return;
    const read = async <T>(what: string, p: Promise<T>): Promise<T> => {
      try {
        return await p;
      } catch (e) {
        throw new WorkerError("CHAIN_ERROR", `cannot read ${what} from the registry: ${(e as Error).message}`, { cause: e });
      }
    };
    const app = await read(`app ${frame.app.id}`, chain.app(assetId(frame.app.id, "app")));
    if (app) {
      if (app.runtime !== frame.app.runtime) {
        throw new WorkerError("REGISTRY_MISMATCH", `app ${frame.app.id}: runtime ${frame.app.runtime} sent, ${app.runtime} registered`);
      }
      if (app.checksum !== frame.app.checksum.toLowerCase()) {
        throw new WorkerError("REGISTRY_MISMATCH", `app ${frame.app.id}: checksum ${frame.app.checksum} sent, ${app.checksum} registered`);
      }
    }
    if (frame.dataset) {
      const dataset = await read(`dataset ${frame.dataset.id}`, chain.dataset(assetId(frame.dataset.id, "dataset")));
      if (dataset) {
        if (dataset.checksum !== frame.dataset.checksum.toLowerCase()) {
          throw new WorkerError(
            "REGISTRY_MISMATCH",
            `dataset ${frame.dataset.id}: checksum ${frame.dataset.checksum} sent, ${dataset.checksum} registered`,
          );
        }
        if (dataset.name !== frame.dataset.name) {
          throw new WorkerError("REGISTRY_MISMATCH", `dataset ${frame.dataset.id}: name ${JSON.stringify(frame.dataset.name)} sent, ${JSON.stringify(dataset.name)} registered`);
        }
      }
    }
  }

  /** A task committed before (e.g. re-assigned after a reconnection): the same commit again, never a new one. */
  private async commitAgain(frame: AssignFrame, record: CommitRecord, domain: SessionDomain, log: Logger): Promise<void> {
    if (record.chainId !== domain.chainId || getAddress(record.hub) !== getAddress(domain.hub)) {
      return this.fail(frame, log, new WorkerError("CONFLICTING_COMMIT", "this task was committed for another chain or Hub"));
    }
    if (record.replicaId !== frame.replicaId || record.abandonedAt !== undefined) {
      await this.modules.store.update(record.taskId, { replicaId: frame.replicaId, abandonedAt: undefined });
    }
    const sent = await this.modules.send(commitFrame(record, frame.replicaId));
    log.info({ sent, resultHash: record.resultHash }, "task already committed: the same commit sent again");
  }

  // ------------------------------------------------------------------------------------------------------ reveal

  private async reveal(frame: RevealFrame): Promise<void> {
    const { replicaId, taskId } = frame;
    const log = this.modules.log.child({ replicaId, taskId });
    const record = this.modules.store.get(taskId);
    if (!record) return this.fail(frame, log, new WorkerError("UNKNOWN_TASK", "reveal asked, but this worker holds no commit for the task"));
    if (this.opts.behaviour === "silent") return void log.info("silent behaviour (test hook): reveal withheld");
    try {
      const files = record.files ?? (await readResultFiles(record.outputDir));
      if (framedSize(files) > MAX_FRAME_BYTES - FRAME_OVERHEAD) {
        throw new WorkerError("RESULT_TOO_LARGE", `the result files take ${framedSize(files)} bytes in a frame, more than the session allows`);
      }
      let callbackData: string | null = null;
      if (record.callback) {
        const file = files.find((f) => f.path === CALLBACK_FILE);
        if (!file) throw new WorkerError("OUTPUT_GONE", `${CALLBACK_FILE} is missing from the output`);
        callbackData = hexlify(Buffer.from(file.base64, "base64"));
      }
      const signature = await signMessage(this.modules.signer, eip712Domain(record.chainId, record.hub), "Reveal", {
        taskId: record.taskId,
        resultDigest: record.resultDigest,
      });
      const sent = await this.modules.send({
        type: "revealed",
        replicaId,
        taskId: record.taskId,
        resultDigest: record.resultDigest,
        signature,
        files,
        callbackData,
      });
      if (!sent) return void log.warn("reveal not sent (disconnected): still pending");
      await this.modules.store.markRevealed(taskId);
      log.info({ files: files.length }, "revealed");
    } catch (e) {
      await this.fail(frame, log, e);
    }
  }

  // ------------------------------------------------------------------------------------------------------ cancel

  private async cancel(frame: CancelFrame): Promise<void> {
    const log = this.modules.log.child({ replicaId: frame.replicaId, taskId: frame.taskId });
    const replica =
      this.replicas.get(frame.replicaId) ??
      [...this.replicas.values()].find((r) => r.taskId.toLowerCase() === frame.taskId.toLowerCase());
    if (replica) {
      replica.controller.abort(new WorkerError("CANCELLED", `cancelled by the scheduler: ${frame.reason}`));
      log.info({ reason: frame.reason, state: replica.state }, "cancel: replica aborted");
    }
    const record = this.modules.store.get(frame.taskId);
    if (record && record.revealedAt === undefined && record.abandonedAt === undefined) {
      // Still a valid commit (kept for slashing protection), but no longer announced as pending.
      await this.modules.store.update(record.taskId, { abandonedAt: Date.now() });
      log.info({ reason: frame.reason }, "cancel: committed replica abandoned");
    } else if (!replica) {
      log.debug({ reason: frame.reason }, "cancel of an unknown replica ignored");
    }
  }

  // ----------------------------------------------------------------------------------------------------- helpers

  /** Reports a failure to the scheduler (`failed {code, message}`) and logs it. */
  private async fail(frame: TaskFrame, log: Logger, error: unknown): Promise<void> {
    const { code, message } = describeFailure(error);
    log.warn({ code, err: message }, `replica failed: ${frame.type}`);
    await this.modules.send({ type: "failed", replicaId: frame.replicaId, taskId: frame.taskId, code, message: oneLine(message, 2000) });
  }

  private track(job: Promise<void>): void {
    const guarded = job.catch((e: Error) => this.modules.log.error({ err: e.message }, "task frame handler failed"));
    this.jobs.add(guarded);
    void guarded.finally(() => this.jobs.delete(guarded));
  }
}

function commitFrame(record: CommitRecord, replicaId: string): WorkerFrame {
  return {
    type: "commit",
    replicaId,
    taskId: record.taskId,
    resultHash: record.resultHash,
    resultSeal: record.resultSeal,
    signature: record.signature,
  };
}

/** A registry id as the scheduler sends it: a decimal uint256. */
function assetId(id: string, what: string): bigint {
  if (!/^\d{1,78}$/.test(id)) throw new WorkerError("INVALID_ASSIGNMENT", `${what} id ${JSON.stringify(id)} is not a decimal number`);
  return BigInt(id);
}

export function describeFailure(error: unknown): { code: string; message: string } {
  if (error instanceof WorkerError || isRuntimeError(error)) {
    return { code: error.code, message: error.message };
  }
  return { code: "INTERNAL", message: `internal error: ${(error as Error)?.message ?? String(error)}` };
}

function reasonOf(signal: AbortSignal): string {
  const reason = signal.reason as unknown;
  return reason instanceof Error ? reason.message : String(reason);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
