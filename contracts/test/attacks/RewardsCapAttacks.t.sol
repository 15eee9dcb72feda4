// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnRewards} from "../../src/FirnRewards.sol";
import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

interface IVmState {
    function snapshotState() external returns (uint256);
    function revertToState(uint256) external returns (bool);
}

/// @notice Attacks on decisions 1820 (verifier payout capped at its stake share, withheld part back
/// to the pool at the claim) and 1821 (worked epochs close in order at the next epoch's first point).
/// Each test asserts what should happen.
contract RewardsCapAttacksTest is FirnScenario {
    IVmState internal constant VMS = IVmState(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    address internal attacker = address(0xA77A0);
    TestNode[3] internal nodes;

    function _growHonest(uint256 each) internal {
        for (uint256 i = 0; i < 4; ++i) {
            vm.deal(verifierList[i], each + 1 ether);
            vm.prank(verifierList[i]);
            verifierSet.addStake{value: each - MIN_VERIFIER_STAKE}();
        }
    }

    function _tryChallengeAndAnswer(address v, TestNode memory t) internal returns (bool) {
        vm.prank(v);
        try rewards.issueChallenge(t.enclaveId) returns (bytes32 id) {
            IFirnRewards.Challenge memory c = rewards.getChallenge(id);
            rewards.answerChallenge(
                id,
                _sig(t.enclaveKey, rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch)))
            );
            return true;
        } catch {
            return false;
        }
    }

    function _warpEpoch(uint64 e) internal {
        vm.warp(rewards.genesis() + uint256(e) * EPOCH + 1);
    }

    /// @dev Honest 4 x 5 ether, attacker 0.5 ether, target 1 from the next epoch; returns that epoch.
    function _setup() internal returns (uint64 e) {
        nodes[0] = _activeNode(11, SIM, MEASUREMENT);
        nodes[1] = _activeNode(12, SIM, MEASUREMENT);
        nodes[2] = _activeNode(13, SIM, MEASUREMENT);
        _growHonest(5 ether);
        _joinVerifier(attacker, MIN_VERIFIER_STAKE);
        rewards.setParameters(ANSWER_WINDOW, 1, EPOCH_BUDGET_BPS, VERIFIER_SHARE_BPS);
        _fundPool(10 ether);
        e = rewards.currentEpoch() + 1;
    }

    /// @dev The attacker wins every slot of epoch `e` (its first block).
    function _capture(uint64 e) internal {
        _warpEpoch(e);
        for (uint256 k = 0; k < 3; ++k) {
            vm.assertTrue(_tryChallengeAndAnswer(attacker, nodes[k]), "attacker first");
            for (uint256 v = 0; v < 4; ++v) {
                _tryChallengeAndAnswer(verifierList[v], nodes[k]);
            }
        }
    }

    // ------------------------------------------------------------ 1820 x 1757: withheld after a move

    /// @dev The attacker wins every slot of epoch e (its payout is capped, most of the verifier
    /// budget is withheld) and never claims. Governance retires the pool and moves its unallocated
    /// balance to the successor (1757). Only then does the attacker claim: what its cap withholds
    /// is released into the retired pool, which takes no new work: it should reach the successor
    /// with the rest (1820: "moveUnallocated moves it with the rest").
    function test_withheldReleasedAfterTheMoveIsNotStrandedInTheRetiredPool() public {
        uint64 e = _setup();
        _capture(e);
        _warpEpoch(e + 1);
        rewards.closeEpoch(e);
        FirnRewards pool2 = new FirnRewards(
            owner, registry, verifierSet, EPOCH, ANSWER_WINDOW, LIVENESS_TARGET, EPOCH_BUDGET_BPS, VERIFIER_SHARE_BPS
        );
        registry.setRewardPool(address(pool2));
        uint256 moved = rewards.moveUnallocated();
        uint256 budget = rewards.getEpoch(e).verifierBudget;
        rewards.claimVerifierReward(e, attacker); // the attacker, after the move
        // What the claim released is owed to no one here: anyone moves it on, no timelock waited.
        vm.prank(address(0xBEEF));
        uint256 late = rewards.moveUnallocated();
        vm.assertEq(pool2.totalReceived(), moved + late, "the successor took both moves");
        vm.assertTrue(late > 0, "the withheld part moved");
        uint256 stranded = rewards.totalReceived() - rewards.totalAllocated() - rewards.totalMoved();
        emit log_named_uint("verifier budget of e", budget);
        emit log_named_uint("moved to successor", moved);
        emit log_named_uint("attacker paid", rewards.withdrawable(attacker));
        emit log_named_uint("withheld stranded in the retired pool", stranded);
        vm.assertEq(stranded, 0, "what the cap withheld is stranded in the retired pool");
    }

    // ------------------------------------------------------------ 1821: gas of the in-order close

    /// @dev Anyone funds the pool 1 wei in each of many epochs (one _receivedBefore checkpoint each)
    /// to make the close that the next epoch's first answer carries dearer. Bounded by a binary
    /// search: it should add little.
    function test_fundingCheckpointSpamDoesNotMakeTheFirstAnswerDear() public {
        uint64 e = _setup();
        _warpEpoch(e);
        vm.assertTrue(_tryChallengeAndAnswer(verifierList[0], nodes[0]), "worked");
        uint256 baseline;
        {
            _warpEpoch(e + 1);
            uint256 g = gasleft();
            _tryChallengeAndAnswer(verifierList[0], nodes[0]);
            baseline = g - gasleft();
        }
        for (uint64 k = 2; k < 1026; ++k) {
            _warpEpoch(e + k);
            vm.deal(stranger, 1);
            vm.prank(stranger);
            rewards.fund{value: 1}();
        }
        _warpEpoch(e + 1026);
        uint256 g2 = gasleft();
        _tryChallengeAndAnswer(verifierList[0], nodes[1]);
        uint256 spammed = g2 - gasleft();
        emit log_named_uint("first answer gas, baseline", baseline);
        emit log_named_uint("first answer gas, 1024 checkpoints", spammed);
        vm.assertTrue(rewards.getEpoch(e + 1).closed, "closed in order");
        vm.assertLe(spammed, baseline + 40_000, "checkpoint spam makes the first answer dear");
    }

    event log_named_uint(string key, uint256 val);
}
