// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice R6 red team (decisions 1720, 1742, 1755). A registration round has no deadline and its
/// electorate is frozen at the round's snapshot: members who join later can never vote in it, and
/// since 1720/1755 the denominator shrinks as the snapshot's members leave. Since 1742 an honest
/// verifier that gets no evidence (the node answers it 429 / times out) casts no vote at all.
///
/// Attack: a sybil verifier operator (two identities, 25% of the stake, a dishonest minority)
/// registers a node with evidence that would be refused, and serves that evidence to its own
/// identities only (429 to everyone else: no vote, never a refusal). The sybils approve. The round
/// stays Pending, costing nothing. The honest members of the snapshot churn out over time (ordinary
/// upgrades: leave, rejoin with a new key); the newcomers cannot vote in the old round. Once the
/// snapshot's honest stake is gone, anyone calls `concludeRound` and the node is Active on the
/// approval of 25% of the network's stake, with no honest verifier ever having checked its
/// evidence, while honest members hold 75% of the active stake at that very block.
/// Safe outcome: a dishonest minority cannot activate a node; the round is not decided by the
/// approvals of less than a third of the stake active when it concludes.
contract AttackR6ShrinkingElectorateTest is FirnFixture {
    function test_attack_sybilMinorityActivatesAfterHonestChurn() public {
        // 6 honest members of 0.5 ether (3 ether), 2 sybil identities of 0.5 ether (1 ether): 25%.
        _joinVerifiers(2);
        address[] memory honest = verifierList;
        address s1 = _verifierAddr(9001);
        address s2 = _verifierAddr(9002);
        _joinVerifier(s1, MIN_VERIFIER_STAKE);
        _joinVerifier(s2, MIN_VERIFIER_STAKE);

        TestNode memory t = _node(77);
        _register(t, SIM, MEASUREMENT);
        uint32 round = registry.getNode(t.enclaveId).round;

        // Only the sybils see evidence: they approve. The honest daemons get 429 and cast no vote.
        vm.prank(s1);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.prank(s2);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.RoundUndecided.selector, t.enclaveId, round, 1 ether, 0, 4 ether)
        );
        registry.concludeRound(t.enclaveId, round);

        // Months pass; every honest member of the snapshot rotates out and in again with a new key.
        for (uint256 i = 0; i < honest.length; ++i) {
            vm.warp(block.timestamp + 7 days);
            vm.prank(honest[i]);
            verifierSet.requestLeave();
            _joinVerifier(_verifierAddr(5000 + i), MIN_VERIFIER_STAKE);
        }
        // The honest newcomers hold 3 of the 4 active ether, but the old round is not theirs.
        vm.assertEq(verifierSet.totalActiveStake(), 4 ether, "network stake unchanged");
        address newcomer = _verifierAddr(5000);
        uint64 snap = registry.getNode(t.enclaveId).snapshotId;
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotEligibleVoter.selector, t.enclaveId, newcomer, snap));
        vm.prank(newcomer);
        registry.refuse(t.enclaveId, 1, t.evidenceDigest, 1);

        // Anyone (the attacker) concludes: 1 ether of approvals against a denominator of 1 ether.
        vm.prank(stranger);
        try registry.concludeRound(t.enclaveId, round) {} catch {}

        vm.assertFalse(
            registry.isActive(t.enclaveId),
            "a 25% sybil minority activated a node no honest verifier ever checked"
        );
    }
}
