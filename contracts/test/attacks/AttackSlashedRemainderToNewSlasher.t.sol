// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {IFirnVerifierSet} from "../../src/interfaces/IFirnVerifierSet.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Governance within its powers (decision 1778). A node objects to a scheduled slasher
/// change and exits when it executes, as 1778 tells it to. A claim it took just before is still
/// running; a finding against that proof slashes SLASH_AMOUNT (its own fault, correctly). But
/// `registry.slash` restarts the unbonding from the slash (now + 7 days), past the new slasher's
/// `effectiveAt`, so the new slasher takes the rest of the stake, which 1700/withdrawStake say
/// belongs to the operator ("from Slashed ... the operator takes what is left").
/// Safe outcome: the operator withdraws its remaining stake (1 - 0.6 ether).
contract AttackSlashedRemainderToNewSlasherTest is FirnScenario {
    address internal thief = address(0x7417);

    function test_attack_newSlasherTakesTheRemainderOfAnObjectorSlashedForOneFault() public {
        TestNode memory node = _activeNode(1, SIM, MEASUREMENT);
        _handOver();
        bytes memory swap = abi.encodeCall(IFirnRegistry.setSlasher, (thief));
        bytes32 salt = _schedule(address(registry), swap);
        vm.warp(block.timestamp + DELAY);

        // A job claimed a moment before the change executes (7-day claim).
        bytes32 jobId = _postOn(market, 5 ether, 10 days, 7 days);
        _claimOn(market, jobId, node);
        _execute(address(registry), swap, salt);
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);
        (, uint64 effectiveAt) = registry.pendingSlasher();

        // Six days later the node proves (garbage) and the verifiers' finding slashes it.
        vm.warp(block.timestamp + 6 days);
        IFirnJobMarket.ProofFacts memory facts = _proveOn(market, jobId, node, keccak256("garbage"));
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(verifierList[i]);
            market.dispute(jobId, 16, facts);
        }
        vm.assertEq(uint8(market.getJob(jobId).status), uint8(IFirnJobMarket.JobStatus.Slashed), "fault slashed");
        uint256 rest = registry.getNode(node.enclaveId).stake;
        vm.assertEq(rest, MIN_NODE_STAKE - SLASH_AMOUNT, "the fault took the slash amount");

        vm.warp(effectiveAt);
        vm.prank(thief);
        try registry.slash(node.enclaveId, type(uint256).max, thief, bytes32("no fault")) {} catch {}

        vm.warp(block.timestamp + 14 days);
        uint256 before = node.operator.balance;
        vm.prank(node.operator);
        try registry.withdrawStake(node.enclaveId) {} catch {}
        vm.assertEq(node.operator.balance - before, rest, "the new slasher took the remainder of an objecting node's stake");
    }

    /// @notice A slash never makes an Exiting or Slashed node unbond longer; an Active node
    /// unbonds from the slash. The stake lock still holds the remainder for a claim in flight.
    function test_slashKeepsAnExitingOrSlashedNodesUnbondingEndAndTheLockHolds() public {
        TestNode memory a = _activeNode(1, SIM, MEASUREMENT);
        TestNode memory e = _activeNode(2, SIM, MEASUREMENT);
        vm.prank(address(market));
        registry.slash(a.enclaveId, 0.1 ether, thief, bytes32("fault"));
        uint40 activeEnd = registry.getNode(a.enclaveId).unbondingEndsAt;
        vm.assertEq(activeEnd, block.timestamp + UNBONDING, "an Active node unbonds from the slash");

        vm.prank(e.operator);
        registry.requestExit(e.enclaveId);
        uint40 exitEnd = registry.getNode(e.enclaveId).unbondingEndsAt;
        uint64 lockUntil = uint64(block.timestamp) + 20 days;
        vm.prank(address(market));
        registry.lockStake(e.enclaveId, lockUntil);

        vm.warp(block.timestamp + 3 days);
        vm.startPrank(address(market));
        registry.slash(a.enclaveId, 0.1 ether, thief, bytes32("again"));
        registry.slash(e.enclaveId, 0.1 ether, thief, bytes32("fault"));
        vm.stopPrank();
        vm.assertEq(registry.getNode(a.enclaveId).unbondingEndsAt, activeEnd, "a Slashed node keeps its end");
        vm.assertEq(registry.getNode(e.enclaveId).unbondingEndsAt, exitEnd, "an Exiting node keeps its end");

        // Past the unbonding but inside the lock: the stake stays for the claim in flight.
        vm.warp(exitEnd);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnRegistry.StillUnbonding.selector, e.enclaveId, lockUntil, uint64(block.timestamp)
            )
        );
        vm.prank(e.operator);
        registry.withdrawStake(e.enclaveId);
        vm.prank(address(market));
        vm.assertEq(registry.slash(e.enclaveId, 0.1 ether, thief, bytes32("late")), 0.1 ether, "still slashable");

        vm.warp(lockUntil);
        uint256 before = e.operator.balance;
        vm.prank(e.operator);
        registry.withdrawStake(e.enclaveId);
        vm.assertEq(e.operator.balance - before, MIN_NODE_STAKE - 0.2 ether, "the operator takes what is left");
    }

    /// @notice The verifier set: slashing a Leaving member leaves its unbonding end as it was.
    function test_slashKeepsALeavingVerifiersUnbondingEnd() public {
        address v = verifierList[0];
        vm.prank(v);
        verifierSet.requestLeave();
        uint64 endsAt = verifierSet.getVerifier(v).unbondingEndsAt;
        vm.warp(block.timestamp + 3 days);
        vm.prank(address(market));
        verifierSet.slash(v, 0.1 ether, thief, bytes32("fault"));
        vm.assertEq(verifierSet.getVerifier(v).unbondingEndsAt, endsAt, "keeps its end");
        vm.warp(endsAt);
        uint256 before = v.balance;
        vm.prank(v);
        verifierSet.withdraw();
        vm.assertEq(v.balance - before, MIN_VERIFIER_STAKE - 0.1 ether, "takes what is left");
    }

    /// @notice Past its unbonding end and its lock an Exiting node's stake is the operator's: any
    /// slasher's call takes nothing and changes nothing, as for a Leaving verifier past its end.
    function test_anUnbondedStakeIsOutOfEverySlashersReach() public {
        TestNode memory e = _activeNode(1, SIM, MEASUREMENT);
        vm.prank(e.operator);
        registry.requestExit(e.enclaveId);
        address v = verifierList[0];
        vm.prank(v);
        verifierSet.requestLeave();

        vm.warp(block.timestamp + UNBONDING - 1);
        vm.prank(address(market));
        vm.assertEq(registry.slash(e.enclaveId, 0.1 ether, thief, bytes32("fault")), 0.1 ether, "unbonding: slashable");
        vm.prank(address(market));
        vm.assertEq(verifierSet.slash(v, 0.1 ether, thief, bytes32("fault")), 0.1 ether, "leaving: slashable");

        vm.warp(block.timestamp + 1);
        vm.prank(address(market));
        vm.assertEq(registry.slash(e.enclaveId, 1 ether, thief, bytes32("late")), 0, "unbonded: nothing taken");
        vm.prank(address(market));
        vm.assertEq(verifierSet.slash(v, 1 ether, thief, bytes32("late")), 0, "unbonded: nothing taken");
        vm.assertEq(registry.getNode(e.enclaveId).stake, MIN_NODE_STAKE - 0.1 ether, "stake kept");
        vm.assertEq(verifierSet.getVerifier(v).stake, MIN_VERIFIER_STAKE - 0.1 ether, "stake kept");

        uint256 before = e.operator.balance;
        vm.prank(e.operator);
        registry.withdrawStake(e.enclaveId);
        vm.assertEq(e.operator.balance - before, MIN_NODE_STAKE - 0.1 ether, "the operator takes what is left");
        before = v.balance;
        vm.prank(v);
        verifierSet.withdraw();
        vm.assertEq(v.balance - before, MIN_VERIFIER_STAKE - 0.1 ether, "the member takes what is left");
    }
}
