/**
 * Shared fixture: the protocol deployed on the Hardhat network, one app, one dataset, one workerpool, funded
 * accounts, and order builders signed by the right owners.
 */
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { ZeroAddress, ZeroHash, parseEther, randomBytes, hexlify, TypedDataDomain } from "ethers";
import { deployConcord } from "../../deploy/lib";
import {
  AppRegistry__factory,
  ConcordTestToken__factory,
  DatasetRegistry__factory,
  Hub__factory,
  WorkerpoolRegistry__factory,
} from "../../typechain-types";
import type { AppRegistry, ConcordTestToken, DatasetRegistry, Hub, WorkerpoolRegistry } from "../../typechain-types";
import {
  AppOrder,
  DatasetOrder,
  RequestOrder,
  Signed,
  WorkerpoolOrder,
  domain,
  signOrder,
} from "../../sdk/eip712";

export const PRICES = { app: parseEther("1"), dataset: parseEther("2"), workerpool: parseEther("10") };
export const MIN_WORKER_STAKE = parseEther("0.1");
export const KITTY_MIN = parseEther("0.1");
export const WORKER_STAKE_RATIO = 30n;
export const SCHEDULER_REWARD_RATIO = 10n;
export const CATEGORY = 0n; // "XS": workClockTimeRef = 60 s
export const TIMEREF = 60n;
export const INITIAL_TOKENS = parseEther("1000");
export const INITIAL_DEPOSIT = parseEther("100");

/** What one task of a default deal costs its requester: app 1 + dataset 2 + workerpool 10 = 13. */
export const TASK_PRICE = PRICES.app + PRICES.dataset + PRICES.workerpool;
/** A worker's stake per contribution on a default deal: max(0.1, 10·30/100) = 3. */
export const WORKER_STAKE = parseEther("3");
/** The scheduler's stake per task of a default deal: 10·30/100 = 3. */
export const SCHEDULER_STAKE = parseEther("3");
/** The gas the Hub guarantees a result consumer's callback. */
export const CALLBACK_GAS = 100_000n;
/** `needed` of HubNotEnoughGasForCallback: CALLBACK_GAS·64/63 + CALLBACK_OVERHEAD. */
export const CALLBACK_GAS_NEEDED = (CALLBACK_GAS * 64n) / 63n + 12_000n;

export interface Fixture {
  hub: Hub;
  token: ConcordTestToken;
  apps: AppRegistry;
  datasets: DatasetRegistry;
  workerpools: WorkerpoolRegistry;
  domain: TypedDataDomain;
  owner: HardhatEthersSigner;
  appOwner: HardhatEthersSigner;
  datasetOwner: HardhatEthersSigner;
  poolOwner: HardhatEthersSigner;
  scheduler: HardhatEthersSigner;
  requester: HardhatEthersSigner;
  workers: HardhatEthersSigner[];
  other: HardhatEthersSigner;
  appId: bigint;
  datasetId: bigint;
  workerpoolId: bigint;
}

/** Deploys everything and funds every account with tokens and an escrow deposit. */
export async function deployFixture(): Promise<Fixture> {
  const signers = await ethers.getSigners();
  const [owner, appOwner, datasetOwner, poolOwner, scheduler, requester, other, ...rest] = signers;
  const workers = rest.slice(0, 6);
  const deployment = await deployConcord(owner, {
    minWorkerStake: MIN_WORKER_STAKE,
    kittyMin: KITTY_MIN,
  });
  const hub = Hub__factory.connect(deployment.hub, owner);
  const token = ConcordTestToken__factory.connect(deployment.token, owner);
  const apps = AppRegistry__factory.connect(deployment.appRegistry, owner);
  const datasets = DatasetRegistry__factory.connect(deployment.datasetRegistry, owner);
  const workerpools = WorkerpoolRegistry__factory.connect(deployment.workerpoolRegistry, owner);

  for (const account of [appOwner, datasetOwner, poolOwner, scheduler, requester, other, ...workers]) {
    await token.mint(account.address, INITIAL_TOKENS);
    await token.connect(account).approve(deployment.hub, ethers.MaxUint256);
  }
  for (const account of [scheduler, requester, ...workers]) {
    await hub.connect(account).deposit(INITIAL_DEPOSIT);
  }
  await apps.register(appOwner.address, "echo", "wasi", "file://apps/echo.wasm", ethers.id("echo"));
  await datasets.register(datasetOwner.address, "customers", "file://data/customers.csv", ethers.id("customers"));
  await workerpools.register(
    poolOwner.address,
    "test pool",
    scheduler.address,
    Number(WORKER_STAKE_RATIO),
    Number(SCHEDULER_REWARD_RATIO),
  );
  // The scheduler agrees to serve (and stake for) the pool: without it the pool's orders do not match.
  await workerpools.connect(scheduler).setSchedulerConsent(1, true);
  const { chainId } = await ethers.provider.getNetwork();
  return {
    hub,
    token,
    apps,
    datasets,
    workerpools,
    domain: domain(chainId, deployment.hub),
    owner,
    appOwner,
    datasetOwner,
    poolOwner,
    scheduler,
    requester,
    workers,
    other,
    appId: 1n,
    datasetId: 1n,
    workerpoolId: 1n,
  };
}

