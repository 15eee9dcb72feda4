// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnGovernance} from "../../src/FirnGovernance.sol";
import {FirnJobMarket} from "../../src/FirnJobMarket.sol";
import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {IFirnVerifierSet} from "../../src/interfaces/IFirnVerifierSet.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Red team R2: governance (through the real timelock, never faster than its delay) and
/// the guardian against users who acted under the terms in force when they acted. Each test
/// performs the attack and asserts the safe outcome, so it fails while the attack works.
contract AttackGovernanceMidFlightTest is FirnScenario {
    TestNode internal nodeA;

    function setUp() public override {
        super.setUp();
        nodeA = _activeNode(1, SIM, MEASUREMENT);
    }

    // ------------------------------------------------------------------------------------------
    // 1. Protocol fee: read at finalize, not fixed when the job was posted and claimed.

    /// @notice A node claims a 3-day job at protocol fee 0 (the terms it accepted; the challenge
    /// window is fixed per job at post, the fee is not). Governance schedules fee = 10 % right after
    /// the claim; the node cannot leave the claim without forfeiting its bond (releaseJob forfeits
    /// all, failJob most), so it works, proves, and is paid escrow minus the new 10 %.
    function test_attack_protocolFeeRaisedAfterClaimTakesFromThatJob() public {
        _handOver();
        uint256 escrow = 10 ether;
        bytes32 jobId = _postOn(market, escrow, 3 days, 3 days);
        _claimOn(market, jobId, nodeA);
        vm.assertEq(market.protocolFeeBps(), 0, "the node claimed at fee 0");

        bytes memory data = abi.encodeCall(
            IFirnJobMarket.setParameters, (CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, 1000, FALSE_DISPUTE_SLASH)
        );
        bytes32 salt = _schedule(address(market), data);
        vm.warp(block.timestamp + DELAY);
        _execute(address(market), data, salt);

        // The node finishes the job it claimed under fee 0.
        vm.warp(block.timestamp + 12 hours);
        _proveOn(market, jobId, nodeA, keccak256("out"));
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        market.finalize(jobId, _factsFor(jobId));

        // Safe outcome: the job is settled on the fee in force when it was posted/claimed.
        vm.assertEq(
            market.withdrawable(nodeA.operator),
            escrow + CLAIM_BOND,
            "fee raised after the claim was taken from the node's pay for that job"
        );
    }

    // ------------------------------------------------------------------------------------------
    // 2. Slash amount: read when a finding concludes, not fixed when the proof was submitted.

    /// @notice A node proves a job while slashAmount = 0.6 ether. Governance raises slashAmount to
    /// 100 ether (the whole stake) with the proposal already scheduled; a finding on the proof
    /// submitted under the old rule concludes after the change and takes the whole stake.
    function test_attack_slashAmountRaisedAfterProofSlashesUnderTheNewRule() public {
        _handOver();
        bytes memory data = abi.encodeCall(
            IFirnJobMarket.setParameters, (CHALLENGE_WINDOW, 100 ether, CLAIM_BOND, 0, FALSE_DISPUTE_SLASH)
        );
        bytes32 salt = _schedule(address(market), data);
        // Late in the delay the node takes and proves a job under slashAmount = 0.6 ether.
        vm.warp(block.timestamp + DELAY - 1 hours);
        bytes32 jobId = _postOn(market, 3 ether, 1 days, 1 hours);
        _claimOn(market, jobId, nodeA);
        _proveOn(market, jobId, nodeA, keccak256("out"));
        vm.assertEq(market.slashAmount(), SLASH_AMOUNT, "the proof was submitted at slashAmount 0.6 ether");

        vm.warp(block.timestamp + 1 hours);
        _execute(address(market), data, salt);
        IFirnJobMarket.ProofFacts memory facts = _factsFor(jobId);
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(verifierList[i]);
            market.dispute(jobId, 17, facts);
        }
        uint256 left = registry.getNode(nodeA.enclaveId).stake;
        vm.assertEq(
            left,
            MIN_NODE_STAKE - SLASH_AMOUNT,
            "a proof submitted under slashAmount 0.6 ether was slashed under the raised amount"
        );
    }

    // ------------------------------------------------------------------------------------------
    // 3. The guardian's "restrict at once" takes an honest claimant's bond.

    /// @notice The guardian (one key, no delay) revokes the node's measurement late in a claim the
    /// node is honestly working on. submitProof and failJobAttested now refuse the node, so its only
    /// ways out are failJob (refund pro rata of the claim time left) or the lapse (all forfeited to
    /// the owner's treasury). The node did nothing wrong and did not choose to fail: a pure
    /// restriction by the guardian moves most of its bond to the treasury at once.
    function test_attack_guardianRevocationForfeitsAnHonestClaimantsBond() public {
        _handOver();
        bytes32 jobId = _postOn(market, 3 ether, 1 days, 10 hours);
        _claimOn(market, jobId, nodeA);
        // Nine tenths into the claim the enclave has its proof signed; the guardian revokes.
        vm.warp(block.timestamp + 9 hours);
        IFirnJobMarket.WorkProof memory p = _workProof(jobId, nodeA, keccak256("out"));
        bytes memory sig = _sig(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);

        (bytes32 r, bytes32 vs) = _compact(sig);
        vm.prank(nodeA.operator);
        try market.submitProof(p, r, vs) {} catch {}
        if (market.getJob(jobId).status == IFirnJobMarket.JobStatus.Claimed) {
            // The best the node can do now: fail at once.
            vm.prank(nodeA.operator);
            market.failJob(jobId, bytes32("measurement revoked"));
        }
        uint256 owed = market.withdrawable(nodeA.operator);
        if (market.getJob(jobId).status == IFirnJobMarket.JobStatus.Proved) owed += CLAIM_BOND;
        vm.assertEq(owed, CLAIM_BOND, "the guardian's revocation forfeited the honest claimant's bond to the treasury");
    }

    // ------------------------------------------------------------------------------------------
    // 4. Raising minVerifierStake leaves dead stake in every quorum's denominator.

    /// @notice Two 1-ether verifiers join beside the fixture's four 0.5-ether ones (4 ether in
    /// all). Governance raises minVerifierStake to 1 ether: the four small members now have vote
    /// weight 0 and are not verifiers (decision 0801), but their 2 ether stay in
    /// `_totalActiveStake` and so in every later snapshot. A job claimed and proved after the
    /// change: every verifier that can vote (100 % of the voting stake) finds the output wrong,
    /// the finding never reaches 2/3 of 4 ether, and the proof is paid.
    function test_attack_raisedMinVerifierStakeLetsAFraudulentProofBePaid() public {
        address big1 = _verifierAddr(101);
        address big2 = _verifierAddr(102);
        _joinVerifier(big1, 1 ether);
        _joinVerifier(big2, 1 ether);
        _handOver();
        bytes memory data = abi.encodeCall(IFirnVerifierSet.setParameters, (1 ether, UNBONDING));
        bytes32 salt = _schedule(address(verifierSet), data);
        vm.warp(block.timestamp + DELAY);
        _execute(address(verifierSet), data, salt);
        vm.assertFalse(verifierSet.isVerifier(verifierList[0]), "small members can no longer vote");

        bytes32 jobId = _postOn(market, 3 ether, 1 days, 1 hours);
        _claimOn(market, jobId, nodeA);
        _proveOn(market, jobId, nodeA, keccak256("out"));
        IFirnJobMarket.ProofFacts memory facts = _factsFor(jobId);
        vm.prank(big1);
        market.dispute(jobId, 17, facts);
        vm.prank(big2);
        market.dispute(jobId, 17, facts);
        vm.assertEq(
            uint256(market.getJob(jobId).status),
            uint256(IFirnJobMarket.JobStatus.Slashed),
            "every verifier able to vote found the proof wrong, yet under-minimum stake kept the quorum out of reach"
        );
    }

    // ------------------------------------------------------------------------------------------
    // 5. A market migration (new slasher) makes in-flight fraud unslashable.

    /// @notice Governance migrates to a new market (registry.setSlasher and verifierSet.setSlasher
    /// to it, through the timelock). A proof submitted on the old market before the switch is
    /// still in its challenge window: its findings can only conclude through registry.slash, which
    /// now reverts NotSlasher, so the concluding dispute reverts and the fraudulent proof is paid.
    function test_attack_slasherMigrationLetsInFlightFraudBePaid() public {
        _handOver();
        FirnJobMarket market2 = new FirnJobMarket(
            address(timelock), registry, verifierSet, CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, FALSE_DISPUTE_SLASH
        );
        bytes memory d1 = abi.encodeCall(IFirnRegistry.setSlasher, (address(market2)));
        bytes memory d2 = abi.encodeCall(IFirnVerifierSet.setSlasher, (address(market2)));
        bytes32 s1 = _schedule(address(registry), d1);
        bytes32 s2 = _schedule(address(verifierSet), d2);

        // Late in the delay a node proves a job on the old market (a wrong output).
        vm.warp(block.timestamp + DELAY - 1 hours);
        bytes32 jobId = _postOn(market, 3 ether, 1 days, 1 hours);
        _claimOn(market, jobId, nodeA);
        _proveOn(market, jobId, nodeA, keccak256("out"));

        vm.warp(block.timestamp + 1 hours);
        _execute(address(registry), d1, s1);
        _execute(address(verifierSet), d2, s2);

        IFirnJobMarket.ProofFacts memory facts = _factsFor(jobId);
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(verifierList[i]);
            try market.dispute(jobId, 17, facts) {} catch {}
        }
        vm.warp(facts.challengeEndsAt);
        try market.finalize(jobId, facts) {} catch {}
        vm.assertEq(
            market.withdrawable(nodeA.operator),
            0,
            "a proof the verifiers' quorum found wrong was paid because the migration removed the old market's slashing"
        );
    }

    // ------------------------------------------------------------------------------------------
    // 6. Reward parameters apply to the epoch in progress: work already done is repriced.

    /// @notice With an epoch longer than the delay (devnets use seconds of delay), governance
    /// schedules verifierShareBps = 0 right after verifiers worked in the epoch; it executes before
    /// the epoch ends, nobody can close the epoch first, and the work done under a 10 % verifier
    /// share earns nothing.
    function test_attack_verifierShareCutRepricesWorkAlreadyDoneThisEpoch() public {
        // A deployment with a short delay (FIRN_TIMELOCK_DELAY, devnet) against 1-day epochs.
        address[] memory proposers = new address[](1);
        proposers[0] = proposer;
        address[] memory executors = new address[](1);
        executors[0] = address(0);
        timelock = new FirnGovernance(1 hours, proposers, executors, address(0));
        rewards.transferOwnership(address(timelock));
        rewards.fund{value: 10 ether}();

        // Start of an epoch: verifier 0 challenges, the node answers; 1 verifier point, node points.
        uint64 epoch = rewards.currentEpoch() + 1;
        vm.warp(rewards.genesis() + epoch * EPOCH + 1);
        vm.prank(verifierList[0]);
        bytes32 cid = rewards.issueChallenge(nodeA.enclaveId);
        IFirnRewards.Challenge memory c = rewards.getChallenge(cid);
        bytes32 digest = rewards.hashLivenessAnswer(
            IFirnRewards.LivenessAnswer({challengeId: cid, nonce: c.nonce, enclaveId: nodeA.enclaveId, epoch: epoch})
        );
        rewards.answerChallenge(cid, _sig(nodeA.enclaveKey, digest));
        vm.assertTrue(rewards.verifierPoints(epoch, verifierList[0]) != 0, "verifier worked under a 10% share");

        bytes memory data = abi.encodeCall(IFirnRewards.setParameters, (ANSWER_WINDOW, LIVENESS_TARGET, EPOCH_BUDGET_BPS, 0));
        bytes32 salt = bytes32(uint256(77));
        vm.prank(proposer);
        timelock.schedule(address(rewards), 0, data, bytes32(0), salt, 1 hours);
        vm.warp(block.timestamp + 1 hours);
        timelock.execute(address(rewards), 0, data, bytes32(0), salt);

        // What the epoch is budgeted from: the epoch before it (the fixture's registration votes)
        // closed at its first point (decision 1821).
        uint256 available = rewards.totalReceived() - rewards.totalAllocated();
        vm.warp(rewards.genesis() + (epoch + 1) * EPOCH + 1);
        rewards.claimVerifierReward(epoch, verifierList[0]);
        // Safe outcome: the epoch's verifiers are paid on the share in force when they worked.
        uint256 verifierBudget = available * uint256(EPOCH_BUDGET_BPS) / 10_000 * uint256(VERIFIER_SHARE_BPS) / 10_000;
        vm.assertEq(
            rewards.getEpoch(epoch).verifierBudget,
            verifierBudget,
            "work done under a 10% verifier share was repriced to 0 by a change made later in the epoch"
        );
        // The lone worker is paid its share of the active verifier stake (decision 1820).
        vm.assertEq(
            rewards.withdrawable(verifierList[0]),
            verifierBudget * verifierSet.activeStake(verifierList[0]) / verifierSet.totalActiveStake(),
            "paid on the share in force, up to its stake share"
        );
    }
}
