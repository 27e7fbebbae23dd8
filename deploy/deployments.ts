/** The deployments file: one JSON per chain id under `deployments/`, read back by every tool. */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Deployment } from "./lib";

export const DEPLOYMENTS_DIR = process.env.CONCORD_DEPLOYMENTS_DIR ?? join(__dirname, "..", "deployments");

export function deploymentPath(chainId: number | bigint, dir = DEPLOYMENTS_DIR): string {
  return join(dir, `${chainId}.json`);
}

export function readDeployment(chainId: number | bigint, dir = DEPLOYMENTS_DIR): Deployment | undefined {
  const path = deploymentPath(chainId, dir);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, "utf8")) as Deployment;
}

export function writeDeployment(deployment: Deployment, dir = DEPLOYMENTS_DIR): string {
  const path = deploymentPath(deployment.chainId, dir);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(deployment, null, 2) + "\n");
  return path;
}
