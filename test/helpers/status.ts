/**
 * The Hub's status enums as the ABI returns them (bigint), and the `allowed` bitmap of HubUnexpectedTaskStatus.
 */

/** IHub.TaskStatus. */
export const Status = { UNSET: 0n, ACTIVE: 1n, REVEALING: 2n, COMPLETED: 3n, FAILED: 4n } as const;

/** IHub.ContributionStatus. */
export const Contribution = { UNSET: 0n, CONTRIBUTED: 1n, REVEALED: 2n, REJECTED: 3n } as const;

/** One status as its bit in the `allowed` bitmap of HubUnexpectedTaskStatus. */
export const bit = (status: bigint): bigint => 1n << status;

/** The `allowed` bitmap of HubUnexpectedTaskStatus for these statuses. */
export const allowed = (...statuses: bigint[]): bigint => statuses.reduce((acc, s) => acc | bit(s), 0n);

/** `allowed` of claim: UNSET, ACTIVE or REVEALING. */
export const CLAIMABLE = allowed(Status.UNSET, Status.ACTIVE, Status.REVEALING);
