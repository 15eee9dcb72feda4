// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Red team R2 (policy change vs rewards): a measurement revoked mid-epoch keeps the
/// platform's capacity share it took before the revocation. `_takesPlatformShare` compares only
/// stakes and never asks whether the holder is still eligible, so an eligible co-tenant on the same
/// platform that stays live for the rest of the epoch (answering every challenge) cannot take the
/// share over, and the revoked enclave is paid the platform's whole share for the epoch of its
/// revocation. Promise (0800): a revoked measurement makes a node ineligible at once; one platform
/// earns one share, for the enclave that proves the platform live.
contract AttackRevokedKeepsPlatformShareTest is FirnScenario {
    TestNode internal revoked;
    TestNode internal coTenant;

    function setUp() public override {
        super.setUp();
        registry.setGuardian(guardian);
        revoked = _node(1);
        _activate(revoked, 2 * MIN_NODE_STAKE, SIM, MEASUREMENT);
        coTenant = _node(5);
        coTenant.platformIdHash = revoked.platformIdHash;
        _activate(coTenant, MIN_NODE_STAKE, SIM, MEASUREMENT_B);
        _fundPool(10 ether);
    }

    function test_attack_revokedMeasurementKeepsThePlatformShareOverItsLiveCoTenant() public {
        uint64 g0 = rewards.genesis();
        vm.warp(g0 + 1);
        _answer(0, revoked); // one answer at the epoch's start: the platform's share holder
        // The guardian revokes its measurement (a TCB found broken) a minute later.
        vm.warp(g0 + 60);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.assertFalse(registry.isEligible(revoked.enclaveId), "ineligible at once");
        // The co-tenant, still allowed, proves the platform live for the rest of the epoch.
        vm.warp(g0 + 2 hours);
        _answer(1, coTenant);
        _answer(2, coTenant);
        _answer(3, coTenant);

        vm.warp(g0 + EPOCH + 1);
        uint256 revokedReward = rewards.pendingNodeReward(0, revoked.enclaveId);
        uint256 coTenantReward = rewards.pendingNodeReward(0, coTenant.enclaveId);
        vm.assertEq(revokedReward, 0, "the revoked enclave is paid the platform's share for the epoch it was revoked in");
        vm.assertTrue(coTenantReward != 0, "the eligible co-tenant that kept the platform live earned nothing");
    }
}
