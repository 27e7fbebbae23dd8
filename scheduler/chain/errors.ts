/**
 * Chain errors for the scheduler: one `ChainError` class with a `code`, and the classification the sender's retry
 * policy rests on. A revert is decided by the contract and is never retried; network hiccups and nonce races are
 * transient and are. Custom errors are decoded with every Concord ABI (Hub = Clerk + Hub, the registries), so a
 * caller branches on `error.revert?.name`, never on message text.
 */
import { AbiCoder, ErrorFragment, Interface, isCallException, isError } from "ethers";
import {
  AppRegistry__factory,
  DatasetRegistry__factory,
  Hub__factory,
  WorkerpoolRegistry__factory,
} from "../../typechain-types";

export type ChainErrorCode =
  | "REVERTED" // the contract refused: `revert` names the custom error (when the node returned its data)
  | "NETWORK" // the node could not be reached (or answered 5xx / timed out) after every retry
  | "NONCE" // nonce conflicts persisted after every resync
  | "INSUFFICIENT_FUNDS" // the key cannot pay for gas
  | "TIMEOUT" // the transaction was not confirmed in time
  | "ABORTED" // the caller's AbortSignal fired
  | "BAD_RESPONSE" // the chain answered something the client cannot make sense of (e.g. a missing event)
  | "INVALID_ARGUMENT" // the caller passed something that cannot be encoded (e.g. a malformed bytes32)
  | "UNKNOWN";

/** A decoded custom error (or `Error(string)` / `Panic(uint256)`). */
export interface DecodedRevert {
  /** e.g. `HubRevealsPending` */
  name: string;
  /** e.g. `HubRevealsPending(bytes32,uint256,uint256)` */
  signature: string;
  /** Positional arguments as ethers decodes them (bigint for integers, checksummed addresses, lowercase hex). */
  args: unknown[];
  /** The same arguments by parameter name (empty names are left out). */
  named: Record<string, unknown>;
  /** The raw revert data. */
  data: string;
}

export class ChainError extends Error {
  override readonly name = "ChainError";
  constructor(
    readonly code: ChainErrorCode,
    message: string,
    readonly details: { action?: string; revert?: DecodedRevert; txHash?: string; cause?: unknown } = {},
  ) {
    super(message.replace(/\s+/g, " ").trim(), { cause: details.cause });
  }

  /** The decoded revert, when `code` is REVERTED and the node gave the data. */
  get revert(): DecodedRevert | undefined {
    return this.details.revert;
  }

  get action(): string | undefined {
    return this.details.action;
  }
}

// ------------------------------------------------------------------ revert decoding

/** Every error fragment of the Concord contracts, once per selector. */
function concordErrors(): Interface {
  const seen = new Map<string, ErrorFragment>();
  for (const abi of [
    Hub__factory.abi,
    AppRegistry__factory.abi,
    DatasetRegistry__factory.abi,
    WorkerpoolRegistry__factory.abi,
  ]) {
    for (const fragment of new Interface(abi).fragments) {
      if (fragment instanceof ErrorFragment && !seen.has(fragment.selector)) seen.set(fragment.selector, fragment);
    }
  }
  return new Interface([...seen.values()]);
}

const ERRORS = concordErrors();

/** Decodes revert data with the Concord ABIs; null for empty or unknown data. */
export function decodeRevertData(data: string | null | undefined): DecodedRevert | null {
  if (!data || data === "0x" || data.length < 10) return null;
  try {
    const parsed = ERRORS.parseError(data);
    if (parsed) {
      const named: Record<string, unknown> = {};
      parsed.fragment.inputs.forEach((input, i) => {
        if (input.name) named[input.name] = parsed.args[i];
      });
      return { name: parsed.name, signature: parsed.signature, args: [...parsed.args], named, data };
    }
  } catch {
    // fall through to the built-in errors
  }
  const builtin = AbiCoder.getBuiltinCallException("call", {}, data);
  if (builtin.revert) {
    const { name, signature, args } = builtin.revert;
    return { name, signature, args: [...args], named: {}, data };
  }
  return null;
}

/** The revert data carried by an ethers error, wherever the provider put it. */
function revertDataOf(e: unknown): string | null {
  const seen = new Set<unknown>();
  const visit = (x: unknown, depth: number): string | null => {
    if (x === null || typeof x !== "object" || seen.has(x) || depth > 6) return null;
    seen.add(x);
    const o = x as Record<string, unknown>;
    if (typeof o.data === "string" && /^0x[0-9a-fA-F]*$/.test(o.data) && o.data.length >= 10) return o.data;
    for (const key of ["error", "info", "cause", "data"]) {
      const found = visit(o[key], depth + 1);
      if (found) return found;
    }
    return null;
  };
  return visit(e, 0);
}

