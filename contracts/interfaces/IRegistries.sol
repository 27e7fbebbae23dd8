// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title Shared behaviour of the asset registries (one ERC-721 per kind).
/// @notice A token id is the asset's id in orders. Ids start at 1 and are never burnt.
interface IRegistry is IERC721 {
    /// @notice Thrown when an id does not name a registered asset.
    error RegistryUnknownAsset(uint256 id);
    /// @notice Thrown when the caller does not own the asset it tries to update.
    error RegistryNotAssetOwner(uint256 id, address caller);

    /// @notice Number of assets registered so far (the last id).
    function count() external view returns (uint256);

    /// @notice The owner of `id`, or the zero address when `id` does not exist (never reverts).
    function ownerOrZero(uint256 id) external view returns (address);
}

/// @title App registry: WebAssembly modules (or built-in runtimes) identified by content.
interface IAppRegistry is IRegistry {
    /// @notice A registered app.
    /// @param name Human-readable name.
    /// @param runtime Runtime that executes it (`wasi`, `sql`, ...).
    /// @param uri Where the module can be fetched (`file://`, `https://`, ...).
    /// @param checksum sha256 of the module bytes; workers refuse a module that does not match.
    struct App {
        string name;
        string runtime;
        string uri;
        bytes32 checksum;
    }

    /// @notice Emitted when an app is registered.
    event AppRegistered(uint256 indexed id, address indexed owner, string name, string runtime, string uri, bytes32 checksum);

    /// @notice Thrown when the runtime name is empty.
    error AppRegistryEmptyRuntime();

    /// @notice Registers an app and mints its token to `owner`.
    /// @return id The new app id.
    function register(address owner, string calldata name, string calldata runtime, string calldata uri, bytes32 checksum)
        external
        returns (uint256 id);

    /// @notice The app's description. Reverts with `RegistryUnknownAsset` for an unknown id.
    function app(uint256 id) external view returns (App memory);
}

/// @title Dataset registry: files identified by content.
interface IDatasetRegistry is IRegistry {
    /// @notice A registered dataset.
    /// @param name Human-readable name.
    /// @param uri Where the file can be fetched.
    /// @param checksum sha256 of the file; workers refuse a file that does not match.
    struct Dataset {
        string name;
        string uri;
        bytes32 checksum;
    }

    /// @notice Emitted when a dataset is registered.
    event DatasetRegistered(uint256 indexed id, address indexed owner, string name, string uri, bytes32 checksum);

    /// @notice Registers a dataset and mints its token to `owner`.
    /// @return id The new dataset id.
    function register(address owner, string calldata name, string calldata uri, bytes32 checksum) external returns (uint256 id);

    /// @notice The dataset's description. Reverts with `RegistryUnknownAsset` for an unknown id.
    function dataset(uint256 id) external view returns (Dataset memory);
}

/// @title Workerpool registry: pools of workers run by a scheduler.
interface IWorkerpoolRegistry is IRegistry {
    /// @notice A registered workerpool.
    /// @param scheduler Address of the scheduler daemon: it authorizes workers, stakes on deals, finalizes tasks.
    /// @param workerStakeRatio Percentage of the pool price a worker stakes per contribution (0-100).
    /// @param schedulerRewardRatio Percentage of the pool price kept by the scheduler (0-100).
    /// @param schedulerConsent Whether the scheduler agreed to serve (and stake for) this pool under its current
    /// owner. The pool's orders match only with it: nobody can make another account stake by naming it scheduler.
    /// @param description Human-readable description.
    struct Workerpool {
        address scheduler;
        uint8 workerStakeRatio;
        uint8 schedulerRewardRatio;
        bool schedulerConsent;
        string description;
    }

    /// @notice Emitted when a workerpool is registered.
    event WorkerpoolRegistered(uint256 indexed id, address indexed owner, address scheduler, string description);
    /// @notice Emitted when a workerpool's scheduler or ratios change; deals already matched keep their values.
    event WorkerpoolConfigured(uint256 indexed id, address scheduler, uint8 workerStakeRatio, uint8 schedulerRewardRatio);
    /// @notice Emitted when the scheduler gives or withdraws its consent, or when it is reset (new scheduler, new owner).
    event SchedulerConsentChanged(uint256 indexed id, address indexed scheduler, bool consent);

    /// @notice Thrown when a ratio is above 100.
    error WorkerpoolRegistryInvalidRatio(uint256 ratio);
    /// @notice Thrown when the scheduler address is zero.
    error WorkerpoolRegistryZeroScheduler();
    /// @notice Thrown when someone other than the pool's scheduler tries to give or withdraw its consent.
    error WorkerpoolRegistryNotScheduler(uint256 id, address caller);

    /// @notice Registers a workerpool and mints its token to `owner`. The scheduler consents at once when it is the
    /// caller; otherwise it must call `setSchedulerConsent(id, true)` before the pool's orders can match.
    /// @return id The new workerpool id.
    function register(
        address owner,
        string calldata description,
        address scheduler,
        uint8 workerStakeRatio,
        uint8 schedulerRewardRatio
    ) external returns (uint256 id);

    /// @notice Changes the scheduler and ratios of a pool (owner only). Applies to deals matched afterwards. A new
    /// scheduler must consent (unless it is the caller).
    function configure(uint256 id, address scheduler, uint8 workerStakeRatio, uint8 schedulerRewardRatio) external;

    /// @notice The pool's scheduler gives (or withdraws) its consent to serve and stake for the pool. The consent is
    /// reset when the scheduler changes or the pool token changes hands.
    function setSchedulerConsent(uint256 id, bool consent) external;

    /// @notice The pool's description. Reverts with `RegistryUnknownAsset` for an unknown id.
    function workerpool(uint256 id) external view returns (Workerpool memory);

    /// @notice What the Clerk needs at match time, in one call.
    function dealTerms(uint256 id)
        external
        view
        returns (
            address owner,
            address scheduler,
            uint8 workerStakeRatio,
            uint8 schedulerRewardRatio,
            bool schedulerConsent
        );
}
