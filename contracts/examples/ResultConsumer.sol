// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IOracleConsumer} from "../interfaces/IOracleConsumer.sol";

/// @title Example dapp: receives verified results pushed by the Hub (EIP-1154 `receiveResult`).
/// @notice A request order naming this contract as `callback` gets its result delivered here once the workers'
/// consensus is finalized; the bytes are what the app wrote to /out/callback-data.
contract ResultConsumer is IOracleConsumer {
    /// @notice The Hub allowed to push results.
    address public immutable HUB;

    /// @notice The result received for each task (empty until it arrives).
    mapping(bytes32 taskId => bytes result) public resultOf;

    /// @notice Number of results received.
    uint256 public received;

    /// @notice Thrown when anyone but the Hub pushes a result.
    error ResultConsumerNotHub(address caller);

    /// @notice Emitted when a verified result arrives.
    event ResultReceived(bytes32 indexed taskId, bytes result);

    constructor(address hub) {
        HUB = hub;
    }

    /// @inheritdoc IOracleConsumer
    function receiveResult(bytes32 taskId, bytes calldata result) external {
        if (msg.sender != HUB) revert ResultConsumerNotHub(msg.sender);
        resultOf[taskId] = result;
        ++received;
        emit ResultReceived(taskId, result);
    }
}
