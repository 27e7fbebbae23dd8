/**
 * Failures of the commands that follow work through the network (`request run --wait`, `task show`, `result get`,
 * `claim`, `chain`): each is an expected outcome with a one-line message, never a stack, and exits 1.
 */
export type TaskFlowErrorCode =
  | "TIMEOUT" // the request was not finalized within --timeout
  | "TASK_FAILED" // the scheduler gave the task up, or it was claimed on chain
  | "REQUEST_DROPPED" // the order book retired the request (invalid, expired, cancelled)
  | "NOT_COMPLETED" // no result yet
  | "UNKNOWN_TASK"
  | "UNKNOWN_DEAL"
  | "DEADLINE_NOT_REACHED" // a claim before the final deadline
  | "NOTHING_TO_CLAIM"
  | "RESULT_MISMATCH" // the files fetched do not hash to the on-chain digest
  | "CHAIN_START"; // `concord chain` could not start or lost its node

export class TaskFlowError extends Error {
  override readonly name = "TaskFlowError";
  constructor(
    readonly code: TaskFlowErrorCode,
    message: string,
  ) {
    super(message);
  }
}
