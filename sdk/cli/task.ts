/**
 * `concord task show <taskId>`: a task as the Hub knows it (status, deadlines measured against chain time, the deal's
 * terms, every contribution) and, when a scheduler URL is given, the scheduler's view: its replicas and the hedged
 * run's timeline. Also the small chain helpers the other task commands share.
 */
import type { Command } from "commander";
import { ZeroAddress, ZeroHash, toUtf8String } from "ethers";
import type { Wrap } from "./command";
import type { CliContext } from "./context";
import { CliError } from "./errors";
import { formatAmount } from "./amounts";
import { BookClient, bookOption, type SchedulerTaskView } from "./request-book";
import { TaskFlowError } from "./task-errors";

/** IHub.TaskStatus. */
export const TASK_STATUS = { UNSET: 0n, ACTIVE: 1n, REVEALING: 2n, COMPLETED: 3n, FAILED: 4n } as const;
const TASK_STATUS_NAMES = ["UNSET", "ACTIVE", "REVEALING", "COMPLETED", "FAILED"];
const CONTRIBUTION_STATUS_NAMES = ["UNSET", "CONTRIBUTED", "REVEALED", "REJECTED"];

export function taskStatusName(status: bigint): string {
  return TASK_STATUS_NAMES[Number(status)] ?? `status ${status}`;
}

/** A task id or result digest: 0x + 64 hex digits, lowercased. */
export function parseBytes32(text: string | undefined, what: string): string {
  if (!text || !/^0x[0-9a-fA-F]{64}$/.test(text.trim())) {
    throw new CliError("USAGE", `${what}: expected 0x + 64 hex digits, got "${text ?? ""}"`);
  }
  return text.trim().toLowerCase();
}

/** The latest block's timestamp: deadlines are judged by chain time, which a local chain may have moved. */
export async function chainNow(ctx: CliContext): Promise<bigint> {
  const block = await (await ctx.provider()).getBlock("latest");
  return BigInt(block?.timestamp ?? Math.floor(Date.now() / 1000));
}

