// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice A sybil verifier minority against decision 1758. Once a reduction followed a
/// round's snapshot its bar is max(min(cast + what non-voters can still cast, snapshot total),
/// active stake now). The votes already cast stay in the numerator with their full weight even
/// when their voters have left since, but the floor counts only the stake active now, which no
/// longer holds the leavers' stake. So a sybil minority that votes and then leaves lowers the floor
/// by its own stake while keeping its votes: the R6 churn that 1758 stops while the sybils stay
/// (AttackR6ShrinkingElectorate) goes through once they leave, as soon as the honest network is
/// under 1.5x the sybils' stake.
/// Safe outcome (1758's stated rule): a decision never rests on less than two thirds of the stake
/// active when it concludes (counting the decided voters' own stake as if still active): here the
/// approvers hold none of the active stake and the node must not be activated.
contract AttackDepartedVotersBarTest is FirnScenario {
    function test_attack_sybilsApproveThenLeave_activateAgainstTheActiveStake() public {
        // 7 honest members of 0.5 ether (4 with the fixture's) = 3.5 ether; 3 sybils = 1.5 ether (30%).
        _joinVerifiers(3);
        address[] memory honest = verifierList;
        address[3] memory sybils = [_verifierAddr(9001), _verifierAddr(9002), _verifierAddr(9003)];
        for (uint256 i = 0; i < 3; ++i) {
            _joinVerifier(sybils[i], MIN_VERIFIER_STAKE);
        }

        TestNode memory t = _node(77);
        _register(t, SIM, MEASUREMENT);
        // Only the sybils get the evidence (decision 1742: the honest cast no vote). They approve.
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(sybils[i]);
            registry.approve(t.enclaveId, 1, t.evidenceDigest);
        }
        vm.assertFalse(registry.isActive(t.enclaveId), "1.5 of 5 ether does not activate");

        // Months pass: every honest member of the snapshot leaves; four rejoin under new keys (the
        // honest network shrinks from 3.5 to 2 ether).
        for (uint256 i = 0; i < honest.length; ++i) {
            vm.warp(block.timestamp + 7 days);
            vm.prank(honest[i]);
            verifierSet.requestLeave();
            if (i < 4) _joinVerifier(_verifierAddr(5000 + i), MIN_VERIFIER_STAKE);
        }
        // While the sybils stay, 1758 holds: the bar is the 3.5 ether active.
        vm.expectRevert();
        registry.concludeRound(t.enclaveId, 1);

        // The sybils leave (their stake unbonds and comes back to them later).
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(sybils[i]);
            verifierSet.requestLeave();
        }
        vm.assertEq(verifierSet.totalActiveStake(), 2 ether, "all active stake is honest");

        vm.prank(stranger);
        try registry.concludeRound(t.enclaveId, 1) {} catch {}
        vm.assertFalse(
            registry.isActive(t.enclaveId),
            "departed sybils (30% at the snapshot, 0% now) activated a node against 2 ether of honest active stake"
        );
    }
    /// @notice The same rule in the market's finding quorum (`_findingPassed` reads the same
    /// `quorumStakeAt`): sybils (30% of the claim snapshot) file a free finding against an honest
    /// proof and leave; the honest members of the snapshot churn during the claim (seven leave, four
    /// rejoin). At finalize the sybils' departed 1.5 ether beat 2/3 of the 2 ether active, all
    /// honest, and the honest node is slashed.
    function test_attack_sybilFindingThenLeave_slashesAnHonestNode() public {
        _joinVerifiers(3);
        address[] memory honest = verifierList;
        address[3] memory sybils = [_verifierAddr(9001), _verifierAddr(9002), _verifierAddr(9003)];
        for (uint256 i = 0; i < 3; ++i) {
            _joinVerifier(sybils[i], MIN_VERIFIER_STAKE);
        }
        TestNode memory t = _node(78);
        _register(t, SIM, MEASUREMENT);
        for (uint256 i = 0; i < honest.length; ++i) {
            vm.prank(honest[i]);
            registry.approve(t.enclaveId, 1, t.evidenceDigest);
        }
        vm.assertTrue(registry.isActive(t.enclaveId), "honest node active");

        bytes32 jobId = _postOn(market, 5 ether, 7 days, 7 days);
        _claimOn(market, jobId, t);
        // Honest churn during the claim: the snapshot's seven leave, four rejoin under new keys.
        for (uint256 i = 0; i < honest.length; ++i) {
            vm.warp(block.timestamp + 12 hours);
            vm.prank(honest[i]);
            verifierSet.requestLeave();
            if (i < 4) _joinVerifier(_verifierAddr(6000 + i), MIN_VERIFIER_STAKE);
        }
        IFirnJobMarket.ProofFacts memory facts = _proveOn(market, jobId, t, keccak256("correct output"));
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(sybils[i]);
            market.dispute(jobId, 16, facts);
        }
        vm.assertEq(uint8(market.getJob(jobId).status), uint8(IFirnJobMarket.JobStatus.Proved), "1.5 of 3.5 active: no slash yet");
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(sybils[i]);
            verifierSet.requestLeave();
        }
        vm.warp(facts.challengeEndsAt);
        market.finalize(jobId, facts);
        vm.assertEq(
            uint8(market.getJob(jobId).status),
            uint8(IFirnJobMarket.JobStatus.Paid),
            "departed sybils' finding slashed an honest node against 2 ether of honest active stake"
        );
    }
}
