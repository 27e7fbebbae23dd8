// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClerk} from "../interfaces/IClerk.sol";

/// @title EIP-712 struct hashes of the orders and of the task-level messages.
/// @dev The one Solidity source of the typed-data definitions; `sdk/eip712.ts` mirrors it field for field.
library OrderLib {
    bytes32 internal constant APP_ORDER_TYPEHASH = keccak256(
        "AppOrder(uint256 app,uint256 appprice,uint256 volume,bytes32 tag,uint256 datasetrestrict,uint256 workerpoolrestrict,address requesterrestrict,uint256 expiry,uint256 nonce,bytes32 salt)"
    );
    bytes32 internal constant DATASET_ORDER_TYPEHASH = keccak256(
        "DatasetOrder(uint256 dataset,uint256 datasetprice,uint256 volume,bytes32 tag,uint256 apprestrict,uint256 workerpoolrestrict,address requesterrestrict,uint256 expiry,uint256 nonce,bytes32 salt)"
    );
    bytes32 internal constant WORKERPOOL_ORDER_TYPEHASH = keccak256(
        "WorkerpoolOrder(uint256 workerpool,uint256 workerpoolprice,uint256 volume,bytes32 tag,uint256 category,uint256 trust,uint256 apprestrict,uint256 datasetrestrict,address requesterrestrict,uint256 expiry,uint256 nonce,bytes32 salt)"
    );
    bytes32 internal constant REQUEST_ORDER_TYPEHASH = keccak256(
        "RequestOrder(uint256 app,uint256 appmaxprice,uint256 dataset,uint256 datasetmaxprice,uint256 workerpool,uint256 workerpoolmaxprice,address requester,uint256 volume,bytes32 tag,uint256 category,uint256 trust,address beneficiary,address callback,string params,uint256 expiry,uint256 nonce,bytes32 salt)"
    );
    /// @dev Signed by the scheduler: `worker` may contribute to `taskId`.
    bytes32 internal constant AUTHORIZATION_TYPEHASH = keccak256("Authorization(address worker,bytes32 taskId)");
    /// @dev Signed by a worker whose contribution the scheduler relays.
    bytes32 internal constant CONTRIBUTION_TYPEHASH =
        keccak256("Contribution(bytes32 taskId,bytes32 resultHash,bytes32 resultSeal)");
    /// @dev Signed by a worker whose reveal the scheduler relays.
    bytes32 internal constant REVEAL_TYPEHASH = keccak256("Reveal(bytes32 taskId,bytes32 resultDigest)");

    function hash(IClerk.AppOrder calldata o) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                APP_ORDER_TYPEHASH,
                o.app,
                o.appprice,
                o.volume,
                o.tag,
                o.datasetrestrict,
                o.workerpoolrestrict,
                o.requesterrestrict,
                o.expiry,
                o.nonce,
                o.salt
            )
        );
    }

    function hash(IClerk.DatasetOrder calldata o) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                DATASET_ORDER_TYPEHASH,
                o.dataset,
                o.datasetprice,
                o.volume,
                o.tag,
                o.apprestrict,
                o.workerpoolrestrict,
                o.requesterrestrict,
                o.expiry,
                o.nonce,
                o.salt
            )
        );
    }

    function hash(IClerk.WorkerpoolOrder calldata o) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                abi.encode(
                    WORKERPOOL_ORDER_TYPEHASH, o.workerpool, o.workerpoolprice, o.volume, o.tag, o.category, o.trust
                ),
                abi.encode(o.apprestrict, o.datasetrestrict, o.requesterrestrict, o.expiry, o.nonce, o.salt)
            )
        );
    }

    function hash(IClerk.RequestOrder calldata o) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                abi.encode(
                    REQUEST_ORDER_TYPEHASH,
                    o.app,
                    o.appmaxprice,
                    o.dataset,
                    o.datasetmaxprice,
                    o.workerpool,
                    o.workerpoolmaxprice,
                    o.requester,
                    o.volume
                ),
                abi.encode(
                    o.tag,
                    o.category,
                    o.trust,
                    o.beneficiary,
                    o.callback,
                    keccak256(bytes(o.params)),
                    o.expiry,
                    o.nonce,
                    o.salt
                )
            )
        );
    }

    function hashAuthorization(address worker, bytes32 taskId) internal pure returns (bytes32) {
        return keccak256(abi.encode(AUTHORIZATION_TYPEHASH, worker, taskId));
    }

    function hashContribution(bytes32 taskId, bytes32 resultHash, bytes32 resultSeal) internal pure returns (bytes32) {
        return keccak256(abi.encode(CONTRIBUTION_TYPEHASH, taskId, resultHash, resultSeal));
    }

    function hashReveal(bytes32 taskId, bytes32 resultDigest) internal pure returns (bytes32) {
        return keccak256(abi.encode(REVEAL_TYPEHASH, taskId, resultDigest));
    }
}
