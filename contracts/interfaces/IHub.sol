// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClerk} from "./IClerk.sol";
import {IOracle} from "./IOracle.sol";

/// @title Hub: the lifecycle of every task
/// @notice A deal holds `volume` tasks, `taskId = keccak256(abi.encodePacked(dealId, index))`. Workers authorized by the
/// pool's scheduler commit `resultHash = keccak256(abi.encodePacked(taskId, resultDigest))` and
/// `resultSeal = keccak256(abi.encodePacked(worker, taskId, resultDigest))`; once `trust` equal hashes exist the task
/// enters REVEALING, the agreeing workers reveal their digest, and the scheduler finalizes: owners, winners and the
/// scheduler are paid, dissenters lose their stake. Without consensus by the final deadline anyone can claim: the
/// requester is refunded and the scheduler's stake is seized.
/// @dev Deadlines derive from the deal's start and its category's `timeref`: contributions before `start + 7·timeref`,
/// reveals before `consensusTime + 2·timeref`, finalization before `start + 10·timeref`, claims from then on.
interface IHub is IClerk, IOracle {
    /// @notice Task status. Moves UNSET → ACTIVE → REVEALING → COMPLETED; REVEALING → ACTIVE only through `reopen`;
    /// any non-final status → FAILED through `claim`. COMPLETED and FAILED are final.
    enum TaskStatus {
        UNSET,
        ACTIVE,
        REVEALING,
        COMPLETED,
        FAILED
    }

    /// @notice A contribution's status.
    enum ContributionStatus {
        UNSET,
        CONTRIBUTED,
        REVEALED,
        REJECTED
    }

    /// @notice A task as returned by `viewTask`.
    /// @param consensusHash The winning resultHash once consensus is reached (zero before).
    /// @param resultDigest The revealed result digest (zero before the first reveal).
    struct Task {
        TaskStatus status;
        bytes32 dealId;
        uint256 index;
        uint256 contributionDeadline;
        uint256 revealDeadline;
        uint256 finalDeadline;
        uint256 contributorCount;
        uint256 winnerCount;
        uint256 revealCount;
        bytes32 consensusHash;
        bytes32 resultDigest;
    }

    /// @notice A contribution as returned by `viewContribution`.
    /// @param sealPrefix The first 11 bytes of the committed resultSeal (all the Hub keeps).
    struct Contribution {
        ContributionStatus status;
        bytes11 sealPrefix;
        uint256 stake;
    }

    /// @notice A worker's contribution relayed by the scheduler, signed by the worker (EIP-712 `Contribution`).
    struct RelayedContribution {
        bytes32 dealId;
        uint256 index;
        address worker;
        bytes32 resultHash;
        bytes32 resultSeal;
        bytes signature;
    }

    /// @notice A worker's reveal relayed by the scheduler, signed by the worker (EIP-712 `Reveal`).
    struct RelayedReveal {
        bytes32 taskId;
        address worker;
        bytes32 resultDigest;
        bytes signature;
    }

    // ------------------------------------------------------------------ events

    /// @notice Emitted when a task becomes ACTIVE.
    event TaskInitialized(bytes32 indexed taskId, bytes32 indexed dealId, uint256 index);
    /// @notice Emitted when a worker commits to a result; its stake is locked.
    event ContributionCommitted(bytes32 indexed taskId, address indexed worker, bytes32 resultHash);
    /// @notice Emitted when `trust` workers agree: the task enters REVEALING.
    event ConsensusReached(bytes32 indexed taskId, bytes32 consensusHash, uint256 revealDeadline);
    /// @notice Emitted when a winner reveals its digest.
    event ContributionRevealed(bytes32 indexed taskId, address indexed worker, bytes32 resultDigest);
    /// @notice Emitted when nobody revealed in time: the group is rejected and the task is ACTIVE again.
    event TaskReopened(bytes32 indexed taskId);
    /// @notice Emitted when a task completes with its verified result.
    event TaskFinalized(bytes32 indexed taskId, bytes32 resultDigest, bytes results);
    /// @notice Emitted when the consumer's `receiveResult` reverted or ran out of gas; finalization stands.
    event CallbackFailed(bytes32 indexed taskId, address indexed callback);
    /// @notice Emitted when a task fails after its final deadline and the requester is refunded.
    event TaskClaimed(bytes32 indexed taskId, bytes32 indexed dealId, uint256 index);

    // ------------------------------------------------------------------ errors

