// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../src/interfaces/IFirnRegistry.sol";
import {FirnScenario} from "./utils/FirnScenario.sol";

/// @notice A round's denominator is the stake that can still vote in it plus the votes already
/// cast (decision 1720): stake that left without voting stops counting, a vote cast before leaving
/// keeps its weight in both the tally and the denominator, and stake added after the snapshot never
/// counts.
contract FirnQuorumStakeTest is FirnScenario {
    address internal big1;
    address internal big2;

    function setUp() public override {
        super.setUp();
        big1 = _verifierAddr(101);
        big2 = _verifierAddr(102);
        _joinVerifier(big1, 1 ether);
        _joinVerifier(big2, 1 ether);
    }

    function _claimAndProve(TestNode memory t) internal returns (bytes32 jobId, IFirnJobMarket.ProofFacts memory f) {
        jobId = _postOn(market, 3 ether, 7 days, 3 days);
        _claimOn(market, jobId, t);
        f = _proveOn(market, jobId, t, keccak256("garbage"));
    }

    /// @dev A coalition holding exactly one third (not more) refuses, and the member that voted
    /// first leaves before the last refusal: were its stake dropped from the denominator while its
    /// vote stayed, the refusal would pass 1/3 of 3.5 ether with 1.5 ether and reject a valid node.
    function test_attack_voteThenLeaveCannotLowerTheBar() public {
        address c1 = _verifierAddr(201);
        address c2 = _verifierAddr(202);
        _joinVerifier(c1, 1 ether);
        _joinVerifier(c2, 0.5 ether);
        // Honest: 2 + 2 = 4 ether; coalition 1.5 ether; total 5.5: coalition under 1/3.
        TestNode memory t = _node(7);
        _register(t, SIM, MEASUREMENT);
        uint64 snap = registry.getNode(t.enclaveId).snapshotId;
        vm.prank(c1);
        registry.refuse(t.enclaveId, 1, t.evidenceDigest, 1);
        vm.prank(c1);
        verifierSet.requestLeave();
        // An honest member that never voted also leaves: its stake stops counting.
        vm.prank(verifierList[0]);
        verifierSet.requestLeave();
        vm.prank(c2);
        registry.refuse(t.enclaveId, 1, t.evidenceDigest, 1);
        vm.assertEq(uint256(registry.getNode(t.enclaveId).status), uint256(IFirnRegistry.NodeStatus.Pending), "pending");

        address[] memory voters = new address[](2);
        voters[0] = c1;
        voters[1] = c2;
        // 1.5 cast + 3.5 that can still vote (0.5 left without voting).
        vm.assertEq(
            verifierSet.quorumStakeAt(snap, voters, 1.5 ether), 5 ether, "cast vote kept, silent leaver dropped"
        );
        vm.assertEq(verifierSet.totalStakeAt(snap), 5.5 ether, "snapshot unchanged");
        // The honest members still able to vote (3.5 of 5) approve.
        for (uint256 i = 1; i < 4; ++i) {
            vm.prank(verifierList[i]);
            registry.approve(t.enclaveId, 1, t.evidenceDigest);
        }
        vm.prank(big1);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.assertFalse(registry.isActive(t.enclaveId), "2.5 of 5 is not yet 2/3");
        vm.prank(big2);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.assertTrue(registry.isActive(t.enclaveId), "3.5 of 5 passes 2/3");
    }

    /// @dev The findings were cast before governance's raise deactivated the silent members: no
    /// vote is left to cast that could conclude the finding, so finalize concludes it instead of
    /// paying the fraudulent proof.
    function test_findingPassedByALaterDeactivationSlashesAtFinalize() public {
        TestNode memory cheat = _activeNode(1, SIM, MEASUREMENT); // 1.5 of 4 ether so far
        vm.prank(big1);
        registry.approve(cheat.enclaveId, 1, cheat.evidenceDigest);
        vm.prank(big2);
        registry.approve(cheat.enclaveId, 1, cheat.evidenceDigest);
        (bytes32 jobId, IFirnJobMarket.ProofFacts memory f) = _claimAndProve(cheat);
        vm.prank(big1);
        market.dispute(jobId, 17, f);
        vm.prank(big2);
        market.dispute(jobId, 17, f);
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Proved), "2 of 4 open");
        verifierSet.setParameters(1 ether, UNBONDING); // deactivates the four 0.5-ether members
        vm.warp(f.challengeEndsAt);
        market.finalize(jobId, f);
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Slashed), "slashed");
        vm.assertEq(market.withdrawable(cheat.operator), 0, "fraud unpaid");
    }

    /// @dev After a deactivation, stake added since the snapshot (a new member, a top-up) still adds
    /// nothing to the round's denominator, and a slash of a member that had not voted lowers it by
    /// the slashed amount only.
    function test_quorumStake_countsNoStakeAddedAfterTheSnapshot() public {
        TestNode memory t = _node(8);
        _register(t, SIM, MEASUREMENT);
        uint64 snap = registry.getNode(t.enclaveId).snapshotId;
        address[] memory none = new address[](0);
        vm.assertEq(verifierSet.lastReduction(), 0, "no reduction yet");
        vm.assertEq(verifierSet.quorumStakeAt(snap, none, 0), 4 ether, "fast path: the snapshot");
        verifierSet.setParameters(1 ether, UNBONDING);
        vm.assertTrue(verifierSet.lastReduction() > snap, "raise recorded");
        vm.assertEq(verifierSet.quorumStakeAt(snap, none, 0), 2 ether, "deactivated stake dropped");
        vm.prank(big1);
        verifierSet.addStake{value: 5 ether}();
        _joinVerifier(_verifierAddr(301), 9 ether);
        // Later stake gives no vote here; the bar never falls under the stake active now (decision
        // 1758: 6 + 1 + 9 ether) nor rises over the snapshot's total (decision 1779: 4 ether).
        vm.assertEq(verifierSet.quorumStakeAt(snap, none, 0), 4 ether, "bar: capped at the snapshot's total");
        vm.prank(address(market));
        verifierSet.slash(big2, 0.25 ether, stranger, bytes32(0)); // 0.75 left is under 1 ether
        vm.assertEq(verifierSet.totalActiveStake(), 15 ether, "deactivated by the slash");
        vm.assertEq(verifierSet.quorumStakeAt(snap, none, 0), 4 ether, "still the snapshot's total");
        vm.prank(big1);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.assertFalse(registry.isActive(t.enclaveId), "1 of the snapshot's 4 ether never decides");
        uint32 round = registry.getNode(t.enclaveId).round;
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.RoundUndecided.selector, t.enclaveId, round, 1 ether, 0, 4 ether)
        );
        registry.concludeRound(t.enclaveId, round);

        // The liveness trade: the stuck registration exits with its stake back and registers
        // again under a fresh snapshot, where today's members decide.
        vm.prank(t.operator);
        registry.requestExit(t.enclaveId);
        vm.assertEq(registry.withdrawable(t.operator), MIN_NODE_STAKE, "the stake comes back");
        _register(t, SIM, MEASUREMENT);
        vm.assertEq(registry.getNode(t.enclaveId).snapshotId, verifierSet.currentSnapshot(), "fresh snapshot");
        vm.prank(big1);
        registry.approve(t.enclaveId, 2, t.evidenceDigest);
        vm.prank(_verifierAddr(301));
        registry.approve(t.enclaveId, 2, t.evidenceDigest);
        vm.assertTrue(registry.isActive(t.enclaveId), "the re-registered node passes");
    }

    /// @dev The floor (decisions 1758, 1779) counts stake joined since the snapshot (admitted by
    /// governance), never stake topped up since (no admission): neither a member of the snapshot
    /// nor a newcomer raises the bar by adding stake (decision 1783).
    function test_quorumStake_floorCountsJoinsNotTopUps() public {
        TestNode memory t = _node(10);
        _register(t, SIM, MEASUREMENT);
        uint64 snap = registry.getNode(t.enclaveId).snapshotId;
        address[] memory none = new address[](0);
        vm.prank(big2);
        verifierSet.requestLeave(); // a reduction: 3 of the snapshot's 4 ether can still vote
        vm.assertEq(verifierSet.quorumStakeAt(snap, none, 0), 3 ether, "what can still vote");
        address newcomer = _verifierAddr(301);
        _joinVerifier(newcomer, 0.5 ether);
        vm.assertEq(verifierSet.quorumStakeAt(snap, none, 0), 3.5 ether, "a join raises the floor");
        vm.deal(newcomer, 3 ether);
        vm.prank(newcomer);
        verifierSet.addStake{value: 3 ether}();
        vm.deal(big1, 2 ether);
        vm.prank(big1);
        verifierSet.addStake{value: 2 ether}();
        vm.assertEq(verifierSet.totalActiveStake(), 8.5 ether, "active now");
        vm.assertEq(verifierSet.quorumStakeAt(snap, none, 0), 3.5 ether, "top-ups leave the floor where it was");
    }

    /// @dev 1720's liveness kept under 1758: after a minimum raise with no later growth, the
    /// snapshot's members that can still vote carry the round alone.
    function test_quorumStake_raiseWithoutGrowthStillPasses() public {
        TestNode memory t = _node(9);
        _register(t, SIM, MEASUREMENT);
        verifierSet.setParameters(1 ether, UNBONDING);
        vm.assertEq(verifierSet.totalActiveStake(), 2 ether, "only big1 and big2 remain");
        vm.prank(big1);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.assertFalse(registry.isActive(t.enclaveId), "half is not enough");
        vm.prank(big2);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.assertTrue(registry.isActive(t.enclaveId), "the members left carry the round");
    }
}