export function salt(): string {
  return hexlify(randomBytes(32));
}

export function appOrder(f: Fixture, o: Partial<AppOrder> = {}): AppOrder {
  return {
    app: f.appId,
    appprice: PRICES.app,
    volume: 100n,
    tag: ZeroHash,
    datasetrestrict: 0n,
    workerpoolrestrict: 0n,
    requesterrestrict: ZeroAddress,
    expiry: 0n,
    nonce: 0n,
    salt: salt(),
    ...o,
  };
}

export function datasetOrder(f: Fixture, o: Partial<DatasetOrder> = {}): DatasetOrder {
  return {
    dataset: f.datasetId,
    datasetprice: PRICES.dataset,
    volume: 100n,
    tag: ZeroHash,
    apprestrict: 0n,
    workerpoolrestrict: 0n,
    requesterrestrict: ZeroAddress,
    expiry: 0n,
    nonce: 0n,
    salt: salt(),
    ...o,
  };
}

export function workerpoolOrder(f: Fixture, o: Partial<WorkerpoolOrder> = {}): WorkerpoolOrder {
  return {
    workerpool: f.workerpoolId,
    workerpoolprice: PRICES.workerpool,
    volume: 100n,
    tag: ZeroHash,
    category: CATEGORY,
    trust: 32n,
    apprestrict: 0n,
    datasetrestrict: 0n,
    requesterrestrict: ZeroAddress,
    expiry: 0n,
    nonce: 0n,
    salt: salt(),
    ...o,
  };
}

export function requestOrder(f: Fixture, o: Partial<RequestOrder> = {}): RequestOrder {
  return {
    app: f.appId,
    appmaxprice: PRICES.app,
    dataset: f.datasetId,
    datasetmaxprice: PRICES.dataset,
    workerpool: 0n,
    workerpoolmaxprice: PRICES.workerpool,
    requester: f.requester.address,
    volume: 1n,
    tag: ZeroHash,
    category: CATEGORY,
    trust: 1n,
    beneficiary: f.requester.address,
    callback: ZeroAddress,
    params: '{"args":"hello"}',
    expiry: 0n,
    nonce: 0n,
    salt: salt(),
    ...o,
  };
}

export interface OrderSet {
  app: Signed<AppOrder>;
  dataset: Signed<DatasetOrder>;
  workerpool: Signed<WorkerpoolOrder>;
  request: Signed<RequestOrder>;
}

export interface OrderOverrides {
  app?: Partial<AppOrder>;
  dataset?: Partial<DatasetOrder>;
  workerpool?: Partial<WorkerpoolOrder>;
  request?: Partial<RequestOrder>;
  /** Signer of the request order (the requester by default). */
  requesterSigner?: HardhatEthersSigner;
}

/** Four compatible orders, each signed by its owner. */
export async function signedOrders(f: Fixture, o: OrderOverrides = {}): Promise<OrderSet> {
  return {
    app: await signOrder(f.appOwner, f.domain, "AppOrder", appOrder(f, o.app)),
    dataset: await signOrder(f.datasetOwner, f.domain, "DatasetOrder", datasetOrder(f, o.dataset)),
    workerpool: await signOrder(f.poolOwner, f.domain, "WorkerpoolOrder", workerpoolOrder(f, o.workerpool)),
    request: await signOrder(o.requesterSigner ?? f.requester, f.domain, "RequestOrder", requestOrder(f, o.request)),
  };
}

/** An order with an empty signature (for presigned orders). */
export function unsigned<T>(order: T): Signed<T> {
  return { ...order, sign: "0x" };
}

/** A signer the fixture never touched: it holds `tokens` (minted here unless 0) but never approved the hub. */
export async function newcomer(f: Fixture, index = 15, tokens = INITIAL_TOKENS): Promise<HardhatEthersSigner> {
  const signer = (await ethers.getSigners())[index];
  if (tokens > 0n) await f.token.mint(signer.address, tokens);
  return signer;
}
