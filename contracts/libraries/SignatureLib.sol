// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title Signature check: ECDSA first (malleable signatures refused), EIP-1271 only when that fails.
/// @dev Unlike `SignatureChecker.isValidSignatureNow`, a valid EOA signature never pays the cold EXTCODESIZE of the
/// signer (2,600 gas per signature). A recovered key is proof enough even for an address that has code.
library SignatureLib {
    function isValid(address signer, bytes32 hash, bytes calldata signature) internal view returns (bool) {
        if (signer == address(0)) return false;
        if (signature.length == 65) {
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
            if (err == ECDSA.RecoverError.NoError && recovered == signer) return true;
        }
        return signer.code.length != 0 && SignatureChecker.isValidERC1271SignatureNow(signer, hash, signature);
    }
}
