/**
 * The scheduler's view of the chain: a narrow `ChainClient` interface (what the scheduler's core needs, in plain
 * types: ids as 0x strings, money as bigint, times as unix seconds) and `EthersChainClient`, its implementation over
 * the typechain bindings.
 *
 * Reads retry transient RPC failures. Writes go through one TxSender per client (= per key): serialized nonces,
 * retries with backoff on transient failures and nonce conflicts, never on reverts; a revert comes back as
 * ChainError REVERTED with the custom error decoded (`error.revert.name`, `error.revert.args`). Every write resolves
 * once its transaction has `confirmations` confirmations (1 by default), with the Hub events it emitted.
 */
import { ZeroAddress, getAddress, getBytes } from "ethers";
import type { BaseWallet, BytesLike, JsonRpcProvider, TransactionReceipt, TypedDataDomain } from "ethers";
import type { Logger } from "pino";
import pino from "pino";
import { domain as concordDomain, taskId as computeTaskId } from "../../sdk/eip712";
import type { AppOrder, DatasetOrder, RequestOrder, Signed, WorkerpoolOrder } from "../../sdk/eip712";
import { authorizationSignature, EMPTY_DATASET_ORDER } from "../../sdk/orders";
import type { RelayedContribution, RelayedReveal } from "../../sdk/orders";
import {
  AppRegistry__factory,
  DatasetRegistry__factory,
  Hub__factory,
  WorkerpoolRegistry__factory,
} from "../../typechain-types";
import type { AppRegistry, DatasetRegistry, Hub, WorkerpoolRegistry } from "../../typechain-types";
import { ChainError, decodeRevertData, failureError, withRetry, type DecodedRevert, type RetryPolicy } from "./errors";
import { HUB_INTERFACE, decodeHubLogs, isEvent, type HubEvent, type HubEventArgs } from "./events";
import { TxSender, defaultTxSenderOptions, type TxRequest, type TxSenderOptions } from "./sender";

// ================================================================== the interface

export type TaskStatus = "UNSET" | "ACTIVE" | "REVEALING" | "COMPLETED" | "FAILED";
export type ContributionStatus = "UNSET" | "CONTRIBUTED" | "REVEALED" | "REJECTED";

/** A deal as the Hub stores it (`IClerk.Deal`). */
export interface DealView {
  dealId: string;
  requester: string;
  scheduler: string;
  /** The EIP-1154 consumer, or null when the deal has no callback. */
  callback: string | null;
  app: bigint;
  /** 0n when the deal has no dataset. */
  dataset: bigint;
  appPrice: bigint;
  datasetPrice: bigint;
  workerpoolPrice: bigint;
  /** Unix seconds: the consensus timer starts here. */
  startTime: number;
  /** The category's workClockTimeRef, seconds. */
  timeref: number;
  volume: number;
  trust: number;
  /** max(trust, 1): distinct agreeing workers needed. */
  quorum: number;
  workerStakeRatio: number;
  schedulerRewardRatio: number;
  /** startTime + 7·timeref */
  contributionDeadline: number;
  /** startTime + 10·timeref */
  finalDeadline: number;
}

/** A deal with what only its DealMatched event (and the matching transaction) tell. */
export interface DealTerms extends DealView {
  params: string;
  beneficiary: string;
  workerpool: bigint;
  /** The request's category, read from the matching transaction's calldata; null when it was not a direct call. */
  category: number | null;
  requestOrderHash: string;
  appOrderHash: string;
  datasetOrderHash: string;
  workerpoolOrderHash: string;
  matchedBlock: number;
  matchedTx: string;
}

/** A task (`IHub.Task`); status UNSET with zero fields when never initialized. */
export interface TaskView {
  taskId: string;
  status: TaskStatus;
  dealId: string;
  index: number;
  contributionDeadline: number;
  revealDeadline: number;
  finalDeadline: number;
  contributorCount: number;
  winnerCount: number;
  revealCount: number;
  consensusHash: string;
  resultDigest: string;
}

export interface ContributionView {
  status: ContributionStatus;
  sealPrefix: string;
  stake: bigint;
}

export interface CategoryView {
  id: number;
  name: string;
  /** workClockTimeRef, seconds */
  timeref: number;
}

