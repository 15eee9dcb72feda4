// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "./IFirnRegistry.sol";
import {IFirnVerifierSet} from "./IFirnVerifierSet.sol";

/// @title IFirnRewards
/// @notice The reward pool for contributed TEE capacity. Funded by the job market's protocol fee
/// and deposits. Each epoch pays eligible nodes pro rata
/// to stake x measured liveness, and verifiers pro rata to their work (votes reported by the
/// registry and job market, and answered liveness challenges), each unit weighted by the
/// verifier's active stake (decision 1575), and no verifier more than its share of the active
/// verifier stake (decision 1820). Epochs with points close in order: the first point of an epoch
/// closes the one worked before it (decision 1821). Liveness: a verifier issues a
/// challenge with a fresh nonce; the node's enclave signs the EIP-712 `LivenessAnswer` with its
/// registered enclave key before the challenge's deadline, in the same epoch. One physical
/// platform (platformIdHash) earns one capacity share per epoch. Claims are credited and pulled.
/// Resume fees and the registry's registration and rotation fees are not pool money: they are
/// credited to the owner's treasury (decisions 1646, 1671).
/// Invariant: totalWithdrawn <= totalAllocated <= totalReceived, and the balance is
/// totalReceived - totalWithdrawn + totalTreasuryCredit.
/// See docs/decisions/0800-economics.md.
interface IFirnRewards {
    /// @notice The typed data the enclave signs (EIP-712, domain "firn" "1", this contract).
    struct LivenessAnswer {
        bytes32 challengeId;
        bytes32 nonce;
        bytes32 enclaveId;
        uint64 epoch;
    }

    /// @notice One issued challenge.
    struct Challenge {
        bytes32 enclaveId;
        address verifier;
        uint64 epoch;
        uint64 deadline;
        bool answered;
        bytes32 nonce;
    }

    /// @notice The reward parameters in force from epoch `fromEpoch` on, until a later set's first
    /// epoch (decision 1706). Units: seconds, answers, basis points.
    struct RewardParameters {
        uint64 answerWindow;
        uint32 livenessTarget;
        uint16 epochBudgetBps;
        uint16 verifierShareBps;
        uint64 fromEpoch;
    }

    /// @notice One epoch's totals. Budgets are fixed when the epoch is closed (after it ended).
    /// `worked`: a point was earned in the epoch (counted in `openWorkedEpochs` until it is closed).
    struct Epoch {
        bool closed;
        bool worked;
        uint256 nodePoints;
        uint256 verifierPoints;
        uint256 nodeBudget;
        uint256 verifierBudget;
    }

