// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice Decision 1576 bounds what a silent node costs the verifiers: at most MAX_MISSED_EPOCHS
/// challenge transactions per registration or resume, "whatever the number of verifiers". The count
/// is per node and epoch, though: one answer in an epoch clears it. With the deploy default
/// livenessTarget 1 a node needs exactly one answer per epoch for its whole capacity share, so it
/// answers only its partner verifier's challenge (issued at the epoch's start) and lets every other
/// verifier's challenge expire. It is never on probation, so the honest daemons (which read only
/// `isUnresponsive`) challenge it every epoch, forever, pay ~175-208k gas each time and earn no
/// point, while the partner earns the verifier point of every epoch.
contract AttackSelectiveAnswersTest is FirnFixture {
    uint256 internal constant EPOCHS = 10;
    TestNode internal node;

    function setUp() public override {
        super.setUp();
        rewards.setParameters(ANSWER_WINDOW, 1, 1000, 2000); // deploy defaults: livenessTarget 1
        node = _activeNode(2, SIM, MEASUREMENT);
    }

    function test_attack_nodeAnsweringOnlyItsPartnerMakesHonestVerifiersPayForever() public {
        uint64 g0 = rewards.genesis();
        uint256 unanswered;
        // From epoch 1: the setUp's parameters apply from the epoch after the one they were set in
        // (decision 1706).
        for (uint256 e = 1; e <= EPOCHS; ++e) {
            vm.warp(g0 + e * EPOCH + 1);
            vm.prank(verifierList[3]); // the partner, first in the epoch
            bytes32 id = rewards.issueChallenge(node.enclaveId);
            IFirnRewards.Challenge memory c = rewards.getChallenge(id);
            rewards.answerChallenge(
                id,
                _sig(node.enclaveKey, rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch)))
            );
            vm.warp(g0 + e * EPOCH + 60);
            for (uint256 v = 0; v < 3; ++v) {
                if (rewards.isUnresponsive(node.enclaveId)) continue; // what an honest daemon reads
                vm.prank(verifierList[v]);
                rewards.issueChallenge(node.enclaveId); // never answered
                ++unanswered;
            }
        }
        vm.assertEq(rewards.missedEpochs(node.enclaveId), 0, "the node is never on probation");
        vm.assertTrue(rewards.nodePoints(uint64(EPOCHS), node.enclaveId) > 0, "it earns its whole share");
        vm.assertEq(rewards.verifierPoints(uint64(EPOCHS), verifierList[0]), 0, "honest verifiers earn nothing");
        // 1576's bound: unanswered challenges cost the verifiers at most MAX_MISSED_EPOCHS transactions.
        vm.assertLe(unanswered, rewards.MAX_MISSED_EPOCHS(), "honest verifiers paid for unanswered challenges every epoch");
    }
}
