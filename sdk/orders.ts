/**
 * Orders as JSON: strict zod schemas for the four order kinds (unsigned and signed), parsing with one-line errors that
 * name the field, a JSON form that round-trips (uint256 as decimal strings), builders with defaults, ECDSA signature
 * verification mirroring the Clerk, and the task-level messages a scheduler and its workers sign.
 *
 * The schemas are derived from `ORDER_TYPES` of `sdk/eip712.ts`, so they cannot drift from the EIP-712 types (and so
 * from `contracts/libraries/OrderLib.sol`).
 */
import { z } from "zod";
import { ZeroAddress, ZeroHash, getAddress, hexlify, randomBytes } from "ethers";
import { recoverSigner } from "./crypto";
import type { Signer, TypedDataDomain } from "ethers";
import {
  ORDER_TYPES,
  hashOrder,
  resultHash,
  resultSeal,
  signMessage,
  taskId as computeTaskId,
} from "./eip712";
import type {
  AppOrder,
  DatasetOrder,
  OrderKind,
  OrderOf,
  RequestOrder,
  Signed,
  WorkerpoolOrder,
} from "./eip712";

export const ORDER_KINDS = Object.keys(ORDER_TYPES) as OrderKind[];

export const MAX_UINT256 = (1n << 256n) - 1n;

// ------------------------------------------------------------------ errors

/** Why an order was refused. */
export type OrderErrorCode =
  | "INVALID_JSON" // the text is not JSON
  | "UNKNOWN_KIND" // not one of ORDER_KINDS
  | "NOT_AN_OBJECT" // the order is not a JSON object
  | "MISSING_FIELD"
  | "UNKNOWN_FIELD"
  | "INVALID_TYPE" // e.g. a boolean where an integer is expected
  | "INVALID_UINT" // a number or string that is not an unsigned integer (1.5, "0x10", "1e3")
  | "UNSAFE_NUMBER" // a JSON number above 2^53-1 (precision already lost): give it as a decimal string
  | "OUT_OF_RANGE" // negative, or above 2^256-1
  | "INVALID_ADDRESS" // not 0x + 40 hex, or mixed case with a bad EIP-55 checksum
  | "INVALID_BYTES32" // not 0x + 64 hex
  | "INVALID_BYTES"; // not 0x + an even number of hex digits

export interface OrderIssue {
  /** The field path, e.g. `RequestOrder.trust` (just the kind for problems of the whole order). */
  path: string;
  code: OrderErrorCode;
  /** The problem alone, e.g. `expected an unsigned integer, got true`. */
  problem: string;
}

