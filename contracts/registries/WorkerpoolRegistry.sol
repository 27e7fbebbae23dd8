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
        id = _mintNext(owner);
        _pools[id] = Workerpool(scheduler, workerStakeRatio, schedulerRewardRatio, description);
        emit WorkerpoolRegistered(id, owner, scheduler, description);
        emit WorkerpoolConfigured(id, scheduler, workerStakeRatio, schedulerRewardRatio);
    }

    /// @inheritdoc IWorkerpoolRegistry
    function configure(uint256 id, address scheduler, uint8 workerStakeRatio, uint8 schedulerRewardRatio) external {
        _requireExists(id);
        if (ownerOf(id) != msg.sender) revert RegistryNotAssetOwner(id, msg.sender);
        _checkConfig(scheduler, workerStakeRatio, schedulerRewardRatio);
        Workerpool storage pool = _pools[id];
        pool.scheduler = scheduler;
        pool.workerStakeRatio = workerStakeRatio;
        pool.schedulerRewardRatio = schedulerRewardRatio;
        emit WorkerpoolConfigured(id, scheduler, workerStakeRatio, schedulerRewardRatio);
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
        returns (address owner, address scheduler, uint8 workerStakeRatio, uint8 schedulerRewardRatio)
    {
        owner = _ownerOf(id);
        if (owner == address(0)) revert RegistryUnknownAsset(id);
        Workerpool storage pool = _pools[id];
        return (owner, pool.scheduler, pool.workerStakeRatio, pool.schedulerRewardRatio);
    }

    function _checkConfig(address scheduler, uint8 workerStakeRatio, uint8 schedulerRewardRatio) private pure {
        if (scheduler == address(0)) revert WorkerpoolRegistryZeroScheduler();
        if (workerStakeRatio > 100) revert WorkerpoolRegistryInvalidRatio(workerStakeRatio);
        if (schedulerRewardRatio > 100) revert WorkerpoolRegistryInvalidRatio(schedulerRewardRatio);
    }
}
