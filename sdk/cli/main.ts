/**
 * The `concord` program: global options, the command groups, and the one error handler. `main(argv, io)` never
 * exits the process and never throws: it returns the exit code, so tests call it in-process with captured output and
 * `bin/concord` calls it with the process's.
 *
 * Every failure becomes one `concord: <message>` line on stderr (exit 2 for usage errors, 1 otherwise). The key is
 * never printed: on top of no message quoting it, any hex run of the key found in an error line is masked.
 */
import { Command, CommanderError } from "commander";
import { CliContext, DEFAULT_RPC_URL, processIo } from "./context";
import type { CliIo, GlobalOptions } from "./context";
import { describeError, exitCodeOf } from "./errors";
import { splitActionArgs } from "./command";
import type { Wrap } from "./command";
import { registerAppCommands } from "./app";
import { registerDatasetCommands } from "./dataset";
import { registerPoolCommands } from "./pool";
import { registerOrderCommands } from "./order";
import { registerAccountCommands } from "./account";
import { registerRunLocalCommand } from "./run-local";
import { registerVerifyCommand } from "./verify";
import { registerWorkerCommands } from "./worker";
import { registerSchedulerCommands } from "./scheduler";
import { registerChainCommand } from "./chain";
import { registerRequestCommands } from "./request";
import { registerTaskCommands } from "./task";
import { registerResultCommands } from "./task-result";
import { registerClaimCommand } from "./claim";
import { version } from "../../package.json";

/** Masks every run of 16+ hex digits that is part of the key (a message may quote a truncated value). */
export function redactKey(text: string, key: string | undefined): string {
  const secret = key?.trim().replace(/^0x/i, "").toLowerCase();
  if (!secret) return text;
  return text.replace(/[0-9a-fA-F]{16,}/g, (run) => (secret.includes(run.toLowerCase()) ? "[redacted]" : run));
}

/** The key as given, for redaction only: the flag's value (wherever it sits in argv) or the environment's. */
function keyOf(argv: string[], io: CliIo): string | undefined {
  const i = argv.findIndex((a) => a === "--key" || a.startsWith("--key="));
  if (i >= 0) return argv[i].startsWith("--key=") ? argv[i].slice("--key=".length) : argv[i + 1];
  return io.env.CONCORD_KEY;
}

export function buildProgram(wrap: Wrap): Command {
  const program = new Command("concord")
    .description("Concord: verifiable off-chain compute. Register assets, sign and publish orders, manage escrow, run apps locally.")
    .version(version, "-V, --version")
    .option("--rpc <url>", `JSON-RPC endpoint (env CONCORD_RPC_URL; default ${DEFAULT_RPC_URL})`)
    .option("--key <hex>", "private key that signs (env CONCORD_KEY, preferred: command lines are visible to other users)")
    .option("--deployments <file>", "deployments JSON (default: <CONCORD_DEPLOYMENTS_DIR or deployments>/<chainId>.json)")
    .option("--json", "machine-readable output: one JSON object on stdout")
    .exitOverride()
    .showSuggestionAfterError(true);
  registerAppCommands(program, wrap);
  registerDatasetCommands(program, wrap);
  registerPoolCommands(program, wrap);
  registerOrderCommands(program, wrap);
  registerAccountCommands(program, wrap);
  registerRunLocalCommand(program, wrap);
  registerVerifyCommand(program, wrap);
  registerSchedulerCommands(program, wrap);
  registerWorkerCommands(program, wrap);
  registerChainCommand(program, wrap);
  registerRequestCommands(program, wrap);
  registerTaskCommands(program, wrap);
  registerResultCommands(program, wrap);
  registerClaimCommand(program, wrap);
  return program;
}

/** Commander's output settings, applied to every command (`addCommand`ed ones do not inherit them). */
function configureOutput(command: Command, io: CliIo, redact: (text: string) => string): void {
  command.exitOverride().configureOutput({
    writeOut: (text) => io.stdout(text),
    writeErr: (text) => io.stderr(redact(text)),
    // One line, whatever commander adds ("(Did you mean account?)" comes on a line of its own).
    outputError: (text, write) => write(`concord: ${text.replace(/^error: /, "").trim().replace(/\s*\n\s*/g, " ")}\n`),
  });
  for (const sub of command.commands) configureOutput(sub, io, redact);
}

/** Runs the command line `argv` (without `node` and the script) and returns the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const redact = (text: string) => redactKey(text, keyOf(argv, io));
  const contexts: CliContext[] = [];
  const wrap: Wrap = (handler) => async (...commanderArgs: unknown[]) => {
    const { args, command } = splitActionArgs(commanderArgs);
    const ctx = new CliContext(command.optsWithGlobals<GlobalOptions>(), io);
    contexts.push(ctx);
    await handler(ctx, args, command.opts() as Parameters<typeof handler>[2]);
  };
  const program = buildProgram(wrap);
  configureOutput(program, io, redact);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (error) {
    // Commander has already written its own one-line message (or the help / version).
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    io.stderr(`concord: ${redact(describeError(error))}\n`);
    return exitCodeOf(error);
  } finally {
    for (const ctx of contexts) ctx.close();
  }
}
