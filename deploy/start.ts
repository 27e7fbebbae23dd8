/**
 * `npm start`, the main job: a whole Concord network on loopback, for real.
 * 1. a local chain (`hardhat node` on 127.0.0.1), the protocol deployed, test tokens for the development accounts;
 * 2. the example apps and the `customers` dataset registered, a pool, an example consumer contract;
 * 3. one scheduler and four workers, each its own `concord` process;
 * 4. two requests run end to end: `SELECT segment, avg(ltv) FROM customers GROUP BY segment` at trust 3, and the
 *    `echo` WASI app at trust 3 with a callback to the consumer contract; each result, its task id, the transactions
 *    and the time taken are printed;
 * 5. the network stays up (URLs shown) until Ctrl-C, then everything stops cleanly.
 * Environment: CONCORD_PORT (chain, default 8545), CONCORD_SCHEDULER_PORT (default 8080).
 */
import { formatEther } from "ethers";
import { defaultLocalNetworkOptions, startLocalNetwork } from "./network";
import { DEV_MNEMONIC } from "./node";
import { publishAssetOrders, runRequest, showCallback, startCluster, type Cluster, type RequestOutcome } from "./cluster";
import { ResultConsumer__factory } from "../typechain-types";

const port = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0 || value > 65535) throw new Error(`invalid ${name}: ${process.env[name]}`);
  return value;
};

function printOutcome(title: string, r: RequestOutcome): void {
  console.log(`\n${title}`);
  console.log(`  task      ${r.taskId} (deal ${r.dealId})`);
  console.log(`  result    ${JSON.stringify(r.result)}`);
  console.log(`  digest    ${r.digest}`);
  if (r.callbackData) console.log(`  callback  ${r.callbackData} ("${showCallback(r.callbackData)}")`);
  // the scheduler's own transactions (the chain.* entries are the events they emitted, recorded from the receipts)
  for (const e of r.task.timeline) {
    // the deal's matchOrders shows as `matched` (the task was started while it was mined: deal.confirmed)
    const step = e.event === "deal.confirmed" ? "matched" : e.event;
    if (e.tx && !e.event.startsWith("chain.")) console.log(`  tx        ${step.padEnd(12)} ${e.tx} (+${e.ms} ms)`);
  }
  console.log(`  time      ${(r.ms / 1000).toFixed(2)} s from signing the request to the finalized result`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const net = await startLocalNetwork({ port: port("CONCORD_PORT", 8545) });
  let cluster: Cluster | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping…");
    await cluster?.stop();
    await net.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));
  net.node.once("exit", () => void stop(stopping ? 0 : 1));
  try {
    const d = net.deployment;
    console.log(`Concord local network: chain ${net.rpcUrl} (chain id ${d.chainId}), deployed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    console.log(`  Hub / Clerk    ${d.hub}`);
    console.log(`  token (CCT)    ${d.token}`);
    console.log(`  registries     app ${d.appRegistry}, dataset ${d.datasetRegistry}, workerpool ${d.workerpoolRegistry}`);
    console.log(`  deployments    ${net.deploymentsFile}`);
    const { tokensPerAccount, depositPerAccount } = defaultLocalNetworkOptions;
    console.log(
      `  accounts       ${net.accounts.length} development accounts (mnemonic "${DEV_MNEMONIC}"), each with ` +
        `${formatEther(tokensPerAccount - depositPerAccount)} CCT and ${formatEther(depositPerAccount)} CCT deposited`,
    );

    cluster = await startCluster(net, { workers: 4, schedulerPort: port("CONCORD_SCHEDULER_PORT", 8080) });
    const ex = cluster.examples;
    console.log(`  apps           echo #${ex.apps.echo}, sieve #${ex.apps.sieve}, wordcount #${ex.apps.wordcount}, sql #${ex.apps.sql}; dataset customers #${ex.customers}`);
    console.log(`  pool           #${ex.workerpool}, scheduler ${net.accounts[1].address}; 4 workers ${net.accounts.slice(2, 6).map((a) => a.address.slice(0, 8)).join(" ")}`);
    console.log(`  consumer       ResultConsumer ${ex.consumer}`);
    await publishAssetOrders(net, cluster);

    const requester = net.accounts[6];
    const sql = await runRequest(net, cluster, {
      app: ex.apps.sql,
      dataset: ex.customers,
      trust: 3,
      params: { query: "SELECT segment, avg(ltv) FROM customers GROUP BY segment" },
      requester,
    });
    printOutcome("SQL at trust 3: SELECT segment, avg(ltv) FROM customers GROUP BY segment", sql);

    const echo = await runRequest(net, cluster, {
      app: ex.apps.echo,
      trust: 3,
      params: { args: ["hello", "from", "Concord"] },
      callback: ex.consumer,
      requester,
    });
    printOutcome("WASI echo at trust 3, result pushed to the ResultConsumer contract", echo);
    const consumer = ResultConsumer__factory.connect(ex.consumer, net.provider);
    console.log(`  consumer  resultOf(task) = ${await consumer.resultOf(echo.taskId)} (received ${await consumer.received()})`);

    console.log(`\nThe network is up. Ctrl-C stops it.`);
    console.log(`  chain        ${net.rpcUrl}`);
    console.log(`  order book   ${cluster.schedulerUrl}/orders`);
    console.log(`  tasks        ${cluster.schedulerUrl}/tasks/${sql.taskId}`);
    console.log(`  results      ${cluster.schedulerUrl}/results/${sql.digest}`);
    console.log(`  workers      ${cluster.schedulerUrl.replace(/^http/, "ws")}/ws`);
    console.log(`  try          CONCORD_RPC_URL=${net.rpcUrl} npm run concord -- account balance ${requester.address}`);
  } catch (error) {
    const e = error as { shortMessage?: string; message?: string };
    console.error(`npm start failed: ${e.shortMessage ?? e.message ?? String(error)}`);
    await stop(1);
  }
}

main().catch((error: unknown) => {
  console.error(`npm start failed: ${(error as Error).message ?? String(error)}`);
  process.exit(1);
});
