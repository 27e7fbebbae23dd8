// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IClerk} from "./interfaces/IClerk.sol";
import {IAppRegistry, IDatasetRegistry, IWorkerpoolRegistry} from "./interfaces/IRegistries.sol";
import {OrderLib} from "./libraries/OrderLib.sol";
import {MatchLib} from "./libraries/MatchLib.sol";

/// @title Clerk: orders, deals and escrow
/// @notice The Hub inherits the Clerk so that every lifecycle step reads deals and moves escrow through internal calls
/// and shared storage, never through a cross-contract call.
/// @dev Escrow accounts are one storage slot each: balance, frozen and the worker's score packed together.
abstract contract Clerk is IClerk, EIP712, Ownable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using OrderLib for AppOrder;
    using OrderLib for DatasetOrder;
    using OrderLib for WorkerpoolOrder;
    using OrderLib for RequestOrder;

    /// @notice Largest number of tasks in one deal, so that `claimDeal` stays bounded; larger orders match repeatedly.
    uint256 public constant MAX_DEAL_VOLUME = 256;
    /// @notice Most contributions one task accepts; also the largest trust a deal may ask for.
    uint256 public constant MAX_CONTRIBUTIONS = 32;

    /// @dev One escrow account: free balance, frozen funds and (for workers) the reputation score.
    struct Account {
        uint112 balance;
        uint112 frozen;
        uint32 score;
    }

    IERC20 internal immutable _token;
    IAppRegistry internal immutable _apps;
    IDatasetRegistry internal immutable _datasets;
    IWorkerpoolRegistry internal immutable _workerpools;
    /// @dev Protocol minimum stake of a contribution, even on a free pool.
    uint256 internal immutable _minWorkerStake;
    /// @dev Least kitty reward per finalization (when the kitty holds that much).
    uint256 internal immutable _kittyMin;

    mapping(address account => Account) internal _accounts;
    uint256 internal _kitty;
    mapping(bytes32 orderHash => MatchLib.OrderState) private _orders;
    mapping(address signer => uint256) private _nonces;
    Category[] private _categories;
    mapping(bytes32 dealId => Deal) internal _deals;
    uint256 private _dealCount;

    constructor(
        address owner_,
        IERC20 token_,
        IAppRegistry apps_,
        IDatasetRegistry datasets_,
        IWorkerpoolRegistry workerpools_,
        uint256 minWorkerStake_,
        uint256 kittyMin_
    ) EIP712("Concord", "1") Ownable(owner_) {
        // A wrong answer must always cost something, even on a free pool.
        if (minWorkerStake_ == 0) revert ClerkInvalidAmount(0);
        _token = token_;
        _apps = apps_;
        _datasets = datasets_;
        _workerpools = workerpools_;
        _minWorkerStake = minWorkerStake_;
        _kittyMin = kittyMin_;
    }

    // ================================================================== escrow

    /// @inheritdoc IClerk
    function deposit(uint256 amount) external nonReentrant {
        _deposit(msg.sender, msg.sender, amount);
    }

    /// @inheritdoc IClerk
    function depositFor(address account, uint256 amount) external nonReentrant {
        _deposit(msg.sender, account, amount);
    }

    /// @inheritdoc IClerk
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external nonReentrant {
        _permit(amount, deadline, v, r, s);
        _deposit(msg.sender, msg.sender, amount);
    }

    /// @inheritdoc IClerk
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert ClerkInvalidAmount(0);
        Account storage account = _accounts[msg.sender];
        uint256 balance = account.balance;
        if (balance < amount) revert ClerkInsufficientBalance(msg.sender, balance, amount);
        account.balance = uint112(balance - amount);
        emit Withdrawn(msg.sender, msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IClerk
    function accountOf(address account) external view returns (uint256 balance, uint256 frozen) {
        Account storage a = _accounts[account];
        return (a.balance, a.frozen);
    }

    /// @inheritdoc IClerk
    function balanceOf(address account) external view returns (uint256) {
        return _accounts[account].balance;
    }

    /// @inheritdoc IClerk
    function frozenOf(address account) external view returns (uint256) {
        return _accounts[account].frozen;
    }

    /// @inheritdoc IClerk
    function kitty() external view returns (uint256) {
        return _kitty;
    }

    /// @inheritdoc IClerk
    function token() external view returns (address) {
        return address(_token);
    }

    function _deposit(address from, address to, uint256 amount) private {
        if (amount == 0) revert ClerkInvalidAmount(0);
        _credit(to, amount);
        emit Deposited(to, from, amount);
        _token.safeTransferFrom(from, address(this), amount);
    }

    /// @dev Applies a permit, tolerating one already used (front-run) when the allowance is there anyway.
    function _permit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) private {
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
    }

    /// @dev Adds to a free balance.
    function _credit(address account, uint256 amount) internal {
        Account storage a = _accounts[account];
        uint256 balance = a.balance + amount;
        if (balance > type(uint112).max) revert ClerkBalanceOverflow(account);
        a.balance = uint112(balance);
    }

    /// @dev Moves `amount` from free balance to frozen.
    function _lock(address account, uint256 amount) internal {
        Account storage a = _accounts[account];
        uint256 balance = a.balance;
        if (balance < amount) revert ClerkInsufficientBalance(account, balance, amount);
        uint256 frozen = a.frozen + amount;
        if (frozen > type(uint112).max) revert ClerkBalanceOverflow(account);
        a.balance = uint112(balance - amount);
        a.frozen = uint112(frozen);
    }

    /// @dev Moves `amount` from frozen back to free balance.
    function _unlock(address account, uint256 amount) internal {
        Account storage a = _accounts[account];
        a.frozen -= uint112(amount);
        a.balance += uint112(amount);
    }

    /// @dev Removes `amount` from an account's frozen funds; the caller credits it elsewhere.
    function _spendFrozen(address account, uint256 amount) internal {
        _accounts[account].frozen -= uint112(amount);
    }

    /// @dev Moves `amount` of an account's frozen funds into the kitty.
    function _seize(address account, uint256 amount) internal {
        _accounts[account].frozen -= uint112(amount);
        _kitty += amount;
    }

    // ================================================================== orders

    /// @inheritdoc IClerk
    function hashAppOrder(AppOrder calldata order) external view returns (bytes32) {
        return _hashTypedDataV4(order.hash());
    }

    /// @inheritdoc IClerk
    function hashDatasetOrder(DatasetOrder calldata order) external view returns (bytes32) {
        return _hashTypedDataV4(order.hash());
    }

    /// @inheritdoc IClerk
    function hashWorkerpoolOrder(WorkerpoolOrder calldata order) external view returns (bytes32) {
        return _hashTypedDataV4(order.hash());
    }

    /// @inheritdoc IClerk
    function hashRequestOrder(RequestOrder calldata order) external view returns (bytes32) {
        return _hashTypedDataV4(order.hash());
    }

    /// @inheritdoc IClerk
    function presignAppOrder(AppOrder calldata order) external {
        _presign(_hashTypedDataV4(order.hash()), _apps.ownerOrZero(order.app));
    }

    /// @inheritdoc IClerk
    function presignDatasetOrder(DatasetOrder calldata order) external {
        _presign(_hashTypedDataV4(order.hash()), _datasets.ownerOrZero(order.dataset));
    }

    /// @inheritdoc IClerk
    function presignWorkerpoolOrder(WorkerpoolOrder calldata order) external {
        _presign(_hashTypedDataV4(order.hash()), _workerpools.ownerOrZero(order.workerpool));
    }

    /// @inheritdoc IClerk
    function presignRequestOrder(RequestOrder calldata order) external {
        _presign(_hashTypedDataV4(order.hash()), order.requester);
    }

    /// @inheritdoc IClerk
    function cancelAppOrder(AppOrder calldata order) external {
        _cancel(_hashTypedDataV4(order.hash()), _apps.ownerOrZero(order.app));
    }

    /// @inheritdoc IClerk
    function cancelDatasetOrder(DatasetOrder calldata order) external {
        _cancel(_hashTypedDataV4(order.hash()), _datasets.ownerOrZero(order.dataset));
    }

    /// @inheritdoc IClerk
    function cancelWorkerpoolOrder(WorkerpoolOrder calldata order) external {
        _cancel(_hashTypedDataV4(order.hash()), _workerpools.ownerOrZero(order.workerpool));
    }

    /// @inheritdoc IClerk
    function cancelRequestOrder(RequestOrder calldata order) external {
        _cancel(_hashTypedDataV4(order.hash()), order.requester);
    }

    /// @inheritdoc IClerk
    function incrementOrderNonce() external {
        uint256 nonce = ++_nonces[msg.sender];
        emit OrderNonceIncremented(msg.sender, nonce);
    }

    /// @inheritdoc IClerk
    function orderNonce(address signer) external view returns (uint256) {
        return _nonces[signer];
    }

    /// @inheritdoc IClerk
    function orderState(bytes32 orderHash) external view returns (uint256 consumed, bool presigned, bool cancelled) {
        MatchLib.OrderState storage state = _orders[orderHash];
        return (state.consumed, state.presigner != address(0), state.cancelled);
    }

    function _presign(bytes32 orderHash, address signer) private {
        if (msg.sender != signer) revert ClerkNotOrderSigner(orderHash, signer, msg.sender);
        _orders[orderHash].presigner = signer;
        emit OrderPresigned(orderHash, signer);
    }

    function _cancel(bytes32 orderHash, address signer) private {
        if (msg.sender != signer) revert ClerkNotOrderSigner(orderHash, signer, msg.sender);
        _orders[orderHash].cancelled = true;
        emit OrderCancelled(orderHash, signer);
    }

    // ================================================================== matching

    /// @inheritdoc IClerk
    function matchOrders(
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) external nonReentrant returns (bytes32 dealId, uint256 volume) {
        return _matchOrders(appOrder, datasetOrder, workerpoolOrder, requestOrder);
    }

    /// @inheritdoc IClerk
    function depositAndMatchOrders(
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s,
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) external nonReentrant returns (bytes32 dealId, uint256 volume) {
        if (amount > 0) {
            _permit(amount, deadline, v, r, s);
            _deposit(msg.sender, msg.sender, amount);
        }
        return _matchOrders(appOrder, datasetOrder, workerpoolOrder, requestOrder);
    }

    /// @inheritdoc IClerk
    function canMatch(
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) external view returns (bool ok, bytes memory reason) {
        (reason,) = _checkMatch(appOrder, datasetOrder, workerpoolOrder, requestOrder);
        ok = reason.length == 0;
    }

    /// @dev The order checks (in `MatchLib`, an external library, to keep this contract under the size limit), then
    /// the category's time and the parties' balances.
    function _checkMatch(
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) private view returns (bytes memory reason, MatchLib.Match memory m) {
        MatchLib.Context memory ctx = MatchLib.Context({
            domainSeparator: _domainSeparatorV4(),
            apps: _apps,
            datasets: _datasets,
            workerpools: _workerpools,
            categoryCount: _categories.length,
            maxTrust: MAX_CONTRIBUTIONS,
            maxVolume: MAX_DEAL_VOLUME
        });
        (reason, m) = MatchLib.check(_orders, _nonces, ctx, appOrder, datasetOrder, workerpoolOrder, requestOrder);
        if (reason.length != 0) return (reason, m);
        m.timeref = _categories[requestOrder.category].workClockTimeRef;
        // Funds: the requester pays every task, the scheduler stakes on every task.
        uint256 requesterNeeds = m.pricePerTask * m.volume;
        uint256 schedulerNeeds = m.stakePerTask * m.volume;
        address requester = requestOrder.requester;
        if (requester == m.scheduler) {
            requesterNeeds += schedulerNeeds;
            schedulerNeeds = 0;
        }
        uint256 balance = _accounts[requester].balance;
        if (balance < requesterNeeds) {
            return (abi.encodeWithSelector(ClerkInsufficientBalance.selector, requester, balance, requesterNeeds), m);
        }
        balance = _accounts[m.scheduler].balance;
        if (balance < schedulerNeeds) {
            return (abi.encodeWithSelector(ClerkInsufficientBalance.selector, m.scheduler, balance, schedulerNeeds), m);
        }
        // A real deal always has a requester: a taken id (two request orders colliding on 152 bits) is refused.
        bytes32 dealId = _dealIdOf(m.requestHash);
        if (_deals[dealId].requester != address(0)) {
            return (abi.encodeWithSelector(ClerkDealExists.selector, dealId), m);
        }
    }

    /// @dev The id of the request order's next deal, known before the match is mined: its hash and the volume it had
    /// consumed (so a scheduler can start the tasks while its matchOrders is in flight, and a requester can name its
    /// deal). The low 152 bits only, so that a task record packs it in one slot with its status and counters: a
    /// collision takes ~2^76 hashes (birthday) and is refused (ClerkDealExists), a chosen one ~2^152.
    function _dealIdOf(bytes32 requestHash) private view returns (bytes32) {
        return bytes32(uint256(uint152(uint256(keccak256(abi.encode(requestHash, _orders[requestHash].consumed))))));
    }

    function _matchOrders(
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) private returns (bytes32 dealId, uint256 volume) {
        (bytes memory reason, MatchLib.Match memory m) = _checkMatch(appOrder, datasetOrder, workerpoolOrder, requestOrder);
        if (reason.length != 0) {
            assembly ("memory-safe") {
                revert(add(reason, 32), mload(reason))
            }
        }
        volume = m.volume;
        bool hasDataset = requestOrder.dataset != 0;

        dealId = _dealIdOf(m.requestHash); // checked free by _checkMatch
        _orders[m.appHash].consumed += uint88(volume);
        if (hasDataset) _orders[m.datasetHash].consumed += uint88(volume);
        _orders[m.workerpoolHash].consumed += uint88(volume);
        _orders[m.requestHash].consumed += uint88(volume);
        ++_dealCount;
        _deals[dealId] = Deal({
            requester: requestOrder.requester,
            appPrice: uint96(appOrder.appprice),
            scheduler: m.scheduler,
            workerpoolPrice: uint96(workerpoolOrder.workerpoolprice),
            callback: requestOrder.callback,
            datasetPrice: hasDataset ? uint96(datasetOrder.datasetprice) : 0,
            startTime: uint40(block.timestamp),
            timeref: m.timeref,
            volume: uint32(volume),
            trust: uint8(requestOrder.trust),
            workerStakeRatio: m.workerStakeRatio,
            schedulerRewardRatio: m.schedulerRewardRatio,
            app: uint64(appOrder.app),
            dataset: uint64(requestOrder.dataset)
        });

        if (m.pricePerTask > 0) _lock(requestOrder.requester, m.pricePerTask * volume);
        if (m.stakePerTask > 0) _lock(m.scheduler, m.stakePerTask * volume);

        emit DealMatched(
            dealId,
            m.requestHash,
            workerpoolOrder.workerpool,
            m.appHash,
            m.datasetHash,
            m.workerpoolHash,
            requestOrder.beneficiary,
            volume,
            requestOrder.params
        );
    }

    // ================================================================== deals and categories

    /// @inheritdoc IClerk
    function viewDeal(bytes32 dealId) external view returns (Deal memory) {
        return _deals[dealId];
    }

    /// @inheritdoc IClerk
    function dealCount() external view returns (uint256) {
        return _dealCount;
    }

    /// @inheritdoc IClerk
    function createCategory(string calldata name, uint256 workClockTimeRef) external onlyOwner returns (uint256 id) {
        if (workClockTimeRef == 0 || workClockTimeRef > type(uint32).max) revert ClerkInvalidAmount(workClockTimeRef);
        id = _categories.length;
        _categories.push(Category(uint32(workClockTimeRef), name));
        emit CategoryCreated(id, name, workClockTimeRef);
    }

    /// @inheritdoc IClerk
    function viewCategory(uint256 id) external view returns (Category memory) {
        if (id >= _categories.length) revert ClerkUnknownCategory(id);
        return _categories[id];
    }

    /// @inheritdoc IClerk
    function categoryCount() external view returns (uint256) {
        return _categories.length;
    }
}
