// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Minimal EIP-1271 contract wallet for tests: valid signatures are its owner's ECDSA signatures.
contract WalletMock is IERC1271 {
    address public immutable owner;

    error WalletMockNotOwner(address caller);

    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice Lets the owner make the wallet call any contract (approve, deposit, ...).
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert WalletMockNotOwner(msg.sender);
        // solhint-disable-next-line avoid-low-level-calls
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return err == ECDSA.RecoverError.NoError && recovered == owner ? IERC1271.isValidSignature.selector : bytes4(0);
    }

    /// @notice Helper for tests: approve `spender` for `token`.
    function approve(IERC20 token, address spender, uint256 amount) external {
        if (msg.sender != owner) revert WalletMockNotOwner(msg.sender);
        token.approve(spender, amount);
    }
}
