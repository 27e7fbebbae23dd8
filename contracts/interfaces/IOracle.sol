// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title EIP-1154 oracle (pull interface)
/// @notice A dapp reads the verified result of a task by its id.
interface IOracle {
    /// @notice The verified result of a completed task.
    /// @dev Reverts unless the task is COMPLETED.
    /// @param id The task id.
    /// @return result The result bytes: the callback data when the deal carried one, else the 32-byte result digest.
    function resultFor(bytes32 id) external view returns (bytes memory result);
}
