/**
 * `concord chain`: a local development chain on 127.0.0.1 (deploy/network.ts): a `hardhat node`, the protocol
 * deployed, the development accounts funded with test tokens and part of them deposited in escrow, and the
 * deployments file written where every other command looks for it. Runs until SIGINT or SIGTERM, then stops the node.
 * The accounts are Hardhat's well-known development accounts: their keys are public, never use them elsewhere.
 */
import { createServer } from "node:net";
import type { Command } from "commander";
import { formatEther } from "ethers";
import { defaultLocalNetworkOptions, startLocalNetwork, type LocalNetwork } from "../../deploy/network";
import { DEPLOYMENTS_DIR } from "../../deploy/deployments";
import { ConcordTestToken__factory } from "../../typechain-types/factories/contracts/token/ConcordTestToken__factory";
import type { Wrap } from "./command";
import type { CliContext } from "./context";
import { CliError, describeError } from "./errors";
import { untilSignal } from "./worker";
import { TaskFlowError } from "./task-errors";

interface ChainOptions {
  port: string;
  accounts: string;
}

/** `hardhat node` funds 20 accounts with native gas: more could not pay for their own set-up transactions. */
const MAX_ACCOUNTS = 20;

/** Refuses a busy port up front: the node would otherwise fail with a page of logs. */
function checkPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new CliError("USAGE", `port ${port} on 127.0.0.1 is in use (another chain?): choose another with --port`)
          : new TaskFlowError("CHAIN_START", `cannot listen on 127.0.0.1:${port}: ${error.code ?? error.message}`),
      ),
    );
    server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
  });
}

function intFlag(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text.trim()) || n < min || n > max) throw new CliError("USAGE", `${flag}: expected an integer from ${min} to ${max}, got "${text}"`);
  return n;
}

const tokens = (wei: bigint) => formatEther(wei).replace(/\.0$/, "");

function announce(ctx: CliContext, net: LocalNetwork, symbol: string): void {
  const d = net.deployment;
  const accounts = net.accounts.map((a) => a.address);
  const { tokensPerAccount, depositPerAccount } = defaultLocalNetworkOptions;
  ctx.print(
    {
      event: "ready",
      rpcUrl: net.rpcUrl,
      chainId: d.chainId,
      deployment: d,
      deploymentsFile: net.deploymentsFile,
      accounts,
      mnemonic: "hardhat",
    },
    () => [
      `local chain ready: ${net.rpcUrl} (chain id ${d.chainId})`,
      `  Hub / Clerk   ${d.hub}`,
      `  token         ${d.token}`,
      `  registries    app ${d.appRegistry}, dataset ${d.datasetRegistry}, workerpool ${d.workerpoolRegistry}`,
      `  deployments   ${net.deploymentsFile}`,
      `  accounts      Hardhat's development accounts (Hardhat's public mnemonic; never use them elsewhere),`,
      `                each with ${tokens(tokensPerAccount - depositPerAccount)} ${symbol} in its wallet and ${tokens(depositPerAccount)} ${symbol} in escrow:`,
      ...accounts.map((a, i) => `    #${String(i).padEnd(2)} ${a}`),
      `  Ctrl-C stops the chain.`,
    ],
  );
}

/**
 * Whether a signal arrives within a moment: a Ctrl-C in a terminal reaches the node (same process group) as well as
 * this process, and the node's exit may be seen first. That is a normal stop, not a crash.
 */
async function signalledSoon(signal: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 500)));
  const result = await Promise.race([signal.then(() => true), late]);
  clearTimeout(timer);
  return result;
}

async function chainCommand(ctx: CliContext, o: ChainOptions): Promise<void> {
  const port = intFlag(o.port, "--port", 1, 65535);
  const accounts = intFlag(o.accounts, "--accounts", 1, MAX_ACCOUNTS);
  await checkPortFree(port);
  // Listen for signals before the (slow) start, so a Ctrl-C during it still stops the node.
  const stopped = untilSignal();
  let net: LocalNetwork | undefined;
  try {
    const starting = startLocalNetwork({ port, accounts, deploymentsDir: ctx.io.env.CONCORD_DEPLOYMENTS_DIR ?? DEPLOYMENTS_DIR }).catch((error: unknown) => {
      throw new TaskFlowError("CHAIN_START", `cannot start the local chain on 127.0.0.1:${port}: ${describeError(error).replace(/:$/, "")}`);
    });
    const first = await Promise.race([starting, stopped.promise.then(() => null)]);
    if (first === null) {
      net = await starting.catch(() => undefined);
      return;
    }
    net = first;
    announce(ctx, net, await ConcordTestToken__factory.connect(net.deployment.token, net.provider).symbol());
    const node = net.node;
    const exited = new Promise<"exit">((resolve) => node.once("exit", () => resolve("exit")));
    if ((await Promise.race([stopped.promise, exited])) === "exit" && !(await signalledSoon(stopped.promise))) {
      throw new TaskFlowError("CHAIN_START", `the local chain (hardhat node on port ${port}) exited unexpectedly`);
    }
    if (!ctx.json) ctx.io.stdout("stopping the local chain\n");
  } finally {
    stopped.dispose();
    await net?.stop();
  }
}

export function registerChainCommand(program: Command, wrap: Wrap): void {
  program
    .command("chain")
    .description("start a local chain on 127.0.0.1 with Concord deployed and development accounts funded, until SIGINT/SIGTERM")
    .option("--port <port>", "JSON-RPC port", "8545")
    .option("--accounts <n>", `development accounts to fund (1 to ${MAX_ACCOUNTS})`, "10")
    .action(wrap<ChainOptions>(async (ctx, _args, options) => chainCommand(ctx, options)));
}
