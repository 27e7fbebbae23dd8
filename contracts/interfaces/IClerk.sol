// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Clerk: signed orders, deals and escrow
/// @notice Owners of apps, datasets and workerpools sell their use with EIP-712 signed orders; requesters buy it with
/// signed request orders. `matchOrders` turns four compatible orders into a deal, locks the requester's payment and the
/// scheduler's stake in escrow and starts the consensus timer.
/// @dev Money moves inside the escrow are not logged one by one: they follow deterministically from the lifecycle
/// events (`DealMatched` locks the price and the scheduler's stake of every task, `ContributionCommitted` locks a
/// worker's stake, `TaskFinalized` pays and seizes as `docs/protocol.md` describes, `TaskClaimed` refunds), which
/// keeps a task's gas low. Deposits and withdrawals, the only flows in and out, have their own events.
/// EIP-712 domain: `{name: "Concord", version: "1", chainId, verifyingContract: this}`. The TypeScript mirror of
/// every type below lives in `sdk/eip712.ts`.
interface IClerk {
    // ------------------------------------------------------------------ orders

    /// @notice An app owner's offer. A zero restrict means "anyone". `expiry` 0 means no expiry.
    struct AppOrder {
        uint256 app;
        uint256 appprice;
        uint256 volume;
        bytes32 tag;
        uint256 datasetrestrict;
        uint256 workerpoolrestrict;
        address requesterrestrict;
        uint256 expiry;
        uint256 nonce;
        bytes32 salt;
        bytes sign;
    }

    /// @notice A dataset owner's offer.
    struct DatasetOrder {
        uint256 dataset;
        uint256 datasetprice;
        uint256 volume;
        bytes32 tag;
        uint256 apprestrict;
        uint256 workerpoolrestrict;
        address requesterrestrict;
        uint256 expiry;
        uint256 nonce;
        bytes32 salt;
        bytes sign;
    }

    /// @notice A workerpool owner's offer of capacity for one category, up to a trust level.
    struct WorkerpoolOrder {
        uint256 workerpool;
        uint256 workerpoolprice;
        uint256 volume;
        bytes32 tag;
        uint256 category;
        uint256 trust;
        uint256 apprestrict;
        uint256 datasetrestrict;
        address requesterrestrict;
        uint256 expiry;
        uint256 nonce;
        bytes32 salt;
        bytes sign;
    }

    /// @notice A requester's demand. `dataset` 0 means no dataset; `workerpool` 0 means any pool.
    struct RequestOrder {
        uint256 app;
        uint256 appmaxprice;
        uint256 dataset;
        uint256 datasetmaxprice;
        uint256 workerpool;
        uint256 workerpoolmaxprice;
        address requester;
        uint256 volume;
        bytes32 tag;
        uint256 category;
        uint256 trust;
        address beneficiary;
        address callback;
        string params;
        uint256 expiry;
        uint256 nonce;
        bytes32 salt;
        bytes sign;
    }

    /// @notice What kind of order a hash refers to (used by presign and cancel).
    enum OrderKind {
        App,
        Dataset,
        Workerpool,
        Request
    }

    /// @notice A deal: `volume` tasks sold at fixed prices. Packed in four storage slots.
    /// @param requester Pays for every task; refunded for every task that fails.
    /// @param appPrice Paid per task to the app owner (owner at finalize time).
    /// @param scheduler The pool's scheduler when the deal was matched; it stakes and finalizes.
    /// @param workerpoolPrice Paid per task, split between the scheduler and the winning workers.
    /// @param callback EIP-1154 consumer called with the result (zero: none).
    /// @param datasetPrice Paid per task to the dataset owner (owner at finalize time).
    /// @param startTime When the deal was matched: the consensus timer starts here.
    /// @param timeref The category's workClockTimeRef in seconds.
    /// @param volume Number of tasks.
    /// @param trust Number of distinct agreeing workers needed (0 and 1 both mean one).
    /// @param workerStakeRatio Percentage of the pool price each contribution stakes (at least the protocol minimum).
    /// @param schedulerRewardRatio Percentage of the pool price kept by the scheduler.
    /// @param app App id.
    /// @param dataset Dataset id (0: none).
    struct Deal {
        address requester;
        uint96 appPrice;
        address scheduler;
        uint96 workerpoolPrice;
        address callback;
        uint96 datasetPrice;
        uint40 startTime;
        uint32 timeref;
        uint32 volume;
        uint8 trust;
        uint8 workerStakeRatio;
        uint8 schedulerRewardRatio;
        uint64 app;
        uint64 dataset;
    }

    /// @notice A category of work: its name and its reference duration, from which every deadline derives.
    struct Category {
        uint32 workClockTimeRef;
        string name;
    }

