/**
 * `concord pool register` and `concord pool consent`. A pool's orders match only while its scheduler consents to
 * serve (and stake for) it: the registry records that consent at once when the scheduler itself registers the pool,
 * otherwise the scheduler's key must run `concord pool consent <id>`.
 */
import type { Command } from "commander";
import type { Wrap } from "./command";
import { CliError } from "./errors";
import { parseAddress } from "./context";
import { registeredId } from "./assets";

export const DEFAULT_STAKE_RATIO = 30;
export const DEFAULT_REWARD_RATIO = 10;

interface RegisterOptions {
  description: string;
  scheduler?: string;
  stakeRatio: string;
  rewardRatio: string;
}

interface ConsentOptions {
  withdraw?: boolean;
}

/** A percentage 0–100 (the registry's ratio range). */
export function parsePercent(text: string, what: string): number {
  if (!/^\d{1,3}$/.test(text.trim()) || Number(text) > 100) {
    throw new CliError("INVALID_INPUT", `${what}: expected a whole percentage from 0 to 100, got "${text}"`);
  }
  return Number(text);
}

/** A registry id: a positive integer. */
export function parseId(text: string | undefined, what: string): bigint {
  if (text === undefined || !/^\d+$/.test(text.trim()) || BigInt(text) === 0n) {
    throw new CliError("INVALID_INPUT", `${what}: expected a positive integer id, got "${text ?? ""}"`);
  }
  return BigInt(text);
}

export function registerPoolCommands(program: Command, wrap: Wrap): void {
  const pool = program.command("pool").description("workerpools: workers run by a scheduler");

  pool
    .command("register")
    .description("register a workerpool owned by the key's address")
    .requiredOption("--description <text>", "human-readable description")
    .option("--scheduler <address>", "address of the scheduler daemon (default: the key's address)")
    .option("--stake-ratio <pct>", "percentage of the pool price a worker stakes per contribution", String(DEFAULT_STAKE_RATIO))
    .option("--reward-ratio <pct>", "percentage of the pool price the scheduler keeps", String(DEFAULT_REWARD_RATIO))
    .action(
      wrap<RegisterOptions>(async (ctx, _args, options) => {
        const stakeRatio = parsePercent(options.stakeRatio, "--stake-ratio");
        const rewardRatio = parsePercent(options.rewardRatio, "--reward-ratio");
        const owner = ctx.address();
        const scheduler = options.scheduler === undefined ? owner : parseAddress(options.scheduler, "--scheduler");
        const registry = await ctx.workerpools();
        const receipt = await ctx.confirm(registry.register(owner, options.description, scheduler, stakeRatio, rewardRatio));
        const id = registeredId(receipt, registry.interface, "WorkerpoolRegistered");
        // The registry gives consent when the scheduler sent the registration: read it back rather than assume.
        const consent = (await registry.workerpool(id)).schedulerConsent;
        const consentCommand = `concord pool consent ${id} --key <the scheduler's key>`;
        ctx.print(
          {
            kind: "workerpool",
            id,
            description: options.description,
            owner,
            scheduler,
            stakeRatio,
            rewardRatio,
            schedulerConsent: consent,
            ...(consent ? {} : { consentCommand }),
            tx: receipt.hash,
          },
          () => [
            `workerpool ${id} registered: "${options.description}"`,
            `  owner     ${owner}`,
            `  scheduler ${scheduler}`,
            `  ratios    worker stake ${stakeRatio}%, scheduler reward ${rewardRatio}%`,
            `  consent   ${consent ? "given (the scheduler registered the pool)" : "PENDING: its orders cannot match yet"}`,
            `  tx        ${receipt.hash}`,
            ...(consent ? [] : [`The scheduler ${scheduler} must run: ${consentCommand}`]),
          ],
        );
      }),
    );

  pool
    .command("consent")
    .description("as the pool's scheduler, consent to serve and stake for it (or --withdraw the consent)")
    .argument("<pool>", "workerpool id")
    .option("--withdraw", "withdraw the consent instead")
    .action(
      wrap<ConsentOptions>(async (ctx, [poolArg], options) => {
        const id = parseId(poolArg, "pool");
        const consent = !options.withdraw;
        const scheduler = ctx.address();
        const registry = await ctx.workerpools();
        const receipt = await ctx.confirm(registry.setSchedulerConsent(id, consent));
        ctx.print({ kind: "workerpool", id, scheduler, schedulerConsent: consent, tx: receipt.hash }, () => [
          `workerpool ${id}: scheduler ${scheduler} ${consent ? "consents" : "withdrew its consent"}`,
          `  tx ${receipt.hash}`,
        ]);
      }),
    );
}
