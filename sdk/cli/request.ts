/**
 * `concord request run`: builds a request order from flags (SDK builder and defaults), signs it with the key for the
 * deployed Clerk, posts it to a scheduler's order book, and with `--wait` follows it to its verified result:
 * the `DealMatched` event carrying the request's hash, then the scheduler's `/tasks/<taskId>` view (live progress
 * line), then the result from `/results/<digest>`. The time shown runs from signing to the finalized result.
 *
 * The chain has the last word: a task the Hub shows COMPLETED is done even if the scheduler lost it (restart), one it
 * shows FAILED (claimed) is over.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { ZeroAddress } from "ethers";
import { buildRequestOrder, orderToJson, OrderValidationError } from "../orders";
import { hashOrder, signOrder, taskId as taskIdOf } from "../eip712";
import type { RequestOrder } from "../eip712";
import { canonicalJson, type JsonValue } from "../encoding";
import type { Wrap } from "./command";
import type { CliContext } from "./context";
import { processIo, toJson } from "./context";
import { CliError } from "./errors";
import { parseAmount } from "./amounts";
import { parseExpiry } from "./order";
import { paramsOf, type RunLocalOptions } from "./run-local";
import { BookClient, finalizeTxOf, requireBook, type BookResult, type SchedulerTaskView } from "./request-book";
import { ProgressLine, progressOf } from "./request-progress";
import { TaskFlowError } from "./task-errors";
import { TASK_STATUS, finalizedEvent, showBytes } from "./task";

interface RunOptions {
  app: string;
  dataset?: string;
  params?: string;
  arg?: string[];
  query?: string;
  trust: string;
  callback?: string;
  category: string;
  workerpool?: string;
  appMaxPrice?: string;
  datasetMaxPrice?: string;
  workerpoolMaxPrice?: string;
  wei?: boolean;
  expiry?: string;
  book?: string;
  wait?: boolean;
  timeout: string;
}

const POLL_MS = 250;
/** How long one `GET /tasks/:id` long poll may wait for the next step of the task. */
const TASK_WAIT_MS = 10_000;
/** How often the order book is asked why a request is not matched yet. */
const BOOK_CHECK_MS = 1_000;
/** Book statuses that mean the request will never be matched. */
const DROPPED = new Set(["invalid", "expired", "cancelled"]);

/** The flag that sets each request field, to name it in errors. */
const FLAG_OF: Record<string, string> = {
  app: "--app",
  dataset: "--dataset",
  workerpool: "--workerpool",
  appmaxprice: "--app-max-price",
  datasetmaxprice: "--dataset-max-price",
  workerpoolmaxprice: "--workerpool-max-price",
  category: "--category",
  trust: "--trust",
  callback: "--callback",
  expiry: "--expiry",
  params: "--params",
};

// ------------------------------------------------------------------ build and post

/** The request order the flags describe, for the key's address. */
async function buildFromFlags(ctx: CliContext, o: RunOptions): Promise<RequestOrder> {
  const requester = ctx.address();
  const amount = async (text: string | undefined, flag: string) =>
    text === undefined ? 0n : parseAmount(text, await ctx.tokenInfo(), o.wei === true, flag);
  const fields = {
    app: o.app,
    dataset: o.dataset ?? 0n,
    workerpool: o.workerpool ?? 0n,
    appmaxprice: await amount(o.appMaxPrice, "--app-max-price"),
    datasetmaxprice: await amount(o.datasetMaxPrice, "--dataset-max-price"),
    workerpoolmaxprice: await amount(o.workerpoolMaxPrice, "--workerpool-max-price"),
    category: o.category,
    trust: o.trust,
    requester,
    params: paramsOf(o as Pick<RunLocalOptions, "params" | "arg" | "query"> as RunLocalOptions),
    ...(o.callback !== undefined ? { callback: o.callback } : {}),
    ...(o.expiry !== undefined ? { expiry: parseExpiry(o.expiry) } : {}),
    nonce: await (await ctx.hub()).orderNonce(requester),
  };
  try {
    return buildRequestOrder(fields);
  } catch (error) {
    if (error instanceof OrderValidationError) {
      const flag = FLAG_OF[error.path.split(".")[1] ?? ""];
      if (flag) throw new CliError("INVALID_INPUT", `${flag}: ${error.issues[0].problem}`);
    }
    throw error;
  }
}

// ------------------------------------------------------------------ follow

export interface Followed {
  dealId: string;
  taskId: string;
  view: SchedulerTaskView | null;
  resultDigest: string;
  finalizeTx: string | null;
}

function checkTime(deadline: number, timeoutS: number, what: string, last: string): void {
  if (Date.now() > deadline) throw new TaskFlowError("TIMEOUT", `${what} not finalized within ${timeoutS} s (last: ${last})`);
}

