/**
 * From a finished run to what the worker commits to. Pure.
 *
 * The digest is the directory digest of /out, except for deals with an on-chain callback: there the consensus is on
 * keccak256 of the exact bytes of /out/callback-data, because `finalize` checks keccak256(resultsCallback) against the
 * consensus digest on chain.
 */
import { resultDigestForCallback } from "../../sdk/encoding";
import { commitment } from "../../sdk/orders";
import { WorkerError } from "./errors";

export interface RunOutcome {
  /** directoryDigest of the output directory */
  digest: string;
  /** bytes of /out/callback-data, when the app wrote it */
  callbackData?: Uint8Array;
}

/** The result digest of a run; a callback deal whose app wrote no callback-data cannot be committed. */
export function resultDigestOf(run: RunOutcome, callback: boolean): string {
  if (!callback) return run.digest;
  if (run.callbackData === undefined) {
    throw new WorkerError("NO_CALLBACK_DATA", "the deal has a callback, but the app wrote no /out/callback-data");
  }
  return resultDigestForCallback(run.callbackData);
}

export interface Commitment {
  resultDigest: string;
  resultHash: string;
  resultSeal: string;
}

/** resultHash = keccak256(taskId ‖ digest), resultSeal = keccak256(worker ‖ taskId ‖ digest). */
export function commitTo(worker: string, taskId: string, resultDigest: string): Commitment {
  return { resultDigest, ...commitment(worker, taskId, resultDigest) };
}
