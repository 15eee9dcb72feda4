// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "./IFirnRegistry.sol";
import {IFirnVerifierSet} from "./IFirnVerifierSet.sol";

/// @title IFirnJobMarket
/// @notice Escrowed jobs optionally bound to attested Enclave IDs, claims with a claim bond by
/// eligible nodes, EIP-712 work proofs signed by the enclave key, a challenge window in which
/// verifiers dispute, payout minus a protocol fee to the reward pool, and pull refunds.
/// See docs/decisions/0102-contract-lifecycles.md and docs/decisions/0800-economics.md.
interface IFirnJobMarket {
    /// @notice Life cycle of a job.
    /// Open: posted, claimable. Claimed: a node works on it (claimable again by others once its
    /// claim timeout passes; the lapsed claim's bond goes to the reward pool). Proved: a proof is in,
    /// the challenge window runs. Paid: escrow (minus the protocol fee) credited to the node's
    /// operator. Slashed: a verifier quorum disputed the proof; escrow plus slashed stake wait for
    /// the requester's `reclaim`. Failed: the node reported it could not do the job. Reclaimed:
    /// escrow credited back to the requester.
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
    /// no longer allow-listed; 4: its measurement is not in the job's own list; 5: its TEE type is
    /// no longer allowed by governance; 6: its Enclave ID is not one the job is bound to; 7: this
    /// Enclave ID or its operator already held a claim on the job that lapsed or was released
    /// (decision 1768: such a claim never reopens the job to the node or operator that held it).

    /// @notice Dispute reasons. 1 and 2 are facts the contract judges at once against the state
    /// recorded at submitProof: 1 the signer was not the Enclave ID's enclave key at the proof's
    /// block (registry key history); 2 the proof's times are inconsistent or end after the deadline
    /// (+ MAX_CLOCK_SKEW). 3..15 are reserved. A fact dispute that the recorded state contradicts is
    /// a provably wrong vote: the disputing verifier loses `falseDisputeSlash` of its stake, credited to
    /// the owner's treasury (decision 1671).
    /// 16 and above are findings only verifiers can check (16 evidence invalid, 17 output wrong,
    /// 18 other); they slash the node once disputers hold > 2/3 of the stake snapshotted at submitProof.

    /// @notice What a requester posts. `teeTypeMask` has bit (1 << teeType) set for each accepted
    /// TEE type; an empty `allowedMeasurements` accepts any allow-listed measurement; an empty
    /// `enclaveIds` accepts any eligible node, else only the listed (attested) Enclave IDs.
    struct JobRequest {
        uint8 teeTypeMask;
        bytes32[] allowedMeasurements;
        bytes32[] enclaveIds;
        bytes32 workloadHash;
        bytes32 inputCommitment;
        uint64 deadline;
        uint64 claimTimeout;
        /// @dev Work units the escrow pays for: the claimant is paid escrow * min(workUnits,
        /// maxWorkUnits) / maxWorkUnits and the rest returns to the requester. 0 = the whole
        /// escrow for any accepted proof (a job whose work is all-or-nothing).
        uint64 maxWorkUnits;
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

    /// @notice The typed data an enclave signs when a job fails for a reason that is a deterministic
    /// function of the committed workload and inputs (EIP-712, domain "firn" "1", like WorkProof):
    /// a model that does not parse or fit, an input the workload rejects, the app's own typed error.
    /// Never signed for a timeout, a resource limit, a killed runtime or a missing input (anything
    /// the host can cause). `reasonCode` (> 0) names the enclave's error code
    /// (docs/decisions/1595-attested-job-failure.md); `failedAt` is the enclave's clock (unix s).
    struct JobFailure {
        bytes32 jobId;
        bytes32 enclaveId;
        bytes32 measurement;
        bytes32 workloadHash;
        bytes32 inputCommitment;
        uint16 reasonCode;
        uint64 failedAt;
    }

    /// @notice What a claim and a proof are checked against: `termsHash` of a job is
    /// keccak256(abi.encode(workloadHash, inputCommitment, allowedMeasurements, enclaveIds)), the
    /// preimage is in its JobPosted event, and claimJob passes it back (decision 1142).
    struct JobTerms {
        bytes32 workloadHash;
        bytes32 inputCommitment;
        bytes32[] allowedMeasurements;
        bytes32[] enclaveIds;
    }

