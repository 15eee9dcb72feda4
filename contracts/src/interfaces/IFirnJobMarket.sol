// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "./IFirnRegistry.sol";
import {IFirnVerifierSet} from "./IFirnVerifierSet.sol";

/// @title IFirnJobMarket
/// @notice Escrowed jobs, claims by eligible active nodes, EIP-712 work proofs signed by the
/// enclave key, a challenge window in which verifiers can dispute, payout and refunds.
interface IFirnJobMarket {
    /// @notice Life cycle of a job.
    /// Open: posted, claimable. Claimed: a node works on it (claimable again by others once its
    /// claim timeout passes). Proved: a proof is in, the challenge window runs. Paid: escrow paid
    /// to the node's operator. Slashed: a verifier quorum disputed the proof; the escrow plus the
    /// slashed stake wait for the requester's `reclaim`. Failed: the node reported it could not do
    /// the job; the requester may reclaim. Reclaimed: escrow returned to the requester.
    enum JobStatus {
        None,
        Open,
        Claimed,
        Proved,
        Paid,
        Slashed,
        Failed,
        Reclaimed
    }

    /// @notice Reasons a node is not eligible for a job (argument of NodeNotEligible).
    /// 1: the node is not Active; 2: its TEE type is not in the job's mask; 3: its measurement is
    /// no longer allow-listed; 4: its measurement is not in the job's own list.
    /// (Kept as uint8 so new reasons can be added without changing the error's selector.)

    /// @notice What a requester posts. `teeTypeMask` has bit (1 << teeType) set for each accepted
    /// TEE type; an empty `allowedMeasurements` accepts any allow-listed measurement.
    struct JobRequest {
        uint8 teeTypeMask;
        bytes32[] allowedMeasurements;
        bytes32 workloadHash;
        bytes32 inputCommitment;
        uint64 deadline;
        uint64 claimTimeout;
    }

    /// @notice The typed data an enclave signs when it finishes a job (EIP-712, domain "firn" "1").
    struct WorkProof {
        bytes32 jobId;
        bytes32 enclaveId;
        bytes32 measurement;
        bytes32 workloadHash;
        bytes32 inputCommitment;
        bytes32 outputCommitment;
        uint64 startedAt;
        uint64 finishedAt;
        uint64 workUnits;
    }

    /// @notice One job as stored.
    struct Job {
        address requester;
        uint8 teeTypeMask;
        JobStatus status;
        uint64 postedAt;
        uint64 deadline;
        uint64 claimTimeout;
        bytes32 workloadHash;
        bytes32 inputCommitment;
        bytes32[] allowedMeasurements;
        uint256 escrow;
        bytes32 enclaveId;
        address claimant;
        uint64 claimedAt;
        bytes32 measurement;
        bytes32 outputCommitment;
        uint64 workUnits;
        uint64 provedAt;
        uint64 challengeEndsAt;
        uint16 disputes;
    }

    error EmptyEscrow();
    error InvalidTeeTypeMask(uint8 teeTypeMask);
    error DeadlineInPast(uint64 deadline, uint64 nowTime);
    error InvalidClaimTimeout(uint64 claimTimeout);
    error TooManyMeasurements(uint256 count, uint256 max);
    error UnknownJob(bytes32 jobId);
    error UnexpectedJobStatus(bytes32 jobId, JobStatus status);
    error DeadlinePassed(bytes32 jobId, uint64 deadline, uint64 nowTime);
    error AlreadyClaimed(bytes32 jobId, bytes32 enclaveId, uint64 claimExpiresAt);
    error NotNodeOperator(bytes32 enclaveId, address caller);
    error NodeNotEligible(bytes32 jobId, bytes32 enclaveId, uint8 reason);
    error NotClaimant(bytes32 jobId, address caller);
    error ClaimExpired(bytes32 jobId, uint64 claimExpiresAt, uint64 nowTime);
    error ProofMismatch(bytes32 jobId, string field);
    error InvalidProofTimes(uint64 startedAt, uint64 finishedAt);
    error InvalidSignature(uint8 recoverError);
    error WrongSigner(bytes32 enclaveId, address expected, address recovered);
    error NodeNotActive(bytes32 enclaveId);
    error NotVerifier(address caller);
    error AlreadyDisputed(bytes32 jobId, address verifier);
    error ChallengeWindowClosed(bytes32 jobId, uint64 challengeEndsAt, uint64 nowTime);
    error ChallengeWindowOpen(bytes32 jobId, uint64 challengeEndsAt, uint64 nowTime);
    error NotRequester(bytes32 jobId, address caller);
    error NotReclaimable(bytes32 jobId, JobStatus status);
    error UnexpectedPayment(address from);
    error TransferFailed(address to, uint256 amount);

    event JobPosted(
        bytes32 indexed jobId,
        address indexed requester,
        uint256 escrow,
        uint8 teeTypeMask,
        bytes32 workloadHash,
        bytes32 inputCommitment,
        uint64 deadline,
        uint64 claimTimeout
    );
    event JobClaimed(bytes32 indexed jobId, bytes32 indexed enclaveId, address indexed operator, uint64 claimExpiresAt);
    event JobReleased(bytes32 indexed jobId, bytes32 indexed enclaveId);
    event ProofSubmitted(
        bytes32 indexed jobId,
        bytes32 indexed enclaveId,
        bytes32 outputCommitment,
        uint64 workUnits,
        uint64 challengeEndsAt
    );
    event JobDisputed(bytes32 indexed jobId, address indexed verifier, uint16 reasonCode, uint16 disputes);
    event JobSlashed(bytes32 indexed jobId, bytes32 indexed enclaveId, uint256 slashed, uint256 refundable);
    event JobFinalized(bytes32 indexed jobId, bytes32 indexed enclaveId, address indexed operator, uint256 payout);
    event JobReclaimed(bytes32 indexed jobId, address indexed requester, uint256 refund);
    event JobFailed(bytes32 indexed jobId, bytes32 indexed enclaveId, bytes32 reason);
    event ParametersUpdated(uint64 challengeWindow, uint256 slashAmount);

    function postJob(JobRequest calldata request) external payable returns (bytes32 jobId);
    function claimJob(bytes32 jobId, bytes32 enclaveId) external;
    function releaseJob(bytes32 jobId) external;
    function submitProof(bytes32 jobId, WorkProof calldata proof, bytes calldata signature) external;
    function failJob(bytes32 jobId, bytes32 reason) external;
    function dispute(bytes32 jobId, uint16 reasonCode) external;
    function finalize(bytes32 jobId) external;
    function reclaim(bytes32 jobId) external;
    function setParameters(uint64 newChallengeWindow, uint256 newSlashAmount) external;

    function getJob(bytes32 jobId) external view returns (Job memory);
    function hashWorkProof(WorkProof calldata proof) external view returns (bytes32);
    function hasDisputed(bytes32 jobId, address verifier) external view returns (bool);
    function jobCount() external view returns (uint256);
    function challengeWindow() external view returns (uint64);
    function slashAmount() external view returns (uint256);
    function totalEscrow() external view returns (uint256);
    function registry() external view returns (IFirnRegistry);
    function verifierSet() external view returns (IFirnVerifierSet);
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
