/**
 * EIP-712 typed data of Concord: the domain, the four order types and the task-level messages.
 * Mirrors `contracts/libraries/OrderLib.sol` field for field; every daemon, test and CLI imports this module.
 */
import { AbiCoder, BaseWallet, Signature, TypedDataDomain, TypedDataEncoder, concat, hexlify, keccak256, solidityPackedKeccak256 } from "ethers";
import type { Signer } from "ethers";

export const DOMAIN_NAME = "Concord";
export const DOMAIN_VERSION = "1";

export function domain(chainId: bigint | number, verifyingContract: string): TypedDataDomain {
  return { name: DOMAIN_NAME, version: DOMAIN_VERSION, chainId, verifyingContract };
}

const common = [
  { name: "expiry", type: "uint256" },
  { name: "nonce", type: "uint256" },
  { name: "salt", type: "bytes32" },
];

export const ORDER_TYPES = {
  AppOrder: [
    { name: "app", type: "uint256" },
    { name: "appprice", type: "uint256" },
    { name: "volume", type: "uint256" },
    { name: "tag", type: "bytes32" },
    { name: "datasetrestrict", type: "uint256" },
    { name: "workerpoolrestrict", type: "uint256" },
    { name: "requesterrestrict", type: "address" },
    ...common,
  ],
  DatasetOrder: [
    { name: "dataset", type: "uint256" },
    { name: "datasetprice", type: "uint256" },
    { name: "volume", type: "uint256" },
    { name: "tag", type: "bytes32" },
    { name: "apprestrict", type: "uint256" },
    { name: "workerpoolrestrict", type: "uint256" },
    { name: "requesterrestrict", type: "address" },
    ...common,
  ],
  WorkerpoolOrder: [
    { name: "workerpool", type: "uint256" },
    { name: "workerpoolprice", type: "uint256" },
    { name: "volume", type: "uint256" },
    { name: "tag", type: "bytes32" },
    { name: "category", type: "uint256" },
    { name: "trust", type: "uint256" },
    { name: "apprestrict", type: "uint256" },
    { name: "datasetrestrict", type: "uint256" },
    { name: "requesterrestrict", type: "address" },
    ...common,
  ],
  RequestOrder: [
    { name: "app", type: "uint256" },
    { name: "appmaxprice", type: "uint256" },
    { name: "dataset", type: "uint256" },
    { name: "datasetmaxprice", type: "uint256" },
    { name: "workerpool", type: "uint256" },
    { name: "workerpoolmaxprice", type: "uint256" },
    { name: "requester", type: "address" },
    { name: "volume", type: "uint256" },
    { name: "tag", type: "bytes32" },
    { name: "category", type: "uint256" },
    { name: "trust", type: "uint256" },
    { name: "beneficiary", type: "address" },
    { name: "callback", type: "address" },
    { name: "params", type: "string" },
    ...common,
  ],
} as const;

export const MESSAGE_TYPES = {
  Authorization: [
    { name: "worker", type: "address" },
    { name: "taskId", type: "bytes32" },
  ],
  Contribution: [
    { name: "taskId", type: "bytes32" },
    { name: "resultHash", type: "bytes32" },
    { name: "resultSeal", type: "bytes32" },
  ],
  Reveal: [
    { name: "taskId", type: "bytes32" },
    { name: "resultDigest", type: "bytes32" },
  ],
} as const;

export type OrderKind = keyof typeof ORDER_TYPES;
export type MessageKind = keyof typeof MESSAGE_TYPES;

type Common = { expiry: bigint; nonce: bigint; salt: string };
export type AppOrder = Common & {
  app: bigint;
  appprice: bigint;
  volume: bigint;
  tag: string;
  datasetrestrict: bigint;
  workerpoolrestrict: bigint;
  requesterrestrict: string;
};
export type DatasetOrder = Common & {
  dataset: bigint;
  datasetprice: bigint;
  volume: bigint;
  tag: string;
  apprestrict: bigint;
  workerpoolrestrict: bigint;
  requesterrestrict: string;
};
export type WorkerpoolOrder = Common & {
  workerpool: bigint;
  workerpoolprice: bigint;
  volume: bigint;
  tag: string;
  category: bigint;
  trust: bigint;
  apprestrict: bigint;
  datasetrestrict: bigint;
  requesterrestrict: string;
};
export type RequestOrder = Common & {
  app: bigint;
  appmaxprice: bigint;
  dataset: bigint;
  datasetmaxprice: bigint;
  workerpool: bigint;
  workerpoolmaxprice: bigint;
  requester: string;
  volume: bigint;
  tag: string;
  category: bigint;
  trust: bigint;
  beneficiary: string;
  callback: string;
  params: string;
};
export type OrderOf<K extends OrderKind> = K extends "AppOrder"
  ? AppOrder
  : K extends "DatasetOrder"
    ? DatasetOrder
    : K extends "WorkerpoolOrder"
      ? WorkerpoolOrder
      : RequestOrder;
export type Signed<T> = T & { sign: string };

