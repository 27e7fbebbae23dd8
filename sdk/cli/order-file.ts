/**
 * Order files: what `concord order sign` writes and `publish` / `cancel` / `hash` read. A file holds either the bare
 * order (the SDK's JSON form, `parseSignedOrderJson`-ready) or the envelope `{kind, order}` that `--json` and the
 * order book use. A bare order's kind is recognised by its price field, which each kind names differently.
 */
import { readFileSync } from "node:fs";
import { OrderValidationError, parseOrder, parseSignedOrder } from "../orders";
import type { MaybeSigned } from "../orders";
import type { OrderKind, OrderOf, Signed } from "../eip712";
import { CliError } from "./errors";

/** The kinds as the command line names them. */
export const KIND_NAMES = { app: "AppOrder", dataset: "DatasetOrder", workerpool: "WorkerpoolOrder", request: "RequestOrder" } as const;
export type KindName = keyof typeof KIND_NAMES;

/** The field only one kind has: how a bare order's kind is recognised. */
const DISTINCTIVE: [string, OrderKind][] = [
  ["appprice", "AppOrder"],
  ["datasetprice", "DatasetOrder"],
  ["workerpoolprice", "WorkerpoolOrder"],
  ["requester", "RequestOrder"],
];

export interface LoadedOrder<S> {
  kind: OrderKind;
  order: S;
}

/** Reads a whole file, with a one-line error naming it. */
export function readTextFile(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (code ?? "unreadable");
    throw new CliError("FILE", `cannot read ${what} ${path}: ${why}`);
  }
}

function kindOf(name: unknown): OrderKind | undefined {
  if (typeof name !== "string") return undefined;
  if ((Object.values(KIND_NAMES) as string[]).includes(name)) return name as OrderKind;
  return (KIND_NAMES as Record<string, OrderKind>)[name];
}

/** Splits file content into its kind and the raw order object. */
function unwrap(json: unknown, path: string): { kind: OrderKind; raw: unknown } {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CliError("INVALID_INPUT", `${path}: expected an order (a JSON object)`);
  }
  const object = json as Record<string, unknown>;
  if ("order" in object && "kind" in object) {
    const kind = kindOf(object.kind);
    if (!kind) {
      throw new CliError("INVALID_INPUT", `${path}: unknown order kind ${JSON.stringify(object.kind)} (expected app, dataset, workerpool or request)`);
    }
    return { kind, raw: object.order };
  }
  const matches = DISTINCTIVE.filter(([field]) => field in object).map(([, kind]) => kind);
  if (matches.length !== 1) {
    throw new CliError(
      "INVALID_INPUT",
      `${path}: cannot tell the order kind (expected exactly one of appprice, datasetprice, workerpoolprice, requester)`,
    );
  }
  return { kind: matches[0], raw: object };
}

/** The JSON of an order file. @throws CliError naming the file and the parse error */
function readOrderJson(path: string): unknown {
  const text = readTextFile(path, "order file");
  try {
    return JSON.parse(text);
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ").trim();
    throw new CliError("INVALID_INPUT", `${path}: invalid JSON: ${reason}`);
  }
}

function parseFile(path: string): { kind: OrderKind; raw: unknown } {
  return unwrap(readOrderJson(path), path);
}

/** A signed order from a file. @throws CliError, OrderValidationError (naming the field) */
export function loadSignedOrder(path: string): LoadedOrder<Signed<OrderOf<OrderKind>>> {
  const { kind, raw } = parseFile(path);
  return { kind, order: parseSignedOrder(kind, raw) };
}

/** An order from a file, signed or not (cancelling and hashing need no signature). */
export function loadAnyOrder(path: string): LoadedOrder<MaybeSigned<OrderOf<OrderKind>>> {
  const { kind, raw } = parseFile(path);
  return { kind, order: parseOrder(kind, raw) };
}

/** The raw fields of an unsigned order template (`order sign --file`): checked for kind, validated later. */
export function loadOrderTemplate(path: string, kind: OrderKind): Record<string, unknown> {
  let json = readOrderJson(path);
  if (typeof json === "object" && json !== null && !Array.isArray(json) && "order" in json && "kind" in json) {
    const envelopeKind = kindOf((json as { kind: unknown }).kind);
    if (envelopeKind !== kind) {
      throw new CliError("INVALID_INPUT", `${path}: holds a ${String((json as { kind: unknown }).kind)} order, not a ${kind}`);
    }
    json = (json as { order: unknown }).order;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new OrderValidationError(kind, [{ path: kind, code: "NOT_AN_OBJECT", problem: `expected a JSON object in ${path}` }]);
  }
  return { ...(json as Record<string, unknown>) };
}
