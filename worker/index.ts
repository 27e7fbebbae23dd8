/**
 * The Concord worker daemon (DESIGN §4 "Worker"): one composition root that wires the session to the scheduler, the
 * sandboxed runtime, the artifact cache, the commit store and (optionally) the chain.
 *
 *   const worker = new WorkerDaemon({ schedulerUrl, signer, dataDir, ...options }, modules?);
 *   await worker.start();   // opens the store, checks the escrow (and deposits), connects; resolves before login
 *   await worker.close();   // aborts the runs, finishes the records in flight, closes the session
 *
 * Only the CLI parses flags and environment (sdk/cli/worker.ts); `modules` lets tests inject a logger, a runtime, a
 * cache, a store or a chain. Without `rpcUrl` the worker runs off chain: no escrow check, no deposit, no registry
 * cross-check (the scheduler still checks the worker's stake at login).
 *
 * Logs are pino JSON with ids as fields (replicaId, taskId, dealId); the key and unrevealed digests are never logged.
 */
import { EventEmitter } from "node:events";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { getAddress } from "ethers";
import type { BaseWallet } from "ethers";
import pino, { type Logger } from "pino";
import { ArtifactCache } from "./runtime/cache";
import { Runtime, type Limits } from "./runtime";
import { type BackoffOptions, defaultBackoffOptions } from "./core/backoff";
import { type Behaviour, isBehaviour } from "./core/behaviour";
import { WorkerError } from "./core/errors";
import { EthersWorkerChain, type WorkerChain, type WorkerDeployment } from "./chain/client";
import { CommitStore } from "./store/commits";
import { claimDataDir, type DataDirLock } from "./store/lock";
import { SessionClient, type SessionDomain } from "./session/client";
import { ReplicaHandler, type ReplicaInfo } from "./session/replicas";

export type { Behaviour } from "./core/behaviour";
export type { WorkerDeployment } from "./chain/client";

export interface WorkerOptions {
  /** the scheduler's session endpoint, ws://host:port/ws */
  schedulerUrl: string;
  /** the worker's key: logs in, signs contributions and reveals, pays the deposit's gas */
  signer: BaseWallet;
  /** the worker's state: commit records and run outputs (keep it across restarts) */
  dataDir: string;
  /** the artifact cache (apps and datasets); default `<dataDir>/cache` */
  cacheDir?: string;
  /** the cache shrinks to this many bytes after each download */
  cacheBytes: number;
  /** JSON-RPC endpoint; absent: the worker runs off chain */
  rpcUrl?: string;
  /** needed with `rpcUrl`; `hub` also pins which scheduler challenges are accepted when given alone */
  deployment?: WorkerDeployment;
  /** at start, top the free escrow balance up to this (base units) by approve + deposit; needs `rpcUrl` */
  minDeposit?: bigint;
  /** sandbox limits other than the deadline (memory, output, logs) */
  limits: Partial<Omit<Limits, "timeoutMs">>;
  /** a run's deadline is the scheduler's `timeoutMs`, capped by this */
  maxRunMs: number;
  maxConcurrentRuns: number;
  /** ping period until the scheduler's `welcome` states its own */
  heartbeatMs: number;
  /** reconnection delays */
  backoff: BackoffOptions;
  /** outputs of revealed (or abandoned) tasks are deleted after this */
  keepOutputsMs: number;
  /** commit records are deleted this long after the commit (long after any reveal deadline) */
  keepRecordsMs: number;
  pruneIntervalMs: number;
  /** pino level of the default logger */
  logLevel: string;
  /**
   * TEST HOOK, never for production: `lie` commits a wrong digest, `slow` waits `slowDelayMs` before committing,
   * `silent` never reveals (see core/behaviour.ts). Default `honest`.
   */
  behaviour: Behaviour;
  slowDelayMs: number;
}

type Required_ = "schedulerUrl" | "signer" | "dataDir";
type Optional_ = "cacheDir" | "rpcUrl" | "deployment" | "minDeposit";

export const defaultWorkerOptions: Omit<WorkerOptions, Required_ | Optional_> = {
  cacheBytes: 2 * 1024 ** 3,
  limits: {},
  maxRunMs: 3 * 60 * 60_000,
  maxConcurrentRuns: Math.max(1, availableParallelism() - 1),
  heartbeatMs: 2_000,
  backoff: defaultBackoffOptions,
  keepOutputsMs: 60 * 60_000,
  keepRecordsMs: 7 * 24 * 60 * 60_000,
  pruneIntervalMs: 10 * 60_000,
  logLevel: "info",
  behaviour: "honest",
  slowDelayMs: 5_000,
};

export type WorkerConfig = Pick<WorkerOptions, Required_> & Partial<Omit<WorkerOptions, Required_>>;

/** Everything the daemon would otherwise build itself. */
export interface WorkerModules {
  logger?: Logger;
  runtime?: Runtime;
  cache?: ArtifactCache;
  store?: CommitStore;
  chain?: WorkerChain;
  /** the backoff jitter's random source */
  random?: () => number;
}