    // ------------------------------------------------------------------ events

    /// @notice Emitted when orders are matched into a deal.
    event DealMatched(
        bytes32 indexed dealId,
        bytes32 indexed requestOrderHash,
        uint256 indexed workerpool,
        bytes32 appOrderHash,
        bytes32 datasetOrderHash,
        bytes32 workerpoolOrderHash,
        address beneficiary,
        uint256 volume,
        string params
    );
    /// @notice Emitted when a signer presigns an order on chain.
    event OrderPresigned(bytes32 indexed orderHash, address indexed signer);
    /// @notice Emitted when a signer cancels one order.
    event OrderCancelled(bytes32 indexed orderHash, address indexed signer);
    /// @notice Emitted when a signer cancels all its orders at once by bumping its nonce.
    event OrderNonceIncremented(address indexed signer, uint256 newNonce);
    /// @notice Emitted when the protocol owner creates a category.
    event CategoryCreated(uint256 indexed id, string name, uint256 workClockTimeRef);
    /// @notice Emitted when tokens enter an escrow account.
    event Deposited(address indexed account, address indexed from, uint256 amount);
    /// @notice Emitted when tokens leave an escrow account.
    event Withdrawn(address indexed account, address indexed to, uint256 amount);

    // ------------------------------------------------------------------ errors

    /// @notice Thrown when an order's signature is neither valid (ECDSA, EIP-1271) nor presigned.
    error ClerkInvalidSignature(bytes32 orderHash, address signer);
    /// @notice Thrown when an order is past its expiry.
    error ClerkOrderExpired(bytes32 orderHash, uint256 expiry);
    /// @notice Thrown when an order was signed under a nonce its signer has since revoked.
    error ClerkOrderNonceRevoked(bytes32 orderHash, uint256 orderNonce, uint256 currentNonce);
    /// @notice Thrown when an order has no volume left (consumed or cancelled).
    error ClerkOrderConsumed(bytes32 orderHash);
    /// @notice Thrown when an order names an asset id that is not registered.
    error ClerkUnknownAsset(OrderKind kind, uint256 id);
    /// @notice Thrown when the pool's scheduler has not consented to serve (and stake for) the pool.
    error ClerkSchedulerWithoutConsent(uint256 workerpool, address scheduler);
    /// @notice Thrown when the orders name different assets.
    error ClerkAssetMismatch(OrderKind kind, uint256 offered, uint256 requested);
    /// @notice Thrown when an offer costs more than the requester's maximum.
    error ClerkPriceTooHigh(OrderKind kind, uint256 price, uint256 maxPrice);
    /// @notice Thrown when an order's restriction excludes a party of the deal.
    error ClerkRestricted(OrderKind kind, OrderKind party);
    /// @notice Thrown when the request's or app's or dataset's tag is not covered by the workerpool's tag.
    error ClerkTagMismatch(bytes32 required, bytes32 offered);
    /// @notice Thrown when the pool and the request name different categories.
    error ClerkCategoryMismatch(uint256 offered, uint256 requested);
    /// @notice Thrown when the category does not exist.
    error ClerkUnknownCategory(uint256 category);
    /// @notice Thrown when the pool serves less trust than requested, or trust exceeds the per-task contribution cap.
    error ClerkTrustMismatch(uint256 offered, uint256 requested);
    /// @notice Thrown when a price does not fit the deal's 96-bit storage.
    error ClerkPriceOverflow(uint256 price);
    /// @notice Thrown when an account's balance cannot cover a lock or a withdrawal.
    error ClerkInsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice Thrown when the caller is not the signer of the order it tries to presign or cancel.
    error ClerkNotOrderSigner(bytes32 orderHash, address signer, address caller);
    /// @notice Thrown when an amount is zero where it must not be, or a category time is out of range.
    error ClerkInvalidAmount(uint256 amount);
    /// @notice Thrown when an account's balance would not fit its 112-bit storage.
    error ClerkBalanceOverflow(address account);
    /// @notice Thrown when a match would create a deal under the id of an existing one (two request orders whose ids
    /// collide on 152 bits: ~2^76 hashes of work, refused rather than overwriting a live deal).
    error ClerkDealExists(bytes32 dealId);

    // ------------------------------------------------------------------ escrow

    /// @notice Moves `amount` tokens from the caller into the caller's escrow balance (needs an ERC-20 allowance).
    function deposit(uint256 amount) external;

    /// @notice Moves `amount` tokens from the caller into `account`'s escrow balance.
    function depositFor(address account, uint256 amount) external;

