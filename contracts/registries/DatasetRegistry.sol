// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Registry} from "./Registry.sol";
import {IDatasetRegistry} from "../interfaces/IRegistries.sol";

/// @title Concord dataset registry
contract DatasetRegistry is Registry, IDatasetRegistry {
    mapping(uint256 id => Dataset) private _datasets;

    constructor() Registry("Concord Dataset", "CDATA") {}

    /// @inheritdoc IDatasetRegistry
    function register(address owner, string calldata name, string calldata uri, bytes32 checksum) external returns (uint256 id) {
        id = _mintNext(owner);
        _datasets[id] = Dataset(name, uri, checksum);
        emit DatasetRegistered(id, owner, name, uri, checksum);
    }

    /// @inheritdoc IDatasetRegistry
    function dataset(uint256 id) external view returns (Dataset memory) {
        _requireExists(id);
        return _datasets[id];
    }
}