export interface WorkerEvents {
  connected: [info: { worker: string; url: string; domain: SessionDomain; heartbeatMs: number }];
  disconnected: [reason: string];
}

export interface WorkerStatus {
  address: string;
  connected: boolean;
  replicas: ReplicaInfo[];
  pending: number;
}

export class WorkerDaemon extends EventEmitter<WorkerEvents> {
  readonly options: WorkerOptions;
  readonly address: string;
  readonly log: Logger;
  private store?: CommitStore;
  private chain?: WorkerChain;
  private session?: SessionClient;
  private replicas?: ReplicaHandler;
  private pruneTimer?: NodeJS.Timeout;
  private lock?: DataDirLock;
  private state: "new" | "starting" | "started" | "closed" = "new";

  constructor(
    config: WorkerConfig,
    private readonly modules: WorkerModules = {},
  ) {
    super();
    this.options = validate({ ...defaultWorkerOptions, ...config });
    this.address = getAddress(this.options.signer.address);
    this.log =
      modules.logger ??
      pino({
        name: "concord-worker",
        level: this.options.logLevel,
        // Defence in depth: no code path logs these, and none ever should.
        redact: { paths: ["key", "privateKey", "signer", "resultDigest", "*.resultDigest"], censor: "[redacted]" },
      });
  }

