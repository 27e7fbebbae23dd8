// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {Clerk} from "./Clerk.sol";
import {IHub} from "./interfaces/IHub.sol";
import {IOracle} from "./interfaces/IOracle.sol";
import {IOracleConsumer} from "./interfaces/IOracleConsumer.sol";
import {IAppRegistry, IDatasetRegistry, IWorkerpoolRegistry} from "./interfaces/IRegistries.sol";
import {SignatureLib} from "./libraries/SignatureLib.sol";
import {OrderLib} from "./libraries/OrderLib.sol";
import {RewardLib} from "./libraries/RewardLib.sol";

/// @title Concord Hub: task lifecycle on top of the Clerk (one deployed contract)
contract Hub is IHub, Clerk {
    /// @notice Gas guaranteed to a consumer's `receiveResult`.
    uint256 public constant CALLBACK_GAS = 100_000;
    /// @dev Gas the Hub needs around the callback (cold account access, event on failure).
    uint256 private constant CALLBACK_OVERHEAD = 12_000;
    uint256 private constant CONTRIBUTION_DEADLINE_RATIO = 7;
    uint256 private constant REVEAL_DEADLINE_RATIO = 2;
    uint256 private constant FINAL_DEADLINE_RATIO = 10;

    /// @dev A task in two slots. `digest` holds the consensus hash until the first reveal, then the result digest.
    struct TaskRecord {
        TaskStatus status;
        /// the deal id (152 bits, see Clerk `_matchOrders`)
        uint152 deal;
        uint32 index;
        uint8 contributorCount;
        uint8 winnerCount;
        uint8 revealCount;
        uint40 revealDeadline;
        bytes32 digest;
    }

    /// @dev A contribution in one slot. The seal is kept as its first 11 bytes: a copier must guess 88 bits of a hash
    /// of a digest it does not know (2^-88 per attempt): for any practical purpose as strong as the full seal.
    struct ContributionRecord {
        address worker;
        ContributionStatus status;
        bytes11 seal;
    }

    /// @dev The contributions sharing a resultHash: how many, and which positions (bit i = contribution i), so that
    /// `reopen` rejects exactly the silent winning group.
    struct Group {
        uint8 size;
        uint32 members;
    }

    mapping(bytes32 taskId => TaskRecord) private _tasks;
    mapping(bytes32 taskId => mapping(uint256 position => ContributionRecord)) private _contributions;
    mapping(bytes32 taskId => mapping(bytes32 resultHash => Group)) private _groups;
    mapping(bytes32 taskId => bytes) private _callbackData;

    /// @param owner_ Protocol owner: creates categories.
    /// @param token_ Escrow token.
    /// @param minWorkerStake_ Least stake of any contribution, even on a free pool.
    /// @param kittyMin_ Least kitty reward per finalization.
    constructor(
        address owner_,
        IERC20 token_,
        IAppRegistry apps_,
        IDatasetRegistry datasets_,
        IWorkerpoolRegistry workerpools_,
        uint256 minWorkerStake_,
        uint256 kittyMin_
    ) Clerk(owner_, token_, apps_, datasets_, workerpools_, minWorkerStake_, kittyMin_) {}

    // ================================================================== initialize

    /// @inheritdoc IHub
    function initialize(bytes32 dealId, uint256 index) external nonReentrant returns (bytes32 taskId) {
        Deal storage deal = _dealOf(dealId, index);
        _onlyScheduler(deal, dealId);
        taskId = _taskId(dealId, index);
        TaskRecord storage task = _tasks[taskId];
        _expectStatus(taskId, task.status, _bit(TaskStatus.UNSET));
        _initialize(task, taskId, dealId, index, deal);
    }

    /// @inheritdoc IHub
    function initializeBatch(bytes32 dealId, uint256[] calldata indexes) external nonReentrant {
        if (indexes.length == 0) revert HubEmptyBatch();
        for (uint256 i = 0; i < indexes.length; ++i) {
            Deal storage deal = _dealOf(dealId, indexes[i]);
            if (i == 0) _onlyScheduler(deal, dealId);
            bytes32 taskId = _taskId(dealId, indexes[i]);
            TaskRecord storage task = _tasks[taskId];
            if (task.status == TaskStatus.UNSET) _initialize(task, taskId, dealId, indexes[i], deal);
        }
    }

    function _initialize(TaskRecord storage task, bytes32 taskId, bytes32 dealId, uint256 index, Deal storage deal)
        private
    {
        uint256 deadline = _contributionDeadline(deal);
        if (block.timestamp >= deadline) revert HubDeadlineReached(taskId, deadline);
        task.status = TaskStatus.ACTIVE;
        task.deal = uint152(uint256(dealId));
        task.index = uint32(index);
        emit TaskInitialized(taskId, dealId, index);
    }

    // ================================================================== contribute

    /// @inheritdoc IHub
    function contribute(bytes32 dealId, uint256 index, bytes32 resultHash, bytes32 resultSeal, bytes calldata authorization)
        external
        nonReentrant
    {
        Deal storage deal = _dealOf(dealId, index);
        bytes32 taskId = _taskId(dealId, index);
        _checkAuthorization(deal, taskId, msg.sender, authorization);
        _contribute(deal, dealId, index, taskId, msg.sender, resultHash, resultSeal);
    }

    /// @inheritdoc IHub
    function contributeBatch(RelayedContribution[] calldata items) external nonReentrant {
        if (items.length == 0) revert HubEmptyBatch();
        bytes32 checkedDeal;
        for (uint256 i = 0; i < items.length; ++i) {
            RelayedContribution calldata item = items[i];
            Deal storage deal = _dealOf(item.dealId, item.index);
            if (item.dealId != checkedDeal) {
                _onlyScheduler(deal, item.dealId);
                checkedDeal = item.dealId;
            }
            bytes32 taskId = _taskId(item.dealId, item.index);
            bytes32 digest = _hashTypedDataV4(OrderLib.hashContribution(taskId, item.resultHash, item.resultSeal));
            if (!SignatureLib.isValid(item.worker, digest, item.signature)) {
                revert HubInvalidWorkerSignature(taskId, item.worker);
            }
            _contribute(deal, item.dealId, item.index, taskId, item.worker, item.resultHash, item.resultSeal);
        }
    }

    function _contribute(
        Deal storage deal,
        bytes32 dealId,
        uint256 index,
        bytes32 taskId,
        address worker,
        bytes32 resultHash,
        bytes32 resultSeal
    ) private {
        if (resultHash == 0 || resultSeal == 0) revert HubEmptyCommitment(taskId);
        TaskRecord storage task = _tasks[taskId];
        TaskStatus status = task.status;
        if (status == TaskStatus.UNSET) {
            _initialize(task, taskId, dealId, index, deal);
        } else {
            _expectStatus(taskId, status, _bit(TaskStatus.ACTIVE));
            uint256 deadline = _contributionDeadline(deal);
            if (block.timestamp >= deadline) revert HubDeadlineReached(taskId, deadline);
        }
        uint256 n = task.contributorCount;
        if (n >= MAX_CONTRIBUTIONS) revert HubTooManyContributions(taskId);
        mapping(uint256 => ContributionRecord) storage contributions = _contributions[taskId];
        for (uint256 i = 0; i < n; ++i) {
            if (contributions[i].worker == worker) revert HubAlreadyContributed(taskId, worker);
        }

        _lock(worker, _workerStake(deal));
        contributions[n] = ContributionRecord(worker, ContributionStatus.CONTRIBUTED, bytes11(resultSeal));
        task.contributorCount = uint8(n + 1);
        emit ContributionCommitted(taskId, worker, resultHash);

        Group storage group = _groups[taskId][resultHash];
        uint256 size = group.size + 1;
        group.size = uint8(size);
        group.members |= uint32(1 << n);
        uint256 quorum = _quorum(deal);
        if (size >= quorum) {
            uint256 revealDeadline = block.timestamp + REVEAL_DEADLINE_RATIO * deal.timeref;
            task.status = TaskStatus.REVEALING;
            task.winnerCount = uint8(quorum);
            task.revealDeadline = uint40(revealDeadline);
            task.digest = resultHash;
            emit ConsensusReached(taskId, resultHash, revealDeadline);
        }
    }

    // ================================================================== reveal and reopen

    /// @inheritdoc IHub
    function reveal(bytes32 taskId, bytes32 resultDigest) external nonReentrant {
        _reveal(taskId, msg.sender, resultDigest);
    }

    /// @inheritdoc IHub
    function revealBatch(RelayedReveal[] calldata items) external nonReentrant {
        if (items.length == 0) revert HubEmptyBatch();
        for (uint256 i = 0; i < items.length; ++i) {
            RelayedReveal calldata item = items[i];
            TaskRecord storage task = _tasks[item.taskId];
            _expectStatus(item.taskId, task.status, _bit(TaskStatus.REVEALING));
            bytes32 dealId = bytes32(uint256(task.deal));
            _onlyScheduler(_deals[dealId], dealId);
            bytes32 digest = _hashTypedDataV4(OrderLib.hashReveal(item.taskId, item.resultDigest));
            if (!SignatureLib.isValid(item.worker, digest, item.signature)) {
                revert HubInvalidWorkerSignature(item.taskId, item.worker);
            }
            _reveal(item.taskId, item.worker, item.resultDigest);
        }
    }

    function _reveal(bytes32 taskId, address worker, bytes32 resultDigest) private {
        TaskRecord storage task = _tasks[taskId];
        _expectStatus(taskId, task.status, _bit(TaskStatus.REVEALING));
        uint256 deadline = task.revealDeadline;
        if (block.timestamp >= deadline) revert HubDeadlineReached(taskId, deadline);

        (ContributionRecord storage c, uint256 position) = _contributionOf(taskId, task.contributorCount, worker);
        if (c.status != ContributionStatus.CONTRIBUTED) revert HubUnexpectedContributionStatus(taskId, worker, c.status);
        uint256 revealed = task.revealCount;
        bytes32 consensusHash = revealed == 0 ? task.digest : keccak256(abi.encodePacked(taskId, task.digest));
        // Only a member of the winning group, revealing the digest behind its own seal, is a winner.
        if (
            (_groups[taskId][consensusHash].members >> position) & 1 == 0
                || keccak256(abi.encodePacked(taskId, resultDigest)) != consensusHash
                || bytes11(keccak256(abi.encodePacked(worker, taskId, resultDigest))) != c.seal
        ) {
            revert HubInvalidReveal(taskId, worker);
        }

        c.status = ContributionStatus.REVEALED;
        task.revealCount = uint8(revealed + 1);
        if (revealed == 0) task.digest = resultDigest;
        emit ContributionRevealed(taskId, worker, resultDigest);
    }

    /// @inheritdoc IHub
    function reopen(bytes32 taskId) external nonReentrant {
        TaskRecord storage task = _tasks[taskId];
        _expectStatus(taskId, task.status, _bit(TaskStatus.REVEALING));
        bytes32 dealId = bytes32(uint256(task.deal));
        Deal storage deal = _deals[dealId];
        _onlyScheduler(deal, dealId);
        uint256 deadline = task.revealDeadline;
        if (block.timestamp < deadline) revert HubDeadlineNotReached(taskId, deadline);
        deadline = _finalDeadline(deal);
        if (block.timestamp >= deadline) revert HubDeadlineReached(taskId, deadline);
        if (task.revealCount != 0) revert HubHasReveals(taskId, task.revealCount);

        bytes32 consensusHash = task.digest;
        uint256 members = _groups[taskId][consensusHash].members;
        mapping(uint256 => ContributionRecord) storage contributions = _contributions[taskId];
        for (uint256 i = 0; members != 0; ++i) {
            if (members & 1 != 0) contributions[i].status = ContributionStatus.REJECTED;
            members >>= 1;
        }
        delete _groups[taskId][consensusHash];
        task.status = TaskStatus.ACTIVE;
        task.winnerCount = 0;
        task.revealDeadline = 0;
        task.digest = 0;
        emit TaskReopened(taskId);
    }

    // ================================================================== finalize

    /// @inheritdoc IHub
    function finalize(bytes32 taskId, bytes calldata results, bytes calldata resultsCallback) external nonReentrant {
        TaskRecord storage task = _tasks[taskId];
        _expectStatus(taskId, task.status, _bit(TaskStatus.REVEALING));
        bytes32 dealId = bytes32(uint256(task.deal));
        Deal storage deal = _deals[dealId];
        _onlyScheduler(deal, dealId);
        uint256 deadline = _finalDeadline(deal);
        if (block.timestamp >= deadline) revert HubDeadlineReached(taskId, deadline);
        uint256 revealed = task.revealCount;
        if (revealed == 0 || (revealed < task.winnerCount && block.timestamp < task.revealDeadline)) {
            revert HubRevealsPending(taskId, revealed, task.winnerCount);
        }
        bytes32 resultDigest = task.digest;
        _checkCallbackData(taskId, deal, resultDigest, resultsCallback);

        task.status = TaskStatus.COMPLETED;
        if (resultsCallback.length != 0) _callbackData[taskId] = resultsCallback;

        (uint256 perWorker, uint256 toScheduler) = _payOwners(deal, revealed);
        uint256 seized = _settleContributions(taskId, task.contributorCount, _workerStake(deal), perWorker);
        _payScheduler(deal, toScheduler, seized);
        emit TaskFinalized(taskId, resultDigest, results);
        _callback(taskId, deal.callback, resultsCallback);
    }

    /// @inheritdoc IHub
    function contributeAndFinalize(
        bytes32 dealId,
        uint256 index,
        bytes32 resultDigest,
        bytes calldata results,
        bytes calldata resultsCallback,
        bytes calldata authorization
    ) external nonReentrant {
        Deal storage deal = _dealOf(dealId, index);
        bytes32 taskId = _taskId(dealId, index);
        _checkAuthorization(deal, taskId, msg.sender, authorization);
        _checkSingleWorker(deal, taskId, resultDigest);
        _checkCallbackData(taskId, deal, resultDigest, resultsCallback);

        _tasks[taskId] = TaskRecord({
            status: TaskStatus.COMPLETED,
            deal: uint152(uint256(dealId)),
            index: uint32(index),
            contributorCount: 0,
            winnerCount: 1,
            revealCount: 1,
            revealDeadline: 0,
            digest: resultDigest
        });
        if (resultsCallback.length != 0) _callbackData[taskId] = resultsCallback;
        emit ContributionRevealed(taskId, msg.sender, resultDigest);

        (uint256 perWorker, uint256 toScheduler) = _payOwners(deal, 1);
        _payWinner(msg.sender, 0, perWorker);
        _payScheduler(deal, toScheduler, 0);
        emit TaskFinalized(taskId, resultDigest, results);
        _callback(taskId, deal.callback, resultsCallback);
    }

    /// @dev Preconditions of the single-worker path; the stake is locked and released within the transaction, so
    /// only its availability is checked.
    function _checkSingleWorker(Deal storage deal, bytes32 taskId, bytes32 resultDigest) private view {
        if (deal.trust > 1) revert HubTrustTooHigh(taskId, deal.trust);
        TaskRecord storage task = _tasks[taskId];
        TaskStatus status = task.status;
        if (status != TaskStatus.UNSET && !(status == TaskStatus.ACTIVE && task.contributorCount == 0)) {
            revert HubUnexpectedTaskStatus(taskId, status, _bit(TaskStatus.UNSET) | _bit(TaskStatus.ACTIVE));
        }
        uint256 deadline = _contributionDeadline(deal);
        if (block.timestamp >= deadline) revert HubDeadlineReached(taskId, deadline);
        if (resultDigest == 0) revert HubEmptyCommitment(taskId);
        uint256 stake = _workerStake(deal);
        uint256 balance = _accounts[msg.sender].balance;
        if (balance < stake) revert ClerkInsufficientBalance(msg.sender, balance, stake);
    }

    /// @dev Spends the requester's frozen payment: app and dataset owners are paid now; returns the pool's split.
    function _payOwners(Deal storage deal, uint256 winners)
        private
        returns (uint256 perWorker, uint256 toScheduler)
    {
        uint256 appPrice = deal.appPrice;
        uint256 datasetPrice = deal.datasetPrice;
        uint256 poolPrice = deal.workerpoolPrice;
        _spendFrozen(deal.requester, appPrice + datasetPrice + poolPrice);
        if (appPrice != 0) _credit(_apps.ownerOf(deal.app), appPrice);
        if (datasetPrice != 0) _credit(_datasets.ownerOf(deal.dataset), datasetPrice);
        return RewardLib.split(poolPrice, deal.schedulerRewardRatio, winners);
    }

    /// @dev Winners (revealed) get their stake back plus their share; every other contributor's stake is seized
    /// into the kitty and its score halved. Returns the total seized.
    function _settleContributions(bytes32 taskId, uint256 n, uint256 stake, uint256 perWorker)
        private
        returns (uint256 seized)
    {
        mapping(uint256 => ContributionRecord) storage contributions = _contributions[taskId];
        for (uint256 i = 0; i < n; ++i) {
            ContributionRecord storage c = contributions[i];
            address worker = c.worker;
            if (c.status == ContributionStatus.REVEALED) {
                _payWinner(worker, stake, perWorker);
            } else {
                _penalize(worker, stake);
                seized += stake;
            }
        }
    }

    /// @dev A losing contributor: its stake goes to the kitty and its score is halved.
    function _penalize(address worker, uint256 stake) private {
        _seize(worker, stake);
        Account storage a = _accounts[worker];
        a.score = a.score / 2;
    }

    /// @dev Returns a winner's stake, pays its share and raises its score, in one account write.
    function _payWinner(address worker, uint256 stake, uint256 amount) private {
        Account storage a = _accounts[worker];
        uint256 balance = a.balance + stake + amount;
        if (balance > type(uint112).max) revert ClerkBalanceOverflow(worker);
        a.frozen -= uint112(stake);
        a.balance = uint112(balance);
        if (a.score < type(uint32).max) a.score += 1;
    }

    /// @dev Returns the scheduler's stake and pays its share plus the kitty reward, capped by what this task seized.
    function _payScheduler(Deal storage deal, uint256 share, uint256 seized) private {
        address scheduler = deal.scheduler;
        uint256 stake = RewardLib.schedulerStake(deal.workerpoolPrice);
        if (stake != 0) _unlock(scheduler, stake);
        uint256 kittyShare = RewardLib.kittyReward(_kitty, _kittyMin, seized);
        if (kittyShare != 0) _kitty -= kittyShare;
        uint256 amount = share + kittyShare;
        if (amount != 0) _credit(scheduler, amount);
    }

    /// @dev With a callback or callback data, the data must hash to the consensus digest.
    function _checkCallbackData(bytes32 taskId, Deal storage deal, bytes32 resultDigest, bytes calldata data) private view {
        if (deal.callback == address(0) && data.length == 0) return;
        bytes32 dataHash = keccak256(data);
        if (dataHash != resultDigest) revert HubCallbackDataMismatch(taskId, resultDigest, dataHash);
    }

    /// @dev Calls the consumer with exactly CALLBACK_GAS, refusing to run when the transaction cannot afford it;
    /// its failure (revert, out-of-gas, return bomb) is reported, never propagated. No return data is copied.
    function _callback(bytes32 taskId, address callback, bytes calldata data) private {
        if (callback == address(0)) return;
        bytes memory payload = abi.encodeCall(IOracleConsumer.receiveResult, (taskId, data));
        uint256 needed = (CALLBACK_GAS * 64) / 63 + CALLBACK_OVERHEAD;
        uint256 available = gasleft();
        if (available < needed) revert HubNotEnoughGasForCallback(taskId, available, needed);
        bool success;
        assembly ("memory-safe") {
            success := call(CALLBACK_GAS, callback, 0, add(payload, 32), mload(payload), 0, 0)
        }
        if (!success) emit CallbackFailed(taskId, callback);
    }

    // ================================================================== claim

    /// @inheritdoc IHub
    function claim(bytes32 dealId, uint256 index) external nonReentrant {
        Deal storage deal = _dealOf(dealId, index);
        bytes32 taskId = _taskId(dealId, index);
        TaskRecord storage task = _tasks[taskId];
        _expectStatus(
            taskId, task.status, _bit(TaskStatus.UNSET) | _bit(TaskStatus.ACTIVE) | _bit(TaskStatus.REVEALING)
        );
        uint256 deadline = _finalDeadline(deal);
        if (block.timestamp < deadline) revert HubDeadlineNotReached(taskId, deadline);
        _claim(task, taskId, dealId, index, deal);
    }

    /// @inheritdoc IHub
    function claimDeal(bytes32 dealId) external nonReentrant returns (uint256 claimed) {
        Deal storage deal = _dealOf(dealId, 0);
        uint256 deadline = _finalDeadline(deal);
        if (block.timestamp < deadline) revert HubDeadlineNotReached(_taskId(dealId, 0), deadline);
        uint256 volume = deal.volume;
        for (uint256 index = 0; index < volume; ++index) {
            bytes32 taskId = _taskId(dealId, index);
            TaskRecord storage task = _tasks[taskId];
            TaskStatus status = task.status;
            if (status == TaskStatus.COMPLETED || status == TaskStatus.FAILED) continue;
            _claim(task, taskId, dealId, index, deal);
            ++claimed;
        }
    }

    function _claim(TaskRecord storage task, bytes32 taskId, bytes32 dealId, uint256 index, Deal storage deal) private {
        if (task.status == TaskStatus.UNSET) {
            task.deal = uint152(uint256(dealId));
            task.index = uint32(index);
        }
        task.status = TaskStatus.FAILED;

        uint256 price = uint256(deal.appPrice) + deal.datasetPrice + deal.workerpoolPrice;
        if (price != 0) _unlock(deal.requester, price);
        uint256 schedulerStake = RewardLib.schedulerStake(deal.workerpoolPrice);
        if (schedulerStake != 0) _seize(deal.scheduler, schedulerStake);
        uint256 n = task.contributorCount;
        if (n != 0) {
            uint256 stake = _workerStake(deal);
            mapping(uint256 => ContributionRecord) storage contributions = _contributions[taskId];
            for (uint256 i = 0; i < n; ++i) {
                ContributionRecord storage c = contributions[i];
                if (c.status == ContributionStatus.REJECTED) {
                    // A winner that stayed silent (rejected at reopen) caused the failure: it loses its stake.
                    _penalize(c.worker, stake);
                } else {
                    _unlock(c.worker, stake);
                }
            }
        }
        emit TaskClaimed(taskId, dealId, index);
    }

    // ================================================================== views

    /// @inheritdoc IOracle
    function resultFor(bytes32 id) external view returns (bytes memory) {
        TaskRecord storage task = _tasks[id];
        _expectStatus(id, task.status, _bit(TaskStatus.COMPLETED));
        bytes storage data = _callbackData[id];
        if (data.length != 0) return data;
        return abi.encodePacked(task.digest);
    }

    /// @inheritdoc IHub
    function taskIdOf(bytes32 dealId, uint256 index) external pure returns (bytes32) {
        return _taskId(dealId, index);
    }

    /// @inheritdoc IHub
    function viewTask(bytes32 taskId) external view returns (Task memory t) {
        TaskRecord memory task = _tasks[taskId];
        if (task.status == TaskStatus.UNSET) return t;
        Deal storage deal = _deals[bytes32(uint256(task.deal))];
        t.status = task.status;
        t.dealId = bytes32(uint256(task.deal));
        t.index = task.index;
        t.contributionDeadline = _contributionDeadline(deal);
        t.revealDeadline = task.revealDeadline;
        t.finalDeadline = _finalDeadline(deal);
        t.contributorCount = task.contributorCount;
        t.winnerCount = task.winnerCount;
        t.revealCount = task.revealCount;
        if (task.revealCount != 0) {
            t.resultDigest = task.digest;
            t.consensusHash = keccak256(abi.encodePacked(taskId, task.digest));
        } else {
            t.consensusHash = task.digest;
        }
    }

    /// @inheritdoc IHub
    function viewContribution(bytes32 taskId, address worker) external view returns (Contribution memory) {
        TaskRecord storage task = _tasks[taskId];
        mapping(uint256 => ContributionRecord) storage contributions = _contributions[taskId];
        uint256 n = task.contributorCount;
        for (uint256 i = 0; i < n; ++i) {
            ContributionRecord storage c = contributions[i];
            if (c.worker == worker) {
                return Contribution(c.status, c.seal, _workerStake(_deals[bytes32(uint256(task.deal))]));
            }
        }
        return Contribution(ContributionStatus.UNSET, 0, 0);
    }

    /// @inheritdoc IHub
    function contributorsOf(bytes32 taskId) external view returns (address[] memory workers) {
        uint256 n = _tasks[taskId].contributorCount;
        workers = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            workers[i] = _contributions[taskId][i].worker;
        }
    }

    /// @inheritdoc IHub
    function scoreOf(address worker) external view returns (uint256) {
        return _accounts[worker].score;
    }

    /// @inheritdoc IHub
    function workerStakeOf(bytes32 dealId) external view returns (uint256) {
        Deal storage deal = _deals[dealId];
        return deal.volume == 0 ? 0 : _workerStake(deal);
    }

    /// @inheritdoc IHub
    function schedulerStakeOf(bytes32 dealId) external view returns (uint256) {
        return RewardLib.schedulerStake(_deals[dealId].workerpoolPrice);
    }

    // ================================================================== helpers

    function _taskId(bytes32 dealId, uint256 index) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(dealId, index));
    }

    function _dealOf(bytes32 dealId, uint256 index) private view returns (Deal storage deal) {
        deal = _deals[dealId];
        uint256 volume = deal.volume;
        if (volume == 0) revert HubUnknownDeal(dealId);
        if (index >= volume) revert HubTaskIndexOutOfRange(dealId, index, volume);
    }

    function _onlyScheduler(Deal storage deal, bytes32 dealId) private view {
        if (msg.sender != deal.scheduler) revert HubNotScheduler(dealId, msg.sender);
    }

    function _checkAuthorization(Deal storage deal, bytes32 taskId, address worker, bytes calldata authorization)
        private
        view
    {
        bytes32 digest = _hashTypedDataV4(OrderLib.hashAuthorization(worker, taskId));
        if (!SignatureLib.isValid(deal.scheduler, digest, authorization)) {
            revert HubInvalidAuthorization(taskId, worker);
        }
    }

    function _contributionOf(bytes32 taskId, uint256 n, address worker)
        private
        view
        returns (ContributionRecord storage, uint256 position)
    {
        mapping(uint256 => ContributionRecord) storage contributions = _contributions[taskId];
        for (uint256 i = 0; i < n; ++i) {
            if (contributions[i].worker == worker) return (contributions[i], i);
        }
        revert HubUnexpectedContributionStatus(taskId, worker, ContributionStatus.UNSET);
    }

    function _expectStatus(bytes32 taskId, TaskStatus current, uint256 allowed) private pure {
        if (_bit(current) & allowed == 0) revert HubUnexpectedTaskStatus(taskId, current, allowed);
    }

    function _bit(TaskStatus status) private pure returns (uint256) {
        return 1 << uint8(status);
    }

    function _quorum(Deal storage deal) private view returns (uint256) {
        uint256 trust = deal.trust;
        return trust == 0 ? 1 : trust;
    }

    function _workerStake(Deal storage deal) private view returns (uint256) {
        return RewardLib.workerStake(deal.workerpoolPrice, deal.workerStakeRatio, _minWorkerStake);
    }

    function _contributionDeadline(Deal storage deal) private view returns (uint256) {
        return uint256(deal.startTime) + CONTRIBUTION_DEADLINE_RATIO * deal.timeref;
    }

    function _finalDeadline(Deal storage deal) private view returns (uint256) {
        return uint256(deal.startTime) + FINAL_DEADLINE_RATIO * deal.timeref;
    }
}