export interface Account {
  balance: bigint;
  frozen: bigint;
}

export interface AppEntry {
  id: bigint;
  name: string;
  runtime: string;
  uri: string;
  checksum: string;
}

export interface DatasetEntry {
  id: bigint;
  name: string;
  uri: string;
  checksum: string;
}

export interface WorkerpoolEntry {
  id: bigint;
  owner: string;
  scheduler: string;
  workerStakeRatio: number;
  schedulerRewardRatio: number;
  schedulerConsent: boolean;
  description: string;
}

export interface OrderState {
  consumed: bigint;
  presigned: boolean;
  cancelled: boolean;
}

/** The result of `canMatch`: ok, or the custom error `matchOrders` would revert with. */
export type MatchCheck = { ok: true } | { ok: false; reason: DecodedRevert | null; data: string };

/** A confirmed transaction and the Hub events it emitted, in log order. */
export interface TxResult {
  hash: string;
  blockNumber: number;
  gasUsed: bigint;
  events: HubEvent[];
}

export interface MatchResult extends TxResult {
  dealId: string;
  volume: number;
}

export interface InitializeResult extends TxResult {
  taskId: string;
}

export interface FinalizeResult extends TxResult {
  resultDigest: string;
  /** The consumer's `receiveResult` reverted or ran out of gas (finalization stands). */
  callbackFailed: boolean;
}

export interface ClaimDealResult extends TxResult {
  claimed: number;
}

export interface TxOptions {
  signal?: AbortSignal;
  /** Overrides the client's confirmation depth for this transaction. */
  confirmations?: number;
  /** Called once the gas estimate passed, before the transaction is signed and broadcast (TxRequest.onEstimated). */
  onEstimated?: () => void;
  /** Sent with this gas limit and no estimate (TxRequest.gasLimit): it may revert on chain, and then costs gas. */
  gasLimit?: bigint;
  /** With `gasLimit`: simulated with `eth_call` first, a revert there sends nothing (TxRequest.simulate). */
  simulate?: boolean;
}

/** What the scheduler needs from the chain. */
export interface ChainClient {
  readonly chainId: number;
  readonly hub: string;
  /** The scheduler's address (the key that signs transactions and authorizations). */
  readonly address: string;
  /** The EIP-712 domain of the Hub. */
  readonly domain: TypedDataDomain;

  /** The latest block: its number and timestamp (chain time, which deadlines compare against). */
  latestBlock(): Promise<{ number: number; timestamp: number }>;

  // ---- reads
  /** null for an unknown deal. */
  viewDeal(dealId: string): Promise<DealView | null>;
  /** The deal plus its DealMatched data (params, beneficiary, category…); null for an unknown deal.
   *  `hint.blockNumber` (from the watcher's DealMatched event) avoids scanning for the event. */
  dealTerms(dealId: string, hint?: { blockNumber?: number }): Promise<DealTerms | null>;
  viewTask(taskId: string): Promise<TaskView>;
  viewContribution(taskId: string, worker: string): Promise<ContributionView>;
  contributorsOf(taskId: string): Promise<string[]>;
  /** null for an unknown category. */
  category(id: number | bigint): Promise<CategoryView | null>;
  accountOf(address: string): Promise<Account>;
  /** The stake each contribution to the deal locks (0n for an unknown deal). */
  workerStakeOf(dealId: string): Promise<bigint>;
  schedulerStakeOf(dealId: string): Promise<bigint>;
  /** Registry entries; null for an unknown id. */
  app(id: bigint | number): Promise<AppEntry | null>;
  dataset(id: bigint | number): Promise<DatasetEntry | null>;
  workerpool(id: bigint | number): Promise<WorkerpoolEntry | null>;
  orderState(orderHash: string): Promise<OrderState>;
  /** Whether `matchOrders` would succeed now; `dataset` null when the request has none. */
  canMatch(
    app: Signed<AppOrder>,
    dataset: Signed<DatasetOrder> | null,
    workerpool: Signed<WorkerpoolOrder>,
    request: Signed<RequestOrder>,
  ): Promise<MatchCheck>;

