// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title EIP-1154 oracle consumer (push interface)
/// @notice Implemented by a dapp that wants the verified result delivered when its task is finalized.
interface IOracleConsumer {
    /// @notice Called by the Hub once, when the task is finalized, with at least `CALLBACK_GAS` gas.
    /// @dev A revert or an out-of-gas here is ignored by the Hub and reported by `CallbackFailed`.
    /// @param id The task id.
    /// @param result The verified callback data (its keccak256 is the consensus result digest).
    function receiveResult(bytes32 id, bytes calldata result) external;
}
