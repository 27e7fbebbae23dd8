/**
 * The glue between commander and the command handlers: a handler receives a ready `CliContext` (global options and
 * environment resolved), its positional arguments and its own options, and never sees commander's calling
 * convention. Group files (`app.ts`, `order.ts`, …) register their commands with `program.command(…)` so they inherit
 * the program's output and error settings.
 */
import type { Command } from "commander";
import type { CliContext } from "./context";

export type CommandHandler<O = Record<string, unknown>> = (
  ctx: CliContext,
  args: (string | undefined)[],
  options: O,
) => Promise<void>;

/** Turns a handler into a commander action. */
export type Wrap = <O>(handler: CommandHandler<O>) => (...commanderArgs: unknown[]) => Promise<void>;

/** Splits commander's action arguments: `(...positionals, options, command)`. */
export function splitActionArgs(commanderArgs: unknown[]): { args: (string | undefined)[]; command: Command } {
  const command = commanderArgs[commanderArgs.length - 1] as Command;
  const args = commanderArgs.slice(0, -2).map((a) => (a === undefined ? undefined : String(a)));
  return { args, command };
}