  // ---- writes (resolve once confirmed; reject with ChainError)
  /**
   * Estimated the first time (with a dataset and without, each); then simulated with `eth_call`, which refuses what
   * the estimate would (MatchRefusedError's source: REVERTED with no transaction) in one execution where the estimate
   * takes two, and sent with a gas limit from the last one's gas used (`matchGasLimit`). A failure forgets the figure.
   */
  matchOrders(
    app: Signed<AppOrder>,
    dataset: Signed<DatasetOrder> | null,
    workerpool: Signed<WorkerpoolOrder>,
    request: Signed<RequestOrder>,
    opts?: TxOptions,
  ): Promise<MatchResult>;
  initialize(dealId: string, index: number | bigint, opts?: TxOptions): Promise<InitializeResult>;
  contributeBatch(items: RelayedContribution[], opts?: TxOptions): Promise<TxResult>;
  revealBatch(items: RelayedReveal[], opts?: TxOptions): Promise<TxResult>;
  /** `results`: where the full result lives (hex bytes); `resultsCallback`: the callback data (hex, "0x" if none). */
  finalize(taskId: string, results: BytesLike, resultsCallback?: BytesLike, opts?: TxOptions): Promise<FinalizeResult>;
  /**
   * `revealBatch` then `finalize`, sent back to back (TxSender `sendAll`): finalize is signed without waiting for the
   * reveals to be mined, so it cannot be estimated and goes out with `finalize.gasLimit`. With `revealGasLimit`,
   * revealBatch is not estimated either (a round trip saved when its gas is known).
   * Each resolves once confirmed; finalize is not sent when revealBatch could not be.
   */
  revealAndFinalize(
    reveals: RelayedReveal[],
    finalize: { taskId: string; results: BytesLike; resultsCallback?: BytesLike; gasLimit: bigint; revealGasLimit?: bigint },
    opts?: TxOptions,
  ): { reveal: Promise<TxResult>; finalize: Promise<FinalizeResult> };
  reopen(taskId: string, opts?: TxOptions): Promise<TxResult>;
  claim(dealId: string, index: number | bigint, opts?: TxOptions): Promise<TxResult>;
  claimDeal(dealId: string, opts?: TxOptions): Promise<ClaimDealResult>;

  /** The scheduler's EIP-712 Authorization(worker, taskId), the `authorization` of a worker's `contribute`. */
  signAuthorization(worker: string, taskId: string): Promise<string>;
}

// ================================================================== the ethers implementation

/**
 * The gas limit of a matchOrders sent without an estimate: 1.5 times what the last one of its kind used, 50k more,
 * and 40 gas per byte of its calldata (the request's params vary: calldata, the event and the deal's storage).
 */
export function matchGasLimit(lastUsed: bigint, data: string): bigint {
  return (3n * lastUsed) / 2n + 50_000n + 40n * BigInt((data.length - 2) / 2);
}

export interface ChainClientOptions extends TxSenderOptions {
  chainId: number;
  hub: string;
  appRegistry: string;
  datasetRegistry: string;
  workerpoolRegistry: string;
  /** Lower bound of event searches (the deployment block). */
  fromBlock: number;
  /** Largest block range per `eth_getLogs` query when searching for a deal's DealMatched event. */
  logRange: number;
  /** Gas added on top of finalize's estimate when callback data is delivered (the callback is guaranteed 100k). */
  callbackGasMargin: bigint;
}

export const defaultChainClientOptions: Omit<
  ChainClientOptions,
  "chainId" | "hub" | "appRegistry" | "datasetRegistry" | "workerpoolRegistry"
> = {
  ...defaultTxSenderOptions,
  fromBlock: 0,
  logRange: 10_000,
  callbackGasMargin: 100_000n,
};

/** The address part of the options, from a deployment record (`deploy/lib.ts` Deployment). */
export function chainClientOptionsFrom(d: {
  chainId: number;
  hub: string;
  appRegistry: string;
  datasetRegistry: string;
  workerpoolRegistry: string;
  blockNumber: number;
}): Pick<
  ChainClientOptions,
  "chainId" | "hub" | "appRegistry" | "datasetRegistry" | "workerpoolRegistry" | "fromBlock"
> {
  const { chainId, hub, appRegistry, datasetRegistry, workerpoolRegistry, blockNumber } = d;
  return { chainId, hub, appRegistry, datasetRegistry, workerpoolRegistry, fromBlock: blockNumber };
}

