/**
 * What every command needs, resolved lazily from the global options: the node (checked reachable before use), the
 * signer from the key, the deployment and its contracts, the EIP-712 domain, and output that honours `--json`.
 * Nothing touches the network until a command asks for it, so `--help` and flag errors stay instant and offline.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { getAddress, isAddress, type Wallet } from "ethers";
import { fastWallet } from "../crypto";
import type { ContractTransactionResponse, JsonRpcProvider, TransactionReceipt, TypedDataDomain } from "ethers";
import { domain as orderDomain } from "../eip712";
import { rpcProvider } from "../rpc";
import { DEPLOYMENTS_DIR, deploymentPath } from "../../deploy/deployments";
import type { Deployment } from "../../deploy/lib";
import { Hub__factory } from "../../typechain-types/factories/contracts/Hub__factory";
import { AppRegistry__factory } from "../../typechain-types/factories/contracts/registries/AppRegistry__factory";
import { DatasetRegistry__factory } from "../../typechain-types/factories/contracts/registries/DatasetRegistry__factory";
import { WorkerpoolRegistry__factory } from "../../typechain-types/factories/contracts/registries/WorkerpoolRegistry__factory";
import { ConcordTestToken__factory } from "../../typechain-types/factories/contracts/token/ConcordTestToken__factory";
import type { AppRegistry, ConcordTestToken, DatasetRegistry, Hub, WorkerpoolRegistry } from "../../typechain-types";
import { CliError, networkProblem } from "./errors";
import { postJson } from "./http";
import type { TokenInfo } from "./amounts";

export const DEFAULT_RPC_URL = "http://127.0.0.1:8545";
/** How long the first request to the node may take before the node is declared unreachable. */
const RPC_PROBE_TIMEOUT_MS = 10_000;

/** Where output goes and where defaults come from: the process's by default, captured ones in tests. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
}

export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

/** The global options as commander parsed them (environment fallbacks applied by `CliContext`). */
export interface GlobalOptions {
  rpc?: string;
  key?: string;
  deployments?: string;
  json?: boolean;
}

/** A JSON-ready value: bigints become decimal strings (uint256 convention of the order JSON). */
function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString(10) : value;
}

const PRIVATE_KEY = /^(0x)?[0-9a-fA-F]{64}$/;

/** Validates a user-supplied address; `what` names it in the error (`--scheduler`, `address`). */
export function parseAddress(text: string, what: string): string {
  if (!/^0x[0-9a-fA-F]{40}$/.test(text)) {
    throw new CliError("INVALID_ADDRESS", `${what}: not an address (0x + 40 hex digits): "${text}"`);
  }
  if (!isAddress(text)) {
    throw new CliError("INVALID_ADDRESS", `${what}: bad EIP-55 checksum in "${text}" (use the checksummed form or all lowercase)`);
  }
  return getAddress(text);
}

export class CliContext {
  readonly json: boolean;
  readonly rpcUrl: string;
  private providerPromise?: Promise<JsonRpcProvider>;
  private deploymentPromise?: Promise<Deployment>;
  private tokenInfoPromise?: Promise<TokenInfo>;
  private wallet?: Wallet;

  constructor(
    private readonly options: GlobalOptions,
    readonly io: CliIo,
  ) {
    this.json = options.json === true;
    this.rpcUrl = options.rpc ?? io.env.CONCORD_RPC_URL ?? DEFAULT_RPC_URL;
  }

  // ---------------------------------------------------------------- chain

  /**
   * The node, after one probe request: an unreachable URL fails fast with one line instead of ethers' endless
   * "failed to detect network" retries. The chain id is then pinned (static network): no further detection calls.
   */
  provider(): Promise<JsonRpcProvider> {
    this.providerPromise ??= this.connect();
    return this.providerPromise;
  }

