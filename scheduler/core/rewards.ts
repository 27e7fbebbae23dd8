/**
 * The money of a task's settlement, mirrored exactly (bigint, integer division rounding down like Solidity) from the
 * contracts, so the scheduler can show what finalize will pay before sending it, and check what it did after:
 *
 * - RewardLib.sol `workerStake` (l. 12–15), `schedulerStake` (l. 18–20), `split` (l. 23–31), `kittyReward` (l. 37–42);
 * - Hub.sol `finalize` (l. 265–288): owners paid and the pool price split by the number of *revealed* winners
 *   (`_payOwners`, l. 283 and 343–354); every revealed contribution gets its stake back plus its share, every other one
 *   is seized into the kitty (`_settleContributions`, l. 284 and 358–373); then the scheduler gets its stake back, its
 *   share and the kitty reward computed on the kitty *after* those seizures (`_payScheduler`, l. 285 and 393–401);
 * - Hub.sol `contributeAndFinalize` (l. 318–320): one winner, no stake moved, no kitty reward (nothing seized);
 * - Hub.sol `_claim` (l. 456–482): the requester's payment unlocked, the scheduler's stake seized, winners rejected at a
 *   reopen seized, every other contributor unlocked.
 *
 * The on-chain score changes (winner +1, loser halved) are not money and are left out.
 */
import { CoreError } from "./errors";
import { MAX_CONTRIBUTIONS } from "./types";

/** RewardLib.SCHEDULER_STAKE_RATIO: % of the pool price the scheduler stakes per task. */
export const SCHEDULER_STAKE_RATIO = 30n;
/** RewardLib.KITTY_RATIO: % of the kitty a finalizing scheduler may receive. */
export const KITTY_RATIO = 10n;

/** The deal's prices and ratios (IClerk.Deal / `viewDeal`). */
export interface DealTerms {
  appPrice: bigint;
  datasetPrice: bigint;
  workerpoolPrice: bigint;
  /** % of the pool price each contribution stakes */
  workerStakeRatio: bigint | number;
  /** % of the pool price kept by the scheduler */
  schedulerRewardRatio: bigint | number;
}

/** The Hub's deploy-time constants (constructor `minWorkerStake_`, `kittyMin_`). */
export interface ProtocolTerms {
  minWorkerStake: bigint;
  kittyMin: bigint;
}

/** A contribution of the task at finalize time. */
export interface ContributionOutcome {
  worker: string;
  /** REVEALED on chain; anything else (CONTRIBUTED, REJECTED) is seized */
  revealed: boolean;
}

function amount(name: string, v: bigint): bigint {
  if (typeof v !== "bigint" || v < 0n) throw new CoreError("INVALID_AMOUNT", `${name} must be a bigint >= 0, got ${String(v)}`);
  return v;
}

function ratio(name: string, v: bigint | number): bigint {
  const r = typeof v === "number" && Number.isInteger(v) ? BigInt(v) : v;
  if (typeof r !== "bigint" || r < 0n || r > 100n) throw new CoreError("INVALID_AMOUNT", `${name} must be a percentage in [0, 100], got ${String(v)}`);
  return r;
}

/** RewardLib.workerStake: max(minStake, price·ratio/100). */
export function workerStake(workerpoolPrice: bigint, workerStakeRatio: bigint | number, minWorkerStake: bigint): bigint {
  const stake = (amount("workerpoolPrice", workerpoolPrice) * ratio("workerStakeRatio", workerStakeRatio)) / 100n;
  return stake < amount("minWorkerStake", minWorkerStake) ? minWorkerStake : stake;
}

/** RewardLib.schedulerStake: price·30/100. */
export function schedulerStake(workerpoolPrice: bigint): bigint {
  return (amount("workerpoolPrice", workerpoolPrice) * SCHEDULER_STAKE_RATIO) / 100n;
}

/**
 * RewardLib.split: the workers' part is price − price·ratio/100, split evenly; the scheduler takes the rest, rounding
 * dust included.
 */
export function splitPoolPrice(workerpoolPrice: bigint, schedulerRewardRatio: bigint | number, winners: number): { perWorker: bigint; toScheduler: bigint } {
  if (!Number.isInteger(winners) || winners < 1) throw new CoreError("NO_REVEALED_WINNER", `the pool price is split among >= 1 winner, got ${winners}`);
  const price = amount("workerpoolPrice", workerpoolPrice);
  const workersPart = price - (price * ratio("schedulerRewardRatio", schedulerRewardRatio)) / 100n;
  const perWorker = workersPart / BigInt(winners);
  return { perWorker, toScheduler: price - perWorker * BigInt(winners) };
}

/** RewardLib.kittyReward: min(kitty, max(kittyMin, kitty·10/100), seizedByTask). */
export function kittyReward(kitty: bigint, kittyMin: bigint, seizedByTask: bigint): bigint {
  let reward = (amount("kitty", kitty) * KITTY_RATIO) / 100n;
  if (reward < amount("kittyMin", kittyMin)) reward = kittyMin;
  if (reward > kitty) reward = kitty;
  return reward < amount("seizedByTask", seizedByTask) ? reward : seizedByTask;
}

