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

/// @title Test consumer that tries to re-enter the Hub from its callback (the attempt must fail and be ignored).
contract ReentrantConsumer is IOracleConsumer {
    address public immutable hub;
    bool public reentered;

    error ReentrantConsumerRefused();

    constructor(address hub_) {
        hub = hub_;
    }

    function receiveResult(bytes32 id, bytes calldata) external {
        // solhint-disable-next-line avoid-low-level-calls
        (bool ok,) = hub.call(abi.encodeWithSignature("finalize(bytes32,bytes,bytes)", id, "", ""));
        reentered = ok;
        if (!ok) revert ReentrantConsumerRefused();
    }
}
