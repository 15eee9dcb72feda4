// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {FirnVerifierSet} from "../src/FirnVerifierSet.sol";
import {IFirnVerifierSet} from "../src/interfaces/IFirnVerifierSet.sol";
import {FirnTest} from "./utils/Vm.sol";

contract FirnVerifierSetTest is FirnTest {
    FirnVerifierSet internal set;
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    uint256 internal constant MIN = 1 ether;
    uint64 internal constant UNBONDING = 3 days;

    function setUp() public {
        vm.warp(1_700_000_000);
        set = new FirnVerifierSet(address(this), MIN, 2, UNBONDING);
        vm.deal(alice, 10 ether);
        vm.deal(bob, 10 ether);
    }

    function test_constructor_rejectsZeroThreshold() public {
        vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.InvalidThreshold.selector, uint16(0)));
        new FirnVerifierSet(address(this), MIN, 0, UNBONDING);
    }

    function test_join_emitsAndCounts() public {
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.VerifierJoined(alice, 2 ether);
        vm.prank(alice);
        set.join{value: 2 ether}();
        vm.assertTrue(set.isVerifier(alice), "alice votes");
        vm.assertEq(set.verifierCount(), 1, "count");
        vm.assertEq(set.verifiers()[0], alice, "list");
        vm.assertEq(set.getVerifier(alice).stake, 2 ether, "stake");
        vm.assertEq(address(set).balance, 2 ether, "balance");
    }

    function test_join_revertsOnLowStake() public {
        vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.StakeTooLow.selector, MIN - 1, MIN));
        vm.prank(alice);
        set.join{value: MIN - 1}();
    }

    function test_join_revertsTwice() public {
        vm.prank(alice);
        set.join{value: MIN}();
        vm.expectRevert(
            abi.encodeWithSelector(IFirnVerifierSet.AlreadyMember.selector, alice, IFirnVerifierSet.VerifierStatus.Active)
        );
        vm.prank(alice);
        set.join{value: MIN}();
    }

    function test_requestLeave_stopsVotingAndWithdrawWaitsForUnbonding() public {
        vm.prank(alice);
        set.join{value: MIN}();
        uint64 endsAt = uint64(block.timestamp) + UNBONDING;
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.LeaveRequested(alice, endsAt);
        vm.prank(alice);
        set.requestLeave();
        vm.assertFalse(set.isVerifier(alice), "no longer votes");
        vm.assertEq(set.verifierCount(), 0, "count");

        vm.warp(endsAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnVerifierSet.StillUnbonding.selector, alice, endsAt, uint64(endsAt - 1))
        );
        vm.prank(alice);
        set.withdraw();

        vm.warp(endsAt);
        uint256 before = alice.balance;
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.VerifierWithdrew(alice, MIN);
        vm.prank(alice);
        set.withdraw();
        vm.assertEq(alice.balance, before + MIN, "stake returned");
        vm.assertEq(address(set).balance, 0, "empty");
        // A former member may join again.
        vm.prank(alice);
        set.join{value: MIN}();
        vm.assertTrue(set.isVerifier(alice), "rejoined");
    }

    function test_requestLeave_revertsForNonMember() public {
        vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.NotVerifier.selector, bob));
        vm.prank(bob);
        set.requestLeave();
    }

    function test_withdraw_revertsWithoutLeave() public {
        vm.prank(alice);
        set.join{value: MIN}();
        vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.NotLeaving.selector, alice));
        vm.prank(alice);
        set.withdraw();
    }

    function test_setThreshold_ownerOnlyAndNonZero() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        set.setThreshold(3);
        vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.InvalidThreshold.selector, uint16(0)));
        set.setThreshold(0);
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.ThresholdUpdated(2, 3);
        set.setThreshold(3);
        vm.assertEq(set.threshold(), 3, "threshold");
    }

    function test_setParameters() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        set.setParameters(1, 1);
        vm.expectEmit(address(set));
        emit IFirnVerifierSet.ParametersUpdated(5 ether, 1 days);
        set.setParameters(5 ether, 1 days);
        vm.assertEq(set.minVerifierStake(), 5 ether, "min");
        vm.assertEq(set.unbondingPeriod(), 1 days, "unbonding");
    }

    function testFuzz_join_stakeBoundary(uint256 stake) public {
        stake = bound(stake, 0, 5 ether);
        vm.prank(alice);
        if (stake < MIN) {
            vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.StakeTooLow.selector, stake, MIN));
            set.join{value: stake}();
        } else {
            set.join{value: stake}();
            vm.assertEq(set.getVerifier(alice).stake, stake, "stake kept");
        }
    }

    function testFuzz_withdraw_timing(uint256 wait) public {
        wait = bound(wait, 0, 2 * UNBONDING);
        vm.prank(alice);
        set.join{value: MIN}();
        vm.prank(alice);
        set.requestLeave();
        vm.warp(block.timestamp + wait);
        vm.prank(alice);
        if (wait < UNBONDING) vm.expectRevert();
        set.withdraw();
    }
}
