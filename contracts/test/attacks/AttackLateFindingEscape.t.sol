// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Dishonest node operator: a finding that passes only after the last dispute (stake that
/// could still vote left the round, decision 1720) concluded nowhere but in `finalize`, which
/// opened at `challengeEndsAt`. The node's stake lock ended at min(claim expiry, deadline) +
/// window. A node that asks to exit right after its claim (unbonding 7 days <= claim timeout 7
/// days + window 1 day) and submits its proof in the claim's last second made both instants equal:
/// in that block the operator withdrew its whole stake before anyone could finalize, and the
/// finding that passed slashed nothing.
/// Safe outcome (decision 1776): a finding that has passed against a proof takes the slash amount
/// from the node's stake; the stake never becomes withdrawable while such a finding is waiting to
/// conclude (the lock covers FINALIZE_GRACE after the window; a passed finding concludes at once).
contract AttackLateFindingEscapeTest is FirnScenario {
    TestNode internal node;

    function setUp() public override {
        super.setUp();
        node = _activeNode(1, SIM, MEASUREMENT);
    }

    function test_attack_nodeWithdrawsStakeBeforeLateFindingConcludes() public {
        uint256 escrow = 5 ether;
        // A 10-day job, 7-day claim timeout (the largest a long job allows).
        bytes32 jobId = _postOn(market, escrow, 10 days, 7 days);
        _claimOn(market, jobId, node);
        // The operator asks to exit at once: an Exiting node still proves (proofSigner allows it).
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);

        // The claim's last second: the latest window end the claim's lock must cover.
        vm.warp(market.getJob(jobId).claimExpiresAt);
        IFirnJobMarket.ProofFacts memory facts = _proveOn(market, jobId, node, keccak256("garbage"));

        // Two of four equal verifiers find the output wrong (1 of 2 ether: short of 2/3) ...
        vm.prank(verifierList[0]);
        market.dispute(jobId, 16, facts);
        vm.prank(verifierList[1]);
        market.dispute(jobId, 16, facts);
        // ... and the two silent ones leave (ordinary churn). The finding now passes (1 > 2/3 of 1),
        // but nobody can cast the vote that concludes it: both disputers voted, newcomers cannot.
        vm.prank(verifierList[2]);
        verifierSet.requestLeave();
        vm.prank(verifierList[3]);
        verifierSet.requestLeave();

        // The block at challengeEndsAt: the operator's withdrawal lands first.
        vm.warp(facts.challengeEndsAt);
        uint256 before = node.operator.balance;
        uint256 treasuryBefore = market.withdrawable(owner);
        vm.prank(node.operator);
        (bool withdrew,) = address(registry).call(abi.encodeCall(IFirnRegistry.withdrawStake, (node.enclaveId)));
        market.finalize(jobId, facts);

        vm.assertEq(uint8(market.getJob(jobId).status), uint8(IFirnJobMarket.JobStatus.Slashed), "finding concluded");
        // Safe outcome: the passed finding took the slash amount; the operator got at most the rest.
        vm.assertLe(
            node.operator.balance - before,
            MIN_NODE_STAKE - SLASH_AMOUNT,
            "operator withdrew the stake a passed finding should slash"
        );
        // The slashed stake and the bond go to the treasury (decision 1856), the escrow back to the requester.
        vm.assertEq(
            market.withdrawable(owner) - treasuryBefore,
            CLAIM_BOND + SLASH_AMOUNT,
            "the slash escaped: not in the treasury"
        );
        vm.assertEq(market.getJob(jobId).escrow, escrow, "the requester's escrow refundable");
        withdrew; // reported by the assertions above
    }

    /// @notice The invariant behind the fix, for any claim timeout, deadline, proof time and block
    /// spacing: the claim's lock ends at least FINALIZE_GRACE after the proof's window, so in every
    /// block from the window's end until the grace is over, the operator's withdrawal is refused and
    /// the passed finding takes the slash amount, whichever transaction comes first. The unbonding
    /// is one second, so the lock alone holds the stake.
    function testFuzz_lockOutlastsTheWindowByTheGrace(
        uint64 claimTimeout,
        uint64 deadlineIn,
        uint64 provedIn,
        uint64 after_
    ) public {
        registry.setParameters(MIN_NODE_STAKE, 1, 0);
        claimTimeout = uint64(bound(claimTimeout, 1, market.MAX_CLAIM_TIMEOUT()));
        deadlineIn = uint64(bound(deadlineIn, 1, 30 days));
        uint64 last = claimTimeout < deadlineIn ? claimTimeout : deadlineIn;
        provedIn = uint64(bound(provedIn, 0, last));
        after_ = uint64(bound(after_, 0, market.FINALIZE_GRACE() - 1));

        bytes32 jobId = _postOn(market, 5 ether, deadlineIn, claimTimeout);
        _claimOn(market, jobId, node);
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);
        vm.warp(block.timestamp + provedIn);
        IFirnJobMarket.ProofFacts memory facts = _proveOn(market, jobId, node, keccak256("garbage"));
        uint64 lockedUntil = registry.getNode(node.enclaveId).lockedUntil;
        vm.assertLe(
            uint256(facts.challengeEndsAt) + market.FINALIZE_GRACE(), lockedUntil, "lock covers window and grace"
        );

        vm.prank(verifierList[0]);
        market.dispute(jobId, 16, facts);
        vm.prank(verifierList[1]);
        market.dispute(jobId, 16, facts);
        vm.prank(verifierList[2]);
        verifierSet.requestLeave();
        vm.prank(verifierList[3]);
        verifierSet.requestLeave();

        // The first block at or after the window's end, however far the chain's blocks are apart.
        vm.warp(uint256(facts.challengeEndsAt) + after_);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnRegistry.StillUnbonding.selector, node.enclaveId, lockedUntil, uint64(block.timestamp)
            )
        );
        vm.prank(node.operator);
        registry.withdrawStake(node.enclaveId);
        market.finalize(jobId, facts);
        vm.assertEq(uint8(market.getJob(jobId).status), uint8(IFirnJobMarket.JobStatus.Slashed), "finding concluded");
        vm.assertEq(registry.getNode(node.enclaveId).stake, MIN_NODE_STAKE - SLASH_AMOUNT, "slash taken");
    }

    /// @notice A finding that passed through departures in the window is concluded by anyone at
    /// once, before the window ends (as 1755 lets anyone conclude a registry round): its slash does
    /// not wait for `challengeEndsAt`.
    function test_passedFindingConcludesBeforeTheWindowEnds() public {
        bytes32 jobId = _postOn(market, 5 ether, 3 days, 2 days);
        _claimOn(market, jobId, node);
        IFirnJobMarket.ProofFacts memory facts = _proveOn(market, jobId, node, keccak256("garbage"));
        vm.prank(verifierList[0]);
        market.dispute(jobId, 16, facts);
        vm.prank(verifierList[1]);
        market.dispute(jobId, 16, facts);
        // Short of 2/3 while the other two can still vote: finalize in the window is refused.
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.ChallengeWindowOpen.selector, jobId, facts.challengeEndsAt, uint64(block.timestamp)
            )
        );
        vm.prank(stranger);
        market.finalize(jobId, facts);

        vm.prank(verifierList[2]);
        verifierSet.requestLeave();
        vm.prank(verifierList[3]);
        verifierSet.requestLeave();
        vm.warp(facts.challengeEndsAt - 1);
        vm.prank(stranger);
        market.finalize(jobId, facts);
        vm.assertEq(
            uint8(market.getJob(jobId).status), uint8(IFirnJobMarket.JobStatus.Slashed), "concluded in the window"
        );
        vm.assertEq(registry.getNode(node.enclaveId).stake, MIN_NODE_STAKE - SLASH_AMOUNT, "slash taken");
    }

    /// @notice An honest exiting node waits the grace once, and no longer: its proof is paid after
    /// the window, and its stake is withdrawable from the end of the lock (window end + grace).
    function test_honestExitingNodeWithdrawsAfterTheGrace() public {
        registry.setParameters(MIN_NODE_STAKE, 1, 0);
        bytes32 jobId = _postOn(market, 5 ether, 3 days, 2 days);
        _claimOn(market, jobId, node);
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);
        vm.warp(market.getJob(jobId).claimExpiresAt);
        IFirnJobMarket.ProofFacts memory facts = _proveOn(market, jobId, node, keccak256("output"));
        vm.warp(facts.challengeEndsAt);
        market.finalize(jobId, facts);
        vm.assertEq(uint8(market.getJob(jobId).status), uint8(IFirnJobMarket.JobStatus.Paid), "paid");

        uint64 lockedUntil = registry.getNode(node.enclaveId).lockedUntil;
        vm.assertEq(
            uint256(lockedUntil), uint256(facts.challengeEndsAt) + market.FINALIZE_GRACE(), "lock: window + grace"
        );
        vm.warp(lockedUntil - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnRegistry.StillUnbonding.selector, node.enclaveId, lockedUntil, uint64(block.timestamp)
            )
        );
        vm.prank(node.operator);
        registry.withdrawStake(node.enclaveId);
        vm.warp(lockedUntil);
        uint256 before = node.operator.balance;
        vm.prank(node.operator);
        registry.withdrawStake(node.enclaveId);
        vm.assertEq(node.operator.balance - before, MIN_NODE_STAKE, "whole stake back");
    }
}
