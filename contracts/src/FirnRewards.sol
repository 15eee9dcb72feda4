// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {IFirnRegistry} from "./interfaces/IFirnRegistry.sol";
import {IFirnRewards} from "./interfaces/IFirnRewards.sol";
import {IFirnVerifierSet} from "./interfaces/IFirnVerifierSet.sol";

/// @title FirnRewards
/// @notice The reward pool for contributed TEE capacity. Verifiers challenge nodes with a fresh
/// nonce; a node proves it is running by its enclave signing the EIP-712 LivenessAnswer with its
/// registered key before the deadline and within the epoch; each counted answer earns the node's
/// stake in points, up to `livenessTarget` answers per epoch, and one physical platform counts once
/// per epoch. After an epoch ends, a share of the undistributed pool is split between nodes (by
/// points) and verifiers (by work x active stake, each capped at its share of the active verifier
/// stake, decision 1820); epochs with points close in order (1821). Credits are pulled. What it
/// proves: the holder of the registered enclave key answered in time. What it does not: that the node served jobs well.
/// Parameters set during an epoch apply from the next one, so work already done is never repriced
/// (decision 1706); the pool takes new work only while it is the registry's reward pool (1707).
/// See docs/decisions/0800-economics.md.
contract FirnRewards is IFirnRewards, EIP712, Ownable, ReentrancyGuard {
    using Checkpoints for Checkpoints.Trace208;

    /// @notice EIP-712 type hash of LivenessAnswer; the field list must match the TypeScript types.
    bytes32 public constant LIVENESS_ANSWER_TYPEHASH =
        keccak256("LivenessAnswer(bytes32 challengeId,bytes32 nonce,bytes32 enclaveId,uint64 epoch)");
    uint16 private constant MAX_VERIFIER_SHARE_BPS = 5000;
    /// @dev The whole active verifier stake in VerifierEpoch.share's fixed point (decision 1820).
    uint256 private constant SHARE_ONE = 1e18;
    /// @notice Missed challenged epochs, counted since the node's registration or last resume, after
    /// which it is no longer challenged (decisions 1576, 1695). An epoch is missed when one of its
    /// accepted challenges expired unanswered; an answer does not give a missed epoch back. Until its
    /// first answer, and after a missed epoch until it answers, only one challenge per epoch is
    /// accepted (probation). Verifiers' gas on a node is bounded by MAX_MISSED_EPOCHS missed epochs
    /// per resume, whatever their number; resuming costs its operator `resumeFee(enclaveId)`, at
    /// least the registration fee.
    uint8 public constant MAX_MISSED_EPOCHS = 3;
    /// @notice Gas one `issueChallenge` transaction costs a verifier, intrinsic gas included, rounded
    /// up: 207,919 on anvil for the pool's first challenge (its counter written from zero; the forge
    /// gas report's isolated maximum is 207,931, 210,383 since the liveness-target read of decision
    /// 1594; measured cold with the test call's overhead at a non-zero base fee, 217,136 since the
    /// challenge-cost record of decision 1645; 220,893 since the open-challenge count and the
    /// epoch's price of decision 1695, whose dearest case the 220,000 of before no longer bounded; about
    /// 1.2k more since the registry-pool check of decision 1707),
    /// 174,058 for a later one (decision 1591).
    /// `resumeFee(enclaveId)` charges MAX_MISSED_EPOCHS epochs of min(livenessTarget, verifiers) of
    /// them at the higher of the block's base fee and the dearest epoch the node missed (decisions
    /// 1645, 1695), so a resume pays for the challenges verifiers spend on a node that stays silent.
    uint256 public constant CHALLENGE_GAS = 230_000;
    /// @notice Gas one refused `issueChallenge` transaction (NodeOnProbation, the race every daemon
    /// runs at an epoch's start for a node on probation, LivenessTargetReached for a node whose
    /// target is covered) costs the verifier that sent it, intrinsic gas included, rounded up: 68,351
    /// measured cold with the test call's overhead (decision 1594); every refusal comes before any
    /// write since decision 1695. `resumeFee(enclaveId)` charges MAX_MISSED_EPOCHS x (verifierCount -
    /// min(livenessTarget, verifierCount)) of them on top of the accepted challenges.
    uint256 public constant REFUSED_CHALLENGE_GAS = 75_000;
    /// @dev IFirnRegistry.ineligibility reasons that are governance restrictions (TEE type withdrawn,
    /// measurement revoked), the ones dropRevokedPoints acts on (decision 1708).
    uint8 private constant INELIGIBLE_TEE_TYPE = 2;
    uint8 private constant INELIGIBLE_MEASUREMENT = 3;

    struct NodeEpoch {
        uint256 points;
        uint32 answers;
        bool claimed;
        address operator;
    }

    /// @dev One slot. `points`: work x active stake (decision 1575; a stake saturates at 2^96 - 1
    /// wei, so 2^32 units of work fit). `share`: the largest share of the total active verifier
    /// stake (SHARE_ONE = all of it) the verifier held at a unit of work of the epoch; its payout
    /// for the epoch is at most that share of the verifier budget (decision 1820).
    struct VerifierEpoch {
        uint128 points;
        uint64 share;
        bool claimed;
    }

    /// @dev Points dropped from revoked nodes in an epoch that stay in the epoch's totals with no
    /// owner (decision 1726): their share of the epoch's budgets is never allocated and stays in the
    /// pool, so a drop moves no money to other nodes or verifiers.
    struct VoidPoints {
        uint256 node;
        uint256 verifier;
    }

    /// @dev One verifier point granted for an answer of a platform's share holder (decision 1670):
    /// the challenging verifier and the points it earned (its active stake, saturating at 2^96 - 1
    /// wei), taken back when the holder is replaced in the same epoch.
    struct AnswerCredit {
        address verifier;
        uint96 points;
    }

    /// @dev Per node, one slot. Epochs are stored plus one (0 = never). `missed`: missed epochs since
    /// registration or the last resume, settled at the first challenge of a later epoch (decision
    /// 1695). `lastMissed`: the last settled challenged epoch was missed (probation). `open`: accepted
    /// challenges of the epoch `challengedTag` not answered yet. `epochCost` / `peakCost` (gwei,
    /// rounded up, saturating): the dearest price of the epoch `challengedTag` (its accepted
    /// challenges' `_epochCost` at their base fee), and the dearest missed epoch since the last
    /// resume (decisions 1645, 1695).
    struct NodeLiveness {
        uint64 challengedTag;
        uint64 answeredTag;
        uint8 missed;
        bool lastMissed;
        uint16 open;
        uint48 epochCost;
        uint48 peakCost;
    }

    IFirnRegistry private immutable _registry;
    IFirnVerifierSet private immutable _verifierSet;
    uint64 private immutable _epochLength;
    uint64 private immutable _genesis;

    /// @dev The parameters governance set last, in force from `fromEpoch` on (one slot, read by
    /// every challenge and answer). Earlier sets are in `_paramHistory` (decision 1706).
    RewardParameters private _params;
    uint256 private _challengeCount;
    uint256 private _totalReceived;
    uint256 private _totalAllocated;
    uint256 private _totalWithdrawn;
    /// @dev Sent to successor pools by moveUnallocated (decision 1757): out of the books like
    /// an allocation, but owed to no one here.
    uint256 private _totalMoved;
    /// @dev The last epoch in which a point was earned, plus one (0: none). Its first point closes
    /// the worked epoch before it, so it is the only worked epoch that can be open (decision 1821);
    /// moveUnallocated waits until it is closed (1757).
    uint64 private _lastWorkedTag;
    /// @dev Resume, registration and rotation fees credited to owners and not yet withdrawn
    /// (decisions 1646, 1671): outside the pool's books (received, allocated, withdrawn).
    uint256 private _totalTreasuryCredit;

    mapping(bytes32 challengeId => Challenge) private _challenges;
    mapping(uint64 epoch => Epoch) private _epochs;
    mapping(uint64 epoch => mapping(address verifier => mapping(bytes32 enclaveId => bool))) private _challenged;
    mapping(uint64 epoch => mapping(bytes32 enclaveId => NodeEpoch)) private _nodeEpochs;
    mapping(uint64 epoch => mapping(address verifier => VerifierEpoch)) private _verifierEpochs;
    mapping(uint64 epoch => mapping(bytes32 platformIdHash => bytes32 enclaveId)) private _platformHolder;
    /// @dev The platform's best answering enclave other than its share holder in the epoch (eligible
    /// when recorded; most stake, ties in the holder order of decision 1622): the one that takes the
    /// share, with its earlier answers, when the holder's points are dropped (decision 1726). Never
    /// the holder: cleared (or set to the replaced holder) on every path where it takes the share
    /// (decision 1782), so the next co-tenant to answer can be recorded.
    mapping(uint64 epoch => mapping(bytes32 platformIdHash => bytes32 enclaveId)) private _platformRunnerUp;
    mapping(uint64 epoch => VoidPoints) private _voidPoints;
    /// @dev The verifier point each answer of a platform's share holder earned in the epoch, by the
    /// answer's index in the node's epoch count (NodeEpoch.answers before it; decision 1670). Keyed
    /// by that index rather than pushed to an array: no length slot to write on each answer.
    mapping(uint64 epoch => mapping(bytes32 enclaveId => mapping(uint32 answer => AnswerCredit))) private
        _answerCredits;
    mapping(address account => uint256) private _withdrawable;
    mapping(address account => uint256) private _treasuryCredit;
    mapping(address account => bool) private _reporters;
    mapping(bytes32 enclaveId => NodeLiveness) private _liveness;
    /// @dev key: an epoch E in which the pool was first funded; value: `_totalReceived` before that
    /// funding (what the pool had received by the end of every epoch before E). Decision 1593.
    Checkpoints.Trace208 private _receivedBefore;
    /// @dev key: the first epoch a parameter set applies to; value: that set packed (_pack). An
    /// epoch closed late is budgeted on the set it ran under (decision 1706).
    Checkpoints.Trace208 private _paramHistory;

    /// @param initialOwner the deployer during bootstrap, then the timelock (FirnGovernance)
    /// @param epochLength_ seconds per epoch (> 0; fixed for the life of the contract)
    /// @param answerWindow_ seconds a node has to answer a challenge
    /// @param livenessTarget_ answers per node per epoch that earn points (>= 1)
    /// @param epochBudgetBps_ share of the undistributed pool an epoch pays (1..10000)
    /// @param verifierShareBps_ verifiers' share of an epoch's budget (<= 5000)
    constructor(
        address initialOwner,
        IFirnRegistry registry_,
        IFirnVerifierSet verifierSet_,
        uint64 epochLength_,
        uint64 answerWindow_,
        uint32 livenessTarget_,
        uint16 epochBudgetBps_,
        uint16 verifierShareBps_
    ) EIP712("firn", "1") Ownable(initialOwner) {
        if (epochLength_ == 0) revert InvalidParameters();
        _registry = registry_;
        _verifierSet = verifierSet_;
        _epochLength = epochLength_;
        _genesis = uint64(block.timestamp);
        _setParameters(answerWindow_, livenessTarget_, epochBudgetBps_, verifierShareBps_, 0);
    }

    receive() external payable {
        _fund();
    }

    // ---------------------------------------------------------------- governance

    /// @notice Disabled (reverts OwnershipRenounceDisabled): the owner is the treasury that
    /// registration, rotation and penalty fees are credited to (decision 1703).
    function renounceOwnership() public pure override {
        revert OwnershipRenounceDisabled();
    }

    /// @inheritdoc IFirnRewards
    function setParameters(uint64 answerWindow_, uint32 livenessTarget_, uint16 epochBudgetBps_, uint16 verifierShareBps_)
        external
        onlyOwner
    {
        // From the next epoch: points already earned in this one keep the terms they were earned
        // under (decision 1706).
        _setParameters(answerWindow_, livenessTarget_, epochBudgetBps_, verifierShareBps_, _currentEpoch() + 1);
    }

    /// @inheritdoc IFirnRewards
    function setReporter(address reporter, bool allowed) external onlyOwner {
        _reporters[reporter] = allowed;
        emit ReporterSet(reporter, allowed);
    }

    // ---------------------------------------------------------------- funding and liveness

    /// @inheritdoc IFirnRewards
    function fund() external payable {
        _fund();
    }

    /// @inheritdoc IFirnRewards
    function issueChallenge(bytes32 enclaveId) external returns (bytes32 challengeId) {
        _requireRegistryPool();
        if (!_verifierSet.isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        uint8 reason = _registry.ineligibility(enclaveId);
        if (reason != 0) revert NodeNotEligible(enclaveId, reason);
        uint64 epoch = _currentEpoch();
        RewardParameters memory params = _paramsAt(epoch);
        // The whole answer window inside the epoch (decision 1590): answerChallenge refuses an
        // answer from another epoch, so a later deadline would let a verifier, first to challenge a
        // node on probation, make it miss the epoch through no fault of its own.
        uint64 deadline = uint64(block.timestamp) + params.answerWindow;
        uint64 epochEnd = _genesis + (epoch + 1) * _epochLength;
        if (deadline >= epochEnd) revert ChallengeTooLate(epoch, deadline, epochEnd);
        if (_challenged[epoch][msg.sender][enclaveId]) revert AlreadyChallenged(epoch, msg.sender, enclaveId);
        // Every refusal below comes before any write, so a racing daemon that loses pays reads only
        // (REFUSED_CHALLENGE_GAS; decisions 1594, 1695).
        NodeLiveness memory nl = _liveness[enclaveId];
        uint64 tag = epoch + 1;
        uint32 target = params.livenessTarget;
        if (nl.challengedTag != tag) {
            // First challenge of the epoch: settle the last challenged epoch (answered or missed).
            uint8 missed = _missedAt(nl, tag);
            if (missed >= MAX_MISSED_EPOCHS) revert NodeUnresponsive(enclaveId, missed);
            nl.peakCost = _peakAt(nl, tag);
            nl.lastMissed = missed != nl.missed;
            nl.missed = missed;
            nl.challengedTag = tag;
            nl.open = 0;
            nl.epochCost = 0;
        } else if ((nl.lastMissed || nl.answeredTag == 0) && nl.answeredTag != tag) {
            // Probation: a node that never answered, or missed its last challenged epoch, gets one
            // unanswered challenge per epoch; its first answer lets every verifier challenge it.
            revert NodeOnProbation(enclaveId, nl.missed);
        }
        // The node owes `livenessTarget` answers per epoch and no more (decisions 1594, 1695): no
        // challenge beyond what it owes is accepted, answered or still open, so every accepted one
        // is one it must answer, and one it lets expire is a missed epoch its operator pays for.
        uint32 owed = _nodeEpochs[epoch][enclaveId].answers + nl.open;
        if (owed >= target || nl.open == type(uint16).max) revert LivenessTargetReached(enclaveId, epoch, owed);
        nl.open += 1;
        // What this epoch's race costs the verifiers, at the base fee they pay now (decision 1645):
        // the node's resume fee is priced on the dearest epoch it missed, not on the base fee of the
        // block its operator picks to resume in.
        uint48 cost = _toGwei(_epochCost(block.basefee, target));
        if (cost > nl.epochCost) nl.epochCost = cost;
        _liveness[enclaveId] = nl;
        _challenged[epoch][msg.sender][enclaveId] = true;

        challengeId = keccak256(abi.encode(block.chainid, address(this), ++_challengeCount));
        // Unknown before this block: an answer signed ahead of time cannot match it.
        bytes32 nonce = keccak256(abi.encode(block.prevrandao, blockhash(block.number - 1), challengeId, msg.sender));
        _challenges[challengeId] = Challenge({
            enclaveId: enclaveId,
            verifier: msg.sender,
            epoch: epoch,
            deadline: deadline,
            answered: false,
            nonce: nonce
        });
        emit ChallengeIssued(challengeId, enclaveId, msg.sender, epoch, nonce, deadline);
    }

    /// @inheritdoc IFirnRewards
    function answerChallenge(bytes32 challengeId, bytes calldata signature) external {
        _requireRegistryPool();
        Challenge storage c = _challenges[challengeId];
        if (c.verifier == address(0)) revert UnknownChallenge(challengeId);
        if (c.answered) revert AlreadyAnswered(challengeId);
        if (block.timestamp > c.deadline) revert ChallengeExpired(challengeId, c.deadline, uint64(block.timestamp));
        uint64 epoch = _currentEpoch();
        if (c.epoch != epoch) revert StaleChallenge(challengeId, c.epoch, epoch);
        bytes32 enclaveId = c.enclaveId;
        IFirnRegistry.NodeSummary memory node = _registry.getNodeSummary(enclaveId);
        if (node.ineligibility != 0) revert NodeNotEligible(enclaveId, node.ineligibility);

        bytes32 digest = _hashAnswer(challengeId, c.nonce, enclaveId, epoch);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature(uint8(err));
        if (signer != node.enclaveAddress) revert WrongSigner(enclaveId, node.enclaveAddress, signer);

        c.answered = true;
        _markAnswered(enclaveId, epoch);
        // One capacity share per physical platform and epoch, whatever number of apps it hosts. A
        // timely answer of another enclave on a counted platform still proves it live (so it never
        // counts as missed: another tenant of the platform answering first cannot make it
        // unresponsive), but earns no points, nor any for its verifier.
        // The share goes to the platform's answering enclave with the most stake (decision 1622): a
        // co-tenant answering first with less stake is replaced, and its points for the epoch leave
        // the epoch's total; ties keep the first.
        Epoch storage ep = _epochs[epoch];
        bytes32 holder = _platformHolder[epoch][node.platformIdHash];
        if (holder == bytes32(0)) {
            _platformHolder[epoch][node.platformIdHash] = enclaveId;
        } else if (holder != enclaveId && !_contestShare(epoch, enclaveId, node, holder)) {
            // Counted towards the liveness target (no points): a node that answered its target
            // is not challenged again in the epoch (decision 1594), holder or not. Its answers
            // are credited if it takes the share when the holder's points are dropped (1726).
            NodeEpoch storage other = _nodeEpochs[epoch][enclaveId];
            if (other.operator == address(0)) other.operator = node.operator;
            other.answers += 1;
            emit ChallengeAnswered(challengeId, enclaveId, epoch, other.points, ep.nodePoints);
            return;
        }

        NodeEpoch storage ne = _nodeEpochs[epoch][enclaveId];
        if (ne.operator == address(0)) ne.operator = node.operator;
        if (ne.answers < _paramsAt(epoch).livenessTarget) {
            ne.points += node.stake;
            uint256 nodePointsBefore = ep.nodePoints;
            if (nodePointsBefore == 0) _noteWorked(ep, epoch);
            ep.nodePoints = nodePointsBefore + node.stake;
        }
        uint32 index = ne.answers;
        ne.answers = index + 1;
        emit ChallengeAnswered(challengeId, enclaveId, epoch, ne.points, ep.nodePoints);
        uint96 granted = _addVerifierPoint(c.verifier, epoch);
        if (granted != 0) _answerCredits[epoch][enclaveId][index] = AnswerCredit(c.verifier, granted);
    }

    /// @dev `enclaveId` (eligible, summary `node`) answered on a platform whose share `holder` holds
    /// in `epoch`. Returns true when it takes the share (decisions 1622, 1708): the holder's node
    /// points leave the epoch's total with the verifier points its answers earned (1670), and an
    /// eligible holder replaced by more stake becomes the platform's next in line when it outranks
    /// the one recorded or this enclave was the one recorded; an enclave that takes the share is
    /// never left recorded as next in line (decision 1782). Else records
    /// `enclaveId` as next in line when it outranks the one recorded (1726) and returns false.
    /// A holder that governance made ineligible (revoked measurement, withdrawn TEE type) loses its
    /// points exactly as `dropRevokedPoints` takes them, whichever comes first: they stay void in
    /// the epoch's total, its next in line takes the share with its earlier answers, and this answer
    /// then counts as it would after the drop (decision 1777).
    function _contestShare(uint64 epoch, bytes32 enclaveId, IFirnRegistry.NodeSummary memory node, bytes32 holder)
        private
        returns (bool)
    {
        (bool takes, bool holderEligible, uint256 holderStake) =
            _takesPlatformShare(epoch, enclaveId, node.stake, holder);
        if (!takes) {
            _noteRunnerUp(epoch, node.platformIdHash, enclaveId, node.stake);
            return false;
        }
        if (holderEligible) {
            // The next in line never names the holder (decision 1782): if this enclave was next in
            // line, the holder it replaces is now (eligible, outranked only by this enclave).
            if (_platformRunnerUp[epoch][node.platformIdHash] == enclaveId) {
                _platformRunnerUp[epoch][node.platformIdHash] = holder;
            } else {
                _noteRunnerUp(epoch, node.platformIdHash, holder, holderStake);
            }
        } else if (_dropIfRevoked(epoch, holder, node.platformIdHash)) {
            bytes32 next = _platformHolder[epoch][node.platformIdHash];
            // This enclave was next in line: it holds the share with its earlier answers.
            if (next == enclaveId) return true;
            // Another next in line took it (eligible): this answer competes with it as usual.
            if (next != holder) return _contestShare(epoch, enclaveId, node, next);
            // Nobody took it: the share is free, the dropped holder has no points left to move.
        } else if (_platformRunnerUp[epoch][node.platformIdHash] == enclaveId) {
            // Takes the share from a holder that left by its own act or a slash (1708): no longer
            // next in line (decision 1782), so a later eligible co-tenant's answer can be recorded
            // and is the one a drop of this enclave's points promotes.
            delete _platformRunnerUp[epoch][node.platformIdHash];
        }
        NodeEpoch storage replaced = _nodeEpochs[epoch][holder];
        _epochs[epoch].nodePoints -= replaced.points;
        emit PlatformShareReplaced(epoch, node.platformIdHash, holder, enclaveId);
        replaced.points = 0;
        _platformHolder[epoch][node.platformIdHash] = enclaveId;
        // The replaced holder's answers earn the platform nothing in the end, so neither do
        // their challenges (decision 1670): the verifier points go with the node points.
        _revokeAnswerCredits(epoch, holder, replaced.answers, false);
        return true;
    }

    /// @dev The node answered one of its open challenges of `epoch` (the current one, so the slot's
    /// open count is this epoch's). A node that reaches its target owes nothing more (a target
    /// lowered during the epoch leaves challenges beyond it open): none of them makes the epoch
    /// missed (decision 1695).
    function _markAnswered(bytes32 enclaveId, uint64 epoch) private {
        NodeLiveness storage nl = _liveness[enclaveId];
        uint16 open = nl.open;
        if (open != 0) --open;
        if (_nodeEpochs[epoch][enclaveId].answers + 1 >= _paramsAt(epoch).livenessTarget) open = 0;
        nl.open = open;
        nl.answeredTag = epoch + 1;
    }

    /// @dev Takes back every verifier point the answers of `enclaveId` earned in `epoch` while it
    /// held its platform's share, and forgets them (decision 1670). The node's answers in an epoch
    /// come from distinct verifiers (one challenge per verifier, node and epoch), so the loop is
    /// bounded by the verifier count; answers that earned no point have no credit. `keepVoid`: the
    /// points stay in the epoch's total as void points (a drop, decision 1726) instead of leaving it
    /// (a replacement by a co-tenant, 1670).
    function _revokeAnswerCredits(uint64 epoch, bytes32 enclaveId, uint32 answers, bool keepVoid) private {
        mapping(uint32 => AnswerCredit) storage credits = _answerCredits[epoch][enclaveId];
        uint256 revoked;
        for (uint32 i = 0; i < answers; ++i) {
            AnswerCredit memory credit = credits[i];
            if (credit.points == 0) continue;
            delete credits[i];
            VerifierEpoch storage ve = _verifierEpochs[epoch][credit.verifier];
            ve.points -= credit.points;
            revoked += credit.points;
            emit VerifierWorkRevoked(credit.verifier, epoch, enclaveId, ve.points);
        }
        if (revoked == 0) return;
        if (keepVoid) _voidPoints[epoch].verifier += revoked;
        else _epochs[epoch].verifierPoints -= revoked;
    }

    /// @dev Records `enclaveId` (eligible, stake `stake`, an answer of it counted on `platformIdHash`
    /// in `epoch` without the share) as the platform's next in line when it outranks the one
    /// recorded, or that one is no longer eligible (decision 1726). One summary read at most.
    function _noteRunnerUp(uint64 epoch, bytes32 platformIdHash, bytes32 enclaveId, uint256 stake) private {
        bytes32 current = _platformRunnerUp[epoch][platformIdHash];
        if (current == enclaveId) return;
        if (current != bytes32(0)) {
            (bool outranks,,) = _takesPlatformShare(epoch, enclaveId, stake, current);
            if (!outranks) return;
        }
        _platformRunnerUp[epoch][platformIdHash] = enclaveId;
    }

    /// @dev True when `enclaveId` (eligible, stake `stake`) takes the platform's share from `holder`
    /// in `epoch`: always from a holder that is no longer eligible (revoked measurement, withdrawn
    /// TEE type, exit or slash: the share goes to the enclave that can still prove the platform live,
    /// decision 1708); else more stake, or equal stake and first in an order fixed per epoch before
    /// anyone answers (not who answered first, which a colluding verifier chooses), so equal tenants
    /// hold the share in turn (decision 1622).
    /// Also returns whether `holder` is eligible and its stake (wei), read for the comparison.
    function _takesPlatformShare(uint64 epoch, bytes32 enclaveId, uint256 stake, bytes32 holder)
        private
        view
        returns (bool takes, bool holderEligible, uint256 holderStake)
    {
        IFirnRegistry.NodeSummary memory h = _registry.getNodeSummary(holder);
        holderStake = h.stake;
        if (h.ineligibility != 0) return (true, false, holderStake);
        if (stake != holderStake) return (stake > holderStake, true, holderStake);
        return (keccak256(abi.encode(epoch, enclaveId)) < keccak256(abi.encode(epoch, holder)), true, holderStake);
    }

    /// @inheritdoc IFirnRewards
    function dropRevokedPoints(bytes32 enclaveId) external {
        // The restriction itself, whatever the node's status: an exit or a slash in the block of the
        // revocation does not hide it (decision 1726).
        uint8 reason = _registry.restriction(enclaveId);
        if (reason != INELIGIBLE_TEE_TYPE && reason != INELIGIBLE_MEASUREMENT) revert NodeNotRevoked(enclaveId, reason);
        uint64 epoch = _currentEpoch();
        uint256 points = _nodeEpochs[epoch][enclaveId].points;
        if (points == 0) revert NothingToDrop(epoch, enclaveId);
        _dropPoints(epoch, enclaveId, _registry.getNodeSummary(enclaveId).platformIdHash, points, reason);
    }

    /// @dev Drops the `epoch` points of `holder` (no longer eligible, holding `platformIdHash`'s
    /// share) when governance restricted it (revoked measurement, withdrawn TEE type), as
    /// `dropRevokedPoints` does; returns whether it did (false: another reason, or no points). One
    /// registry read; called only for an ineligible holder that an eligible answer contests (1777).
    function _dropIfRevoked(uint64 epoch, bytes32 holder, bytes32 platformIdHash) private returns (bool) {
        uint8 reason = _registry.restriction(holder);
        if (reason != INELIGIBLE_TEE_TYPE && reason != INELIGIBLE_MEASUREMENT) return false;
        uint256 points = _nodeEpochs[epoch][holder].points;
        if (points == 0) return false;
        _dropPoints(epoch, holder, platformIdHash, points, reason);
        return true;
    }

    /// @dev The drop of decisions 1708, 1726 and 1777, whatever path makes it: `points` (> 0) of
    /// `enclaveId`, restricted by governance for `reason`, leave it in `epoch`; its verifier credits
    /// and what its platform's next in line does not take stay void in the totals.
    function _dropPoints(uint64 epoch, bytes32 enclaveId, bytes32 platformIdHash, uint256 points, uint8 reason)
        private
    {
        NodeEpoch storage ne = _nodeEpochs[epoch][enclaveId];
        ne.points = 0;
        emit NodePointsDropped(epoch, enclaveId, points, reason);
        // As for a replaced platform holder (decision 1670): answers that end up earning nothing
        // earn their verifiers nothing either; their points stay void in the epoch's total.
        _revokeAnswerCredits(epoch, enclaveId, ne.answers, true);
        // Only a holder has points: its platform's next in line, if still eligible, takes the share
        // with its earlier answers; what it does not take stays void, so no other platform gains
        // from a guardian act (decisions 1702, 1726).
        uint256 credited = _promoteRunnerUp(epoch, platformIdHash, enclaveId);
        if (credited > points) _epochs[epoch].nodePoints += credited - points;
        else _voidPoints[epoch].node += points - credited;
    }

    /// @dev Gives `platformIdHash`'s share in `epoch`, whose holder `dropped` lost its points, to the
    /// platform's next in line when it is still eligible: its answers of the epoch (up to the
    /// target) earn its current stake each. Returns the node points credited (0: none, the share
    /// stays free for the next eligible answer). Its verifiers earned no point for those answers
    /// and get none (decision 1726). Never promotes `dropped` itself nor an enclave no longer
    /// eligible; the record is cleared either way (decision 1782).
    function _promoteRunnerUp(uint64 epoch, bytes32 platformIdHash, bytes32 dropped) private returns (uint256 credited) {
        bytes32 next = _platformRunnerUp[epoch][platformIdHash];
        if (next == bytes32(0)) return 0;
        delete _platformRunnerUp[epoch][platformIdHash];
        // Never the dropped node itself (decision 1782; no path records a holder as its own next in
        // line, this is the last guard).
        if (next == dropped) return 0;
        IFirnRegistry.NodeSummary memory s = _registry.getNodeSummary(next);
        if (s.ineligibility != 0) return 0;
        _platformHolder[epoch][platformIdHash] = next;
        NodeEpoch storage ne = _nodeEpochs[epoch][next];
        uint32 target = _paramsAt(epoch).livenessTarget;
        uint32 counted = ne.answers < target ? ne.answers : target;
        credited = s.stake * counted;
        ne.points = credited;
        if (ne.operator == address(0)) ne.operator = s.operator;
        emit PlatformShareReplaced(epoch, platformIdHash, dropped, next);
    }

    /// @inheritdoc IFirnRewards
    function resumeChallenges(bytes32 enclaveId) external payable {
        IFirnRegistry.NodeSummary memory node = _registry.getNodeSummary(enclaveId);
        if (msg.sender != node.operator) revert NotNodeOperator(enclaveId, msg.sender);
        NodeLiveness storage nl = _liveness[enclaveId];
        uint64 tag = _currentEpoch() + 1;
        uint8 missed = _missedAt(nl, tag);
        if (missed < MAX_MISSED_EPOCHS) revert NodeNotUnresponsive(enclaveId, missed);
        uint256 fee = _resumeFee(_peakAt(nl, tag));
        if (msg.value < fee) revert ResumeFeeTooLow(msg.value, fee);
        delete _liveness[enclaveId];
        // To the owner's treasury, never the pool (decision 1646): the pool pays nodes by stake, so a
        // large staker would get most of its own fee back.
        emit ChallengesResumed(enclaveId, msg.sender, msg.value);
        _creditTreasury(msg.value);
    }

    /// @inheritdoc IFirnRewards
    function creditTreasury() external payable {
        if (msg.value != 0) _creditTreasury(msg.value);
    }

    /// @dev Credits `amount` wei to the owner (governance treasury), outside the pool's books
    /// (decisions 1646, 1671).
    function _creditTreasury(uint256 amount) private {
        address treasury = owner();
        _treasuryCredit[treasury] += amount;
        _totalTreasuryCredit += amount;
        emit TreasuryCredited(treasury, amount);
    }

    /// @inheritdoc IFirnRewards
    function recordVerifierWork(address[] calldata verifiers) external {
        if (!_reporters[msg.sender]) revert NotReporter(msg.sender);
        _requireRegistryPool();
        uint64 epoch = _currentEpoch();
        for (uint256 i = 0; i < verifiers.length; ++i) {
            _addVerifierPoint(verifiers[i], epoch);
        }
    }

    // ---------------------------------------------------------------- epochs and claims

    /// @inheritdoc IFirnRewards
    function closeEpoch(uint64 epoch) external {
        _close(epoch);
    }

    /// @inheritdoc IFirnRewards
    /// @dev Safe once every worked epoch is closed: an epoch with no point allocates nothing when it
    /// closes, and a retired pool takes no new point (decision 1707), so what is unallocated now
    /// is owed to no one until the registry points back here (decision 1757). Anyone may call it:
    /// the destination is the registry's pool, governance's choice, and what a capped verifier's
    /// late claim releases after a move must not wait for another timelocked call (decision 1820).
    function moveUnallocated() external nonReentrant returns (uint256 amount) {
        address successor = _registry.rewardPool();
        if (successor == address(this) || successor == address(0)) revert PoolNotRetired(successor);
        uint256 open = _openWorked();
        if (open != 0) revert WorkedEpochsOpen(open);
        amount = _totalReceived - _totalAllocated - _totalMoved;
        if (amount == 0) revert NothingToMove();
        _totalMoved += amount;
        emit UnallocatedMoved(successor, amount);
        IFirnRewards(successor).fund{value: amount}();
    }

    /// @inheritdoc IFirnRewards
    function claimNodeReward(uint64 epoch, bytes32 enclaveId) external {
        Epoch storage ep = _close(epoch);
        NodeEpoch storage ne = _nodeEpochs[epoch][enclaveId];
        if (ne.points == 0 || ne.claimed) revert NothingToClaim(epoch, enclaveId);
        ne.claimed = true;
        uint256 amount = ep.nodeBudget * ne.points / ep.nodePoints;
        _withdrawable[ne.operator] += amount;
        emit NodeRewardClaimed(epoch, enclaveId, ne.operator, amount);
    }

    /// @inheritdoc IFirnRewards
    function claimVerifierReward(uint64 epoch, address verifier) external {
        Epoch storage ep = _close(epoch);
        VerifierEpoch storage ve = _verifierEpochs[epoch][verifier];
        if (ve.points == 0 || ve.claimed) revert NothingToClaim(epoch, bytes32(uint256(uint160(verifier))));
        ve.claimed = true;
        (uint256 amount, uint256 withheld) = _payout(ep.verifierBudget, ep.verifierPoints, ve);
        if (withheld != 0) {
            // Back to the unallocated pool: later epochs' budgets take it (decision 1820).
            _totalAllocated -= withheld;
            emit VerifierRewardWithheld(epoch, verifier, withheld);
        }
        _withdrawable[verifier] += amount;
        emit VerifierRewardClaimed(epoch, verifier, amount);
    }

    /// @inheritdoc IFirnRewards
    function withdraw() external nonReentrant {
        uint256 reward = _withdrawable[msg.sender];
        uint256 fees = _treasuryCredit[msg.sender];
        uint256 amount = reward + fees;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _withdrawable[msg.sender] = 0;
        _totalWithdrawn += reward;
        if (fees != 0) {
            _treasuryCredit[msg.sender] = 0;
            _totalTreasuryCredit -= fees;
        }
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IFirnRewards
    function currentEpoch() external view returns (uint64) {
        return _currentEpoch();
    }

    /// @inheritdoc IFirnRewards
    function epochLength() external view returns (uint64) {
        return _epochLength;
    }

    /// @inheritdoc IFirnRewards
    function genesis() external view returns (uint64) {
        return _genesis;
    }

    /// @inheritdoc IFirnRewards
    function getEpoch(uint64 epoch) external view returns (Epoch memory) {
        return _epochs[epoch];
    }

    /// @inheritdoc IFirnRewards
    function getChallenge(bytes32 challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }

    /// @inheritdoc IFirnRewards
    function nodePoints(uint64 epoch, bytes32 enclaveId) external view returns (uint256) {
        return _nodeEpochs[epoch][enclaveId].points;
    }

    /// @inheritdoc IFirnRewards
    function nodeAnswers(uint64 epoch, bytes32 enclaveId) external view returns (uint32) {
        return _nodeEpochs[epoch][enclaveId].answers;
    }

    /// @inheritdoc IFirnRewards
    function resumeFee(bytes32 enclaveId) external view returns (uint256) {
        return _resumeFee(_peakAt(_liveness[enclaveId], _currentEpoch() + 1));
    }

    /// @inheritdoc IFirnRewards
    function peakChallengeCost(bytes32 enclaveId) external view returns (uint256) {
        return uint256(_peakAt(_liveness[enclaveId], _currentEpoch() + 1)) * 1 gwei;
    }

    /// @inheritdoc IFirnRewards
    function missedEpochs(bytes32 enclaveId) external view returns (uint8) {
        return _missedAt(_liveness[enclaveId], _currentEpoch() + 1);
    }

    /// @inheritdoc IFirnRewards
    function isUnresponsive(bytes32 enclaveId) external view returns (bool) {
        NodeLiveness storage nl = _liveness[enclaveId];
        uint64 tag = _currentEpoch() + 1;
        uint8 missed = _missedAt(nl, tag);
        if (missed >= MAX_MISSED_EPOCHS) return true;
        if (nl.challengedTag != tag) return false; // not challenged yet this epoch
        if ((nl.lastMissed || nl.answeredTag == 0) && nl.answeredTag != tag) return true;
        return uint256(_nodeEpochs[tag - 1][enclaveId].answers) + nl.open >= _paramsAt(tag - 1).livenessTarget
            || nl.open == type(uint16).max;
    }

    /// @inheritdoc IFirnRewards
    function verifierPoints(uint64 epoch, address verifier) external view returns (uint256) {
        return _verifierEpochs[epoch][verifier].points;
    }

    /// @inheritdoc IFirnRewards
    function voidPoints(uint64 epoch) external view returns (uint256 nodeVoid, uint256 verifierVoid) {
        VoidPoints storage v = _voidPoints[epoch];
        return (v.node, v.verifier);
    }

    /// @inheritdoc IFirnRewards
    function pendingNodeReward(uint64 epoch, bytes32 enclaveId) external view returns (uint256) {
        NodeEpoch storage ne = _nodeEpochs[epoch][enclaveId];
        if (epoch >= _currentEpoch() || ne.claimed || ne.points == 0) return 0;
        Epoch storage ep = _epochs[epoch];
        // A closed epoch's budget is what its close allocated; the books have moved on since.
        uint256 nodeBudget = ep.nodeBudget;
        if (!ep.closed) (nodeBudget,) = _budgets(epoch);
        return nodeBudget * ne.points / ep.nodePoints;
    }

    /// @inheritdoc IFirnRewards
    function pendingVerifierReward(uint64 epoch, address verifier) external view returns (uint256 amount) {
        VerifierEpoch storage ve = _verifierEpochs[epoch][verifier];
        if (epoch >= _currentEpoch() || ve.claimed || ve.points == 0) return 0;
        Epoch storage ep = _epochs[epoch];
        uint256 verifierBudget = ep.verifierBudget;
        if (!ep.closed) (, verifierBudget) = _budgets(epoch);
        (amount,) = _payout(verifierBudget, ep.verifierPoints, ve);
    }

    /// @inheritdoc IFirnRewards
    function withdrawable(address account) external view returns (uint256) {
        return _withdrawable[account] + _treasuryCredit[account];
    }

    /// @inheritdoc IFirnRewards
    function treasuryCredit(address account) external view returns (uint256) {
        return _treasuryCredit[account];
    }

    /// @inheritdoc IFirnRewards
    function totalTreasuryCredit() external view returns (uint256) {
        return _totalTreasuryCredit;
    }

    /// @inheritdoc IFirnRewards
    function hashLivenessAnswer(LivenessAnswer calldata answer) external view returns (bytes32) {
        return _hashAnswer(answer.challengeId, answer.nonce, answer.enclaveId, answer.epoch);
    }

    /// @inheritdoc IFirnRewards
    function totalReceived() external view returns (uint256) {
        return _totalReceived;
    }

    /// @inheritdoc IFirnRewards
    function totalAllocated() external view returns (uint256) {
        return _totalAllocated;
    }

    /// @inheritdoc IFirnRewards
    function totalWithdrawn() external view returns (uint256) {
        return _totalWithdrawn;
    }

    /// @inheritdoc IFirnRewards
    function totalMoved() external view returns (uint256) {
        return _totalMoved;
    }

    /// @inheritdoc IFirnRewards
    function openWorkedEpochs() external view returns (uint256) {
        return _openWorked();
    }

    /// @inheritdoc IFirnRewards
    function answerWindow() external view returns (uint64) {
        return _paramsAt(_currentEpoch()).answerWindow;
    }

    /// @inheritdoc IFirnRewards
    function livenessTarget() external view returns (uint32) {
        return _paramsAt(_currentEpoch()).livenessTarget;
    }

    /// @inheritdoc IFirnRewards
    function epochBudgetBps() external view returns (uint16) {
        return _paramsAt(_currentEpoch()).epochBudgetBps;
    }

    /// @inheritdoc IFirnRewards
    function verifierShareBps() external view returns (uint16) {
        return _paramsAt(_currentEpoch()).verifierShareBps;
    }

    /// @inheritdoc IFirnRewards
    function parametersAt(uint64 epoch) external view returns (RewardParameters memory) {
        return _paramsAt(epoch);
    }

    /// @inheritdoc IFirnRewards
    function isReporter(address account) external view returns (bool) {
        return _reporters[account];
    }

    /// @inheritdoc IFirnRewards
    function registry() external view returns (IFirnRegistry) {
        return _registry;
    }

    /// @inheritdoc IFirnRewards
    function verifierSet() external view returns (IFirnVerifierSet) {
        return _verifierSet;
    }

    /// @inheritdoc IFirnRewards
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- internals

    function _fund() private {
        uint256 received = _totalReceived;
        uint48 epoch = uint48(_currentEpoch());
        (bool exists, uint48 lastKey,) = _receivedBefore.latestCheckpoint();
        // First funding of this epoch: remember what every earlier epoch could be paid from.
        if (!exists || lastKey != epoch) _receivedBefore.push(epoch, uint208(received));
        _totalReceived = received + msg.value;
        emit PoolFunded(msg.sender, msg.value);
    }

    /// @dev max(registrationFee, MAX_MISSED_EPOCHS x max(_epochCost(block.basefee, target), peak)),
    /// wei (decisions 1591, 1594, 1645, 1695), `peakGwei` in gwei: at least what the verifiers may
    /// spend on the node in the MAX_MISSED_EPOCHS missed epochs before it is unresponsive again at
    /// today's base fee, at least what its missed epochs since the last resume cost them at the
    /// base fees they paid (so the operator cannot pick a cheap block), and never less than a
    /// registration round, so a free registration fee (devnet, governance) does not make silence free.
    function _resumeFee(uint256 peakGwei) private view returns (uint256) {
        uint256 fee = _registry.registrationFee();
        uint256 cost = _epochCost(block.basefee, _paramsAt(_currentEpoch()).livenessTarget);
        uint256 peak = peakGwei * 1 gwei;
        if (peak > cost) cost = peak;
        uint256 gasCost = uint256(MAX_MISSED_EPOCHS) * cost;
        return gasCost > fee ? gasCost : fee;
    }

    /// @dev Wei one epoch of challenges on a node costs the verifiers at `baseFee` (wei per gas), at
    /// most: min(target, V) accepted challenges and a refused one from every other active
    /// verifier's racing daemon (decisions 1594, 1695; V >= 1). With target 1 it is one epoch of
    /// probation, CHALLENGE_GAS + (V - 1) x REFUSED_CHALLENGE_GAS.
    function _epochCost(uint256 baseFee, uint32 target) private view returns (uint256) {
        uint256 v = _verifierSet.verifierCount();
        if (v == 0) v = 1;
        uint256 accepted = target < v ? target : v;
        return (accepted * CHALLENGE_GAS + (v - accepted) * REFUSED_CHALLENGE_GAS) * baseFee;
    }

    /// @dev `wei` in gwei, rounded up, saturating at the 48 bits the liveness slot keeps (281,474
    /// ether).
    function _toGwei(uint256 amount) private pure returns (uint48) {
        uint256 g = (amount + 1 gwei - 1) / 1 gwei;
        return g > type(uint48).max ? type(uint48).max : uint48(g);
    }

    function _currentEpoch() private view returns (uint64) {
        return (uint64(block.timestamp) - _genesis) / _epochLength;
    }

    function _hashAnswer(bytes32 challengeId, bytes32 nonce, bytes32 enclaveId, uint64 epoch)
        private
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(LIVENESS_ANSWER_TYPEHASH, challengeId, nonce, enclaveId, epoch)));
    }

    /// @dev Missed epochs since registration or the last resume, as seen from the epoch tagged `tag`
    /// (epoch + 1): the stored count, plus one when the last challenged epoch ended before `tag`
    /// with an accepted challenge unanswered (decision 1695: an answer in that epoch does not make
    /// up for a challenge it let expire, nor does a later one). Saturates at 255.
    function _missedAt(NodeLiveness memory nl, uint64 tag) private view returns (uint8) {
        uint8 missed = nl.missed;
        if (nl.challengedTag == tag || nl.open == 0 || missed == type(uint8).max) return missed;
        return missed + 1;
    }

    /// @dev The dearest missed epoch since the last resume (gwei), as seen from the epoch tagged
    /// `tag`: the stored peak, and the last challenged epoch's price when it ended missed.
    function _peakAt(NodeLiveness memory nl, uint64 tag) private view returns (uint48) {
        uint48 peak = nl.peakCost;
        if (nl.challengedTag == tag || nl.open == 0) return peak;
        uint48 last = nl.epochCost;
        return last > peak ? last : peak;
    }

    /// @dev Only an active verifier holding the minimum stake earns: one that left or was slashed
    /// below the minimum has nothing at risk for the work it reports. A unit of work earns the
    /// verifier's active stake in points (decision 1575), so an epoch's verifier budget is split by
    /// stake x work and splitting one stake over many accounts does not multiply its share. The
    /// verifier's share of the total active stake at this work is kept when it is its largest of
    /// the epoch: its payout is capped at that share of the verifier budget (decision 1820), so
    /// winning the race for the challenge slots earns no more than the stake it has at risk.
    /// Returns the points added; a stake above 2^96 - 1 wei (79 billion ether) counts as that much.
    function _addVerifierPoint(address verifier, uint64 epoch) private returns (uint96 points) {
        (uint256 stake, uint256 total) = _verifierSet.activeStakeAndTotal(verifier);
        if (stake == 0) {
            emit VerifierWorkWithheld(verifier, epoch);
            return 0;
        }
        // The member's stake is part of the total; the guard keeps the share at most SHARE_ONE.
        uint64 share = stake >= total ? uint64(SHARE_ONE) : uint64(stake * SHARE_ONE / total);
        if (stake > type(uint96).max) stake = type(uint96).max;
        points = uint96(stake);
        VerifierEpoch storage ve = _verifierEpochs[epoch][verifier];
        uint128 verifierPointsNow = ve.points + points;
        ve.points = verifierPointsNow;
        if (share > ve.share) ve.share = share;
        Epoch storage ep = _epochs[epoch];
        uint256 verifierPointsBefore = ep.verifierPoints;
        if (verifierPointsBefore == 0) _noteWorked(ep, epoch);
        ep.verifierPoints = verifierPointsBefore + points;
        emit VerifierWorkRecorded(verifier, epoch, verifierPointsNow);
    }

    /// @dev What closing `epoch` now would allocate: the epoch's own epochBudgetBps of what the pool had received by
    /// the epoch's end and has not yet allocated, split by verifierShareBps; a side without points
    /// gets nothing (it stays in the pool). Money received after the epoch ended never funds it, so
    /// an epoch left open and closed late cannot take the budget of the epochs that followed it
    /// (decision 1593). Every earlier worked epoch is closed before `epoch` can be (decision 1821),
    /// so what is allocated here never holds a later epoch's budget, and this is what the close
    /// fixes, whenever and by whomever it is made.
    function _budgets(uint64 epoch) private view returns (uint256 nodeBudget, uint256 verifierBudget) {
        Epoch storage ep = _epochs[epoch];
        uint256 receivedByEnd = _receivedByEnd(epoch);
        // What left the books: budgets of closed epochs and balances moved to successors (1757).
        uint256 allocated = _totalAllocated + _totalMoved;
        uint256 available = receivedByEnd > allocated ? receivedByEnd - allocated : 0;
        // The shares in force during the epoch, not at its close (decision 1706).
        RewardParameters memory params = _paramsAt(epoch);
        uint256 budget = available * params.epochBudgetBps / 10_000;
        uint256 verifierPart = budget * params.verifierShareBps / 10_000;
        verifierBudget = ep.verifierPoints == 0 ? 0 : verifierPart;
        nodeBudget = ep.nodePoints == 0 ? 0 : budget - verifierPart;
    }

    /// @dev `_totalReceived` as of the end of `epoch` (wei): the value checkpointed at the first
    /// funding of a later epoch, or everything received when no later epoch has been funded.
    function _receivedByEnd(uint64 epoch) private view returns (uint256) {
        (bool exists, uint48 lastKey,) = _receivedBefore.latestCheckpoint();
        if (!exists || lastKey <= epoch) return _totalReceived;
        return _receivedBefore.lowerLookup(uint48(epoch) + 1);
    }

    function _close(uint64 epoch) private returns (Epoch storage ep) {
        uint64 current = _currentEpoch();
        if (epoch >= current) revert EpochNotEnded(epoch, current);
        ep = _epochs[epoch];
        if (ep.closed) return ep;
        // Registration and rotation fees wait in the registry until swept (decision 1140) to the
        // owner's treasury, never into a budget (decision 1671). A failing sweep never blocks a close.
        try _registry.sweepFees() {} catch {}
        _allocate(epoch, ep);
    }

    /// @dev Closes `epoch` (ended, not closed; `ep` its record): fixes its budgets (`_budgets`) and
    /// adds what its claims can take to the allocated total. No external call.
    function _allocate(uint64 epoch, Epoch storage ep) private {
        (uint256 nodeBudget, uint256 verifierBudget) = _budgets(epoch);
        ep.closed = true;
        ep.nodeBudget = nodeBudget;
        ep.verifierBudget = verifierBudget;
        // Claims split the budgets over totals that hold the void points (decision 1726): their
        // share is never claimed, so it is not allocated and stays in the pool (rounded down: the
        // claims' floors sum to no more).
        VoidPoints memory v = _voidPoints[epoch];
        if (v.node != 0) nodeBudget = nodeBudget * (ep.nodePoints - v.node) / ep.nodePoints;
        if (v.verifier != 0) verifierBudget = verifierBudget * (ep.verifierPoints - v.verifier) / ep.verifierPoints;
        _totalAllocated += nodeBudget + verifierBudget;
        emit EpochClosed(epoch, nodeBudget, verifierBudget, ep.nodePoints, ep.verifierPoints);
    }

    /// @dev Validates and records a parameter set that applies from `fromEpoch` on. A second set in
    /// the same epoch replaces the first (same checkpoint key); sets apply in the order made.
    function _setParameters(
        uint64 answerWindow_,
        uint32 livenessTarget_,
        uint16 epochBudgetBps_,
        uint16 verifierShareBps_,
        uint64 fromEpoch
    ) private {
        if (
            answerWindow_ == 0 || answerWindow_ >= _epochLength || livenessTarget_ == 0 || epochBudgetBps_ == 0 || epochBudgetBps_ > 10_000
                || verifierShareBps_ > MAX_VERIFIER_SHARE_BPS
        ) revert InvalidParameters();
        RewardParameters memory p = RewardParameters({
            answerWindow: answerWindow_,
            livenessTarget: livenessTarget_,
            epochBudgetBps: epochBudgetBps_,
            verifierShareBps: verifierShareBps_,
            fromEpoch: fromEpoch
        });
        _params = p;
        _paramHistory.push(SafeCast.toUint48(fromEpoch), _pack(p));
        emit ParametersUpdated(answerWindow_, livenessTarget_, epochBudgetBps_, verifierShareBps_, fromEpoch);
    }

    /// @dev The parameter set in force during `epoch`: the latest set when `epoch` is at or after its
    /// first epoch (one slot read, the path every challenge takes), else the set recorded for it.
    function _paramsAt(uint64 epoch) private view returns (RewardParameters memory p) {
        p = _params;
        if (epoch >= p.fromEpoch) return p;
        uint208 packed = _paramHistory.upperLookupRecent(SafeCast.toUint48(epoch));
        p = RewardParameters({
            answerWindow: uint64(packed >> 128),
            livenessTarget: uint32(packed >> 96),
            epochBudgetBps: uint16(packed >> 80),
            verifierShareBps: uint16(packed >> 64),
            fromEpoch: uint64(packed)
        });
    }

    /// @dev One parameter set in 192 bits: answerWindow | livenessTarget | epochBudgetBps |
    /// verifierShareBps | fromEpoch, high to low.
    function _pack(RewardParameters memory p) private pure returns (uint208) {
        return (uint208(p.answerWindow) << 128) | (uint208(p.livenessTarget) << 96) | (uint208(p.epochBudgetBps) << 80)
            | (uint208(p.verifierShareBps) << 64) | uint208(p.fromEpoch);
    }

    /// @dev Marks `ep`, the current epoch `epoch`, worked at its first point (decision 1757) and
    /// closes the worked epoch before it if nobody has (decision 1821): points are earned only in
    /// the current epoch, so worked epochs close in order and none is budgeted after a later one,
    /// whoever closes what when. Called only when one of its point totals is zero, so most points
    /// pay no read of the flag; the close costs the epoch's first point once (no external call).
    function _noteWorked(Epoch storage ep, uint64 epoch) private {
        if (ep.worked) return;
        ep.worked = true;
        uint64 lastTag = _lastWorkedTag;
        if (lastTag != 0) {
            Epoch storage last = _epochs[lastTag - 1];
            if (!last.closed) _allocate(lastTag - 1, last);
        }
        _lastWorkedTag = epoch + 1;
    }

    /// @dev The verifier's part of `verifierBudget` (wei) by its `points` of `epochPoints` (work x
    /// stake, decision 1575), capped at its largest share of the active verifier stake while it
    /// worked (decision 1820): min(budget x points / epochPoints, budget x share / SHARE_ONE).
    /// `withheld`: what the cap keeps out of the part, left to the pool's later epochs.
    function _payout(uint256 verifierBudget, uint256 epochPoints, VerifierEpoch storage ve)
        private
        view
        returns (uint256 amount, uint256 withheld)
    {
        amount = verifierBudget * ve.points / epochPoints;
        uint256 cap = verifierBudget * ve.share / SHARE_ONE;
        if (amount > cap) {
            withheld = amount - cap;
            amount = cap;
        }
    }

    /// @dev 1 while the last worked epoch is not closed, else 0: no other can be open (1821).
    function _openWorked() private view returns (uint256) {
        uint64 lastTag = _lastWorkedTag;
        return lastTag != 0 && !_epochs[lastTag - 1].closed ? 1 : 0;
    }

    /// @dev Reverts PoolRetired unless this contract is the registry's reward pool (decision 1707):
    /// after governance moves the network to a new pool, no challenge, answer or work report earns
    /// points here, so no minority keeps farming the unallocated balance; epochs already worked stay
    /// closable and claimable.
    function _requireRegistryPool() private view {
        address pool = _registry.rewardPool();
        if (pool != address(this)) revert PoolRetired(pool);
    }

}