    /// @notice Deposits using an EIP-2612 permit instead of a prior approve.
    /// @dev A permit already used (e.g. front-run) is tolerated when the allowance is sufficient.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Moves `amount` of the caller's free balance back to its wallet.
    function withdraw(uint256 amount) external;

    /// @notice An account's free balance and frozen funds.
    function accountOf(address account) external view returns (uint256 balance, uint256 frozen);

    /// @notice Free balance of `account`.
    function balanceOf(address account) external view returns (uint256);

    /// @notice Frozen funds of `account` (requester payments, scheduler and worker stakes).
    function frozenOf(address account) external view returns (uint256);

    /// @notice Seized stakes not yet redistributed to schedulers.
    function kitty() external view returns (uint256);

    /// @notice The escrow token.
    function token() external view returns (address);

    // ------------------------------------------------------------------ orders

    /// @notice EIP-712 hash of an order (the digest its signer signs).
    function hashAppOrder(AppOrder calldata order) external view returns (bytes32);
    /// @notice EIP-712 hash of an order.
    function hashDatasetOrder(DatasetOrder calldata order) external view returns (bytes32);
    /// @notice EIP-712 hash of an order.
    function hashWorkerpoolOrder(WorkerpoolOrder calldata order) external view returns (bytes32);
    /// @notice EIP-712 hash of an order.
    function hashRequestOrder(RequestOrder calldata order) external view returns (bytes32);

    /// @notice Marks an order as signed on chain: it then matches with an empty `sign`. Caller must be its signer.
    function presignAppOrder(AppOrder calldata order) external;
    /// @notice Marks an order as signed on chain. Caller must be its signer.
    function presignDatasetOrder(DatasetOrder calldata order) external;
    /// @notice Marks an order as signed on chain. Caller must be its signer.
    function presignWorkerpoolOrder(WorkerpoolOrder calldata order) external;
    /// @notice Marks an order as signed on chain. Caller must be its signer (the requester).
    function presignRequestOrder(RequestOrder calldata order) external;

    /// @notice Cancels one order: its remaining volume becomes zero. Caller must be its signer.
    function cancelAppOrder(AppOrder calldata order) external;
    /// @notice Cancels one order. Caller must be its signer.
    function cancelDatasetOrder(DatasetOrder calldata order) external;
    /// @notice Cancels one order. Caller must be its signer.
    function cancelWorkerpoolOrder(WorkerpoolOrder calldata order) external;
    /// @notice Cancels one order. Caller must be its signer (the requester).
    function cancelRequestOrder(RequestOrder calldata order) external;

    /// @notice Cancels every order the caller signed so far, by bumping its order nonce.
    function incrementOrderNonce() external;

    /// @notice Current order nonce of a signer; only orders carrying it match.
    function orderNonce(address signer) external view returns (uint256);

    /// @notice Volume consumed so far by an order, whether someone presigned it (the presign counts only while that
    /// address is still the order's signer) and whether it is cancelled.
    function orderState(bytes32 orderHash) external view returns (uint256 consumed, bool presigned, bool cancelled);

    /// @notice Matches four orders into a deal. The dataset order is ignored when the request has no dataset.
    /// @return dealId The new deal's id: the low 152 bits of `keccak256(abi.encode(requestOrderHash, consumed))`, where
    /// `consumed` is the request order's consumed volume before this match (0 for its first deal), so it is known
    /// before the match is mined.
    /// @return volume The number of tasks in the deal.
    function matchOrders(
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) external returns (bytes32 dealId, uint256 volume);

    /// @notice Deposits for the caller with an EIP-2612 permit, then matches the orders, in one transaction.
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
    ) external returns (bytes32 dealId, uint256 volume);

    /// @notice Whether `matchOrders` would succeed now, and if not the first reason.
    /// @return ok True when the orders match and the parties can pay.
    /// @return reason The ABI-encoded custom error `matchOrders` would revert with (empty when `ok`).
    function canMatch(
        AppOrder calldata appOrder,
        DatasetOrder calldata datasetOrder,
        WorkerpoolOrder calldata workerpoolOrder,
        RequestOrder calldata requestOrder
    ) external view returns (bool ok, bytes memory reason);

    // ------------------------------------------------------------------ deals and categories

    /// @notice A deal by id (all zero for an unknown id).
    function viewDeal(bytes32 dealId) external view returns (Deal memory);

    /// @notice Number of deals matched so far.
    function dealCount() external view returns (uint256);

    /// @notice Creates a category (protocol owner only).
    /// @return id The new category id (ids start at 0).
    function createCategory(string calldata name, uint256 workClockTimeRef) external returns (uint256 id);

    /// @notice A category by id.
    function viewCategory(uint256 id) external view returns (Category memory);

    /// @notice Number of categories.
    function categoryCount() external view returns (uint256);
}
