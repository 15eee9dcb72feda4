// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice A guardian act against the pool's money, decision 1726: "a guardian act may block work;
/// it must not move money". `dropRevokedPoints` keeps a revoked holder's points
/// void in the epoch's total, so no other platform gains. But the same revoked holder can lose its
/// share another way first: an eligible co-tenant's next answer takes the share from an ineligible
/// holder (`_contestShare`, decision 1708) and removes the holder's points from the total outright,
/// not as void. Whether the rival platforms gain the revoked node's share then depends only on
/// whether a co-tenant's answer lands before someone's drop.
/// Safe outcome: the rival's reward is the same as when the drop came first (the revoked holder's
/// points stay void; the co-tenant's own answer counts).
contract AttackRevokedHolderContestedTest is FirnScenario {
    function test_attack_coTenantAnswerAfterRevocationMovesTheRevokedShareToRivals() public {
        registry.setGuardian(guardian);
        TestNode memory victim = _activeNode(1, SIM, MEASUREMENT);
        TestNode memory rival = _activeNode(2, SIM, MEASUREMENT_B);
        TestNode memory coTenant = _node(3);
        coTenant.platformIdHash = victim.platformIdHash;
        _activate(coTenant, MIN_NODE_STAKE, SIM, MEASUREMENT_B);
        _fundPool(10 ether);

        uint64 g0 = rewards.genesis();
        vm.warp(g0 + 1);
        for (uint256 i = 0; i < LIVENESS_TARGET; ++i) {
            _answer(i, victim);
            _answer(i, rival);
        }
        vm.warp(g0 + EPOCH - 3600);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        // The co-tenant's routine challenge is answered before anyone drops the victim's points.
        _answer(3, coTenant);
        try rewards.dropRevokedPoints(victim.enclaveId) {} catch {}

        vm.warp(g0 + EPOCH + 1);
        // Drop first: total = victim 3 (void) + rival 3 + co-tenant 1 = 7; the rival is owed 3/7 of
        // the node budget (10 x 50 % x 90 % = 4.5 ether).
        uint256 nodeBudget = 4.5 ether;
        vm.assertEq(
            rewards.pendingNodeReward(0, rival.enclaveId),
            nodeBudget * 3 / 7,
            "a guardian revocation moved the revoked node's share to another platform"
        );
    }

    /// @notice The co-tenant that was next in line (an answer counted without points while the
    /// victim held the share) takes the share with that earlier answer when its next answer
    /// contests the revoked holder, as it would after the drop (decision 1777): its two answers
    /// count, the victim's points it does not take stay void, and the rival's share is unchanged.
    function test_nextInLineContestingTheRevokedHolderGetsWhatTheDropWouldGive() public {
        registry.setGuardian(guardian);
        // Twice the co-tenant's stake, so that the victim keeps the share while eligible.
        TestNode memory victim = _node(1);
        _activate(victim, 2 * MIN_NODE_STAKE, SIM, MEASUREMENT);
        TestNode memory rival = _activeNode(2, SIM, MEASUREMENT_B);
        TestNode memory coTenant = _node(3);
        coTenant.platformIdHash = victim.platformIdHash;
        _activate(coTenant, MIN_NODE_STAKE, SIM, MEASUREMENT_B);
        _fundPool(10 ether);

        uint64 g0 = rewards.genesis();
        vm.warp(g0 + 1);
        for (uint256 i = 0; i < LIVENESS_TARGET; ++i) {
            _answer(i, victim);
            _answer(i, rival);
        }
        _answer(0, coTenant);
        vm.assertEq(rewards.nodePoints(0, coTenant.enclaveId), 0, "next in line, no points yet");

        vm.warp(g0 + EPOCH - 3600);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        _answer(3, coTenant);

        vm.assertEq(rewards.nodePoints(0, victim.enclaveId), 0, "the revoked holder lost its points");
        vm.assertEq(rewards.nodePoints(0, coTenant.enclaveId), 2 * MIN_NODE_STAKE, "both answers of the co-tenant");
        (uint256 nodeVoid,) = rewards.voidPoints(0);
        vm.assertEq(nodeVoid, 5 * MIN_NODE_STAKE, "what the co-tenant did not take stays void");
        // Victim 6 (5 void, 1 taken by the co-tenant's earlier answer) + rival 3 + the answer 1.
        vm.assertEq(rewards.getEpoch(0).nodePoints, 10 * MIN_NODE_STAKE, "the total the drop would leave");
        vm.expectRevert();
        rewards.dropRevokedPoints(victim.enclaveId);

        vm.warp(g0 + EPOCH + 1);
        vm.assertEq(rewards.pendingNodeReward(0, rival.enclaveId), 4.5 ether * 3 / 10, "the rival gains nothing");
    }
}