  private async connect(): Promise<JsonRpcProvider> {
    let url: URL;
    try {
      url = new URL(this.rpcUrl);
    } catch {
      throw new CliError("RPC_UNREACHABLE", `invalid RPC URL "${this.rpcUrl}" (expected http://host:port)`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new CliError("RPC_UNREACHABLE", `unsupported RPC URL "${this.rpcUrl}" (expected http:// or https://)`);
    }
    let chainId: bigint;
    try {
      const reply = await postJson(url.href, { jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }, RPC_PROBE_TIMEOUT_MS);
      let result: unknown;
      try {
        result = (JSON.parse(reply.text) as { result?: unknown }).result;
      } catch {
        result = undefined;
      }
      if (typeof result !== "string") throw new Error(`HTTP ${reply.status}, no chain id in the answer (not a JSON-RPC node?)`);
      chainId = BigInt(result);
    } catch (error) {
      throw new CliError("RPC_UNREACHABLE", `cannot reach the RPC at ${this.rpcUrl}: ${networkProblem(error)}`);
    }
    const provider = rpcProvider(url.href, chainId);
    provider.pollingInterval = 500;
    return provider;
  }

  async chainId(): Promise<bigint> {
    const provider = await this.provider();
    return (await provider.getNetwork()).chainId;
  }

  /** The key's address, without touching the network. */
  address(): string {
    return this.keyWallet().address;
  }

  /** Whether a key was given (flag or environment). */
  hasKey(): boolean {
    return Boolean(this.options.key ?? this.io.env.CONCORD_KEY);
  }

  private keyWallet(): Wallet {
    if (this.wallet) return this.wallet;
    const key = this.options.key ?? this.io.env.CONCORD_KEY;
    if (!key) throw new CliError("MISSING_KEY", "this command signs: give --key <hex> or set CONCORD_KEY");
    // The key itself never appears in a message: only what is wrong with its shape.
    if (!PRIVATE_KEY.test(key.trim())) {
      throw new CliError("INVALID_KEY", "invalid key (--key or CONCORD_KEY): expected a private key of 64 hex digits");
    }
    try {
      this.wallet = fastWallet(key.trim().startsWith("0x") ? key.trim() : `0x${key.trim()}`);
    } catch {
      throw new CliError("INVALID_KEY", "invalid key (--key or CONCORD_KEY): not a valid secp256k1 private key");
    }
    return this.wallet;
  }

  /** The key's wallet, connected to the node. */
  async signer(): Promise<Wallet> {
    const wallet = this.keyWallet();
    return wallet.provider ? wallet : (this.wallet = wallet.connect(await this.provider()));
  }

  /**
   * The deployment: `--deployments <file>`, else `<CONCORD_DEPLOYMENTS_DIR or deployments/>/<chainId>.json`. Checked
   * against the node: same chain id, and code at the Hub (a restarted local chain leaves a stale file behind).
   */
  deployment(): Promise<Deployment> {
    this.deploymentPromise ??= this.loadDeployment();
    return this.deploymentPromise;
  }

  private async loadDeployment(): Promise<Deployment> {
    const chainId = await this.chainId();
    const path = this.options.deployments
      ? resolve(this.options.deployments)
      : deploymentPath(chainId, this.io.env.CONCORD_DEPLOYMENTS_DIR ?? DEPLOYMENTS_DIR);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      const hint = this.options.deployments ? "" : " (deploy first, e.g. npm start, or pass --deployments <file>)";
      throw new CliError("DEPLOYMENT", `no deployments file for chain ${chainId} at ${path}${hint}`);
    }
    let parsed: Partial<Deployment>;
    try {
      parsed = JSON.parse(text) as Partial<Deployment>;
    } catch {
      throw new CliError("DEPLOYMENT", `deployments file ${path} is not valid JSON`);
    }
    for (const key of ["hub", "token", "appRegistry", "datasetRegistry", "workerpoolRegistry"] as const) {
      if (typeof parsed[key] !== "string" || !isAddress(parsed[key])) {
        throw new CliError("DEPLOYMENT", `deployments file ${path} has no valid "${key}" address`);
      }
    }
    if (parsed.chainId !== undefined && BigInt(parsed.chainId) !== chainId) {
      throw new CliError("DEPLOYMENT", `deployments file ${path} is for chain ${parsed.chainId}, but the RPC serves chain ${chainId}`);
    }
    const deployment = parsed as Deployment;
    const provider = await this.provider();
    if ((await provider.getCode(deployment.hub)) === "0x") {
      throw new CliError("DEPLOYMENT", `no contract at the Hub ${deployment.hub} on chain ${chainId}: ${path} is stale (redeploy)`);
    }
    return deployment;
  }

  /** The Hub (which is also the Clerk), connected to the signer when a key is given, else read-only. */
  async hub(): Promise<Hub> {
    return Hub__factory.connect((await this.deployment()).hub, await this.runner());
  }

  async token(): Promise<ConcordTestToken> {
    return ConcordTestToken__factory.connect((await this.deployment()).token, await this.runner());
  }

  async apps(): Promise<AppRegistry> {
    return AppRegistry__factory.connect((await this.deployment()).appRegistry, await this.runner());
  }

  async datasets(): Promise<DatasetRegistry> {
    return DatasetRegistry__factory.connect((await this.deployment()).datasetRegistry, await this.runner());
  }

  async workerpools(): Promise<WorkerpoolRegistry> {
    return WorkerpoolRegistry__factory.connect((await this.deployment()).workerpoolRegistry, await this.runner());
  }

  private async runner() {
    return this.hasKey() ? this.signer() : this.provider();
  }

  /** The escrow token's symbol and decimals, read once. */
  tokenInfo(): Promise<TokenInfo> {
    this.tokenInfoPromise ??= (async () => {
      const token = await this.token();
      const [symbol, decimals] = await Promise.all([token.symbol(), token.decimals()]);
      return { address: await token.getAddress(), symbol, decimals: Number(decimals) };
    })();
    return this.tokenInfoPromise;
  }

  /** The Clerk's EIP-712 domain: what every order is signed for. */
  async domain(): Promise<TypedDataDomain> {
    return orderDomain(await this.chainId(), (await this.deployment()).clerk ?? (await this.deployment()).hub);
  }

  /** Waits for a sent transaction and refuses a failed receipt (a revert that slipped past gas estimation). */
  async confirm(sent: Promise<ContractTransactionResponse>): Promise<TransactionReceipt> {
    const tx = await sent;
    const receipt = await tx.wait();
    if (!receipt) throw new CliError("INVALID_INPUT", `transaction ${tx.hash} was dropped`);
    return receipt;
  }

  /** Stops the provider's timers so the process (or an in-process test) ends promptly. */
  close(): void {
    if (this.providerPromise) void this.providerPromise.then((p) => p.destroy(), () => undefined);
  }

  // ---------------------------------------------------------------- output

  /**
   * Prints a command's result: with `--json` one JSON object on one line (bigints as decimal strings), otherwise the
   * human lines.
   */
  print(result: Record<string, unknown>, human: () => string | string[]): void {
    if (this.json) {
      this.io.stdout(`${JSON.stringify(result, jsonReplacer)}\n`);
    } else {
      const lines = human();
      this.io.stdout(`${Array.isArray(lines) ? lines.join("\n") : lines}\n`);
    }
  }
}

/** JSON text with bigints as decimal strings. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, jsonReplacer, indent);
}