    /// @notice The facts recorded at submitProof, which fact disputes are judged by and finalize
    /// pays by. A Proved job stores only keccak256(abi.encode(facts)) as `factsHash`; the facts are in
    /// its ProofSubmitted event (`provedBlock` is that event's block) and dispute and finalize pass
    /// them back (decision 1142).
    struct ProofFacts {
        address signer;
        uint64 startedAt;
        uint64 finishedAt;
        uint64 provedBlock;
        uint64 challengeEndsAt;
        uint64 workUnits;
        uint64 snapshotId;
    }

    /// @notice One job as stored, packed into seven slots (docs/decisions/1140-contract-gas.md).
    /// Times are unix seconds in uint40 (to year 36812), amounts wei in uint96 (every amount is ether
    /// this contract holds). `challengeWindow` is the market's window when the job was posted, which
    /// its proof gets. `snapshotId` is the verifier-set snapshot taken by the standing claim, whose
    /// stake decides findings against its proof. `termsHash`: see JobTerms. `factsHash` while Claimed: keccak256(abi.encode(
    /// claimant, enclaveId, measurement, workloadHash, inputCommitment)), what the proof must repeat
    /// (the claimed node's measurement is in JobClaimed); once Proved: the hash of the ProofFacts.
    struct Job {
        // slot 0: what every state change reads
        address requester;
        JobStatus status;
        uint8 teeTypeMask;
        uint40 deadline;
        uint40 claimExpiresAt;
        // slot 1
        uint96 escrow;
        uint64 maxWorkUnits;
        uint32 claimTimeout;
        uint32 challengeWindow;
        uint32 snapshotId;
        // slot 2
        bytes32 termsHash;
        // slot 3
        address claimant;
        uint96 bond;
        // slot 4
        bytes32 enclaveId;
        // slot 5
        bytes32 factsHash;
        // slot 6
        uint256 disputeStake;
    }