export interface ChainClientModules {
  provider: JsonRpcProvider;
  /** The scheduler's key (a Wallet or HDNodeWallet, connected or not: the client connects it to `provider`). */
  wallet: BaseWallet;
  logger?: Logger;
}

type RequiredOptions = Pick<
  ChainClientOptions,
  "chainId" | "hub" | "appRegistry" | "datasetRegistry" | "workerpoolRegistry"
>;

const TASK_STATUSES: TaskStatus[] = ["UNSET", "ACTIVE", "REVEALING", "COMPLETED", "FAILED"];
const CONTRIBUTION_STATUSES: ContributionStatus[] = ["UNSET", "CONTRIBUTED", "REVEALED", "REJECTED"];


export class EthersChainClient implements ChainClient {
  readonly options: ChainClientOptions;
  readonly chainId: number;
  readonly hub: string;
  readonly address: string;
  readonly domain: TypedDataDomain;
  private readonly provider: JsonRpcProvider;
  private readonly wallet: BaseWallet;
  private readonly logger: Logger;
  private readonly sender: TxSender;
  private readonly contracts: {
    hub: Hub;
    apps: AppRegistry;
    datasets: DatasetRegistry;
    workerpools: WorkerpoolRegistry;
  };
  private readonly readPolicy: RetryPolicy;
  /** the gas the last matchOrders used, with a dataset (true) or without */
  private readonly matchGasUsed = new Map<boolean, bigint>();

  constructor(options: Partial<ChainClientOptions> & RequiredOptions, modules: ChainClientModules) {
    this.options = { ...defaultChainClientOptions, ...options };
    this.provider = modules.provider;
    this.wallet =
      modules.wallet.provider === modules.provider ? modules.wallet : modules.wallet.connect(modules.provider);
    this.logger = (modules.logger ?? pino({ level: "silent" })).child({ module: "chain-client" });
    this.chainId = this.options.chainId;
    this.hub = getAddress(this.options.hub);
    this.address = this.wallet.address;
    this.domain = concordDomain(this.chainId, this.hub);
    this.sender = new TxSender(this.options, { wallet: this.wallet, provider: this.provider, logger: this.logger });
    this.contracts = {
      hub: Hub__factory.connect(this.hub, this.provider),
      apps: AppRegistry__factory.connect(this.options.appRegistry, this.provider),
      datasets: DatasetRegistry__factory.connect(this.options.datasetRegistry, this.provider),
      workerpools: WorkerpoolRegistry__factory.connect(this.options.workerpoolRegistry, this.provider),
    };
    this.readPolicy = {
      maxAttempts: this.options.maxAttempts,
      backoffMs: this.options.backoffMs,
      maxBackoffMs: this.options.maxBackoffMs,
    };
  }

  /** Builds a client after checking that the node serves `chainId` and that the Hub has code. */
  static async init(
    options: Partial<ChainClientOptions> & RequiredOptions,
    modules: ChainClientModules,
  ): Promise<EthersChainClient> {
    const client = new EthersChainClient(options, modules);
    await client.check();
    return client;
  }

  private async check(): Promise<void> {
    const [network, code] = await Promise.all([
      this.read("eth_chainId", () => this.provider.send("eth_chainId", []) as Promise<string>),
      this.read("eth_getCode", () => this.provider.getCode(this.hub)),
    ]);
    if (BigInt(network) !== BigInt(this.chainId)) {
      throw new ChainError("BAD_RESPONSE", `the node serves chain ${BigInt(network)}, expected ${this.chainId}`);
    }
    if (code === "0x")
      throw new ChainError("BAD_RESPONSE", `no contract at hub address ${this.hub} on chain ${this.chainId}`);
  }

  // ---------------------------------------------------------------- plumbing

  private read<T>(action: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(action, this.readPolicy, fn);
  }

  /** A read that answers null when the contract reverts with `unknownError` (an unknown id). */
  private async readOrNull<T>(action: string, unknownError: string, fn: () => Promise<T>): Promise<T | null> {
    try {
      return await this.read(action, fn);
    } catch (e) {
      if (e instanceof ChainError && e.revert?.name === unknownError) return null;
      throw e;
    }
  }

