// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IFirnRegistry} from "./interfaces/IFirnRegistry.sol";
import {IFirnRewards} from "./interfaces/IFirnRewards.sol";
import {IFirnVerifierSet} from "./interfaces/IFirnVerifierSet.sol";

/// @title FirnRegistry
/// @notice Registers TEE nodes by Enclave ID. A registration carries a stake, a fee for the
/// governance treasury (decision 1671) and a digest of the attestation evidence; verifiers re-check that evidence off chain and
/// vote on that exact round and digest (decision 1831) with their stake as weight; > 2/3 of the stake snapshotted when the
/// round opened activates, > 1/3 refuses. The owner (the timelock) keeps the measurement
/// allow-list, the allowed TEE types and the parameters; the guardian may pause and revoke at
/// once; the slasher (the job market) slashes proven faults and locks stake through challenge
/// windows. See docs/decisions/0102-contract-lifecycles.md and docs/decisions/0800-economics.md.
contract FirnRegistry is IFirnRegistry, Ownable, Pausable, ReentrancyGuardTransient {
    using EnumerableSet for EnumerableSet.Bytes32Set;

    /// @notice Upper bound on the endpoint length, so a registration cannot bloat storage.
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;
    uint8 private constant TEE_TYPE_MAX = 5;
    /// @dev Bits 1..3: simulated, sgx, tdx.
    uint8 private constant TEE_MASK_VALID = 0x3e;
    uint64 private constant OPEN_RANGE = type(uint64).max;
    /// @notice Bounds and default of `roundTimeout` (decision 1833): long enough for the verifiers'
    /// retries (minutes, decision 1742) and a slow operator; short enough that a squatter's fee buys
    /// little; the upper bound fits the uint24 beside the TEE-type mask. Private: the registry's
    /// code is at the size limit (the bounds are in `RoundTimeoutOutOfRange`).
    uint64 private constant MIN_ROUND_TIMEOUT = 1 hours;
    uint64 private constant MAX_ROUND_TIMEOUT = 30 days;
    uint64 private constant DEFAULT_ROUND_TIMEOUT = 1 days;

    uint8 private constant INELIGIBLE_NOT_ACTIVE = 1;
    uint8 private constant INELIGIBLE_TEE_TYPE = 2;
    uint8 private constant INELIGIBLE_MEASUREMENT = 3;

    IFirnVerifierSet private immutable _verifierSet;
    // One slot: lockStake reads the slasher and raises its horizon in the same word (decision 1700).
    address private _slasher;
    uint64 private _slasherHorizon;
    // One slot, read only off the current slasher's paths: the scheduled slasher, the second it may
    // take over (0: none), and the latest unbonding end of any exit requested under a longer
    // unbonding period than today's (decision 1778).
    address private _pendingSlasher;
    uint40 private _slasherChangeAt;
    uint40 private _exitCover;
    address private _guardian;
    // One slot: what register and the market's proof check read together (decision 1140).
    address private _rewardPool;
    uint8 private _allowedTeeTypes;
    uint64 private _unbondingPeriod;
    // Same slot: register reads it with the TEE-type mask at no extra storage read (decision 1833).
    uint24 private _roundTimeout;
    uint128 private _minNodeStake;
    uint128 private _registrationFee;
    // Sums of ether held; bounded by the ether in existence, far below 2^128 wei. register and
    // rotateKeys change one slot: the stake total and the fees held for the treasury (decisions 1140, 1671).
    uint128 private _totalStaked;
    uint128 private _feesHeld;
    uint128 private _totalWithdrawable;

    mapping(uint8 teeType => mapping(bytes32 measurement => bool)) private _allowed;
    mapping(bytes32 enclaveId => Node) private _nodes;
    mapping(address enclaveAddress => bytes32 enclaveId) private _enclaveIdOf;
    mapping(bytes32 enclaveId => mapping(uint32 round => mapping(address verifier => bool))) private _voted;
    mapping(NodeStatus status => EnumerableSet.Bytes32Set) private _byStatus;
    mapping(bytes32 enclaveId => EnclaveKeyRecord[]) private _keyHistory;
    mapping(address account => uint256) private _withdrawable;
    /// @dev Replaced slashers and the last second they may still slash (decision 1700).
    mapping(address slasher => uint64 until) private _retiredSlasherUntil;
    /// @dev Voters per round and side; only the side that decides the round earns reward points.
    mapping(bytes32 enclaveId => mapping(uint32 round => address[])) private _approvers;
    mapping(bytes32 enclaveId => mapping(uint32 round => address[])) private _refusers;

    modifier onlyOperator(bytes32 enclaveId) {
        if (_nodes[enclaveId].operator != msg.sender || msg.sender == address(0)) {
            revert NotOperator(enclaveId, msg.sender);
        }
        _;
    }

    modifier onlyOwnerOrGuardian() {
        if (msg.sender != owner() && (msg.sender != _guardian || msg.sender == address(0))) {
            revert NotGuardian(msg.sender);
        }
        _;
    }

    /// @param initialOwner the deployer during bootstrap, then the timelock (FirnGovernance)
    /// @param verifierSet_ the verifier set whose snapshots weigh the votes
    /// @param minStake minimum node stake (wei)
    /// @param unbonding seconds between requestExit and withdrawStake (at least)
    /// @param allowedTeeTypes_ bit (1 << teeType) per accepted TEE type; production: 0x3c (SGX, TDX, Nitro, SEV-SNP; no simulated)
    constructor(
        address initialOwner,
        IFirnVerifierSet verifierSet_,
        uint256 minStake,
        uint64 unbonding,
        uint8 allowedTeeTypes_
    ) Ownable(initialOwner) {
        if (allowedTeeTypes_ & ~TEE_MASK_VALID != 0) revert InvalidTeeTypeMask(allowedTeeTypes_);
        _verifierSet = verifierSet_;
        _minNodeStake = SafeCast.toUint128(minStake);
        _unbondingPeriod = unbonding;
        _allowedTeeTypes = allowedTeeTypes_;
        _roundTimeout = uint24(DEFAULT_ROUND_TIMEOUT);
        emit ParametersUpdated(minStake, unbonding, 0);
        emit AllowedTeeTypesSet(0, allowedTeeTypes_);
        emit RoundTimeoutSet(0, DEFAULT_ROUND_TIMEOUT);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IFirnRegistry
    function allowMeasurement(uint8 teeType, bytes32 measurement) external onlyOwner {
        _checkTeeType(teeType);
        _allowed[teeType][measurement] = true;
        emit MeasurementAllowed(teeType, measurement);
    }

    /// @inheritdoc IFirnRegistry
    function revokeMeasurement(uint8 teeType, bytes32 measurement) external onlyOwnerOrGuardian {
        _checkTeeType(teeType);
        _allowed[teeType][measurement] = false;
        emit MeasurementRevoked(teeType, measurement, msg.sender);
    }

    /// @inheritdoc IFirnRegistry
    function setAllowedTeeTypes(uint8 mask) external onlyOwner {
        if (mask & ~TEE_MASK_VALID != 0) revert InvalidTeeTypeMask(mask);
        emit AllowedTeeTypesSet(_allowedTeeTypes, mask);
        _allowedTeeTypes = mask;
    }

    /// @inheritdoc IFirnRegistry
    /// @dev Decision 1778: the change waits until every node can have left with its stake: the
    /// unbonding of an exit requested now, of any exit requested under a longer period before
    /// (`_exitCover`), and every lock the current slasher took (its horizon). Immediate only while
    /// no slasher is set and nothing is staked (the deployment's bootstrap).
    function setSlasher(address newSlasher) external onlyOwner {
        uint40 changeAt = _slasherChangeAt;
        if (changeAt != 0) {
            if (block.timestamp >= changeAt) _applySlasherChange();
            else if (newSlasher == _pendingSlasher) return; // already scheduled: keeps its time
            else _cancelSlasherChange();
        }
        address current = _slasher;
        if (newSlasher == current) return;
        if (current == address(0) && _totalStaked == 0) {
            _replaceSlasher(current, newSlasher);
            return;
        }
        uint256 at = block.timestamp + _unbondingPeriod;
        if (_exitCover > at) at = _exitCover;
        if (_slasherHorizon > at) at = _slasherHorizon;
        // A second after the last withdrawal it waits for, so none races the new slasher's first call.
        uint40 effectiveAt = SafeCast.toUint40(at + 1);
        _pendingSlasher = newSlasher;
        _slasherChangeAt = effectiveAt;
        emit SlasherChangeScheduled(current, newSlasher, effectiveAt);
    }

    /// @inheritdoc IFirnRegistry
    function applySlasherChange() external {
        uint40 changeAt = _slasherChangeAt;
        if (changeAt == 0 || block.timestamp < changeAt) revert SlasherChangeNotDue(_pendingSlasher, changeAt);
        _applySlasherChange();
    }

    /// @dev The scheduled slasher takes over (its time has come; decision 1778).
    function _applySlasherChange() private {
        address next = _pendingSlasher;
        delete _pendingSlasher;
        _slasherChangeAt = 0;
        _replaceSlasher(_slasher, next);
    }

    /// @dev Forgets the scheduled slasher before its time.
    function _cancelSlasherChange() private {
        emit SlasherChangeCancelled(_pendingSlasher);
        delete _pendingSlasher;
        _slasherChangeAt = 0;
    }

    /// @dev The replaced slasher keeps `slash` until its horizon (the latest lock it took, which
    /// covers every challenge window it opened); it can take no new lock, so the horizon is final.
    /// A slasher appointed again resumes from its retired horizon (decision 1700).
    function _replaceSlasher(address previous, address newSlasher) private {
        emit SlasherSet(previous, newSlasher);
        if (previous != address(0)) {
            uint64 until = _slasherHorizon;
            if (until > _retiredSlasherUntil[previous]) {
                _retiredSlasherUntil[previous] = until;
                emit SlasherRetired(previous, until);
            }
        }
        _slasher = newSlasher;
        _slasherHorizon = _retiredSlasherUntil[newSlasher];
        delete _retiredSlasherUntil[newSlasher];
    }

    /// @notice Disabled (reverts OwnershipRenounceDisabled): without an owner a guardian pause
    /// could never be lifted (decision 1703).
    function renounceOwnership() public pure override {
        revert OwnershipRenounceDisabled();
    }

    /// @inheritdoc IFirnRegistry
    function setGuardian(address newGuardian) external onlyOwner {
        emit GuardianSet(_guardian, newGuardian);
        _guardian = newGuardian;
    }

    /// @inheritdoc IFirnRegistry
    /// @dev A contract is the cheap check: an account without code cannot take `fund()`. The pool
    /// must name this registry and its verifier set (its back-pointers): a pool built for another
    /// registry refuses every report from this one while taking its fees. The job market reads this
    /// pointer, so this one call moves the whole network (decision 1756).
    function setRewardPool(address newPool) external onlyOwner {
        if (newPool == address(0)) {
            if (_registrationFee != 0) revert RewardPoolNotSet();
        } else if (newPool.code.length == 0) {
            revert RewardPoolNotContract(newPool);
        } else {
            address poolRegistry = address(IFirnRewards(newPool).registry());
            address poolVerifierSet = address(IFirnRewards(newPool).verifierSet());
            if (poolRegistry != address(this) || poolVerifierSet != address(_verifierSet)) {
                revert RewardPoolMismatch(newPool, poolRegistry, poolVerifierSet);
            }
        }
        emit RewardPoolSet(_rewardPool, newPool);
        _rewardPool = newPool;
    }

    /// @inheritdoc IFirnRegistry
    /// @dev A new minimum stake and fee apply to new registrations only. A raised unbonding period
    /// moves a pending slasher change to at least now + the new period + 1 (decision 1781): exits
    /// requested from now on unbond that long, and an objecting node asks to exit in this block.
    function setParameters(uint256 newMinNodeStake, uint64 newUnbondingPeriod, uint256 newRegistrationFee)
        external
        onlyOwner
    {
        if (newRegistrationFee != 0 && _rewardPool == address(0)) revert RewardPoolNotSet();
        _minNodeStake = SafeCast.toUint128(newMinNodeStake);
        uint64 oldUnbonding = _unbondingPeriod;
        if (newUnbondingPeriod < oldUnbonding) {
            // Exits requested so far may end as late as this: a slasher scheduled later waits for
            // them although the new period is shorter (decision 1778).
            uint40 cover = SafeCast.toUint40(block.timestamp + oldUnbonding);
            if (cover > _exitCover) _exitCover = cover;
        } else if (newUnbondingPeriod > oldUnbonding) {
            // Exits requested before keep their end, before the pending change's time; those
            // requested from now on unbond longer, and the change waits for them (decision 1781).
            uint40 changeAt = _slasherChangeAt;
            if (changeAt != 0 && block.timestamp < changeAt) {
                uint40 effectiveAt = SafeCast.toUint40(block.timestamp + uint256(newUnbondingPeriod) + 1);
                if (effectiveAt > changeAt) {
                    _slasherChangeAt = effectiveAt;
                    emit SlasherChangeScheduled(_slasher, _pendingSlasher, effectiveAt);
                }
            }
        }
        _unbondingPeriod = newUnbondingPeriod;
        _registrationFee = SafeCast.toUint128(newRegistrationFee);
        emit ParametersUpdated(newMinNodeStake, newUnbondingPeriod, newRegistrationFee);
    }

    /// @inheritdoc IFirnRegistry
    function setRoundTimeout(uint64 newTimeout) external onlyOwner {
        if (newTimeout < MIN_ROUND_TIMEOUT || newTimeout > MAX_ROUND_TIMEOUT) {
            revert RoundTimeoutOutOfRange(newTimeout, MIN_ROUND_TIMEOUT, MAX_ROUND_TIMEOUT);
        }
        emit RoundTimeoutSet(_roundTimeout, newTimeout);
        _roundTimeout = uint24(newTimeout);
    }

    /// @inheritdoc IFirnRegistry
    function pause() external onlyOwnerOrGuardian {
        _pause();
    }

    /// @inheritdoc IFirnRegistry
    function unpause() external onlyOwner {
        _unpause();
    }

    // ---------------------------------------------------------------- operators

    /// @inheritdoc IFirnRegistry
    function register(RegistrationParams calldata p) external payable whenNotPaused {
        if (p.enclaveId == bytes32(0)) revert ZeroEnclaveId();
        if (p.platformIdHash == bytes32(0)) revert ZeroPlatformIdHash();
        _checkTeeType(p.teeType);
        if (_allowedTeeTypes & (uint8(1) << p.teeType) == 0) revert TeeTypeNotAllowed(p.teeType, _allowedTeeTypes);
        if (!_allowed[p.teeType][p.measurement]) revert MeasurementNotAllowed(p.teeType, p.measurement);
        uint256 fee = _registrationFee;
        uint256 minValue = uint256(_minNodeStake) + fee;
        if (msg.value < minValue) revert StakeTooLow(msg.value, minValue);
        _checkKeys(p.enclaveId, p.enclaveAddress, p.kemPublicKey, p.evidenceDigest);
        _checkEndpoint(p.endpoint);

        Node storage n = _nodes[p.enclaveId];
        NodeStatus prev = n.status;
        if (prev == NodeStatus.Slashed) revert EnclaveIdSlashed(p.enclaveId);
        if (prev == NodeStatus.Pending || prev == NodeStatus.Active || prev == NodeStatus.Exiting) {
            revert EnclaveIdActive(p.enclaveId, prev);
        }
        if (prev != NodeStatus.None && n.enclaveAddress != p.enclaveAddress && _enclaveIdOf[n.enclaveAddress] == p.enclaveId)
        {
            // A returning node with new keys releases the address of its previous registration.
            delete _enclaveIdOf[n.enclaveAddress];
        }

        uint256 stake = msg.value - fee;
        if (stake > type(uint80).max) revert StakeTooHigh(stake, type(uint80).max);
        uint16 round = n.round + 1;
        uint64 snapshotId = _verifierSet.currentSnapshot();
        // Rejected and Exited records hold no stake and no pending rotation. Whole slots are written
        // at once (one SSTORE each); the KEM key and the endpoint are only emitted (decision 1140).
        // Pending registrations are not indexed on chain: verifiers and clients follow NodeRegistered.
        n.operator = msg.sender;
        n.round = round;
        n.stake = uint80(stake);
        n.enclaveAddress = p.enclaveAddress;
        n.teeType = p.teeType;
        n.status = NodeStatus.Pending;
        n.rotationPending = false;
        n.snapshotId = SafeCast.toUint32(snapshotId);
        // The round's deadline (decision 1833) fills the vote slot: one SSTORE of the whole slot.
        n.unbondingEndsAt = 0;
        n.roundEndsAt = uint40(block.timestamp + _roundTimeout);
        n.approvalStake = 0;
        n.refusalStake = 0;
        n.measurement = p.measurement;
        n.platformIdHash = p.platformIdHash;
        n.evidenceDigest = p.evidenceDigest;
        _enclaveIdOf[p.enclaveAddress] = p.enclaveId;
        _totalStaked += uint128(stake);
        // Held for the treasury and swept in one payment (sweepFees): a payment per registration would
        // cost a call with value and the pool's own writes each time (decision 1140).
        if (fee != 0) _feesHeld += uint128(fee);
        _emitRegistered(p, round, stake, fee, snapshotId);
    }

    /// @inheritdoc IFirnRegistry
    /// @dev The node keeps serving with its old keys until the quorum approves the new ones. The
    /// rotation reserves the new address while its vote runs, so it costs the registration fee
    /// (to the reward pool, not refunded): squatting an address by rotation costs what squatting it
    /// by registration does.
    function rotateKeys(
        bytes32 enclaveId,
        address newEnclaveAddress,
        bytes32 newKemPublicKey,
        bytes32 newEvidenceDigest
    ) external payable whenNotPaused onlyOperator(enclaveId) {
        uint256 fee = _registrationFee;
        if (msg.value != fee) revert RotationFeeMismatch(msg.value, fee);
        Node storage n = _nodes[enclaveId];
        if (n.status != NodeStatus.Active) revert UnexpectedStatus(enclaveId, n.status);
        if (n.rotationPending) revert RotationPending(enclaveId);
        _checkKeys(enclaveId, newEnclaveAddress, newKemPublicKey, newEvidenceDigest);
        uint16 round = n.round + 1;
        uint64 snapshotId = _verifierSet.currentSnapshot();
        n.round = round;
        n.snapshotId = SafeCast.toUint32(snapshotId);
        // unbondingEndsAt is 0 while Active: the vote slot is written whole (decision 1833).
        n.roundEndsAt = uint40(block.timestamp + _roundTimeout);
        n.approvalStake = 0;
        n.refusalStake = 0;
        n.rotationPending = true;
        n.pendingEnclaveAddress = newEnclaveAddress;
        n.pendingKemPublicKey = newKemPublicKey;
        n.pendingEvidenceDigest = newEvidenceDigest;
        // Reserve the new address so no other registration can take it while the vote runs.
        _enclaveIdOf[newEnclaveAddress] = enclaveId;
        emit KeyRotationRequested(enclaveId, round, newEnclaveAddress, newKemPublicKey, newEvidenceDigest, snapshotId);
        if (fee != 0) _feesHeld += uint128(fee);
    }

    /// @inheritdoc IFirnRegistry
    function updateEndpoint(bytes32 enclaveId, string calldata endpoint) external onlyOperator(enclaveId) {
        Node storage n = _nodes[enclaveId];
        if (n.status != NodeStatus.Pending && n.status != NodeStatus.Active) {
            revert UnexpectedStatus(enclaveId, n.status);
        }
        _checkEndpoint(endpoint);
        // Not stored: the contract never reads it; clients take the latest EndpointUpdated or
        // NodeRegistered event (decision 1140).
        emit EndpointUpdated(enclaveId, endpoint);
    }

    /// @inheritdoc IFirnRegistry
    /// @dev From Pending the registration ends at once: it never served, so nothing needs to
    /// unbond, and the Enclave ID and address are free again (the fee paid for the round stays in
    /// the pool, which is the price of holding the ID). From Active the node stops taking jobs at
    /// once and unbonds; a pending key rotation is dropped.
    function requestExit(bytes32 enclaveId) external onlyOperator(enclaveId) {
        Node storage n = _nodes[enclaveId];
        NodeStatus s = n.status;
        if (s == NodeStatus.Pending) {
            uint256 refund = n.stake;
            n.stake = 0;
            _totalStaked -= uint128(refund);
            _moveStatus(enclaveId, n, NodeStatus.Exited);
            _releaseAddress(enclaveId, n.enclaveAddress);
            emit RegistrationWithdrawn(enclaveId, n.round, refund);
            _credit(n.operator, refund);
            return;
        }
        if (s != NodeStatus.Active) revert UnexpectedStatus(enclaveId, s);
        if (n.rotationPending) _clearRotation(enclaveId, n);
        uint64 endsAt = uint64(block.timestamp) + _unbondingPeriod;
        _moveStatus(enclaveId, n, NodeStatus.Exiting);
        n.unbondingEndsAt = SafeCast.toUint40(endsAt);
        emit ExitRequested(enclaveId, endsAt);
    }

    /// @inheritdoc IFirnRegistry
    /// @dev From Exiting the node becomes Exited and its enclave key record closes; from Slashed
    /// it stays Slashed and the operator takes what is left. Never before the last challenge window
    /// of its proofs has ended, whatever the unbonding period.
    function withdrawStake(bytes32 enclaveId) external nonReentrant onlyOperator(enclaveId) {
        Node storage n = _nodes[enclaveId];
        NodeStatus s = n.status;
        if (s != NodeStatus.Exiting && s != NodeStatus.Slashed) revert UnexpectedStatus(enclaveId, s);
        uint64 unlocksAt = n.unbondingEndsAt > n.lockedUntil ? n.unbondingEndsAt : n.lockedUntil;
        if (block.timestamp < unlocksAt) revert StillUnbonding(enclaveId, unlocksAt, uint64(block.timestamp));
        uint256 amount = n.stake;
        if (amount == 0 && s == NodeStatus.Slashed) revert NothingToWithdraw(msg.sender);
        n.stake = 0;
        _totalStaked -= uint128(amount);
        if (s == NodeStatus.Exiting) {
            _moveStatus(enclaveId, n, NodeStatus.Exited);
            _closeKeyRecord(enclaveId);
        }
        emit StakeWithdrawn(enclaveId, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    /// @inheritdoc IFirnRegistry
    function withdraw() external nonReentrant {
        uint256 amount = _withdrawable[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _withdrawable[msg.sender] = 0;
        _totalWithdrawable -= uint128(amount);
        emit Withdrawn(msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // ---------------------------------------------------------------- verifiers

    /// @inheritdoc IFirnRegistry
    function approve(bytes32 enclaveId, uint32 round, bytes32 evidenceDigest) external {
        Node storage n = _nodes[enclaveId];
        (uint256 weight, uint256 total) = _castVote(enclaveId, n, round, evidenceDigest);
        _checkNotRevokedWhilePending(enclaveId, n);
        uint256 approvals = n.approvalStake + weight;
        n.approvalStake = SafeCast.toUint88(approvals);
        emit NodeApproved(enclaveId, msg.sender, round, weight, approvals);
        _approvers[enclaveId][round].push(msg.sender);
        // Strictly more than two thirds of the stake that can still vote in the round.
        if (approvals * 3 <= _quorumStake(enclaveId, n, round, total) * 2) return;
        _concludeApproved(enclaveId, n, round);
    }

    /// @inheritdoc IFirnRegistry
    function refuse(bytes32 enclaveId, uint32 round, bytes32 evidenceDigest, uint16 reasonCode) external {
        Node storage n = _nodes[enclaveId];
        (uint256 weight, uint256 total) = _castVote(enclaveId, n, round, evidenceDigest);
        uint256 refusals = n.refusalStake + weight;
        n.refusalStake = SafeCast.toUint88(refusals);
        emit NodeRefused(enclaveId, msg.sender, reasonCode, round, weight, refusals);
        _refusers[enclaveId][round].push(msg.sender);
        // Strictly more than one third of the snapshot's whole stake, never of a shrunk bar
        // (decision 1780): out of reach of a coalition under one third however many leave.
        if (refusals * 3 <= total) return;
        _concludeRefused(enclaveId, n, round);
    }

    /// @inheritdoc IFirnRegistry
    /// @dev The votes' own thresholds against the denominator as it is now (decision 1755): a round
    /// whose last vote fell short only because of stake that could still vote then, and has since
    /// left, been deactivated or slashed, concludes here as its next vote would have. The caller
    /// names the round it means, as a vote does (decision 1831).
    function concludeRound(bytes32 enclaveId, uint32 round) external {
        Node storage n = _nodes[enclaveId];
        if (n.status != NodeStatus.Pending && !(n.status == NodeStatus.Active && n.rotationPending)) {
            revert NoOpenRound(enclaveId, n.status);
        }
        uint32 current = n.round;
        if (round != current) revert RoundMismatch(enclaveId, current, round);
        uint256 total = _verifierSet.totalStakeAt(n.snapshotId);
        uint256 quorum = _quorumStake(enclaveId, n, round, total);
        uint256 approvals = n.approvalStake;
        uint256 refusals = n.refusalStake;
        if (approvals * 3 > quorum * 2) {
            _checkNotRevokedWhilePending(enclaveId, n);
            _concludeApproved(enclaveId, n, round);
        } else if (refusals * 3 > total) {
            _concludeRefused(enclaveId, n, round);
        } else {
            revert RoundUndecided(enclaveId, round, approvals, refusals, quorum);
        }
    }

    /// @inheritdoc IFirnRegistry
    /// @dev Decision 1833: a round the quorum left undecided (a silent endpoint gets no vote,
    /// decision 1742) would otherwise hold the Enclave ID and the enclave address for ever. A round
    /// that the votes cast already decide is `concludeRound`'s, never expired. Votes still count
    /// after the deadline until someone expires the round.
    function expireRound(bytes32 enclaveId, uint32 round) external {
        Node storage n = _nodes[enclaveId];
        NodeStatus s = n.status;
        bool rotation = s == NodeStatus.Active && n.rotationPending;
        if (s != NodeStatus.Pending && !rotation) revert NoOpenRound(enclaveId, s);
        uint32 current = n.round;
        if (round != current) revert RoundMismatch(enclaveId, current, round);
        uint64 endsAt = n.roundEndsAt;
        if (block.timestamp < endsAt) revert RoundNotExpired(enclaveId, round, endsAt, uint64(block.timestamp));
        uint256 total = _verifierSet.totalStakeAt(n.snapshotId);
        if (n.refusalStake * uint256(3) > total) revert RoundDecidable(enclaveId, round);
        if (n.approvalStake != 0 && n.approvalStake * uint256(3) > _quorumStake(enclaveId, n, round, total) * 2) {
            revert RoundDecidable(enclaveId, round);
        }
        if (rotation) {
            _clearRotation(enclaveId, n);
            emit RoundExpired(enclaveId, round, msg.sender, true, 0);
            return;
        }
        uint256 refund = n.stake;
        n.stake = 0;
        _totalStaked -= uint128(refund);
        _moveStatus(enclaveId, n, NodeStatus.Exited);
        _releaseAddress(enclaveId, n.enclaveAddress);
        emit RoundExpired(enclaveId, round, msg.sender, false, refund);
        _credit(n.operator, refund);
    }

    // ---------------------------------------------------------------- slasher

    /// @inheritdoc IFirnRegistry
    /// @dev Applies to Active, Exiting and already Slashed nodes (a second fault takes more of what
    /// is left). The amount is capped at the stake. An Active node's remainder unbonds from now; an
    /// Exiting or Slashed node keeps its unbonding end (decision 1781: a restart would carry an
    /// objector's remainder past a scheduled slasher change; `lockedUntil` keeps the stake for its
    /// claims in flight), and once both have passed (`withdrawStake` would pay) its stake is out of
    /// reach: the call takes nothing and changes nothing. The enclave key record closes at this
    /// block: what it signed before stays checkable.
    function slash(bytes32 enclaveId, uint256 amount, address beneficiary, bytes32 reason)
        external
        nonReentrant
        returns (uint256 slashed)
    {
        if (msg.sender != _slasher || msg.sender == address(0)) {
            // The scheduled slasher once its time has come (decision 1778), else a replaced
            // slasher until its last challenge window closed (decision 1700).
            if (!_takeOverAsSlasher() && block.timestamp > _retiredSlasherUntil[msg.sender]) {
                revert NotSlasher(msg.sender);
            }
        }
        Node storage n = _nodes[enclaveId];
        NodeStatus s = n.status;
        if (s != NodeStatus.Active && s != NodeStatus.Exiting && s != NodeStatus.Slashed) {
            revert UnexpectedStatus(enclaveId, s);
        }
        // Unbonded and unlocked: the stake is the operator's to withdraw, whoever slashes now
        // (decision 1781; a slasher change scheduled before the exit is due only after this).
        if (s != NodeStatus.Active && block.timestamp >= n.unbondingEndsAt && block.timestamp >= n.lockedUntil) {
            return 0;
        }
        if (n.rotationPending) _clearRotation(enclaveId, n);
        slashed = amount < n.stake ? amount : n.stake;
        // slashed <= stake < 2^80
        n.stake -= uint80(slashed);
        _totalStaked -= uint128(slashed);
        if (s != NodeStatus.Slashed) {
            _moveStatus(enclaveId, n, NodeStatus.Slashed);
            _closeKeyRecord(enclaveId);
        }
        // Only an Active node starts unbonding here; an Exiting or Slashed one never unbonds
        // longer for a slash (decision 1781).
        if (s == NodeStatus.Active) {
            n.unbondingEndsAt = SafeCast.toUint40(uint256(block.timestamp) + _unbondingPeriod);
        }
        emit NodeSlashed(enclaveId, slashed, beneficiary, reason);
        _pay(beneficiary, slashed);
    }

    /// @inheritdoc IFirnRegistry
    /// @dev Also raises the slasher's horizon, how long it keeps `slash` once replaced (1700).
    function lockStake(bytes32 enclaveId, uint64 until) external {
        // The current slasher pays one slot read; the scheduled one takes over on its first call
        // once due (decision 1778).
        if ((msg.sender != _slasher || msg.sender == address(0)) && !_takeOverAsSlasher()) {
            revert NotSlasher(msg.sender);
        }
        if (until > _slasherHorizon) _slasherHorizon = until;
        Node storage n = _nodes[enclaveId];
        if (until > n.lockedUntil) {
            n.lockedUntil = SafeCast.toUint40(until);
            emit StakeLocked(enclaveId, until);
        }
    }

    /// @dev True when the caller is the scheduled slasher and its time has come: it takes over now
    /// (the current one retires as for any replacement). Off the current slasher's path.
    function _takeOverAsSlasher() private returns (bool) {
        uint40 changeAt = _slasherChangeAt;
        if (changeAt == 0 || block.timestamp < changeAt || msg.sender != _pendingSlasher) return false;
        if (msg.sender == address(0)) return false;
        _applySlasherChange();
        return true;
    }

    /// @inheritdoc IFirnRegistry
    /// @dev Anyone may sweep: the payment goes only to the pool contract's treasury credit of its
    /// owner, never into the pool's budgets (decision 1671).
    function sweepFees() external nonReentrant returns (uint256 amount) {
        address pool = _rewardPool;
        if (pool == address(0)) revert RewardPoolNotSet();
        amount = _feesHeld;
        if (amount == 0) return 0;
        _feesHeld = 0;
        emit FeesSwept(pool, amount);
        IFirnRewards(pool).creditTreasury{value: amount}();
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IFirnRegistry
    function isMeasurementAllowed(uint8 teeType, bytes32 measurement) external view returns (bool) {
        return _allowed[teeType][measurement];
    }

    /// @inheritdoc IFirnRegistry
    function allowedTeeTypes() external view returns (uint8) {
        return _allowedTeeTypes;
    }

    /// @inheritdoc IFirnRegistry
    function getNode(bytes32 enclaveId) external view returns (Node memory) {
        return _nodes[enclaveId];
    }

    /// @inheritdoc IFirnRegistry
    function getNodeSummary(bytes32 enclaveId) external view returns (NodeSummary memory) {
        Node storage n = _nodes[enclaveId];
        return NodeSummary({
            operator: n.operator,
            teeType: n.teeType,
            status: n.status,
            ineligibility: _ineligibility(n),
            measurement: n.measurement,
            platformIdHash: n.platformIdHash,
            enclaveAddress: n.enclaveAddress,
            stake: n.stake
        });
    }

    /// @inheritdoc IFirnRegistry
    /// @dev Reads slot 1 of the node, the TEE-type mask and the allow-list entry; the caller (the
    /// market) passes the measurement it recorded from this registry at claim, which the proof repeats.
    function proofSigner(bytes32 enclaveId, bytes32 measurement)
        external
        view
        returns (address enclaveAddress, uint8 reason)
    {
        Node storage n = _nodes[enclaveId];
        NodeStatus s = n.status;
        uint8 t = n.teeType;
        if (s != NodeStatus.Active && s != NodeStatus.Exiting) return (address(0), INELIGIBLE_NOT_ACTIVE);
        if (_allowedTeeTypes & (uint8(1) << t) == 0) return (address(0), INELIGIBLE_TEE_TYPE);
        if (!_allowed[t][measurement]) return (address(0), INELIGIBLE_MEASUREMENT);
        return (n.enclaveAddress, 0);
    }

    /// @inheritdoc IFirnRegistry
    function feesHeld() external view returns (uint256) {
        return _feesHeld;
    }

    /// @inheritdoc IFirnRegistry
    function ineligibility(bytes32 enclaveId) external view returns (uint8) {
        return _ineligibility(_nodes[enclaveId]);
    }

    /// @inheritdoc IFirnRegistry
    function restriction(bytes32 enclaveId) external view returns (uint8) {
        Node storage n = _nodes[enclaveId];
        if (n.status == NodeStatus.None) return 0;
        uint8 t = n.teeType;
        if (_allowedTeeTypes & (uint8(1) << t) == 0) return INELIGIBLE_TEE_TYPE;
        if (!_allowed[t][n.measurement]) return INELIGIBLE_MEASUREMENT;
        return 0;
    }

    /// @inheritdoc IFirnRegistry
    function isEligible(bytes32 enclaveId) external view returns (bool) {
        return _ineligibility(_nodes[enclaveId]) == 0;
    }

    /// @inheritdoc IFirnRegistry
    function enclaveIdsByStatus(NodeStatus status, uint256 offset, uint256 limit)
        external
        view
        returns (bytes32[] memory ids)
    {
        EnumerableSet.Bytes32Set storage set = _indexed(status);
        uint256 len = set.length();
        if (offset >= len) return new bytes32[](0);
        uint256 end = len - offset < limit ? len : offset + limit;
        ids = new bytes32[](end - offset);
        for (uint256 i = offset; i < end; ++i) {
            ids[i - offset] = set.at(i);
        }
    }

    /// @inheritdoc IFirnRegistry
    function countByStatus(NodeStatus status) external view returns (uint256) {
        return _indexed(status).length();
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
    function enclaveKeyHistory(bytes32 enclaveId) external view returns (EnclaveKeyRecord[] memory) {
        return _keyHistory[enclaveId];
    }

    /// @inheritdoc IFirnRegistry
    /// @dev Records are appended in block order, so a binary search finds the last record that
    /// started at or before `blockNumber`; at a rotation block both keys count (inclusive ranges).
    function wasEnclaveAddress(bytes32 enclaveId, address account, uint256 blockNumber) external view returns (bool) {
        EnclaveKeyRecord[] storage h = _keyHistory[enclaveId];
        uint256 lo = 0;
        uint256 hi = h.length;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (h[mid].fromBlock <= blockNumber) lo = mid + 1;
            else hi = mid;
        }
        // lo = number of records with fromBlock <= blockNumber; walk back over those still open then.
        while (lo > 0) {
            EnclaveKeyRecord storage r = h[lo - 1];
            if (r.toBlock < blockNumber) return false;
            if (r.enclaveAddress == account) return true;
            --lo;
        }
        return false;
    }

    /// @inheritdoc IFirnRegistry
    function withdrawable(address account) external view returns (uint256) {
        return _withdrawable[account];
    }

    /// @inheritdoc IFirnRegistry
    function minNodeStake() external view returns (uint256) {
        return _minNodeStake;
    }

    /// @inheritdoc IFirnRegistry
    function registrationFee() external view returns (uint256) {
        return _registrationFee;
    }

    /// @inheritdoc IFirnRegistry
    function roundTimeout() external view returns (uint64) {
        return _roundTimeout;
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
    function pendingSlasher() external view returns (address pending, uint64 effectiveAt) {
        return (_pendingSlasher, _slasherChangeAt);
    }

    /// @inheritdoc IFirnRegistry
    function retiredSlasherUntil(address account) external view returns (uint64) {
        return _retiredSlasherUntil[account];
    }

    /// @inheritdoc IFirnRegistry
    function slasherLockHorizon() external view returns (uint64) {
        return _slasherHorizon;
    }

    /// @inheritdoc IFirnRegistry
    function guardian() external view returns (address) {
        return _guardian;
    }

    /// @inheritdoc IFirnRegistry
    function rewardPool() external view returns (address) {
        return _rewardPool;
    }

    /// @inheritdoc IFirnRegistry
    function totalStaked() external view returns (uint256) {
        return _totalStaked;
    }

    /// @inheritdoc IFirnRegistry
    function totalWithdrawable() external view returns (uint256) {
        return _totalWithdrawable;
    }

    // ---------------------------------------------------------------- internals

    /// @dev Records one weighted vote for the open round. A vote names the round it judged, and a
    /// round fixes the enclave address and KEM key (every register and rotateKeys opens a new one),
    /// so a vote can never count for keys the verifier did not check: an operator that withdraws and
    /// registers again, or rotates, while a verifier fetches its evidence gets RoundMismatch for
    /// that vote (decision 1831). It also names the round's evidence digest. Only verifiers active
    /// at the round's snapshot vote, with their stake as weight. The round shares slot 0, which the
    /// vote reads anyway, so the check costs no storage read.
    function _castVote(bytes32 enclaveId, Node storage n, uint32 round, bytes32 evidenceDigest)
        private
        returns (uint256 weight, uint256 total)
    {
        bytes32 expected;
        if (n.status == NodeStatus.Pending) {
            expected = n.evidenceDigest;
        } else if (n.status == NodeStatus.Active && n.rotationPending) {
            expected = n.pendingEvidenceDigest;
        } else {
            revert NoOpenRound(enclaveId, n.status);
        }
        uint32 current = n.round;
        if (round != current) revert RoundMismatch(enclaveId, current, round);
        uint64 snapshotId = n.snapshotId;
        weight = _verifierSet.voteWeight(msg.sender, snapshotId);
        if (weight == 0) {
            if (!_verifierSet.isVerifier(msg.sender)) revert NotVerifier(msg.sender);
            revert NotEligibleVoter(enclaveId, msg.sender, snapshotId);
        }
        if (evidenceDigest != expected) revert EvidenceMismatch(enclaveId, expected, evidenceDigest);
        if (_voted[enclaveId][round][msg.sender]) revert AlreadyVoted(enclaveId, round, msg.sender);
        _voted[enclaveId][round][msg.sender] = true;
        total = _verifierSet.totalStakeAt(snapshotId);
    }

    /// @dev A measurement or TEE type revoked while a registration's vote ran can never be activated.
    function _checkNotRevokedWhilePending(bytes32 enclaveId, Node storage n) private view {
        if (
            n.status == NodeStatus.Pending
                && (!_allowed[n.teeType][n.measurement] || _allowedTeeTypes & (uint8(1) << n.teeType) == 0)
        ) revert MeasurementRevokedWhilePending(enclaveId, n.teeType, n.measurement);
    }

    /// @dev The open round `round` is decided for approval: its approvers (and only they) earn a
    /// work point; a pending rotation installs the new keys, a registration activates.
    function _concludeApproved(bytes32 enclaveId, Node storage n, uint32 round) private {
        _reportWork(_approvers[enclaveId][round]);
        if (n.rotationPending) {
            address oldAddress = n.enclaveAddress;
            address newAddress = n.pendingEnclaveAddress;
            if (oldAddress != newAddress) delete _enclaveIdOf[oldAddress];
            bytes32 newKemPublicKey = n.pendingKemPublicKey;
            n.enclaveAddress = newAddress;
            n.evidenceDigest = n.pendingEvidenceDigest;
            n.rotationPending = false;
            n.pendingEnclaveAddress = address(0);
            n.pendingKemPublicKey = bytes32(0);
            n.pendingEvidenceDigest = bytes32(0);
            _closeKeyRecord(enclaveId);
            _keyHistory[enclaveId].push(EnclaveKeyRecord(newAddress, uint64(block.number), OPEN_RANGE));
            emit KeysRotated(enclaveId, round, newAddress, newKemPublicKey);
        } else {
            _moveStatus(enclaveId, n, NodeStatus.Active);
            _keyHistory[enclaveId].push(EnclaveKeyRecord(n.enclaveAddress, uint64(block.number), OPEN_RANGE));
            emit NodeActivated(enclaveId, round);
        }
    }

    /// @dev The open round `round` is decided for refusal: its refusers (and only they) earn a work
    /// point; a pending rotation is dropped, a registration is rejected with its stake refundable
    /// (pull; refused evidence is not a proven fault) and its fee kept.
    function _concludeRefused(bytes32 enclaveId, Node storage n, uint32 round) private {
        _reportWork(_refusers[enclaveId][round]);
        if (n.rotationPending) {
            _clearRotation(enclaveId, n);
            emit KeyRotationRefused(enclaveId, round);
        } else {
            uint256 refund = n.stake;
            n.stake = 0;
            _totalStaked -= uint128(refund);
            _moveStatus(enclaveId, n, NodeStatus.Rejected);
            _releaseAddress(enclaveId, n.enclaveAddress);
            emit NodeRejected(enclaveId, round, refund);
            _credit(n.operator, refund);
        }
    }

    /// @dev The round's denominator: `total` (its snapshot's stake) while no member counted there
    /// left, was deactivated or slashed since; else the votes cast plus what the members that have
    /// not voted can still cast (`IFirnVerifierSet.quorumStakeAt`, decision 1720). Call after the
    /// vote is recorded in the tallies and voter lists.
    function _quorumStake(bytes32 enclaveId, Node storage n, uint32 round, uint256 total)
        private
        view
        returns (uint256)
    {
        uint64 snapshotId = n.snapshotId;
        if (_verifierSet.lastReduction() <= snapshotId) return total;
        address[] storage approvers = _approvers[enclaveId][round];
        address[] storage refusers = _refusers[enclaveId][round];
        uint256 a = approvers.length;
        address[] memory voters = new address[](a + refusers.length);
        for (uint256 i = 0; i < a; ++i) {
            voters[i] = approvers[i];
        }
        for (uint256 i = 0; i < refusers.length; ++i) {
            voters[a + i] = refusers[i];
        }
        return _verifierSet.quorumStakeAt(snapshotId, voters, uint256(n.approvalStake) + n.refusalStake);
    }

    /// @dev Separate frame: the event has more fields than register's stack can hold.
    function _emitRegistered(
        RegistrationParams calldata p,
        uint32 round,
        uint256 stake,
        uint256 fee,
        uint64 snapshotId
    ) private {
        emit NodeRegistered(
            p.enclaveId,
            msg.sender,
            round,
            p.teeType,
            p.measurement,
            p.platformIdHash,
            p.enclaveAddress,
            p.kemPublicKey,
            p.endpoint,
            p.evidenceDigest,
            stake,
            fee,
            snapshotId
        );
    }

    function _ineligibility(Node storage n) private view returns (uint8) {
        if (n.status != NodeStatus.Active) return INELIGIBLE_NOT_ACTIVE;
        uint8 t = n.teeType;
        if (_allowedTeeTypes & (uint8(1) << t) == 0) return INELIGIBLE_TEE_TYPE;
        if (!_allowed[t][n.measurement]) return INELIGIBLE_MEASUREMENT;
        return 0;
    }

    /// @dev Moves `enclaveId` between the status-indexed sets (Pending, Active, Exiting only).
    function _moveStatus(bytes32 enclaveId, Node storage n, NodeStatus to) private {
        NodeStatus from = n.status;
        if (_isIndexed(from)) _byStatus[from].remove(enclaveId);
        if (_isIndexed(to)) _byStatus[to].add(enclaveId);
        n.status = to;
    }

    /// @dev Pending is not indexed: a registration would pay three more slots for a list only
    /// off-chain readers use, and they follow NodeRegistered (decision 1140).
    function _isIndexed(NodeStatus s) private pure returns (bool) {
        return s == NodeStatus.Active || s == NodeStatus.Exiting;
    }

    function _indexed(NodeStatus s) private view returns (EnumerableSet.Bytes32Set storage) {
        if (!_isIndexed(s)) revert StatusNotIndexed(s);
        return _byStatus[s];
    }

    function _closeKeyRecord(bytes32 enclaveId) private {
        EnclaveKeyRecord[] storage h = _keyHistory[enclaveId];
        uint256 len = h.length;
        if (len != 0 && h[len - 1].toBlock == OPEN_RANGE) h[len - 1].toBlock = uint64(block.number);
    }

    function _releaseAddress(bytes32 enclaveId, address enclaveAddress) private {
        if (_enclaveIdOf[enclaveAddress] == enclaveId) delete _enclaveIdOf[enclaveAddress];
    }

    function _clearRotation(bytes32 enclaveId, Node storage n) private {
        address pending = n.pendingEnclaveAddress;
        if (pending != n.enclaveAddress) _releaseAddress(enclaveId, pending);
        n.rotationPending = false;
        n.pendingEnclaveAddress = address(0);
        n.pendingKemPublicKey = bytes32(0);
        n.pendingEvidenceDigest = bytes32(0);
    }

    /// @dev Reports the votes that decided a round to the reward pool. A pool that fails never
    /// blocks a vote. The list is bounded by the verifier set (one vote per verifier and round).
    function _reportWork(address[] storage verifiers) private {
        address pool = _rewardPool;
        if (pool == address(0)) return;
        try IFirnRewards(pool).recordVerifierWork(verifiers) {} catch {}
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

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        _withdrawable[account] += amount;
        _totalWithdrawable += SafeCast.toUint128(amount);
        emit RefundCredited(account, amount);
    }

    function _pay(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
