/**
 * What the worker reads and writes on chain, behind a narrow interface: the daemon never needs more than this, and
 * tests (or a worker without a node) run without it.
 *
 * - `app` / `dataset`: the registered runtime and sha256 checksum, to cross-check what the scheduler sent. Apps and
 *   datasets are immutable once registered, so each id is read once per process.
 * - `escrow` / `ensureDeposit`: the worker's free escrow balance in the Clerk, which every contribution's stake is
 *   locked from, and a top-up at start (approve exactly what is missing, then deposit).
 *
 * The worker never sends contributions itself: the scheduler relays its signed ones (`contributeBatch`), so the
 * worker needs native gas only for the optional deposit.
 */
import { Contract, getAddress } from "ethers";
import type { BaseWallet, JsonRpcProvider } from "ethers";
import { rpcProvider } from "../../sdk/rpc";
import { Hub__factory } from "../../typechain-types/factories/contracts/Hub__factory";
import { AppRegistry__factory } from "../../typechain-types/factories/contracts/registries/AppRegistry__factory";
import { DatasetRegistry__factory } from "../../typechain-types/factories/contracts/registries/DatasetRegistry__factory";
import type { AppRegistry, DatasetRegistry, Hub } from "../../typechain-types";
import { WorkerError } from "../core/errors";

/** The contracts the worker talks to; registries are optional (without them, no registry cross-check). */
export interface WorkerDeployment {
  hub: string;
  appRegistry?: string;
  datasetRegistry?: string;
}

export interface RegisteredApp {
  runtime: string;
  /** 0x-prefixed lowercase sha256 */
  checksum: string;
}

export interface RegisteredDataset {
  name: string;
  checksum: string;
}

export interface Escrow {
  /** free balance: what new stakes are locked from */
  balance: bigint;
  frozen: bigint;
}

export interface DepositResult {
  /** 0 when the free balance was already enough */
  deposited: bigint;
  balance: bigint;
  txs: string[];
}

export interface WorkerChain {
  readonly chainId: number;
  readonly hub: string;
  /** the registered app, or undefined when this deployment names no app registry (no check possible) */
  app(id: bigint): Promise<RegisteredApp | undefined>;
  dataset(id: bigint): Promise<RegisteredDataset | undefined>;
  escrow(account: string): Promise<Escrow>;
  /** tops the signer's free escrow balance up to `target` (approve the missing allowance, then deposit) */
  ensureDeposit(target: bigint): Promise<DepositResult>;
  /** sends the worker's own `contribute` (commit mode "direct") and waits for it; resolves with the tx hash */
  contribute(c: { dealId: string; index: number; resultHash: string; resultSeal: string; authorization: string }): Promise<string>;
  close(): void;
}

export interface ChainConnectOptions {
  rpcUrl: string;
  deployment: WorkerDeployment;
  /** signs the deposit transactions (only those) */
  signer: BaseWallet;
  /** budget of the first request to the node */
  probeTimeoutMs?: number;
}

const ERC20_ABI = [
  "function balanceOf(address) view returns (uint256)",
  "function allowance(address owner, address spender) view returns (uint256)",
  "function approve(address spender, uint256 amount) returns (bool)",
];

/** The ethers implementation. */
export class EthersWorkerChain implements WorkerChain {
  private readonly hubContract: Hub;
  private readonly apps?: AppRegistry;
  private readonly datasets?: DatasetRegistry;
  private readonly appCache = new Map<bigint, Promise<RegisteredApp>>();
  private readonly datasetCache = new Map<bigint, Promise<RegisteredDataset>>();

  private constructor(
    readonly chainId: number,
    readonly hub: string,
    private readonly provider: JsonRpcProvider,
    private readonly signer: BaseWallet,
    deployment: WorkerDeployment,
  ) {
    this.hubContract = Hub__factory.connect(hub, signer);
    if (deployment.appRegistry) this.apps = AppRegistry__factory.connect(getAddress(deployment.appRegistry), provider);
    if (deployment.datasetRegistry) this.datasets = DatasetRegistry__factory.connect(getAddress(deployment.datasetRegistry), provider);
  }

