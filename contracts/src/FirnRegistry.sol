// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IFirnRegistry} from "./interfaces/IFirnRegistry.sol";
import {IFirnVerifierSet} from "./interfaces/IFirnVerifierSet.sol";

/// @title FirnRegistry
/// @notice Registers TEE nodes by Enclave ID. A registration carries a stake and a digest of the
/// attestation evidence; verifiers re-check that evidence off chain and vote on that exact digest,
/// and a quorum activates or rejects the node. The owner (governance) keeps the measurement
/// allow-list; the slasher (the job market) can slash a node for a proven fault.
contract FirnRegistry is IFirnRegistry, Ownable2Step, ReentrancyGuard {
    /// @notice Upper bound on the endpoint length, so a registration cannot bloat storage.
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;
    uint8 private constant TEE_TYPE_MAX = 3;

    IFirnVerifierSet private immutable _verifierSet;
    address private _slasher;
    uint256 private _minNodeStake;
    uint64 private _unbondingPeriod;
    uint256 private _totalStaked;

    mapping(uint8 teeType => mapping(bytes32 measurement => bool)) private _allowed;
    mapping(bytes32 enclaveId => Node) private _nodes;
    mapping(address enclaveAddress => bytes32 enclaveId) private _enclaveIdOf;
    mapping(bytes32 enclaveId => mapping(uint32 round => mapping(address verifier => bool))) private _voted;
    bytes32[] private _enclaveIds;

    modifier onlyOperator(bytes32 enclaveId) {
        if (_nodes[enclaveId].operator != msg.sender || msg.sender == address(0)) {
            revert NotOperator(enclaveId, msg.sender);
        }
        _;
    }

    modifier onlyVerifier() {
        if (!_verifierSet.isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        _;
    }

    constructor(address initialOwner, IFirnVerifierSet verifierSet_, uint256 minStake, uint64 unbonding)
        Ownable(initialOwner)
    {
        _verifierSet = verifierSet_;
        _minNodeStake = minStake;
        _unbondingPeriod = unbonding;
        emit ParametersUpdated(minStake, unbonding);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IFirnRegistry
    function allowMeasurement(uint8 teeType, bytes32 measurement) external onlyOwner {
        _checkTeeType(teeType);
        _allowed[teeType][measurement] = true;
        emit MeasurementAllowed(teeType, measurement);
    }

    /// @inheritdoc IFirnRegistry
    /// @dev Revoking stops new registrations and new job claims with this measurement; nodes
    /// already active stay active until governance or verifiers act on them.
    function revokeMeasurement(uint8 teeType, bytes32 measurement) external onlyOwner {
        _checkTeeType(teeType);
        _allowed[teeType][measurement] = false;
        emit MeasurementRevoked(teeType, measurement);
    }

    /// @inheritdoc IFirnRegistry
    function setSlasher(address newSlasher) external onlyOwner {
        emit SlasherSet(_slasher, newSlasher);
        _slasher = newSlasher;
    }

    /// @inheritdoc IFirnRegistry
    /// @dev A new minimum stake applies to new registrations only.
    function setParameters(uint256 newMinNodeStake, uint64 newUnbondingPeriod) external onlyOwner {
        _minNodeStake = newMinNodeStake;
        _unbondingPeriod = newUnbondingPeriod;
        emit ParametersUpdated(newMinNodeStake, newUnbondingPeriod);
    }

    // ---------------------------------------------------------------- operators

    /// @inheritdoc IFirnRegistry
    function register(RegistrationParams calldata p) external payable {
        if (p.enclaveId == bytes32(0)) revert ZeroEnclaveId();
        _checkTeeType(p.teeType);
        if (!_allowed[p.teeType][p.measurement]) revert MeasurementNotAllowed(p.teeType, p.measurement);
        if (msg.value < _minNodeStake) revert StakeTooLow(msg.value, _minNodeStake);
        _checkKeys(p.enclaveId, p.enclaveAddress, p.kemPublicKey, p.evidenceDigest);
        _checkEndpoint(p.endpoint);

        Node storage n = _nodes[p.enclaveId];
        NodeStatus prev = n.status;
        if (prev == NodeStatus.Slashed) revert EnclaveIdSlashed(p.enclaveId);
        if (prev == NodeStatus.Pending || prev == NodeStatus.Active || prev == NodeStatus.Exiting) {
            revert EnclaveIdActive(p.enclaveId, prev);
        }
        if (prev == NodeStatus.None) {
            _enclaveIds.push(p.enclaveId);
        } else if (n.enclaveAddress != p.enclaveAddress && _enclaveIdOf[n.enclaveAddress] == p.enclaveId) {
            // A returning node with new keys releases the address of its previous registration.
            delete _enclaveIdOf[n.enclaveAddress];
        }

        uint32 round = n.round + 1;
        // Rejected and Exited records hold no stake, so the record is rebuilt from scratch.
        _nodes[p.enclaveId] = Node({
            operator: msg.sender,
            teeType: p.teeType,
            status: NodeStatus.Pending,
            rotationPending: false,
            round: round,
            approvals: 0,
            refusals: 0,
            registeredAt: uint64(block.timestamp),
            unbondingEndsAt: 0,
            measurement: p.measurement,
            enclaveAddress: p.enclaveAddress,
            kemPublicKey: p.kemPublicKey,
            endpoint: p.endpoint,
            evidenceDigest: p.evidenceDigest,
            stake: msg.value,
            pendingEnclaveAddress: address(0),
            pendingKemPublicKey: bytes32(0),
            pendingEvidenceDigest: bytes32(0)
        });
        _enclaveIdOf[p.enclaveAddress] = p.enclaveId;
        _totalStaked += msg.value;
        emit NodeRegistered(
            p.enclaveId,
            msg.sender,
            round,
            p.teeType,
            p.measurement,
            p.enclaveAddress,
            p.kemPublicKey,
            p.endpoint,
            p.evidenceDigest,
            msg.value
        );
    }

    /// @inheritdoc IFirnRegistry
    /// @dev The node keeps serving with its old keys until the quorum approves the new ones.
    function rotateKeys(
        bytes32 enclaveId,
        address newEnclaveAddress,
        bytes32 newKemPublicKey,
        bytes32 newEvidenceDigest
    ) external onlyOperator(enclaveId) {
        Node storage n = _nodes[enclaveId];
        if (n.status != NodeStatus.Active) revert UnexpectedStatus(enclaveId, n.status);
        if (n.rotationPending) revert RotationPending(enclaveId);
        _checkKeys(enclaveId, newEnclaveAddress, newKemPublicKey, newEvidenceDigest);
        uint32 round = n.round + 1;
        n.round = round;
        n.approvals = 0;
        n.refusals = 0;
        n.rotationPending = true;
        n.pendingEnclaveAddress = newEnclaveAddress;
        n.pendingKemPublicKey = newKemPublicKey;
        n.pendingEvidenceDigest = newEvidenceDigest;
        // Reserve the new address so no other registration can take it while the vote runs.
        _enclaveIdOf[newEnclaveAddress] = enclaveId;
        emit KeyRotationRequested(enclaveId, round, newEnclaveAddress, newKemPublicKey, newEvidenceDigest);
    }

    /// @inheritdoc IFirnRegistry
    function updateEndpoint(bytes32 enclaveId, string calldata endpoint) external onlyOperator(enclaveId) {
        Node storage n = _nodes[enclaveId];
        if (n.status != NodeStatus.Pending && n.status != NodeStatus.Active) {
            revert UnexpectedStatus(enclaveId, n.status);
        }
        _checkEndpoint(endpoint);
        n.endpoint = endpoint;
        emit EndpointUpdated(enclaveId, endpoint);
    }

    /// @inheritdoc IFirnRegistry
    /// @dev Allowed from Pending too, so an operator can leave a vote that never concludes. A
    /// pending key rotation is dropped. The node stops taking jobs at once.
    function requestExit(bytes32 enclaveId) external onlyOperator(enclaveId) {
        Node storage n = _nodes[enclaveId];
        if (n.status != NodeStatus.Pending && n.status != NodeStatus.Active) {
            revert UnexpectedStatus(enclaveId, n.status);
        }
        if (n.rotationPending) _clearRotation(enclaveId, n);
        uint64 endsAt = uint64(block.timestamp) + _unbondingPeriod;
        n.status = NodeStatus.Exiting;
        n.unbondingEndsAt = endsAt;
        emit ExitRequested(enclaveId, endsAt);
    }

    /// @inheritdoc IFirnRegistry
    /// @dev From Exiting the node becomes Exited; from Slashed it stays Slashed and the operator
    /// takes what is left of the stake.
    function withdrawStake(bytes32 enclaveId) external nonReentrant onlyOperator(enclaveId) {
        Node storage n = _nodes[enclaveId];
        if (n.status != NodeStatus.Exiting && n.status != NodeStatus.Slashed) {
            revert UnexpectedStatus(enclaveId, n.status);
        }
        if (block.timestamp < n.unbondingEndsAt) {
            revert StillUnbonding(enclaveId, n.unbondingEndsAt, uint64(block.timestamp));
        }
        uint256 amount = n.stake;
        if (amount == 0 && n.status == NodeStatus.Slashed) revert NothingToWithdraw(enclaveId);
        n.stake = 0;
        _totalStaked -= amount;
        if (n.status == NodeStatus.Exiting) n.status = NodeStatus.Exited;
        emit StakeWithdrawn(enclaveId, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // ---------------------------------------------------------------- verifiers

    /// @inheritdoc IFirnRegistry
    function approve(bytes32 enclaveId, bytes32 evidenceDigest) external onlyVerifier {
        Node storage n = _nodes[enclaveId];
        uint32 round = _castVote(enclaveId, n, evidenceDigest);
        uint16 approvals = n.approvals + 1;
        n.approvals = approvals;
        emit NodeApproved(enclaveId, msg.sender, round, approvals);
        if (approvals < _verifierSet.threshold()) return;

        if (n.rotationPending) {
            address newAddress = n.pendingEnclaveAddress;
            if (n.enclaveAddress != newAddress) delete _enclaveIdOf[n.enclaveAddress];
            n.enclaveAddress = newAddress;
            n.kemPublicKey = n.pendingKemPublicKey;
            n.evidenceDigest = n.pendingEvidenceDigest;
            n.rotationPending = false;
            n.pendingEnclaveAddress = address(0);
            n.pendingKemPublicKey = bytes32(0);
            n.pendingEvidenceDigest = bytes32(0);
            emit KeysRotated(enclaveId, round, newAddress, n.kemPublicKey);
        } else {
            n.status = NodeStatus.Active;
            emit NodeActivated(enclaveId, round);
        }
    }

    /// @inheritdoc IFirnRegistry
    function refuse(bytes32 enclaveId, bytes32 evidenceDigest, uint16 reasonCode)
        external
        nonReentrant
        onlyVerifier
    {
        Node storage n = _nodes[enclaveId];
        uint32 round = _castVote(enclaveId, n, evidenceDigest);
        uint16 refusals = n.refusals + 1;
        n.refusals = refusals;
        emit NodeRefused(enclaveId, msg.sender, reasonCode, round, refusals);
        if (refusals < _verifierSet.threshold()) return;

        if (n.rotationPending) {
            _clearRotation(enclaveId, n);
            emit KeyRotationRefused(enclaveId, round);
        } else {
            // The stake comes back in full: refused evidence is not a proven fault, and the
            // operator may register the same Enclave ID again with new evidence.
            uint256 refund = n.stake;
            address operator = n.operator;
            n.stake = 0;
            n.status = NodeStatus.Rejected;
            _totalStaked -= refund;
            if (_enclaveIdOf[n.enclaveAddress] == enclaveId) delete _enclaveIdOf[n.enclaveAddress];
            emit NodeRejected(enclaveId, round, refund);
            _pay(operator, refund);
        }
    }

    // ---------------------------------------------------------------- slashing

    /// @inheritdoc IFirnRegistry
    /// @dev Applies to Active, Exiting and already Slashed nodes (a second fault takes more of what
    /// is left). The amount is capped at the stake; the remainder unbonds from now.
    function slash(bytes32 enclaveId, uint256 amount, address beneficiary, bytes32 reason)
        external
        nonReentrant
        returns (uint256 slashed)
    {
        if (msg.sender != _slasher || msg.sender == address(0)) revert NotSlasher(msg.sender);
        Node storage n = _nodes[enclaveId];
        NodeStatus s = n.status;
        if (s != NodeStatus.Active && s != NodeStatus.Exiting && s != NodeStatus.Slashed) {
            revert UnexpectedStatus(enclaveId, s);
        }
        if (n.rotationPending) _clearRotation(enclaveId, n);
        slashed = amount < n.stake ? amount : n.stake;
        n.stake -= slashed;
        _totalStaked -= slashed;
        n.status = NodeStatus.Slashed;
        n.unbondingEndsAt = uint64(block.timestamp) + _unbondingPeriod;
        emit NodeSlashed(enclaveId, slashed, beneficiary, reason);
        _pay(beneficiary, slashed);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IFirnRegistry
    function isMeasurementAllowed(uint8 teeType, bytes32 measurement) external view returns (bool) {
        return _allowed[teeType][measurement];
    }

    /// @inheritdoc IFirnRegistry
    function getNode(bytes32 enclaveId) external view returns (Node memory) {
        return _nodes[enclaveId];
    }

    /// @inheritdoc IFirnRegistry
    function enclaveIds() external view returns (bytes32[] memory) {
        return _enclaveIds;
    }

    /// @inheritdoc IFirnRegistry
    function enclaveIdCount() external view returns (uint256) {
        return _enclaveIds.length;
    }

    /// @inheritdoc IFirnRegistry
    function enclaveIdOf(address enclaveAddress) external view returns (bytes32) {
        return _enclaveIdOf[enclaveAddress];
    }

    /// @inheritdoc IFirnRegistry
    function isActive(bytes32 enclaveId) external view returns (bool) {
        return _nodes[enclaveId].status == NodeStatus.Active;
    }

    /// @inheritdoc IFirnRegistry
    function hasVoted(bytes32 enclaveId, uint32 round, address verifier) external view returns (bool) {
        return _voted[enclaveId][round][verifier];
    }

    /// @inheritdoc IFirnRegistry
    function minNodeStake() external view returns (uint256) {
        return _minNodeStake;
    }

    /// @inheritdoc IFirnRegistry
    function unbondingPeriod() external view returns (uint64) {
        return _unbondingPeriod;
    }

    /// @inheritdoc IFirnRegistry
    function verifierSet() external view returns (IFirnVerifierSet) {
        return _verifierSet;
    }

    /// @inheritdoc IFirnRegistry
    function slasher() external view returns (address) {
        return _slasher;
    }

    /// @inheritdoc IFirnRegistry
    function totalStaked() external view returns (uint256) {
        return _totalStaked;
    }

    // ---------------------------------------------------------------- internals

    /// @dev Records one vote for the open round and returns the round. A vote names the evidence
    /// digest it judged, so a vote can never count for evidence the verifier did not see.
    function _castVote(bytes32 enclaveId, Node storage n, bytes32 evidenceDigest) private returns (uint32 round) {
        bytes32 expected;
        if (n.status == NodeStatus.Pending) {
            expected = n.evidenceDigest;
        } else if (n.status == NodeStatus.Active && n.rotationPending) {
            expected = n.pendingEvidenceDigest;
        } else {
            revert NoOpenRound(enclaveId, n.status);
        }
        if (evidenceDigest != expected) revert EvidenceMismatch(enclaveId, expected, evidenceDigest);
        round = n.round;
        if (_voted[enclaveId][round][msg.sender]) revert AlreadyVoted(enclaveId, round, msg.sender);
        _voted[enclaveId][round][msg.sender] = true;
    }

    function _clearRotation(bytes32 enclaveId, Node storage n) private {
        address pending = n.pendingEnclaveAddress;
        if (pending != n.enclaveAddress && _enclaveIdOf[pending] == enclaveId) delete _enclaveIdOf[pending];
        n.rotationPending = false;
        n.pendingEnclaveAddress = address(0);
        n.pendingKemPublicKey = bytes32(0);
        n.pendingEvidenceDigest = bytes32(0);
    }

    function _checkTeeType(uint8 teeType) private pure {
        if (teeType == 0 || teeType > TEE_TYPE_MAX) revert InvalidTeeType(teeType);
    }

    function _checkKeys(bytes32 enclaveId, address enclaveAddress, bytes32 kemPublicKey, bytes32 evidenceDigest)
        private
        view
    {
        if (enclaveAddress == address(0)) revert ZeroEnclaveAddress();
        if (kemPublicKey == bytes32(0)) revert ZeroKemPublicKey();
        if (evidenceDigest == bytes32(0)) revert ZeroEvidenceDigest();
        bytes32 holder = _enclaveIdOf[enclaveAddress];
        if (holder != bytes32(0) && holder != enclaveId) revert EnclaveAddressInUse(enclaveAddress, holder);
    }

    function _checkEndpoint(string calldata endpoint) private pure {
        uint256 len = bytes(endpoint).length;
        if (len == 0) revert EmptyEndpoint();
        if (len > MAX_ENDPOINT_LENGTH) revert EndpointTooLong(len, MAX_ENDPOINT_LENGTH);
    }

    function _pay(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
