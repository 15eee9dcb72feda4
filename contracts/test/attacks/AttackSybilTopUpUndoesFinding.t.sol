// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Dishonest node operator with a sybil verifier minority (25% of the claim snapshot).
/// Decision 1776 concludes a finding "as soon as it has passed" and admits that joins can undo a
/// passed finding, relying on someone calling `finalize` first. The attacker controls the order: a
/// finding by 62.5% of the snapshot passes once a silent honest member leaves (1720's liveness,
/// bar 3.5 ether), and in the same block the sybil (already a member, no admission needed) tops up
/// 0.5 ether: the floor `min(active + departed, total)` (1779) is back at the snapshot's 4 ether,
/// and the finding never passes again. At the window's end `finalize` pays the fraudulent proof.
/// Safe outcome: a finding that has passed against a proof is not undone by stake that can never
/// vote in the round (1141, 1779: "whatever a minority does with its own stake").
contract AttackSybilTopUpUndoesFindingTest is FirnScenario {
    function test_attack_sybilTopUpUndoesAFindingPassedByADeparture() public {
        TestNode memory node = _activeNode(1, SIM, MEASUREMENT);
        // 6 honest (4 of the fixture + 2) and 2 sybils, 0.5 ether each: 4 ether, sybils 25%.
        _joinVerifiers(2);
        address[] memory honest = verifierList;
        address s1 = _verifierAddr(9001);
        address s2 = _verifierAddr(9002);
        _joinVerifier(s1, MIN_VERIFIER_STAKE);
        _joinVerifier(s2, MIN_VERIFIER_STAKE);

        uint256 escrow = 5 ether;
        bytes32 jobId = _postOn(market, escrow, 3 days, 2 days);
        _claimOn(market, jobId, node);
        IFirnJobMarket.ProofFacts memory facts = _proveOn(market, jobId, node, keccak256("garbage"));

        // Five honest members find the output wrong (2.5 of 4 ether); the sixth is offline.
        address[] memory disputers = new address[](5);
        for (uint256 i = 0; i < 5; ++i) {
            disputers[i] = honest[i];
            vm.prank(honest[i]);
            market.dispute(jobId, 16, facts);
        }
        vm.assertEq(uint8(market.getJob(jobId).status), uint8(IFirnJobMarket.JobStatus.Proved), "short of 2/3");

        // The offline member comes back and leaves (ordinary churn): the finding has now passed.
        vm.prank(honest[5]);
        verifierSet.requestLeave();
        uint256 q = verifierSet.quorumStakeAt(facts.snapshotId, disputers, 2.5 ether);
        vm.assertTrue(2.5 ether * 3 > q * 2, "precondition: the finding has passed");

        // Same block, back-running the leave: the sybil tops up (no vote weight in this round).
        vm.prank(s1);
        verifierSet.addStake{value: 0.5 ether}();

        // Anyone finalizes (at once, or at the window's end).
        vm.prank(stranger);
        try market.finalize(jobId, facts) {} catch {}
        vm.warp(facts.challengeEndsAt);
        vm.prank(stranger);
        try market.finalize(jobId, facts) {} catch {}

        vm.assertEq(
            uint8(market.getJob(jobId).status),
            uint8(IFirnJobMarket.JobStatus.Slashed),
            "a passed finding was undone by a sybil's top-up; the fraudulent proof was paid"
        );
    }
}
