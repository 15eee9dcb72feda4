// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnVerifierSet} from "../src/FirnVerifierSet.sol";
import {IFirnVerifierSet} from "../src/interfaces/IFirnVerifierSet.sol";
import {FirnTest} from "./utils/Vm.sol";

/// @notice Decision 1705: every snapshot counts only stake that can vote. A raised minimum
/// deactivates the members below it in the same call; a member tops up with addStake, and a top-up
/// never weighs more in a round than that round's snapshot counted.
contract FirnVerifierSetMinimumTest is FirnTest {
    FirnVerifierSet internal set;
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA401);
    uint256 internal constant MIN = 1 ether;
    uint64 internal constant UNBONDING = 3 days;

    function setUp() public {
        vm.warp(1_700_000_000);
        set = new FirnVerifierSet(address(this), MIN, UNBONDING);
        address[3] memory who = [alice, bob, carol];
        for (uint256 i = 0; i < 3; ++i) {
            set.setAdmission(who[i], true);
            vm.deal(who[i], 100 ether);
        }
        vm.prank(alice);
        set.join{value: 1 ether}();
        vm.prank(bob);
        set.join{value: 2 ether}();
        vm.prank(carol);
        set.join{value: 3 ether}();
    }

    function _sumActive() internal view returns (uint256 sum) {
        address[] memory list = set.verifiers();
        for (uint256 i = 0; i < list.length; ++i) {
            sum += set.getVerifier(list[i]).stake;
        }
    }

    function test_raisedMinimum_deactivatesMembersBelowItInOneSnapshot() public {
        uint64 next = set.currentSnapshot() + 1;
        uint64 endsAt = uint64(block.timestamp) + 5 days;
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.ParametersUpdated(2.5 ether, 5 days);
        // The walk goes from the end of the set: bob (index 1) before alice (index 0).
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.VerifierDeactivated(bob, 2 ether, 2.5 ether, endsAt, next);
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.VerifierDeactivated(alice, 1 ether, 2.5 ether, endsAt, next);
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.ActiveStakeChanged(next, 3 ether);
        set.setParameters(2.5 ether, 5 days);

        vm.assertEq(set.currentSnapshot(), next, "one snapshot for the whole change");
        vm.assertEq(set.totalStakeAt(next), 3 ether, "the snapshot counts only carol, the one member that can vote");
        vm.assertEq(set.totalActiveStake(), _sumActive(), "total = the active members' stakes");
        vm.assertEq(set.verifierCount(), 1, "one active member left");
        vm.assertEq(uint256(set.getVerifier(alice).status), uint256(IFirnVerifierSet.VerifierStatus.Leaving), "alice");
        vm.assertEq(set.getVerifier(bob).unbondingEndsAt, endsAt, "bob unbonds from now");
        vm.assertEq(set.voteWeight(carol, next), 3 ether, "carol votes with her stake");
        vm.assertEq(set.voteWeight(bob, next), 0, "bob has no vote");

        // A deactivated member's stake comes back after the unbonding period; it may join again.
        vm.warp(endsAt);
        uint256 before = bob.balance;
        vm.prank(bob);
        set.withdraw();
        vm.assertEq(bob.balance - before, 2 ether, "bob's stake returned");
        vm.prank(bob);
        set.join{value: 2.5 ether}();
        vm.assertEq(set.totalActiveStake(), 5.5 ether, "bob counted again at the new minimum");
    }

    function test_loweredOrEqualMinimum_deactivatesNobody() public {
        uint64 snap = set.currentSnapshot();
        set.setParameters(0.5 ether, UNBONDING);
        set.setParameters(1 ether, UNBONDING);
        vm.assertEq(set.currentSnapshot(), snap, "no snapshot: nobody left");
        vm.assertEq(set.verifierCount(), 3, "all three still active");
        vm.assertEq(set.totalActiveStake(), 6 ether, "total unchanged");
    }

    function test_addStake_beforeTheRaiseKeepsTheMemberActive() public {
        uint64 next = set.currentSnapshot() + 1;
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.ActiveStakeChanged(next, 7.5 ether);
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.StakeAdded(alice, 1.5 ether, 2.5 ether, next);
        vm.prank(alice);
        set.addStake{value: 1.5 ether}();
        set.setParameters(2.5 ether, UNBONDING);
        vm.assertTrue(set.isVerifier(alice), "alice topped up in time");
        vm.assertFalse(set.isVerifier(bob), "bob did not");
        vm.assertEq(set.totalActiveStake(), 5.5 ether, "alice 2.5 + carol 3");
        vm.assertEq(set.totalActiveStake(), _sumActive(), "total = the active members' stakes");
    }

    /// @notice Attack: a member tops up after a round opened, to outweigh the stake that round's
    /// snapshot counted. Its weight there stays what the snapshot counted; later rounds see it all.
    function test_addStake_addsNothingToRoundsOpenedBefore() public {
        uint64 round1 = set.currentSnapshot(); // total 6 ether, alice 1
        vm.prank(alice);
        set.addStake{value: 10 ether}();
        uint64 round2 = set.currentSnapshot(); // total 16, alice 11
        vm.prank(alice);
        set.addStake{value: 5 ether}();
        uint64 round3 = set.currentSnapshot(); // total 21, alice 16

        vm.assertEq(set.voteWeight(alice, round1), 1 ether, "round 1 counted 1 ether for alice");
        vm.assertEq(set.voteWeight(alice, round2), 11 ether, "round 2 counted 11 ether");
        vm.assertEq(set.voteWeight(alice, round3), 16 ether, "round 3 counts all of it");
        vm.assertEq(set.totalStakeAt(round1), 6 ether, "round 1 total");
        vm.assertEq(set.totalStakeAt(round3), 21 ether, "round 3 total");
        vm.assertLe(set.voteWeight(alice, round1) * 3, set.totalStakeAt(round1) * 2, "alice alone is no quorum in round 1");
    }

    function test_addStake_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.EmptyTopUp.selector, alice));
        vm.prank(alice);
        set.addStake();

        address stranger = address(0x5eed);
        vm.deal(stranger, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.NotVerifier.selector, stranger));
        vm.prank(stranger);
        set.addStake{value: 1 ether}();

        // A leaving member (or one a raise deactivated) unbonds; it joins again instead.
        vm.prank(bob);
        set.requestLeave();
        vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.NotVerifier.selector, bob));
        vm.prank(bob);
        set.addStake{value: 1 ether}();
    }

    /// @notice Whatever the stakes and the new minimum, the snapshot after a raise counts exactly the
    /// members that can vote.
    function testFuzz_raisedMinimum_totalCountsOnlyVotingStake(uint256 a, uint256 b, uint256 c, uint256 newMin)
        public
    {
        FirnVerifierSet s = new FirnVerifierSet(address(this), 1, UNBONDING);
        uint256[3] memory stakes = [bound(a, 1, 50 ether), bound(b, 1, 50 ether), bound(c, 1, 50 ether)];
        address[3] memory who = [alice, bob, carol];
        for (uint256 i = 0; i < 3; ++i) {
            s.setAdmission(who[i], true);
            vm.prank(who[i]);
            s.join{value: stakes[i]}();
        }
        newMin = bound(newMin, 1, 60 ether);
        s.setParameters(newMin, UNBONDING);
        uint256 expected;
        for (uint256 i = 0; i < 3; ++i) {
            bool votes = stakes[i] >= newMin;
            if (votes) expected += stakes[i];
            vm.assertEq(s.isVerifier(who[i]), votes, "votes iff at or above the minimum");
            vm.assertEq(
                uint256(s.getVerifier(who[i]).status),
                uint256(votes ? IFirnVerifierSet.VerifierStatus.Active : IFirnVerifierSet.VerifierStatus.Leaving),
                "below the minimum: deactivated"
            );
        }
        vm.assertEq(s.totalActiveStake(), expected, "total = voting stake");
        vm.assertEq(s.totalStakeAt(s.currentSnapshot()), expected, "snapshot = voting stake");
    }
}
