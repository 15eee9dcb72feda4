// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {IFirnVerifierSet} from "../../src/interfaces/IFirnVerifierSet.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Governance within its powers, through the real timelock. Decision 1778 fixes the new
/// slasher's time when `setSlasher` executes (now + unbonding + 1) and covers a LOWERED unbonding,
/// but not a RAISED one: a batch `setSlasher(thief); setParameters(.., 30 days, ..)` leaves the
/// slasher due after 7 days while every node (verifier) that objects and asks to exit at once,
/// the very way out 1778 promises, unbonds for 30 days. The new slasher takes its stake.
/// Safe outcome: the objecting staker who exits right when the change executes gets its whole stake.
contract AttackSlasherUnbondingRaiseTest is FirnScenario {
    TestNode internal node;
    address internal thief = address(0x7417);

    function setUp() public override {
        super.setUp();
        node = _activeNode(1, SIM, MEASUREMENT);
        _handOver();
    }

    function test_attack_raisedUnbondingAfterSetSlasherTrapsObjectingNode() public {
        bytes memory swap = abi.encodeCall(IFirnRegistry.setSlasher, (thief));
        bytes memory raise = abi.encodeCall(
            IFirnRegistry.setParameters, (registry.minNodeStake(), uint64(30 days), registry.registrationFee())
        );
        bytes32 s1 = _schedule(address(registry), swap);
        bytes32 s2 = _schedule(address(registry), raise);
        vm.warp(block.timestamp + DELAY);
        // One block: the swap, then the raise (a batch; nobody can act in between).
        _execute(address(registry), swap, s1);
        _execute(address(registry), raise, s2);
        // The operator objects at once, as 1778 tells it to.
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);

        (, uint64 at) = registry.pendingSlasher();
        vm.warp(at);
        vm.prank(thief);
        try registry.slash(node.enclaveId, type(uint256).max, thief, bytes32("no fault")) {} catch {}

        vm.warp(block.timestamp + 30 days);
        uint256 before = node.operator.balance;
        vm.prank(node.operator);
        try registry.withdrawStake(node.enclaveId) {} catch {}
        vm.assertEq(
            node.operator.balance - before, MIN_NODE_STAKE, "new slasher took an objecting node's stake (unbonding raised)"
        );
    }

    function test_attack_raisedUnbondingAfterSetSlasherTrapsObjectingVerifier() public {
        address v = verifierList[0];
        bytes memory swap = abi.encodeCall(IFirnVerifierSet.setSlasher, (thief));
        bytes memory raise =
            abi.encodeCall(IFirnVerifierSet.setParameters, (verifierSet.minVerifierStake(), uint64(30 days)));
        bytes32 s1 = _schedule(address(verifierSet), swap);
        bytes32 s2 = _schedule(address(verifierSet), raise);
        vm.warp(block.timestamp + DELAY);
        _execute(address(verifierSet), swap, s1);
        _execute(address(verifierSet), raise, s2);
        vm.prank(v);
        verifierSet.requestLeave();

        (, uint64 at) = verifierSet.pendingSlasher();
        vm.warp(at);
        vm.prank(thief);
        try verifierSet.slash(v, type(uint256).max, thief, bytes32("no fault")) {} catch {}

        vm.warp(block.timestamp + 30 days);
        uint256 before = v.balance;
        vm.prank(v);
        try verifierSet.withdraw() {} catch {}
        vm.assertEq(v.balance - before, MIN_VERIFIER_STAKE, "new slasher took an objecting verifier's stake (unbonding raised)");
    }

    /// @notice The raise moves the pending change to now + 30 days + 1 and says so
    /// (SlasherChangeScheduled again); an exit requested before the raise keeps its 7-day end and
    /// pays in full; setting the pending slasher again keeps the moved time.
    function test_raiseMovesThePendingChangeAndEarlierExitsKeepTheirEnd() public {
        vm.prank(address(timelock));
        registry.setSlasher(thief);
        (, uint64 scheduledAt) = registry.pendingSlasher();
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);
        uint64 exitEndsAt = uint64(block.timestamp) + UNBONDING;

        vm.warp(block.timestamp + 1 days);
        uint64 movedTo = uint64(block.timestamp) + 30 days + 1;
        uint256 minStake = registry.minNodeStake();
        uint256 fee = registry.registrationFee();
        vm.expectEmit(address(registry));
        emit IFirnRegistry.SlasherChangeScheduled(address(market), thief, movedTo);
        vm.prank(address(timelock));
        registry.setParameters(minStake, uint64(30 days), fee);
        (address pending, uint64 at) = registry.pendingSlasher();
        vm.assertEq(pending, thief, "still pending");
        vm.assertEq(at, movedTo, "moved past an exit requested now");
        vm.assertTrue(at > scheduledAt, "later than scheduled");
        vm.assertEq(registry.getNode(node.enclaveId).unbondingEndsAt, exitEndsAt, "the earlier exit keeps its end");

        vm.prank(address(timelock));
        registry.setSlasher(thief);
        (, at) = registry.pendingSlasher();
        vm.assertEq(at, movedTo, "scheduling the same slasher again keeps the moved time");

        vm.warp(exitEndsAt);
        uint256 before = node.operator.balance;
        vm.prank(node.operator);
        registry.withdrawStake(node.enclaveId);
        vm.assertEq(node.operator.balance - before, MIN_NODE_STAKE, "the earlier exit paid at its old end");
    }

    /// @notice Only a raise moves the change, and only while it is pending: an unchanged or lower
    /// period keeps its time, and a change already due is not postponed (its objectors had their time).
    function test_onlyARaiseBeforeTheChangeIsDueMovesIt() public {
        vm.prank(address(timelock));
        registry.setSlasher(thief);
        (, uint64 at) = registry.pendingSlasher();
        vm.startPrank(address(timelock));
        registry.setParameters(registry.minNodeStake(), UNBONDING, registry.registrationFee());
        (, uint64 same) = registry.pendingSlasher();
        vm.assertEq(same, at, "same period: same time");
        registry.setParameters(registry.minNodeStake(), uint64(3 days), registry.registrationFee());
        (, same) = registry.pendingSlasher();
        vm.assertEq(same, at, "lower period: same time");
        vm.warp(at);
        registry.setParameters(registry.minNodeStake(), uint64(30 days), registry.registrationFee());
        vm.stopPrank();
        (address pending, uint64 due) = registry.pendingSlasher();
        vm.assertEq(pending, thief, "still pending");
        vm.assertEq(due, at, "a due change is not postponed");
        registry.applySlasherChange();
        vm.assertEq(registry.slasher(), thief, "took over at its time");
    }

    /// @notice The verifier set: the raise moves the pending change and says so; a member
    /// deactivated by a raised minimum in the same call unbonds the new period and is covered too.
    function test_verifierSetRaiseMovesThePendingChangeAndCoversDeactivatedMembers() public {
        address v = verifierList[0];
        vm.prank(address(timelock));
        verifierSet.setSlasher(thief);
        vm.warp(block.timestamp + 1 days);
        uint64 movedTo = uint64(block.timestamp) + 30 days + 1;
        vm.expectEmit(address(verifierSet));
        emit IFirnVerifierSet.SlasherChangeScheduled(address(market), thief, movedTo);
        vm.prank(address(timelock));
        verifierSet.setParameters(MIN_VERIFIER_STAKE + 1, uint64(30 days));
        (, uint64 at) = verifierSet.pendingSlasher();
        vm.assertEq(at, movedTo, "moved");
        IFirnVerifierSet.Verifier memory m = verifierSet.getVerifier(v);
        vm.assertEq(uint8(m.status), uint8(IFirnVerifierSet.VerifierStatus.Leaving), "deactivated by the raise");
        vm.assertTrue(m.unbondingEndsAt < at, "withdraws before the new slasher can act");
    }
}
