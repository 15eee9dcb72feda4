// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnVerifierSet} from "./IFirnVerifierSet.sol";

/// @title IFirnRegistry
/// @notice Measurement allow-list, node registration with stake, verifier-quorum approval, key
/// rotation, exit with unbonding, and slashing by the job market.
interface IFirnRegistry {
    /// @notice Life cycle of one Enclave ID.
    /// None: never registered. Pending: registered, waiting for the verifier quorum.
    /// Active: approved; may take jobs and post data. Rejected: refused by the quorum, stake
    /// returned; may register again. Exiting: exit requested, stake locked until unbonding ends.
    /// Exited: stake withdrawn; may register again. Slashed: punished for a proven fault; the
    /// Enclave ID (this platform with this code) may never register again.
    enum NodeStatus {
        None,
        Pending,
        Active,
        Rejected,
        Exiting,
        Exited,
        Slashed
    }

    /// @notice What an operator submits to register an Enclave ID.
    struct RegistrationParams {
        bytes32 enclaveId;
        uint8 teeType;
        bytes32 measurement;
        address enclaveAddress;
        bytes32 kemPublicKey;
        string endpoint;
        bytes32 evidenceDigest;
    }

    /// @notice One node as stored. Votes (`approvals`, `refusals`) count for the current `round`,
    /// which is the registration or the pending key rotation.
    struct Node {
        address operator;
        uint8 teeType;
        NodeStatus status;
        bool rotationPending;
        uint32 round;
        uint16 approvals;
        uint16 refusals;
        uint64 registeredAt;
        uint64 unbondingEndsAt;
        bytes32 measurement;
        address enclaveAddress;
        bytes32 kemPublicKey;
        string endpoint;
        bytes32 evidenceDigest;
        uint256 stake;
        address pendingEnclaveAddress;
        bytes32 pendingKemPublicKey;
        bytes32 pendingEvidenceDigest;
    }

    error StakeTooLow(uint256 sent, uint256 min);
    error InvalidTeeType(uint8 teeType);
    error MeasurementNotAllowed(uint8 teeType, bytes32 measurement);
    error EnclaveIdActive(bytes32 enclaveId, NodeStatus status);
    error EnclaveIdSlashed(bytes32 enclaveId);
    error EnclaveAddressInUse(address enclaveAddress, bytes32 enclaveId);
    error ZeroEnclaveId();
    error ZeroEnclaveAddress();
    error ZeroKemPublicKey();
    error ZeroEvidenceDigest();
    error EmptyEndpoint();
    error EndpointTooLong(uint256 length, uint256 max);
    error NotOperator(bytes32 enclaveId, address caller);
    error NotVerifier(address caller);
    error NotSlasher(address caller);
    error NoOpenRound(bytes32 enclaveId, NodeStatus status);
    error EvidenceMismatch(bytes32 enclaveId, bytes32 expected, bytes32 given);
    error AlreadyVoted(bytes32 enclaveId, uint32 round, address verifier);
    error UnexpectedStatus(bytes32 enclaveId, NodeStatus status);
    error RotationPending(bytes32 enclaveId);
    error StillUnbonding(bytes32 enclaveId, uint64 unbondingEndsAt, uint64 nowTime);
    error NothingToWithdraw(bytes32 enclaveId);
    error TransferFailed(address to, uint256 amount);

    event MeasurementAllowed(uint8 indexed teeType, bytes32 indexed measurement);
    event MeasurementRevoked(uint8 indexed teeType, bytes32 indexed measurement);
    event NodeRegistered(
        bytes32 indexed enclaveId,
        address indexed operator,
        uint32 round,
        uint8 teeType,
        bytes32 measurement,
        address enclaveAddress,
        bytes32 kemPublicKey,
        string endpoint,
        bytes32 evidenceDigest,
        uint256 stake
    );
    event NodeApproved(bytes32 indexed enclaveId, address indexed verifier, uint32 round, uint16 approvals);
    event NodeRefused(
        bytes32 indexed enclaveId, address indexed verifier, uint16 reasonCode, uint32 round, uint16 refusals
    );
    event NodeActivated(bytes32 indexed enclaveId, uint32 round);
    event NodeRejected(bytes32 indexed enclaveId, uint32 round, uint256 refunded);
    event KeyRotationRequested(
        bytes32 indexed enclaveId,
        uint32 round,
        address newEnclaveAddress,
        bytes32 newKemPublicKey,
        bytes32 newEvidenceDigest
    );
    event KeysRotated(bytes32 indexed enclaveId, uint32 round, address enclaveAddress, bytes32 kemPublicKey);
    event KeyRotationRefused(bytes32 indexed enclaveId, uint32 round);
    event EndpointUpdated(bytes32 indexed enclaveId, string endpoint);
    event ExitRequested(bytes32 indexed enclaveId, uint64 unbondingEndsAt);
    event StakeWithdrawn(bytes32 indexed enclaveId, address indexed operator, uint256 amount);
    event NodeSlashed(bytes32 indexed enclaveId, uint256 amount, address indexed beneficiary, bytes32 reason);
    event SlasherSet(address indexed previousSlasher, address indexed newSlasher);
    event ParametersUpdated(uint256 minNodeStake, uint64 unbondingPeriod);

    function allowMeasurement(uint8 teeType, bytes32 measurement) external;
    function revokeMeasurement(uint8 teeType, bytes32 measurement) external;
    function setSlasher(address newSlasher) external;
    function setParameters(uint256 newMinNodeStake, uint64 newUnbondingPeriod) external;

    function register(RegistrationParams calldata params) external payable;
    function approve(bytes32 enclaveId, bytes32 evidenceDigest) external;
    function refuse(bytes32 enclaveId, bytes32 evidenceDigest, uint16 reasonCode) external;
    function rotateKeys(
        bytes32 enclaveId,
        address newEnclaveAddress,
        bytes32 newKemPublicKey,
        bytes32 newEvidenceDigest
    ) external;
    function updateEndpoint(bytes32 enclaveId, string calldata endpoint) external;
    function requestExit(bytes32 enclaveId) external;
    function withdrawStake(bytes32 enclaveId) external;
    function slash(bytes32 enclaveId, uint256 amount, address beneficiary, bytes32 reason)
        external
        returns (uint256 slashed);

    function isMeasurementAllowed(uint8 teeType, bytes32 measurement) external view returns (bool);
    function getNode(bytes32 enclaveId) external view returns (Node memory);
    function enclaveIds() external view returns (bytes32[] memory);
    function enclaveIdCount() external view returns (uint256);
    function enclaveIdOf(address enclaveAddress) external view returns (bytes32);
    function isActive(bytes32 enclaveId) external view returns (bool);
    function hasVoted(bytes32 enclaveId, uint32 round, address verifier) external view returns (bool);
    function minNodeStake() external view returns (uint256);
    function unbondingPeriod() external view returns (uint64);
    function verifierSet() external view returns (IFirnVerifierSet);
    function slasher() external view returns (address);
    function totalStaked() external view returns (uint256);
}
