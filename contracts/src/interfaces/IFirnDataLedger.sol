// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "./IFirnRegistry.sol";

/// @title IFirnDataLedger
/// @notice A public record of data digests signed by eligible enclaves. Each record keeps its
/// signer and block, and is checked against the registry's enclave-key history, so it stays
/// verifiable after the enclave's key rotates or the node exits.
interface IFirnDataLedger {
    /// @notice The typed data an enclave signs (EIP-712, domain "firn" "1", this ledger).
    struct SignedData {
        bytes32 enclaveId;
        bytes32 dataHash;
        string uri;
    }

    /// @notice A posted record: the Enclave ID, the recovered signer and the block it was posted in.
    struct Record {
        bytes32 enclaveId;
        address signer;
        uint64 blockNumber;
    }

    error NodeNotEligible(bytes32 enclaveId, uint8 reason);
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
    /// @notice The posted record of `digest` (zero when never posted).
    function getRecord(bytes32 digest) external view returns (Record memory);
    /// @notice True when `digest` was posted and its signer was the Enclave ID's enclave key at the
    /// block it was posted in (by the registry's key history, whatever happened since).
    function isValidRecord(bytes32 digest) external view returns (bool);
    /// @notice For data never posted: true when `signature` over SignedData{enclaveId, dataHash,
    /// uri} recovers to an address that was the Enclave ID's enclave key at `blockNumber`.
    function verifySignedData(SignedData calldata data, bytes calldata signature, uint256 blockNumber)
        external
        view
        returns (bool);
    function registry() external view returns (IFirnRegistry);
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
