/**
 * Runs `concord` for the CLI tests. Once sdk/cli/main.ts registers the worker commands, this is `main()` itself;
 * until then it is main's program with `registerWorkerCommands` added (same context and error line).
 */
import { CommanderError } from "commander";
import { buildProgram, main } from "../../../sdk/cli/main";
import { CliContext, processIo, type GlobalOptions } from "../../../sdk/cli/context";
import { splitActionArgs, type Wrap } from "../../../sdk/cli/command";
import { describeError, exitCodeOf } from "../../../sdk/cli/errors";
import { registerWorkerCommands } from "../../../sdk/cli/worker";

async function run(argv: string[]): Promise<number> {
  const contexts: CliContext[] = [];
  const wrap: Wrap = (handler) => async (...commanderArgs: unknown[]) => {
    const { args, command } = splitActionArgs(commanderArgs);
    const ctx = new CliContext(command.optsWithGlobals<GlobalOptions>(), processIo);
    contexts.push(ctx);
    await handler(ctx, args, command.opts() as Parameters<typeof handler>[2]);
  };
  const program = buildProgram(wrap);
  if (program.commands.some((c) => c.name() === "worker")) return main(argv);
  registerWorkerCommands(program, wrap);
  const exitOverride = (c: typeof program): void => {
    c.exitOverride();
    c.commands.forEach(exitOverride);
  };
  exitOverride(program);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    process.stderr.write(`concord: ${describeError(error)}\n`);
    return exitCodeOf(error);
  } finally {
    for (const ctx of contexts) ctx.close();
  }
}

run(process.argv.slice(2)).then((code) => (process.exitCode = code));
