// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Decision 1594 promises that a node which reached its liveness target in an epoch takes no
/// more challenges (the verifiers would pay for answers that earn nobody anything). Since 1620/1622 an
/// answer of an enclave whose platform's share is held by a co-tenant with more stake is accepted
/// (it proves the node live) but returns before `answers` is counted, so such a node never reaches
/// the target: every verifier challenges it every epoch, forever, the node pays gas for every
/// answer, and neither it nor the verifiers earn anything for them. A co-tenant with a larger stake
/// on an honest operator's platform (a cloud host) thus makes the honest node and every honest
/// verifier pay V challenges and V answers per epoch for nothing (with the deploy default target 1,
/// V - 1 more than for any other node).
contract AttackTwinNeverReachesTargetTest is FirnScenario {
    TestNode internal honest;
    TestNode internal big;

    function setUp() public override {
        super.setUp();
        big = _node(7);
        _activate(big, 6 * MIN_NODE_STAKE, SIM, MEASUREMENT);
        honest = _node(1);
        honest.platformIdHash = big.platformIdHash;
        _activate(honest, 5 * MIN_NODE_STAKE, SIM, MEASUREMENT_B);
        while (verifierList.length < LIVENESS_TARGET + 2) {
            _joinVerifier(_verifierAddr(verifierList.length + 1), MIN_VERIFIER_STAKE);
        }
    }

    function test_attack_nonHolderTwinIsChallengedPastItsTarget() public {
        vm.warp(rewards.genesis() + 1);
        _answer(0, big); // the larger stake holds the platform's share
        for (uint256 v = 1; v <= LIVENESS_TARGET; ++v) {
            _answer(v, honest); // the honest co-tenant answers every challenge on time
        }
        vm.assertEq(rewards.missedEpochs(honest.enclaveId), 0, "proved live");
        // Promise (1594): a node that answered its target in the epoch is not challenged again.
        vm.assertTrue(rewards.isUnresponsive(honest.enclaveId), "daemons skip a node past its target");
        vm.prank(verifierList[LIVENESS_TARGET + 1]);
        try rewards.issueChallenge(honest.enclaveId) returns (bytes32) {
            vm.assertTrue(false, "a challenge past the node's target was accepted");
        } catch {}
    }
}