  /** ABI-encodes a Hub call; input that cannot be encoded becomes ChainError INVALID_ARGUMENT. */
  private encode(action: string, encode: () => string): string {
    try {
      return encode();
    } catch (e) {
      throw failureError(action, e);
    }
  }

  private async send(req: Omit<TxRequest, "to"> & { to?: string }, opts: TxOptions = {}): Promise<TxResult> {
    const { confirmations, onEstimated, gasLimit, simulate } = opts;
    const receipt = await this.sender.send({ to: this.hub, confirmations, onEstimated, gasLimit, simulate, ...req }, opts.signal);
    return this.txResult(receipt);
  }

  private txResult(receipt: TransactionReceipt): TxResult {
    return {
      hash: receipt.hash,
      blockNumber: receipt.blockNumber,
      gasUsed: receipt.gasUsed,
      events: decodeHubLogs(receipt.logs, this.hub),
    };
  }

  private eventOf<N extends keyof HubEventArgs>(action: string, result: TxResult, name: N): HubEventArgs[N] {
    const event = result.events.find((e): e is Extract<HubEvent, { name: N }> => isEvent(e, name));
    if (!event) {
      throw new ChainError("BAD_RESPONSE", `${action}: no ${name} event in transaction ${result.hash}`, {
        action,
        txHash: result.hash,
      });
    }
    return event.args as HubEventArgs[N];
  }

  // ---------------------------------------------------------------- reads

  async latestBlock(): Promise<{ number: number; timestamp: number }> {
    const block = await this.read("eth_getBlockByNumber", () => this.provider.getBlock("latest"));
    if (!block) throw new ChainError("BAD_RESPONSE", "the node has no latest block");
    return { number: block.number, timestamp: block.timestamp };
  }

  async viewDeal(dealId: string): Promise<DealView | null> {
    const d = await this.read("viewDeal", () => this.contracts.hub.viewDeal(dealId));
    if (d.volume === 0n) return null;
    const startTime = Number(d.startTime);
    const timeref = Number(d.timeref);
    const trust = Number(d.trust);
    return {
      dealId: dealId.toLowerCase(),
      requester: d.requester,
      scheduler: d.scheduler,
      callback: d.callback === ZeroAddress ? null : d.callback,
      app: d.app,
      dataset: d.dataset,
      appPrice: d.appPrice,
      datasetPrice: d.datasetPrice,
      workerpoolPrice: d.workerpoolPrice,
      startTime,
      timeref,
      volume: Number(d.volume),
      trust,
      quorum: Math.max(trust, 1),
      workerStakeRatio: Number(d.workerStakeRatio),
      schedulerRewardRatio: Number(d.schedulerRewardRatio),
      contributionDeadline: startTime + 7 * timeref,
      finalDeadline: startTime + 10 * timeref,
    };
  }

  async dealTerms(dealId: string, hint: { blockNumber?: number } = {}): Promise<DealTerms | null> {
    const deal = await this.viewDeal(dealId);
    if (!deal) return null;
    const log = await this.findDealMatched(dealId, hint.blockNumber);
    if (!log) throw new ChainError("BAD_RESPONSE", `deal ${dealId} exists but its DealMatched event was not found`);
    const args = log.args;
    return {
      ...deal,
      params: args.params,
      beneficiary: args.beneficiary,
      workerpool: args.workerpool,
      category: await this.categoryOfMatch(log.transactionHash),
      requestOrderHash: args.requestOrderHash,
      appOrderHash: args.appOrderHash,
      datasetOrderHash: args.datasetOrderHash,
      workerpoolOrderHash: args.workerpoolOrderHash,
      matchedBlock: log.blockNumber,
      matchedTx: log.transactionHash,
    };
  }

