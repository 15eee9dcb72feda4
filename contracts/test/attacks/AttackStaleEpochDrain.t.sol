// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice An epoch's budget is fixed when someone closes it, from what the pool holds then
/// (`_close`: (received - allocated) x epochBudgetBps), and daemons close only epochs in which they
/// earned points (node LivenessService.claim, verifier LivenessChallenger). A node and a colluding
/// verifier that were the only ones to earn points in some epochs (the network's first epochs, when
/// the node answers only its partner's challenges) leave those epochs open. Later, once the pool
/// holds the honest network's money (fees, forfeited bonds), they close them one after another:
/// each takes a tenth of what is left, so twenty stale epochs take 88 % of money that arrived long
/// after they ended, the budget of the honest nodes that were live when it arrived. Promise (0800):
/// an epoch's node budget goes to the nodes live in it, "sum allocated <= sum received"; money
/// received after an epoch ended must not fund it.
contract AttackStaleEpochDrainTest is FirnScenario {
    uint256 internal constant STALE = 20;
    TestNode internal sybil;
    TestNode internal honest;

    function setUp() public override {
        super.setUp();
        rewards.setParameters(ANSWER_WINDOW, 1, 1000, 2000); // the deploy defaults
        sybil = _activeNode(2, SIM, MEASUREMENT);
    }

    function test_attack_staleEpochsClosedLateTakeMoneyReceivedAfterThem() public {
        uint64 g0 = rewards.genesis();
        // Epochs 0..19: only the sybil node answers, and only its partner verifier's challenge (3).
        for (uint256 e = 0; e < STALE; ++e) {
            vm.warp(g0 + e * EPOCH + 1);
            _answer(3, sybil);
        }
        // Then the honest network: a node live every epoch, fees flowing into the pool.
        honest = _activeNode(1, SIM, MEASUREMENT);
        uint256 honestEarned;
        for (uint256 e = STALE; e < STALE + 5; ++e) {
            vm.warp(g0 + e * EPOCH + 1);
            _fundPool(2 ether); // e.g. protocol fees of this epoch's jobs
            _answer(0, honest);
            _answer(0, sybil);
            // The honest node's daemon claims its previous epoch as soon as it ends.
            if (e > STALE) {
                uint256 b = rewards.withdrawable(honest.operator);
                rewards.claimNodeReward(uint64(e - 1), honest.enclaveId);
                honestEarned += rewards.withdrawable(honest.operator) - b;
            }
        }
        // Now the sybil closes its stale epochs.
        uint256 before = rewards.withdrawable(sybil.operator);
        for (uint64 e = 0; e < STALE; ++e) rewards.claimNodeReward(e, sybil.enclaveId);
        uint256 stale = rewards.withdrawable(sybil.operator) - before;
        // Nothing had been received by the end of epoch STALE - 1: those epochs can pay nothing.
        vm.assertLe(stale, honestEarned, "the stale epochs took more than the honest node earned while the money came in");
        vm.assertEq(stale, 0, "epochs that ended before any funding drained the pool's later money");
    }
}
