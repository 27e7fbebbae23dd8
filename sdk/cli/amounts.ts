/**
 * Token amounts as people type them (`10`, `2.5` CCT) and as the chain stores them (base units, "wei"). The CLI
 * takes token units by default and base units with `--wei`, and always prints both forms' exact values.
 */
import { formatUnits } from "ethers";
import { CliError } from "./errors";

export interface TokenInfo {
  address: string;
  symbol: string;
  decimals: number;
}

const DECIMAL_AMOUNT = /^(\d+)(?:\.(\d+))?$/;

/**
 * Parses an amount: token units with up to `decimals` fractional digits, or an integer of base units when `wei`.
 * @param what names the value in the error message (`amount`, `--price`).
 */
export function parseAmount(text: string, token: Pick<TokenInfo, "symbol" | "decimals">, wei: boolean, what = "amount"): bigint {
  const trimmed = text.trim();
  if (wei) {
    if (!/^\d+$/.test(trimmed)) throw new CliError("INVALID_AMOUNT", `${what}: expected an integer number of base units (--wei), got "${text}"`);
    return BigInt(trimmed);
  }
  const match = DECIMAL_AMOUNT.exec(trimmed);
  if (!match) {
    throw new CliError("INVALID_AMOUNT", `${what}: expected an amount of ${token.symbol} such as 10 or 2.5, got "${text}"`);
  }
  const [, whole, fraction = ""] = match;
  const significant = fraction.replace(/0+$/, "");
  if (significant.length > token.decimals) {
    throw new CliError("INVALID_AMOUNT", `${what}: ${token.symbol} has only ${token.decimals} decimals, got "${text}"`);
  }
  return BigInt(whole) * 10n ** BigInt(token.decimals) + BigInt(significant.padEnd(token.decimals, "0") || "0");
}

/** `12.5 CCT`. */
export function formatAmount(value: bigint, token: Pick<TokenInfo, "symbol" | "decimals">): string {
  let text = formatUnits(value, token.decimals);
  if (text.endsWith(".0")) text = text.slice(0, -2);
  return `${text} ${token.symbol}`;
}
