// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {IFirnVerifierSet} from "../../src/interfaces/IFirnVerifierSet.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Red team R3: the newest contract rules (1695-1708). Each test performs an attack and
/// asserts the safe outcome, so it fails while the attack works.
contract AttackR3NewRulesTest is FirnScenario {
    // ------------------------------------------------------------------------------------------
    // 1. Decision 1705 fixed dead stake in snapshots taken AFTER a raise of minVerifierStake, but a
    //    job's round snapshot is taken at its CLAIM (1141), up to MAX_CLAIM_TIMEOUT (7 days) plus
    //    the challenge window before its findings are counted. A cheating node claims while the
    //    raise waits in the timelock (public for DELAY), proves garbage after the raise executed:
    //    the deactivated members' stake still sits in the round's denominator and `voteWeight`
    //    gives them 0 (status Leaving), so every member that can vote finds it wrong and the
    //    finding still cannot pass 2/3. The fraudulent proof is paid, and the node keeps its stake.

    function test_attack_claimBeforeVerifierMinimumRaiseMakesFraudUnslashable() public {
        TestNode memory cheat = _activeNode(1, SIM, MEASUREMENT);
        address big1 = _verifierAddr(101);
        address big2 = _verifierAddr(102);
        _joinVerifier(big1, 1 ether);
        _joinVerifier(big2, 1 ether);
        _handOver();
        // Governance schedules a raise to 1 ether (public for DELAY); the four 0.5-ether members
        // could top up, but one that does not (or cannot) leaves dead stake in open rounds.
        bytes memory data = abi.encodeCall(IFirnVerifierSet.setParameters, (1 ether, UNBONDING));
        bytes32 salt = _schedule(address(verifierSet), data);

        // The cheat claims a job during the delay: its round snapshot counts 4 ether of stake.
        bytes32 jobId = _postOn(market, 3 ether, 7 days, 3 days);
        _claimOn(market, jobId, cheat);
        vm.warp(block.timestamp + DELAY);
        _execute(address(verifierSet), data, salt);
        vm.assertFalse(verifierSet.isVerifier(verifierList[0]), "small members deactivated");

        // Garbage proved after the raise; every member able to vote finds it wrong at once.
        IFirnJobMarket.ProofFacts memory facts = _proveOn(market, jobId, cheat, keccak256("garbage"));
        vm.prank(big1);
        market.dispute(jobId, 17, facts);
        vm.prank(big2);
        market.dispute(jobId, 17, facts);
        // A deactivated member cannot add its weight (voteWeight 0 -> NotVerifier).
        vm.prank(verifierList[0]);
        try market.dispute(jobId, 17, facts) {} catch {}

        if (market.getJob(jobId).status == IFirnJobMarket.JobStatus.Proved) {
            vm.warp(facts.challengeEndsAt);
            market.finalize(jobId, facts);
        }
        vm.assertEq(
            uint256(market.getJob(jobId).status),
            uint256(IFirnJobMarket.JobStatus.Slashed),
            "all voting stake found the proof wrong, but stake deactivated after the claim kept 2/3 out of reach: fraud paid"
        );
    }

    // ------------------------------------------------------------------------------------------
    // 2. Decision 1708: "the platform share goes to an eligible co-tenant". Only a co-tenant that
    //    answers AFTER the drop can take it; daemons race every node at the epoch's start, so the
    //    co-tenant has usually answered its whole target already (as a non-holder: no points) and
    //    is refused every further challenge (LivenessTargetReached). dropRevokedPoints (called by
    //    the liveness challenger, or by anyone) then leaves the platform with no share at all for
    //    an epoch it was proved live all along by an eligible enclave; without the drop, the
    //    revoked enclave keeps it (the 1708 attack in the other answer order).

    function test_attack_dropRevokedPointsLeavesTheLiveCoTenantWithoutTheShare() public {
        registry.setGuardian(guardian);
        TestNode memory revoked = _node(1);
        _activate(revoked, 2 * MIN_NODE_STAKE, SIM, MEASUREMENT);
        TestNode memory coTenant = _node(5);
        coTenant.platformIdHash = revoked.platformIdHash;
        _activate(coTenant, MIN_NODE_STAKE, SIM, MEASUREMENT_B);
        _fundPool(10 ether);

        uint64 g0 = rewards.genesis();
        vm.warp(g0 + 1);
        // The epoch-start race: both tenants answer what they owe; the bigger stake holds the share.
        _answer(0, revoked);
        _answer(1, coTenant);
        _answer(2, coTenant);
        _answer(3, coTenant);
        vm.assertEq(rewards.nodeAnswers(0, coTenant.enclaveId), LIVENESS_TARGET, "co-tenant answered its target");

        vm.warp(g0 + 60);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.prank(stranger);
        rewards.dropRevokedPoints(revoked.enclaveId);

        // The co-tenant stays live and eligible all epoch, but no verifier may challenge it again.
        vm.warp(g0 + 2 hours);
        address extra = _verifierAddr(77);
        _joinVerifier(extra, MIN_VERIFIER_STAKE);
        vm.prank(extra);
        try rewards.issueChallenge(coTenant.enclaveId) returns (bytes32 id) {
            IFirnRewards.Challenge memory c = rewards.getChallenge(id);
            rewards.answerChallenge(
                id,
                _sig(
                    coTenant.enclaveKey,
                    rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch))
                )
            );
        } catch {}

        vm.warp(g0 + EPOCH + 1);
        vm.assertEq(rewards.pendingNodeReward(0, revoked.enclaveId), 0, "revoked enclave dropped");
        vm.assertTrue(
            rewards.pendingNodeReward(0, coTenant.enclaveId) != 0,
            "the eligible co-tenant that proved the platform live all epoch gets no share (1708 promises it)"
        );
    }

    // ------------------------------------------------------------------------------------------
    // 3. Decision 1702 returns the whole bond to a claimant made ineligible after its claim,
    //    whenever it fails or releases. Nothing then makes it let go early: it can hold the job
    //    until the last second of its claim (up to MAX_CLAIM_TIMEOUT, 7 days), the requester cannot
    //    reclaim a Claimed job before the lapse, and releasing at the end still returns the whole
    //    bond. Before 1702 the time-left rule (1571) made such a hold cost the bond; now holding a
    //    requester's job hostage for a week after a revocation is free.

    function test_attack_revokedClaimantHoldsTheJobHostageForFree() public {
        registry.setGuardian(guardian);
        TestNode memory node = _activeNode(1, SIM, MEASUREMENT);
        bytes32 jobId = _postOn(market, 1 ether, 8 days, 7 days);
        _claimOn(market, jobId, node);
        uint64 claimExpiresAt = uint64(market.getJob(jobId).claimExpiresAt);

        vm.warp(block.timestamp + 1 hours);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);

        // The requester sees the claimant cannot prove any more and wants its job back.
        vm.warp(block.timestamp + 1);
        vm.prank(requester);
        bool reclaimed;
        try market.reclaim(jobId) {
            reclaimed = true;
        } catch {}

        uint256 refund;
        if (!reclaimed) {
            // The claimant holds the job to the last second of its claim, then releases it.
            vm.warp(claimExpiresAt);
            uint256 before = market.withdrawable(node.operator);
            vm.prank(node.operator);
            market.releaseJob(jobId);
            refund = market.withdrawable(node.operator) - before;
        }
        vm.assertTrue(
            reclaimed || refund < CLAIM_BOND,
            "a revoked claimant held the requester's job for ~7 days and still got its whole bond back"
        );
    }

    // ------------------------------------------------------------------------------------------
    // 4. releaseJob has no lapse check (failJob refuses after the claim expired: "a lapsed claim's
    //    bond is forfeited"), and 1702's return asks only whether the node is ineligible NOW. A
    //    node that claims and lets its claim lapse through its own inaction has lost its bond
    //    (1625); if any later, unrelated revocation of its measurement (or withdrawal of its TEE
    //    type) comes before the requester or a successor touches the job, releaseJob returns the
    //    whole bond anyway. The revocation did not cause the failure: it came after the lapse.

    function test_attack_lapsedClaimBondReturnedByALaterRevocation() public {
        registry.setGuardian(guardian);
        TestNode memory node = _activeNode(1, SIM, MEASUREMENT);
        bytes32 jobId = _postOn(market, 1 ether, 30 days, 1 hours);
        _claimOn(market, jobId, node);
        // The node does nothing; its claim lapses (its own act: the bond is forfeit, 1625).
        vm.warp(block.timestamp + 2 hours);
        vm.prank(node.operator);
        vm.expectRevert();
        market.failJob(jobId, bytes32("late"));

        // Days later the guardian revokes the measurement for an unrelated reason.
        vm.warp(block.timestamp + 3 days);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);

        uint256 before = market.withdrawable(node.operator);
        vm.prank(node.operator);
        try market.releaseJob(jobId) {} catch {}
        uint256 refund = market.withdrawable(node.operator) - before;
        vm.assertEq(refund, 0, "a bond lost to the node's own lapse came back through a later, unrelated revocation");
    }

    // ------------------------------------------------------------------------------------------
    // 5. dropRevokedPoints acts only on ineligibility 2 or 3, and the registry reports 1 (not
    //    Active) before either. A node whose measurement is revoked calls requestExit right after
    //    the revocation (it can earn nothing more, and must re-register on a new image anyway):
    //    it is now "exited", the drop reverts NodeNotRevoked(reason 1), and the revoked node is
    //    paid its points for the epoch of its revocation, which 1708 says it loses.

    function test_attack_revokedNodeExitsToKeepItsRevocationEpochPoints() public {
        registry.setGuardian(guardian);
        TestNode memory node = _activeNode(1, SIM, MEASUREMENT);
        TestNode memory other = _activeNode(2, SIM, MEASUREMENT_B);
        _fundPool(10 ether);

        uint64 g0 = rewards.genesis();
        vm.warp(g0 + 1);
        _answer(0, node);
        _answer(0, other);

        vm.warp(g0 + 60);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        // Same block, before the liveness challenger's log scan: the operator exits.
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);
        vm.prank(stranger);
        try rewards.dropRevokedPoints(node.enclaveId) {} catch {}

        vm.warp(g0 + EPOCH + 1);
        vm.assertEq(
            rewards.pendingNodeReward(0, node.enclaveId),
            0,
            "the revoked node escaped dropRevokedPoints by exiting and is paid for its revocation epoch"
        );
    }

    // ------------------------------------------------------------------------------------------
    // 6. The same dead stake in registry rounds (1705 "left as it is"): a registration whose round
    //    opened before a raise of minVerifierStake can never be approved once the deactivated
    //    members hold a third or more of its snapshot. The honest operator's only exits are its
    //    own requestExit or a refusal, both of which keep the registration fee, and it must pay
    //    the fee again to register (a key rotation straddling a raise is stuck the same way).

    function test_attack_registrationOpenedBeforeAVerifierMinimumRaiseCanNeverBeApproved() public {
        address big1 = _verifierAddr(101);
        address big2 = _verifierAddr(102);
        _joinVerifier(big1, 1 ether);
        _joinVerifier(big2, 1 ether);
        TestNode memory node = _node(9);
        _register(node, SIM, MEASUREMENT); // round snapshot: 4 ether
        verifierSet.setParameters(1 ether, UNBONDING); // (through the timelock in production)
        vm.prank(big1);
        registry.approve(node.enclaveId, 1, node.evidenceDigest);
        vm.prank(big2);
        registry.approve(node.enclaveId, 1, node.evidenceDigest);
        vm.assertTrue(
            registry.isActive(node.enclaveId),
            "every verifier able to vote approved, yet the pre-raise snapshot keeps the registration pending for ever"
        );
    }

    // ------------------------------------------------------------------------------------------
    // 7. A revoked node cannot answer after its revocation, so every current-epoch point that
    //    dropRevokedPoints removes was earned while its measurement was allowed, the very reason
    //    1708 gives for keeping ended epochs. The guardian (no timelock; 0102 and 1702: "a guardian
    //    action may block work; it must not move money") revokes a measurement one minute before
    //    an epoch ends and anyone drops its nodes' points: the whole epoch's node budget moves to
    //    the nodes of the other measurement, who kept the platform live no more than they did.

    function test_attack_lastMinuteGuardianRevocationMovesTheEpochsNodeBudget() public {
        registry.setGuardian(guardian);
        TestNode memory victim = _activeNode(1, SIM, MEASUREMENT);
        TestNode memory rival = _activeNode(2, SIM, MEASUREMENT_B);
        _fundPool(10 ether);

        uint64 g0 = rewards.genesis();
        vm.warp(g0 + 1);
        for (uint256 i = 0; i < LIVENESS_TARGET; ++i) {
            _answer(i, victim);
            _answer(i, rival);
        }
        // One minute before the epoch ends: revoke, then drop (anyone may).
        vm.warp(g0 + EPOCH - 60);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.prank(rival.operator);
        rewards.dropRevokedPoints(victim.enclaveId);

        vm.warp(g0 + EPOCH + 1);
        // Equal stakes, equal answers: without the revocation each is owed half the node budget
        // (10 ether x 50 % epoch budget x 90 % node share / 2 = 2.25 ether). Whatever the victim
        // loses (the drop may stand: test 5), its rival must not gain it from a guardian act.
        uint256 rivalReward = rewards.pendingNodeReward(0, rival.enclaveId);
        vm.assertEq(rewards.pendingNodeReward(0, victim.enclaveId), 0, "victim dropped");
        vm.assertEq(
            rivalReward,
            2.25 ether,
            "an instant guardian act in the epoch's last minute moved the victim's share, earned while allowed, to its rival"
        );
    }
}
