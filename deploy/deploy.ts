/**
 * Deploys Concord to the network Hardhat is pointed at, reusing what an earlier run deployed (idempotent):
 *   npx hardhat run deploy/deploy.ts --network localhost           # a `hardhat node` on 127.0.0.1:8545
 *   CONCORD_RPC_URL=https://… CONCORD_DEPLOYER_KEY=0x… npx hardhat run deploy/deploy.ts --network custom
 * Optional: CONCORD_TOKEN=0x… uses an existing ERC-20 (with EIP-2612) as the escrow token.
 * Writes deployments/<chainId>.json.
 */
import { ethers } from "hardhat";
import { deployConcord } from "./lib";
import { readDeployment, writeDeployment } from "./deployments";

async function main() {
  const [signer] = await ethers.getSigners();
  if (!signer) throw new Error("no deployer account: set CONCORD_DEPLOYER_KEY for --network custom");
  const { chainId } = await ethers.provider.getNetwork();
  const previous = readDeployment(chainId);
  const deployment = await deployConcord(signer, { token: process.env.CONCORD_TOKEN }, previous);
  const path = writeDeployment(deployment);
  console.log(JSON.stringify(deployment, null, 2));
  console.log(`deployment written to ${path}`);
}

main().catch((error: unknown) => {
  console.error(`deploy failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
