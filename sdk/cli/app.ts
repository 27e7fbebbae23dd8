/**
 * `concord app register`: registers an app (a WebAssembly module, or a built-in runtime) in the AppRegistry, owned by
 * the key's address. The checksum is what workers check the fetched module against, so it is computed from the file
 * whenever one is given.
 */
import { Option } from "commander";
import type { Command } from "commander";
import type { Wrap } from "./command";
import { CliError } from "./errors";
import { registeredId, resolveContent } from "./assets";

/** Runtimes that execute a module fetched by URI; any other runtime (`sql`) is built into the worker. */
const MODULE_RUNTIMES = new Set(["wasi"]);
const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

interface RegisterOptions {
  name: string;
  file?: string;
  checksum?: string;
  uri?: string;
  runtime: string;
}

export function registerAppCommands(program: Command, wrap: Wrap): void {
  const app = program.command("app").description("apps: WebAssembly modules (or built-in runtimes) sold by their owner");

  app
    .command("register")
    .description("register an app owned by the key's address")
    .requiredOption("--name <name>", "human-readable name")
    .option("--file <path>", "the module: its sha256 is the checksum; its file:// URL the default --uri")
    .option("--checksum <0x…>", "sha256 of the module, when it is not at hand (needs --uri)")
    .option("--uri <uri>", "where workers fetch the module (file://, https://, …)")
    .addOption(new Option("--runtime <runtime>", "runtime that executes it").choices(["wasi", "sql"]).default("wasi"))
    .action(
      wrap<RegisterOptions>(async (ctx, _args, options) => {
        if (options.name.trim() === "") throw new CliError("INVALID_INPUT", "--name must not be empty");
        const content = resolveContent(options, !MODULE_RUNTIMES.has(options.runtime));
        if (content.bytes && options.runtime === "wasi" && !content.bytes.subarray(0, 4).equals(WASM_MAGIC)) {
          throw new CliError("INVALID_INPUT", `--file ${options.file}: not a WebAssembly module (no \\0asm header)`);
        }
        const owner = ctx.address();
        const registry = await ctx.apps();
        const receipt = await ctx.confirm(registry.register(owner, options.name, options.runtime, content.uri, content.checksum));
        const id = registeredId(receipt, registry.interface, "AppRegistered");
        ctx.print(
          { kind: "app", id, name: options.name, runtime: options.runtime, uri: content.uri, checksum: content.checksum, owner, tx: receipt.hash },
          () => [
            `app ${id} registered: "${options.name}" (runtime ${options.runtime})`,
            `  checksum ${content.checksum}`,
            `  uri      ${content.uri || "(none)"}`,
            `  owner    ${owner}`,
            `  tx       ${receipt.hash}`,
          ],
        );
      }),
    );
}
