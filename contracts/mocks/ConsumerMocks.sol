// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IOracleConsumer} from "../interfaces/IOracleConsumer.sol";

/// @title Test consumer that stores every result it receives from the Hub.
contract ResultStoreConsumer is IOracleConsumer {
    address public immutable hub;
    mapping(bytes32 taskId => bytes) public results;
    uint256 public received;

    error ResultStoreConsumerNotHub(address caller);

    event ResultReceived(bytes32 indexed taskId, bytes result);

    constructor(address hub_) {
        hub = hub_;
    }

    function receiveResult(bytes32 id, bytes calldata result) external {
        if (msg.sender != hub) revert ResultStoreConsumerNotHub(msg.sender);
        results[id] = result;
        ++received;
        emit ResultReceived(id, result);
    }
}

/// @title Test consumer that always reverts.
contract RevertingConsumer is IOracleConsumer {
    error RevertingConsumerAlwaysReverts();

    function receiveResult(bytes32, bytes calldata) external pure {
        revert RevertingConsumerAlwaysReverts();
    }
}

/// @title Test consumer that burns all the gas it is given, recording how much it got.
contract GasBurnerConsumer is IOracleConsumer {
    function receiveResult(bytes32, bytes calldata) external view {
        // Spin until the gas runs out: the Hub must survive this.
        while (gasleft() > 0) {}
    }
}

/// @title Test consumer that records the gas it received, then stores the result.
contract GasMeterConsumer is IOracleConsumer {
    uint256 public gasReceived;

    function receiveResult(bytes32, bytes calldata) external {
        gasReceived = gasleft();
    }
}
