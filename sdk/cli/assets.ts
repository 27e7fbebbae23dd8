/**
 * What registering an app or a dataset has in common: the content's sha256 checksum (computed from the file, or
 * given), its URI (the file's own `file://` URL by default), and finding the new token id in the receipt.
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Interface, TransactionReceipt } from "ethers";
import { CliError } from "./errors";

export interface ContentOptions {
  file?: string;
  checksum?: string;
  uri?: string;
}

export interface Content {
  checksum: string;
  uri: string;
  /** The file read, when one was given. */
  bytes?: Buffer;
}

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

function readContent(path: string): Buffer {
  const absolute = resolve(path);
  try {
    if (!statSync(absolute).isFile()) throw new CliError("FILE", `--file ${path}: not a regular file`);
    return readFileSync(absolute);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as { code?: string }).code;
    throw new CliError("FILE", `--file ${path}: ${code === "ENOENT" ? "no such file" : (code ?? "unreadable")}`);
  }
}

/**
 * The checksum and URI to register. With `--file`, the checksum is the file's sha256 (a `--checksum` given too must
 * equal it: a mismatch means the wrong file or a stale checksum, and workers would refuse the content) and the URI
 * defaults to the file's `file://` URL. Without it, `--checksum` and `--uri` are both required.
 * @param optional when true (built-in runtimes), neither is required: checksum zero, empty URI.
 */
export function resolveContent(options: ContentOptions, optional = false): Content {
  if (options.checksum !== undefined && !BYTES32.test(options.checksum)) {
    throw new CliError("INVALID_INPUT", `--checksum: expected a sha256 as 0x + 64 hex digits, got "${options.checksum}"`);
  }
  if (options.file !== undefined) {
    const bytes = readContent(options.file);
    const checksum = `0x${createHash("sha256").update(bytes).digest("hex")}`;
    if (options.checksum !== undefined && options.checksum.toLowerCase() !== checksum) {
      throw new CliError("INVALID_INPUT", `checksum mismatch: --checksum ${options.checksum} but ${options.file} has sha256 ${checksum}`);
    }
    return { checksum, uri: options.uri ?? pathToFileURL(resolve(options.file)).href, bytes };
  }
  if (options.checksum !== undefined) {
    if (options.uri === undefined) throw new CliError("USAGE", "--uri <uri> is required with --checksum (or give --file)");
    return { checksum: options.checksum.toLowerCase(), uri: options.uri };
  }
  if (optional) return { checksum: `0x${"0".repeat(64)}`, uri: options.uri ?? "" };
  throw new CliError("USAGE", "give --file <path> (checksum computed) or --checksum <0x…> with --uri <uri>");
}

/** The `id` argument of the first `event` log in the receipt (the registered token id). */
export function registeredId(receipt: TransactionReceipt, iface: Interface, event: string): bigint {
  for (const log of receipt.logs) {
    try {
      const parsed = iface.parseLog(log);
      if (parsed?.name === event) return parsed.args.id as bigint;
    } catch {
      // another contract's event (the ERC-721 Transfer is in the same ABI, other logs are not)
    }
  }
  throw new CliError("INVALID_INPUT", `transaction ${receipt.hash} emitted no ${event} event`);
}