    error NotVerifier(address caller);
    error NotReporter(address caller);
    error NodeNotEligible(bytes32 enclaveId, uint8 reason);
    error AlreadyChallenged(uint64 epoch, address verifier, bytes32 enclaveId);
    error UnknownChallenge(bytes32 challengeId);
    error AlreadyAnswered(bytes32 challengeId);
    error ChallengeExpired(bytes32 challengeId, uint64 deadline, uint64 nowTime);
    error StaleChallenge(bytes32 challengeId, uint64 epoch, uint64 currentEpoch);
    error InvalidSignature(uint8 recoverError);
    error WrongSigner(bytes32 enclaveId, address expected, address recovered);
    error PlatformAlreadyCounted(uint64 epoch, bytes32 platformIdHash, bytes32 countedEnclaveId);
    error EpochNotEnded(uint64 epoch, uint64 currentEpoch);
    error NothingToClaim(uint64 epoch, bytes32 who);
    error NothingToWithdraw(address account);
    error InvalidParameters();
    error TransferFailed(address to, uint256 amount);
    /// @notice The node missed `missedEpochs` challenged epochs (>= MAX_MISSED_EPOCHS) since its
    /// registration or last resume, answered ones in between or not (decision 1695): it is not
    /// challenged until its operator calls resumeChallenges.
    error NodeUnresponsive(bytes32 enclaveId, uint8 missedEpochs);
    /// @notice The node never answered a challenge, or missed its last challenged epoch (`missedEpochs`
    /// since its last resume), and was already challenged in this one without answering: one
    /// challenge per epoch until it answers.
    error NodeOnProbation(bytes32 enclaveId, uint8 missedEpochs);
    error NodeNotUnresponsive(bytes32 enclaveId, uint8 missedEpochs);
    error NotNodeOperator(bytes32 enclaveId, address caller);
    error ResumeFeeTooLow(uint256 sent, uint256 fee);
    /// @notice A challenge issued now would have its answer `deadline` (unix s) at or after
    /// `epochEnd`, the first second of the next epoch, when answerChallenge no longer accepts an
    /// answer for `epoch`: issue challenges at least `answerWindow` seconds before the epoch ends
    /// (decision 1590).
    error ChallengeTooLate(uint64 epoch, uint64 deadline, uint64 epochEnd);
    /// @notice The node's answers in `epoch` plus its accepted challenges still unanswered,
    /// `accepted`, reached livenessTarget: the node owes no further answer, so no verifier pays for
    /// a challenge it may let expire (decisions 1594, 1695). Challenge it again next epoch.
    error LivenessTargetReached(bytes32 enclaveId, uint64 epoch, uint32 accepted);
    /// @notice renounceOwnership is disabled: treasury credits would go to address(0). Transfer
    /// ownership instead.
    error OwnershipRenounceDisabled();
    /// @notice This pool is no longer the registry's reward pool (`registryPool` is): it takes no new
    /// challenge, answer or work report; epochs already worked here stay closable and claimable, and
    /// new work goes to `registryPool` (decision 1707).
    error PoolRetired(address registryPool);
    /// @notice moveUnallocated while this pool is still the registry's reward pool (`registryPool`):
    /// point the registry at the successor first (decision 1757).
    error PoolNotRetired(address registryPool);
    /// @notice moveUnallocated while `count` epochs in which points were earned are not closed yet:
    /// each takes its budget from the unallocated balance when it closes. Close them (closeEpoch,
    /// once they ended) and call again (decision 1757).
    error WorkedEpochsOpen(uint256 count);
    /// @notice moveUnallocated with nothing unallocated.
    error NothingToMove();
    /// @notice dropRevokedPoints on a node under no governance restriction (`reason` 0: its TEE type
    /// is allowed and its measurement allow-listed, whatever its status; decision 1726).
    error NodeNotRevoked(bytes32 enclaveId, uint8 reason);
    /// @notice The node has no points in the current epoch `epoch` to drop.
    error NothingToDrop(uint64 epoch, bytes32 enclaveId);

