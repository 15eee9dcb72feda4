// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Decision 1622: "taking a platform's share now costs more stake than the honest tenant
/// holds". Ties keep the first answerer, so it costs only as much: a co-tenant staking exactly what
/// the honest node stakes (both at the minimum, the common case), challenged at each epoch's start
/// by a colluding verifier, answers first and takes the platform's whole share every epoch, as
/// before 1622 (AttackPlatformTwinShare). The honest node answers every challenge on time and earns
/// nothing; the order of answers, which a verifier controls, decides again.
contract AttackPlatformTwinTieTest is FirnScenario {
    uint256 internal constant EPOCHS = 5;
    TestNode internal honest;
    TestNode internal twin;

    function setUp() public override {
        super.setUp();
        honest = _node(1);
        _activate(honest, MIN_NODE_STAKE, SIM, MEASUREMENT);
        twin = _node(5);
        twin.platformIdHash = honest.platformIdHash;
        _activate(twin, MIN_NODE_STAKE, SIM, MEASUREMENT_B);
        _fundPool(10 ether);
    }

    function test_attack_equalStakeCoTenantTakesThePlatformShareEveryEpoch() public {
        uint64 g0 = rewards.genesis();
        for (uint256 e = 0; e < EPOCHS; ++e) {
            vm.warp(g0 + e * EPOCH + 1);
            _answer(3, twin); // the colluding verifier challenges the co-tenant first
            vm.warp(g0 + e * EPOCH + 60);
            _answer(0, honest);
            _answer(1, honest);
            _answer(2, honest);
        }
        vm.warp(g0 + EPOCHS * EPOCH + 1);
        for (uint64 e = 0; e < EPOCHS; ++e) {
            rewards.closeEpoch(e);
            if (rewards.nodePoints(e, honest.enclaveId) != 0) {
                rewards.claimNodeReward(e, honest.enclaveId);
            }
            if (rewards.nodePoints(e, twin.enclaveId) != 0) {
                rewards.claimNodeReward(e, twin.enclaveId);
            }
        }
        uint256 honestEarned = rewards.withdrawable(honest.operator);
        uint256 twinEarned = rewards.withdrawable(twin.operator);
        // Equal stake, both answered on time: who answered first (the colluding verifier's choice)
        // must not decide the share. Each epoch goes to the first of the two in that epoch's fixed
        // order (decision 1622), so the honest node earns in the epochs that order gives it.
        uint256 honestEpochs;
        for (uint64 e = 0; e < EPOCHS; ++e) {
            bool honestFirst =
                keccak256(abi.encode(e, honest.enclaveId)) < keccak256(abi.encode(e, twin.enclaveId));
            if (honestFirst) ++honestEpochs;
            vm.assertEq(rewards.nodePoints(e, honest.enclaveId) != 0, honestFirst, "the epoch's order, not the answer order, decides");
            vm.assertEq(rewards.nodePoints(e, twin.enclaveId) != 0, !honestFirst, "one share per platform");
        }
        vm.assertTrue(honestEpochs > 0, "the fixed order gives the honest node some epochs");
        vm.assertTrue(honestEarned > 0, "the first answerer took the platform's share on a tie");
        vm.assertTrue(twinEarned > 0, "and the co-tenant its own turns");
    }
}
