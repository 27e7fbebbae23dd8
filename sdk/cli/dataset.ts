/**
 * `concord dataset register`: registers a dataset (a file identified by its sha256) in the DatasetRegistry, owned by
 * the key's address.
 */
import type { Command } from "commander";
import type { Wrap } from "./command";
import { CliError } from "./errors";
import { registeredId, resolveContent } from "./assets";

interface RegisterOptions {
  name: string;
  file?: string;
  checksum?: string;
  uri?: string;
}

export function registerDatasetCommands(program: Command, wrap: Wrap): void {
  const dataset = program.command("dataset").description("datasets: files sold by their owner");

  dataset
    .command("register")
    .description("register a dataset owned by the key's address")
    .requiredOption("--name <name>", "name (the sql runtime's table name when it is an identifier)")
    .option("--file <path>", "the file: its sha256 is the checksum; its file:// URL the default --uri")
    .option("--checksum <0x…>", "sha256 of the file, when it is not at hand (needs --uri)")
    .option("--uri <uri>", "where workers fetch the file (file://, https://, …)")
    .action(
      wrap<RegisterOptions>(async (ctx, _args, options) => {
        if (options.name.trim() === "") throw new CliError("INVALID_INPUT", "--name must not be empty");
        const content = resolveContent(options);
        const owner = ctx.address();
        const registry = await ctx.datasets();
        const receipt = await ctx.confirm(registry.register(owner, options.name, content.uri, content.checksum));
        const id = registeredId(receipt, registry.interface, "DatasetRegistered");
        ctx.print(
          { kind: "dataset", id, name: options.name, uri: content.uri, checksum: content.checksum, owner, tx: receipt.hash },
          () => [
            `dataset ${id} registered: "${options.name}"`,
            `  checksum ${content.checksum}`,
            `  uri      ${content.uri}`,
            `  owner    ${owner}`,
            `  tx       ${receipt.hash}`,
          ],
        );
      }),
    );
}