/** Waits for the deal and then the finalized task, updating `progress`. */
async function follow(
  ctx: CliContext,
  book: BookClient,
  request: { hash: string; fromBlock: number },
  progress: ProgressLine,
  limits: { deadline: number; timeoutS: number },
): Promise<Followed> {
  const hub = await ctx.hub();
  let last = "waiting for a match";
  const what = `request ${request.hash}`;
  progress.update({ stage: "waiting", text: last });

  let dealId: string | undefined;
  let lastBookCheck = 0;
  for (;;) {
    const events = await hub.queryFilter(hub.filters.DealMatched(undefined, request.hash), request.fromBlock);
    if (events.length > 0) {
      dealId = events[0].args.dealId;
      break;
    }
    if (Date.now() - lastBookCheck >= BOOK_CHECK_MS) {
      lastBookCheck = Date.now();
      const order = await book.order(request.hash).catch(() => null); // a hiccup of the book is not fatal here
      if (order && DROPPED.has(order.status)) {
        throw new TaskFlowError("REQUEST_DROPPED", `the order book dropped ${what} (${order.status}): ${order.reason ?? "no reason given"}`);
      }
      last = order?.reason ? `waiting for a match: ${order.reason}` : "waiting for a match";
      progress.update({ stage: "waiting", text: last });
    }
    checkTime(limits.deadline, limits.timeoutS, what, last);
    await sleep(POLL_MS);
  }
  last = `matched: deal ${dealId}`;
  progress.update({ stage: "matched", text: last });

  const taskId = taskIdOf(dealId, 0);
  let view: SchedulerTaskView | null = null;
  let seen = 0; // timeline entries already shown: the scheduler answers as soon as there are more (long poll)
  for (;;) {
    let news = false;
    try {
      view = await book.task(taskId, { after: seen, ms: Math.max(0, Math.min(TASK_WAIT_MS, limits.deadline - Date.now())) });
      const p = progressOf(view);
      if (view) {
        news = view.timeline.length > seen;
        seen = view.timeline.length;
        last = p.text;
        progress.update(p);
      }
      if (p.stage === "failed") throw new TaskFlowError("TASK_FAILED", `task ${taskId} ${p.text}`);
      if (p.stage === "finalized" && view?.task.resultDigest) {
        const finalizeTx = finalizeTxOf(view) ?? (await finalizedEvent(ctx, taskId))?.transactionHash ?? null;
        return { dealId, taskId, view, resultDigest: view.task.resultDigest, finalizeTx };
      }
    } catch (error) {
      if (!(error instanceof CliError)) throw error; // the scheduler unreachable: the chain may still tell
      last = error.message;
    }
    checkTime(limits.deadline, limits.timeoutS, `task ${taskId}`, last);
    if (news) continue;
    // no news within the wait (or an older scheduler that does not wait): the chain may know more
    const onChain = await hub.viewTask(taskId);
    if (onChain.status === TASK_STATUS.FAILED) {
      throw new TaskFlowError("TASK_FAILED", `task ${taskId} was claimed on chain after its final deadline: the requester was refunded`);
    }
    if (onChain.status === TASK_STATUS.COMPLETED) {
      progress.update({ stage: "finalized", text: "finalized" });
      const event = await finalizedEvent(ctx, taskId);
      return { dealId, taskId, view, resultDigest: onChain.resultDigest, finalizeTx: event?.transactionHash ?? null };
    }
    await sleep(POLL_MS);
  }
}

// ------------------------------------------------------------------ output

/** A result for people: a `{columns, rows}` SQL result as a table, anything else as canonical JSON. */
export function formatResult(result: JsonValue | null): string[] {
  if (result === null) return ["(no result.json)"];
  const table = result as { columns?: unknown; rows?: unknown };
  if (typeof result === "object" && Array.isArray(table.columns) && Array.isArray(table.rows)) {
    const cell = (v: unknown) => (v === null ? "NULL" : typeof v === "string" ? v : canonicalJson(v));
    const rows = [table.columns.map(cell), ...(table.rows as unknown[][]).map((r) => r.map(cell))];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
    const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
    return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)];
  }
  return [canonicalJson(result)];
}

/** One JSON object with the result spliced in as canonical JSON (integers beyond 2^53 stay exact). */
export function jsonWithResult(head: Record<string, unknown>, result: JsonValue | null): string {
  const text = toJson(head);
  return `${text.slice(0, -1)}${text.length > 2 ? "," : ""}"result":${result === null ? "null" : canonicalJson(result)}}\n`;
}

// ------------------------------------------------------------------ command

function seconds(text: string, flag: string): number {
  if (!/^\d{1,7}$/.test(text.trim()) || Number(text) < 1) throw new CliError("USAGE", `${flag}: expected a number of seconds ≥ 1, got "${text}"`);
  return Number(text);
}