  /**
   * Connects: one probe request (an unreachable node fails fast with one line instead of ethers' endless retries),
   * then a provider pinned to that chain id, and a check that the Hub has code there.
   */
  static async connect(opts: ChainConnectOptions): Promise<EthersWorkerChain> {
    const chainId = await probeChainId(opts.rpcUrl, opts.probeTimeoutMs ?? 10_000);
    const provider = rpcProvider(opts.rpcUrl, chainId);
    provider.pollingInterval = 500;
    let hub: string;
    try {
      hub = getAddress(opts.deployment.hub);
    } catch {
      provider.destroy();
      throw new WorkerError("INVALID_OPTIONS", `deployment.hub is not an address: ${String(opts.deployment.hub)}`);
    }
    const code = await provider.getCode(hub).catch((e: Error) => {
      provider.destroy();
      throw new WorkerError("CHAIN_ERROR", `cannot read the Hub at ${hub}: ${e.message}`, { cause: e });
    });
    if (code === "0x") {
      provider.destroy();
      throw new WorkerError("CHAIN_ERROR", `no contract at the Hub ${hub} on chain ${chainId} (stale deployment?)`);
    }
    return new EthersWorkerChain(Number(chainId), hub, provider, opts.signer.connect(provider), opts.deployment);
  }

  async contribute(c: { dealId: string; index: number; resultHash: string; resultSeal: string; authorization: string }): Promise<string> {
    const tx = await this.hubContract.contribute(c.dealId, c.index, c.resultHash, c.resultSeal, c.authorization);
    const receipt = await tx.wait();
    if (!receipt || receipt.status !== 1) throw new WorkerError("CHAIN_ERROR", `contribute ${tx.hash} failed`);
    return tx.hash;
  }

  app(id: bigint): Promise<RegisteredApp | undefined> {
    const registry = this.apps;
    if (!registry) return Promise.resolve(undefined);
    return cached(this.appCache, id, async () => {
      const a = await registry.app(id);
      return { runtime: a.runtime, checksum: a.checksum.toLowerCase() };
    });
  }

  dataset(id: bigint): Promise<RegisteredDataset | undefined> {
    const registry = this.datasets;
    if (!registry) return Promise.resolve(undefined);
    return cached(this.datasetCache, id, async () => {
      const d = await registry.dataset(id);
      return { name: d.name, checksum: d.checksum.toLowerCase() };
    });
  }

  async escrow(account: string): Promise<Escrow> {
    const [balance, frozen] = await this.hubContract.accountOf(account);
    return { balance, frozen };
  }

  async ensureDeposit(target: bigint): Promise<DepositResult> {
    const me = this.signer.address;
    const { balance } = await this.escrow(me);
    if (balance >= target) return { deposited: 0n, balance, txs: [] };
    const missing = target - balance;
    const token = new Contract(await this.hubContract.token(), ERC20_ABI, this.signer);
    const held = (await token.balanceOf(me)) as bigint;
    if (held < missing) {
      throw new WorkerError(
        "INSUFFICIENT_FUNDS",
        `cannot deposit ${missing} base units into escrow: the wallet ${me} holds only ${held}`,
      );
    }
    const txs: string[] = [];
    // Approve exactly what the deposit takes, never an unlimited allowance.
    if (((await token.allowance(me, this.hub)) as bigint) < missing) {
      const approve = await token.approve(this.hub, missing);
      await approve.wait();
      txs.push(approve.hash as string);
    }
    const deposit = await this.hubContract.deposit(missing);
    await deposit.wait();
    txs.push(deposit.hash);
    return { deposited: missing, balance: (await this.escrow(me)).balance, txs };
  }

  close(): void {
    this.provider.destroy();
  }
}

/** Caches a successful read; a failed one is retried next time. */
function cached<T>(cache: Map<bigint, Promise<T>>, id: bigint, read: () => Promise<T>): Promise<T> {
  let entry = cache.get(id);
  if (!entry) {
    entry = read();
    cache.set(id, entry);
    entry.catch(() => cache.delete(id));
  }
  return entry;
}

/** `eth_chainId` with a deadline. */
async function probeChainId(rpcUrl: string, timeoutMs: number): Promise<bigint> {
  let url: URL;
  try {
    url = new URL(rpcUrl);
  } catch {
    throw new WorkerError("INVALID_OPTIONS", `invalid RPC URL "${rpcUrl}" (expected http://host:port)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new WorkerError("INVALID_OPTIONS", `unsupported RPC URL "${rpcUrl}" (expected http:// or https://)`);
  }
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await response.json().catch(() => ({}))) as { result?: unknown };
    if (typeof body.result !== "string") throw new Error(`HTTP ${response.status}, no chain id in the answer`);
    return BigInt(body.result);
  } catch (e) {
    throw new WorkerError("CHAIN_ERROR", `cannot reach the RPC at ${rpcUrl}: ${(e as Error).message}`, { cause: e });
  }
}