    /// @notice Thrown when a task is not in one of the `allowed` statuses (a bitmap: bit i set = status i allowed).
    error HubUnexpectedTaskStatus(bytes32 taskId, TaskStatus current, uint256 allowed);
    /// @notice Thrown when a deal id does not name a deal.
    error HubUnknownDeal(bytes32 dealId);
    /// @notice Thrown when a task index is not below the deal's volume.
    error HubTaskIndexOutOfRange(bytes32 dealId, uint256 index, uint256 volume);
    /// @notice Thrown when the caller is not the deal's scheduler.
    error HubNotScheduler(bytes32 dealId, address caller);
    /// @notice Thrown when an action comes at or after its deadline.
    error HubDeadlineReached(bytes32 taskId, uint256 deadline);
    /// @notice Thrown when an action comes before the deadline it waits for.
    error HubDeadlineNotReached(bytes32 taskId, uint256 deadline);
    /// @notice Thrown when the scheduler's authorization of a worker for a task is invalid.
    error HubInvalidAuthorization(bytes32 taskId, address worker);
    /// @notice Thrown when a relayed item is not signed by its worker.
    error HubInvalidWorkerSignature(bytes32 taskId, address worker);
    /// @notice Thrown when a worker contributes twice to a task.
    error HubAlreadyContributed(bytes32 taskId, address worker);
    /// @notice Thrown when a task already holds `MAX_CONTRIBUTIONS` contributions.
    error HubTooManyContributions(bytes32 taskId);
    /// @notice Thrown when a result hash or seal is zero.
    error HubEmptyCommitment(bytes32 taskId);
    /// @notice Thrown when a worker without a CONTRIBUTED contribution tries to reveal.
    error HubUnexpectedContributionStatus(bytes32 taskId, address worker, ContributionStatus current);
    /// @notice Thrown when a revealed digest does not match the consensus hash or the worker's seal.
    error HubInvalidReveal(bytes32 taskId, address worker);
    /// @notice Thrown when finalizing with no reveal, or with reveals missing before the reveal deadline.
    error HubRevealsPending(bytes32 taskId, uint256 revealed, uint256 winners);
    /// @notice Thrown when reopening a task that has reveals (it must be finalized instead).
    error HubHasReveals(bytes32 taskId, uint256 revealed);
    /// @notice Thrown when the callback data does not hash to the consensus result digest.
    error HubCallbackDataMismatch(bytes32 taskId, bytes32 resultDigest, bytes32 dataHash);
    /// @notice Thrown when the transaction cannot give the callback its guaranteed gas.
    error HubNotEnoughGasForCallback(bytes32 taskId, uint256 gasLeft, uint256 needed);
    /// @notice Thrown when the single-worker path is used on a deal that needs more than one worker.
    error HubTrustTooHigh(bytes32 taskId, uint256 trust);
    /// @notice Thrown when a batch is empty.
    error HubEmptyBatch();

    // ------------------------------------------------------------------ lifecycle

    /// @notice Activates a task (scheduler only, before the contribution deadline).
    /// @return taskId The task id.
    function initialize(bytes32 dealId, uint256 index) external returns (bytes32 taskId);

    /// @notice Activates several tasks of a deal; tasks already active are skipped.
    function initializeBatch(bytes32 dealId, uint256[] calldata indexes) external;

    /// @notice Commits a worker's result; initializes the task when needed; locks the worker's stake.
    /// @param authorization The deal scheduler's EIP-712 signature of `Authorization(worker, taskId)`.
    function contribute(bytes32 dealId, uint256 index, bytes32 resultHash, bytes32 resultSeal, bytes calldata authorization)
        external;

    /// @notice Relays many workers' signed contributions in one transaction (the deal's scheduler only).
    function contributeBatch(RelayedContribution[] calldata items) external;

    /// @notice Reveals the digest behind the caller's winning contribution.
    function reveal(bytes32 taskId, bytes32 resultDigest) external;

    /// @notice Relays many workers' signed reveals in one transaction (the deal's scheduler only).
    function revealBatch(RelayedReveal[] calldata items) external;

    /// @notice After the reveal deadline with no reveal: the silent winners are rejected and the task is ACTIVE again.
    function reopen(bytes32 taskId) external;

    /// @notice Completes a task with its verified result and pays everyone (scheduler only, before the final deadline).
    /// @param results Where the full result lives (e.g. a URI with its digest); emitted, not stored.
    /// @param resultsCallback Data delivered to the deal's callback; its keccak256 must equal the result digest.
    /// Required when the deal has a callback, optional otherwise; stored and returned by `resultFor` when present.
    function finalize(bytes32 taskId, bytes calldata results, bytes calldata resultsCallback) external;

    /// @notice Single-worker path (trust ≤ 1): commit, reveal and finalize in one transaction, by the worker.
    /// @dev Keeps no contribution record (`contributorsOf` stays empty): the worker is in `ContributionRevealed`.
    function contributeAndFinalize(
        bytes32 dealId,
        uint256 index,
        bytes32 resultDigest,
        bytes calldata results,
        bytes calldata resultsCallback,
        bytes calldata authorization
    ) external;

    /// @notice After the final deadline, fails a task that is not COMPLETED: refunds the requester, seizes the
    /// scheduler's stake into the kitty, seizes the stakes of winners rejected at a reopen (they stayed silent) and
    /// unlocks every other contributor's stake. Anyone may call.
    function claim(bytes32 dealId, uint256 index) external;

    /// @notice Claims every task of a deal that is neither COMPLETED nor FAILED.
    /// @return claimed Number of tasks claimed.
    function claimDeal(bytes32 dealId) external returns (uint256 claimed);

    // ------------------------------------------------------------------ views

    /// @notice The id of task `index` of `dealId`.
    function taskIdOf(bytes32 dealId, uint256 index) external pure returns (bytes32);

    /// @notice A task (status UNSET and zero fields when never initialized).
    function viewTask(bytes32 taskId) external view returns (Task memory);

    /// @notice A worker's contribution to a task.
    function viewContribution(bytes32 taskId, address worker) external view returns (Contribution memory);

    /// @notice The addresses that contributed to a task, in order.
    function contributorsOf(bytes32 taskId) external view returns (address[] memory);

    /// @notice A worker's reputation: +1 per won task, halved per lost stake.
    function scoreOf(address worker) external view returns (uint256);

    /// @notice The stake each contribution to a deal locks (0 for an unknown deal).
    function workerStakeOf(bytes32 dealId) external view returns (uint256);

    /// @notice The stake the scheduler locks per task of a deal.
    function schedulerStakeOf(bytes32 dealId) external view returns (uint256);
}
