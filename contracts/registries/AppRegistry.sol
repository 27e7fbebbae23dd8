// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Registry} from "./Registry.sol";
import {IAppRegistry} from "../interfaces/IRegistries.sol";

/// @title Concord app registry
contract AppRegistry is Registry, IAppRegistry {
    mapping(uint256 id => App) private _apps;

    constructor() Registry("Concord App", "CAPP") {}

    /// @inheritdoc IAppRegistry
    function register(address owner, string calldata name, string calldata runtime, string calldata uri, bytes32 checksum)
        external
        returns (uint256 id)
    {
        if (bytes(runtime).length == 0) revert AppRegistryEmptyRuntime();
        id = _mintNext(owner);
        _apps[id] = App(name, runtime, uri, checksum);
        emit AppRegistered(id, owner, name, runtime, uri, checksum);
    }

    /// @inheritdoc IAppRegistry
    function app(uint256 id) external view returns (App memory) {
        _requireExists(id);
        return _apps[id];
    }
}
