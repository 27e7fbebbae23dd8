/**
 * Admission of a published order: `parseSubmission` validates the body `concord order publish` sends
 * (`{kind, order}`, optionally `chainId` and `hub` to catch an order meant for another deployment) without I/O;
 * `verifyOnChain` then asks the chain (through `OrderChecks`) what the Clerk would refuse whatever the other orders
 * are. Both throw `ApiError` with a one-line reason: 400 for malformed input, 422 for an order that is well formed
 * but unusable, 503 when the chain cannot be asked.
 */
import { getAddress } from "ethers";
import type { TypedDataDomain } from "ethers";
import { hashOrder } from "../../sdk/eip712";
import type { OrderKind, OrderOf, RequestOrder, Signed } from "../../sdk/eip712";
import { ORDER_KINDS, OrderValidationError, parseSignedOrder, recoverOrderSigner } from "../../sdk/orders";
import { ParamsError, parseParams } from "../../sdk/params";
import { ApiError } from "./errors";
import type { AssetKind, OrderChecks } from "./checks";

/** A well-formed submission: the order typed by its kind, and its EIP-712 hash for this deployment. */
export interface Submission<K extends OrderKind = OrderKind> {
  kind: K;
  order: Signed<OrderOf<K>>;
  hash: string;
}

/** What the chain said about an accepted order. */
export interface Admitted<K extends OrderKind = OrderKind> extends Submission<K> {
  /** The address whose signature the Clerk checks: the asset's owner, or the requester. */
  signer: string;
  /** volume - consumed on chain. */
  remaining: bigint;
}

export interface AdmissionContext {
  /** The Hub's EIP-712 domain (`sdk/eip712.ts` `domain(chainId, hub)`). */
  domain: TypedDataDomain;
  /** When set, orders that can never match with this pool are refused (WRONG_WORKERPOOL). */
  workerpool?: bigint;
}

const ENVELOPE_FIELDS = ["kind", "order", "chainId", "hub"];

/** `app`, `AppOrder`, `apporder`… → `AppOrder`. */
export function normaliseKind(value: unknown): OrderKind | null {
  if (typeof value !== "string") return null;
  const short = value.trim().toLowerCase().replace(/order$/, "");
  return ORDER_KINDS.find((k) => k.toLowerCase() === `${short}order`) ?? null;
}

const KIND_HINT = `expected ${ORDER_KINDS.join(", ")}, or app, dataset, workerpool, request`;

const ASSET: Record<Exclude<OrderKind, "RequestOrder">, { asset: AssetKind; field: string }> = {
  AppOrder: { asset: "app", field: "app" },
  DatasetOrder: { asset: "dataset", field: "dataset" },
  WorkerpoolOrder: { asset: "workerpool", field: "workerpool" },
};

function bad(code: string, message: string): ApiError {
  return new ApiError(400, code, message);
}

function unusable(code: string, message: string): ApiError {
  return new ApiError(422, code, message);
}

/** Validates the body without I/O. @throws ApiError 400 (malformed) or 422 (another chain, another pool) */
export function parseSubmission(body: unknown, ctx: AdmissionContext): Submission {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw bad("INVALID_BODY", 'expected a JSON object {"kind": …, "order": {…}}');
  }
  const envelope = body as Record<string, unknown>;
  const unknown = Object.keys(envelope).find((key) => !ENVELOPE_FIELDS.includes(key));
  if (unknown !== undefined) throw bad("UNKNOWN_FIELD", `${unknown}: unknown field (expected kind and order)`);
  if (envelope.kind === undefined) throw bad("MISSING_FIELD", `kind: missing field (${KIND_HINT})`);
  const kind = normaliseKind(envelope.kind);
  if (kind === null) throw bad("UNKNOWN_KIND", `kind: unknown order kind ${JSON.stringify(envelope.kind)?.slice(0, 60)} (${KIND_HINT})`);
  if (envelope.order === undefined) throw bad("MISSING_FIELD", "order: missing field (the signed order)");
  checkDeployment(envelope, ctx.domain);

  let order: Signed<OrderOf<OrderKind>>;
  try {
    order = parseSignedOrder(kind, envelope.order);
  } catch (error) {
    if (error instanceof OrderValidationError) throw bad(error.code, error.message);
    throw error;
  }
  if (order.volume === 0n) throw bad("INVALID_VOLUME", `${kind}.volume: must be at least 1`);
  if (kind === "RequestOrder") {
    try {
      parseParams((order as RequestOrder).params);
    } catch (error) {
      if (error instanceof ParamsError) throw bad("INVALID_PARAMS", `RequestOrder.${error.message}`);
      throw error;
    }
  }
  if (ctx.workerpool !== undefined) checkWorkerpool(kind, order, ctx.workerpool);
  return { kind, order, hash: hashOrder(ctx.domain, kind, order) };
}