  /**
   * Opens the store, connects to the chain (when configured: escrow check and deposit) and starts the session. The
   * session logs in in the background; `connected` is emitted at each login.
   */
  async start(): Promise<void> {
    if (this.state !== "new") throw new WorkerError("INVALID_OPTIONS", `start() called on a worker that is ${this.state}`);
    this.state = "starting";
    const o = this.options;
    const log = this.log;
    try {
      this.lock = claimDataDir(o.dataDir, this.address);
      const store = (this.store = this.modules.store ?? new CommitStore(o.dataDir));
      for (const path of store.opened.corrupt) log.error({ path }, "unreadable commit record set aside; its task is blocked");
      if (store.opened.removed.length) log.info({ removed: store.opened.removed.length }, "leftovers of an interrupted run removed");
      const cache = this.modules.cache ?? new ArtifactCache({ dir: o.cacheDir ?? join(o.dataDir, "cache"), maxBytes: o.cacheBytes });
      const runtime = this.modules.runtime ?? new Runtime({ limits: o.limits });
      // sandbox threads ready before the first assignment (a failure here shows again, clearly, in the first run)
      runtime.warm().catch((e: Error) => log.warn({ err: e.message }, "could not start the idle sandbox threads"));
      this.chain = this.modules.chain ?? (o.rpcUrl ? await this.connectChain(o.rpcUrl) : undefined);
      if (this.chain) await this.checkEscrow(this.chain);
      else if (o.minDeposit !== undefined) throw new WorkerError("INVALID_OPTIONS", "minDeposit needs rpcUrl and deployment");

      const session = new SessionClient(
        { url: o.schedulerUrl, heartbeatMs: o.heartbeatMs, backoff: o.backoff, maxFrameBytes: INCOMING_FRAME_BYTES },
        {
          signer: o.signer,
          log,
          random: this.modules.random,
          handlers: {
            pending: () =>
              store.pending().map((r) => ({ replicaId: r.replicaId, taskId: r.taskId, resultHash: r.resultHash, resultSeal: r.resultSeal, signature: r.signature })),
            checkChallenge: (c) => this.checkChallenge(c),
            onTask: (frame, domain) => this.replicas?.handle(frame, domain),
            onConnected: (info) => this.emit("connected", info),
            onDisconnected: (reason) => this.emit("disconnected", reason),
          },
        },
      );
      this.session = session;
      this.replicas = new ReplicaHandler(
        { behaviour: o.behaviour, slowDelayMs: o.slowDelayMs, maxRunMs: o.maxRunMs, limits: o.limits, maxConcurrentRuns: o.maxConcurrentRuns },
        { signer: o.signer, store, cache, runtime, chain: this.chain, send: (frame) => session.send(frame), log },
      );
      if (o.behaviour !== "honest") log.warn({ behaviour: o.behaviour }, "TEST HOOK: this worker misbehaves on purpose");
      await this.prune();
      this.pruneTimer = setInterval(() => void this.prune(), o.pruneIntervalMs);
      this.pruneTimer.unref();
      log.info({ worker: this.address, scheduler: o.schedulerUrl, pending: store.pending().length, chain: this.chain?.chainId ?? null }, "worker starting");
      session.start();
      this.state = "started";
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /** Graceful stop: no new work, runs aborted, records in flight finished, session closed. Idempotent. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    clearInterval(this.pruneTimer);
    await this.replicas?.close();
    await this.session?.close();
    await this.store?.flush();
    if (!this.modules.chain) this.chain?.close();
    this.lock?.release();
    this.log.info({ worker: this.address }, "worker stopped");
  }

  get connected(): boolean {
    return this.session?.connected ?? false;
  }

  status(): WorkerStatus {
    return {
      address: this.address,
      connected: this.connected,
      replicas: this.replicas?.active() ?? [],
      pending: this.store?.pending().length ?? 0,
    };
  }

  // ----------------------------------------------------------------------------------------------------- private

  private async connectChain(rpcUrl: string): Promise<WorkerChain> {
    const deployment = this.options.deployment;
    if (!deployment) throw new WorkerError("INVALID_OPTIONS", "rpcUrl needs a deployment (at least the Hub's address)");
    return EthersWorkerChain.connect({ rpcUrl, deployment, signer: this.options.signer });
  }

  /** Logs the free escrow balance (what stakes are locked from) and tops it up to `minDeposit` when asked. */
  private async checkEscrow(chain: WorkerChain): Promise<void> {
    const min = this.options.minDeposit;
    if (min !== undefined && min > 0n) {
      const r = await chain.ensureDeposit(min).catch((e: unknown) => {
        if (e instanceof WorkerError) throw e;
        throw new WorkerError("CHAIN_ERROR", `escrow deposit failed: ${(e as Error).message}`, { cause: e });
      });
      if (r.deposited > 0n) this.log.info({ deposited: r.deposited.toString(), balance: r.balance.toString(), txs: r.txs }, "escrow deposit made");
      else this.log.info({ balance: r.balance.toString() }, "escrow balance already enough");
      return;
    }
    const { balance, frozen } = await chain.escrow(this.address).catch((e: Error) => {
      throw new WorkerError("CHAIN_ERROR", `cannot read the escrow balance: ${e.message}`, { cause: e });
    });
    if (balance === 0n) this.log.warn({ frozen: frozen.toString() }, "no free escrow balance: the scheduler may refuse this worker (deposit some)");
    else this.log.info({ balance: balance.toString(), frozen: frozen.toString() }, "escrow balance");
  }

  /** With a chain (or a deployment), log in only to a scheduler of the same chain and Hub. */
  private checkChallenge(c: { chainId: number; hub: string }): string | undefined {
    const hub = this.chain?.hub ?? this.options.deployment?.hub;
    if (this.chain && c.chainId !== this.chain.chainId) return `the scheduler is on chain ${c.chainId}, this worker on ${this.chain.chainId}`;
    if (hub && getAddress(c.hub) !== getAddress(hub)) return `the scheduler's Hub is ${c.hub}, this worker's ${hub}`;
    return undefined;
  }

  private async prune(): Promise<void> {
    if (!this.store) return;
    try {
      const { outputs, records } = await this.store.prune({
        now: Date.now(),
        keepOutputsMs: this.options.keepOutputsMs,
        keepRecordsMs: this.options.keepRecordsMs,
      });
      if (outputs.length || records.length) this.log.info({ outputs: outputs.length, records: records.length }, "old outputs and records pruned");
    } catch (e) {
      this.log.error({ err: (e as Error).message }, "pruning failed");
    }
  }
}

/** The scheduler never sends large frames (an `assign` is a few kilobytes): anything beyond this is refused. */
const INCOMING_FRAME_BYTES = 1024 * 1024;

function validate(o: WorkerOptions): WorkerOptions {
  const bad = (message: string): never => {
    throw new WorkerError("INVALID_OPTIONS", message);
  };
  let url: URL | undefined;
  try {
    url = new URL(o.schedulerUrl);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "ws:" && url.protocol !== "wss:")) bad(`schedulerUrl must be ws://host:port/ws, got ${JSON.stringify(o.schedulerUrl)}`);
  if (!o.signer || typeof o.signer.signMessage !== "function" || typeof o.signer.address !== "string") bad("signer must be an ethers wallet (Wallet or HDNodeWallet)");
  if (typeof o.dataDir !== "string" || o.dataDir === "") bad("dataDir must be a path");
  const positive = (name: keyof WorkerOptions, min = 1) => {
    const v = o[name] as unknown;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) bad(`${name} must be a number >= ${min}, got ${String(v)}`);
  };
  positive("cacheBytes", 0);
  positive("maxRunMs");
  positive("heartbeatMs", 50);
  positive("keepOutputsMs", 0);
  positive("keepRecordsMs", 0);
  positive("pruneIntervalMs");
  positive("slowDelayMs", 0);
  if (!Number.isInteger(o.maxConcurrentRuns) || o.maxConcurrentRuns < 1) bad(`maxConcurrentRuns must be an integer >= 1`);
  if (!isBehaviour(o.behaviour)) bad(`behaviour must be honest, lie, slow or silent, got ${JSON.stringify(o.behaviour)}`);
  if (o.minDeposit !== undefined && (typeof o.minDeposit !== "bigint" || o.minDeposit < 0n)) bad("minDeposit must be a bigint >= 0");
  return o;
}
