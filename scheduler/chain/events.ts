/**
 * The Hub's lifecycle events, decoded into plain typed objects (shared by the chain client, which reads them from
 * receipts, and the watcher, which reads them from `eth_getLogs`). Names and fields mirror `IClerk.sol` / `IHub.sol`.
 */
import type { Log } from "ethers";
import { Hub__factory } from "../../typechain-types";

export interface HubEventArgs {
  DealMatched: {
    dealId: string;
    requestOrderHash: string;
    workerpool: bigint;
    appOrderHash: string;
    datasetOrderHash: string;
    workerpoolOrderHash: string;
    beneficiary: string;
    volume: bigint;
    params: string;
  };
  TaskInitialized: { taskId: string; dealId: string; index: bigint };
  ContributionCommitted: { taskId: string; worker: string; resultHash: string };
  ConsensusReached: { taskId: string; consensusHash: string; revealDeadline: bigint };
  ContributionRevealed: { taskId: string; worker: string; resultDigest: string };
  TaskReopened: { taskId: string };
  TaskFinalized: { taskId: string; resultDigest: string; results: string };
  CallbackFailed: { taskId: string; callback: string };
  TaskClaimed: { taskId: string; dealId: string; index: bigint };
}

export type HubEventName = keyof HubEventArgs;

/** Every lifecycle event the scheduler follows, in no particular order. */
export const HUB_EVENTS: readonly HubEventName[] = [
  "DealMatched",
  "TaskInitialized",
  "ContributionCommitted",
  "ConsensusReached",
  "ContributionRevealed",
  "TaskReopened",
  "TaskFinalized",
  "CallbackFailed",
  "TaskClaimed",
];

/** Where a log sits in the chain: events are totally ordered by (blockNumber, logIndex). */
export interface LogPosition {
  blockNumber: number;
  blockHash: string;
  transactionHash: string;
  transactionIndex: number;
  logIndex: number;
}

export type HubEvent = { [N in HubEventName]: { name: N; args: HubEventArgs[N] } & LogPosition }[HubEventName];

/** Narrows a HubEvent by name: `if (isEvent(e, "TaskFinalized")) e.args.resultDigest`. */
export function isEvent<N extends HubEventName>(e: HubEvent, name: N): e is Extract<HubEvent, { name: N }> {
  return e.name === name;
}

export const HUB_INTERFACE = Hub__factory.createInterface();

/** topic0 of each followed event. */
export function eventTopics(names: readonly HubEventName[] = HUB_EVENTS): string[] {
  return names.map((n) => HUB_INTERFACE.getEvent(n).topicHash);
}

/** The followed events by topic0 (ethers' parseLog would hash every event signature of the Hub for each log). */
const FOLLOWED = new Map(
  HUB_EVENTS.map((name) => {
    const fragment = HUB_INTERFACE.getEvent(name)!;
    return [fragment.topicHash.toLowerCase(), fragment] as const;
  }),
);

/** Decodes a Hub log into a HubEvent; null for a log of another contract or event, or one that does not decode. */
export function decodeHubLog(log: Log, hub?: string): HubEvent | null {
  if (hub !== undefined && log.address.toLowerCase() !== hub.toLowerCase()) return null;
  const fragment = log.topics.length > 0 ? FOLLOWED.get(log.topics[0].toLowerCase()) : undefined;
  if (!fragment) return null;
  let values;
  try {
    values = HUB_INTERFACE.decodeEventLog(fragment, log.data, log.topics);
  } catch {
    return null;
  }
  const args: Record<string, unknown> = {};
  fragment.inputs.forEach((input, i) => {
    args[input.name] = values[i];
  });
  return {
    name: fragment.name as HubEventName,
    args,
    blockNumber: log.blockNumber,
    blockHash: log.blockHash,
    transactionHash: log.transactionHash,
    transactionIndex: log.transactionIndex,
    logIndex: log.index,
  } as HubEvent;
}

/** The decoded Hub events of a receipt's logs, in log order. */
export function decodeHubLogs(logs: readonly Log[], hub: string): HubEvent[] {
  const events: HubEvent[] = [];
  for (const log of logs) {
    const e = decodeHubLog(log, hub);
    if (e) events.push(e);
  }
  return events;
}

const DEAL_MATCHED_TOPIC = HUB_INTERFACE.getEvent("DealMatched")!.topicHash.toLowerCase();

/**
 * The chain watcher's `relevant` filter for one scheduler, from a log's topics alone: a DealMatched of `workerpool`
 * (its third indexed topic), or an event of a task `knowsTask` (every task event's first indexed topic is its task
 * id). Topics are compared in lowercase: a node may return mixed-case hex.
 */
export function relevantTo(workerpool: bigint, knowsTask: (taskId: string) => boolean): (log: Pick<Log, "topics">) => boolean {
  return (log) => {
    const [topic0, topic1, , topic3] = log.topics;
    if (topic0?.toLowerCase() === DEAL_MATCHED_TOPIC) return topic3 !== undefined && BigInt(topic3) === workerpool;
    return topic1 !== undefined && knowsTask(topic1.toLowerCase());
  };
}