    error EmptyEscrow();
    error InvalidTeeTypeMask(uint8 teeTypeMask);
    error DeadlineInPast(uint64 deadline, uint64 nowTime);
    error InvalidClaimTimeout(uint64 claimTimeout);
    /// @notice The claim timeout is over `max` seconds while the deadline is more than `max` seconds
    /// away: a claim could lock the node's stake that long. Post a claim timeout of at most `max`.
    error ClaimTimeoutTooLong(uint64 claimTimeout, uint64 deadline, uint64 max);
    error TooManyMeasurements(uint256 count, uint256 max);
    error TooManyEnclaveIds(uint256 count, uint256 max);
    error UnknownJob(bytes32 jobId);
    error UnexpectedJobStatus(bytes32 jobId, JobStatus status);
    error DeadlinePassed(bytes32 jobId, uint64 deadline, uint64 nowTime);
    error AlreadyClaimed(bytes32 jobId, bytes32 enclaveId, uint64 claimExpiresAt);
    error WrongClaimBond(uint256 sent, uint256 required);
    error NotNodeOperator(bytes32 enclaveId, address caller);
    error NodeNotEligible(bytes32 jobId, bytes32 enclaveId, uint8 reason);
    error NotClaimant(bytes32 jobId, address caller);
    error ClaimExpired(bytes32 jobId, uint64 claimExpiresAt, uint64 nowTime);
    error ProofMismatch(bytes32 jobId, string field);
    /// @notice The terms passed to claimJob are not the ones the job was posted with.
    error TermsMismatch(bytes32 jobId, bytes32 expected, bytes32 given);
    /// @notice The proof facts passed to a fact dispute are not the ones recorded at submitProof.
    error FactsMismatch(bytes32 jobId, bytes32 expected, bytes32 given);
    /// @notice An amount does not fit the packed uint96 field.
    error AmountTooLarge(uint256 amount, uint256 max);
    /// @notice A deadline, claim timeout or challenge window does not fit its packed field.
    error TimeTooLarge(uint256 value, uint256 max);
    error InvalidProofTimes(uint64 startedAt, uint64 finishedAt);
    error InvalidSignature(uint8 recoverError);
    /// @notice An attested failure with reason code 0 (no reason the enclave signs).
    error InvalidFailureReason(uint16 reasonCode);
    /// @notice An attested failure's `failedAt` is before the claim (less MAX_CLOCK_SKEW) or after
    /// now (plus MAX_CLOCK_SKEW): it was not signed during this claim.
    error InvalidFailureTime(uint64 failedAt, uint64 claimedAt, uint64 nowTime);
    error WrongSigner(bytes32 enclaveId, address expected, address recovered);
    error NotVerifier(address caller);
    error NotEligibleVoter(bytes32 jobId, address verifier, uint64 snapshotId);
    error InvalidDisputeReason(uint16 reasonCode);
    error AlreadyDisputed(bytes32 jobId, address verifier);
    error ChallengeWindowClosed(bytes32 jobId, uint64 challengeEndsAt, uint64 nowTime);
    error ChallengeWindowOpen(bytes32 jobId, uint64 challengeEndsAt, uint64 nowTime);
    error NotRequester(bytes32 jobId, address caller);
    error NotReclaimable(bytes32 jobId, JobStatus status);
    error NotGuardian(address caller);
    error InvalidProtocolFee(uint16 feeBps, uint16 maxBps);
    error RewardPoolNotSet();
    /// @notice renounceOwnership is disabled: without an owner a guardian pause could never be
    /// lifted and forfeits would be credited to address(0). Transfer ownership instead.
    error OwnershipRenounceDisabled();
    error NothingToWithdraw(address account);
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
        uint64 claimTimeout,
        uint64 maxWorkUnits,
        bytes32[] allowedMeasurements,
        bytes32[] enclaveIds
    );
    event JobClaimed(
        bytes32 indexed jobId,
        bytes32 indexed enclaveId,
        address indexed operator,
        uint64 claimExpiresAt,
        uint256 bond,
        bytes32 measurement,
        uint64 snapshotId
    );
    event JobReleased(bytes32 indexed jobId, bytes32 indexed enclaveId);
    /// @notice A claimant lost `bond` wei of its claim bond (a lapsed claim, releaseJob, or failJob's
    /// share for the time held); `recipient` is where it went: the owner (governance treasury), as a
    /// pull credit. Never the requester, never the stake-weighted reward pool (decision 1625).
    event ClaimBondForfeited(bytes32 indexed jobId, bytes32 indexed enclaveId, address indexed recipient, uint256 bond);
    /// @notice Carries the ProofFacts that dispute and finalize pass back, with what the job record
    /// (getJob) holds: `provedBlock` is this event's block, `challengeEndsAt` = that block's
    /// timestamp + the job's `challengeWindow`, `snapshotId` the job's (also in JobClaimed).
    event ProofSubmitted(
        bytes32 indexed jobId,
        bytes32 indexed enclaveId,
        bytes32 outputCommitment,
        uint64 workUnits,
        address signer,
        uint64 startedAt,
        uint64 finishedAt
    );
    event JobDisputed(
        bytes32 indexed jobId, address indexed verifier, uint16 reasonCode, uint256 weight, uint256 disputeStake
    );
    event FalseDisputeSlashed(bytes32 indexed jobId, address indexed verifier, uint16 reasonCode, uint256 slashed);
    event JobSlashed(bytes32 indexed jobId, bytes32 indexed enclaveId, uint256 slashed, uint256 refundable);
    event JobFinalized(
        bytes32 indexed jobId, bytes32 indexed enclaveId, address indexed operator, uint256 payout, uint256 fee
    );
    /// @notice The part of a finalized job's escrow its work units did not use, credited back to the requester.
    event UnusedEscrowReturned(bytes32 indexed jobId, address indexed requester, uint256 amount);
    event JobReclaimed(bytes32 indexed jobId, address indexed requester, uint256 refund);
    /// @notice `reason`: failJob's as the node sent it (by convention an error code in ASCII); for
    /// failJobAttested the signed reason code as a number (bytes32(uint256(reasonCode)), first byte 0).
    event JobFailed(bytes32 indexed jobId, bytes32 indexed enclaveId, bytes32 reason);
    /// @notice The job failed for a reason its enclave signed (JobFailure); the whole bond went back
    /// to the claimant, next to JobFailed.
    event JobFailureAttested(
        bytes32 indexed jobId, bytes32 indexed enclaveId, uint16 reasonCode, uint64 failedAt, address signer
    );
    /// @notice A running claim ended (the claimant's failJob or releaseJob, anyone's releaseJob, the
    /// requester's reclaim) after governance or the guardian made its node ineligible during the
    /// claim (`reason` 3 its measurement revoked, 5 its TEE type no longer allowed): the whole bond
    /// was credited back to the claimant (decisions 1702, 1723). A lapsed claim never gets this.
    event ClaimBondReturned(bytes32 indexed jobId, bytes32 indexed enclaveId, uint8 reason, uint256 bond);
    /// @notice A finding concluded but the registry no longer lets this market slash (a market
    /// migration after the window's last lock): the job is Slashed and its escrow and bond go back
    /// to the requester all the same; `amount` is the stake slash that was refused (decision 1700).
    event NodeSlashRefused(bytes32 indexed jobId, bytes32 indexed enclaveId, uint256 amount);
    /// @notice finalize could not push `fee` wei to `pool` (no code, or its `fund()` reverted or ran
    /// out of its gas allowance): the fee is held here until `sweepFees` (decision 1701).
    event ProtocolFeeHeld(bytes32 indexed jobId, address indexed pool, uint256 fee);
    /// @notice Held protocol fees were paid to the reward pool's `fund()`.
    event FeesSwept(address indexed pool, uint256 amount);
    event Credited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event GuardianSet(address indexed previousGuardian, address indexed newGuardian);
    event ParametersUpdated(
        uint64 challengeWindow, uint256 slashAmount, uint256 claimBond, uint16 protocolFeeBps, uint256 falseDisputeSlash
    );