/** `2025-01-01T00:10:00.000Z (in 9m 58s)` / `(passed 2m ago)`, relative to chain time. */
export function formatDeadline(deadline: bigint, now: bigint): string {
  const iso = new Date(Number(deadline) * 1000).toISOString();
  const delta = Number(deadline - now);
  const span = (s: number) => {
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${sec}s` : `${sec}s`;
  };
  return delta > 0 ? `${iso} (in ${span(delta)})` : `${iso} (passed ${span(-delta)} ago)`;
}

/** Callback bytes for people: `0x6869 ("hi")` when they are printable UTF-8, else the hex alone. */
export function showBytes(data: string): string {
  try {
    const text = toUtf8String(data);
    if (text && !/[\u0000-\u001f\u007f]/.test(text)) return `${data} (${JSON.stringify(text)})`;
  } catch {
    // not UTF-8
  }
  return data;
}

/** The `TaskFinalized` event of a task, or null. */
export async function finalizedEvent(ctx: CliContext, taskId: string) {
  const hub = await ctx.hub();
  const events = await hub.queryFilter(hub.filters.TaskFinalized(taskId), (await ctx.deployment()).blockNumber);
  return events[0] ?? null;
}

interface ShowOptions {
  book?: string;
}

/** One timeline entry on a line: `+1234 ms  commit  worker=0x… tx=0x…`. */
function timelineLine(entry: SchedulerTaskView["timeline"][number]): string {
  const details = Object.entries(entry)
    .filter(([k, v]) => k !== "ms" && k !== "event" && v !== null && v !== undefined && typeof v !== "object")
    .map(([k, v]) => `${k}=${String(v)}`);
  return `+${String(entry.ms).padStart(6)} ms  ${entry.event}${details.length ? `  ${details.join(" ")}` : ""}`;
}

async function showCommand(ctx: CliContext, taskArg: string | undefined, o: ShowOptions): Promise<void> {
  const taskId = parseBytes32(taskArg, "task id");
  const bookUrl = bookOption(o.book, ctx.io);
  const hub = await ctx.hub();
  const [task, view] = await Promise.all([hub.viewTask(taskId), bookUrl ? new BookClient(bookUrl).task(taskId) : Promise.resolve(undefined)]);
  const unset = task.status === TASK_STATUS.UNSET;
  if (unset && !view) {
    throw new TaskFlowError(
      "UNKNOWN_TASK",
      bookUrl
        ? `neither the chain nor the scheduler at ${bookUrl} knows task ${taskId}`
        : `task ${taskId} is not initialized on chain (unknown, or not started yet); give --book to ask the scheduler`,
    );
  }
  const dealId = unset ? view!.task.dealId : task.dealId;
  const index = unset ? BigInt(view!.task.index) : task.index;
  const [deal, now, contributors, info] = await Promise.all([hub.viewDeal(dealId), chainNow(ctx), hub.contributorsOf(taskId), ctx.tokenInfo()]);
  const contributions = await Promise.all(
    contributors.map(async (worker) => {
      const c = await hub.viewContribution(taskId, worker);
      return { worker, status: CONTRIBUTION_STATUS_NAMES[Number(c.status)] ?? String(c.status), stake: c.stake };
    }),
  );
  // A task not initialized yet has no stored deadlines: they derive from its deal's start.
  const deadlines = {
    contribution: unset ? deal.startTime + 7n * deal.timeref : task.contributionDeadline,
    reveal: task.revealDeadline === 0n ? null : task.revealDeadline,
    final: unset ? deal.startTime + 10n * deal.timeref : task.finalDeadline,
  };
  const status = taskStatusName(task.status);
  const open = task.status !== TASK_STATUS.COMPLETED && task.status !== TASK_STATUS.FAILED;
  const claimable = open && now >= deadlines.final;
  const price = deal.appPrice + deal.datasetPrice + deal.workerpoolPrice;
  const json = {
    taskId,
    dealId,
    index,
    status,
    chainTime: now,
    deadlines,
    claimable,
    contributorCount: task.contributorCount,
    winnerCount: task.winnerCount,
    revealCount: task.revealCount,
    consensusHash: task.consensusHash === ZeroHash ? null : task.consensusHash,
    resultDigest: task.resultDigest === ZeroHash ? null : task.resultDigest,
    contributors: contributions,
    deal: {
      requester: deal.requester,
      scheduler: deal.scheduler,
      app: deal.app,
      dataset: deal.dataset,
      trust: deal.trust,
      callback: deal.callback === ZeroAddress ? null : deal.callback,
      price,
      startTime: deal.startTime,
      timeref: deal.timeref,
    },
    ...(bookUrl ? { book: bookUrl, scheduler: view ?? null } : {}),
  };
  ctx.print(json, () => {
    const lines = [
      `task ${taskId} (deal ${dealId}, index ${index})`,
      `  status        ${status}${claimable ? " (claimable: past its final deadline)" : ""}`,
      `  deal          app #${deal.app}${deal.dataset ? `, dataset #${deal.dataset}` : ""}, trust ${deal.trust}, ` +
        `price ${formatAmount(price, info)}, requester ${deal.requester}${deal.callback !== ZeroAddress ? `, callback ${deal.callback}` : ""}`,
      `  contribution  ${formatDeadline(deadlines.contribution, now)}`,
      ...(deadlines.reveal ? [`  reveal        ${formatDeadline(deadlines.reveal, now)}`] : []),
      `  final         ${formatDeadline(deadlines.final, now)}`,
      `  contributors  ${task.contributorCount} (${task.winnerCount} in the consensus, ${task.revealCount} revealed)`,
      ...contributions.map((c) => `    ${c.worker}  ${c.status.padEnd(11)}  stake ${formatAmount(c.stake, info)}`),
      ...(json.consensusHash ? [`  consensus     ${json.consensusHash}`] : []),
      ...(json.resultDigest ? [`  result        ${json.resultDigest}`] : []),
    ];
    if (bookUrl && !view) lines.push(`scheduler ${bookUrl}: does not know this task`);
    if (view) {
      lines.push(`scheduler ${bookUrl}: ${view.task.status}, commits ${view.task.commits}/${view.task.quorum}${view.task.failureReason ? `, ${view.task.failureReason}` : ""}`);
      lines.push(`  replicas`);
      for (const r of view.replicas) lines.push(`    ${r.replicaId.padEnd(12)}  ${r.worker}  ${r.status}${r.revealed && r.status !== "revealed" ? ", revealed" : ""}`);
      lines.push(`  timeline`);
      for (const e of view.timeline) lines.push(`    ${timelineLine(e)}`);
    }
    return lines;
  });
}

export function registerTaskCommands(program: Command, wrap: Wrap): void {
  const task = program.command("task").description("inspect tasks");
  task
    .command("show")
    .description("a task on chain (status, deadlines, contributors) and, with a scheduler URL, its replicas and timeline")
    .argument("<taskId>", "task id (0x + 64 hex)")
    .option("--book <url>", "the scheduler's URL (env CONCORD_BOOK_URL)")
    .action(wrap<ShowOptions>(async (ctx, [taskId], options) => showCommand(ctx, taskId, options)));
}
