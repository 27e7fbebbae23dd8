/**
 * `concord order sign | publish | cancel | hash`. Orders are built with the SDK builders (so defaults and validation
 * are the SDK's), signed for the deployed Clerk's EIP-712 domain, and checked the way the Clerk will check them before
 * they leave the machine: a requester learns about a wrong key, a revoked nonce or an expired order here, not from a
 * silent order book.
 */
import { writeFileSync } from "node:fs";
import { Contract, ZeroAddress } from "ethers";
import type { Command } from "commander";
import { Argument } from "commander";
import {
  OrderValidationError,
  buildAppOrder,
  buildDatasetOrder,
  buildRequestOrder,
  buildWorkerpoolOrder,
  orderToJson,
  recoverOrderSigner,
  verifyOrderSignature,
} from "../orders";
import type { MaybeSigned } from "../orders";
import { formatParams, parseParams } from "../params";
import { hashOrder, signOrder } from "../eip712";
import type { AppOrder, DatasetOrder, OrderKind, OrderOf, RequestOrder, Signed, WorkerpoolOrder } from "../eip712";
import type { Wrap } from "./command";
import type { CliContext } from "./context";
import { toJson } from "./context";
import { CliError, networkProblem } from "./errors";
import { postJson, serverMessage } from "./http";
import type { HttpReply } from "./http";
import { parseAmount } from "./amounts";
import { KIND_NAMES, loadAnyOrder, loadOrderTemplate, loadSignedOrder } from "./order-file";
import type { KindName } from "./order-file";

// ------------------------------------------------------------------ flags → fields

interface FlagSpec {
  flag: string;
  /** The field the flag sets, per kind; a kind without an entry refuses the flag. */
  fields: Partial<Record<OrderKind, string>>;
  /** A token amount (token units, or base units with --wei). */
  amount?: boolean;
}

const ASSETS_AND_POOL = ["AppOrder", "DatasetOrder", "WorkerpoolOrder"] as const;
const every = (field: string) => ({ AppOrder: field, DatasetOrder: field, WorkerpoolOrder: field, RequestOrder: field });

/** Keyed by commander's camel-cased option name. */
const FIELD_FLAGS: Record<string, FlagSpec> = {
  app: { flag: "--app", fields: { AppOrder: "app", RequestOrder: "app" } },
  dataset: { flag: "--dataset", fields: { DatasetOrder: "dataset", RequestOrder: "dataset" } },
  workerpool: { flag: "--workerpool", fields: { WorkerpoolOrder: "workerpool", RequestOrder: "workerpool" } },
  price: {
    flag: "--price",
    fields: { AppOrder: "appprice", DatasetOrder: "datasetprice", WorkerpoolOrder: "workerpoolprice" },
    amount: true,
  },
  appMaxPrice: { flag: "--app-max-price", fields: { RequestOrder: "appmaxprice" }, amount: true },
  datasetMaxPrice: { flag: "--dataset-max-price", fields: { RequestOrder: "datasetmaxprice" }, amount: true },
  workerpoolMaxPrice: { flag: "--workerpool-max-price", fields: { RequestOrder: "workerpoolmaxprice" }, amount: true },
  volume: { flag: "--volume", fields: every("volume") },
  tag: { flag: "--tag", fields: every("tag") },
  category: { flag: "--category", fields: { WorkerpoolOrder: "category", RequestOrder: "category" } },
  trust: { flag: "--trust", fields: { WorkerpoolOrder: "trust", RequestOrder: "trust" } },
  appRestrict: { flag: "--app-restrict", fields: { DatasetOrder: "apprestrict", WorkerpoolOrder: "apprestrict" } },
  datasetRestrict: { flag: "--dataset-restrict", fields: { AppOrder: "datasetrestrict", WorkerpoolOrder: "datasetrestrict" } },
  workerpoolRestrict: { flag: "--workerpool-restrict", fields: { AppOrder: "workerpoolrestrict", DatasetOrder: "workerpoolrestrict" } },
  requesterRestrict: {
    flag: "--requester-restrict",
    fields: Object.fromEntries(ASSETS_AND_POOL.map((k) => [k, "requesterrestrict"])),
  },
  requester: { flag: "--requester", fields: { RequestOrder: "requester" } },
  beneficiary: { flag: "--beneficiary", fields: { RequestOrder: "beneficiary" } },
  callback: { flag: "--callback", fields: { RequestOrder: "callback" } },
  nonce: { flag: "--nonce", fields: every("nonce") },
  salt: { flag: "--salt", fields: every("salt") },
};