async function runCommand(ctx: CliContext, o: RunOptions): Promise<void> {
  const book = new BookClient(requireBook(o.book, ctx.io));
  const timeoutS = seconds(o.timeout, "--timeout");
  const started = Date.now();
  const order = await buildFromFlags(ctx, o);
  const domain = await ctx.domain();
  const signed = await signOrder(await ctx.signer(), domain, "RequestOrder", order);
  const hash = hashOrder(domain, "RequestOrder", order);
  const fromBlock = await (await ctx.provider()).getBlockNumber();
  const posted = await book.postOrder({ kind: "RequestOrder", order: orderToJson(signed) });
  if (posted.hash.toLowerCase() !== hash.toLowerCase()) {
    throw new CliError("BOOK", `the order book hashed the request to ${posted.hash}, not ${hash}: it serves another chain or Clerk`);
  }
  if (!o.wait) {
    ctx.print({ requestHash: hash, requester: order.requester, book: book.base.href, status: posted.status, httpStatus: posted.httpStatus }, () => [
      `posted request ${hash} to ${book.url("orders")} (${posted.status})`,
      `  follow it with --wait, or: concord task show <taskId> --book ${book.base.href}`,
    ]);
    return;
  }

  const tty = ctx.io === processIo && process.stdout.isTTY === true;
  const progress = new ProgressLine(ctx.json ? null : (t) => ctx.io.stdout(t), tty, started);
  if (!ctx.json) ctx.io.stdout(`request ${hash} posted to ${book.base.href}\n`);
  let done: Followed;
  try {
    done = await follow(ctx, book, { hash, fromBlock }, progress, { deadline: started + timeoutS * 1000, timeoutS });
  } finally {
    progress.end();
  }
  const stored: BookResult | null = await book.result(done.resultDigest).catch(() => null);
  const hub = await ctx.hub();
  const callbackData = order.callback !== ZeroAddress ? await hub.resultFor(done.taskId) : null;
  const ms = Date.now() - started;
  const head = {
    requestHash: hash,
    dealId: done.dealId,
    taskId: done.taskId,
    index: 0,
    trust: order.trust,
    status: "completed",
    resultDigest: done.resultDigest,
    finalizeTx: done.finalizeTx,
    kind: stored?.kind ?? null,
    files: stored?.files ?? null,
    callbackData,
    book: book.base.href,
    ms,
    progress: progress.history.map(({ ms: at, stage, text }) => ({ ms: at, stage, text })),
  };
  if (ctx.json) {
    ctx.io.stdout(jsonWithResult(head, stored?.result ?? null));
    return;
  }
  const result = stored ? formatResult(stored.result) : [`(not stored by the scheduler: ${book.url(`results/${done.resultDigest}`)})`];
  ctx.io.stdout(
    [
      `finalized in ${(ms / 1000).toFixed(2)} s`,
      `  result    ${result[0]}`,
      ...result.slice(1).map((l) => `            ${l}`),
      ...(callbackData ? [`  callback  ${showBytes(callbackData)}`] : []),
      `  task      ${done.taskId} (deal ${done.dealId}, index 0)`,
      `  digest    ${done.resultDigest}`,
      `  finalize  tx ${done.finalizeTx ?? "(unknown)"}`,
    ].join("\n") + "\n",
  );
}

export function registerRequestCommands(program: Command, wrap: Wrap): void {
  const request = program.command("request").description("run requests on a scheduler's pool");
  const collect = (value: string, previous: string[] = []) => [...previous, value];

  request
    .command("run")
    .description("build and sign a request order, post it to the scheduler's book; --wait follows it to its verified result")
    .requiredOption("--app <id>", "app id")
    .option("--dataset <id>", "dataset id (default: none)")
    .option("--params <json>", 'the app\'s input, e.g. {"args":["--n","10"]}')
    .option("--arg <value>", "one app argument, repeatable (builds --params)", collect)
    .option("--query <sql>", "the sql runtime's query (builds --params)")
    .option("--trust <n>", "distinct agreeing workers required (0 or 1: one)", "3")
    .option("--callback <address>", "EIP-1154 contract receiving the result (default: none)")
    .option("--category <id>", "category id (its timeref sets the deadlines)", "0")
    .option("--workerpool <id>", "only this pool (default: any)")
    .option("--app-max-price <amount>", "the most paid to the app per task (default 0)")
    .option("--dataset-max-price <amount>", "the most paid to the dataset per task (default 0)")
    .option("--workerpool-max-price <amount>", "the most paid to the pool per task (default 0)")
    .option("--wei", "prices are in base units instead of token units")
    .option("--expiry <time>", "unix seconds, 0 (none, default) or a delay such as +1h")
    .option("--book <url>", "the scheduler's URL (env CONCORD_BOOK_URL)")
    .option("--wait", "follow the request to its finalized result, with a live progress line")
    .option("--timeout <s>", "with --wait: give up after this many seconds", "300")
    .action(wrap<RunOptions>(async (ctx, _args, options) => runCommand(ctx, options)));
}