  /** The DealMatched event of a deal: in the hinted block, else scanning back from the head, range by range. */
  private async findDealMatched(
    dealId: string,
    blockNumber?: number,
  ): Promise<Extract<HubEvent, { name: "DealMatched" }> | null> {
    const topics = [HUB_INTERFACE.getEvent("DealMatched").topicHash, dealId.toLowerCase()];
    const scan = async (fromBlock: number, toBlock: number) => {
      const logs = await this.read("eth_getLogs", () =>
        this.provider.getLogs({ address: this.hub, topics, fromBlock, toBlock }),
      );
      const event = decodeHubLogs(logs, this.hub).find((e) => isEvent(e, "DealMatched"));
      return (event as Extract<HubEvent, { name: "DealMatched" }> | undefined) ?? null;
    };
    if (blockNumber !== undefined) {
      const found = await scan(blockNumber, blockNumber);
      if (found) return found;
    }
    const head = await this.read("eth_blockNumber", () => this.provider.getBlockNumber());
    for (let to = head; to >= this.options.fromBlock; to -= this.options.logRange) {
      const from = Math.max(this.options.fromBlock, to - this.options.logRange + 1);
      const found = await scan(from, to);
      if (found) return found;
    }
    return null;
  }

  /** The request's category, decoded from the matching transaction (null when matched through another contract). */
  private async categoryOfMatch(txHash: string): Promise<number | null> {
    const tx = await this.read("eth_getTransactionByHash", () => this.provider.getTransaction(txHash));
    if (!tx || tx.to === null || getAddress(tx.to) !== this.hub) return null;
    try {
      const parsed = HUB_INTERFACE.parseTransaction({ data: tx.data });
      if (!parsed || (parsed.name !== "matchOrders" && parsed.name !== "depositAndMatchOrders")) return null;
      const i = parsed.fragment.inputs.findIndex((input) => input.name === "requestOrder");
      return Number((parsed.args[i] as { category: bigint }).category);
    } catch {
      return null;
    }
  }

  async viewTask(taskId: string): Promise<TaskView> {
    const t = await this.read("viewTask", () => this.contracts.hub.viewTask(taskId));
    return {
      taskId: taskId.toLowerCase(),
      status: TASK_STATUSES[Number(t.status)],
      dealId: t.dealId,
      index: Number(t.index),
      contributionDeadline: Number(t.contributionDeadline),
      revealDeadline: Number(t.revealDeadline),
      finalDeadline: Number(t.finalDeadline),
      contributorCount: Number(t.contributorCount),
      winnerCount: Number(t.winnerCount),
      revealCount: Number(t.revealCount),
      consensusHash: t.consensusHash,
      resultDigest: t.resultDigest,
    };
  }

  async viewContribution(taskId: string, worker: string): Promise<ContributionView> {
    const c = await this.read("viewContribution", () => this.contracts.hub.viewContribution(taskId, worker));
    return { status: CONTRIBUTION_STATUSES[Number(c.status)], sealPrefix: c.sealPrefix, stake: c.stake };
  }

  async contributorsOf(taskId: string): Promise<string[]> {
    return [...(await this.read("contributorsOf", () => this.contracts.hub.contributorsOf(taskId)))];
  }

  async category(id: number | bigint): Promise<CategoryView | null> {
    const c = await this.readOrNull("viewCategory", "ClerkUnknownCategory", () => this.contracts.hub.viewCategory(id));
    return c && { id: Number(id), name: c.name, timeref: Number(c.workClockTimeRef) };
  }

  async accountOf(address: string): Promise<Account> {
    const [balance, frozen] = await this.read("accountOf", () => this.contracts.hub.accountOf(address));
    return { balance, frozen };
  }

  workerStakeOf(dealId: string): Promise<bigint> {
    return this.read("workerStakeOf", () => this.contracts.hub.workerStakeOf(dealId));
  }

  schedulerStakeOf(dealId: string): Promise<bigint> {
    return this.read("schedulerStakeOf", () => this.contracts.hub.schedulerStakeOf(dealId));
  }

  async app(id: bigint | number): Promise<AppEntry | null> {
    const a = await this.readOrNull("app", "RegistryUnknownAsset", () => this.contracts.apps.app(id));
    return a && { id: BigInt(id), name: a.name, runtime: a.runtime, uri: a.uri, checksum: a.checksum };
  }

  async dataset(id: bigint | number): Promise<DatasetEntry | null> {
    const d = await this.readOrNull("dataset", "RegistryUnknownAsset", () => this.contracts.datasets.dataset(id));
    return d && { id: BigInt(id), name: d.name, uri: d.uri, checksum: d.checksum };
  }