/** The optional `chainId` / `hub` of the body must be this scheduler's. */
function checkDeployment(envelope: Record<string, unknown>, domain: TypedDataDomain): void {
  if (envelope.chainId !== undefined) {
    const given = envelope.chainId;
    const valid = (typeof given === "number" && Number.isSafeInteger(given)) || (typeof given === "string" && /^[0-9]+$/.test(given));
    if (!valid) throw bad("INVALID_TYPE", `chainId: expected a chain id (integer), got ${JSON.stringify(given)?.slice(0, 40)}`);
    if (BigInt(given as number | string) !== BigInt(domain.chainId as bigint)) {
      throw unusable("WRONG_CHAIN", `the order is for chain ${given}, this scheduler serves chain ${domain.chainId}`);
    }
  }
  if (envelope.hub !== undefined) {
    let hub: string;
    try {
      hub = getAddress(String(envelope.hub));
    } catch {
      throw bad("INVALID_ADDRESS", `hub: expected an address, got ${JSON.stringify(envelope.hub)?.slice(0, 60)}`);
    }
    if (hub !== getAddress(domain.verifyingContract as string)) {
      throw unusable("WRONG_CHAIN", `the order is for the Hub ${hub}, this scheduler serves the Hub ${domain.verifyingContract}`);
    }
  }
}

/** Orders that can never be matched with this scheduler's pool are refused rather than kept forever. */
function checkWorkerpool(kind: OrderKind, order: Signed<OrderOf<OrderKind>>, pool: bigint): void {
  const o = order as Record<string, unknown>;
  const [field, value] =
    kind === "WorkerpoolOrder" || kind === "RequestOrder" ? ["workerpool", o.workerpool] : ["workerpoolrestrict", o.workerpoolrestrict];
  if (value !== 0n && value !== pool) {
    throw unusable("WRONG_WORKERPOOL", `${kind}.${field} is ${value}: this scheduler serves workerpool ${pool} only`);
  }
  if (kind === "WorkerpoolOrder" && value === 0n) {
    throw unusable("WRONG_WORKERPOOL", `WorkerpoolOrder.workerpool is 0: this scheduler serves workerpool ${pool} only`);
  }
}

/** Runs a chain question; a failure to ask is a 503, never a refusal of the order. */
async function ask<T>(what: string, question: () => Promise<T>): Promise<T> {
  try {
    return await question();
  } catch (error) {
    const reason = error instanceof Error ? (error as { shortMessage?: string }).shortMessage ?? error.message : String(error);
    throw new ApiError(503, "CHAIN_UNAVAILABLE", `cannot check the order on chain (${what}): ${reason}`);
  }
}

function isoTime(seconds: bigint): string {
  const ms = Number(seconds) * 1000;
  return Number.isFinite(ms) && ms < 8.64e15 ? new Date(ms).toISOString() : `${seconds}s`;
}

