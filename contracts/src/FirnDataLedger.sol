// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IFirnDataLedger} from "./interfaces/IFirnDataLedger.sol";
import {IFirnRegistry} from "./interfaces/IFirnRegistry.sol";

/// @title FirnDataLedger
/// @notice Anyone may relay a data digest that an eligible enclave signed; the ledger checks the
/// EIP-712 signature against the enclave address in the registry and records it once with its
/// signer and block. Records are re-checked against the registry's enclave-key history, so a record
/// signed before a key rotation or an exit stays verifiable. See docs/decisions/0800-economics.md.
contract FirnDataLedger is IFirnDataLedger, EIP712 {
    bytes32 public constant SIGNED_DATA_TYPEHASH = keccak256("SignedData(bytes32 enclaveId,bytes32 dataHash,string uri)");
    uint256 public constant MAX_URI_LENGTH = 2048;

    IFirnRegistry private immutable _registry;
    mapping(bytes32 digest => Record) private _records;

    constructor(IFirnRegistry registry_) EIP712("firn", "1") {
        _registry = registry_;
    }

    /// @inheritdoc IFirnDataLedger
    /// @dev The signature is the authority, so the poster may be any relayer. Each signed record is
    /// accepted once, so a replay cannot inflate the record.
    function post(bytes32 enclaveId, bytes32 dataHash, string calldata uri, bytes calldata signature) external {
        uint256 len = bytes(uri).length;
        if (len > MAX_URI_LENGTH) revert UriTooLong(len, MAX_URI_LENGTH);
        IFirnRegistry.NodeSummary memory node = _registry.getNodeSummary(enclaveId);
        if (node.ineligibility != 0) revert NodeNotEligible(enclaveId, node.ineligibility);
        bytes32 digest = _hash(enclaveId, dataHash, uri);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature(uint8(err));
        if (signer != node.enclaveAddress) revert WrongSigner(enclaveId, node.enclaveAddress, signer);
        if (_records[digest].signer != address(0)) revert AlreadyPosted(digest);
        _records[digest] = Record({enclaveId: enclaveId, signer: signer, blockNumber: uint64(block.number)});
        emit DataPosted(enclaveId, dataHash, digest, uri, msg.sender);
    }

    /// @inheritdoc IFirnDataLedger
    function hashSignedData(SignedData calldata data) external view returns (bytes32) {
        return _hash(data.enclaveId, data.dataHash, data.uri);
    }

    /// @inheritdoc IFirnDataLedger
    function isPosted(bytes32 digest) external view returns (bool) {
        return _records[digest].signer != address(0);
    }

    /// @inheritdoc IFirnDataLedger
    function getRecord(bytes32 digest) external view returns (Record memory) {
        return _records[digest];
    }

    /// @inheritdoc IFirnDataLedger
    function isValidRecord(bytes32 digest) external view returns (bool) {
        Record storage r = _records[digest];
        if (r.signer == address(0)) return false;
        return _registry.wasEnclaveAddress(r.enclaveId, r.signer, r.blockNumber);
    }

    /// @inheritdoc IFirnDataLedger
    /// @dev A malformed or malleable signature is simply not valid (false), never a revert.
    function verifySignedData(SignedData calldata data, bytes calldata signature, uint256 blockNumber)
        external
        view
        returns (bool)
    {
        bytes32 digest = _hash(data.enclaveId, data.dataHash, data.uri);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError) return false;
        return _registry.wasEnclaveAddress(data.enclaveId, signer, blockNumber);
    }

    /// @inheritdoc IFirnDataLedger
    function registry() external view returns (IFirnRegistry) {
        return _registry;
    }

    /// @inheritdoc IFirnDataLedger
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function _hash(bytes32 enclaveId, bytes32 dataHash, string calldata uri) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(SIGNED_DATA_TYPEHASH, enclaveId, dataHash, keccak256(bytes(uri)))));
    }
}
