/**
 * `npm start`: a local chain on 127.0.0.1 (a `hardhat node` child process), the whole protocol deployed on it, test
 * tokens minted and deposited for the well-known development accounts, addresses printed. Runs until Ctrl-C.
 * Environment: CONCORD_PORT (default 8545).
 */
import { JsonRpcProvider, formatEther, parseEther } from "ethers";
import { DEV_MNEMONIC, devWallet, startHardhatNode } from "./node";
import { deployConcord } from "./lib";
import { writeDeployment } from "./deployments";
import { ConcordTestToken__factory, Hub__factory } from "../typechain-types";

const ACCOUNTS = 10;
const TOKENS_PER_ACCOUNT = parseEther("1000");
const DEPOSIT_PER_ACCOUNT = parseEther("100");

async function main() {
  const port = Number(process.env.CONCORD_PORT ?? 8545);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`invalid CONCORD_PORT: ${process.env.CONCORD_PORT}`);
  const started = Date.now();
  const node = await startHardhatNode(port);
  const stop = () => {
    node.kill("SIGTERM");
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  node.on("exit", () => process.exit(0)); // also when the chain dies on its own

  try {
    const rpcUrl = `http://127.0.0.1:${port}`;
    const provider = new JsonRpcProvider(rpcUrl, undefined, { staticNetwork: true, batchMaxCount: 1, cacheTimeout: -1 });
    const accounts = Array.from({ length: ACCOUNTS }, (_, i) => devWallet(i, provider));
    const deployer = accounts[0];
    const deployment = await deployConcord(deployer);
    const path = writeDeployment(deployment);

    const token = ConcordTestToken__factory.connect(deployment.token, deployer);
    for (const account of accounts) await (await token.mint(account.address, TOKENS_PER_ACCOUNT)).wait();
    for (const account of accounts) {
      await (await token.connect(account).approve(deployment.hub, DEPOSIT_PER_ACCOUNT)).wait();
      await (await Hub__factory.connect(deployment.hub, account).deposit(DEPOSIT_PER_ACCOUNT)).wait();
    }

    const hub = Hub__factory.connect(deployment.hub, provider);
    const categories = [];
    for (let i = 0; i < Number(await hub.categoryCount()); i++) {
      const c = await hub.viewCategory(i);
      categories.push(`${i}:${c.name}(${c.workClockTimeRef}s)`);
    }
    console.log(`Concord local network ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    console.log(`  chain          ${rpcUrl} (chain id ${deployment.chainId})`);
    console.log(`  Hub / Clerk    ${deployment.hub}`);
    console.log(`  token (CCT)    ${deployment.token}`);
    console.log(`  AppRegistry    ${deployment.appRegistry}`);
    console.log(`  DatasetReg.    ${deployment.datasetRegistry}`);
    console.log(`  WorkerpoolReg. ${deployment.workerpoolRegistry}`);
    console.log(`  MatchLib       ${deployment.matchLib}`);
    console.log(`  categories     ${categories.join(" ")}`);
    console.log(`  deployments    ${path}`);
    console.log(
      `  accounts       ${ACCOUNTS} development accounts (mnemonic "${DEV_MNEMONIC}"), each with ` +
        `${formatEther(TOKENS_PER_ACCOUNT - DEPOSIT_PER_ACCOUNT)} CCT and ${formatEther(DEPOSIT_PER_ACCOUNT)} CCT deposited`,
    );
    console.log("Press Ctrl-C to stop.");
  } catch (error) {
    stop();
    throw error;
  }
}

/** The i-th development account of the Hardhat mnemonic. */

main().catch((error: unknown) => {
  const e = error as { shortMessage?: string; message?: string };
  console.error(`npm start failed: ${e.shortMessage ?? e.message ?? String(error)}`);
  process.exit(1);
});