function single<K extends string>(types: Record<K, readonly { name: string; type: string }[]>, kind: K) {
  return { [kind]: types[kind].map((f) => ({ ...f })) } as Record<string, { name: string; type: string }[]>;
}

// The digests of ethers' TypedDataEncoder.hash, with what never changes computed once: the encoder of each type (its
// type hash) and the separator of each domain.
type TypeTable = Record<string, readonly { name: string; type: string }[]>;
const encoders = new Map<string, TypedDataEncoder>();
const separators = new Map<string, string>();

function encoderOf(table: TypeTable, kind: string): TypedDataEncoder {
  if (!Object.hasOwn(table, kind)) throw new TypeError(`unknown EIP-712 type ${JSON.stringify(kind)}`);
  let e = encoders.get(kind);
  if (!e) {
    e = TypedDataEncoder.from(single(table, kind));
    encoders.set(kind, e);
  }
  return e;
}

function separatorOf(d: TypedDataDomain): string {
  const { name, version, chainId, verifyingContract, salt } = d;
  const key = JSON.stringify([name ?? null, version ?? null, chainId == null ? null : String(chainId), verifyingContract ?? null, salt == null ? null : hexlify(salt)]);
  let s = separators.get(key);
  if (s === undefined) {
    s = TypedDataEncoder.hashDomain(d);
    if (separators.size >= 64) separators.clear(); // a process talks to one or two Hubs: this only bounds the map
    separators.set(key, s);
  }
  return s;
}

function typedHash(d: TypedDataDomain, table: TypeTable, kind: string, value: Record<string, unknown>): string {
  return keccak256(concat(["0x1901", separatorOf(d), encoderOf(table, kind).hash(value)]));
}

/**
 * Signs an EIP-712 message: a private-key wallet signs its digest at once (address fields must then be addresses, not
 * ENS names); any other signer (a JSON-RPC account) is asked through `eth_signTypedData_v4`.
 */
async function signTyped(signer: Signer, d: TypedDataDomain, table: TypeTable, kind: string, value: Record<string, unknown>): Promise<string> {
  if (signer instanceof BaseWallet) return signer.signingKey.sign(typedHash(d, table, kind, value)).serialized;
  return signer.signTypedData(d, single(table, kind), value);
}

/** The EIP-712 digest an order's signer signs (what `hashXOrder` returns on chain). */
export function hashOrder<K extends OrderKind>(d: TypedDataDomain, kind: K, order: OrderOf<K>): string {
  return typedHash(d, ORDER_TYPES, kind, order);
}

/** Signs an order with any ethers signer (private key wallet, JSON-RPC account). */
export async function signOrder<K extends OrderKind>(
  signer: Signer,
  d: TypedDataDomain,
  kind: K,
  order: OrderOf<K>,
): Promise<Signed<OrderOf<K>>> {
  const sign = await signTyped(signer, d, ORDER_TYPES, kind, order);
  return { ...order, sign };
}

/** Digest of a task-level message (authorization, relayed contribution or reveal). */
export function hashMessage(d: TypedDataDomain, kind: MessageKind, message: Record<string, unknown>): string {
  return typedHash(d, MESSAGE_TYPES, kind, message);
}

export async function signMessage(
  signer: Signer,
  d: TypedDataDomain,
  kind: MessageKind,
  message: Record<string, unknown>,
): Promise<string> {
  return Signature.from(await signTyped(signer, d, MESSAGE_TYPES, kind, message)).serialized;
}

/** taskId = keccak256(dealId ‖ index). */
export function taskId(dealId: string, index: bigint | number): string {
  return solidityPackedKeccak256(["bytes32", "uint256"], [dealId, index]);
}

/**
 * dealId = the low 152 bits of keccak256(abi.encode(requestOrderHash, consumed)), as a bytes32: `consumed` is the
 * request order's consumed volume before the match (0 for its first deal). Known before the match is mined, by the
 * requester and by the scheduler.
 */
export function dealId(requestOrderHash: string, consumed: bigint | number = 0n): string {
  const hash = keccak256(AbiCoder.defaultAbiCoder().encode(["bytes32", "uint256"], [requestOrderHash, consumed]));
  return `0x${"0".repeat(26)}${hash.slice(2 + 26)}`;
}

/** resultHash = keccak256(taskId ‖ resultDigest): equal for every worker that computed the same result. */
export function resultHash(task: string, resultDigest: string): string {
  return solidityPackedKeccak256(["bytes32", "bytes32"], [task, resultDigest]);
}

/** resultSeal = keccak256(worker ‖ taskId ‖ resultDigest): binds a commit to the worker, so it cannot be copied. */
export function resultSeal(worker: string, task: string, resultDigest: string): string {
  return solidityPackedKeccak256(["address", "bytes32", "bytes32"], [worker, task, resultDigest]);
}

/** The digest of callback data: the consensus is on keccak256 of the bytes delivered to the callback. */
export function callbackDigest(data: string | Uint8Array): string {
  return keccak256(data);
}
