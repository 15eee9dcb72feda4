// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnJobMarket} from "../../src/FirnJobMarket.sol";
import {FirnRegistry} from "../../src/FirnRegistry.sol";
import {FirnRewards} from "../../src/FirnRewards.sol";
import {FirnVerifierSet} from "../../src/FirnVerifierSet.sol";
import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";
import {Vm} from "../utils/Vm.sol";

/// @notice Drives the four value-holding contracts with bounded random actions. Each call picks
/// actors from small fixed pools so that actions interact; calls that revert are simply skipped.
/// Ghost totals record what the reward pool credited, per epoch and overall.
contract Handler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    FirnVerifierSet internal vs;
    FirnRegistry internal reg;
    FirnJobMarket internal market;
    FirnRewards internal rewards;
    address[] internal verifiers;
    bytes32[] internal jobIds;
    bytes32 internal measurement;
    uint256 internal constant NODES = 4;
    address internal constant REQUESTER = address(0xBEEF);
    address internal constant FUNDER = address(0xF00D);

    mapping(uint256 node => bytes32) internal lastChallenge;
    mapping(uint64 epoch => uint256) public creditedNode;
    mapping(uint64 epoch => uint256) public creditedVerifier;
    uint256 public creditedTotal;
    /// @dev Resume fees paid by operators (ghost).
    uint256 public resumeFeesPaid;
    /// @dev Registration fees paid by operators (ghost): the registry holds them until a sweep
    /// credits them to the owner's treasury (decision 1671).
    uint256 public registrationFeesPaid;
    uint256 public answers;
    uint64 public maxEpochTouched;
    /// @dev Votes naming a round other than the open one that the registry accepted (ghost; decision 1831).
    uint256 public staleVotesCounted;

    constructor(
        FirnVerifierSet vs_,
        FirnRegistry reg_,
        FirnJobMarket market_,
        FirnRewards rewards_,
        address[] memory v,
        bytes32 m
    ) {
        vs = vs_;
        reg = reg_;
        market = market_;
        rewards = rewards_;
        verifiers = v;
        measurement = m;
    }

    function _op(uint256 i) internal pure returns (address) {
        return address(uint160(0x1000 + i));
    }

    function _id(uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("inv-node", i));
    }

    function _key(uint256 i) internal pure returns (uint256) {
        return 0xA000 + i;
    }

    function _verifier(uint256 v) internal view returns (address) {
        return verifiers[v % verifiers.length];
    }

    // ------------------------------------------------------------ registry

    function register(uint256 i, uint256 stake) external {
        i %= NODES;
        uint256 fee = reg.registrationFee();
        stake = 1 ether + (stake % 3 ether) + fee;
        vm.deal(_op(i), stake);
        vm.prank(_op(i));
        // Nodes 0 and 1 share a platform: one capacity share between them.
        try reg.register{value: stake}(
            IFirnRegistry.RegistrationParams(
                _id(i),
                1,
                measurement,
                keccak256(abi.encode("platform", i / 2)),
                vm.addr(_key(i)),
                bytes32(uint256(1)),
                "http://n",
                bytes32(uint256(7))
            )
        ) {
            registrationFeesPaid += fee;
        } catch {}
    }

    /// @dev A vote for the node's open round (read before the prank), or for a stale round.
    function vote(uint256 i, uint256 v, bool yes, bool stale) external {
        bytes32 id = _id(i % NODES);
        uint32 round = reg.getNode(id).round;
        if (stale && round > 0) --round;
        bool other = round != reg.getNode(id).round;
        vm.prank(_verifier(v));
        bool counted;
        if (yes) {
            try reg.approve(id, round, bytes32(uint256(7))) {
                counted = true;
            } catch {}
        } else {
            try reg.refuse(id, round, bytes32(uint256(7)), 1) {
                counted = true;
            } catch {}
        }
        if (counted && other) ++staleVotesCounted;
    }

    /// @dev The honest majority approving a node, so that runs reach the Active states.
    function approveQuorum(uint256 i) external {
        bytes32 id = _id(i % NODES);
        uint32 round = reg.getNode(id).round;
        for (uint256 v = 0; v < 3; ++v) {
            vm.prank(verifiers[v]);
            try reg.approve(id, round, bytes32(uint256(7))) {} catch {}
        }
    }

    function exitAndWithdraw(uint256 i, uint256 wait) external {
        i %= NODES;
        vm.prank(_op(i));
        try reg.requestExit(_id(i)) {} catch {}
        vm.warp(block.timestamp + (wait % 10 days));
        vm.prank(_op(i));
        try reg.withdrawStake(_id(i)) {} catch {}
        vm.prank(_op(i));
        try reg.withdraw() {} catch {}
    }

    function verifierChurn(uint256 v, uint256 wait) external {
        address who = _verifier(v);
        vm.deal(who, 1 ether);
        vm.startPrank(who);
        try vs.requestLeave() {} catch {}
        vm.warp(block.timestamp + (wait % 10 days));
        try vs.withdraw() {} catch {}
        try vs.join{value: 1 ether}() {} catch {}
        vm.stopPrank();
    }

    // ------------------------------------------------------------ market

    function post(uint256 amount) external {
        amount = 1 + (amount % 5 ether);
        vm.deal(REQUESTER, amount);
        IFirnJobMarket.JobRequest memory r;
        r.teeTypeMask = 2;
        r.allowedMeasurements = new bytes32[](0);
        r.enclaveIds = new bytes32[](0);
        r.workloadHash = bytes32(uint256(1));
        r.inputCommitment = bytes32(uint256(2));
        r.deadline = uint64(block.timestamp + 1 days);
        r.claimTimeout = 1 hours;
        // 0: all-or-nothing; 1: the proofs' 1 work unit uses the budget; 2: half the escrow returns.
        r.maxWorkUnits = uint64(amount % 3);
        vm.prank(REQUESTER);
        jobIds.push(market.postJob{value: amount}(r));
    }

    /// @dev Every job of this handler is posted with these terms.
    function _terms() internal pure returns (IFirnJobMarket.JobTerms memory t) {
        t.workloadHash = bytes32(uint256(1));
        t.inputCommitment = bytes32(uint256(2));
        t.allowedMeasurements = new bytes32[](0);
        t.enclaveIds = new bytes32[](0);
    }

    /// @dev The facts of each accepted proof, as a verifier reads them from ProofSubmitted.
    mapping(bytes32 jobId => IFirnJobMarket.ProofFacts) internal facts;

    /// @dev Ghost of decision 1625: what the market credited the requester beyond a job's escrow
    /// (a claim superseding a lapsed one, a release, a failure, or a reclaim paying more than the
    /// job's recorded escrow). Must stay 0: forfeited bonds go to the owner's treasury.
    uint256 public requesterBondCredits;
    /// @dev Ghost of decision 1625 as amended: what the reward pool received during the calls that
    /// forfeit (claim over a lapse, release, failJob, reclaim), none of which pays a fee. Must stay
    /// 0: the pool pays by stake, so a forfeit in it would flow back to a requester's own node.
    uint256 public poolForfeitReceipts;
    /// @dev Ghost: what those calls credited the owner (governance treasury), i.e. every forfeit.
    uint256 public treasuryForfeitCredits;
    /// @dev Ghost: successful calls that forfeit a bond or part of one (release, failJob).
    uint256 public forfeitingCalls;

    function _requesterCredit() internal view returns (uint256) {
        return market.withdrawable(REQUESTER);
    }

    /// @dev The pool's receipts and the treasury's credit, read around a forfeiting call.
    function _forfeitBooks() internal view returns (uint256 pool, uint256 treasury) {
        return (rewards.totalReceived(), market.withdrawable(market.owner()));
    }

    function _recordForfeits(uint256 pool, uint256 treasury) internal {
        (uint256 poolNow, uint256 treasuryNow) = _forfeitBooks();
        poolForfeitReceipts += poolNow - pool;
        treasuryForfeitCredits += treasuryNow - treasury;
    }

    /// @dev Ghost of decision 1768: per job, the Enclave IDs whose claim on it lapsed (superseded
    /// here by another claim) or was released; every node has its own operator in this handler.
    mapping(bytes32 jobId => mapping(bytes32 enclaveId => bool)) internal claimEnded;
    /// @dev Ghost: claims accepted from a node whose earlier claim on the same job had ended so. Must
    /// stay 0: a node cannot hold a job again after its claim lapsed or was released.
    uint256 public claimsAfterOwnEnd;

    /// @dev Node `i` claims `jobId`, keeping the ghosts of decision 1768.
    function _claimAs(bytes32 jobId, uint256 i, uint256 bond) internal {
        IFirnJobMarket.Job memory before = market.getJob(jobId);
        bool superseding = before.status == IFirnJobMarket.JobStatus.Claimed;
        vm.prank(_op(i));
        try market.claimJob{value: bond}(jobId, _id(i), _terms()) {
            if (claimEnded[jobId][_id(i)] || (superseding && before.enclaveId == _id(i))) claimsAfterOwnEnd++;
            // A claim over a Claimed job superseded that job's lapsed claim.
            if (superseding) claimEnded[jobId][before.enclaveId] = true;
        } catch {}
    }

    function claimAndProve(uint256 j, uint256 i, bool prove) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[j % jobIds.length];
        i %= NODES;
        uint256 bond = market.claimBond();
        vm.deal(_op(i), bond);
        uint256 credit = _requesterCredit();
        (uint256 pool, uint256 treasury) = _forfeitBooks();
        _claimAs(jobId, i, bond);
        requesterBondCredits += _requesterCredit() - credit;
        _recordForfeits(pool, treasury);
        if (!prove) return;
        IFirnJobMarket.WorkProof memory p = IFirnJobMarket.WorkProof(
            jobId, _id(i), measurement, bytes32(uint256(1)), bytes32(uint256(2)), bytes32(uint256(3)), 0, 0, 1
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(_key(i), market.hashWorkProof(p));
        vm.prank(_op(i));
        try market.submitProof(p, r, bytes32(uint256(s) | (uint256(v - 27) << 255))) {
            facts[jobId] = IFirnJobMarket.ProofFacts({
                signer: vm.addr(_key(i)),
                startedAt: 0,
                finishedAt: 0,
                provedBlock: uint64(block.number),
                challengeEndsAt: uint64(block.timestamp) + market.getJob(jobId).challengeWindow,
                workUnits: 1,
                snapshotId: vs.currentSnapshot()
            });
        } catch {}
    }

    function releaseOrFail(uint256 j, uint256 i, bool fail) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[j % jobIds.length];
        uint256 credit = _requesterCredit();
        (uint256 pool, uint256 treasury) = _forfeitBooks();
        bytes32 holder = market.getJob(jobId).enclaveId;
        vm.prank(_op(i % NODES));
        if (fail) {
            try market.failJob(jobId, "x") {
                forfeitingCalls++;
            } catch {}
        } else {
            try market.releaseJob(jobId) {
                forfeitingCalls++;
                claimEnded[jobId][holder] = true;
            } catch {}
        }
        requesterBondCredits += _requesterCredit() - credit;
        _recordForfeits(pool, treasury);
    }

    /// @dev Ghosts of failAttested: accepted failures signed by the enclave, and by the operator.
    uint256 public attestedFailures;
    uint256 public forgedFailuresAccepted;

    /// @dev Decision 1595: the claimant fails with a JobFailure its enclave signed (or, with
    /// `forged`, one signed by the operator's own key, which must revert).
    function failAttested(uint256 j, uint256 i, bool forged) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[j % jobIds.length];
        i %= NODES;
        // Claimed by this node first where it can (else the failure is for someone else's claim).
        uint256 bond = market.claimBond();
        vm.deal(_op(i), bond);
        vm.prank(_op(i));
        try market.claimJob{value: bond}(jobId, _id(i), _terms()) {} catch {}
        IFirnJobMarket.JobFailure memory f = IFirnJobMarket.JobFailure(
            jobId, _id(i), measurement, bytes32(uint256(1)), bytes32(uint256(2)), 1, uint64(block.timestamp)
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(forged ? _key(i) + 1 : _key(i), market.hashFailure(f));
        vm.prank(_op(i));
        try market.failJobAttested(f, r, bytes32(uint256(s) | (uint256(v - 27) << 255))) {
            if (forged) forgedFailuresAccepted++;
            else attestedFailures++;
        } catch {}
    }

    function disputeOrFinalize(uint256 j, uint256 v, uint8 mode, uint256 wait) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[j % jobIds.length];
        if (mode % 3 == 0) {
            vm.prank(_verifier(v));
            try market.dispute(jobId, 16, facts[jobId]) {} catch {}
        } else if (mode % 3 == 1) {
            // A fact dispute of a valid proof: the disputer is slashed.
            vm.prank(_verifier(v));
            try market.dispute(jobId, 1, facts[jobId]) {} catch {}
        } else {
            vm.warp(block.timestamp + (wait % 2 days));
            try market.finalize(jobId, facts[jobId]) {} catch {}
        }
    }

    function reclaimAndWithdraw(uint256 j, uint256 i, uint256 wait) external {
        if (jobIds.length == 0) return;
        vm.warp(block.timestamp + (wait % 2 days));
        bytes32 jobId = jobIds[j % jobIds.length];
        uint256 escrow = market.getJob(jobId).escrow;
        uint256 credit = _requesterCredit();
        (uint256 pool, uint256 treasury) = _forfeitBooks();
        vm.prank(REQUESTER);
        try market.reclaim(jobId) {
            uint256 got = _requesterCredit() - credit;
            if (got > escrow) requesterBondCredits += got - escrow;
        } catch {}
        _recordForfeits(pool, treasury);
        vm.prank(REQUESTER);
        try market.withdraw() {} catch {}
        vm.prank(_op(i % NODES));
        try market.withdraw() {} catch {}
    }

    // ------------------------------------------------------------ rewards

    function fund(uint256 amount) external {
        amount %= 3 ether;
        vm.deal(FUNDER, amount);
        vm.prank(FUNDER);
        rewards.fund{value: amount}();
    }

    function challengeAndAnswer(uint256 i, uint256 v, bool answer) external {
        i %= NODES;
        vm.prank(_verifier(v));
        try rewards.issueChallenge(_id(i)) returns (bytes32 id) {
            lastChallenge[i] = id;
        } catch {}
        if (!answer || lastChallenge[i] == bytes32(0)) return;
        bytes32 cid = lastChallenge[i];
        IFirnRewards.Challenge memory c = rewards.getChallenge(cid);
        bytes32 digest = rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(cid, c.nonce, c.enclaveId, c.epoch));
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(_key(i), digest);
        try rewards.answerChallenge(cid, abi.encodePacked(r, s, sv)) {
            ++answers;
        } catch {}
    }

    /// @dev An unresponsive node's operator pays its resume fee (decision 1646: to the owner).
    function resume(uint256 i) external {
        i %= NODES;
        if (rewards.missedEpochs(_id(i)) < rewards.MAX_MISSED_EPOCHS()) return;
        uint256 fee = rewards.resumeFee(_id(i));
        vm.deal(_op(i), _op(i).balance + fee);
        vm.prank(_op(i));
        try rewards.resumeChallenges{value: fee}(_id(i)) {
            resumeFeesPaid += fee;
        } catch {}
    }

    function advanceEpoch(uint256 wait) external {
        vm.warp(block.timestamp + (wait % 2 days));
        uint64 e = rewards.currentEpoch();
        if (e > maxEpochTouched) maxEpochTouched = e;
    }

    function claimRewards(uint64 e, uint256 i, uint256 v) external {
        uint64 current = rewards.currentEpoch();
        if (current == 0) return;
        e = e % current;
        i %= NODES;
        address op = _op(i);
        uint256 before = rewards.withdrawable(op);
        try rewards.claimNodeReward(e, _id(i)) {
            uint256 got = rewards.withdrawable(op) - before;
            creditedNode[e] += got;
            creditedTotal += got;
        } catch {}
        address who = _verifier(v);
        before = rewards.withdrawable(who);
        try rewards.claimVerifierReward(e, who) {
            uint256 got = rewards.withdrawable(who) - before;
            creditedVerifier[e] += got;
            creditedTotal += got;
        } catch {}
        vm.prank(op);
        try rewards.withdraw() {} catch {}
        vm.prank(who);
        try rewards.withdraw() {} catch {}
    }

    // ------------------------------------------------------------ views for the invariants

    function jobCount() external view returns (uint256) {
        return jobIds.length;
    }

    function jobAt(uint256 k) external view returns (bytes32) {
        return jobIds[k];
    }

    function nodeId(uint256 i) external pure returns (bytes32) {
        return _id(i);
    }

    function operator(uint256 i) external pure returns (address) {
        return _op(i);
    }

    function verifierAt(uint256 k) external view returns (address) {
        return verifiers[k];
    }

    function verifierTotal() external view returns (uint256) {
        return verifiers.length;
    }
}