  async workerpool(id: bigint | number): Promise<WorkerpoolEntry | null> {
    const pool = this.contracts.workerpools;
    const w = await this.readOrNull("workerpool", "RegistryUnknownAsset", () => pool.workerpool(id));
    if (!w) return null;
    const owner = await this.read("ownerOrZero", () => pool.ownerOrZero(id));
    return {
      id: BigInt(id),
      owner,
      scheduler: w.scheduler,
      workerStakeRatio: Number(w.workerStakeRatio),
      schedulerRewardRatio: Number(w.schedulerRewardRatio),
      schedulerConsent: w.schedulerConsent,
      description: w.description,
    };
  }

  async orderState(orderHash: string): Promise<OrderState> {
    const [consumed, presigned, cancelled] = await this.read("orderState", () =>
      this.contracts.hub.orderState(orderHash),
    );
    return { consumed, presigned, cancelled };
  }

  async canMatch(
    app: Signed<AppOrder>,
    dataset: Signed<DatasetOrder> | null,
    workerpool: Signed<WorkerpoolOrder>,
    request: Signed<RequestOrder>,
  ): Promise<MatchCheck> {
    const [ok, reason] = await this.read("canMatch", () =>
      this.contracts.hub.canMatch(app, dataset ?? EMPTY_DATASET_ORDER, workerpool, request),
    );
    if (ok) return { ok: true };
    return { ok: false, reason: decodeRevertData(reason), data: reason };
  }

  // ---------------------------------------------------------------- writes

  async matchOrders(
    app: Signed<AppOrder>,
    dataset: Signed<DatasetOrder> | null,
    workerpool: Signed<WorkerpoolOrder>,
    request: Signed<RequestOrder>,
    opts?: TxOptions,
  ): Promise<MatchResult> {
    const data = this.encode("matchOrders", () =>
      HUB_INTERFACE.encodeFunctionData("matchOrders", [app, dataset ?? EMPTY_DATASET_ORDER, workerpool, request]),
    );
    const kind = dataset !== null;
    const lastUsed = this.matchGasUsed.get(kind);
    const learnt = lastUsed === undefined || opts?.gasLimit !== undefined ? {} : { gasLimit: matchGasLimit(lastUsed, data), simulate: true };
    let result: TxResult;
    try {
      result = await this.send({ action: "matchOrders", data }, { ...opts, ...learnt });
    } catch (e) {
      // the next one is estimated, unless the Clerk refused these orders (a decoded refusal, nothing sent): a failure
      // after sending, or a simulation that ran out of the learnt gas (no Clerk error), says the figure may be short
      const refused = e instanceof ChainError && e.code === "REVERTED" && e.details.txHash === undefined && e.revert !== undefined;
      if (!refused) this.matchGasUsed.delete(kind);
      throw e;
    }
    this.matchGasUsed.set(kind, result.gasUsed);
    const event = this.eventOf("matchOrders", result, "DealMatched");
    this.logger.info({ dealId: event.dealId, volume: Number(event.volume), txHash: result.hash }, "deal matched");
    return { ...result, dealId: event.dealId, volume: Number(event.volume) };
  }

  async initialize(dealId: string, index: number | bigint, opts?: TxOptions): Promise<InitializeResult> {
    const data = this.encode("initialize", () => HUB_INTERFACE.encodeFunctionData("initialize", [dealId, index]));
    const result = await this.send({ action: "initialize", data }, opts);
    return { ...result, taskId: this.eventOf("initialize", result, "TaskInitialized").taskId };
  }

  async contributeBatch(items: RelayedContribution[], opts?: TxOptions): Promise<TxResult> {
    if (items.length === 0)
      throw new ChainError("INVALID_ARGUMENT", "contributeBatch: empty batch", { action: "contributeBatch" });
    const data = this.encode("contributeBatch", () => HUB_INTERFACE.encodeFunctionData("contributeBatch", [items]));
    const result = await this.send({ action: "contributeBatch", data }, opts);
    this.logger.debug({ txHash: result.hash, count: items.length }, "contributions relayed");
    return result;
  }

  async revealBatch(items: RelayedReveal[], opts?: TxOptions): Promise<TxResult> {
    const result = await this.send(this.revealBatchRequest(items), opts);
    this.logger.debug({ txHash: result.hash, count: items.length }, "reveals relayed");
    return result;
  }

