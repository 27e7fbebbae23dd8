/**
 * A real local chain for the chain-layer tests: Concord deployed by `startChain()`, one app, one dataset and one
 * workerpool whose scheduler consented, escrow deposits for the scheduler, the requester and three workers, the
 * scheduler's EthersChainClient, and helpers that sign orders and relayed worker messages.
 */
import { MaxUint256, ZeroAddress, id, parseEther } from "ethers";
import type { TypedDataDomain, Wallet } from "ethers";
import pino from "pino";
import type { Logger } from "pino";
import { Chain, startChain } from "../../cli/harness";
import { domain as concordDomain, signOrder, taskId as computeTaskId } from "../../../sdk/eip712";
import type { AppOrder, DatasetOrder, RequestOrder, Signed, WorkerpoolOrder } from "../../../sdk/eip712";
import {
  buildAppOrder,
  buildDatasetOrder,
  buildRequestOrder,
  buildWorkerpoolOrder,
  relayedContribution,
  relayedReveal,
} from "../../../sdk/orders";
import type { RelayedContribution, RelayedReveal } from "../../../sdk/orders";
import { EthersChainClient, chainClientOptionsFrom, type ChainClientOptions } from "../../../scheduler/chain/client";

export const PRICES = { app: parseEther("1"), dataset: parseEther("2"), workerpool: parseEther("10") };
/** max(0.1, 10·30/100) */
export const WORKER_STAKE = parseEther("3");
export const TIMEREF = 60; // category 0, "XS"
export const DEPOSIT = parseEther("900");

export interface World {
  chain: Chain;
  domain: TypedDataDomain;
  appOwner: Wallet;
  datasetOwner: Wallet;
  poolOwner: Wallet;
  scheduler: Wallet;
  requester: Wallet;
  workers: Wallet[];
  other: Wallet;
  /** The scheduler's client. */
  client: EthersChainClient;
  /** Another client on the scheduler's key (options overridden). */
  newClient(options?: Partial<ChainClientOptions>, provider?: Chain["provider"], logger?: Logger): EthersChainClient;
  stop(): Promise<void>;
}

export async function startWorld(): Promise<World> {
  const chain = await startChain(10);
  const [, appOwner, datasetOwner, poolOwner, scheduler, requester, w0, w1, w2, other] = chain.accounts;
  const workers = [w0, w1, w2];
  for (const account of [scheduler, requester, ...workers]) {
    await (await chain.token.connect(account).approve(chain.deployment.hub, MaxUint256)).wait();
    await (await chain.hub.connect(account).deposit(DEPOSIT)).wait();
  }
  await (
    await chain.apps.connect(appOwner).register(appOwner.address, "echo", "wasi", "file:///apps/echo.wasm", id("echo"))
  ).wait();
  await (
    await chain.datasets
      .connect(datasetOwner)
      .register(datasetOwner.address, "customers", "file:///data/customers.csv", id("customers"))
  ).wait();
  await (
    await chain.workerpools.connect(poolOwner).register(poolOwner.address, "test pool", scheduler.address, 30, 10)
  ).wait();
  await (await chain.workerpools.connect(scheduler).setSchedulerConsent(1, true)).wait();

  const newClient = (options: Partial<ChainClientOptions> = {}, provider = chain.provider, logger?: Logger) =>
    new EthersChainClient(
      { ...chainClientOptionsFrom(chain.deployment), receiptPollMs: 20, backoffMs: 10, ...options },
      { provider, wallet: scheduler, logger },
    );
  return {
    chain,
    domain: concordDomain(chain.deployment.chainId, chain.deployment.hub),
    appOwner,
    datasetOwner,
    poolOwner,
    scheduler,
    requester,
    workers,
    other,
    client: newClient(),
    newClient,
    stop: () => chain.stop(),
  };
}

export interface Orders {
  app: Signed<AppOrder>;
  dataset: Signed<DatasetOrder>;
  workerpool: Signed<WorkerpoolOrder>;
  request: Signed<RequestOrder>;
}

/** Four compatible orders, each signed by its owner. */
export async function orders(
  w: World,
  request: { trust?: number; volume?: number; callback?: string; params?: string; appmaxprice?: bigint } = {},
): Promise<Orders> {
  const volume = request.volume ?? 1;
  return {
    app: await signOrder(
      w.appOwner,
      w.domain,
      "AppOrder",
      buildAppOrder({ app: 1, appprice: PRICES.app, volume: 1000 }),
    ),
    dataset: await signOrder(
      w.datasetOwner,
      w.domain,
      "DatasetOrder",
      buildDatasetOrder({ dataset: 1, datasetprice: PRICES.dataset, volume: 1000 }),
    ),
    workerpool: await signOrder(
      w.poolOwner,
      w.domain,
      "WorkerpoolOrder",
      buildWorkerpoolOrder({ workerpool: 1, workerpoolprice: PRICES.workerpool, category: 0, trust: 32, volume: 1000 }),
    ),
    request: await signOrder(
      w.requester,
      w.domain,
      "RequestOrder",
      buildRequestOrder({
        app: 1,
        appmaxprice: request.appmaxprice ?? PRICES.app,
        dataset: 1,
        datasetmaxprice: PRICES.dataset,
        workerpoolmaxprice: PRICES.workerpool,
        category: 0,
        requester: w.requester.address,
        trust: request.trust ?? 3,
        volume,
        callback: request.callback ?? ZeroAddress,
        params: request.params ?? '{"args":["hello"]}',
      }),
    ),
  };
}

/** Matches a new deal through the scheduler's client. */
export async function matchDeal(w: World, request: Parameters<typeof orders>[1] = {}) {
  const o = await orders(w, request);
  return w.client.matchOrders(o.app, o.dataset, o.workerpool, o.request);
}

export function taskIdOf(dealId: string, index = 0): string {
  return computeTaskId(dealId, index);
}

/** Each worker's signed contribution of `digest` to task `index` of `dealId`. */
export function contributions(
  w: World,
  dealId: string,
  index: number,
  digest: string,
  workers = w.workers,
): Promise<RelayedContribution[]> {
  return Promise.all(workers.map((worker) => relayedContribution(worker, w.domain, dealId, index, digest)));
}

/** Each worker's signed reveal of `digest`. */
export function reveals(w: World, taskId: string, digest: string, workers = w.workers): Promise<RelayedReveal[]> {
  return Promise.all(workers.map((worker) => relayedReveal(worker, w.domain, taskId, digest)));
}

/** Moves chain time forward by `seconds` and mines a block. */
export async function increaseTime(w: World, seconds: number): Promise<void> {
  await w.chain.provider.send("evm_increaseTime", [seconds]);
  await w.chain.provider.send("evm_mine", []);
}

/** A pino logger that keeps every record (parsed) in `records`. */
export function recordingLogger(): { logger: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { logger, records };
}
