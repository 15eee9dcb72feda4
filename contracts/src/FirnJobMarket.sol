// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IFirnJobMarket} from "./interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "./interfaces/IFirnRegistry.sol";
import {IFirnVerifierSet} from "./interfaces/IFirnVerifierSet.sol";

/// @title FirnJobMarket
/// @notice Requesters escrow payment for a job; an eligible active node claims it; the node's
/// enclave signs an EIP-712 WorkProof that the contract checks against the enclave address in the
/// registry; after a challenge window without a verifier quorum disputing it, the node's operator
/// is paid. A quorum of disputes slashes the node and makes escrow and slashed stake refundable.
contract FirnJobMarket is IFirnJobMarket, EIP712, Ownable2Step, ReentrancyGuard {
    /// @notice EIP-712 type hash of WorkProof; the field list must match the TypeScript types.
    bytes32 public constant WORK_PROOF_TYPEHASH = keccak256(
        "WorkProof(bytes32 jobId,bytes32 enclaveId,bytes32 measurement,bytes32 workloadHash,bytes32 inputCommitment,bytes32 outputCommitment,uint64 startedAt,uint64 finishedAt,uint64 workUnits)"
    );
    /// @notice Cap on a job's own measurement list, which bounds the claim loop's gas.
    uint256 public constant MAX_ALLOWED_MEASUREMENTS = 32;
    /// @dev Bits 1..3: simulated, sgx, tdx.
    uint8 private constant TEE_MASK_VALID = 0x0e;

    uint8 private constant REASON_NOT_ACTIVE = 1;
    uint8 private constant REASON_TEE_TYPE = 2;
    uint8 private constant REASON_MEASUREMENT_REVOKED = 3;
    uint8 private constant REASON_MEASUREMENT_NOT_LISTED = 4;

    IFirnRegistry private immutable _registry;
    IFirnVerifierSet private immutable _verifierSet;
    uint64 private _challengeWindow;
    uint256 private _slashAmount;
    uint256 private _jobCount;
    uint256 private _totalEscrow;

    mapping(bytes32 jobId => Job) private _jobs;
    mapping(bytes32 jobId => mapping(address verifier => bool)) private _disputed;

    constructor(
        address initialOwner,
        IFirnRegistry registry_,
        IFirnVerifierSet verifierSet_,
        uint64 challengeWindow_,
        uint256 slashAmount_
    ) EIP712("firn", "1") Ownable(initialOwner) {
        _registry = registry_;
        _verifierSet = verifierSet_;
        _challengeWindow = challengeWindow_;
        _slashAmount = slashAmount_;
        emit ParametersUpdated(challengeWindow_, slashAmount_);
    }

    /// @dev Only the registry pays this contract (slashed stake during a dispute).
    receive() external payable {
        if (msg.sender != address(_registry)) revert UnexpectedPayment(msg.sender);
    }

    /// @inheritdoc IFirnJobMarket
    function setParameters(uint64 newChallengeWindow, uint256 newSlashAmount) external onlyOwner {
        _challengeWindow = newChallengeWindow;
        _slashAmount = newSlashAmount;
        emit ParametersUpdated(newChallengeWindow, newSlashAmount);
    }

    /// @inheritdoc IFirnJobMarket
    function postJob(JobRequest calldata r) external payable returns (bytes32 jobId) {
        if (msg.value == 0) revert EmptyEscrow();
        if (r.teeTypeMask == 0 || r.teeTypeMask & ~TEE_MASK_VALID != 0) revert InvalidTeeTypeMask(r.teeTypeMask);
        if (r.deadline <= block.timestamp) revert DeadlineInPast(r.deadline, uint64(block.timestamp));
        if (r.claimTimeout == 0) revert InvalidClaimTimeout(r.claimTimeout);
        uint256 n = r.allowedMeasurements.length;
        if (n > MAX_ALLOWED_MEASUREMENTS) revert TooManyMeasurements(n, MAX_ALLOWED_MEASUREMENTS);

        // Unique across chains and deployments: a proof signed for one job never fits another.
        jobId = keccak256(abi.encode(block.chainid, address(this), ++_jobCount));
        Job storage j = _jobs[jobId];
        j.requester = msg.sender;
        j.teeTypeMask = r.teeTypeMask;
        j.status = JobStatus.Open;
        j.postedAt = uint64(block.timestamp);
        j.deadline = r.deadline;
        j.claimTimeout = r.claimTimeout;
        j.workloadHash = r.workloadHash;
        j.inputCommitment = r.inputCommitment;
        j.allowedMeasurements = r.allowedMeasurements;
        j.escrow = msg.value;
        _totalEscrow += msg.value;
        emit JobPosted(
            jobId, msg.sender, msg.value, r.teeTypeMask, r.workloadHash, r.inputCommitment, r.deadline, r.claimTimeout
        );
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev A Claimed job whose claimant let its claim timeout pass is claimable again, by any
    /// eligible node; the late claimant can then no longer submit.
    function claimJob(bytes32 jobId, bytes32 enclaveId) external {
        Job storage j = _job(jobId);
        if (j.status == JobStatus.Claimed) {
            uint64 expiresAt = j.claimedAt + j.claimTimeout;
            if (block.timestamp <= expiresAt) revert AlreadyClaimed(jobId, j.enclaveId, expiresAt);
        } else if (j.status != JobStatus.Open) {
            revert UnexpectedJobStatus(jobId, j.status);
        }
        if (block.timestamp > j.deadline) revert DeadlinePassed(jobId, j.deadline, uint64(block.timestamp));

        IFirnRegistry.Node memory node = _registry.getNode(enclaveId);
        if (node.operator != msg.sender) revert NotNodeOperator(enclaveId, msg.sender);
        uint8 reason = _ineligibility(j, node);
        if (reason != 0) revert NodeNotEligible(jobId, enclaveId, reason);

        j.status = JobStatus.Claimed;
        j.enclaveId = enclaveId;
        j.claimant = msg.sender;
        j.claimedAt = uint64(block.timestamp);
        j.measurement = node.measurement;
        emit JobClaimed(jobId, enclaveId, msg.sender, uint64(block.timestamp) + j.claimTimeout);
    }

    /// @inheritdoc IFirnJobMarket
    function releaseJob(bytes32 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != JobStatus.Claimed) revert UnexpectedJobStatus(jobId, j.status);
        if (j.claimant != msg.sender) revert NotClaimant(jobId, msg.sender);
        bytes32 enclaveId = j.enclaveId;
        _clearClaim(j);
        j.status = JobStatus.Open;
        emit JobReleased(jobId, enclaveId);
    }

    /// @inheritdoc IFirnJobMarket
    function submitProof(bytes32 jobId, WorkProof calldata proof, bytes calldata signature) external {
        Job storage j = _job(jobId);
        if (j.status != JobStatus.Claimed) revert UnexpectedJobStatus(jobId, j.status);
        if (j.claimant != msg.sender) revert NotClaimant(jobId, msg.sender);
        if (block.timestamp > j.deadline) revert DeadlinePassed(jobId, j.deadline, uint64(block.timestamp));
        uint64 expiresAt = j.claimedAt + j.claimTimeout;
        if (block.timestamp > expiresAt) revert ClaimExpired(jobId, expiresAt, uint64(block.timestamp));

        if (proof.jobId != jobId) revert ProofMismatch(jobId, "jobId");
        if (proof.enclaveId != j.enclaveId) revert ProofMismatch(jobId, "enclaveId");
        if (proof.measurement != j.measurement) revert ProofMismatch(jobId, "measurement");
        if (proof.workloadHash != j.workloadHash) revert ProofMismatch(jobId, "workloadHash");
        if (proof.inputCommitment != j.inputCommitment) revert ProofMismatch(jobId, "inputCommitment");
        if (proof.startedAt > proof.finishedAt) revert InvalidProofTimes(proof.startedAt, proof.finishedAt);

        IFirnRegistry.Node memory node = _registry.getNode(j.enclaveId);
        if (node.status != IFirnRegistry.NodeStatus.Active) revert NodeNotActive(j.enclaveId);
        // tryRecover refuses malformed and high-s (malleable) signatures instead of recovering.
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(_hashWorkProof(proof), signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature(uint8(err));
        if (signer != node.enclaveAddress) revert WrongSigner(j.enclaveId, node.enclaveAddress, signer);

        uint64 endsAt = uint64(block.timestamp) + _challengeWindow;
        j.status = JobStatus.Proved;
        j.outputCommitment = proof.outputCommitment;
        j.workUnits = proof.workUnits;
        j.provedAt = uint64(block.timestamp);
        j.challengeEndsAt = endsAt;
        emit ProofSubmitted(jobId, j.enclaveId, proof.outputCommitment, proof.workUnits, endsAt);
    }

    /// @inheritdoc IFirnJobMarket
    function failJob(bytes32 jobId, bytes32 reason) external {
        Job storage j = _job(jobId);
        if (j.status != JobStatus.Claimed) revert UnexpectedJobStatus(jobId, j.status);
        if (j.claimant != msg.sender) revert NotClaimant(jobId, msg.sender);
        j.status = JobStatus.Failed;
        emit JobFailed(jobId, j.enclaveId, reason);
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev Votes count toward the threshold read at each vote; the quorum vote slashes at once.
    function dispute(bytes32 jobId, uint16 reasonCode) external nonReentrant {
        if (!_verifierSet.isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        Job storage j = _job(jobId);
        if (j.status != JobStatus.Proved) revert UnexpectedJobStatus(jobId, j.status);
        if (block.timestamp >= j.challengeEndsAt) {
            revert ChallengeWindowClosed(jobId, j.challengeEndsAt, uint64(block.timestamp));
        }
        if (_disputed[jobId][msg.sender]) revert AlreadyDisputed(jobId, msg.sender);
        _disputed[jobId][msg.sender] = true;
        uint16 disputes = j.disputes + 1;
        j.disputes = disputes;
        emit JobDisputed(jobId, msg.sender, reasonCode, disputes);
        if (disputes < _verifierSet.threshold()) return;

        j.status = JobStatus.Slashed;
        IFirnRegistry.Node memory node = _registry.getNode(j.enclaveId);
        uint256 slashed;
        IFirnRegistry.NodeStatus s = node.status;
        if (
            s == IFirnRegistry.NodeStatus.Active || s == IFirnRegistry.NodeStatus.Exiting
                || s == IFirnRegistry.NodeStatus.Slashed
        ) {
            uint256 amount = _slashAmount < node.stake ? _slashAmount : node.stake;
            // The slashed stake comes to this contract and is owed to the requester with the escrow.
            slashed = _registry.slash(j.enclaveId, amount, address(this), jobId);
        }
        j.escrow += slashed;
        _totalEscrow += slashed;
        emit JobSlashed(jobId, j.enclaveId, slashed, j.escrow);
    }

    /// @inheritdoc IFirnJobMarket
    function finalize(bytes32 jobId) external nonReentrant {
        Job storage j = _job(jobId);
        if (j.status != JobStatus.Proved) revert UnexpectedJobStatus(jobId, j.status);
        if (block.timestamp < j.challengeEndsAt) {
            revert ChallengeWindowOpen(jobId, j.challengeEndsAt, uint64(block.timestamp));
        }
        uint256 payout = j.escrow;
        address operator = j.claimant;
        j.status = JobStatus.Paid;
        j.escrow = 0;
        _totalEscrow -= payout;
        emit JobFinalized(jobId, j.enclaveId, operator, payout);
        _pay(operator, payout);
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev The requester may cancel an Open job at any time (nobody works on it), a Claimed job
    /// once the deadline or the claim timeout has passed, and a Failed or Slashed job at once.
    function reclaim(bytes32 jobId) external nonReentrant {
        Job storage j = _job(jobId);
        if (j.requester != msg.sender) revert NotRequester(jobId, msg.sender);
        JobStatus s = j.status;
        bool ok = s == JobStatus.Open || s == JobStatus.Failed || s == JobStatus.Slashed
            || (
                s == JobStatus.Claimed
                    && (block.timestamp > j.deadline || block.timestamp > j.claimedAt + j.claimTimeout)
            );
        if (!ok) revert NotReclaimable(jobId, s);
        uint256 refund = j.escrow;
        j.status = JobStatus.Reclaimed;
        j.escrow = 0;
        _totalEscrow -= refund;
        emit JobReclaimed(jobId, msg.sender, refund);
        _pay(msg.sender, refund);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IFirnJobMarket
    function getJob(bytes32 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    /// @inheritdoc IFirnJobMarket
    function hashWorkProof(WorkProof calldata proof) external view returns (bytes32) {
        return _hashWorkProof(proof);
    }

    /// @inheritdoc IFirnJobMarket
    function hasDisputed(bytes32 jobId, address verifier) external view returns (bool) {
        return _disputed[jobId][verifier];
    }

    /// @inheritdoc IFirnJobMarket
    function jobCount() external view returns (uint256) {
        return _jobCount;
    }

    /// @inheritdoc IFirnJobMarket
    function challengeWindow() external view returns (uint64) {
        return _challengeWindow;
    }

    /// @inheritdoc IFirnJobMarket
    function slashAmount() external view returns (uint256) {
        return _slashAmount;
    }

    /// @inheritdoc IFirnJobMarket
    function totalEscrow() external view returns (uint256) {
        return _totalEscrow;
    }

    /// @inheritdoc IFirnJobMarket
    function registry() external view returns (IFirnRegistry) {
        return _registry;
    }

    /// @inheritdoc IFirnJobMarket
    function verifierSet() external view returns (IFirnVerifierSet) {
        return _verifierSet;
    }

    /// @inheritdoc IFirnJobMarket
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- internals

    function _job(bytes32 jobId) private view returns (Job storage j) {
        j = _jobs[jobId];
        if (j.status == JobStatus.None) revert UnknownJob(jobId);
    }

    function _hashWorkProof(WorkProof calldata p) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    WORK_PROOF_TYPEHASH,
                    p.jobId,
                    p.enclaveId,
                    p.measurement,
                    p.workloadHash,
                    p.inputCommitment,
                    p.outputCommitment,
                    p.startedAt,
                    p.finishedAt,
                    p.workUnits
                )
            )
        );
    }

    function _ineligibility(Job storage j, IFirnRegistry.Node memory node) private view returns (uint8) {
        if (node.status != IFirnRegistry.NodeStatus.Active) return REASON_NOT_ACTIVE;
        if (j.teeTypeMask & (uint8(1) << node.teeType) == 0) return REASON_TEE_TYPE;
        if (!_registry.isMeasurementAllowed(node.teeType, node.measurement)) return REASON_MEASUREMENT_REVOKED;
        uint256 n = j.allowedMeasurements.length;
        if (n == 0) return 0;
        for (uint256 i = 0; i < n; ++i) {
            if (j.allowedMeasurements[i] == node.measurement) return 0;
        }
        return REASON_MEASUREMENT_NOT_LISTED;
    }

    function _clearClaim(Job storage j) private {
        j.enclaveId = bytes32(0);
        j.claimant = address(0);
        j.claimedAt = 0;
        j.measurement = bytes32(0);
    }

    function _pay(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
