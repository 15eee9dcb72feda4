// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "./IFirnRegistry.sol";

/// @title IFirnDataLedger
/// @notice A public record of data digests signed by active enclaves.
interface IFirnDataLedger {
    /// @notice The typed data an enclave signs (EIP-712, domain "firn" "1", this ledger).
    struct SignedData {
        bytes32 enclaveId;
        bytes32 dataHash;
        string uri;
    }

    error NodeNotActive(bytes32 enclaveId);
    error InvalidSignature(uint8 recoverError);
    error WrongSigner(bytes32 enclaveId, address expected, address recovered);
    error UriTooLong(uint256 length, uint256 max);
    error AlreadyPosted(bytes32 digest);

    event DataPosted(
        bytes32 indexed enclaveId, bytes32 indexed dataHash, bytes32 digest, string uri, address indexed poster
    );

    function post(bytes32 enclaveId, bytes32 dataHash, string calldata uri, bytes calldata signature) external;
    function hashSignedData(SignedData calldata data) external view returns (bytes32);
    function isPosted(bytes32 digest) external view returns (bool);
    function registry() external view returns (IFirnRegistry);
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
