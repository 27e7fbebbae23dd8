/**
 * Deployment of the whole protocol with any ethers signer: the in-process Hardhat network, `hardhat node`, or any
 * JSON-RPC endpoint. Idempotent when given the previous deployment: contracts that still have code are reused.
 */
import { BaseContract, ContractFactory, Signer, parseEther } from "ethers";
import MatchLibArtifact from "../artifacts/contracts/libraries/MatchLib.sol/MatchLib.json";
import {
  AppRegistry__factory,
  ConcordTestToken__factory,
  DatasetRegistry__factory,
  Hub__factory,
  WorkerpoolRegistry__factory,
} from "../typechain-types";

export interface Deployment {
  chainId: number;
  token: string;
  appRegistry: string;
  datasetRegistry: string;
  workerpoolRegistry: string;
  matchLib: string;
  hub: string;
  /** The Clerk is the Hub's address: one contract, two interfaces. */
  clerk: string;
  deployer: string;
  blockNumber: number;
}

export interface DeployOptions {
  /** An existing escrow token; a fresh ConcordTestToken (EIP-2612) otherwise. */
  token?: string;
  minWorkerStake: bigint;
  kittyMin: bigint;
  categories: { name: string; workClockTimeRef: number }[];
}

/** Default categories: the maximum run time of a task; every deadline is a multiple of it. */
export const DEFAULT_CATEGORIES = [
  { name: "XS", workClockTimeRef: 60 },
  { name: "S", workClockTimeRef: 300 },
  { name: "M", workClockTimeRef: 1200 },
  { name: "L", workClockTimeRef: 3600 },
  { name: "XL", workClockTimeRef: 10800 },
];

export const defaultDeployOptions: DeployOptions = {
  minWorkerStake: parseEther("0.1"),
  kittyMin: parseEther("0.1"),
  categories: DEFAULT_CATEGORIES,
};

async function hasCode(signer: Signer, address: string | undefined): Promise<boolean> {
  if (!address) return false;
  const code = await signer.provider!.getCode(address);
  return code !== "0x";
}

export async function deployConcord(
  signer: Signer,
  options: Partial<DeployOptions> = {},
  previous?: Partial<Deployment>,
): Promise<Deployment> {
  const opts = { ...defaultDeployOptions, ...options };
  const deployer = await signer.getAddress();
  const { chainId } = await signer.provider!.getNetwork();
  const reuse = async (key: keyof Deployment): Promise<string | undefined> =>
    (await hasCode(signer, previous?.[key] as string | undefined)) ? (previous![key] as string) : undefined;

  const orDeploy = async (existing: string | undefined, deploy: () => Promise<BaseContract>): Promise<string> =>
    existing ?? (await (await deploy()).waitForDeployment()).getAddress();

  const token = await orDeploy(opts.token ?? (await reuse("token")), () =>
    new ConcordTestToken__factory(signer).deploy(deployer),
  );
  const appRegistry = await orDeploy(await reuse("appRegistry"), () => new AppRegistry__factory(signer).deploy());
  const datasetRegistry = await orDeploy(await reuse("datasetRegistry"), () =>
    new DatasetRegistry__factory(signer).deploy(),
  );
  const workerpoolRegistry = await orDeploy(await reuse("workerpoolRegistry"), () =>
    new WorkerpoolRegistry__factory(signer).deploy(),
  );
  const matchLib = await orDeploy(await reuse("matchLib"), () =>
    new ContractFactory(MatchLibArtifact.abi, MatchLibArtifact.bytecode, signer).deploy(),
  );
  let hub = await reuse("hub");
  if (!hub) {
    const factory = new Hub__factory({ "contracts/libraries/MatchLib.sol:MatchLib": matchLib }, signer);
    const contract = await factory.deploy(
      deployer,
      token,
      appRegistry,
      datasetRegistry,
      workerpoolRegistry,
      opts.minWorkerStake,
      opts.kittyMin,
    );
    hub = await (await contract.waitForDeployment()).getAddress();
  }
  const hubContract = Hub__factory.connect(hub, signer);
  const existing = Number(await hubContract.categoryCount());
  for (const category of opts.categories.slice(existing)) {
    await (await hubContract.createCategory(category.name, category.workClockTimeRef)).wait();
  }
  const blockNumber = await signer.provider!.getBlockNumber();
  return {
    chainId: Number(chainId),
    token,
    appRegistry,
    datasetRegistry,
    workerpoolRegistry,
    matchLib,
    hub,
    clerk: hub,
    deployer,
    blockNumber: previous?.blockNumber ?? blockNumber,
  };
}
