// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Registry} from "./Registry.sol";
import {IWorkerpoolRegistry} from "../interfaces/IRegistries.sol";

/// @title Concord workerpool registry
contract WorkerpoolRegistry is Registry, IWorkerpoolRegistry {
    mapping(uint256 id => Workerpool) private _pools;

    constructor() Registry("Concord Workerpool", "CPOOL") {}

    /// @inheritdoc IWorkerpoolRegistry
    function register(
        address owner,
        string calldata description,
        address scheduler,
        uint8 workerStakeRatio,
        uint8 schedulerRewardRatio
    ) external returns (uint256 id) {
        _checkConfig(scheduler, workerStakeRatio, schedulerRewardRatio);
        bool consent = msg.sender == scheduler;
        id = _mintNext(owner);
        _pools[id] = Workerpool(scheduler, workerStakeRatio, schedulerRewardRatio, consent, description);
        emit WorkerpoolRegistered(id, owner, scheduler, description);
        emit WorkerpoolConfigured(id, scheduler, workerStakeRatio, schedulerRewardRatio);
        emit SchedulerConsentChanged(id, scheduler, consent);
    }

    /// @inheritdoc IWorkerpoolRegistry
    function configure(uint256 id, address scheduler, uint8 workerStakeRatio, uint8 schedulerRewardRatio) external {
        _requireExists(id);
        if (ownerOf(id) != msg.sender) revert RegistryNotAssetOwner(id, msg.sender);
        _checkConfig(scheduler, workerStakeRatio, schedulerRewardRatio);
        Workerpool storage pool = _pools[id];
        if (scheduler != pool.scheduler) {
            bool consent = msg.sender == scheduler;
            pool.schedulerConsent = consent;
            emit SchedulerConsentChanged(id, scheduler, consent);
        }
        pool.scheduler = scheduler;
        pool.workerStakeRatio = workerStakeRatio;
        pool.schedulerRewardRatio = schedulerRewardRatio;
        emit WorkerpoolConfigured(id, scheduler, workerStakeRatio, schedulerRewardRatio);
    }

    /// @inheritdoc IWorkerpoolRegistry
    function setSchedulerConsent(uint256 id, bool consent) external {
        _requireExists(id);
        Workerpool storage pool = _pools[id];
        if (msg.sender != pool.scheduler) revert WorkerpoolRegistryNotScheduler(id, msg.sender);
        pool.schedulerConsent = consent;
        emit SchedulerConsentChanged(id, msg.sender, consent);
    }

    /// @inheritdoc IWorkerpoolRegistry
    function workerpool(uint256 id) external view returns (Workerpool memory) {
        _requireExists(id);
        return _pools[id];
    }

    /// @inheritdoc IWorkerpoolRegistry
    function dealTerms(uint256 id)
        external
        view
        returns (
            address owner,
            address scheduler,
            uint8 workerStakeRatio,
            uint8 schedulerRewardRatio,
            bool schedulerConsent
        )
    {
        owner = _ownerOf(id);
        if (owner == address(0)) revert RegistryUnknownAsset(id);
        Workerpool storage pool = _pools[id];
        return (owner, pool.scheduler, pool.workerStakeRatio, pool.schedulerRewardRatio, pool.schedulerConsent);
    }

    /// @dev A new owner does not inherit the scheduler's consent: the scheduler agreed to stake for the old owner.
    function _update(address to, uint256 id, address auth) internal override returns (address from) {
        from = super._update(to, id, auth);
        if (from != address(0) && from != to) {
            Workerpool storage pool = _pools[id];
            if (pool.schedulerConsent) {
                pool.schedulerConsent = false;
                emit SchedulerConsentChanged(id, pool.scheduler, false);
            }
        }
    }

    function _checkConfig(address scheduler, uint8 workerStakeRatio, uint8 schedulerRewardRatio) private pure {
        if (scheduler == address(0)) revert WorkerpoolRegistryZeroScheduler();
        if (workerStakeRatio > 100) revert WorkerpoolRegistryInvalidRatio(workerStakeRatio);
        if (schedulerRewardRatio > 100) revert WorkerpoolRegistryInvalidRatio(schedulerRewardRatio);
    }
}
