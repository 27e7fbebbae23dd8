/**
 * How the task state's values are written to SQLite: ids (bytes32) as lower-case 0x-hex, addresses checksummed
 * (EIP-55, via ethers, which also validates them), uint256 amounts as decimal TEXT (SQLite integers stop at 2^63),
 * times as INTEGER (`*_at`: ms since the epoch; chain times and deadlines: unix seconds), details as JSON.
 */
import { getAddress } from "ethers";
import { StoreError } from "./errors";

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const HEX = /^0x([0-9a-fA-F]{2})*$/;

export function bytes32(name: string, v: string): string {
  if (typeof v !== "string" || !BYTES32.test(v)) throw new StoreError("INVALID_RECORD", `${name} must be a 0x-prefixed bytes32, got ${String(v).slice(0, 80)}`);
  return v.toLowerCase();
}

export function optionalBytes32(name: string, v: string | null | undefined): string | null {
  return v === null || v === undefined ? null : bytes32(name, v);
}

export function hexData(name: string, v: string): string {
  if (typeof v !== "string" || !HEX.test(v)) throw new StoreError("INVALID_RECORD", `${name} must be 0x-hex bytes`);
  return v.toLowerCase();
}

export function address(name: string, v: string): string {
  try {
    return getAddress(v);
  } catch {
    throw new StoreError("INVALID_RECORD", `${name} is not an address: ${String(v).slice(0, 80)}`);
  }
}

export function uint(name: string, v: bigint): string {
  if (typeof v !== "bigint" || v < 0n) throw new StoreError("INVALID_RECORD", `${name} must be a bigint >= 0, got ${String(v)}`);
  return v.toString();
}

export function int(name: string, v: number, min = 0): number {
  if (!Number.isSafeInteger(v) || v < min) throw new StoreError("INVALID_RECORD", `${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

export function text(name: string, v: string, max = 1_000_000): string {
  if (typeof v !== "string" || v.length > max) throw new StoreError("INVALID_RECORD", `${name} must be a string of at most ${max} characters`);
  return v;
}

/** JSON that survives bigints (as decimal strings). */
export function json(value: unknown): string {
  return JSON.stringify(value ?? {}, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
}

export const now = () => Date.now();