/** Thrown by `parseOrder` and friends. `message` is one line: `<path>: <problem>` of the first issue. */
export class OrderValidationError extends Error {
  readonly code: OrderErrorCode;
  readonly path: string;
  constructor(
    readonly kind: string,
    readonly issues: OrderIssue[],
  ) {
    const [first] = issues;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? "s" : ""})` : "";
    super(`${first.path}: ${first.problem}${more}`);
    this.name = "OrderValidationError";
    this.code = first.code;
    this.path = first.path;
  }
}

/** A value as it may appear in a one-line message: short, no newlines. */
function show(value: unknown): string {
  let s: string;
  if (typeof value === "bigint") s = `${value}n`;
  else if (typeof value === "string") s = JSON.stringify(value);
  else if (value === undefined) s = "undefined";
  else if (typeof value === "number") s = String(value);
  else if (Array.isArray(value)) s = "an array";
  else if (value === null) s = "null";
  else if (typeof value === "object") s = "an object";
  else s = typeof value === "boolean" ? String(value) : `a ${typeof value}`;
  return s.length > 48 ? `${s.slice(0, 45)}...` : s;
}

type Ctx = z.RefinementCtx;

function fail(ctx: Ctx, code: OrderErrorCode, problem: string): typeof z.NEVER {
  ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem, params: { orderCode: code } });
  return z.NEVER;
}

/** A field of any type: refuses a missing field with MISSING_FIELD, then checks the value. */
function field<T>(check: (value: unknown, ctx: Ctx) => T) {
  return z.unknown().transform((value, ctx): T => {
    if (value === undefined) return fail(ctx, "MISSING_FIELD", "missing field");
    return check(value, ctx);
  });
}

// ------------------------------------------------------------------ field schemas

const DECIMAL = /^[0-9]+$/;
const NEGATIVE_DECIMAL = /^-[0-9]+$/;

/** uint256: a decimal string, a safe integer or a bigint, in [0, 2^256-1]. Output: bigint. */
export const uint256 = field((value, ctx): bigint => {
  let n: bigint;
  if (typeof value === "bigint") {
    n = value;
  } else if (typeof value === "number") {
    if (!Number.isInteger(value)) return fail(ctx, "INVALID_UINT", `expected an unsigned integer, got ${show(value)}`);
    if (value < 0) return fail(ctx, "OUT_OF_RANGE", `expected an unsigned integer, got negative ${show(value)}`);
    if (!Number.isSafeInteger(value))
      return fail(ctx, "UNSAFE_NUMBER", `number ${show(value)} is above 2^53-1; give it as a decimal string`);
    n = BigInt(value);
  } else if (typeof value === "string") {
    if (NEGATIVE_DECIMAL.test(value))
      return fail(ctx, "OUT_OF_RANGE", `expected an unsigned integer, got negative ${show(value)}`);
    if (!DECIMAL.test(value))
      return fail(ctx, "INVALID_UINT", `expected an unsigned integer as a decimal string, got ${show(value)}`);
    n = BigInt(value);
  } else {
    return fail(
      ctx,
      "INVALID_TYPE",
      `expected an unsigned integer (decimal string, safe integer or bigint), got ${show(value)}`,
    );
  }
  if (n < 0n) return fail(ctx, "OUT_OF_RANGE", `expected an unsigned integer, got negative ${show(value)}`);
  if (n > MAX_UINT256) return fail(ctx, "OUT_OF_RANGE", `${show(value)} exceeds 2^256-1`);
  return n;
});

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** address: 0x + 40 hex, all lowercase or EIP-55 checksummed. Output: the checksummed address. */
export const address = field((value, ctx): string => {
  if (typeof value !== "string") return fail(ctx, "INVALID_TYPE", `expected an address string, got ${show(value)}`);
  if (!ADDRESS.test(value)) return fail(ctx, "INVALID_ADDRESS", `expected an address (0x + 40 hex), got ${show(value)}`);
  const checksummed = getAddress(value.toLowerCase());
  if (value !== value.toLowerCase() && value !== checksummed)
    return fail(ctx, "INVALID_ADDRESS", `bad EIP-55 checksum in ${show(value)} (expected ${checksummed} or all lowercase)`);
  return checksummed;
});

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

/** bytes32: 0x + 64 hex. Output: lowercase hex. */
export const bytes32 = field((value, ctx): string => {
  if (typeof value !== "string") return fail(ctx, "INVALID_TYPE", `expected a bytes32 hex string, got ${show(value)}`);
  if (!BYTES32.test(value)) return fail(ctx, "INVALID_BYTES32", `expected bytes32 (0x + 64 hex), got ${show(value)}`);
  return value.toLowerCase();
});

const BYTES = /^0x(?:[0-9a-fA-F]{2})*$/;

/** bytes: 0x + an even number of hex digits ("0x" is the empty signature of a presigned order). Output: lowercase. */
export const hexBytes = field((value, ctx): string => {
  if (typeof value !== "string") return fail(ctx, "INVALID_TYPE", `expected a hex bytes string, got ${show(value)}`);
  if (!BYTES.test(value))
    return fail(ctx, "INVALID_BYTES", `expected hex bytes (0x + an even number of hex digits), got ${show(value)}`);
  return value.toLowerCase();
});

/** string (the request's `params`): any string. */
export const string = field((value, ctx): string => {
  if (typeof value !== "string") return fail(ctx, "INVALID_TYPE", `expected a string, got ${show(value)}`);
  return value;
});

const FIELD = { uint256, address, bytes32, string } as const;
type SolidityType = keyof typeof FIELD;

// ------------------------------------------------------------------ order schemas

type Fields<K extends OrderKind> = (typeof ORDER_TYPES)[K][number];
/** `expiry`, `nonce` and `salt` are spread into ORDER_TYPES from an untyped-literal array: named here. */
type CommonShape = { expiry: typeof uint256; nonce: typeof uint256; salt: typeof bytes32 };
type Shape<K extends OrderKind> = {
  [F in Fields<K> as string extends F["name"] ? never : F["name"]]: (typeof FIELD)[F["type"] & SolidityType];
} & CommonShape;
type SignedShape<K extends OrderKind> = Shape<K> & { sign: typeof hexBytes };

function shapeOf<K extends OrderKind>(kind: K): Shape<K> {
  const shape: Record<string, z.ZodTypeAny> = {};
  for (const f of ORDER_TYPES[kind]) shape[f.name] = FIELD[f.type as SolidityType];
  return shape as Shape<K>;
}

function signedShapeOf<K extends OrderKind>(kind: K): SignedShape<K> {
  return { ...shapeOf(kind), sign: hexBytes };
}

export const AppOrderSchema = z.object(shapeOf("AppOrder")).strict();
export const DatasetOrderSchema = z.object(shapeOf("DatasetOrder")).strict();
export const WorkerpoolOrderSchema = z.object(shapeOf("WorkerpoolOrder")).strict();
export const RequestOrderSchema = z.object(shapeOf("RequestOrder")).strict();

export const SignedAppOrderSchema = z.object(signedShapeOf("AppOrder")).strict();
export const SignedDatasetOrderSchema = z.object(signedShapeOf("DatasetOrder")).strict();
export const SignedWorkerpoolOrderSchema = z.object(signedShapeOf("WorkerpoolOrder")).strict();
export const SignedRequestOrderSchema = z.object(signedShapeOf("RequestOrder")).strict();

/** The unsigned schema of each kind (a `sign` key is refused). */
export const ORDER_SCHEMAS = {
  AppOrder: AppOrderSchema,
  DatasetOrder: DatasetOrderSchema,
  WorkerpoolOrder: WorkerpoolOrderSchema,
  RequestOrder: RequestOrderSchema,
} as const;

/** The signed schema of each kind (`sign` required). */
export const SIGNED_ORDER_SCHEMAS = {
  AppOrder: SignedAppOrderSchema,
  DatasetOrder: SignedDatasetOrderSchema,
  WorkerpoolOrder: SignedWorkerpoolOrderSchema,
  RequestOrder: SignedRequestOrderSchema,
} as const;

/** Either form: `sign` optional (absent from the output when absent from the input). */
const ANY_ORDER_SCHEMAS = {
  AppOrder: AppOrderSchema.extend({ sign: hexBytes.optional() }),
  DatasetOrder: DatasetOrderSchema.extend({ sign: hexBytes.optional() }),
  WorkerpoolOrder: WorkerpoolOrderSchema.extend({ sign: hexBytes.optional() }),
  RequestOrder: RequestOrderSchema.extend({ sign: hexBytes.optional() }),
} as const;

// The schemas' outputs are exactly the SDK's order types (checked at compile time, both ways).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemasMatchTypes: [
  Same<z.output<typeof AppOrderSchema>, AppOrder>,
  Same<z.output<typeof DatasetOrderSchema>, DatasetOrder>,
  Same<z.output<typeof WorkerpoolOrderSchema>, WorkerpoolOrder>,
  Same<z.output<typeof RequestOrderSchema>, RequestOrder>,
  Same<z.output<typeof SignedRequestOrderSchema>, Signed<RequestOrder>>,
] = [true, true, true, true, true];
void schemasMatchTypes;

/** An order that may carry a signature. */
export type MaybeSigned<T> = T & { sign?: string };

/** The schemas by kind, typed by kind (checked assignments, no casts). */
type SchemaOf<T> = z.ZodType<T, z.ZodTypeDef, unknown>;
const BY_KIND: {
  any: { [K in OrderKind]: SchemaOf<MaybeSigned<OrderOf<K>>> };
  signed: { [K in OrderKind]: SchemaOf<Signed<OrderOf<K>>> };
  unsigned: { [K in OrderKind]: SchemaOf<OrderOf<K>> };
} = { any: ANY_ORDER_SCHEMAS, signed: SIGNED_ORDER_SCHEMAS, unsigned: ORDER_SCHEMAS };

// ------------------------------------------------------------------ parsing

function issuesOf(kind: string, error: z.ZodError): OrderIssue[] {
  const issues: OrderIssue[] = [];
  for (const issue of error.issues) {
    const path = [kind, ...issue.path.map(String)].join(".");
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      for (const key of issue.keys) issues.push({ path: `${kind}.${key}`, code: "UNKNOWN_FIELD", problem: "unknown field" });
    } else if (issue.code === z.ZodIssueCode.custom) {
      const code = (issue.params?.orderCode as OrderErrorCode | undefined) ?? "INVALID_TYPE";
      issues.push({ path, code, problem: issue.message });
    } else {
      issues.push({ path, code: "INVALID_TYPE", problem: issue.message.split("\n")[0] });
    }
  }
  return issues;
}

function checkKind(kind: unknown): asserts kind is OrderKind {
  if (typeof kind !== "string" || !(ORDER_KINDS as string[]).includes(kind)) {
    const problem = `unknown order kind ${show(kind)} (expected one of ${ORDER_KINDS.join(", ")})`;
    throw new OrderValidationError(String(kind), [{ path: "order", code: "UNKNOWN_KIND", problem }]);
  }
}

function run<T>(kind: OrderKind, schema: z.ZodType<T, z.ZodTypeDef, unknown>, json: unknown): T {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new OrderValidationError(kind, [
      { path: kind, code: "NOT_AN_OBJECT", problem: `expected a JSON object, got ${show(json)}` },
    ]);
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new OrderValidationError(kind, issuesOf(kind, result.error));
  return result.data;
}

/**
 * Validates an order of `kind` (a JSON value or a JS object with bigints) and returns it typed, with bigints,
 * checksummed addresses and lowercase hex. `sign` is optional: kept when present.
 * @throws OrderValidationError
 */
export function parseOrder<K extends OrderKind>(kind: K, json: unknown): MaybeSigned<OrderOf<K>> {
  checkKind(kind);
  return run(kind, BY_KIND.any[kind], json);
}

/** Like `parseOrder`, but `sign` is required. @throws OrderValidationError */
export function parseSignedOrder<K extends OrderKind>(kind: K, json: unknown): Signed<OrderOf<K>> {
  checkKind(kind);
  return run(kind, BY_KIND.signed[kind], json);
}

/** Like `parseOrder`, but refuses a `sign` field. @throws OrderValidationError */
export function parseUnsignedOrder<K extends OrderKind>(kind: K, json: unknown): OrderOf<K> {
  checkKind(kind);
  return run(kind, BY_KIND.unsigned[kind], json);
}

function parseJsonText(kind: string, text: unknown): unknown {
  if (typeof text !== "string") {
    throw new OrderValidationError(kind, [
      { path: kind, code: "INVALID_JSON", problem: `expected JSON text, got ${show(text)}` },
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, " ").trim();
    throw new OrderValidationError(kind, [{ path: kind, code: "INVALID_JSON", problem: `invalid JSON: ${reason}` }]);
  }
}

/** `parseOrder` of raw JSON text. @throws OrderValidationError (INVALID_JSON when the text does not parse) */
export function parseOrderJson<K extends OrderKind>(kind: K, text: string): MaybeSigned<OrderOf<K>> {
  checkKind(kind);
  return parseOrder(kind, parseJsonText(kind, text));
}

/** `parseSignedOrder` of raw JSON text. @throws OrderValidationError */
export function parseSignedOrderJson<K extends OrderKind>(kind: K, text: string): Signed<OrderOf<K>> {
  checkKind(kind);
  return parseSignedOrder(kind, parseJsonText(kind, text));
}

/** Whether an order carries a `sign` field. */
export function isSigned<T extends object>(order: T): order is T & { sign: string } {
  return typeof (order as { sign?: unknown }).sign === "string";
}

// ------------------------------------------------------------------ JSON form

/** An order's JSON form: every bigint (uint256) as a decimal string. */
export type OrderJson<T> = { [P in keyof T]: T[P] extends bigint ? string : T[P] };

/** The JSON form of an order (signed or not): uint256 as decimal strings, the rest unchanged, fields in order. */
export function orderToJson<T extends object>(order: T): OrderJson<T> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(order)) out[key] = typeof value === "bigint" ? value.toString(10) : value;
  return out as OrderJson<T>;
}

// ------------------------------------------------------------------ builders

/** What the builders accept for a uint256 (validated like JSON input). */
export type UintLike = bigint | number | string;
type Loose<T> = { [P in keyof T]: T[P] extends bigint ? UintLike : T[P] };
type Build<T, Required extends keyof T> = Pick<Loose<T>, Required> & Partial<Loose<T>>;

/** A fresh random salt (32 bytes), so two otherwise equal orders have different hashes. */
export function randomSalt(): string {
  return hexlify(randomBytes(32));
}

const COMMON_DEFAULTS = () => ({ expiry: 0n, nonce: 0n, salt: randomSalt() });

/**
 * An app order: `app` and `appprice` required; defaults volume 1, zero tag, zero restricts (anyone), expiry 0
 * (none), nonce 0, a random salt. @throws OrderValidationError
 */
export function buildAppOrder(o: Build<AppOrder, "app" | "appprice">): AppOrder {
  return parseUnsignedOrder("AppOrder", {
    volume: 1n,
    tag: ZeroHash,
    datasetrestrict: 0n,
    workerpoolrestrict: 0n,
    requesterrestrict: ZeroAddress,
    ...COMMON_DEFAULTS(),
    ...o,
  });
}

/** A dataset order: `dataset` and `datasetprice` required; defaults as `buildAppOrder`. */
export function buildDatasetOrder(o: Build<DatasetOrder, "dataset" | "datasetprice">): DatasetOrder {
  return parseUnsignedOrder("DatasetOrder", {
    volume: 1n,
    tag: ZeroHash,
    apprestrict: 0n,
    workerpoolrestrict: 0n,
    requesterrestrict: ZeroAddress,
    ...COMMON_DEFAULTS(),
    ...o,
  });
}

/**
 * A workerpool order: `workerpool`, `workerpoolprice` and `category` required; defaults trust 0 (one worker) and as
 * `buildAppOrder`.
 */
export function buildWorkerpoolOrder(
  o: Build<WorkerpoolOrder, "workerpool" | "workerpoolprice" | "category">,
): WorkerpoolOrder {
  return parseUnsignedOrder("WorkerpoolOrder", {
    volume: 1n,
    tag: ZeroHash,
    trust: 0n,
    apprestrict: 0n,
    datasetrestrict: 0n,
    requesterrestrict: ZeroAddress,
    ...COMMON_DEFAULTS(),
    ...o,
  });
}

/**
 * A request order: `app`, `appmaxprice`, `workerpoolmaxprice`, `category` and `requester` required; defaults no
 * dataset (dataset and its max price 0), any workerpool (0), volume 1, zero tag, trust 0 (one worker), the requester
 * as beneficiary, no callback, empty params, expiry 0, nonce 0, a random salt.
 */
export function buildRequestOrder(
  o: Build<RequestOrder, "app" | "appmaxprice" | "workerpoolmaxprice" | "category" | "requester">,
): RequestOrder {
  return parseUnsignedOrder("RequestOrder", {
    dataset: 0n,
    datasetmaxprice: 0n,
    workerpool: 0n,
    volume: 1n,
    tag: ZeroHash,
    trust: 0n,
    beneficiary: o.requester,
    callback: ZeroAddress,
    params: "",
    ...COMMON_DEFAULTS(),
    ...o,
  });
}

/** The dataset order passed when a request names no dataset: the Clerk ignores it, but the struct must be there. */
export const EMPTY_DATASET_ORDER: Signed<DatasetOrder> = Object.freeze({
  dataset: 0n,
  datasetprice: 0n,
  volume: 0n,
  tag: ZeroHash,
  apprestrict: 0n,
  workerpoolrestrict: 0n,
  requesterrestrict: ZeroAddress,
  expiry: 0n,
  nonce: 0n,
  salt: ZeroHash,
  sign: "0x",
});

// ------------------------------------------------------------------ signature verification

/** secp256k1 n/2: ECDSA signatures with a larger s are malleable and refused on chain (OpenZeppelin ECDSA). */
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

/**
 * The address whose ECDSA signature `order.sign` is over the order's EIP-712 digest, or null when the signature is
 * not one the Clerk's ECDSA path accepts (not 65 bytes, v not 27/28, high s, unrecoverable).
 */
export function recoverOrderSigner<K extends OrderKind>(
  d: TypedDataDomain,
  kind: K,
  order: Signed<OrderOf<K>>,
): string | null {
  const sign = order.sign;
  if (typeof sign !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(sign)) return null;
  const s = BigInt(`0x${sign.slice(66, 130)}`);
  const v = parseInt(sign.slice(130, 132), 16);
  if (s > HALF_N || (v !== 27 && v !== 28)) return null;
  try {
    return recoverSigner(hashOrder(d, kind, order), sign);
  } catch {
    return null;
  }
}

/**
 * Whether `order.sign` is `expectedSigner`'s ECDSA signature of the order (as the Clerk checks it for an EOA).
 * EIP-1271 contract signatures and presigned orders (`sign` "0x") need the chain: they are reported false here.
 */
export function verifyOrderSignature<K extends OrderKind>(
  d: TypedDataDomain,
  kind: K,
  order: Signed<OrderOf<K>>,
  expectedSigner: string,
): boolean {
  const recovered = recoverOrderSigner(d, kind, order);
  if (recovered === null) return false;
  try {
    return recovered === getAddress(expectedSigner);
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ task-level messages

/** `IHub.RelayedContribution`, ready for `contributeBatch`. */
export interface RelayedContribution {
  dealId: string;
  index: bigint;
  worker: string;
  resultHash: string;
  resultSeal: string;
  signature: string;
}

/** `IHub.RelayedReveal`, ready for `revealBatch`. */
export interface RelayedReveal {
  taskId: string;
  worker: string;
  resultDigest: string;
  signature: string;
}

/** A worker's commitment to a result digest: the `resultHash` shared by agreeing workers and its own `resultSeal`. */
export function commitment(worker: string, task: string, resultDigest: string) {
  return { resultHash: resultHash(task, resultDigest), resultSeal: resultSeal(getAddress(worker), task, resultDigest) };
}

/** The scheduler's EIP-712 `Authorization(worker, taskId)`: the last argument of `contribute`. */
export function authorizationSignature(
  scheduler: Signer,
  d: TypedDataDomain,
  worker: string,
  task: string,
): Promise<string> {
  return signMessage(scheduler, d, "Authorization", { worker: getAddress(worker), taskId: task });
}

/** A worker's contribution to task `index` of `dealId`, signed by the worker, for the scheduler to relay. */
export async function relayedContribution(
  worker: Signer,
  d: TypedDataDomain,
  dealId: string,
  index: bigint | number,
  resultDigest: string,
): Promise<RelayedContribution> {
  const address = getAddress(await worker.getAddress());
  const task = computeTaskId(dealId, index);
  const c = commitment(address, task, resultDigest);
  const signature = await signMessage(worker, d, "Contribution", { taskId: task, ...c });
  return { dealId, index: BigInt(index), worker: address, ...c, signature };
}

/** A worker's reveal of `resultDigest` for `task`, signed by the worker, for the scheduler to relay. */
export async function relayedReveal(
  worker: Signer,
  d: TypedDataDomain,
  task: string,
  resultDigest: string,
): Promise<RelayedReveal> {
  const address = getAddress(await worker.getAddress());
  const signature = await signMessage(worker, d, "Reveal", { taskId: task, resultDigest });
  return { taskId: task, worker: address, resultDigest, signature };
}
