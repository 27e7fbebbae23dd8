/**
 * A whole local Concord network on loopback: a `hardhat node` child, the protocol deployed, test tokens minted to the
 * development accounts and part of them deposited in escrow. Used by `npm start`, `concord chain` and the end-to-end
 * tests.
 */
import type { ChildProcess } from "node:child_process";
import { parseEther, type JsonRpcProvider, type Wallet } from "ethers";
import { rpcProvider } from "../sdk/rpc";
import { deployConcord, type Deployment } from "./lib";
import { writeDeployment } from "./deployments";
import { devWallet, freePort, startHardhatNode } from "./node";
import { ConcordTestToken__factory, Hub__factory } from "../typechain-types";

export interface LocalNetworkOptions {
  /** 0: a free port */
  port: number;
  /** development accounts funded (index 0 deploys) */
  accounts: number;
  tokensPerAccount: bigint;
  depositPerAccount: bigint;
  /** where `<chainId>.json` is written (default: deployments/) */
  deploymentsDir?: string;
}

export const defaultLocalNetworkOptions: LocalNetworkOptions = {
  port: 8545,
  accounts: 10,
  tokensPerAccount: parseEther("1000"),
  depositPerAccount: parseEther("100"),
};

export interface LocalNetwork {
  rpcUrl: string;
  provider: JsonRpcProvider;
  deployment: Deployment;
  deploymentsFile: string;
  accounts: Wallet[];
  node: ChildProcess;
  stop(): Promise<void>;
}

export async function startLocalNetwork(o: Partial<LocalNetworkOptions> = {}): Promise<LocalNetwork> {
  const opts = { ...defaultLocalNetworkOptions, ...o };
  const port = opts.port || (await freePort());
  const node = await startHardhatNode(port);
  const stop = async () => {
    provider.destroy();
    if (node.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => node.once("exit", () => resolve()));
    node.kill("SIGTERM");
    await exited;
  };
  const rpcUrl = `http://127.0.0.1:${port}`;
  const provider = rpcProvider(rpcUrl, 31337);
  try {
    const accounts = Array.from({ length: opts.accounts }, (_, i) => devWallet(i, provider));
    const deployment = await deployConcord(accounts[0]);
    const deploymentsFile = writeDeployment(deployment, ...(opts.deploymentsDir ? [opts.deploymentsDir] : []));
    const token = ConcordTestToken__factory.connect(deployment.token, accounts[0]);
    for (const a of accounts) await (await token.mint(a.address, opts.tokensPerAccount)).wait();
    if (opts.depositPerAccount > 0n) {
      for (const a of accounts) {
        await (await token.connect(a).approve(deployment.hub, opts.depositPerAccount)).wait();
        await (await Hub__factory.connect(deployment.hub, a).deposit(opts.depositPerAccount)).wait();
      }
    }
    return { rpcUrl, provider, deployment, deploymentsFile, accounts, node, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
