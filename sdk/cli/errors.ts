/**
 * Errors of the `concord` command line and their one-line rendering. Every failure a user can cause (bad input,
 * missing key, unreachable node, a contract revert) ends as one `concord: <message>` line on stderr, never a stack:
 * `describeError` is the single place that turns any thrown value into that line.
 */
import { ErrorDescription, Interface, isError } from "ethers";
import type { JsonFragment } from "ethers";
import { OrderValidationError } from "../orders";
import { ParamsError } from "../params";
import { Hub__factory } from "../../typechain-types/factories/contracts/Hub__factory";
import { AppRegistry__factory } from "../../typechain-types/factories/contracts/registries/AppRegistry__factory";
import { DatasetRegistry__factory } from "../../typechain-types/factories/contracts/registries/DatasetRegistry__factory";
import { WorkerpoolRegistry__factory } from "../../typechain-types/factories/contracts/registries/WorkerpoolRegistry__factory";
import { ConcordTestToken__factory } from "../../typechain-types/factories/contracts/token/ConcordTestToken__factory";

export type CliErrorCode =
  | "USAGE" // bad flags or arguments (exit code 2)
  | "MISSING_KEY"
  | "INVALID_KEY"
  | "INVALID_ADDRESS"
  | "INVALID_AMOUNT"
  | "INVALID_INPUT" // any other malformed value (checksum, ratio, expiry, file content)
  | "FILE" // a file that cannot be read or written
  | "RPC_UNREACHABLE"
  | "DEPLOYMENT" // no usable deployments file, or no contract at its addresses
  | "INSUFFICIENT_BALANCE"
  | "NOT_OWNER" // the key does not control the asset or order it acts for
  | "INVALID_SIGNATURE"
  | "ORDER_UNUSABLE" // expired, cancelled, consumed or nonce-revoked order
  | "BOOK"; // the order book refused the order or cannot be reached

/** An expected failure with a one-line message (no stack is ever shown for it). */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    readonly code: CliErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Exit code of a failed command: 2 for usage errors (like commander's), 1 otherwise. */
export function exitCodeOf(error: unknown): number {
  return error instanceof CliError && error.code === "USAGE" ? 2 : 1;
}

/**
 * Every custom error any Concord contract (or the test token) can revert with. A transaction's revert data comes from
 * whichever contract failed, possibly one the CLI did not call directly (the token inside `deposit`), so decoding
 * uses all of them rather than the called contract's ABI alone.
 */
let allErrors: Interface | undefined;
function errorInterface(): Interface {
  if (!allErrors) {
    const abis = [Hub__factory, AppRegistry__factory, DatasetRegistry__factory, WorkerpoolRegistry__factory, ConcordTestToken__factory];
    const seen = new Set<string>();
    const fragments: JsonFragment[] = [];
    for (const factory of abis) {
      for (const fragment of factory.abi) {
        if (fragment.type !== "error") continue;
        const signature = `${fragment.name}(${fragment.inputs.map((i) => i.type).join(",")})`;
        if (seen.has(signature)) continue;
        seen.add(signature);
        fragments.push(fragment);
      }
    }
    allErrors = new Interface(fragments);
  }
  return allErrors;
}

/** `ClerkNotOrderSigner(orderHash=0x…, signer=0x…, caller=0x…)`. */
function formatRevert(revert: ErrorDescription): string {
  const args = revert.fragment.inputs.map((input, i) => {
    const value = revert.args[i];
    const shown = typeof value === "bigint" ? value.toString(10) : String(value);
    return input.name ? `${input.name}=${shown}` : shown;
  });
  return `${revert.name}(${args.join(", ")})`;
}

function decodeRevert(data: unknown): string | undefined {
  if (typeof data !== "string" || data.length < 10) return undefined;
  try {
    const parsed = errorInterface().parseError(data);
    return parsed ? formatRevert(parsed) : undefined;
  } catch {
    return undefined;
  }
}

/** The first line of a message, without trailing punctuation noise. */
function firstLine(text: string): string {
  return text.split("\n")[0].trim();
}

/** The system error code (ECONNREFUSED, ENOTFOUND, …) somewhere in an error's cause chain. */
export function systemCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 6 && e && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length) {
      const inner = systemCode(errors[0]);
      if (inner) return inner;
    }
    e = (e as { cause?: unknown }).cause ?? (e as { error?: unknown }).error;
  }
  return undefined;
}

/** A short human phrase for a network failure. */
export function networkProblem(error: unknown): string {
  const code = systemCode(error);
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "ECONNRESET":
      return "connection reset";
    case "ETIMEDOUT":
      return "connection timed out";
    case undefined:
      break;
    default:
      return code;
  }
  if (isError(error, "TIMEOUT")) return "no answer in time";
  return error instanceof Error ? firstLine(error.message) : String(error);
}

/** The one line shown for any error (without the `concord: ` prefix). */
export function describeError(error: unknown): string {
  if (error instanceof CliError) return error.message;
  if (error instanceof OrderValidationError) return `invalid order: ${error.message}`;
  if (error instanceof ParamsError) return `invalid ${error.message}`;
  if (isError(error, "CALL_EXCEPTION")) {
    const decoded = (error.revert && `${error.revert.name}(${error.revert.args.map(String).join(", ")})`) || undefined;
    const named = decodeRevert(error.data) ?? decoded;
    if (named) return `transaction reverted: ${named}`;
    return `transaction reverted${error.reason ? `: ${error.reason}` : " (no reason given)"}`;
  }
  if (isError(error, "INSUFFICIENT_FUNDS")) return "insufficient native balance to pay for gas";
  if (isError(error, "NONCE_EXPIRED")) return "transaction nonce already used (another transaction from this key?)";
  if (systemCode(error)) return `RPC request failed: ${networkProblem(error)}`;
  const short = (error as { shortMessage?: unknown }).shortMessage;
  if (typeof short === "string" && short) return firstLine(short);
  if (error instanceof Error) return firstLine(error.message) || error.name;
  return String(error);
}
