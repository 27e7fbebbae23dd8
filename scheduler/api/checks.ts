/**
 * What the order book asks the chain before it accepts an order: the narrow `OrderChecks` interface (so the router is
 * tested with a fake) and its ethers implementation against the deployed Hub (which is the Clerk) and registries.
 *
 * The book refuses what the Clerk would refuse whatever the other orders are (unknown asset, wrong signer, expired,
 * revoked nonce, cancelled, consumed); the rest (prices, tags, restrictions, balances) depends on the other orders
 * and is left to `canMatch` at match time.
 */
import { Contract, getAddress, ZeroAddress } from "ethers";
import type { Provider } from "ethers";
import {
  AppRegistry__factory,
  DatasetRegistry__factory,
  Hub__factory,
  WorkerpoolRegistry__factory,
} from "../../typechain-types";

export type AssetKind = "app" | "dataset" | "workerpool";

/** `IClerk.orderState(hash)`. */
export interface OnChainOrderState {
  consumed: bigint;
  /** Someone presigned the order (the Clerk also requires the presigner to still be the order's signer). */
  presigned: boolean;
  cancelled: boolean;
}

export interface OrderChecks {
  /** The latest block's timestamp in seconds: expiry is judged by chain time, as the Clerk judges it. */
  now(): Promise<bigint>;
  /** The asset's owner (checksummed), or null when the id is not registered. */
  ownerOf(kind: AssetKind, id: bigint): Promise<string | null>;
  /** The signer's current order nonce: only orders carrying it match. */
  orderNonce(signer: string): Promise<bigint>;
  orderState(hash: string): Promise<OnChainOrderState>;
  /** EIP-1271: whether `signer` is a contract that accepts `signature` over `hash`. False for an EOA. */
  isValidContractSignature(signer: string, hash: string, signature: string): Promise<boolean>;
}

/** Addresses of the deployed contracts (a subset of `deploy/lib.ts` `Deployment`). */
export interface CheckAddresses {
  hub: string;
  appRegistry: string;
  datasetRegistry: string;
  workerpoolRegistry: string;
}

const EIP1271_MAGIC = "0x1626ba7e";
const EIP1271_ABI = ["function isValidSignature(bytes32 hash, bytes signature) view returns (bytes4)"];

/** `OrderChecks` over JSON-RPC: one view call per question, no caching (the chain state changes under us). */
export class EthersOrderChecks implements OrderChecks {
  private readonly hub;
  private readonly registries;

  constructor(
    private readonly provider: Provider,
    addresses: CheckAddresses,
  ) {
    this.hub = Hub__factory.connect(addresses.hub, provider);
    this.registries = {
      app: AppRegistry__factory.connect(addresses.appRegistry, provider),
      dataset: DatasetRegistry__factory.connect(addresses.datasetRegistry, provider),
      workerpool: WorkerpoolRegistry__factory.connect(addresses.workerpoolRegistry, provider),
    };
  }

  async now(): Promise<bigint> {
    const block = await this.provider.getBlock("latest");
    if (!block) throw new Error("the node returned no latest block");
    return BigInt(block.timestamp);
  }

  async ownerOf(kind: AssetKind, id: bigint): Promise<string | null> {
    const owner = await this.registries[kind].ownerOrZero(id);
    return owner === ZeroAddress ? null : getAddress(owner);
  }

  async orderNonce(signer: string): Promise<bigint> {
    return this.hub.orderNonce(signer);
  }

  async orderState(hash: string): Promise<OnChainOrderState> {
    const [consumed, presigned, cancelled] = await this.hub.orderState(hash);
    return { consumed, presigned, cancelled };
  }

  async isValidContractSignature(signer: string, hash: string, signature: string): Promise<boolean> {
    if ((await this.provider.getCode(signer)) === "0x") return false;
    const wallet = new Contract(signer, EIP1271_ABI, this.provider);
    try {
      return ((await wallet.isValidSignature(hash, signature)) as string).toLowerCase() === EIP1271_MAGIC;
    } catch {
      return false; // a reverting or non-conforming wallet refuses the signature, as SignatureChecker does
    }
  }
}