export interface FinalizePayout {
  /** taken from the requester's frozen funds: app + dataset + pool price */
  requesterSpent: bigint;
  appOwner: bigint;
  datasetOwner: bigint;
  /** each contribution's stake */
  stake: bigint;
  /** each revealed winner's share of the pool price (its stake is returned on top) */
  perWinner: bigint;
  winners: { worker: string; reward: bigint; stakeReturned: bigint }[];
  /** every contribution that did not reveal: its stake goes to the kitty */
  losers: { worker: string; seized: bigint }[];
  seized: bigint;
  /** the scheduler's part of the pool price, rounding dust included */
  schedulerShare: bigint;
  kittyReward: bigint;
  /** credited to the scheduler: share + kitty reward */
  schedulerReward: bigint;
  /** unlocked back to the scheduler */
  schedulerStakeReturned: bigint;
  kittyBefore: bigint;
  kittyAfter: bigint;
}

/**
 * What `finalize` pays, given the deal, the protocol constants, the kitty just before, and every contribution of the
 * task with whether it revealed. Throws NO_REVEALED_WINNER when nobody revealed (the Hub reverts, l. 274).
 */
export function finalizePayout(deal: DealTerms, protocol: ProtocolTerms, kitty: bigint, contributions: readonly ContributionOutcome[]): FinalizePayout {
  if (contributions.length > MAX_CONTRIBUTIONS) throw new CoreError("INVALID_AMOUNT", `a task holds at most ${MAX_CONTRIBUTIONS} contributions, got ${contributions.length}`);
  const revealed = contributions.filter((c) => c.revealed);
  if (revealed.length === 0) throw new CoreError("NO_REVEALED_WINNER", "finalize needs at least one revealed winner");
  const { perWorker, toScheduler } = splitPoolPrice(deal.workerpoolPrice, deal.schedulerRewardRatio, revealed.length);
  const stake = workerStake(deal.workerpoolPrice, deal.workerStakeRatio, protocol.minWorkerStake);
  const losers = contributions.filter((c) => !c.revealed).map((c) => ({ worker: c.worker, seized: stake }));
  const seized = stake * BigInt(losers.length);
  // The seizures reach the kitty before the scheduler's reward is computed (Hub.sol l. 284 then 285).
  const kittyWithSeized = amount("kitty", kitty) + seized;
  const reward = kittyReward(kittyWithSeized, protocol.kittyMin, seized);
  return {
    requesterSpent: amount("appPrice", deal.appPrice) + amount("datasetPrice", deal.datasetPrice) + deal.workerpoolPrice,
    appOwner: deal.appPrice,
    datasetOwner: deal.datasetPrice,
    stake,
    perWinner: perWorker,
    winners: revealed.map((c) => ({ worker: c.worker, reward: perWorker, stakeReturned: stake })),
    losers,
    seized,
    schedulerShare: toScheduler,
    kittyReward: reward,
    schedulerReward: toScheduler + reward,
    schedulerStakeReturned: schedulerStake(deal.workerpoolPrice),
    kittyBefore: kitty,
    kittyAfter: kittyWithSeized - reward,
  };
}

/**
 * What `contributeAndFinalize` (trust ≤ 1) pays: one winner, whose stake is never locked, nothing seized, so no kitty
 * reward (Hub.sol l. 318–320).
 */
export function singleWorkerPayout(deal: DealTerms, protocol: ProtocolTerms, kitty: bigint, worker: string): FinalizePayout {
  const p = finalizePayout(deal, protocol, kitty, [{ worker, revealed: true }]);
  return { ...p, stake: 0n, winners: [{ worker, reward: p.perWinner, stakeReturned: 0n }] };
}

/** A contribution at claim time: REJECTED ones (silent winners after a reopen) are seized. */
export interface ClaimContribution {
  worker: string;
  rejected: boolean;
}

export interface ClaimPayout {
  /** unlocked back to the requester: app + dataset + pool price */
  requesterRefund: bigint;
  /** the scheduler's stake, seized into the kitty */
  schedulerSeized: bigint;
  unlocked: { worker: string; amount: bigint }[];
  seized: { worker: string; amount: bigint }[];
  kittyBefore: bigint;
  kittyAfter: bigint;
}

/** What `claim` moves for a task that failed (Hub.sol `_claim`, l. 456–482). */
export function claimPayout(deal: DealTerms, protocol: ProtocolTerms, kitty: bigint, contributions: readonly ClaimContribution[]): ClaimPayout {
  const stake = workerStake(deal.workerpoolPrice, deal.workerStakeRatio, protocol.minWorkerStake);
  const schedulerSeized = schedulerStake(deal.workerpoolPrice);
  const seized = contributions.filter((c) => c.rejected).map((c) => ({ worker: c.worker, amount: stake }));
  const unlocked = contributions.filter((c) => !c.rejected).map((c) => ({ worker: c.worker, amount: stake }));
  return {
    requesterRefund: amount("appPrice", deal.appPrice) + amount("datasetPrice", deal.datasetPrice) + deal.workerpoolPrice,
    schedulerSeized,
    unlocked,
    seized,
    kittyBefore: amount("kitty", kitty),
    kittyAfter: kitty + schedulerSeized + stake * BigInt(seized.length),
  };
}