/**
 * Checks an order against the chain as the Clerk will: the asset exists, the signature is its owner's (ECDSA, an
 * EIP-1271 wallet, or a presign), it has not expired by chain time, its nonce is current, it is neither cancelled nor
 * fully consumed. @throws ApiError 422 (unusable) or 503 (chain unreachable)
 */
export async function verifyOnChain<K extends OrderKind>(sub: Submission<K>, ctx: AdmissionContext & { checks: OrderChecks }): Promise<Admitted<K>> {
  const { kind, order, hash } = sub;
  const { checks } = ctx;
  // independent reads go out together (each is a round trip to the node); a refusal before one of them is awaited
  // must not leave it as an unhandled rejection
  const nowRead = ask("latest block", () => checks.now());
  const stateRead = ask("order state", () => checks.orderState(hash));
  // a request's signer is its requester: its nonce is read in the same round (an asset's owner must be read first)
  const requester = kind === "RequestOrder" ? (order as Signed<RequestOrder>).requester : null;
  const requesterNonce = requester === null ? null : ask("order nonce", () => checks.orderNonce(requester));
  for (const read of [nowRead, stateRead, requesterNonce]) read?.catch(() => undefined);
  const now = await nowRead;
  if (order.expiry !== 0n && now >= order.expiry) {
    throw unusable("EXPIRED", `the order expired at ${isoTime(order.expiry)} (chain time ${isoTime(now)})`);
  }

  let signer: string;
  let role: string;
  if (requester !== null) {
    signer = requester;
    role = "the requester";
  } else {
    const { asset, field } = ASSET[kind as Exclude<OrderKind, "RequestOrder">];
    const id = (order as Record<string, unknown>)[field] as bigint;
    const owner = await ask(`owner of ${asset} ${id}`, () => checks.ownerOf(asset, id));
    if (owner === null) throw unusable("UNKNOWN_ASSET", `${asset} ${id} is not registered`);
    signer = owner;
    role = `${asset} ${id}'s owner`;
  }

  const [nonce, state] = await Promise.all([requesterNonce ?? ask("order nonce", () => checks.orderNonce(signer)), stateRead]);
  await checkSignature(sub, signer, role, state.presigned, ctx);
  if (order.nonce !== nonce) {
    throw unusable("NONCE_REVOKED", `the order carries nonce ${order.nonce} but ${signer}'s order nonce is ${nonce} (revoked)`);
  }
  if (state.cancelled) throw unusable("CANCELLED", `order ${hash} is cancelled on chain`);
  if (state.consumed >= order.volume) {
    throw unusable("CONSUMED", `order ${hash} is fully consumed (${state.consumed}/${order.volume})`);
  }
  return { ...sub, signer, remaining: order.volume - state.consumed };
}

async function checkSignature(
  sub: Submission,
  signer: string,
  role: string,
  presigned: boolean,
  ctx: AdmissionContext & { checks: OrderChecks },
): Promise<void> {
  const { kind, order, hash } = sub;
  if (order.sign === "0x") {
    if (presigned) return;
    throw unusable("INVALID_SIGNATURE", `the order has no signature and is not presigned on chain`);
  }
  const recovered = recoverOrderSigner(ctx.domain, kind, order);
  if (recovered === signer) return;
  if (await ask("EIP-1271 signature", () => ctx.checks.isValidContractSignature(signer, hash, order.sign))) return;
  if (recovered === null) {
    throw unusable("INVALID_SIGNATURE", "invalid signature: not a 65-byte low-s ECDSA signature, and no EIP-1271 wallet accepts it");
  }
  const hint = `(or it was signed for another chain or Hub than chain ${ctx.domain.chainId}, Hub ${ctx.domain.verifyingContract})`;
  if (kind === "RequestOrder") {
    throw unusable("INVALID_SIGNATURE", `invalid signature: signed by ${recovered}, not by the requester ${signer} ${hint}`);
  }
  throw unusable("NOT_OWNER", `signed by ${recovered}, but ${role} is ${signer} ${hint}`);
}
