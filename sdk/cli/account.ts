/**
 * `concord account deposit | withdraw | balance`: the key's escrow account in the Clerk. Amounts are in token units
 * (`10` = 10 CCT) unless `--wei`. Balance shortfalls are reported before sending, in token units, instead of as a
 * revert.
 */
import type { Command } from "commander";
import type { Wrap } from "./command";
import { CliError } from "./errors";
import { parseAddress } from "./context";
import { formatAmount, parseAmount } from "./amounts";

interface AmountOptions {
  wei?: boolean;
}

export function registerAccountCommands(program: Command, wrap: Wrap): void {
  const account = program.command("account").description("your escrow account in the Clerk");

  account
    .command("deposit")
    .description("move tokens from the key's wallet into its escrow account (approve, then deposit)")
    .argument("<amount>", "amount in token units, e.g. 10 or 2.5 (base units with --wei)")
    .option("--wei", "the amount is in base units")
    .action(
      wrap<AmountOptions>(async (ctx, [amountArg], options) => {
        const address = ctx.address();
        const token = await ctx.token();
        const info = await ctx.tokenInfo();
        const amount = parseAmount(amountArg!, info, options.wei === true);
        if (amount === 0n) throw new CliError("INVALID_AMOUNT", "amount must be more than zero");
        const wallet = await token.balanceOf(address);
        if (wallet < amount) {
          throw new CliError(
            "INSUFFICIENT_BALANCE",
            `insufficient token balance: ${address} holds ${formatAmount(wallet, info)}, the deposit needs ${formatAmount(amount, info)}`,
          );
        }
        const hub = await ctx.hub();
        const hubAddress = await hub.getAddress();
        let approveTx: string | undefined;
        // Approve exactly the missing allowance's amount, never an unlimited one.
        if ((await token.allowance(address, hubAddress)) < amount) {
          approveTx = (await ctx.confirm(token.approve(hubAddress, amount))).hash;
        }
        const receipt = await ctx.confirm(hub.deposit(amount));
        const [balance, frozen] = await hub.accountOf(address);
        ctx.print(
          { address, amount, balance, frozen, token: info.address, symbol: info.symbol, decimals: info.decimals, approveTx, tx: receipt.hash },
          () => [
            `deposited ${formatAmount(amount, info)} into ${address}'s escrow account`,
            `  balance ${formatAmount(balance, info)} (frozen ${formatAmount(frozen, info)})`,
            ...(approveTx ? [`  approve tx ${approveTx}`] : []),
            `  tx ${receipt.hash}`,
          ],
        );
      }),
    );

  account
    .command("withdraw")
    .description("move tokens from the key's free escrow balance back to its wallet")
    .argument("<amount>", "amount in token units, e.g. 10 or 2.5 (base units with --wei)")
    .option("--wei", "the amount is in base units")
    .action(
      wrap<AmountOptions>(async (ctx, [amountArg], options) => {
        const address = ctx.address();
        const info = await ctx.tokenInfo();
        const amount = parseAmount(amountArg!, info, options.wei === true);
        if (amount === 0n) throw new CliError("INVALID_AMOUNT", "amount must be more than zero");
        const hub = await ctx.hub();
        const [free, locked] = await hub.accountOf(address);
        if (free < amount) {
          throw new CliError(
            "INSUFFICIENT_BALANCE",
            `insufficient escrow balance: ${address} has ${formatAmount(free, info)} free (${formatAmount(locked, info)} frozen), ` +
              `the withdrawal needs ${formatAmount(amount, info)}`,
          );
        }
        const receipt = await ctx.confirm(hub.withdraw(amount));
        const [balance, frozen] = await hub.accountOf(address);
        ctx.print(
          { address, amount, balance, frozen, token: info.address, symbol: info.symbol, decimals: info.decimals, tx: receipt.hash },
          () => [
            `withdrew ${formatAmount(amount, info)} from ${address}'s escrow account`,
            `  balance ${formatAmount(balance, info)} (frozen ${formatAmount(frozen, info)})`,
            `  tx ${receipt.hash}`,
          ],
        );
      }),
    );

  account
    .command("balance")
    .description("escrow balance (free and frozen) and wallet tokens of an address (default: the key's)")
    .argument("[address]", "account to show (default: the key's address)")
    .action(
      wrap(async (ctx, [addressArg]) => {
        if (addressArg === undefined && !ctx.hasKey()) {
          throw new CliError("MISSING_KEY", "give an address, or --key <hex> (or CONCORD_KEY) for the key's own account");
        }
        const address = addressArg === undefined ? ctx.address() : parseAddress(addressArg, "address");
        const hub = await ctx.hub();
        const token = await ctx.token();
        const info = await ctx.tokenInfo();
        const [[balance, frozen], wallet, nonce] = await Promise.all([
          hub.accountOf(address),
          token.balanceOf(address),
          hub.orderNonce(address),
        ]);
        ctx.print(
          { address, balance, frozen, wallet, orderNonce: nonce, token: info.address, symbol: info.symbol, decimals: info.decimals },
          () => [
            `account ${address}`,
            `  balance     ${formatAmount(balance, info)}`,
            `  frozen      ${formatAmount(frozen, info)}`,
            `  wallet      ${formatAmount(wallet, info)}`,
            `  order nonce ${nonce}`,
          ],
        );
      }),
    );
}
