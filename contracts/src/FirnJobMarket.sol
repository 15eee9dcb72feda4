// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {FirnJobMarketAdmin} from "./FirnJobMarketAdmin.sol";
import {IFirnJobMarket} from "./interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "./interfaces/IFirnRegistry.sol";
import {IFirnRewards} from "./interfaces/IFirnRewards.sol";
import {IFirnVerifierSet} from "./interfaces/IFirnVerifierSet.sol";

/// @title FirnJobMarket
/// @notice Requesters escrow payment for a job, optionally bound to the Enclave IDs they attested;
/// an eligible node claims it with a claim bond; the node's enclave signs an EIP-712 WorkProof
/// that the contract checks against the enclave address in the registry and records with the
/// facts of its submission; after a challenge window the claimant is credited (minus the protocol
/// fee, which funds the reward pool). Disputes on facts are judged at once against what was
/// recorded at submission; disputes on findings only verifiers can check slash the node once
/// > 2/3 of the verifier stake snapshotted at submission agrees. Every payout is pulled.
/// See docs/decisions/0102-contract-lifecycles.md and docs/decisions/0800-economics.md.
contract FirnJobMarket is IFirnJobMarket, EIP712, Ownable, Pausable, ReentrancyGuardTransient {
    using Checkpoints for Checkpoints.Trace208;

    /// @notice EIP-712 type hash of WorkProof; the field list must match the TypeScript types.
    bytes32 public constant WORK_PROOF_TYPEHASH = keccak256(
        "WorkProof(bytes32 jobId,bytes32 enclaveId,bytes32 measurement,bytes32 workloadHash,bytes32 inputCommitment,bytes32 outputCommitment,uint64 startedAt,uint64 finishedAt,uint64 workUnits)"
    );
    /// @notice EIP-712 type hash of JobFailure; the field list must match the TypeScript types.
    bytes32 public constant JOB_FAILURE_TYPEHASH = keccak256(
        "JobFailure(bytes32 jobId,bytes32 enclaveId,bytes32 measurement,bytes32 workloadHash,bytes32 inputCommitment,uint16 reasonCode,uint64 failedAt)"
    );
    /// @notice Cap on a job's own measurement list, which bounds the claim loop's gas.
    uint256 public constant MAX_ALLOWED_MEASUREMENTS = 32;
    /// @notice Cap on the Enclave IDs a job is bound to, which bounds the claim loop's gas.
    uint256 public constant MAX_ENCLAVE_IDS = 32;
    /// @notice Upper bound of the protocol fee (basis points of the escrow).
    uint16 public constant MAX_PROTOCOL_FEE_BPS = FirnJobMarketAdmin.MAX_PROTOCOL_FEE_BPS;
    /// @notice Tolerance between the enclave's clock and chain time when judging a proof's times (s).
    uint64 public constant MAX_CLOCK_SKEW = 300;
    /// @notice Longest claim a requester can make a claimant hold (s) when the deadline is further
    /// away than this (decision 1570): a claim locks the node's stake until min(claim expiry,
    /// deadline) + challenge window + FINALIZE_GRACE, so this bounds that lock to claimedAt + 7 days
    /// + window + grace, which an exit requested after the job's window and grace closed outlasts
    /// whenever unbonding >= 7 days.
    uint64 public constant MAX_CLAIM_TIMEOUT = 7 days;
    /// @notice Time after a proof's challenge window during which its node's stake stays locked
    /// (s), so that a finding that passed by the window's end (or passes later through stake
    /// leaving the round) is concluded by `finalize` while the stake is still there: the lock a
    /// claim sets ends FINALIZE_GRACE after the latest window end of its proof (decision 1776).
    uint64 public constant FINALIZE_GRACE = 1 days;
    /// @notice Gas finalize gives the reward pool's `fund()` for the protocol fee (FirnRewards
    /// needs about 30k); a pool that needs more, reverts or has no code gets the fee held for
    /// `sweepFees` instead, so no pool can block a settlement (decision 1701).
    uint256 public constant FEE_PUSH_GAS = 100_000;

    /// @notice Fact reasons, judged by the contract: the signer was not the Enclave ID's enclave key
    /// at the proof's block; the proof's times are inconsistent or after the deadline.
    uint16 public constant DISPUTE_SIGNER_NOT_ENCLAVE_KEY = 1;
    uint16 public constant DISPUTE_TIMES_INVALID = 2;
    /// @notice Reasons at or above this are verifier findings, decided by stake-weighted vote.
    uint16 public constant DISPUTE_FINDINGS_FROM = 16;

    /// @dev The EIP-712 domain's name and version (ARCHITECTURE 6), both short, so eip712Domain
    /// returns them as literals instead of through EIP712's ShortStrings fallback (decision 1750).
    string private constant EIP712_NAME = "firn";
    string private constant EIP712_VERSION = "1";
    /// @dev Bits 1..3: simulated, sgx, tdx.
    uint8 private constant TEE_MASK_VALID = 0x3e;
    uint8 private constant REASON_NOT_ACTIVE = 1;
    uint8 private constant REASON_TEE_TYPE = 2;
    uint8 private constant REASON_MEASUREMENT_REVOKED = 3;
    uint8 private constant REASON_MEASUREMENT_NOT_LISTED = 4;
    uint8 private constant REASON_TEE_TYPE_NOT_ALLOWED = 5;
    uint8 private constant REASON_ENCLAVE_NOT_BOUND = 6;
    uint8 private constant REASON_CLAIM_ENDED = 7;

    IFirnRegistry private immutable _registry;
    IFirnVerifierSet private immutable _verifierSet;
    // Parameters packed by who reads them together (decision 1140): submitProof and finalize read
    // slot A, claimJob slot B, disputes slot C. A struct so that FirnJobMarketAdmin can set them.
    // The reward pool is the registry's (decision 1756).
    FirnJobMarketAdmin.Parameters private _params;
    // Counters: postJob changes the first slot only. Sums of ether held fit 2^128 wei.
    uint64 private _jobCount;
    uint128 private _totalEscrow;
    uint128 private _totalBonds;
    uint128 private _totalWithdrawable;
    /// @dev Protocol fees finalize could not push to the pool (decision 1701).
    uint128 private _feesHeld;
    /// @dev (protocol fee bps, slash amount) by the unix time each took effect, value =
    /// slashAmount << 16 | feeBps: a job settles on the terms at its claim time, read back at
    /// finalize or at a concluding dispute, so postJob, claimJob and submitProof write nothing more
    /// (decision 1700).
    Checkpoints.Trace208 private _settlementTerms;

    mapping(bytes32 jobId => Job) private _jobs;
    mapping(bytes32 jobId => mapping(address verifier => bool)) private _disputed;
    /// @dev Verifiers that disputed a job with a finding; credited only when the finding concludes.
    mapping(bytes32 jobId => address[]) private _findingDisputers;
    mapping(address account => uint256) private _withdrawable;
    /// @dev Per job, the Enclave IDs and the operators whose claim on it lapsed or was released:
    /// neither claims that job again (decision 1768). Written when such a claim ends (a release, a
    /// lapse superseded: the lapsed claimant's own new claim writes it too, then reverts on it).
    mapping(bytes32 jobId => mapping(bytes32 enclaveId => bool)) private _endedEnclave;
    mapping(bytes32 jobId => mapping(address operator => bool)) private _endedOperator;

    modifier onlyOwnerOrGuardian() {
        if (msg.sender != owner() && (msg.sender != _params.guardian || msg.sender == address(0))) {
            revert NotGuardian(msg.sender);
        }
        _;
    }

    /// @param initialOwner the deployer during bootstrap, then the timelock (FirnGovernance)
    /// @param challengeWindow_ seconds after a proof during which verifiers may dispute it
    /// @param slashAmount_ taken from a node's stake (capped at it) when a dispute succeeds (wei)
    /// @param claimBond_ exact msg.value of claimJob (wei), lost when the claim lapses
    /// @param falseDisputeSlash_ taken from a verifier's stake for a provably wrong dispute (wei)
    constructor(
        address initialOwner,
        IFirnRegistry registry_,
        IFirnVerifierSet verifierSet_,
        uint64 challengeWindow_,
        uint256 slashAmount_,
        uint256 claimBond_,
        uint256 falseDisputeSlash_
    ) EIP712(EIP712_NAME, EIP712_VERSION) Ownable(initialOwner) {
        _registry = registry_;
        _verifierSet = verifierSet_;
        if (challengeWindow_ > type(uint32).max) revert TimeTooLarge(challengeWindow_, type(uint32).max);
        _params.challengeWindow = challengeWindow_;
        _params.slashAmount = SafeCast.toUint128(slashAmount_);
        _params.claimBond = _toUint96(claimBond_);
        _params.falseDisputeSlash = SafeCast.toUint128(falseDisputeSlash_);
        _settlementTerms.push(uint48(block.timestamp), _packTerms(slashAmount_, 0));
        emit ParametersUpdated(challengeWindow_, slashAmount_, claimBond_, 0, falseDisputeSlash_);
    }

    /// @dev Only the registry (slashed node stake) and the verifier set (a false disputer's slashed
    /// stake, for the owner's treasury: decision 1671) pay this contract.
    receive() external payable {
        if (msg.sender != address(_registry) && msg.sender != address(_verifierSet)) {
            revert UnexpectedPayment(msg.sender);
        }
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IFirnJobMarket
    /// @dev A new challenge window applies to jobs posted from now on, a new fee and slash amount to
    /// claims made from now on (decision 1700); stake locks follow each proof's own window end.
    function setParameters(
        uint64 newChallengeWindow,
        uint256 newSlashAmount,
        uint256 newClaimBond,
        uint16 newProtocolFeeBps,
        uint256 newFalseDisputeSlash
    ) external onlyOwner {
        FirnJobMarketAdmin.setParameters(
            _params,
            _settlementTerms,
            _pool(),
            newChallengeWindow,
            newSlashAmount,
            newClaimBond,
            newProtocolFeeBps,
            newFalseDisputeSlash
        );
    }

    /// @inheritdoc IFirnJobMarket
    function setGuardian(address newGuardian) external onlyOwner {
        emit GuardianSet(_params.guardian, newGuardian);
        _params.guardian = newGuardian;
    }

    /// @inheritdoc IFirnJobMarket
    function pause() external onlyOwnerOrGuardian {
        _pause();
    }

    /// @inheritdoc IFirnJobMarket
    function unpause() external onlyOwner {
        _unpause();
    }

    /// @notice Disabled (reverts OwnershipRenounceDisabled): without an owner a guardian pause could
    /// never be lifted and forfeited bonds would be credited to address(0) (decision 1703).
    function renounceOwnership() public pure override {
        revert OwnershipRenounceDisabled();
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev The pool's own revert propagates: a sweep that fails moves nothing and blocks no job.
    function sweepFees() external nonReentrant returns (uint256 amount) {
        address pool = _pool();
        if (pool == address(0)) revert RewardPoolNotSet();
        amount = _feesHeld;
        if (amount == 0) return 0;
        _feesHeld = 0;
        emit FeesSwept(pool, amount);
        IFirnRewards(pool).fund{value: amount}();
    }

    // ---------------------------------------------------------------- requesters and nodes

    /// @inheritdoc IFirnJobMarket
    /// @dev Stores three slots: the lists and commitments only as `termsHash` (their preimage is in
    /// JobPosted; claimJob passes it back, submitProof checks the commitments by the claim's hash).
    function postJob(JobRequest calldata r) external payable whenNotPaused returns (bytes32 jobId) {
        if (msg.value == 0) revert EmptyEscrow();
        if (r.teeTypeMask == 0 || r.teeTypeMask & ~TEE_MASK_VALID != 0) revert InvalidTeeTypeMask(r.teeTypeMask);
        if (r.deadline <= block.timestamp) revert DeadlineInPast(r.deadline, uint64(block.timestamp));
        if (r.deadline > type(uint40).max) revert TimeTooLarge(r.deadline, type(uint40).max);
        if (r.claimTimeout == 0) revert InvalidClaimTimeout(r.claimTimeout);
        if (r.claimTimeout > MAX_CLAIM_TIMEOUT) {
            if (r.claimTimeout > type(uint32).max) revert TimeTooLarge(r.claimTimeout, type(uint32).max);
            // Only the lock a claim can really hold is bounded: a long timeout under a near deadline
            // lapses at the deadline anyway (decision 1570).
            if (r.deadline > block.timestamp + MAX_CLAIM_TIMEOUT) {
                revert ClaimTimeoutTooLong(r.claimTimeout, r.deadline, MAX_CLAIM_TIMEOUT);
            }
        }
        uint256 n = r.allowedMeasurements.length;
        if (n > MAX_ALLOWED_MEASUREMENTS) revert TooManyMeasurements(n, MAX_ALLOWED_MEASUREMENTS);
        uint256 e = r.enclaveIds.length;
        if (e > MAX_ENCLAVE_IDS) revert TooManyEnclaveIds(e, MAX_ENCLAVE_IDS);
        uint96 escrow = _toUint96(msg.value);

        // Unique across chains and deployments: a proof signed for one job never fits another.
        uint64 count = _jobCount + 1;
        _jobCount = count;
        jobId = keccak256(abi.encode(block.chainid, address(this), uint256(count)));
        Job storage j = _jobs[jobId];
        j.requester = msg.sender;
        j.status = JobStatus.Open;
        j.teeTypeMask = r.teeTypeMask;
        j.deadline = uint40(r.deadline);
        j.escrow = escrow;
        j.maxWorkUnits = r.maxWorkUnits;
        j.claimTimeout = uint32(r.claimTimeout);
        // The job's proof gets the window in force now (setParameters bounds it to uint32).
        j.challengeWindow = uint32(_params.challengeWindow);
        j.termsHash = keccak256(abi.encode(r.workloadHash, r.inputCommitment, r.allowedMeasurements, r.enclaveIds));
        _totalEscrow += escrow;
        _emitPosted(jobId, r);
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev A Claimed job whose claimant let its claim timeout pass is claimable again by any other
    /// eligible node; the lapsed claim's bond goes to the owner's treasury first (decision 1625).
    /// No Enclave ID and no operator whose claim on the job lapsed or was released claims it again
    /// (NodeNotEligible reason 7, decision 1768): a node cannot hold a requester's escrow past one
    /// claim timeout by claiming again ahead of the reclaim, and a job bound to one Enclave ID is
    /// claimable by nobody once that node's claim lapsed (the requester reclaims it).
    function claimJob(bytes32 jobId, bytes32 enclaveId, JobTerms calldata terms) external payable whenNotPaused {
        uint256 required = _params.claimBond;
        if (msg.value != required) revert WrongClaimBond(msg.value, required);
        Job storage j = _job(jobId);
        if (j.status == JobStatus.Claimed) {
            uint64 expiresAt = j.claimExpiresAt;
            if (block.timestamp <= expiresAt) revert AlreadyClaimed(jobId, j.enclaveId, expiresAt);
            _endClaimFor(jobId, j);
            _forfeitBond(jobId, j);
        } else if (j.status != JobStatus.Open) {
            revert UnexpectedJobStatus(jobId, j.status);
        }
        if (block.timestamp > j.deadline) revert DeadlinePassed(jobId, j.deadline, uint64(block.timestamp));
        bytes32 given = keccak256(
            abi.encode(terms.workloadHash, terms.inputCommitment, terms.allowedMeasurements, terms.enclaveIds)
        );
        if (given != j.termsHash) revert TermsMismatch(jobId, j.termsHash, given);

        IFirnRegistry.NodeSummary memory node = _registry.getNodeSummary(enclaveId);
        if (node.operator != msg.sender) revert NotNodeOperator(enclaveId, msg.sender);
        uint8 reason = _ineligibility(j.teeTypeMask, terms, node, enclaveId);
        if (reason != 0) revert NodeNotEligible(jobId, enclaveId, reason);
        if (_endedEnclave[jobId][enclaveId] || _endedOperator[jobId][msg.sender]) {
            revert NodeNotEligible(jobId, enclaveId, REASON_CLAIM_ENDED);
        }

        uint64 expires = uint64(block.timestamp) + j.claimTimeout;
        // The round's stake snapshot is taken when the claim opens it (decision 1141): a verifier
        // that joins later adds nothing to a finding against this claim's proof.
        uint64 snapshotId = _verifierSet.currentSnapshot();
        j.snapshotId = SafeCast.toUint32(snapshotId);
        j.status = JobStatus.Claimed;
        j.claimExpiresAt = uint40(expires);
        j.claimant = msg.sender;
        j.bond = uint96(required);
        j.enclaveId = enclaveId;
        // What submitProof checks in one word: the claimant, this node and its measurement, and the
        // job's commitments, all of which the proof (or its sender) repeats.
        j.factsHash = keccak256(
            abi.encode(msg.sender, enclaveId, node.measurement, terms.workloadHash, terms.inputCommitment)
        );
        _totalBonds += uint128(required);
        // A proof of this claim comes by `expires` and by the deadline (submitProof refuses later
        // ones); its challenge window ends at most a window later, and a finding against it that
        // passed concludes in `finalize`, from the window's end on: the lock covers FINALIZE_GRACE
        // more, so the stake is never withdrawable in the block where that finding first can
        // conclude (decision 1776). The requester picks the claim timeout, so the lock never
        // outlasts the deadline's window and grace. Locking now keeps the registry out of
        // submitProof (decision 1141).
        uint64 lastProof = expires < j.deadline ? expires : j.deadline;
        _registry.lockStake(enclaveId, lastProof + j.challengeWindow + FINALIZE_GRACE);
        emit JobClaimed(jobId, enclaveId, msg.sender, expires, msg.value, node.measurement, snapshotId);
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev Lapse first (decision 1723): a claim past its timeout or the deadline is forfeit
    /// whatever the registry says now, so a later revocation cannot return a bond the node's own
    /// inaction lost. Only a claim still running asks the registry (1702).
    function releaseJob(bytes32 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != JobStatus.Claimed) revert UnexpectedJobStatus(jobId, j.status);
        address claimant = j.claimant;
        bytes32 enclaveId = j.enclaveId;
        uint8 revoked = _claimLapsed(j) ? 0 : _revokedSinceClaim(enclaveId);
        // Anyone may end a running claim whose node's code governance restricted (1723, 1775).
        if (claimant != msg.sender && revoked == 0) revert NotClaimant(jobId, msg.sender);
        // The job is Open again, then the bond is credited to the owner's treasury (decision 1625),
        // or back to the claimant when governance restricted its node during the claim (1702).
        // Open to every eligible node but this claim's own and its operator's (decision 1768).
        _endClaimFor(jobId, j);
        j.status = JobStatus.Open;
        emit JobReleased(jobId, enclaveId);
        if (revoked == 0) {
            _forfeitBond(jobId, j);
            return;
        }
        uint256 bond = _clearClaim(j);
        _totalBonds -= uint128(bond);
        _returnBond(jobId, enclaveId, claimant, revoked, bond);
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev Reads two job slots (status and times; the claim hash) and one registry slot, writes the
    /// same two job slots: the submission facts are kept as one hash, their values go to
    /// ProofSubmitted (decisions 1141, 1142).
    function submitProof(WorkProof calldata proof, bytes32 r, bytes32 vs) external {
        bytes32 jobId = proof.jobId;
        Job storage j = _jobs[jobId];
        JobStatus status = j.status;
        if (status != JobStatus.Claimed) {
            if (status == JobStatus.None) revert UnknownJob(jobId);
            revert UnexpectedJobStatus(jobId, status);
        }
        uint64 deadline = j.deadline;
        if (block.timestamp > deadline) revert DeadlinePassed(jobId, deadline, uint64(block.timestamp));
        uint64 expiresAt = j.claimExpiresAt;
        if (block.timestamp > expiresAt) revert ClaimExpired(jobId, expiresAt, uint64(block.timestamp));
        bytes32 enclaveId = proof.enclaveId;
        bytes32 claimHash = keccak256(
            abi.encode(msg.sender, enclaveId, proof.measurement, proof.workloadHash, proof.inputCommitment)
        );
        if (claimHash != j.factsHash) _revertClaimMismatch(jobId, j, enclaveId);
        if (_timesInvalid(proof.startedAt, proof.finishedAt, deadline)) {
            revert InvalidProofTimes(proof.startedAt, proof.finishedAt);
        }

        (address enclaveAddress, uint8 reason) = _registry.proofSigner(enclaveId, proof.measurement);
        if (reason != 0) revert NodeNotEligible(jobId, enclaveId, _submitReason(reason));
        // tryRecover refuses malformed and high-s (malleable) signatures instead of recovering.
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(_hashWorkProof(proof), r, vs);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature(uint8(err));
        if (signer != enclaveAddress) revert WrongSigner(enclaveId, enclaveAddress, signer);

        // ProofFacts in ABI order (a static struct encodes as its fields): signer, startedAt,
        // finishedAt, provedBlock, challengeEndsAt, workUnits, snapshotId.
        uint64 endsAt = uint64(block.timestamp) + j.challengeWindow;
        j.status = JobStatus.Proved;
        j.factsHash = _proofFactsHash(proof, signer, endsAt, j.snapshotId);
        _emitProved(proof, signer);
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev The bond comes back in proportion to the claim time left (decision 1571): with the
    /// claim's usable span S = min(claim expiry, deadline) - claimedAt and R = its end - now, the
    /// claimant is credited bond * R / S (rounded down), so holding a job and failing it at the last
    /// second costs what abandoning it does. The rest goes to the owner's treasury, never to the
    /// requester (decision 1625: the requester decides whether an unattestable failure happens).
    function failJob(bytes32 jobId, bytes32 reason) external {
        Job storage j = _job(jobId);
        if (j.status != JobStatus.Claimed) revert UnexpectedJobStatus(jobId, j.status);
        if (j.claimant != msg.sender) revert NotClaimant(jobId, msg.sender);
        // A lapsed claim's bond is forfeited: failing after the lapse cannot take it back.
        uint64 deadline = j.deadline;
        if (block.timestamp > deadline) revert DeadlinePassed(jobId, deadline, uint64(block.timestamp));
        uint64 expiresAt = j.claimExpiresAt;
        if (block.timestamp > expiresAt) revert ClaimExpired(jobId, expiresAt, uint64(block.timestamp));
        uint256 bond = j.bond;
        bytes32 enclaveId = j.enclaveId;
        j.status = JobStatus.Failed;
        j.bond = 0;
        _totalBonds -= uint128(bond);
        emit JobFailed(jobId, enclaveId, reason);
        // Governance or the guardian restricted the node's code since the claim: the claimant,
        // Active or Exiting, cannot prove any more through no act of its own, so it keeps its whole
        // bond (decisions 1702, 1775).
        uint8 revoked = _revokedSinceClaim(enclaveId);
        if (revoked != 0) {
            _returnBond(jobId, enclaveId, msg.sender, revoked, bond);
            return;
        }
        uint64 end = expiresAt < deadline ? expiresAt : deadline;
        uint64 claimedAt = expiresAt - j.claimTimeout;
        // claimJob runs at or before the deadline, so end >= claimedAt; a zero span refunds nothing.
        uint256 span = end - claimedAt;
        uint256 refund = span == 0 ? 0 : bond * (end - block.timestamp) / span;
        uint256 forfeited = bond - refund;
        _credit(msg.sender, refund);
        if (forfeited != 0) _payForfeit(jobId, enclaveId, forfeited);
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev Decision 1595: a failure the enclave signed as caused by the committed workload and
    /// inputs is the requester's doing, so the claimant keeps its whole bond (1571's time-left rule
    /// stays for unattested failJob). Checked like submitProof: claim hash, registry signer, low-s.
    function failJobAttested(JobFailure calldata failure, bytes32 r, bytes32 vs) external {
        bytes32 jobId = failure.jobId;
        Job storage j = _jobs[jobId];
        JobStatus status = j.status;
        if (status != JobStatus.Claimed) {
            if (status == JobStatus.None) revert UnknownJob(jobId);
            revert UnexpectedJobStatus(jobId, status);
        }
        // A lapsed claim's bond is forfeited (to the owner's treasury), attested or not.
        uint64 deadline = j.deadline;
        if (block.timestamp > deadline) revert DeadlinePassed(jobId, deadline, uint64(block.timestamp));
        uint64 expiresAt = j.claimExpiresAt;
        if (block.timestamp > expiresAt) revert ClaimExpired(jobId, expiresAt, uint64(block.timestamp));
        bytes32 enclaveId = failure.enclaveId;
        // The claim hash's bytes (an address encodes as its uint256); written with its own encoder
        // so submitProof's and claimJob's stay as compiled before (gas, decision 1595).
        bytes32 claimHash = keccak256(
            abi.encode(
                uint256(uint160(msg.sender)),
                enclaveId,
                failure.measurement,
                failure.workloadHash,
                failure.inputCommitment
            )
        );
        if (claimHash != j.factsHash) _revertClaimMismatch(jobId, j, enclaveId);
        address signer = _failureSigner(jobId, expiresAt - j.claimTimeout, failure, r, vs);

        uint256 bond = j.bond;
        j.status = JobStatus.Failed;
        j.bond = 0;
        _totalBonds -= uint128(bond);
        emit JobFailed(jobId, enclaveId, bytes32(uint256(failure.reasonCode)));
        emit JobFailureAttested(jobId, enclaveId, failure.reasonCode, failure.failedAt, signer);
        _credit(msg.sender, bond);
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev A fact dispute is settled in this call: either the recorded facts prove it right (the
    /// node is slashed) or they prove it wrong (the verifier is slashed). A finding counts its
    /// stake; the vote that passes 2/3 of the submission snapshot slashes the node.
    function dispute(bytes32 jobId, uint16 reasonCode, ProofFacts calldata facts) external nonReentrant {
        Job storage j = _job(jobId);
        if (j.status != JobStatus.Proved) revert UnexpectedJobStatus(jobId, j.status);
        _checkFacts(jobId, j, facts);
        if (block.timestamp >= facts.challengeEndsAt) {
            revert ChallengeWindowClosed(jobId, facts.challengeEndsAt, uint64(block.timestamp));
        }
        bool isFact = reasonCode == DISPUTE_SIGNER_NOT_ENCLAVE_KEY || reasonCode == DISPUTE_TIMES_INVALID;
        if (!isFact && reasonCode < DISPUTE_FINDINGS_FROM) revert InvalidDisputeReason(reasonCode);
        uint64 snapshotId = facts.snapshotId;
        uint256 weight = _verifierSet.voteWeight(msg.sender, snapshotId);
        if (weight == 0) {
            if (!_verifierSet.isVerifier(msg.sender)) revert NotVerifier(msg.sender);
            revert NotEligibleVoter(jobId, msg.sender, snapshotId);
        }
        if (_disputed[jobId][msg.sender]) revert AlreadyDisputed(jobId, msg.sender);
        _disputed[jobId][msg.sender] = true;

        if (isFact) {
            emit JobDisputed(jobId, msg.sender, reasonCode, weight, j.disputeStake);
            if (_factHolds(j, facts, reasonCode)) {
                address[] memory disputer = new address[](1);
                disputer[0] = msg.sender;
                _reportWork(disputer);
                _slashNode(jobId, j);
            } else {
                _slashFalseDisputer(jobId, reasonCode);
            }
            return;
        }

        uint256 disputeStake = j.disputeStake + weight;
        j.disputeStake = disputeStake;
        emit JobDisputed(jobId, msg.sender, reasonCode, weight, disputeStake);
        _findingDisputers[jobId].push(msg.sender);
        // Strictly more than two thirds of the stake that can still vote in the claim's round.
        if (_findingPassed(jobId, snapshotId, disputeStake)) {
            // A finding earns only once it concludes: a dispute the quorum never joins earns nothing,
            // so disputing valid proofs is never paid.
            _reportWork(_findingDisputers[jobId]);
            _slashNode(jobId, j);
        }
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev A passed finding concludes before the window check (decision 1776): the moment it passes
    /// it can be concluded, window or not, as a vote would conclude it (1755 for registry rounds).
    function finalize(bytes32 jobId, ProofFacts calldata facts) external nonReentrant {
        Job storage j = _job(jobId);
        if (j.status != JobStatus.Proved) revert UnexpectedJobStatus(jobId, j.status);
        _checkFacts(jobId, j, facts);
        // Stake that left the round after its last finding can still make that finding pass: it
        // concludes here rather than the proof being paid (decision 1720), by anyone, as soon as it
        // has passed (decision 1776).
        uint256 findings = j.disputeStake;
        if (findings != 0 && _findingPassed(jobId, facts.snapshotId, findings)) {
            _reportWork(_findingDisputers[jobId]);
            _slashNode(jobId, j);
            return;
        }
        if (block.timestamp < facts.challengeEndsAt) {
            revert ChallengeWindowOpen(jobId, facts.challengeEndsAt, uint64(block.timestamp));
        }
        uint256 escrow = j.escrow;
        uint256 bond = j.bond;
        uint256 earned = _earned(escrow, facts.workUnits, j.maxWorkUnits);
        uint256 unused = escrow - earned;
        // The protocol fee is taken from what the work earned, never from escrow returned unused, at
        // the rate in force when the claim was made (decision 1700).
        (uint16 feeBps,) = _termsOfClaim(j);
        uint256 fee = earned * feeBps / 10_000;
        address operator = j.claimant;
        j.status = JobStatus.Paid;
        j.escrow = 0;
        j.bond = 0;
        _totalEscrow -= uint128(escrow);
        _totalBonds -= uint128(bond);
        emit JobFinalized(jobId, j.enclaveId, operator, earned - fee, fee);
        _credit(operator, earned - fee + bond);
        if (unused != 0) {
            emit UnusedEscrowReturned(jobId, j.requester, unused);
            _credit(j.requester, unused);
        }
        if (fee != 0) _pushFee(jobId, fee);
    }

    /// @inheritdoc IFirnJobMarket
    /// @dev The requester may cancel an Open job at any time (nobody works on it), a Claimed job
    /// once the deadline or the claim timeout has passed (the claim lapsed: its bond goes to the
    /// owner's treasury, decision 1625), a Claimed job still running whose node governance made
    /// ineligible (its whole bond goes back to the claimant, decision 1723), and a Failed or Slashed
    /// job at once. The requester gets exactly its escrow back.
    function reclaim(bytes32 jobId) external nonReentrant {
        Job storage j = _job(jobId);
        if (j.requester != msg.sender) revert NotRequester(jobId, msg.sender);
        JobStatus s = j.status;
        bool lapsed = false;
        uint8 revoked = 0;
        if (s == JobStatus.Claimed) {
            // Lapse first: a lapsed claim is forfeit whatever the registry says now (1723).
            lapsed = _claimLapsed(j);
            if (!lapsed) revoked = _revokedSinceClaim(j.enclaveId);
        }
        if (!(lapsed || revoked != 0 || s == JobStatus.Open || s == JobStatus.Failed || s == JobStatus.Slashed)) {
            revert NotReclaimable(jobId, s);
        }
        uint256 refund = j.escrow;
        j.status = JobStatus.Reclaimed;
        j.escrow = 0;
        _totalEscrow -= uint128(refund);
        emit JobReclaimed(jobId, msg.sender, refund);
        _credit(msg.sender, refund);
        if (lapsed) {
            _forfeitBond(jobId, j);
        } else if (revoked != 0) {
            bytes32 enclaveId = j.enclaveId;
            address claimant = j.claimant;
            uint256 bond = _clearClaim(j);
            _totalBonds -= uint128(bond);
            _returnBond(jobId, enclaveId, claimant, revoked, bond);
        }
    }

    /// @inheritdoc IFirnJobMarket
    function withdraw() external nonReentrant {
        uint256 amount = _withdrawable[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _withdrawable[msg.sender] = 0;
        _totalWithdrawable -= uint128(amount);
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
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
    function hashFailure(JobFailure calldata failure) external view returns (bytes32) {
        return _hashFailure(failure);
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
        return _params.challengeWindow;
    }

    /// @inheritdoc IFirnJobMarket
    function slashAmount() external view returns (uint256) {
        return _params.slashAmount;
    }

    /// @inheritdoc IFirnJobMarket
    function claimBond() external view returns (uint256) {
        return _params.claimBond;
    }

    /// @inheritdoc IFirnJobMarket
    function protocolFeeBps() external view returns (uint16) {
        return _params.protocolFeeBps;
    }

    /// @inheritdoc IFirnJobMarket
    function falseDisputeSlash() external view returns (uint256) {
        return _params.falseDisputeSlash;
    }

    /// @inheritdoc IFirnJobMarket
    function totalEscrow() external view returns (uint256) {
        return _totalEscrow;
    }

    /// @inheritdoc IFirnJobMarket
    function totalBonds() external view returns (uint256) {
        return _totalBonds;
    }

    /// @inheritdoc IFirnJobMarket
    function withdrawable(address account) external view returns (uint256) {
        return _withdrawable[account];
    }

    /// @inheritdoc IFirnJobMarket
    function totalWithdrawable() external view returns (uint256) {
        return _totalWithdrawable;
    }

    /// @inheritdoc IFirnJobMarket
    function feesHeld() external view returns (uint256) {
        return _feesHeld;
    }

    /// @inheritdoc IFirnJobMarket
    function guardian() external view returns (address) {
        return _params.guardian;
    }

    /// @inheritdoc IFirnJobMarket
    function rewardPool() external view returns (address) {
        return _pool();
    }

    /// @inheritdoc IFirnJobMarket
    function registry() external view returns (IFirnRegistry) {
        return _registry;
    }

    /// @inheritdoc IFirnJobMarket
    function verifierSet() external view returns (IFirnVerifierSet) {
        return _verifierSet;
    }

    /// @notice ERC-5267: the fields of this market's EIP-712 domain (0x0f: name, version, chainId,
    /// verifyingContract), the same answer as OpenZeppelin's EIP712 gives.
    /// @dev Returns the name and version constants the constructor passed to EIP712, so the answer
    /// cannot drift from DOMAIN_SEPARATOR; skips EIP712's ShortStrings decoding, which only long
    /// names need (decision 1750).
    function eip712Domain()
        public
        view
        override
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", EIP712_NAME, EIP712_VERSION, block.chainid, address(this), bytes32(0), new uint256[](0));
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

    /// @dev failJobAttested's checks of the signed failure itself (separate frame for the stack):
    /// a reason, a time within the claim, the registry's proof signer, a low-s signature by it.
    function _failureSigner(bytes32 jobId, uint64 claimedAt, JobFailure calldata failure, bytes32 r, bytes32 vs)
        private
        view
        returns (address signer)
    {
        if (failure.reasonCode == 0) revert InvalidFailureReason(0);
        // Signed during this claim (the enclave's clock, judged with MAX_CLOCK_SKEW like proof times).
        uint64 failedAt = failure.failedAt;
        if (uint256(failedAt) + MAX_CLOCK_SKEW < claimedAt || uint256(failedAt) > block.timestamp + MAX_CLOCK_SKEW) {
            revert InvalidFailureTime(failedAt, claimedAt, uint64(block.timestamp));
        }

        (address enclaveAddress, uint8 reason) = _registry.proofSigner(failure.enclaveId, failure.measurement);
        if (reason != 0) revert NodeNotEligible(jobId, failure.enclaveId, _submitReason(reason));
        // tryRecover refuses malformed and high-s (malleable) signatures instead of recovering.
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecover(_hashFailure(failure), r, vs);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature(uint8(err));
        if (signer != enclaveAddress) revert WrongSigner(failure.enclaveId, enclaveAddress, signer);
    }

    function _hashFailure(JobFailure calldata f) private view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                JOB_FAILURE_TYPEHASH,
                f.jobId,
                f.enclaveId,
                f.measurement,
                f.workloadHash,
                f.inputCommitment,
                f.reasonCode,
                f.failedAt
            )
        );
        return keccak256(abi.encodePacked(hex"1901", _domainSeparatorV4(), structHash));
    }

    /// @dev The escrow a proof of `workUnits` earns: all of it when the job set no maxWorkUnits,
    /// else pro rata, capped at the whole escrow (rounded down, so the remainder is the requester's).
    function _earned(uint256 escrow, uint64 workUnits, uint64 maxWorkUnits) private pure returns (uint256) {
        if (maxWorkUnits == 0) return escrow;
        uint64 used = workUnits < maxWorkUnits ? workUnits : maxWorkUnits;
        return escrow * used / maxWorkUnits;
    }

    /// @dev The enclave's clock is not chain time, so times are judged with MAX_CLOCK_SKEW.
    function _timesInvalid(uint64 startedAt, uint64 finishedAt, uint64 deadline) private pure returns (bool) {
        // In 256 bits: a requester-chosen deadline near 2^64 must not make every proof revert.
        return startedAt > finishedAt || uint256(finishedAt) > uint256(deadline) + MAX_CLOCK_SKEW;
    }

    /// @dev True when the recorded submission facts prove the disputed fact: judged only on what
    /// was fixed at submitProof and on the key history at the proof's block, never on the node's
    /// or the allow-list's state now.
    /// @dev The facts a disputer or finalizer passes must be the ones recorded at submitProof.
    function _checkFacts(bytes32 jobId, Job storage j, ProofFacts calldata facts) private view {
        bytes32 given = keccak256(abi.encode(facts));
        if (given != j.factsHash) revert FactsMismatch(jobId, j.factsHash, given);
    }

    /// @dev The claim hash did not match: name the cause (only this failing path reads the fields).
    function _revertClaimMismatch(bytes32 jobId, Job storage j, bytes32 enclaveId) private view {
        if (j.claimant != msg.sender) revert NotClaimant(jobId, msg.sender);
        if (j.enclaveId != enclaveId) revert ProofMismatch(jobId, "enclaveId");
        revert ProofMismatch(jobId, "measurement, workloadHash or inputCommitment");
    }

    function _factHolds(Job storage j, ProofFacts calldata facts, uint16 reasonCode) private view returns (bool) {
        if (reasonCode == DISPUTE_SIGNER_NOT_ENCLAVE_KEY) {
            return !_registry.wasEnclaveAddress(j.enclaveId, facts.signer, facts.provedBlock);
        }
        return _timesInvalid(facts.startedAt, facts.finishedAt, j.deadline);
    }

    function _ineligibility(
        uint8 teeTypeMask,
        JobTerms calldata terms,
        IFirnRegistry.NodeSummary memory node,
        bytes32 enclaveId
    ) private pure returns (uint8) {
        uint8 r = node.ineligibility;
        if (r == 1) return REASON_NOT_ACTIVE;
        if (r == 2) return REASON_TEE_TYPE_NOT_ALLOWED;
        if (r != 0) return REASON_MEASUREMENT_REVOKED;
        if (teeTypeMask & (uint8(1) << node.teeType) == 0) return REASON_TEE_TYPE;
        uint256 e = terms.enclaveIds.length;
        if (e != 0) {
            bool bound = false;
            for (uint256 i = 0; i < e; ++i) {
                if (terms.enclaveIds[i] == enclaveId) {
                    bound = true;
                    break;
                }
            }
            if (!bound) return REASON_ENCLAVE_NOT_BOUND;
        }
        uint256 n = terms.allowedMeasurements.length;
        if (n == 0) return 0;
        for (uint256 i = 0; i < n; ++i) {
            if (terms.allowedMeasurements[i] == node.measurement) return 0;
        }
        return REASON_MEASUREMENT_NOT_LISTED;
    }

    /// @dev Maps the registry's answer at submission (1 neither Active nor Exiting, 2 TEE type no
    /// longer allowed, 3 measurement revoked) to this contract's NodeNotEligible reasons.
    function _submitReason(uint8 r) private pure returns (uint8) {
        if (r == 1) return REASON_NOT_ACTIVE;
        return r == 2 ? REASON_TEE_TYPE_NOT_ALLOWED : REASON_MEASUREMENT_REVOKED;
    }

    /// @dev Separate frame: the event carries more fields than submitProof's stack can hold.
    function _proofFactsHash(WorkProof calldata p, address signer, uint64 endsAt, uint64 snapshotId)
        private
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(signer, p.startedAt, p.finishedAt, uint64(block.number), endsAt, p.workUnits, snapshotId)
        );
    }

    function _emitProved(WorkProof calldata p, address signer) private {
        emit ProofSubmitted(p.jobId, p.enclaveId, p.outputCommitment, p.workUnits, signer, p.startedAt, p.finishedAt);
    }

    /// @dev Separate frame: the event carries the whole request (the preimage of `termsHash`).
    function _emitPosted(bytes32 jobId, JobRequest calldata r) private {
        emit JobPosted(
            jobId,
            msg.sender,
            msg.value,
            r.teeTypeMask,
            r.workloadHash,
            r.inputCommitment,
            r.deadline,
            r.claimTimeout,
            r.maxWorkUnits,
            r.allowedMeasurements,
            r.enclaveIds
        );
    }

    function _toUint96(uint256 amount) private pure returns (uint96) {
        if (amount > type(uint96).max) revert AmountTooLarge(amount, type(uint96).max);
        return uint96(amount);
    }

    /// @dev Slashes the proven node; the requester reclaims its escrow, and the slashed stake and the
    /// claim bond go to the owner's treasury (pull), never to the requester: a requester who is the
    /// node's own accomplice would otherwise take the node's stake back through findings on its own
    /// jobs, ahead of a victim's (decision 1856). The job is Slashed and refunded even when the
    /// registry refuses the stake slash (decision 1700).
    function _slashNode(bytes32 jobId, Job storage j) private {
        j.status = JobStatus.Slashed;
        bytes32 enclaveId = j.enclaveId;
        IFirnRegistry.NodeSummary memory node = _registry.getNodeSummary(enclaveId);
        uint256 slashed;
        IFirnRegistry.NodeStatus s = node.status;
        if (
            s == IFirnRegistry.NodeStatus.Active || s == IFirnRegistry.NodeStatus.Exiting
                || s == IFirnRegistry.NodeStatus.Slashed
        ) {
            // The slash amount in force when the claim was made (decision 1700).
            (, uint256 slashAmount_) = _termsOfClaim(j);
            uint256 amount = slashAmount_ < node.stake ? slashAmount_ : node.stake;
            slashed = _slashStake(jobId, enclaveId, amount);
        }
        uint256 bond = j.bond;
        j.bond = 0;
        _totalBonds -= uint128(bond);
        uint256 refundable = j.escrow;
        emit JobSlashed(jobId, enclaveId, slashed, refundable);
        _credit(owner(), slashed + bond);
    }

    /// @dev Whether findings of `disputeStake` wei pass strictly more than two thirds of the round's
    /// denominator: the claim snapshot's stake, less what left it since without disputing
    /// (`IFirnVerifierSet.quorumStakeAt`, decision 1720).
    function _findingPassed(bytes32 jobId, uint64 snapshotId, uint256 disputeStake) private view returns (bool) {
        // quorumStakeAt is the snapshot's total for a round opened at or after the last reduction.
        uint256 total = _verifierSet.quorumStakeAt(snapshotId, _findingDisputers[jobId], disputeStake);
        return disputeStake * 3 > total * 2;
    }

    /// @dev A fact dispute the recorded state contradicts: the verifier loses falseDisputeSlash,
    /// paid to this market and credited to the owner (governance treasury, a pull payment), never
    /// to the reward pool, which pays verifiers by stake x work and nodes by stake and so would give
    /// a large staker most of its own penalty back (decision 1671, as 1625 does for forfeits).
    function _slashFalseDisputer(bytes32 jobId, uint16 reasonCode) private {
        uint256 slashed = _verifierSet.slash(msg.sender, _params.falseDisputeSlash, address(this), jobId);
        emit FalseDisputeSlashed(jobId, msg.sender, reasonCode, slashed);
        if (slashed != 0) _credit(owner(), slashed);
    }

    /// @dev Ends the current claim (a lapse superseded or reclaimed, a release) and forfeits its
    /// whole bond through _payForfeit: to the owner's treasury, never to the requester (decision 1625).
    function _forfeitBond(bytes32 jobId, Job storage j) private {
        bytes32 enclaveId = j.enclaveId;
        uint256 bond = _clearClaim(j);
        if (bond == 0) return;
        _totalBonds -= uint128(bond);
        _payForfeit(jobId, enclaveId, bond);
    }

    /// @dev Records the current claim's Enclave ID and operator as never to claim `jobId` again
    /// (decision 1768); called before a lapsed claim is superseded and on every release.
    function _endClaimFor(bytes32 jobId, Job storage j) private {
        _endedEnclave[jobId][j.enclaveId] = true;
        _endedOperator[jobId][j.claimant] = true;
    }

    /// @dev Ends the current claim's record and returns its bond (still counted in `_totalBonds`).
    function _clearClaim(Job storage j) private returns (uint256 bond) {
        bond = j.bond;
        j.bond = 0;
        j.enclaveId = bytes32(0);
        j.claimant = address(0);
        j.claimExpiresAt = 0;
        j.factsHash = bytes32(0);
    }

    /// @dev True once the claim is past its timeout or the job's deadline (the claim's end): from
    /// then on no proof or failure is taken and its bond is forfeit (decisions 1625, 1723).
    function _claimLapsed(Job storage j) private view returns (bool) {
        return block.timestamp > j.deadline || block.timestamp > j.claimExpiresAt;
    }

    /// @dev NodeNotEligible's reason (3 measurement revoked, 5 TEE type no longer allowed) when a
    /// change governance or the guardian made now stops the claimed node from proving, else 0.
    /// A claim is only taken by an eligible node, so such a change came after the claim; callers ask
    /// only while the claim runs (not `_claimLapsed`), so it also came before the claim's end
    /// (decision 1723). It reads the restriction itself (`registry.restriction`), not
    /// `ineligibility`, which answers "not Active" first: an Exiting node still proves its running
    /// claims, so a revocation stops it exactly as it stops an Active one (decision 1775). A node
    /// that can no longer prove for its own act whatever governance does (Slashed, or Exited) gets 0
    /// (decision 1702); the status is read only when a restriction is in force.
    function _revokedSinceClaim(bytes32 enclaveId) private view returns (uint8) {
        uint8 r = _registry.restriction(enclaveId);
        if (r == 0) return 0;
        IFirnRegistry.NodeStatus s = _registry.getNodeSummary(enclaveId).status;
        if (s != IFirnRegistry.NodeStatus.Active && s != IFirnRegistry.NodeStatus.Exiting) return 0;
        return _submitReason(r);
    }

    /// @dev The whole bond of a claim ended because of `_revokedSinceClaim` goes back to its
    /// claimant, whoever ended it (its amount is already out of `_totalBonds`).
    function _returnBond(bytes32 jobId, bytes32 enclaveId, address claimant, uint8 reason, uint256 bond) private {
        emit ClaimBondReturned(jobId, enclaveId, reason, bond);
        _credit(claimant, bond);
    }

    /// @dev Decisions 1625 and its amendment: a forfeited claim bond (or failJob's share of it) is
    /// credited to the owner (governance treasury, a pull payment), never to the requester and never
    /// to the reward pool, which pays by stake and so would return a share to a requester that also
    /// runs a node (AttackCircularPoolFarm). No external call, so nothing can block a failure,
    /// release, claim or reclaim. The amount is already out of `_totalBonds`; ClaimBondForfeited
    /// names the owner as its recipient.
    function _payForfeit(bytes32 jobId, bytes32 enclaveId, uint256 amount) private {
        address treasury = owner();
        emit ClaimBondForfeited(jobId, enclaveId, treasury, amount);
        _credit(treasury, amount);
    }

    /// @dev registry.slash, except that a registry that no longer takes this market as a slasher
    /// (NotSlasher: a migration outlived by this proof's window, decision 1700) slashes nothing and
    /// the finding still concludes. Any other revert (out of gas included) propagates, so a caller
    /// cannot make the slash fail by the gas it gives.
    function _slashStake(bytes32 jobId, bytes32 enclaveId, uint256 amount) private returns (uint256) {
        try _registry.slash(enclaveId, amount, address(this), jobId) returns (uint256 slashed) {
            return slashed;
        } catch (bytes memory err) {
            if (err.length < 4 || bytes4(err) != IFirnRegistry.NotSlasher.selector) {
                assembly ("memory-safe") {
                    revert(add(err, 32), mload(err))
                }
            }
            emit NodeSlashRefused(jobId, enclaveId, amount);
            return 0;
        }
    }

    /// @dev The protocol fee bps and slash amount in force at the job's claim (its claim expiry less
    /// its claim timeout; both stay in the record after submitProof). A change in the claim's own
    /// second counts (the checkpoint is by unix second).
    function _termsOfClaim(Job storage j) private view returns (uint16 feeBps, uint256 slashAmount_) {
        return _unpackTerms(_settlementTerms.upperLookupRecent(uint48(j.claimExpiresAt - j.claimTimeout)));
    }

    /// @dev The registry's reward pool: one governance call moves the whole network (decision 1756).
    function _pool() private view returns (address) {
        return _registry.rewardPool();
    }

    function _packTerms(uint256 slashAmount_, uint16 feeBps) private pure returns (uint208) {
        return (uint208(SafeCast.toUint128(slashAmount_)) << 16) | feeBps;
    }

    function _unpackTerms(uint208 packed) private pure returns (uint16 feeBps, uint256 slashAmount_) {
        return (uint16(packed), uint256(packed >> 16));
    }

    /// @dev Pushes the fee to the pool's `fund()` with FEE_PUSH_GAS, or holds it for sweepFees when
    /// the pool has no code, reverts or needs more gas: no settlement depends on the pool (1701).
    function _pushFee(bytes32 jobId, uint256 fee) private {
        address pool = _pool();
        if (pool.code.length != 0) {
            try IFirnRewards(pool).fund{value: fee, gas: FEE_PUSH_GAS}() {
                return;
            } catch {}
        }
        _feesHeld += uint128(fee);
        emit ProtocolFeeHeld(jobId, pool, fee);
    }

    /// @dev Reports confirmed disputes to the reward pool; a failing pool never blocks a dispute.
    function _reportWork(address[] memory verifiers) private {
        address pool = _pool();
        if (pool == address(0)) return;
        try IFirnRewards(pool).recordVerifierWork(verifiers) {} catch {}
    }

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        _withdrawable[account] += amount;
        _totalWithdrawable += SafeCast.toUint128(amount);
        emit Credited(account, amount);
    }
}
