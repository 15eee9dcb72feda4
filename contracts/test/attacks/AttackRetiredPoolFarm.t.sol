// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnRewards} from "../../src/FirnRewards.sol";
import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice Red team R2 (upgrade of the reward pool). FirnRewards has no way to retire: when
/// governance moves the market and registry to a new pool (setRewardPool; the only upgrade path,
/// the contracts are not proxies), the old pool keeps every wei it received and has not allocated
/// (protocol fees paid out of requesters' escrow), and keeps paying epochBudgetBps of it per epoch
/// to whoever still earns points there. Honest daemons follow the new pool; one colluding verifier
/// and one node that keep challenging and answering on the old pool are the only ones with points
/// there and take the whole remainder, epoch after epoch. Promise (0800): an epoch's budget goes to
/// the nodes live in it by stake and to the verifiers by work; a minority must not farm the pool.
/// Fixed by decision 1707 (the pool takes new work only while it is the registry's reward pool): the
/// pair's calls are attempted and may revert; whatever they still earn is measured.
contract AttackRetiredPoolFarmTest is FirnFixture {
    uint256 internal constant EPOCHS = 20;

    /// @dev The colluding pair's try: a refused challenge or answer earns nothing and ends the try.
    function _tryAnswerOn(FirnRewards pool, uint256 v, TestNode memory t) internal {
        vm.prank(verifierList[v]);
        try pool.issueChallenge(t.enclaveId) returns (bytes32 id) {
            IFirnRewards.Challenge memory c = pool.getChallenge(id);
            bytes memory sig = _sig(
                t.enclaveKey, pool.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch))
            );
            try pool.answerChallenge(id, sig) {} catch {}
        } catch {}
    }

    function _answerOn(FirnRewards pool, uint256 v, TestNode memory t) internal {
        vm.prank(verifierList[v]);
        bytes32 id = pool.issueChallenge(t.enclaveId);
        IFirnRewards.Challenge memory c = pool.getChallenge(id);
        pool.answerChallenge(
            id, _sig(t.enclaveKey, pool.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch)))
        );
    }

    function test_attack_colludingPairFarmsTheRetiredRewardPool() public {
        rewards.setParameters(ANSWER_WINDOW, 1, 1000, 2000); // the deploy defaults
        TestNode memory attacker = _activeNode(9, SIM, MEASUREMENT);
        TestNode[3] memory honest;
        for (uint256 i = 0; i < 3; ++i) honest[i] = _activeNode(20 + i, SIM, MEASUREMENT);
        // Protocol fees accumulated in the pool (10 ether of requesters' money).
        vm.deal(address(this), 10 ether);
        rewards.fund{value: 10 ether}();

        // Governance upgrades the pool (as the timelock would, after its delay).
        FirnRewards pool2 =
            new FirnRewards(owner, registry, verifierSet, EPOCH, ANSWER_WINDOW, 1, 1000, 2000);
        registry.setRewardPool(address(pool2));
        pool2.setReporter(address(market), true);
        pool2.setReporter(address(registry), true);
        rewards.setReporter(address(market), false);
        rewards.setReporter(address(registry), false);

        uint64 g0 = rewards.genesis();
        for (uint256 e = 1; e <= EPOCHS; ++e) {
            vm.warp(g0 + e * EPOCH + 1);
            // The honest network lives on the new pool.
            for (uint256 i = 0; i < 3; ++i) _answerOn(pool2, i, honest[i]);
            // The colluding pair keeps working the old one.
            _tryAnswerOn(rewards, 3, attacker);
        }
        vm.warp(g0 + (EPOCHS + 1) * EPOCH + 1);
        for (uint64 e = 1; e <= EPOCHS; ++e) {
            try rewards.claimNodeReward(e, attacker.enclaveId) {} catch {}
            try rewards.claimVerifierReward(e, verifierList[3]) {} catch {}
        }
        uint256 taken = rewards.withdrawable(attacker.operator) + rewards.withdrawable(verifierList[3]);
        // One node of four and one verifier of four: a fair share of the old pool's money is a quarter.
        vm.assertLe(taken, 2.5 ether, "one verifier and one node took most of the retired pool's money");
    }
}
