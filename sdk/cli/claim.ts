/**
 * `concord claim <dealId> [index]`: after a deal's final deadline, fails a task that was not completed (`claim`), or
 * every such task of the deal (`claimDeal`, when no index is given): the requester's frozen payment goes back to its
 * free balance. The call is simulated first, so a claim that would revert is explained in one line (before the
 * deadline: when the deadline is, in chain time) without spending gas.
 */
import type { Command } from "commander";
import { ZeroAddress, isError } from "ethers";
import { taskId as taskIdOf } from "../eip712";
import type { Wrap } from "./command";
import type { CliContext } from "./context";
import { CliError } from "./errors";
import { formatAmount } from "./amounts";
import { TASK_STATUS, chainNow, formatDeadline, parseBytes32, taskStatusName } from "./task";
import { TaskFlowError } from "./task-errors";

/** A deal id: 0x + 64 hex (`request run` prints it; the Clerk derives it from the request order's hash). */
export function parseDealId(text: string | undefined): string {
  return parseBytes32(text, "deal id (0x + 64 hex)");
}

function parseIndex(text: string): bigint {
  if (!/^\d{1,10}$/.test(text.trim())) throw new CliError("USAGE", `index: expected a task index (0, 1, …), got "${text}"`);
  return BigInt(text.trim());
}

/** Turns the Hub's refusal into one line saying what to do; anything else is left to the generic handler. */
async function explainRefusal(ctx: CliContext, dealId: string, error: unknown): Promise<never> {
  const revert = isError(error, "CALL_EXCEPTION") ? error.revert : null;
  switch (revert?.name) {
    case "HubDeadlineNotReached": {
      const deadline = revert.args[1] as bigint;
      throw new TaskFlowError(
        "DEADLINE_NOT_REACHED",
        `too early to claim deal ${dealId}: its final deadline is ${formatDeadline(deadline, await chainNow(ctx))}`,
      );
    }
    case "HubUnexpectedTaskStatus":
      throw new TaskFlowError("NOTHING_TO_CLAIM", `task ${String(revert.args[0])} is ${taskStatusName(revert.args[1] as bigint)}: nothing to claim`);
    case "HubUnknownDeal":
      throw new TaskFlowError("UNKNOWN_DEAL", `no deal ${dealId} on chain`);
    case "HubTaskIndexOutOfRange":
      throw new CliError("USAGE", `index ${String(revert.args[1])} is out of range: deal ${dealId} has ${String(revert.args[2])} task(s)`);
    default:
      throw error;
  }
}

/** Deals this large are not pre-checked task by task (claimDeal itself skips finished tasks). */
const PRECHECK_MAX_VOLUME = 64n;

/**
 * Refuses a whole-deal claim when every task is finished: the Hub checks the deadline first, so without this a
 * completed deal would read "too early" and send the user back in ten minutes for nothing.
 */
async function checkSomethingToClaim(ctx: CliContext, dealId: string, volume: bigint): Promise<void> {
  if (volume > PRECHECK_MAX_VOLUME) return;
  const hub = await ctx.hub();
  const statuses = await Promise.all(Array.from({ length: Number(volume) }, (_, i) => hub.viewTask(taskIdOf(dealId, i)).then((t) => t.status)));
  if (statuses.every((s) => s === TASK_STATUS.COMPLETED || s === TASK_STATUS.FAILED)) {
    throw new TaskFlowError("NOTHING_TO_CLAIM", `every task of deal ${dealId} is completed or already claimed: nothing to claim`);
  }
}

async function claimCommand(ctx: CliContext, dealArg: string | undefined, indexArg: string | undefined): Promise<void> {
  const dealId = parseDealId(dealArg);
  const index = indexArg === undefined ? undefined : parseIndex(indexArg);
  ctx.address(); // a claim is a transaction: fail on a missing key before any network call
  const hub = await ctx.hub();
  const deal = await hub.viewDeal(dealId);
  if (deal.requester === ZeroAddress) throw new TaskFlowError("UNKNOWN_DEAL", `no deal ${dealId} on chain`);

  if (index === undefined) await checkSomethingToClaim(ctx, dealId, deal.volume);

  // Simulate first: a refusal costs no gas and is explained.
  try {
    if (index === undefined) {
      const count = await hub.claimDeal.staticCall(dealId);
      if (count === 0n) throw new TaskFlowError("NOTHING_TO_CLAIM", `every task of deal ${dealId} is completed or already claimed: nothing to claim`);
    } else {
      await hub.claim.staticCall(dealId, index);
    }
  } catch (error) {
    if (error instanceof TaskFlowError) throw error;
    await explainRefusal(ctx, dealId, error);
  }
  const receipt = await ctx
    .confirm(index === undefined ? hub.claimDeal(dealId) : hub.claim(dealId, index))
    .catch((error: unknown) => explainRefusal(ctx, dealId, error));

  const claimed: { taskId: string; index: bigint }[] = [];
  for (const log of receipt.logs) {
    const parsed = (() => {
      try {
        return hub.interface.parseLog(log);
      } catch {
        return null;
      }
    })();
    if (parsed?.name === "TaskClaimed") claimed.push({ taskId: parsed.args.taskId as string, index: parsed.args.index as bigint });
  }
  const price = deal.appPrice + deal.datasetPrice + deal.workerpoolPrice;
  const refund = price * BigInt(claimed.length);
  const [balance, frozen] = await hub.accountOf(deal.requester);
  const info = await ctx.tokenInfo();
  ctx.print(
    { dealId, claimed, requester: deal.requester, refund, balance, frozen, tx: receipt.hash },
    () => [
      `claimed ${claimed.length} task${claimed.length === 1 ? "" : "s"} of deal ${dealId}: refunded ${formatAmount(refund, info)} to the requester ${deal.requester}`,
      ...claimed.map((c) => `  task ${c.taskId} (index ${c.index})`),
      `  requester escrow: ${formatAmount(balance, info)} free, ${formatAmount(frozen, info)} frozen`,
      `  tx ${receipt.hash}`,
    ],
  );
}

export function registerClaimCommand(program: Command, wrap: Wrap): void {
  program
    .command("claim")
    .description("after a deal's final deadline, fail its unfinished task (or every one, without index) and refund the requester")
    .argument("<dealId>", "deal id (0x + 64 hex)")
    .argument("[index]", "task index (default: every unfinished task of the deal)")
    .action(wrap(async (ctx, [dealId, index]) => claimCommand(ctx, dealId, index)));
}