    event PoolFunded(address indexed from, uint256 amount);
    event ChallengeIssued(
        bytes32 indexed challengeId,
        bytes32 indexed enclaveId,
        address indexed verifier,
        uint64 epoch,
        bytes32 nonce,
        uint64 deadline
    );
    event ChallengeAnswered(
        bytes32 indexed challengeId, bytes32 indexed enclaveId, uint64 epoch, uint256 nodePoints, uint256 epochNodePoints
    );
    /// @notice A platform's capacity share in `epoch` moved from `previous` to `enclaveId`, an
    /// answering enclave of the same platform with more stake (decision 1622).
    event PlatformShareReplaced(
        uint64 indexed epoch, bytes32 indexed platformIdHash, bytes32 previous, bytes32 enclaveId
    );
    event VerifierWorkRecorded(address indexed verifier, uint64 indexed epoch, uint256 points);
    /// @notice Work reported for an account that is not an active verifier with the minimum stake
    /// (it left, or a slash deactivated it) earned no point.
    event VerifierWorkWithheld(address indexed verifier, uint64 indexed epoch);
    /// @notice The verifier point `verifier` earned in `epoch` for challenging `enclaveId` was taken
    /// back: that enclave lost its platform's share for the epoch to a co-tenant with more stake, so
    /// its answers earned nothing (decision 1670). `points`: the verifier's points for the epoch now.
    event VerifierWorkRevoked(address indexed verifier, uint64 indexed epoch, bytes32 indexed enclaveId, uint256 points);
    /// @notice Governance moved `amount` wei, the balance no epoch is owed, to `successor` (the
    /// registry's reward pool) through its `fund()` (decision 1757).
    event UnallocatedMoved(address indexed successor, uint256 amount);
    event EpochClosed(
        uint64 indexed epoch, uint256 nodeBudget, uint256 verifierBudget, uint256 nodePoints, uint256 verifierPoints
    );
    event NodeRewardClaimed(uint64 indexed epoch, bytes32 indexed enclaveId, address indexed operator, uint256 amount);
    event VerifierRewardClaimed(uint64 indexed epoch, address indexed verifier, uint256 amount);
    /// @notice The claim of `verifier`'s reward for `epoch` credited its share of the active verifier
    /// stake, less than its share of the epoch's work; `amount` wei, the difference, went back to
    /// the unallocated pool, which later epochs' budgets are paid from (decision 1820).
    event VerifierRewardWithheld(uint64 indexed epoch, address indexed verifier, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event ReporterSet(address indexed reporter, bool allowed);
    /// @notice The operator of an unresponsive node paid `fee` (credited to the owner's treasury,
    /// TreasuryCredited); it is challenged again.
    event ChallengesResumed(bytes32 indexed enclaveId, address indexed operator, uint256 fee);
    /// @notice `amount` wei of a resume fee credited to `account`, the owner at the time, to pull
    /// with withdraw (decision 1646).
    event TreasuryCredited(address indexed account, uint256 amount);
    /// @notice A parameter set that applies from epoch `fromEpoch` on (decision 1706).
    event ParametersUpdated(
        uint64 answerWindow, uint32 livenessTarget, uint16 epochBudgetBps, uint16 verifierShareBps, uint64 fromEpoch
    );
    /// @notice `points` node points of `enclaveId` in `epoch` were dropped: governance made it
    /// ineligible during the epoch (`reason` 2: TEE type withdrawn, 3: measurement revoked; decision 1708).
    event NodePointsDropped(uint64 indexed epoch, bytes32 indexed enclaveId, uint256 points, uint8 reason);

    /// @notice Add to the pool (also plain ether transfers).
    function fund() external payable;

    /// @notice Verifier: challenge an eligible node once per epoch. Returns the challenge id; the
    /// nonce (in the event and `getChallenge`) is derived from chain state at issuance. Reverts
    /// NodeUnresponsive once the node missed MAX_MISSED_EPOCHS challenged epochs since its
    /// registration or last resume (an epoch is missed when an accepted challenge of it expired
    /// unanswered; decision 1695), and NodeOnProbation for a second challenge in an epoch while the
    /// node never answered or missed its last challenged epoch, and has not answered in this epoch
    /// (check `isUnresponsive` first; decision 1576). Reverts LivenessTargetReached once the node's
    /// answers plus its open challenges in this epoch reach livenessTarget: at most livenessTarget
    /// challenges per node and epoch are accepted, each one it owes an answer (decision 1695).
    /// Reverts ChallengeTooLate(epoch, deadline, epochEnd) when now + answerWindow reaches the
    /// epoch's end: every accepted challenge leaves the node its whole answer window (decision 1590).
    /// Reverts PoolRetired once this pool is no longer the registry's reward pool (decision 1707).
    function issueChallenge(bytes32 enclaveId) external returns (bytes32 challengeId);

    /// @notice The node's operator, after the node became unresponsive: pay at least
    /// `resumeFee(enclaveId)` (wei, in this block) and clear its missed count, so verifiers challenge
    /// it again. The whole msg.value is credited to the owner's treasury (TreasuryCredited, pulled
    /// with withdraw), never to the pool, whose stakers would get it back (decision 1646). Silence
    /// then costs the attacker, per spell of verifiers' challenges, at least what those challenges
    /// cost them (decisions 1576, 1591, 1645).
    /// Reverts NotNodeOperator, NodeNotUnresponsive, ResumeFeeTooLow(sent, fee).
    function resumeChallenges(bytes32 enclaveId) external payable;

    /// @notice Credit the whole msg.value to the owner's treasury (TreasuryCredited, pulled with
    /// withdraw), outside the pool's books: the registry's sweep of registration and rotation fees
    /// pays here (decision 1671), since the pool pays nodes by stake and a large staker would get
    /// most of its own fees back. Anyone may pay; nothing here reaches an epoch's budget. A zero
    /// payment does nothing.
    function creditTreasury() external payable;

    /// @notice What resumeChallenges asks for the node now, wei: max(registry.registrationFee(),
    /// MAX_MISSED_EPOCHS x max((t x CHALLENGE_GAS + (V - t) x REFUSED_CHALLENGE_GAS) x
    /// block.basefee, peakChallengeCost(enclaveId))), V = verifierCount (at least 1), t =
    /// min(livenessTarget, V): an epoch accepts at most t challenges and every other active
    /// verifier's racing daemon pays a refused one (decisions 1591, 1594, 1695); the price is never
    /// below the dearest epoch the node missed since its last resume, so a resume timed for a cheap
    /// block still pays what the verifiers paid (1645). With livenessTarget 1 the epoch price is
    /// CHALLENGE_GAS + (V - 1) x REFUSED_CHALLENGE_GAS, as before.
    /// A caller sends it with head-room for the block its transaction lands in.
    function resumeFee(bytes32 enclaveId) external view returns (uint256);

    /// @notice Wei (a whole number of gwei, rounded up): the dearest epoch the node missed since its
    /// registration or last resume cost the verifiers, (t x CHALLENGE_GAS + (V - t) x
    /// REFUSED_CHALLENGE_GAS) x block.basefee as recorded at each accepted challenge of the epoch
    /// (see resumeFee; decisions 1645, 1695). An answer does not clear it; a resume does.
    function peakChallengeCost(bytes32 enclaveId) external view returns (uint256);

    /// @notice Challenged epochs since the node's registration or last resume, up to now, in which
    /// an accepted challenge expired unanswered (decision 1695; consecutive ones before it). An
    /// answer does not lower it; MAX_MISSED_EPOCHS makes the node unresponsive.
    function missedEpochs(bytes32 enclaveId) external view returns (uint8);

    /// @notice True when issueChallenge would revert NodeUnresponsive, NodeOnProbation or
    /// LivenessTargetReached for this node now (a daemon reads it before paying for a challenge):
    /// the node is silent, or its answers and open challenges this epoch reach its target (decisions
    /// 1576, 1695).
    function isUnresponsive(bytes32 enclaveId) external view returns (bool);

    /// @notice Anyone (the node's host relays it): the enclave's EIP-712 signature over
    /// LivenessAnswer{challengeId, nonce, enclaveId, epoch}. Counts stake points for the node, up to
    /// `livenessTarget` answers per epoch, and the issuing verifier's active stake in points. The
    /// platform's share goes to its answering enclave with the most stake, and always from a holder
    /// that is no longer eligible to an eligible one (decisions 1622, 1708). The epoch's first point
    /// closes the epoch worked before it if nobody has (EpochClosed; decision 1821). Reverts
    /// PoolRetired once this pool is no longer the registry's reward pool (decision 1707).
    function answerChallenge(bytes32 challengeId, bytes calldata signature) external;

    /// @notice Registry and job market: one work point in the current epoch for each of
    /// `verifiers`, reported only for votes whose direction was confirmed (the approvals of a round
    /// that activated, the refusals of a round that refused, the disputes of a proof that was
    /// slashed). An account that is no longer an active verifier with the minimum stake earns
    /// nothing (VerifierWorkWithheld). The epoch's first point closes the epoch worked before it
    /// if nobody has (decision 1821). Reverts NotReporter, and PoolRetired once this pool is no
    /// longer the registry's reward pool (decision 1707).
    function recordVerifierWork(address[] calldata verifiers) external;

    /// @notice Anyone, after `epoch` ended: fix its budget = epochBudgetBps of what the pool had
    /// received by the epoch's end (decision 1593) and not allocated, split into the node part and
    /// the verifier part (wei; a part with no points stays in the pool). Every earlier epoch with
    /// points is already closed: the first point of an epoch closes the one worked before it
    /// (EpochClosed in that answer's or report's transaction), so the budget is the same whoever
    /// closes which epoch when (decision 1821). Idempotent: closing a closed epoch does nothing.
    /// Reverts EpochNotEnded(epoch, currentEpoch).
    function closeEpoch(uint64 epoch) external;

    /// @notice Anyone, once this pool is retired (the registry points at another): move
    /// what no epoch is owed, totalReceived - totalAllocated - totalMoved (wei), to the registry's
    /// pool through its `fund()`, and return it. Allocated budgets (claimed or not), treasury
    /// credits and what claims of closed epochs will take are never touched; the share of void
    /// points was never owed and moves. Reverts PoolNotRetired while this is the registry's pool (or
    /// it has none), WorkedEpochsOpen while an epoch with points is not closed, NothingToMove, and
    /// with the successor's own error when its `fund()` refuses (decisions 1757, 1820).
    function moveUnallocated() external returns (uint256 amount);

    /// @notice Anyone: credit the node's share of a closed (or closable) epoch to the operator that
    /// earned it. Reverts NothingToClaim when it has no points or already claimed.
    function claimNodeReward(uint64 epoch, bytes32 enclaveId) external;

    /// @notice Anyone: credit the verifier's share of a closed (or closable) epoch, closing it first:
    /// min(verifierBudget x its points / the epoch's verifier points, verifierBudget x its largest
    /// share of the total active verifier stake at a unit of its work in the epoch), wei (decision
    /// 1820). What the cap keeps back returns to the unallocated pool (VerifierRewardWithheld), so
    /// a minority that wins every challenge slot earns no more than its stake share. Reverts
    /// EpochNotEnded, NothingToClaim(epoch, verifier as bytes32) when it has no points or already
    /// claimed.
    function claimVerifierReward(uint64 epoch, address verifier) external;

    /// @notice Pay the caller's credited rewards and, for an owner, its treasury credit of resume
    /// fees. Reverts NothingToWithdraw when both are 0, TransferFailed.
    function withdraw() external;

    /// @notice Owner (timelock): answer window (s, < epochLength), answers per node per epoch that
    /// count (>= 1), share of the undistributed pool paid per epoch (bps, 1..10000), verifiers' share
    /// of an epoch's budget (bps, <= 5000). They apply from the next epoch (currentEpoch() + 1) on:
    /// an epoch is challenged, answered and budgeted on the set in force when it began, so a change
    /// never reprices work already done (decision 1706). A second call in the same epoch replaces
    /// the first. Reverts InvalidParameters.
    function setParameters(uint64 answerWindow, uint32 livenessTarget, uint16 epochBudgetBps, uint16 verifierShareBps)
        external;

    /// @notice Anyone (a verifier daemon, on MeasurementRevoked or AllowedTeeTypesSet): drop the
    /// current epoch's node points of `enclaveId` after governance restricted the code it runs
    /// (measurement revoked, TEE type withdrawn; whatever its status, so an exit does not dodge it),
    /// with the verifier points its answers earned (decision 1708). Its platform's share goes to the
    /// platform's best eligible co-tenant that answered this epoch, credited for those answers;
    /// the points it does not take stay void in the epoch's totals, so no other node or verifier
    /// gains (`voidPoints`; decision 1726). Points of epochs that ended before are kept. Reverts
    /// NodeNotRevoked(enclaveId, 0), NothingToDrop(epoch, enclaveId).
    function dropRevokedPoints(bytes32 enclaveId) external;

    /// @notice Owner: allow a contract (registry, job market) to report verifier work.
    function setReporter(address reporter, bool allowed) external;

    function currentEpoch() external view returns (uint64);
    function epochLength() external view returns (uint64);
    function genesis() external view returns (uint64);
    function getEpoch(uint64 epoch) external view returns (Epoch memory);
    function getChallenge(bytes32 challengeId) external view returns (Challenge memory);
    function nodePoints(uint64 epoch, bytes32 enclaveId) external view returns (uint256);
    function nodeAnswers(uint64 epoch, bytes32 enclaveId) external view returns (uint32);
    function verifierPoints(uint64 epoch, address verifier) external view returns (uint256);
    /// @notice Points of `epoch` dropped from revoked nodes and kept ownerless in its totals
    /// (decision 1726): `getEpoch(epoch)` totals include them, and their share of the budgets is
    /// never allocated (it stays in the pool).
    function voidPoints(uint64 epoch) external view returns (uint256 nodeVoid, uint256 verifierVoid);
    /// @notice What claimNodeReward would credit now, wei (0 when the epoch has not ended, the node
    /// has no points or claimed): from the budget its close fixed once closed, else from the one
    /// closing it now would fix, the same (decision 1821).
    function pendingNodeReward(uint64 epoch, bytes32 enclaveId) external view returns (uint256);
    /// @notice What claimVerifierReward would credit now, wei, the stake-share cap applied (decision
    /// 1820); 0 when the epoch has not ended, the verifier has no points or claimed. A closed
    /// epoch's budget is the one its close fixed (decision 1821).
    function pendingVerifierReward(uint64 epoch, address verifier) external view returns (uint256);
    /// @notice What withdraw pays `account` now, wei: its credited rewards plus its treasury credit.
    function withdrawable(address account) external view returns (uint256);
    /// @notice Resume fees credited to `account` (an owner at the time) and not yet withdrawn, wei.
    function treasuryCredit(address account) external view returns (uint256);
    /// @notice Resume fees credited to owners and not yet withdrawn, wei; not part of the pool.
    function totalTreasuryCredit() external view returns (uint256);
    function hashLivenessAnswer(LivenessAnswer calldata answer) external view returns (bytes32);
    function totalReceived() external view returns (uint256);
    function totalAllocated() external view returns (uint256);
    function totalWithdrawn() external view returns (uint256);
    /// @notice Wei moved to successor pools by moveUnallocated (decision 1757).
    function totalMoved() external view returns (uint256);
    /// @notice Epochs in which a point was earned and that are not closed yet (decision 1757): 0 or
    /// 1, the last worked epoch, since the first point of an epoch closes the one before (1821).
    function openWorkedEpochs() external view returns (uint256);
    /// @notice The parameter set in force during `epoch` (for a future epoch: the latest set, which
    /// applies from its `fromEpoch`). `parametersAt(currentEpoch() + 1)` is what the last
    /// setParameters wrote (decision 1706).
    function parametersAt(uint64 epoch) external view returns (RewardParameters memory);
    /// @notice The answer window (s) in force in the current epoch.
    function answerWindow() external view returns (uint64);
    /// @notice The liveness target (answers) in force in the current epoch.
    function livenessTarget() external view returns (uint32);
    /// @notice The epoch budget (bps) in force in the current epoch.
    function epochBudgetBps() external view returns (uint16);
    /// @notice The verifiers' share (bps) in force in the current epoch.
    function verifierShareBps() external view returns (uint16);
    function isReporter(address account) external view returns (bool);
    function registry() external view returns (IFirnRegistry);
    function verifierSet() external view returns (IFirnVerifierSet);
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
