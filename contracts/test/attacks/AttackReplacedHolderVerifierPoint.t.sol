// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Decisions 1620/1622: one capacity share per platform and epoch, to its answering enclave
/// with the most stake; "a timely answer of another enclave on a counted platform still proves it
/// live but earns no points, nor any for its verifier" (FirnRewards.answerChallenge). The verifier
/// point is granted at the answer, though, and never taken back when a co-tenant with more stake
/// later replaces the holder (its node points leave the epoch's total, its verifier's stay).
/// Attack (a verifier minority with a sybil co-tenant): a colluding verifier challenges a min-stake
/// co-tenant on an honest node's platform at each epoch's start; the co-tenant answers at once, holds
/// the share for a minute, and is replaced when the honest node answers. The answer earns the
/// platform nothing, yet the colluding verifier earns a full verifier point for it every epoch, out
/// of the honest verifiers' budget; one such sybil per honest platform multiplies it. Here (target 3,
/// 4 verifiers) the honest verifiers take the honest node's three slots, so the colluder would have
/// earned nothing on this platform; with the sybil it takes a quarter of every epoch's verifier budget.
/// Safe outcome: a challenge whose answer ends the epoch earning no platform share earns no
/// verifier point (the colluder's verifier points for the epoch are zero).
contract AttackReplacedHolderVerifierPointTest is FirnScenario {
    uint256 internal constant EPOCHS = 4;
    TestNode internal honest;
    TestNode internal twin;

    function setUp() public override {
        super.setUp();
        honest = _node(1);
        _activate(honest, 5 * MIN_NODE_STAKE, SIM, MEASUREMENT);
        twin = _node(5);
        twin.platformIdHash = honest.platformIdHash;
        _activate(twin, MIN_NODE_STAKE, SIM, MEASUREMENT_B);
        _fundPool(10 ether);
    }

    function test_attack_replacedHolderKeepsItsVerifiersPoint() public {
        uint64 g0 = rewards.genesis();
        address colluder = verifierList[3];
        uint256 colluderEarned;
        // From epoch 1: epoch 0 holds the registration votes' points.
        for (uint256 e = 1; e <= EPOCHS; ++e) {
            vm.warp(g0 + e * EPOCH + 1);
            _answer(3, twin); // the colluder's challenge, answered at once by its co-tenant
            vm.warp(g0 + e * EPOCH + 60);
            _answer(0, honest); // the honest node takes the platform's share back
            _answer(1, honest);
            _answer(2, honest);
        }
        vm.warp(g0 + (EPOCHS + 1) * EPOCH + 1);
        for (uint64 e = 1; e <= EPOCHS; ++e) {
            vm.assertEq(rewards.nodePoints(e, twin.enclaveId), 0, "premise: the co-tenant's answer earned no share");
            vm.assertTrue(rewards.nodePoints(e, honest.enclaveId) > 0, "premise: the honest node holds the share");
            colluderEarned += rewards.pendingVerifierReward(e, colluder);
        }
        // The attack works when the colluder earned verifier rewards for answers that earned nothing.
        vm.assertEq(colluderEarned, 0, "the colluding verifier was paid for its co-tenant's shareless answers");
    }
}
