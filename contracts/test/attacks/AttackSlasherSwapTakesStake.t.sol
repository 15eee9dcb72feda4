// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {IFirnVerifierSet} from "../../src/interfaces/IFirnVerifierSet.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Governance within its powers, through the real timelock: `setSlasher`
/// accepts any account (decision 1756 keeps it so for migrations), and a slasher's `slash` takes
/// any node's stake, for no job and no finding, paid to any beneficiary. The timelock's delay (2
/// days) is shorter than the unbonding (7 days), so a node that sees the proposal and asks to exit
/// at once is still Exiting, hence slashable, when it executes. The same holds for verifiers.
/// Safe outcome: stake committed before a slasher change cannot be taken by that new slasher
/// without a proven fault: a slasher change waits out the unbonding the stakers were promised
/// (decision 1778), and the current slasher keeps working until then.
contract AttackSlasherSwapTakesStakeTest is FirnScenario {
    TestNode internal node;
    address internal thief = address(0x7417);

    function setUp() public override {
        super.setUp();
        node = _activeNode(1, SIM, MEASUREMENT);
        _handOver();
    }

    function test_attack_governanceSwapsSlasherAndTakesANodesStake() public {
        bytes memory data = abi.encodeCall(IFirnRegistry.setSlasher, (thief));
        bytes32 salt = _schedule(address(registry), data);
        // The operator sees the proposal and leaves at once.
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);

        vm.warp(block.timestamp + DELAY);
        _execute(address(registry), data, salt);
        vm.prank(thief);
        try registry.slash(node.enclaveId, type(uint256).max, thief, bytes32("no fault")) {} catch {}

        vm.warp(block.timestamp + UNBONDING);
        uint256 before = node.operator.balance;
        vm.prank(node.operator);
        try registry.withdrawStake(node.enclaveId) {} catch {}
        vm.assertEq(node.operator.balance - before, MIN_NODE_STAKE, "governance's slasher took an exiting node's stake without a fault");
    }

    function test_attack_governanceSwapsVerifierSlasherAndTakesAVerifiersStake() public {
        address v = verifierList[0];
        bytes memory data = abi.encodeCall(IFirnVerifierSet.setSlasher, (thief));
        bytes32 salt = _schedule(address(verifierSet), data);
        vm.prank(v);
        verifierSet.requestLeave();

        vm.warp(block.timestamp + DELAY);
        _execute(address(verifierSet), data, salt);
        vm.prank(thief);
        try verifierSet.slash(v, type(uint256).max, thief, bytes32("no fault")) {} catch {}

        vm.warp(block.timestamp + UNBONDING);
        uint256 before = v.balance;
        vm.prank(v);
        try verifierSet.withdraw() {} catch {}
        vm.assertEq(v.balance - before, MIN_VERIFIER_STAKE, "governance's slasher took a leaving verifier's stake without a fault");
    }

    /// @notice Until its time the scheduled slasher can neither slash nor lock, and the current one
    /// keeps both rights; from then on the scheduled one takes over on its first call and the old
    /// one takes no new lock (decision 1778).
    function test_currentSlasherWorksUntilTheScheduledOneTakesOver() public {
        bytes memory data = abi.encodeCall(IFirnRegistry.setSlasher, (thief));
        bytes32 salt = _schedule(address(registry), data);
        vm.warp(block.timestamp + DELAY);
        uint64 effectiveAt = uint64(block.timestamp) + UNBONDING + 1;
        vm.expectEmit(address(registry));
        emit IFirnRegistry.SlasherChangeScheduled(address(market), thief, effectiveAt);
        _execute(address(registry), data, salt);
        (address pending, uint64 at) = registry.pendingSlasher();
        vm.assertEq(pending, thief, "pending slasher");
        vm.assertEq(at, effectiveAt, "its time");
        vm.assertEq(registry.slasher(), address(market), "the market until then");

        vm.warp(effectiveAt - 1);
        vm.prank(thief);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotSlasher.selector, thief));
        registry.slash(node.enclaveId, 1, thief, bytes32(0));
        vm.prank(thief);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotSlasher.selector, thief));
        registry.lockStake(node.enclaveId, uint64(block.timestamp));
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.SlasherChangeNotDue.selector, thief, effectiveAt));
        registry.applySlasherChange();
        vm.prank(address(market));
        registry.lockStake(node.enclaveId, uint64(block.timestamp));
        vm.prank(address(market));
        vm.assertEq(registry.slash(node.enclaveId, 1, address(market), bytes32(0)), 1, "the market still slashes");

        vm.warp(effectiveAt);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.SlasherSet(address(market), thief);
        vm.prank(thief);
        vm.assertEq(registry.slash(node.enclaveId, 1, thief, bytes32(0)), 1, "the new slasher took over");
        vm.assertEq(registry.slasher(), thief, "current");
        (pending, at) = registry.pendingSlasher();
        vm.assertEq(pending, address(0), "nothing pending");
        vm.assertEq(at, 0, "no time");
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotSlasher.selector, address(market)));
        registry.lockStake(node.enclaveId, uint64(block.timestamp));
    }

    /// @notice Governance cannot shorten the wait by lowering the unbonding period in the same
    /// batch: the change still waits for the exits requested under the longer period.
    function test_attack_shorterUnbondingInTheSameBatchDoesNotShortenTheWait() public {
        bytes memory shorten = abi.encodeCall(
            IFirnRegistry.setParameters, (registry.minNodeStake(), uint64(0), registry.registrationFee())
        );
        bytes memory swap = abi.encodeCall(IFirnRegistry.setSlasher, (thief));
        bytes32 s1 = _schedule(address(registry), shorten);
        bytes32 s2 = _schedule(address(registry), swap);
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);
        uint64 exitEndsAt = uint64(block.timestamp) + UNBONDING;

        vm.warp(block.timestamp + DELAY);
        _execute(address(registry), shorten, s1);
        _execute(address(registry), swap, s2);
        (, uint64 at) = registry.pendingSlasher();
        vm.assertTrue(at > exitEndsAt, "after the exit requested under the longer period");
        vm.prank(thief);
        try registry.slash(node.enclaveId, type(uint256).max, thief, bytes32("no fault")) {} catch {}

        vm.warp(exitEndsAt);
        uint256 before = node.operator.balance;
        vm.prank(node.operator);
        registry.withdrawStake(node.enclaveId);
        vm.assertEq(node.operator.balance - before, MIN_NODE_STAKE, "the exiting node left with its stake");
    }

    /// @notice Unsetting the slasher first does not make the next one immediate: only a registry
    /// without stake takes a first slasher at once.
    function test_attack_unsetThenSetStillWaits() public {
        vm.prank(address(timelock));
        registry.setSlasher(address(0));
        (, uint64 at) = registry.pendingSlasher();
        vm.warp(at);
        registry.applySlasherChange();
        vm.assertEq(registry.slasher(), address(0), "no slasher");
        vm.prank(address(timelock));
        registry.setSlasher(thief);
        vm.assertEq(registry.slasher(), address(0), "not immediate while stake is held");
        (address pending, uint64 thiefAt) = registry.pendingSlasher();
        vm.assertEq(pending, thief, "scheduled");
        vm.assertEq(thiefAt, uint64(block.timestamp) + UNBONDING + 1, "after the unbonding");
    }

    /// @notice The verifier set: the scheduled slasher is refused until its time and takes over on
    /// its first slash; the current one slashes until then.
    function test_verifierSetSlasherWorksUntilTheScheduledOneTakesOver() public {
        address v = verifierList[0];
        vm.prank(address(timelock));
        verifierSet.setSlasher(thief);
        (address pending, uint64 at) = verifierSet.pendingSlasher();
        vm.assertEq(pending, thief, "pending");
        vm.assertEq(at, uint64(block.timestamp) + UNBONDING + 1, "after the unbonding");

        vm.warp(at - 1);
        vm.prank(thief);
        vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.NotSlasher.selector, thief));
        verifierSet.slash(v, 1, thief, bytes32(0));
        vm.prank(address(market));
        vm.assertEq(verifierSet.slash(v, 1, address(market), bytes32(0)), 1, "the market still slashes");

        vm.warp(at);
        vm.expectEmit(address(verifierSet));
        emit IFirnVerifierSet.SlasherSet(address(market), thief);
        vm.prank(thief);
        vm.assertEq(verifierSet.slash(v, 1, thief, bytes32(0)), 1, "the new slasher took over");
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(IFirnVerifierSet.NotSlasher.selector, address(market)));
        verifierSet.slash(v, 1, address(market), bytes32(0));
    }
}
