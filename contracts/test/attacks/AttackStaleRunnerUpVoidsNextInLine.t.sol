// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Rewards bookkeeping of decisions 1708/1726/1777. The platform's "next in line"
/// (`_platformRunnerUp`) is not cleared when that next in line itself takes the share through the
/// 1708 path (the holder became ineligible by its own exit). It stays recorded as its own next in
/// line while holding the share, and a later co-tenant with less stake is never recorded (it does
/// not outrank the stale entry). When the guardian then revokes the new holder, `_dropPoints`
/// "promotes" the revoked holder itself (ineligible: nothing credited) and the real next in line
/// loses the points of its earlier answers: they go void (stay in the pool) instead of to it.
/// Safe outcome (1726, 1777): the eligible co-tenant that answered while the revoked node held the
/// share takes the share with its earlier answers (up to the target). Decision 1782: the next in
/// line never names the holder.
contract AttackStaleRunnerUpVoidsNextInLineTest is FirnScenario {
    function test_attack_staleRunnerUpVoidsTheRealNextInLine() public {
        registry.setGuardian(guardian);
        TestNode memory h = _node(1);
        _activate(h, 3 ether, SIM, MEASUREMENT);
        TestNode memory r = _node(2);
        r.platformIdHash = h.platformIdHash;
        _activate(r, 2 ether, SIM, MEASUREMENT_B);
        TestNode memory q = _node(3);
        q.platformIdHash = h.platformIdHash;
        _activate(q, 1 ether, SIM, MEASUREMENT);
        _fundPool(10 ether);

        uint64 g0 = rewards.genesis();
        vm.warp(g0 + 1);
        _answer(0, h); // h holds the platform's share
        _answer(0, r); // r: next in line
        vm.prank(h.operator);
        registry.requestExit(h.enclaveId); // h's own act: ineligible, not restricted
        _answer(1, r); // r takes the share from the exited holder (1708); still recorded as next in line
        vm.assertEq(rewards.nodePoints(0, r.enclaveId), 2 ether, "r holds with one counted answer");
        _answer(0, q); // q answers while r holds: q is the real next in line
        _answer(1, q);

        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT_B); // r revoked
        rewards.dropRevokedPoints(r.enclaveId);
        _answer(2, q);

        vm.assertEq(
            rewards.nodePoints(0, q.enclaveId),
            3 ether,
            "the next in line lost its earlier answers to a stale next-in-line entry (points void)"
        );
    }

    /// @dev H (3 ether) holds the platform's share, R (2) answers and is next in line, Q (1) is the
    /// third co-tenant, all in epoch 0; the pool holds 10 ether.
    function _coTenants() internal returns (TestNode memory h, TestNode memory r, TestNode memory q) {
        registry.setGuardian(guardian);
        h = _node(1);
        _activate(h, 3 ether, SIM, MEASUREMENT);
        r = _node(2);
        r.platformIdHash = h.platformIdHash;
        _activate(r, 2 ether, SIM, MEASUREMENT_B);
        q = _node(3);
        q.platformIdHash = h.platformIdHash;
        _activate(q, 1 ether, SIM, MEASUREMENT);
        _fundPool(10 ether);
        vm.warp(rewards.genesis() + 1);
        _answer(0, h);
        _answer(0, r);
    }

    /// @notice The 1777 path: Q's own answer contests the revoked holder R before anyone drops its
    /// points. R's drop promotes Q (recorded next in line once R holds), not R itself: Q holds with
    /// its two earlier answers and this one, R's points are what Q took, none void.
    function test_contestingTheRevokedHolderPromotesTheRealNextInLine() public {
        (TestNode memory h, TestNode memory r, TestNode memory q) = _coTenants();
        vm.prank(h.operator);
        registry.requestExit(h.enclaveId);
        _answer(1, r); // r takes the share from the exited holder (1708)
        _answer(0, q);
        _answer(1, q);

        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT_B); // r revoked
        _answer(2, q); // contests the revoked holder: r's points dropped, q promoted

        vm.assertEq(rewards.nodePoints(0, r.enclaveId), 0, "the revoked holder lost its points");
        vm.assertEq(rewards.nodePoints(0, q.enclaveId), 3 ether, "q holds with its two earlier answers and this one");
        (uint256 nodeVoid,) = rewards.voidPoints(0);
        vm.assertEq(nodeVoid, 0, "q took all of r's 2 ether of points");
        vm.assertEq(rewards.getEpoch(0).nodePoints, 3 ether, "only q's points in the total");
        vm.expectRevert();
        rewards.dropRevokedPoints(r.enclaveId);
    }

    /// @notice The same with the holder slashed instead of exited (another 1708 path): R takes the
    /// share from the slashed holder and leaves the next-in-line record, so Q, with less stake, is
    /// recorded and promoted when R's points are dropped.
    function test_takingTheShareFromASlashedHolderClearsTheNextInLine() public {
        (TestNode memory h, TestNode memory r, TestNode memory q) = _coTenants();
        vm.prank(address(market));
        registry.slash(h.enclaveId, 0.5 ether, stranger, "fault");
        _answer(1, r);
        vm.assertEq(rewards.nodePoints(0, h.enclaveId), 0, "the slashed holder lost the share");
        _answer(0, q);

        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT_B);
        rewards.dropRevokedPoints(r.enclaveId);

        vm.assertEq(rewards.nodePoints(0, q.enclaveId), 1 ether, "q takes the share with its earlier answer");
        (uint256 nodeVoid,) = rewards.voidPoints(0);
        vm.assertEq(nodeVoid, 1 ether, "of r's 2 ether, what q did not take stays void");
        _answer(1, q);
        vm.assertEq(rewards.nodePoints(0, q.enclaveId), 2 ether, "q's next answer counts as the holder's");
    }

    /// @notice A drop with nobody recorded after the dropped holder took the share promotes no one,
    /// never the dropped node itself: its points stay void and the share is free for the next
    /// eligible answer.
    function test_dropWithNoOtherNextInLinePromotesNobody() public {
        (TestNode memory h, TestNode memory r, TestNode memory q) = _coTenants();
        vm.prank(h.operator);
        registry.requestExit(h.enclaveId);
        _answer(1, r);

        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT_B);
        rewards.dropRevokedPoints(r.enclaveId);
        vm.assertEq(rewards.nodePoints(0, r.enclaveId), 0, "the dropped node is not promoted");
        (uint256 nodeVoid,) = rewards.voidPoints(0);
        vm.assertEq(nodeVoid, 2 ether, "r's points stay void");

        _answer(0, q);
        vm.assertEq(rewards.nodePoints(0, q.enclaveId), 1 ether, "q takes the free share");
    }
}