/** What the SDK builders require (the requester defaults to the key's address). */
const REQUIRED: Record<OrderKind, string[]> = {
  AppOrder: ["app", "appprice"],
  DatasetOrder: ["dataset", "datasetprice"],
  WorkerpoolOrder: ["workerpool", "workerpoolprice", "category"],
  RequestOrder: ["app", "appmaxprice", "workerpoolmaxprice", "category"],
};

/** The flag that sets a field of a kind (for messages), e.g. `appmaxprice` → `--app-max-price`. */
function flagFor(kind: OrderKind, field: string): string | undefined {
  if (field === "expiry") return "--expiry";
  if (field === "params") return "--params";
  return Object.values(FIELD_FLAGS).find((spec) => spec.fields[kind] === field)?.flag;
}

const RELATIVE_EXPIRY = /^\+(\d+)([smhd])$/;
const UNIT_SECONDS = { s: 1n, m: 60n, h: 3600n, d: 86400n } as const;

/** `--expiry`: 0 (none), unix seconds, or a delay from now such as `+30m`, `+1h`, `+7d`. */
export function parseExpiry(text: string, nowMs = Date.now()): bigint {
  const now = BigInt(Math.floor(nowMs / 1000));
  const relative = RELATIVE_EXPIRY.exec(text.trim());
  if (relative) return now + BigInt(relative[1]) * UNIT_SECONDS[relative[2] as keyof typeof UNIT_SECONDS];
  if (!/^\d+$/.test(text.trim())) {
    throw new CliError("INVALID_INPUT", `--expiry: expected unix seconds, 0 (none) or a delay such as +1h or +7d, got "${text}"`);
  }
  const expiry = BigInt(text.trim());
  if (expiry !== 0n && expiry <= now) {
    throw new CliError("INVALID_INPUT", `--expiry ${expiry} is in the past (${new Date(Number(expiry) * 1000).toISOString()})`);
  }
  return expiry;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

// ------------------------------------------------------------------ chain checks

const EIP1271_MAGIC = "0x1626ba7e";

/** The address whose signature the Clerk checks: the asset's owner, or the requester. */
async function expectedSigner(ctx: CliContext, kind: OrderKind, order: OrderOf<OrderKind>): Promise<{ signer: string; role: string }> {
  if (kind === "RequestOrder") return { signer: (order as RequestOrder).requester, role: "requester" };
  let owner: string;
  let what: string;
  if (kind === "AppOrder") {
    what = `app ${(order as AppOrder).app}`;
    owner = await (await ctx.apps()).ownerOrZero((order as AppOrder).app);
  } else if (kind === "DatasetOrder") {
    what = `dataset ${(order as DatasetOrder).dataset}`;
    owner = await (await ctx.datasets()).ownerOrZero((order as DatasetOrder).dataset);
  } else {
    what = `workerpool ${(order as WorkerpoolOrder).workerpool}`;
    owner = await (await ctx.workerpools()).ownerOrZero((order as WorkerpoolOrder).workerpool);
  }
  if (owner === ZeroAddress) throw new CliError("ORDER_UNUSABLE", `${what} is not registered`);
  return { signer: owner, role: `${what}'s owner` };
}

async function hasCode(ctx: CliContext, address: string): Promise<boolean> {
  return (await (await ctx.provider()).getCode(address)) !== "0x";
}

/** Checks the signature as the Clerk will: presigned, EIP-1271 for a contract signer, ECDSA otherwise. */
async function checkSignature(ctx: CliContext, kind: OrderKind, order: Signed<OrderOf<OrderKind>>, hash: string): Promise<string> {
  const { signer, role } = await expectedSigner(ctx, kind, order);
  if (order.sign === "0x") {
    const [, presigned] = await (await ctx.hub()).orderState(hash);
    if (!presigned) throw new CliError("INVALID_SIGNATURE", `order ${hash} has no signature and is not presigned on chain`);
    return signer;
  }
  if (await hasCode(ctx, signer)) {
    const wallet = new Contract(signer, ["function isValidSignature(bytes32,bytes) view returns (bytes4)"], await ctx.provider());
    let magic: string | undefined;
    try {
      magic = (await wallet.isValidSignature(hash, order.sign)) as string;
    } catch {
      magic = undefined;
    }
    if (magic !== EIP1271_MAGIC) throw new CliError("INVALID_SIGNATURE", `the contract ${signer} (${role}) refuses the signature (EIP-1271)`);
    return signer;
  }
  const domain = await ctx.domain();
  if (!verifyOrderSignature(domain, kind, order, signer)) {
    const recovered = recoverOrderSigner(domain, kind, order);
    throw new CliError(
      "INVALID_SIGNATURE",
      recovered === null
        ? "invalid signature: not a 65-byte low-s ECDSA signature"
        : `invalid signature: signed by ${recovered} for this Clerk, but the ${role} is ${signer}`,
    );
  }
  return signer;
}

/** Refuses an order the Clerk would refuse whatever the other orders: expired, revoked nonce, cancelled, consumed. */
async function checkUsable(ctx: CliContext, order: OrderOf<OrderKind>, hash: string, signer: string): Promise<void> {
  const hub = await ctx.hub();
  const provider = await ctx.provider();
  const [block, nonce, [consumed, , cancelled]] = await Promise.all([
    provider.getBlock("latest"),
    hub.orderNonce(signer),
    hub.orderState(hash),
  ]);
  if (order.expiry !== 0n && block && BigInt(block.timestamp) >= order.expiry) {
    throw new CliError("ORDER_UNUSABLE", `order ${hash} expired at ${new Date(Number(order.expiry) * 1000).toISOString()}`);
  }
  if (order.nonce !== nonce) {
    throw new CliError("ORDER_UNUSABLE", `order ${hash} carries nonce ${order.nonce} but ${signer}'s order nonce is ${nonce} (revoked)`);
  }
  if (cancelled) throw new CliError("ORDER_UNUSABLE", `order ${hash} is cancelled`);
  if (consumed >= order.volume) throw new CliError("ORDER_UNUSABLE", `order ${hash} is fully consumed (${consumed}/${order.volume})`);
}

// ------------------------------------------------------------------ order book

/** `<book>/orders`, keeping any path prefix of the book URL. */
export function ordersUrl(book: string): URL {
  let base: URL;
  try {
    base = new URL(book.endsWith("/") ? book : `${book}/`);
  } catch {
    throw new CliError("INVALID_INPUT", `--book: invalid URL "${book}"`);
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") throw new CliError("INVALID_INPUT", `--book: expected an http(s) URL, got "${book}"`);
  return new URL("orders", base);
}


const BOOK_TIMEOUT_MS = 30_000;

// ------------------------------------------------------------------ commands

interface SignOptions {
  file?: string;
  out?: string;
  wei?: boolean;
  expiry?: string;
  params?: string;
  arg: string[];
  query?: string;
  [flag: string]: unknown;
}

interface PublishOptions {
  book?: string;
}

interface CancelOptions {
  all?: boolean;
}

async function cancelOnChain(ctx: CliContext, kind: OrderKind, order: MaybeSigned<OrderOf<OrderKind>>) {
  const hub = await ctx.hub();
  const struct = { ...order, sign: order.sign ?? "0x" };
  switch (kind) {
    case "AppOrder":
      return ctx.confirm(hub.cancelAppOrder(struct as Signed<AppOrder>));
    case "DatasetOrder":
      return ctx.confirm(hub.cancelDatasetOrder(struct as Signed<DatasetOrder>));
    case "WorkerpoolOrder":
      return ctx.confirm(hub.cancelWorkerpoolOrder(struct as Signed<WorkerpoolOrder>));
    case "RequestOrder":
      return ctx.confirm(hub.cancelRequestOrder(struct as Signed<RequestOrder>));
  }
}

function build(kind: OrderKind, fields: Record<string, unknown>): OrderOf<OrderKind> {
  // The fields were checked for presence above; the builders validate every value.
  switch (kind) {
    case "AppOrder":
      return buildAppOrder(fields as Parameters<typeof buildAppOrder>[0]);
    case "DatasetOrder":
      return buildDatasetOrder(fields as Parameters<typeof buildDatasetOrder>[0]);
    case "WorkerpoolOrder":
      return buildWorkerpoolOrder(fields as Parameters<typeof buildWorkerpoolOrder>[0]);
    case "RequestOrder":
      return buildRequestOrder(fields as Parameters<typeof buildRequestOrder>[0]);
  }
}

async function signCommand(ctx: CliContext, kindName: KindName, options: SignOptions): Promise<void> {
  const kind = KIND_NAMES[kindName];
  const fields: Record<string, unknown> = options.file ? loadOrderTemplate(options.file, kind) : {};
  if ("sign" in fields) throw new CliError("INVALID_INPUT", `${options.file} already holds a signature: remove its "sign" to sign again`);
  const fromFlags = new Map<string, string>();
  const signerAddress = ctx.address();

  for (const [key, spec] of Object.entries(FIELD_FLAGS)) {
    const value = options[key];
    if (value === undefined) continue;
    const field = spec.fields[kind];
    if (!field) throw new CliError("USAGE", `${spec.flag} does not apply to ${kindName} orders`);
    fields[field] = spec.amount ? parseAmount(String(value), await ctx.tokenInfo(), options.wei === true, spec.flag) : value;
    fromFlags.set(field, spec.flag);
  }
  if (options.expiry !== undefined) {
    fields.expiry = parseExpiry(options.expiry);
    fromFlags.set("expiry", "--expiry");
  }
  const structured = options.arg.length > 0 || options.query !== undefined;
  if (options.params !== undefined || structured) {
    if (kind !== "RequestOrder") throw new CliError("USAGE", `--params, --arg and --query apply to request orders only`);
    if (options.params !== undefined && structured) throw new CliError("USAGE", "give either --params or --arg/--query, not both");
    fields.params = options.params ?? formatParams({ args: options.arg, query: options.query });
    fromFlags.set("params", "--params");
  }
  if (kind === "RequestOrder") {
    fields.requester ??= signerAddress;
    if (typeof fields.params === "string") parseParams(fields.params); // refused now rather than by every worker
  }
  for (const field of REQUIRED[kind]) {
    if (fields[field] === undefined) {
      const flag = flagFor(kind, field);
      throw new CliError("USAGE", `missing ${kind}.${field}: give ${flag ?? `"${field}"`}${options.file ? ` or set "${field}" in ${options.file}` : ""}`);
    }
  }
  if (fields.nonce === undefined) fields.nonce = await (await ctx.hub()).orderNonce(signerAddress);

  let order: OrderOf<OrderKind>;
  try {
    order = build(kind, fields);
  } catch (error) {
    // Name the flag the user typed rather than the field it set.
    if (error instanceof OrderValidationError) {
      const field = error.path.split(".")[1];
      const flag = field === undefined ? undefined : fromFlags.get(field);
      if (flag) throw new CliError("INVALID_INPUT", `${flag}: ${error.issues[0].problem}`);
    }
    throw error;
  }

  const { signer, role } = await expectedSigner(ctx, kind, order);
  if (signer !== signerAddress && !(kind !== "RequestOrder" && (await hasCode(ctx, signer)))) {
    throw new CliError("NOT_OWNER", `the ${role} is ${signer}, not the key's address ${signerAddress}: the Clerk would refuse this signature`);
  }
  const domain = await ctx.domain();
  const signed = await signOrder(await ctx.signer(), domain, kind, order);
  const hash = hashOrder(domain, kind, order);
  const json = orderToJson(signed);

  if (options.out) {
    try {
      writeFileSync(options.out, `${toJson(json, 2)}\n`);
    } catch (error) {
      throw new CliError("FILE", `cannot write ${options.out}: ${(error as { code?: string }).code ?? "unwritable"}`);
    }
  }
  if (ctx.json) {
    ctx.print({ kind, hash, signer: signerAddress, order: json, ...(options.out ? { file: options.out } : {}) }, () => "");
  } else if (options.out) {
    ctx.print({}, () => `signed ${kind} ${hash} by ${signerAddress} -> ${options.out}`);
  } else {
    ctx.io.stdout(`${toJson(json, 2)}\n`);
  }
}

async function publishCommand(ctx: CliContext, file: string, options: PublishOptions): Promise<void> {
  const book = options.book ?? ctx.io.env.CONCORD_BOOK_URL;
  if (!book) throw new CliError("USAGE", "give --book <url> (the scheduler's order book) or set CONCORD_BOOK_URL");
  const url = ordersUrl(book);
  const { kind, order } = loadSignedOrder(file);
  const hash = hashOrder(await ctx.domain(), kind, order);
  const signer = await checkSignature(ctx, kind, order, hash);
  await checkUsable(ctx, order, hash, signer);

  const body = { kind, order: orderToJson(order) };
  let reply: HttpReply;
  try {
    reply = await postJson(url.href, body, BOOK_TIMEOUT_MS);
  } catch (error) {
    throw new CliError("BOOK", `cannot reach the order book at ${url.href}: ${networkProblem(error)}`);
  }
  if (reply.status < 200 || reply.status > 299) {
    const message = serverMessage(reply.text) || reply.statusMessage || "no message";
    throw new CliError("BOOK", `the order book refused the order (HTTP ${reply.status}): ${message}`);
  }
  let response: unknown = reply.text;
  try {
    response = reply.text ? JSON.parse(reply.text) : null;
  } catch {
    // a non-JSON success body is shown as text
  }
  ctx.print({ kind, hash, signer, book: url.href, status: reply.status, response }, () => [
    `published ${kind} ${hash} to ${url.href} (HTTP ${reply.status})`,
  ]);
}

async function cancelCommand(ctx: CliContext, file: string | undefined, options: CancelOptions): Promise<void> {
  if (options.all && file !== undefined) throw new CliError("USAGE", "give an order file or --all, not both");
  if (!options.all && file === undefined) throw new CliError("USAGE", "give the order file to cancel, or --all to cancel every order of the key");
  const address = ctx.address();
  if (options.all) {
    const hub = await ctx.hub();
    const receipt = await ctx.confirm(hub.incrementOrderNonce());
    const nonce = await hub.orderNonce(address);
    ctx.print({ signer: address, orderNonce: nonce, tx: receipt.hash }, () => [
      `cancelled every order of ${address} signed before: order nonce is now ${nonce}`,
      `  tx ${receipt.hash}`,
    ]);
    return;
  }
  const { kind, order } = loadAnyOrder(file!);
  const hash = hashOrder(await ctx.domain(), kind, order);
  const receipt = await cancelOnChain(ctx, kind, order);
  ctx.print({ kind, hash, signer: address, cancelled: true, tx: receipt.hash }, () => [`cancelled ${kind} ${hash}`, `  tx ${receipt.hash}`]);
}

async function hashCommand(ctx: CliContext, file: string): Promise<void> {
  const { kind, order } = loadAnyOrder(file);
  const hash = hashOrder(await ctx.domain(), kind, order);
  ctx.print({ kind, hash }, () => hash);
}

export function registerOrderCommands(program: Command, wrap: Wrap): void {
  const order = program.command("order").description("sign, publish, cancel and hash orders");

  order
    .command("sign")
    .description("build an order (from --file and/or flags, SDK defaults for the rest) and sign it with the key")
    .addArgument(new Argument("<kind>", "order kind").choices(Object.keys(KIND_NAMES)))
    .option("--file <order.json>", "start from this order JSON (fields in the order's JSON form; flags override)")
    .option("--out <file>", "write the signed order there instead of stdout")
    .option("--app <id>", "app id (app, request)")
    .option("--dataset <id>", "dataset id (dataset, request; 0: none)")
    .option("--workerpool <id>", "workerpool id (workerpool, request; 0: any)")
    .option("--price <amount>", "price per task (app, dataset, workerpool)")
    .option("--app-max-price <amount>", "the most the requester pays the app per task")
    .option("--dataset-max-price <amount>", "the most the requester pays the dataset per task")
    .option("--workerpool-max-price <amount>", "the most the requester pays the pool per task")
    .option("--wei", "prices are in base units instead of token units")
    .option("--volume <n>", "number of tasks (default 1)")
    .option("--tag <bytes32>", "capability tag bitmask (default zero)")
    .option("--category <id>", "category id (workerpool, request)")
    .option("--trust <n>", "distinct agreeing workers required (request) or served (workerpool); 0 or 1: one")
    .option("--app-restrict <id>", "only this app (dataset, workerpool)")
    .option("--dataset-restrict <id>", "only this dataset (app, workerpool)")
    .option("--workerpool-restrict <id>", "only this workerpool (app, dataset)")
    .option("--requester-restrict <address>", "only this requester (app, dataset, workerpool)")
    .option("--requester <address>", "the requester (default: the key's address)")
    .option("--beneficiary <address>", "who may read the result (default: the requester)")
    .option("--callback <address>", "EIP-1154 contract receiving the result (default: none)")
    .option("--params <json>", 'the app\'s input, e.g. {"args":["--n","10"]} (request)')
    .option("--arg <value>", "one app argument, repeatable (builds --params)", collect, [])
    .option("--query <sql>", "the sql runtime's query (builds --params)")
    .option("--expiry <time>", "unix seconds, 0 (none, default) or a delay such as +1h or +7d")
    .option("--nonce <n>", "order nonce (default: the signer's current nonce on chain)")
    .option("--salt <bytes32>", "salt (default: random)")
    .action(wrap<SignOptions>(async (ctx, [kind], options) => signCommand(ctx, kind as KindName, options)));

  order
    .command("publish")
    .description("check a signed order (signature, nonce, expiry, state) and POST {kind, order} to <book>/orders")
    .argument("<signed.json>", "signed order file")
    .option("--book <url>", "the scheduler's order book URL (env CONCORD_BOOK_URL)")
    .action(wrap<PublishOptions>(async (ctx, [file], options) => publishCommand(ctx, file!, options)));

  order
    .command("cancel")
    .description("cancel an order on chain (as its signer), or --all orders of the key by bumping its order nonce")
    .argument("[order.json]", "the order to cancel")
    .option("--all", "cancel every order the key signed so far")
    .action(wrap<CancelOptions>(async (ctx, [file], options) => cancelCommand(ctx, file, options)));

  order
    .command("hash")
    .description("print an order's EIP-712 hash for the deployed Clerk")
    .argument("<order.json>", "order file, signed or not")
    .action(wrap(async (ctx, [file]) => hashCommand(ctx, file!)));
}
