// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IRegistry} from "../interfaces/IRegistries.sol";

/// @title Registry base: sequential ERC-721 ids starting at 1, never burnt.
abstract contract Registry is ERC721, IRegistry {
    uint256 private _count;

    constructor(string memory name_, string memory symbol_) ERC721(name_, symbol_) {}

    /// @inheritdoc IRegistry
    function count() external view returns (uint256) {
        return _count;
    }

    /// @inheritdoc IRegistry
    function ownerOrZero(uint256 id) external view returns (address) {
        return _ownerOf(id);
    }

    /// @dev Mints the next id to `owner`.
    function _mintNext(address owner) internal returns (uint256 id) {
        id = ++_count;
        _safeMint(owner, id);
    }

    /// @dev Reverts with `RegistryUnknownAsset` unless `id` exists.
    function _requireExists(uint256 id) internal view {
        if (id == 0 || id > _count) revert RegistryUnknownAsset(id);
    }
}
