// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title Test token for local chains: an ERC-20 with EIP-2612 permit, minted by its owner.
/// @notice Never deploy this as the escrow token of a production network.
contract ConcordTestToken is ERC20, ERC20Permit, Ownable {
    constructor(address owner_) ERC20("Concord Test Token", "CCT") ERC20Permit("Concord Test Token") Ownable(owner_) {}

    /// @notice Mints `amount` to `to` (owner only).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
