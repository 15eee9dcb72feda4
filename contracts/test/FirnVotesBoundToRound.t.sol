// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "../src/interfaces/IFirnRegistry.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @notice Decision 1831: a registry vote names the round it judged, and a round fixes the enclave
/// address and KEM key. An operator that withdraws its Pending registration and registers the same
/// Enclave ID again with keys of its own (same evidence digest) while a verifier fetches evidence
/// for the old keys gets no vote from it; nor does a key rotation that follows a refused one.
contract FirnVotesBoundToRoundTest is FirnFixture {
    bytes32 internal constant OTHER_KEM = keccak256("kem held by the operator");

    /// @dev The same Enclave ID and evidence digest as `t`, but an enclave address and KEM key the
    /// operator holds outright.
    function _swapped(TestNode memory t) internal pure returns (IFirnRegistry.RegistrationParams memory p) {
        p = _params(t, SIM, MEASUREMENT);
        p.enclaveAddress = address(0xbad);
        p.kemPublicKey = OTHER_KEM;
    }

    /// @dev register (round 1), requestExit (a Pending registration ends at once), register again
    /// with other keys (round 2): approvals and refusals naming round 1 revert RoundMismatch and are
    /// not counted, the quorum's round-1 approvals never activate round 2, which is judged on its own.
    function test_attack_reRegistrationWithOtherKeysTakesNoOldRoundVote() public {
        TestNode memory t = _node(1);
        _register(t, SIM, MEASUREMENT);
        uint32 judged = _round(t.enclaveId);
        vm.assertEq(judged, 1, "round 1");

        // While the verifiers fetch evidence for round 1's keys, the operator swaps the keys.
        vm.startPrank(t.operator);
        registry.requestExit(t.enclaveId);
        registry.register{value: MIN_NODE_STAKE}(_swapped(t));
        vm.stopPrank();
        IFirnRegistry.Node memory n = registry.getNode(t.enclaveId);
        vm.assertEq(n.round, 2, "round 2");
        vm.assertEq(n.evidenceDigest, t.evidenceDigest, "the same digest");

        for (uint256 i = 0; i < VERIFIERS; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundMismatch.selector, t.enclaveId, 2, judged));
            vm.prank(verifierList[i]);
            registry.approve(t.enclaveId, judged, t.evidenceDigest);
        }
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundMismatch.selector, t.enclaveId, 2, judged));
        vm.prank(verifierList[0]);
        registry.refuse(t.enclaveId, judged, t.evidenceDigest, 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundMismatch.selector, t.enclaveId, 2, judged));
        registry.concludeRound(t.enclaveId, judged);

        n = registry.getNode(t.enclaveId);
        vm.assertEq(uint256(n.status), uint256(IFirnRegistry.NodeStatus.Pending), "still pending");
        vm.assertEq(n.approvalStake, 0, "no approval counted");
        vm.assertEq(n.refusalStake, 0, "no refusal counted");
        vm.assertFalse(registry.hasVoted(t.enclaveId, 2, verifierList[0]), "no vote in round 2");
        vm.assertEq(registry.enclaveIdOf(address(0xbad)), t.enclaveId, "the new key is only reserved");

        // Round 2 is judged on its own evidence: the verifiers refuse it (the keys are not the enclave's).
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeRefused(t.enclaveId, verifierList[0], 5, 2, MIN_VERIFIER_STAKE, MIN_VERIFIER_STAKE);
        vm.prank(verifierList[0]);
        registry.refuse(t.enclaveId, 2, t.evidenceDigest, 5);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeRejected(t.enclaveId, 2, MIN_NODE_STAKE);
        vm.prank(verifierList[1]);
        registry.refuse(t.enclaveId, 2, t.evidenceDigest, 5);
        vm.assertFalse(registry.isActive(t.enclaveId), "never active with the operator's key");
    }

    /// @dev The honest path: votes naming the open round count and the quorum activates it.
    function test_openRoundVotesActivate() public {
        TestNode memory t = _node(2);
        _register(t, SIM, MEASUREMENT);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeApproved(t.enclaveId, verifierList[0], 1, MIN_VERIFIER_STAKE, MIN_VERIFIER_STAKE);
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.prank(verifierList[1]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeActivated(t.enclaveId, 1);
        vm.prank(verifierList[2]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.assertEq(registry.getNode(t.enclaveId).enclaveAddress, t.enclaveAddress, "the checked key");

        // A concluded round takes no more votes, whatever round is named.
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, t.enclaveId, IFirnRegistry.NodeStatus.Active)
        );
        vm.prank(verifierList[3]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
    }

    /// @dev Rotation rounds likewise: a rotation refused in round 2 and requested again in round 3
    /// with other keys (same digest) takes no round-2 vote; round-3 votes rotate to round 3's keys.
    function test_attack_rotationRequestedAgainTakesNoOldRoundVote() public {
        TestNode memory t = _activeNode(3, SIM, MEASUREMENT);
        uint256 fee = registry.registrationFee();
        bytes32 digest = keccak256("rotation evidence");
        address first = vm.addr(0xabc);
        address second = vm.addr(0xdef);
        vm.prank(t.operator);
        registry.rotateKeys{value: fee}(t.enclaveId, first, keccak256("kem-first"), digest);
        uint32 judged = _round(t.enclaveId);
        vm.assertEq(judged, 2, "rotation round 2");
        // Two refusals drop it; the operator asks again with other keys and the same digest.
        vm.prank(verifierList[2]);
        registry.refuse(t.enclaveId, judged, digest, 1);
        vm.prank(verifierList[3]);
        registry.refuse(t.enclaveId, judged, digest, 1);
        vm.assertFalse(registry.getNode(t.enclaveId).rotationPending, "dropped");
        vm.prank(t.operator);
        registry.rotateKeys{value: fee}(t.enclaveId, second, keccak256("kem-second"), digest);

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundMismatch.selector, t.enclaveId, 3, judged));
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, judged, digest);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundMismatch.selector, t.enclaveId, 3, judged));
        vm.prank(verifierList[0]);
        registry.refuse(t.enclaveId, judged, digest, 1);
        vm.assertEq(registry.getNode(t.enclaveId).approvalStake, 0, "nothing counted");

        vm.roll(block.number + 1);
        for (uint256 i = 0; i < APPROVE_QUORUM; ++i) {
            vm.prank(verifierList[i]);
            registry.approve(t.enclaveId, 3, digest);
        }
        IFirnRegistry.Node memory n = registry.getNode(t.enclaveId);
        vm.assertFalse(n.rotationPending, "concluded");
        vm.assertEq(n.enclaveAddress, second, "round 3's key");
    }

    /// @dev Any round but the open one reverts RoundMismatch (approve, refuse, concludeRound),
    /// before the vote's weight is read, and leaves the tallies as they were.
    function testFuzz_otherRoundReverts(uint32 named) public {
        TestNode memory t = _node(4);
        _register(t, SIM, MEASUREMENT);
        vm.assume(named != 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundMismatch.selector, t.enclaveId, 1, named));
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, named, t.evidenceDigest);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundMismatch.selector, t.enclaveId, 1, named));
        vm.prank(stranger);
        registry.refuse(t.enclaveId, named, t.evidenceDigest, 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundMismatch.selector, t.enclaveId, 1, named));
        registry.concludeRound(t.enclaveId, named);
        IFirnRegistry.Node memory n = registry.getNode(t.enclaveId);
        vm.assertEq(n.approvalStake + n.refusalStake, 0, "nothing counted");
    }
}