/** Whether an error is the contract refusing (a revert), as opposed to the transport failing. */
export function isRevert(e: unknown): boolean {
  if (isCallException(e)) return true;
  // Some nodes (Hardhat among them) answer eth_sendRawTransaction of a reverting transaction with an error
  // carrying the revert data rather than a CALL_EXCEPTION.
  return isError(e, "UNKNOWN_ERROR") && /revert/i.test(messageOf(e)) && revertDataOf(e) !== null;
}

/** A ChainError REVERTED from an ethers error (or a failed receipt), with the custom error decoded. */
export function revertError(action: string, e: unknown, txHash?: string): ChainError {
  const revert = decodeRevertData(revertDataOf(e)) ?? undefined;
  const what = revert ? `${revert.name}(${revert.args.map(showArg).join(", ")})` : "without a reason";
  return new ChainError("REVERTED", `${action} reverted: ${what}`, { action, revert, txHash, cause: e });
}

function showArg(x: unknown): string {
  if (typeof x === "bigint") return x.toString();
  if (typeof x === "string") return x;
  return String(x);
}

// ------------------------------------------------------------------ transient errors

const TRANSIENT_NODE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

function codesOf(e: unknown): string[] {
  const codes: string[] = [];
  let x: unknown = e;
  for (let depth = 0; depth < 5 && x && typeof x === "object"; depth++) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    x = (x as { cause?: unknown; error?: unknown }).cause ?? (x as { error?: unknown }).error;
  }
  return codes;
}

/** How the sender must react to an error. */
export type ErrorClass = "revert" | "nonce" | "transient" | "funds" | "fatal";

export function classifyError(e: unknown): ErrorClass {
  if (e instanceof ChainError) return e.code === "REVERTED" ? "revert" : "fatal";
  if (isRevert(e)) return "revert";
  if (isError(e, "NONCE_EXPIRED") || isError(e, "REPLACEMENT_UNDERPRICED") || isError(e, "TRANSACTION_REPLACED")) {
    return "nonce";
  }
  if (isError(e, "INSUFFICIENT_FUNDS")) return "funds";
  if (isError(e, "NETWORK_ERROR") || isError(e, "TIMEOUT") || isError(e, "SERVER_ERROR")) return "transient";
  if (codesOf(e).some((c) => TRANSIENT_NODE_CODES.has(c))) return "transient";
  const message = messageOf(e);
  if (/nonce/i.test(message) && /too (low|high)|already (been )?used|expired/i.test(message)) return "nonce";
  if (/replacement transaction underpriced|already known|known transaction/i.test(message)) return "nonce";
  if (/socket hang up|network|timeout|rate limit|too many requests/i.test(message)) return "transient";
  return "fatal";
}

/** A ChainError for a non-revert failure (after retries, when `class` says so). */
export function failureError(action: string, e: unknown): ChainError {
  if (e instanceof ChainError) return e;
  const kind = classifyError(e);
  const first = messageOf(e).split("\n")[0];
  if (kind === "revert") return revertError(action, e);
  if (isError(e, "INVALID_ARGUMENT"))
    return new ChainError("INVALID_ARGUMENT", `${action}: ${first}`, { action, cause: e });
  if (kind === "funds")
    return new ChainError("INSUFFICIENT_FUNDS", `${action}: insufficient funds for gas`, { action, cause: e });
  if (kind === "nonce")
    return new ChainError("NONCE", `${action}: nonce conflict persisted: ${first}`, { action, cause: e });
  if (kind === "transient")
    return new ChainError("NETWORK", `${action}: node unreachable: ${first}`, { action, cause: e });
  return new ChainError("UNKNOWN", `${action}: ${first}`, { action, cause: e });
}

// ------------------------------------------------------------------ backoff

/** Sleeps `ms`, or rejects with ChainError ABORTED when `signal` fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError());
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export function abortedError(action = "operation"): ChainError {
  return new ChainError("ABORTED", `${action} aborted`, { action });
}

/** Exponential backoff with full jitter: attempt 1 waits up to `base`, doubling, capped at `max`. */
export function backoffDelay(attempt: number, base: number, max: number): number {
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.floor(ceiling / 2 + (Math.random() * ceiling) / 2);
}

export interface RetryPolicy {
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
}

/**
 * Runs `fn`, retrying transient failures with backoff. Reverts and other definitive errors are thrown at once, as
 * ChainError.
 */
export async function withRetry<T>(
  action: string,
  policy: RetryPolicy,
  fn: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw abortedError(action);
    try {
      return await fn();
    } catch (e) {
      const kind = classifyError(e);
      if (kind === "revert") throw e instanceof ChainError ? e : revertError(action, e);
      if (kind !== "transient" || attempt >= policy.maxAttempts) throw failureError(action, e);
      await sleep(backoffDelay(attempt, policy.backoffMs, policy.maxBackoffMs), signal);
    }
  }
}
