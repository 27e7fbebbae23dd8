/**
 * `concord result get <taskId|digest>`: a task's verified result. On chain: `resultFor(taskId)` (the digest, or the
 * callback data of a callback deal). The files come from the scheduler's result store: `--book`, CONCORD_BOOK_URL,
 * or else the URL the scheduler gave `finalize` (emitted in `TaskFinalized`). With `--out` the files are saved, and
 * only after they are checked to hash to the on-chain digest: a scheduler cannot hand out a result the workers did not
 * agree on.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { keccak256, toUtf8String, ZeroAddress } from "ethers";
import { directoryDigest, type JsonValue } from "../encoding";
import { CALLBACK_FILE, checkResultPath } from "../../scheduler/api/result-store";
import type { Wrap } from "./command";
import type { CliContext } from "./context";
import { CliError } from "./errors";
import { BookClient, bookOption, type BookResult } from "./request-book";
import { formatResult, jsonWithResult } from "./request";
import { TASK_STATUS, finalizedEvent, parseBytes32, showBytes, taskStatusName } from "./task";
import { TaskFlowError } from "./task-errors";

interface GetOptions {
  book?: string;
  out?: string;
}

/** The scheduler base URL inside `finalize`'s `results` (`<base>/results/<digest>`), if it is one. */
function bookFromResults(results: string, digest: string): string | undefined {
  let text: string;
  try {
    text = toUtf8String(results);
  } catch {
    return undefined;
  }
  const suffix = `/results/${digest}`;
  if (!/^https?:\/\//.test(text) || !text.toLowerCase().endsWith(suffix)) return undefined;
  return text.slice(0, -suffix.length);
}

/** The on-chain side: the task's digest and `resultFor`, or null when `id` is not a task (then it is a digest). */
async function onChain(ctx: CliContext, id: string) {
  const hub = await ctx.hub();
  const task = await hub.viewTask(id);
  if (task.status === TASK_STATUS.UNSET) return null;
  if (task.status !== TASK_STATUS.COMPLETED) {
    const why = task.status === TASK_STATUS.FAILED ? "it failed (claimed after its final deadline)" : "it is not finalized yet";
    throw new TaskFlowError("NOT_COMPLETED", `task ${id} has no result: ${why} (status ${taskStatusName(task.status)})`);
  }
  const [resultFor, deal, event] = await Promise.all([hub.resultFor(id), hub.viewDeal(task.dealId), finalizedEvent(ctx, id)]);
  return {
    taskId: id,
    digest: task.resultDigest.toLowerCase(),
    resultFor,
    callbackData: deal.callback === ZeroAddress ? null : resultFor,
    announcedBook: event ? bookFromResults(event.args.results, task.resultDigest.toLowerCase()) : undefined,
    finalizeTx: event?.transactionHash ?? null,
  };
}

/**
 * Downloads the result's files into `out` (absent or empty) through a temporary sibling directory, checks they hash
 * to `digest`, then moves them into place: `out` never holds unverified files.
 */
async function saveVerified(book: BookClient, stored: BookResult, digest: string, out: string): Promise<void> {
  const target = resolve(out);
  if (existsSync(target) && (!statSync(target).isDirectory() || readdirSync(target).length > 0)) {
    throw new CliError("FILE", `--out ${out}: exists and is not an empty directory`);
  }
  for (const f of stored.files) checkResultPath(f.path); // a path escaping the directory is refused before writing
  let tmp: string;
  try {
    mkdirSync(dirname(target), { recursive: true });
    tmp = mkdtempSync(join(dirname(target), `.${basename(target)}.partial-`));
  } catch (error) {
    throw new CliError("FILE", `--out ${out}: cannot create it (${(error as { code?: string }).code ?? "unwritable"})`);
  }
  try {
    let callbackBytes: Uint8Array | undefined;
    for (const f of stored.files) {
      const bytes = await book.resultFile(digest, f.path);
      if (f.path === CALLBACK_FILE) callbackBytes = bytes;
      const path = join(tmp, ...f.path.split("/"));
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, bytes);
    }
    const actual = stored.kind === "callback" ? (callbackBytes ? keccak256(callbackBytes) : "(no callback-data file)") : await directoryDigest(tmp);
    if (actual.toLowerCase() !== digest) {
      throw new TaskFlowError("RESULT_MISMATCH", `the files from ${book.base.href} hash to ${actual}, not to the on-chain digest ${digest}: not saved`);
    }
    if (existsSync(target)) rmdirSync(target);
    renameSync(tmp, target);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function getCommand(ctx: CliContext, idArg: string | undefined, o: GetOptions): Promise<void> {
  const id = parseBytes32(idArg, "task id or result digest");
  const chain = await onChain(ctx, id);
  const digest = chain?.digest ?? id;
  const bookUrl = bookOption(o.book, ctx.io) ?? chain?.announcedBook;
  if (!chain && !bookUrl) {
    throw new TaskFlowError("UNKNOWN_TASK", `${id} is not a task on chain; to fetch a result by its digest, give --book <url> or set CONCORD_BOOK_URL`);
  }
  if (!bookUrl && o.out) throw new CliError("USAGE", "--out needs the scheduler's URL: give --book <url> or set CONCORD_BOOK_URL");

  let stored: BookResult | null = null;
  let book: BookClient | undefined;
  if (bookUrl) {
    book = new BookClient(bookUrl);
    stored = await book.result(digest);
    if (!stored) throw new TaskFlowError("NOT_COMPLETED", `the scheduler at ${book.base.href} holds no result ${digest}`);
    if (o.out) await saveVerified(book, stored, digest, o.out);
  }

  const result: JsonValue | null = stored?.result ?? null;
  const head = {
    ...(chain ? { taskId: chain.taskId, resultFor: chain.resultFor, callbackData: chain.callbackData, finalizeTx: chain.finalizeTx } : {}),
    resultDigest: digest,
    book: book?.base.href ?? null,
    kind: stored?.kind ?? null,
    files: stored?.files ?? null,
    ...(o.out ? { out: resolve(o.out), verified: true } : {}),
  };
  if (ctx.json) {
    ctx.io.stdout(jsonWithResult(head, result));
    return;
  }
  const lines = [chain ? `result of task ${chain.taskId}` : `result ${digest}`, `  digest    ${digest}`];
  if (chain) lines.push(chain.callbackData ? `  callback  ${showBytes(chain.callbackData)} (resultFor)` : `  on chain  resultFor = ${chain.resultFor}`);
  if (chain?.finalizeTx) lines.push(`  finalize  tx ${chain.finalizeTx}`);
  if (!stored) lines.push(`  files     (no scheduler URL on chain: give --book <url> to fetch them)`);
  if (stored && book) {
    lines.push(`  from      ${book.url(`results/${digest}`)}`);
    lines.push(`  files     ${stored.files.map((f) => `${f.path} (${f.size} B)`).join(", ") || "(none)"}`);
    const shown = formatResult(result);
    lines.push(`  result    ${shown[0]}`, ...shown.slice(1).map((l) => `            ${l}`));
    if (o.out) lines.push(`  saved     ${resolve(o.out)} (${stored.files.length} file${stored.files.length === 1 ? "" : "s"}, digest verified)`);
  }
  ctx.io.stdout(`${lines.join("\n")}\n`);
}

export function registerResultCommands(program: Command, wrap: Wrap): void {
  const result = program.command("result").description("fetch verified results");
  result
    .command("get")
    .description("a task's result: resultFor on chain, and the files from the scheduler's result store (checked against the digest)")
    .argument("<taskIdOrDigest>", "task id, or a result digest (then --book is needed)")
    .option("--book <url>", "the scheduler's URL (env CONCORD_BOOK_URL; default: the URL given at finalize)")
    .option("--out <dir>", "save the files there (absent or empty directory), after checking their digest")
    .action(wrap<GetOptions>(async (ctx, [id], options) => getCommand(ctx, id, options)));
}
