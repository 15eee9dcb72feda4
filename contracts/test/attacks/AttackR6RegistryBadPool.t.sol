// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnRegistry} from "../../src/FirnRegistry.sol";
import {FirnRewards} from "../../src/FirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice R6 red team (decision 1756). Since the registry's pointer is the network's only pool
/// pointer, `registry.setRewardPool` checks only that the address has code. A pool built for another
/// registry (a redeploy's, a testnet's: the same bytecode, another constructor argument) is taken.
/// That pool asks ITS registry whether it is the pool: every challenge, answer and work report is
/// refused `PoolRetired` (the registry's and market's reports are swallowed by try/catch), so no
/// node or verifier earns anything, while the market's protocol fees and the registry's fees keep
/// flowing into it; its `moveUnallocated` looks at the other registry, so the money has no way back.
/// Safe outcome: the registry refuses a pool that does not name it as its registry.
contract AttackR6RegistryBadPoolTest is FirnFixture {
    function test_attack_registryTakesAPoolOfAnotherRegistry() public {
        FirnRegistry otherRegistry = new FirnRegistry(owner, verifierSet, MIN_NODE_STAKE, UNBONDING, ALL_TEE_TYPES);
        FirnRewards foreign = new FirnRewards(
            owner, otherRegistry, verifierSet, EPOCH, ANSWER_WINDOW, LIVENESS_TARGET, EPOCH_BUDGET_BPS, VERIFIER_SHARE_BPS
        );
        vm.assertTrue(address(foreign.registry()) != address(registry), "foreign");
        // The timelock's one call (`firn gov set-reward-pool ADDRESS`) with the wrong address.
        try registry.setRewardPool(address(foreign)) {} catch {}
        vm.assertEq(registry.rewardPool(), address(rewards), "the registry took a pool that serves another registry");
    }
}