    /// @notice Post a job; msg.value is the escrow. Reverts while paused (EnforcedPause).
    function postJob(JobRequest calldata request) external payable returns (bytes32 jobId);
    /// @notice Claim with msg.value == claimBond(), passing the job's terms from its JobPosted
    /// event (reverts TermsMismatch otherwise). Reverts while paused. A lapsed claim of another node
    /// is superseded and its bond goes to the owner (ClaimBondForfeited). An Enclave ID or operator
    /// whose claim on this job lapsed or was released gets NodeNotEligible reason 7 (decision 1768),
    /// so a job bound to one Enclave ID is claimable by nobody once that claim lapsed: the requester
    /// reclaims it. Locks the node's stake until the claim's end (min(expiry, deadline)) plus the
    /// job's challenge window, the latest a proof of this claim can be disputed, plus
    /// FINALIZE_GRACE, during which a finding that passed is concluded by `finalize` (decision 1776).
    function claimJob(bytes32 jobId, bytes32 enclaveId, JobTerms calldata terms) external payable;
    /// @notice Claimant gives the job back; the job is Open again and the bond goes to the owner
    /// (ClaimBondForfeited; decision 1625). After the lapse (claim timeout or deadline passed) the
    /// bond is forfeit whatever the registry says. While the claim runs and the node's measurement
    /// is revoked or its TEE type disallowed (`registry.restriction` 3 or 2) and the node is Active
    /// or Exiting (an Exiting node still proves its claims, decision 1775), anyone may call this:
    /// the job is Open again and the whole bond goes back to the claimant (ClaimBondReturned;
    /// decisions 1702, 1723, 1775). Otherwise a caller other than the claimant gets NotClaimant. Either
    /// way the released claim's Enclave ID and operator never claim this job again (decision 1768).
    function releaseJob(bytes32 jobId) external;
    /// @notice Claimant submits the enclave-signed proof (node Active or Exiting, measurement and
    /// TEE type still allowed). The stake lock taken at claim covers the challenge window and
    /// FINALIZE_GRACE after it (decision 1776).
    /// The job is `proof.jobId` (the signed field; no separate argument). The enclave's signature
    /// comes in the 64-byte EIP-2098 form (`r`, `vs` = s with the y parity in the top bit): the
    /// 65-byte form costs calldata for nothing (decision 1141).
    function submitProof(WorkProof calldata proof, bytes32 r, bytes32 vs) external;
    /// @notice Claimant reports failure before its claim lapses (claim timeout and deadline); the job
    /// becomes Failed and the requester may reclaim. The bond comes back in proportion to the claim
    /// time left, bond * (end - now) / (end - claimedAt) with end = min(claim expiry, deadline); the
    /// rest goes to the owner (ClaimBondForfeited), never to the requester. After the lapse
    /// the whole bond is forfeited at the next claim or the reclaim. See
    /// docs/decisions/1571-fail-refund-by-time-left.md and 1625-forfeited-bonds-fund-the-pool.md.
    /// Exception (decisions 1702, 1775): when the node's measurement was revoked or its TEE type
    /// disallowed since the claim (`registry.restriction` 3 or 2) and the node is Active or Exiting,
    /// the whole bond comes back (ClaimBondReturned); releaseJob likewise. A Slashed node keeps the
    /// time-left rule: its slash, not the restriction, stopped it proving.
    function failJob(bytes32 jobId, bytes32 reason) external;
    /// @notice Claimant reports a failure its enclave signed as a deterministic function of the
    /// committed workload and inputs (JobFailure, EIP-712, signature in EIP-2098 form as for
    /// submitProof). Checked as submitProof is: the claim facts (claimant, enclaveId, measurement,
    /// workloadHash, inputCommitment), the registry's proof signer, low-s recovery, the claim not
    /// lapsed, and `failedAt` within the claim (MAX_CLOCK_SKEW either side). The job becomes Failed,
    /// the whole bond is credited back to the claimant and the requester may reclaim its escrow at
    /// once. See docs/decisions/1595-attested-job-failure.md.
    function failJobAttested(JobFailure calldata failure, bytes32 r, bytes32 vs) external;
    /// @notice Verifier disputes a Proved job within its challenge window (see reasons above),
    /// passing the job's ProofFacts from its ProofSubmitted event (reverts FactsMismatch otherwise).
    function dispute(bytes32 jobId, uint16 reasonCode, ProofFacts calldata facts) external;
    /// @notice Anyone, after the window: credit escrow - fee and the bond to the claimant; the fee
    /// goes to the reward pool. Works while paused. When the job's findings pass (more than 2/3 of
    /// the round's `quorumStakeAt`: stake that could still vote left after the last finding,
    /// decision 1720) it slashes the node instead, and then also before the window's end: anyone
    /// concludes a finding as soon as it has passed (decision 1776); otherwise, before the window's
    /// end, it reverts ChallengeWindowOpen. The fee and, for disputes, the slash amount are
    /// the ones in force when the job's claim was made (decision 1700). A pool
    /// that cannot take the fee never blocks this: the fee is held for `sweepFees` (decision 1701).
    /// The caller passes the job's ProofFacts from its ProofSubmitted event (FactsMismatch otherwise).
    function finalize(bytes32 jobId, ProofFacts calldata facts) external;
    /// @notice Requester: credit the escrow back (Open; Claimed after the deadline or lapse, whose
    /// bond then goes to the owner's treasury; Claimed and running while governance has restricted
    /// the claimed node, Active or Exiting (measurement revoked, TEE type disallowed), whose whole
    /// bond then goes back to the claimant (ClaimBondReturned, decisions 1723, 1775); Failed;
    /// Slashed with the slashed stake
    /// and bond). Anything else reverts NotReclaimable.
    function reclaim(bytes32 jobId) external;
    /// @notice Pay the caller's withdrawable balance. Works while paused.
    function withdraw() external;

