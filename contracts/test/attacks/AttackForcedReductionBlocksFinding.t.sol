// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice A dishonest node with a sybil verifier minority against decision 1758. A finding's
/// bar is the claim snapshot's stake until any reduction (a leave, a deactivation, a slash) follows
/// the snapshot; from then on it is never under the stake active now, which includes every member
/// who joined after the claim and so can never dispute it (decision 1141). The reduction is in the
/// attacker's hands: one sybil identity's requestLeave, free. So once honest verifiers joined
/// during a job (ordinary growth), a sybil holding a quarter of the claim snapshot's stake turns
/// the finding of every honest member of that snapshot from a slash into nothing, and the
/// fraudulent proof is paid.
/// Safe outcome: the findings of every honest verifier that can vote (3 of the 4 ether the claim
/// snapshot counted, > 2/3) slash the node, whatever a minority does with its own stake.
contract AttackForcedReductionBlocksFindingTest is FirnScenario {
    TestNode internal node;

    function test_attack_sybilLeaveAfterHonestGrowthBlocksAPassedFinding() public {
        _run(true);
    }

    /// @notice Control: the same job without the sybil's leave is slashed.
    function test_control_withoutTheLeaveTheFindingSlashes() public {
        _run(false);
    }

    function _run(bool sybilLeaves) internal {
        // Honest: 6 x 0.5 = 3 ether. Sybils: 2 x 0.5 = 1 ether (25%).
        _joinVerifiers(2);
        address[] memory honest = verifierList;
        address s1 = _verifierAddr(9001);
        address s2 = _verifierAddr(9002);
        _joinVerifier(s1, MIN_VERIFIER_STAKE);
        _joinVerifier(s2, MIN_VERIFIER_STAKE);
        node = _node(1);
        _register(node, SIM, MEASUREMENT);
        for (uint256 i = 0; i < honest.length; ++i) {
            vm.prank(honest[i]);
            registry.approve(node.enclaveId, 1, node.evidenceDigest);
        }

        uint256 escrow = 5 ether;
        bytes32 jobId = _postOn(market, escrow, 3 days, 2 days);
        _claimOn(market, jobId, node);
        // During the job two honest verifiers join (the network grows by a quarter).
        vm.warp(block.timestamp + 1 days);
        _joinVerifier(_verifierAddr(5001), MIN_VERIFIER_STAKE);
        _joinVerifier(_verifierAddr(5002), MIN_VERIFIER_STAKE);
        IFirnJobMarket.ProofFacts memory facts = _proveOn(market, jobId, node, keccak256("garbage"));

        // The attacker's one move: a sybil identity leaves (its stake comes back after unbonding).
        if (sybilLeaves) {
            vm.prank(s2);
            verifierSet.requestLeave();
        }

        // Every honest member of the claim snapshot finds the output wrong.
        for (uint256 i = 0; i < honest.length; ++i) {
            vm.prank(honest[i]);
            market.dispute(jobId, 16, facts);
        }

        vm.warp(facts.challengeEndsAt);
        if (market.getJob(jobId).status == IFirnJobMarket.JobStatus.Proved) market.finalize(jobId, facts);
        vm.assertEq(
            uint8(market.getJob(jobId).status),
            uint8(IFirnJobMarket.JobStatus.Slashed),
            "3 of the snapshot's 4 ether found fraud, yet a sybil's leave got the proof paid"
        );
    }
}