  async finalize(
    taskId: string,
    results: BytesLike,
    resultsCallback: BytesLike = "0x",
    opts?: TxOptions,
  ): Promise<FinalizeResult> {
    return this.finalized(taskId, await this.send(this.finalizeRequest(taskId, results, resultsCallback), opts));
  }

  revealAndFinalize(
    reveals: RelayedReveal[],
    f: { taskId: string; results: BytesLike; resultsCallback?: BytesLike; gasLimit: bigint; revealGasLimit?: bigint },
    opts: TxOptions = {},
  ): { reveal: Promise<TxResult>; finalize: Promise<FinalizeResult> } {
    let reqs: TxRequest[];
    try {
      reqs = [
        { ...this.revealBatchRequest(reveals), to: this.hub, confirmations: opts.confirmations, gasLimit: f.revealGasLimit },
        { ...this.finalizeRequest(f.taskId, f.results, f.resultsCallback ?? "0x"), to: this.hub, gasLimit: f.gasLimit, confirmations: opts.confirmations },
      ];
    } catch (e) {
      return { reveal: Promise.reject(e), finalize: Promise.reject(e) };
    }
    const [revealed, finalized] = this.sender.sendAll(reqs, opts.signal);
    return {
      reveal: revealed.then((receipt) => this.txResult(receipt)),
      finalize: finalized.then((receipt) => this.finalized(f.taskId, this.txResult(receipt))),
    };
  }

  private revealBatchRequest(items: RelayedReveal[]): { action: string; data: string } {
    if (items.length === 0) throw new ChainError("INVALID_ARGUMENT", "revealBatch: empty batch", { action: "revealBatch" });
    return { action: "revealBatch", data: this.encode("revealBatch", () => HUB_INTERFACE.encodeFunctionData("revealBatch", [items])) };
  }

  private finalizeRequest(taskId: string, results: BytesLike, resultsCallback: BytesLike): { action: string; data: string; extraGas: bigint } {
    const data = this.encode("finalize", () =>
      HUB_INTERFACE.encodeFunctionData("finalize", [taskId, results, resultsCallback]),
    );
    // With callback data the Hub must hand the consumer 100k gas: an estimate that just clears its check could
    // fall short after a state change, so add a margin on top of the usual headroom.
    const extraGas = getBytes(resultsCallback).length > 0 ? this.options.callbackGasMargin : 0n;
    return { action: "finalize", data, extraGas };
  }

  private finalized(taskId: string, result: TxResult): FinalizeResult {
    const finalized = this.eventOf("finalize", result, "TaskFinalized");
    const callbackFailed = result.events.some((e) => e.name === "CallbackFailed");
    this.logger.info({ taskId, txHash: result.hash, callbackFailed }, "task finalized");
    return { ...result, resultDigest: finalized.resultDigest, callbackFailed };
  }

  reopen(taskId: string, opts?: TxOptions): Promise<TxResult> {
    return this.send(
      { action: "reopen", data: this.encode("reopen", () => HUB_INTERFACE.encodeFunctionData("reopen", [taskId])) },
      opts,
    );
  }

  claim(dealId: string, index: number | bigint, opts?: TxOptions): Promise<TxResult> {
    return this.send(
      { action: "claim", data: this.encode("claim", () => HUB_INTERFACE.encodeFunctionData("claim", [dealId, index])) },
      opts,
    );
  }

  async claimDeal(dealId: string, opts?: TxOptions): Promise<ClaimDealResult> {
    const result = await this.send(
      {
        action: "claimDeal",
        data: this.encode("claimDeal", () => HUB_INTERFACE.encodeFunctionData("claimDeal", [dealId])),
      },
      opts,
    );
    return { ...result, claimed: result.events.filter((e) => e.name === "TaskClaimed").length };
  }

  signAuthorization(worker: string, taskId: string): Promise<string> {
    return authorizationSignature(this.wallet, this.domain, worker, taskId);
  }

  /** taskId of task `index` of `dealId` (pure; here for callers holding only the client). */
  taskIdOf(dealId: string, index: number | bigint): string {
    return computeTaskId(dealId, index);
  }
}
