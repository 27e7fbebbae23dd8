/**
 * The scheduler daemon's composition root (DESIGN §4): one HTTP server on loopback carrying the order book
 * (`/orders`), the results (`/results/:digest`), the tasks (`/tasks/:id`) and the workers' WebSocket (`/ws`); the
 * chain client and watcher; the matcher; the WorkerManager and the JobRouter. Built by `Scheduler.init(options)`;
 * only the CLI (`concord scheduler start`) reads flags and environment. `close()` stops everything in order.
 */
import { mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { formatEther, type BaseWallet, type JsonRpcProvider } from "ethers";
import { fastWallet } from "../sdk/crypto";
import pino, { type Logger } from "pino";
import { defaultDeployOptions, type Deployment } from "../deploy/lib";
import { buildWorkerpoolOrder, randomSalt } from "../sdk/orders";
import { rpcProvider } from "../sdk/rpc";
import { signOrder, type Signed, type WorkerpoolOrder } from "../sdk/eip712";
import { createApi, ordersRouter, resultsRouter, ResultStore, tasksRouter } from "./api";
import { EthersOrderChecks } from "./api/checks";
import { chainClientOptionsFrom, EthersChainClient } from "./chain/client";
import { SqliteCursorStore } from "./chain/cursor";
import { ChainWatcher } from "./chain/watcher";
import { relevantTo } from "./chain/events";
import { Matcher, MatchRefusedError, type MatchRefusal, type MatcherChain } from "./matcher";
import { ChainError, type DecodedRevert } from "./chain/errors";
import { defaultJobRouterOptions, JobRouter, type JobRouterOptions } from "./router";
import { defaultWorkerManagerOptions, WorkerManager } from "./session/manager";
import { openDatabase } from "./store/state";
import { onTaskEvent } from "./store/events";
import { getTask } from "./store/tasks";
import type { Db } from "./store/db";

export interface SchedulerOptions {
  rpcUrl: string;
  deployment: Deployment;
  /** the pool this scheduler serves (its key must be the pool's scheduler, with consent given) */
  workerpool: bigint;
  host: string;
  /** 0: any free port */
  port: number;
  dataDir: string;
  /** the workerpool order the scheduler signs and offers (needs the key to own the pool) */
  offer: { price: bigint; volume: bigint; category: bigint; trust: bigint } | null;
  /** free escrow a worker needs to be admitted: at least one contribution's stake (the deployment's minWorkerStake) */
  minWorkerBalance: bigint;
  heartbeatMs: number;
  chainPollMs: number;
  matchIntervalMs: number;
  router: Partial<JobRouterOptions>;
  logLevel: string;
}

export const defaultSchedulerOptions: Omit<SchedulerOptions, "rpcUrl" | "deployment" | "workerpool" | "dataDir"> = {
  host: "127.0.0.1",
  port: 0,
  offer: { price: 0n, volume: 1_000n, category: 0n, trust: 8n },
  minWorkerBalance: defaultDeployOptions.minWorkerStake,
  heartbeatMs: 1_000,
  chainPollMs: 200,
  matchIntervalMs: 300,
  router: {},
  logLevel: "info",
};

export class Scheduler {
  private constructor(
    readonly url: string,
    readonly log: Logger,
    private readonly parts: {
      server: Server;
      db: Db;
      provider: JsonRpcProvider;
      manager: WorkerManager;
      router: JobRouter;
      watcher: ChainWatcher;
      matcher: Matcher;
    },
    /** aborted by close(): stops the watcher, the matcher and the waiting long polls */
    private readonly abort: AbortController,
  ) {}

  get router(): JobRouter {
    return this.parts.router;
  }

  static async init(o: Partial<SchedulerOptions> & Pick<SchedulerOptions, "rpcUrl" | "deployment" | "workerpool" | "dataDir">, key: BaseWallet | string): Promise<Scheduler> {
    const opts: SchedulerOptions = { ...defaultSchedulerOptions, ...o };
    const log = pino({ level: opts.logLevel, base: { daemon: "scheduler" } }, pino.destination({ dest: 2, sync: false }));
    mkdirSync(opts.dataDir, { recursive: true });
    const d = opts.deployment;
    const provider = rpcProvider(opts.rpcUrl, d.chainId);
    const wallet = typeof key === "string" ? fastWallet(key, provider) : key;
    const chain = await EthersChainClient.init(chainClientOptionsFrom(d), { provider, wallet, logger: log });
    const db = openDatabase(join(opts.dataDir, "scheduler.db"));
    const results = new ResultStore({ dir: join(opts.dataDir, "results") });

    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port, opts.host, () => resolve());
    });
    const { port } = server.address() as { port: number };
    const url = `http://${opts.host}:${port}`;

    const manager = new WorkerManager(
      { ...defaultWorkerManagerOptions, chainId: d.chainId, hub: d.hub, heartbeatMs: opts.heartbeatMs },
      {
        server,
        log,
        admit: async (worker) => {
          const account = await chain.accountOf(worker);
          return account.balance >= opts.minWorkerBalance
            ? { ok: true }
            : { ok: false, reason: `${worker} has ${formatEther(account.balance)} CCT free in escrow, a contribution stakes at least ${formatEther(opts.minWorkerBalance)} (deposit first)` };
        },
      },
    );
    const router = new JobRouter({ ...defaultJobRouterOptions, ...opts.router, workerpool: opts.workerpool, publicUrl: url }, { db, chain, manager, results, log });

    // The pool's own workerpool order. When a match uses up its volume, a fresh one is signed and offered, so the
    // pool keeps serving however many tasks come (the matcher reads `offers` at every round).
    const offers: Signed<WorkerpoolOrder>[] = [];
    let offered = { salt: "", used: 0n };
    const offerAgain = async () => {
      if (!opts.offer) return;
      const order = buildWorkerpoolOrder({
        workerpool: opts.workerpool,
        workerpoolprice: opts.offer.price,
        volume: opts.offer.volume,
        category: opts.offer.category,
        trust: opts.offer.trust,
        salt: randomSalt(),
      });
      offers.push(await signOrder(wallet, chain.domain, "WorkerpoolOrder", order));
      offered = { salt: order.salt, used: 0n };
    };
    await offerAgain();

    const refusalOf = (reason: DecodedRevert | null | undefined): MatchRefusal => {
      const name = reason?.name ?? "UnknownReason";
      return { name, args: reason?.args ?? [], message: `${name}(${(reason?.args ?? []).map(String).join(", ")})` };
    };
    const matcherChain: MatcherChain = {
      canMatch: async (set) => {
        const check = await chain.canMatch(set.app, set.request.dataset === 0n ? null : set.dataset, set.workerpool, set.request);
        return check.ok ? { ok: true } : { ok: false, refusal: refusalOf(check.reason) };
      },
      matchOrders: async (set, expected) => {
        // once the estimate passed, the deal's tasks start while the transaction is mined (the router's `speculate`);
        // only a deal this call recorded is dropped when the match does not create it
        let speculation: Promise<boolean> = Promise.resolve(false);
        const onEstimated = () =>
          void (speculation = router.speculate(expected, set).catch((e: Error) => (log.error({ err: e.message }, "speculative start failed"), false)));
        const r = await chain
          .matchOrders(set.app, set.request.dataset === 0n ? null : set.dataset, set.workerpool, set.request, { onEstimated })
          .catch(async (e: unknown) => {
            // sent and perhaps mined later (a receipt that did not come in time): the watcher or the reconciliation decides
            const maybeMined = e instanceof ChainError && e.details.txHash !== undefined && e.code !== "REVERTED";
            if (await speculation) {
              router.matchEnded(expected.dealId); // its nonce may be reused: nothing more goes behind it
              if (!maybeMined) router.abandon(expected.dealId, `matchOrders failed: ${(e as Error).message.split("\n")[0]}`);
            }
            // the sender's gas estimate is the Clerk's verdict: a revert there sent nothing (no canMatch needed first)
            throw e instanceof ChainError && e.code === "REVERTED" && !e.details.txHash && e.revert ? new MatchRefusedError(refusalOf(e.revert)) : e;
          });
        if ((await speculation) && r.dealId !== expected.dealId) router.abandon(expected.dealId, `matchOrders created deal ${r.dealId} instead`);
        await router.onReceipt(r.events); // the deal's tasks exist (or are confirmed) at once, not at the watcher's next poll
        if (opts.offer && set.workerpool.salt === offered.salt) {
          offered.used += BigInt(r.volume);
          if (offered.used >= opts.offer.volume) await offerAgain();
        }
        return { dealId: r.dealId, volume: BigInt(r.volume), txHash: r.hash };
      },
    };
    const matcher = new Matcher(
      { workerpool: opts.workerpool, intervalMs: opts.matchIntervalMs, precheck: false },
      { db, domain: chain.domain, chain: matcherChain, workerpoolOrders: offers, logger: log },
    );
    const abort = new AbortController();
    const checks = new EthersOrderChecks(provider, d);
    const app = createApi(
      [
        ordersRouter({}, { db, domain: chain.domain, checks, workerpool: opts.workerpool, logger: log, onAccepted: () => matcher.wake() }),
        resultsRouter({ store: results }),
        tasksRouter({
          getTask: (id) => router.view(id),
          longPoll: { onTaskEvent: (listener) => onTaskEvent(db, listener), statusOf: (id) => getTask(db, id)?.status ?? null, closing: abort.signal },
        }),
      ],
      log,
    );
    server.on("request", app);

    const watcher = new ChainWatcher(
      { hub: d.hub, fromBlock: d.blockNumber, pollIntervalMs: opts.chainPollMs },
      {
        provider,
        cursors: new SqliteCursorStore(db),
        handler: (e) => router.onChainEvent(e),
        // another pool's deal, or a task this scheduler does not run: not even decoded
        relevant: relevantTo(opts.workerpool, (taskId) => getTask(db, taskId) !== null),
        logger: log,
      },
    );
    const scheduler = new Scheduler(url, log, { server, db, provider, manager, router, watcher, matcher }, abort);
    void watcher.run(scheduler.abort.signal);
    void matcher.run(scheduler.abort.signal);
    router.start();
    log.info({ url, workerpool: String(opts.workerpool), scheduler: wallet.address }, "scheduler ready");
    return scheduler;
  }

  async close(): Promise<void> {
    this.abort.abort();
    this.parts.router.stop();
    await this.parts.manager.close();
    await new Promise<void>((resolve) => this.parts.server.close(() => resolve()));
    this.parts.db.close();
    this.parts.provider.destroy();
  }
}
