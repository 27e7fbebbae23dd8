/**
 * Reading the Hub back: a task as a plain object, the events of a transaction, the time of its block.
 */
import { ethers } from "hardhat";
import type { ContractTransactionResponse } from "ethers";
import type { Hub } from "../../typechain-types";

/** The task view as a plain object, for deep equality. */
export async function taskOf(hub: Hub, taskId: string) {
  const t = await hub.viewTask(taskId);
  return {
    status: t.status,
    dealId: t.dealId,
    index: t.index,
    contributionDeadline: t.contributionDeadline,
    revealDeadline: t.revealDeadline,
    finalDeadline: t.finalDeadline,
    contributorCount: t.contributorCount,
    winnerCount: t.winnerCount,
    revealCount: t.revealCount,
    consensusHash: t.consensusHash,
    resultDigest: t.resultDigest,
  };
}

/** The names of the Hub events a transaction emitted, in order. */
export async function eventNames(hub: Hub, tx: ContractTransactionResponse): Promise<string[]> {
  const receipt = await tx.wait();
  return receipt!.logs.map((log) => hub.interface.parseLog(log)?.name ?? "?");
}

/** The timestamp of the block that mined `tx`. */
export async function blockTimeOf(tx: ContractTransactionResponse): Promise<bigint> {
  const receipt = await tx.wait();
  const block = await ethers.provider.getBlock(receipt!.blockNumber);
  return BigInt(block!.timestamp);
}