    /// @notice Owner (timelock). `newProtocolFeeBps` <= MAX_PROTOCOL_FEE_BPS; a fee > 0 needs a pool.
    function setParameters(
        uint64 newChallengeWindow,
        uint256 newSlashAmount,
        uint256 newClaimBond,
        uint16 newProtocolFeeBps,
        uint256 newFalseDisputeSlash
    ) external;
    function setGuardian(address newGuardian) external;
    /// @notice Anyone: pay the protocol fees held since a push failed (`feesHeld`) to the current
    /// pool's `fund()`. Returns the amount (wei, 0 when none). Reverts RewardPoolNotSet without a
    /// pool, and with the pool's own error when it refuses again (nothing moves then).
    function sweepFees() external returns (uint256 amount);
    /// @notice Protocol fees held after a failed push to the pool (wei).
    function feesHeld() external view returns (uint256);
    /// @notice Owner or guardian: stop new jobs and claims.
    function pause() external;
    /// @notice Owner: resume.
    function unpause() external;

    function getJob(bytes32 jobId) external view returns (Job memory);
    function hashWorkProof(WorkProof calldata proof) external view returns (bytes32);
    /// @notice The EIP-712 digest of a JobFailure under this market's domain.
    function hashFailure(JobFailure calldata failure) external view returns (bytes32);
    function hasDisputed(bytes32 jobId, address verifier) external view returns (bool);
    function jobCount() external view returns (uint256);
    function challengeWindow() external view returns (uint64);
    function slashAmount() external view returns (uint256);
    function claimBond() external view returns (uint256);
    function protocolFeeBps() external view returns (uint16);
    function falseDisputeSlash() external view returns (uint256);
    function totalEscrow() external view returns (uint256);
    /// @notice Sum of the claim bonds held (wei).
    function totalBonds() external view returns (uint256);
    function withdrawable(address account) external view returns (uint256);
    function totalWithdrawable() external view returns (uint256);
    function guardian() external view returns (address);
    /// @notice Where protocol fees and confirmed findings go: the registry's `rewardPool()`, which
    /// governance sets for the whole network in one call (decision 1756).
    function rewardPool() external view returns (address);
    function registry() external view returns (IFirnRegistry);
    function verifierSet() external view returns (IFirnVerifierSet);
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
