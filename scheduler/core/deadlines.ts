/**
 * The Hub's deadlines, derived from the deal's start and its category's timeref (Hub.sol l. 21–23, 176, 617–623), so
 * the scheduler plans with the same clock as the contract. Unix seconds, like the chain.
 */
import { CoreError } from "./errors";

export const CONTRIBUTION_DEADLINE_RATIO = 7;
export const REVEAL_DEADLINE_RATIO = 2;
export const FINAL_DEADLINE_RATIO = 10;

export interface Deadlines {
  /** contributions are refused from this second on */
  contribution: number;
  /** finalize is refused, and claim allowed, from this second on */
  final: number;
}

export function dealDeadlines(startTime: number, timeref: number): Deadlines {
  if (!Number.isSafeInteger(startTime) || startTime < 0 || !Number.isSafeInteger(timeref) || timeref < 0) {
    throw new CoreError("INVALID_AMOUNT", `start time and timeref must be integers >= 0, got ${startTime}, ${timeref}`);
  }
  return { contribution: startTime + CONTRIBUTION_DEADLINE_RATIO * timeref, final: startTime + FINAL_DEADLINE_RATIO * timeref };
}

/** The reveal deadline set when the quorum is reached at `consensusTime`. */
export function revealDeadline(consensusTime: number, timeref: number): number {
  return consensusTime + REVEAL_DEADLINE_RATIO * timeref;
}