/// @notice No value is created or lost: each contract holds exactly what its books say it owes,
/// and the reward pool never pays out more than it received.
contract FirnInvariantsTest is FirnFixture {
    Handler internal handler;

    function setUp() public override {
        super.setUp();
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0.01 ether);
        market.setParameters(CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, 300, FALSE_DISPUTE_SLASH);
        handler = new Handler(verifierSet, registry, market, rewards, verifierList, MEASUREMENT);
        targetContract(address(handler));
    }

    /// @dev Registry: balance = sum of node stakes + credited refunds; verifier set: balance = sum
    /// of verifier stakes (and the active total matches the active members); market: balance =
    /// open escrow + held bonds + credited balances, each matching the per-job records.
    function invariant_stakeConserved() public view {
        uint256 stakes;
        uint256 credits;
        for (uint256 i = 0; i < 4; ++i) {
            stakes += registry.getNode(handler.nodeId(i)).stake;
            credits += registry.withdrawable(handler.operator(i));
        }
        vm.assertEq(registry.totalStaked(), stakes, "totalStaked == sum of stakes");
        vm.assertEq(registry.totalWithdrawable(), credits, "totalWithdrawable == sum of credits");
        vm.assertEq(
            address(registry).balance,
            stakes + credits + registry.feesHeld(),
            "registry balance == stakes + credits + fees held"
        );

        uint256 vStakes;
        uint256 active;
        for (uint256 k = 0; k < handler.verifierTotal(); ++k) {
            address v = handler.verifierAt(k);
            vStakes += verifierSet.getVerifier(v).stake;
            if (verifierSet.isVerifier(v)) active += verifierSet.getVerifier(v).stake;
        }
        vm.assertEq(address(verifierSet).balance, vStakes, "verifier set balance == sum of stakes");
        vm.assertEq(verifierSet.totalActiveStake(), active, "active total == active members' stakes");

        uint256 escrow;
        uint256 bonds;
        for (uint256 k = 0; k < handler.jobCount(); ++k) {
            IFirnJobMarket.Job memory j = market.getJob(handler.jobAt(k));
            escrow += j.escrow;
            bonds += j.bond;
            if (j.status == IFirnJobMarket.JobStatus.Paid || j.status == IFirnJobMarket.JobStatus.Reclaimed) {
                vm.assertEq(j.escrow + j.bond, 0, "settled jobs hold nothing");
            }
        }
        vm.assertEq(market.totalEscrow(), escrow, "totalEscrow == sum of escrows");
        vm.assertEq(market.totalBonds(), bonds, "totalBonds == sum of bonds");
        vm.assertEq(
            address(market).balance,
            escrow + bonds + market.totalWithdrawable() + market.feesHeld(),
            "market balance == books (fees held for the pool included)"
        );
    }

    /// @dev What the pool credited (per epoch and overall) never exceeds what it allocated, which
    /// never exceeds what it received; its balance is exactly received - withdrawn plus the resume
    /// fees and swept registration fees owed to the owner's treasury, which are outside the pool's
    /// books (decisions 1646, 1671).
    function invariant_rewardsNeverExceedPool() public view {
        vm.assertLe(rewards.totalWithdrawn(), rewards.totalAllocated(), "withdrawn <= allocated");
        vm.assertLe(rewards.totalAllocated(), rewards.totalReceived(), "allocated <= received");
        vm.assertLe(handler.creditedTotal(), rewards.totalAllocated(), "credited <= allocated");
        vm.assertEq(
            address(rewards).balance,
            rewards.totalReceived() - rewards.totalWithdrawn() + rewards.totalTreasuryCredit(),
            "balance == received - paid + treasury credit"
        );
        vm.assertEq(
            rewards.treasuryCredit(owner),
            handler.resumeFeesPaid() + handler.registrationFeesPaid() - registry.feesHeld(),
            "every resume fee and every swept registration fee is the owner's"
        );
        for (uint64 e = 0; e <= handler.maxEpochTouched(); ++e) {
            IFirnRewards.Epoch memory ep = rewards.getEpoch(e);
            vm.assertLe(handler.creditedNode(e), ep.nodeBudget, "node credits <= node budget");
            vm.assertLe(handler.creditedVerifier(e), ep.verifierBudget, "verifier credits <= verifier budget");
        }
    }

    /// @dev Decision 1625: no forfeited claim bond (lapse, release, failJob's share) is ever
    /// credited to the requester; it is credited to the owner's treasury (held in the market's
    /// books, which invariant_stakeConserved holds).
    function invariant_requesterNeverCreditedABond() public view {
        vm.assertEq(handler.requesterBondCredits(), 0, "bond credited to the requester");
    }

    /// @dev Decision 1625 as amended: no forfeit ever reaches the stake-weighted reward pool, and
    /// the owner's credit in the market is exactly the forfeits (nothing else credits it here).
    function invariant_forfeitsNeverReachThePool() public view {
        vm.assertEq(handler.poolForfeitReceipts(), 0, "a forfeit funded the reward pool");
        vm.assertEq(market.withdrawable(owner), handler.treasuryForfeitCredits(), "treasury credit == forfeits");
    }

    /// @dev The handler reaches a resume: a node challenged and silent for MAX_MISSED_EPOCHS epochs
    /// pays its fee through `resume`, the owner's credit is that fee, the pool's books do not move,
    /// and the balance identity of invariant_rewardsNeverExceedPool holds (decision 1646).
    function test_handler_resumeReachesTheTreasury() public {
        handler.register(0, 0);
        handler.approveQuorum(0);
        for (uint256 e = 0; e < rewards.MAX_MISSED_EPOCHS() + 1; ++e) {
            handler.advanceEpoch(1 days);
            handler.challengeAndAnswer(0, 0, false);
        }
        uint256 received = rewards.totalReceived();
        handler.resume(0);
        vm.assertTrue(handler.resumeFeesPaid() != 0, "a resume was paid");
        vm.assertEq(rewards.treasuryCredit(owner), handler.resumeFeesPaid(), "the owner's credit is the fee");
        vm.assertEq(rewards.totalReceived(), received, "the pool received none of it");
        invariant_rewardsNeverExceedPool();
    }

    /// @dev A registration fee swept when an epoch closes (a reward claim sweeps the registry) is the
    /// owner's treasury credit beside the resume fees; the invariant once counted only the latter.
    function test_handler_sweptRegistrationFeeReachesTheTreasury() public {
        handler.register(1, 0);
        handler.approveQuorum(1);
        handler.exitAndWithdraw(1, 432483921);
        vm.assertEq(registry.feesHeld(), 0.01 ether, "held until a sweep");
        handler.claimRewards(0, 0, 0);
        vm.assertEq(registry.feesHeld(), 0, "swept by the epoch's close");
        vm.assertEq(rewards.treasuryCredit(owner), 0.01 ether, "the owner's credit is the fee");
        invariant_rewardsNeverExceedPool();
    }

    /// @dev The ghost above sees the forfeit paths: one node made Active claims a job, holds it,
    /// releases it, claims it again, lets it lapse into the requester's reclaim, and fails another
    /// late (with the requester-funded rule of 1571 this ghost reads 2.5 bonds).
    function test_handler_forfeitPathsReachTheGhost() public {
        handler.register(0, 0);
        handler.approveQuorum(0);
        handler.register(2, 0);
        handler.approveQuorum(2);
        handler.post(1 ether);
        handler.post(1 ether);
        handler.claimAndProve(0, 0, false);
        handler.releaseOrFail(0, 0, false);
        handler.claimAndProve(0, 0, false); // refused: node 0 released job 0 (decision 1768)
        vm.assertEq(market.getJob(handler.jobAt(0)).enclaveId, bytes32(0), "the releaser took job 0 back");
        handler.claimAndProve(0, 2, false);
        handler.claimAndProve(1, 0, false);
        vm.warp(block.timestamp + 30 minutes);
        handler.releaseOrFail(1, 0, true); // half the claim held: half the bond forfeited
        handler.reclaimAndWithdraw(0, 0, 2 hours); // job 0's claim lapsed: its bond forfeited
        vm.assertEq(handler.forfeitingCalls(), 2, "release and failJob reached");
        vm.assertEq(
            uint256(market.getJob(handler.jobAt(0)).status), uint256(IFirnJobMarket.JobStatus.Reclaimed), "reclaimed"
        );
        vm.assertEq(handler.requesterBondCredits(), 0, "bond credited to the requester");
        // Release (1 bond) + late failJob (half a bond) + lapse at reclaim (1 bond): all to the
        // treasury, none to the pool (under the pool rule this ghost reads 2.5 bonds).
        vm.assertEq(handler.treasuryForfeitCredits(), 5 * CLAIM_BOND / 2, "the forfeits reached the treasury");
        vm.assertEq(handler.poolForfeitReceipts(), 0, "no forfeit in the pool");
        invariant_stakeConserved();
        invariant_forfeitsNeverReachThePool();
    }

    /// @dev Decision 1768: no node claims a job again after its own claim on it lapsed or was
    /// released, so a requester's reclaim after that lapse is never pre-empted by the same node.
    function invariant_endedClaimantNeverClaimsAgain() public view {
        vm.assertEq(handler.claimsAfterOwnEnd(), 0, "a node took back a job its claim had lapsed or released");
    }

    /// @dev Decision 1831: a vote counts only for the round it names, never for a later one.
    function invariant_staleRoundVoteNeverCounts() public view {
        vm.assertEq(handler.staleVotesCounted(), 0, "a vote for another round was counted");
    }

    /// @dev Decision 1595: no failure the claimant's enclave did not sign is ever accepted.
    function invariant_forgedFailureNeverAccepted() public view {
        vm.assertEq(handler.forgedFailuresAccepted(), 0, "forged failures accepted");
    }
}
