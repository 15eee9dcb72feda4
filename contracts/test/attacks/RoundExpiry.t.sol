// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice Decision 1833: every registration and key-rotation round has a deadline. A stranger who
/// registers an honest operator's Enclave ID, or its enclave address, behind an endpoint that never
/// answers gets no vote (decision 1742) and used to hold the ID or address for ever for one fee; now
/// anyone ends the round at its deadline, the squatter's stake goes back to the squatter, the fee
/// stays, and the honest operator registers.
contract RoundExpiryTest is FirnFixture {
    uint256 internal constant FEE = 0.01 ether;
    address internal squatter = address(0xb0b);
    address internal anyone = address(0xa11);

    function setUp() public override {
        super.setUp();
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, FEE);
        vm.deal(squatter, 100 ether);
    }

    /// @dev B's registration: A's Enclave ID with B's keys, or B's Enclave ID with A's enclave address.
    function _squat(TestNode memory a, bool takeId) internal returns (bytes32 squatId) {
        TestNode memory b = _node(uint256(keccak256(abi.encode("squatter", a.enclaveId, takeId))));
        IFirnRegistry.RegistrationParams memory p = _params(b, SIM, MEASUREMENT);
        if (takeId) p.enclaveId = a.enclaveId;
        else p.enclaveAddress = a.enclaveAddress;
        p.endpoint = "https://silent.example:8443";
        vm.prank(squatter);
        registry.register{value: MIN_NODE_STAKE + FEE}(p);
        return p.enclaveId;
    }

    function _registerAs(TestNode memory t) internal {
        vm.prank(t.operator);
        registry.register{value: MIN_NODE_STAKE + FEE}(_params(t, SIM, MEASUREMENT));
    }

    function _expectBlocked(TestNode memory a, bytes memory err) internal {
        vm.expectRevert(err);
        _registerAs(a);
    }

    function _endsAt(bytes32 enclaveId) internal view returns (uint64) {
        return registry.getNode(enclaveId).roundEndsAt;
    }

    /// @dev The attack on the Enclave ID, then the cure: after the deadline anyone expires B's round,
    /// B's stake is refundable to B, the fee stays held, and A registers and is activated.
    function test_attack_squattedEnclaveIdFreedAtDeadline() public {
        TestNode memory a = _node(1);
        bytes32 id = _squat(a, true);
        vm.assertEq(_endsAt(id), block.timestamp + 1 days, "deadline set");
        _expectBlocked(
            a,
            abi.encodeWithSelector(
                IFirnRegistry.EnclaveIdActive.selector, a.enclaveId, IFirnRegistry.NodeStatus.Pending
            )
        );

        uint256 feesBefore = registry.feesHeld();
        vm.warp(_endsAt(id));
        vm.expectEmit(address(registry));
        emit IFirnRegistry.RoundExpired(id, 1, anyone, false, MIN_NODE_STAKE);
        vm.prank(anyone);
        registry.expireRound(id, 1);

        IFirnRegistry.Node memory n = registry.getNode(id);
        vm.assertEq(uint256(n.status), uint256(IFirnRegistry.NodeStatus.Exited), "exited");
        vm.assertEq(n.stake, 0, "no stake held");
        vm.assertEq(registry.withdrawable(squatter), MIN_NODE_STAKE, "the stake is B's to withdraw");
        vm.assertEq(registry.withdrawable(anyone), 0, "the caller earns nothing");
        vm.assertEq(registry.feesHeld(), feesBefore, "the fee is kept");
        vm.assertEq(registry.totalStaked(), 0, "nothing staked");

        _registerAs(a);
        vm.assertEq(registry.getNode(a.enclaveId).operator, a.operator, "A holds its Enclave ID");
        _approveAll(a.enclaveId, a.evidenceDigest);
        vm.assertTrue(registry.isActive(a.enclaveId), "A is active");

        uint256 before = squatter.balance;
        vm.prank(squatter);
        registry.withdraw();
        vm.assertEq(squatter.balance - before, MIN_NODE_STAKE, "B got its stake, not its fee");
    }

    /// @dev The attack on the enclave address under another Enclave ID.
    function test_attack_squattedEnclaveAddressFreedAtDeadline() public {
        TestNode memory a = _node(2);
        bytes32 id = _squat(a, false);
        _expectBlocked(a, abi.encodeWithSelector(IFirnRegistry.EnclaveAddressInUse.selector, a.enclaveAddress, id));
        vm.warp(_endsAt(id));
        vm.prank(anyone);
        registry.expireRound(id, 1);
        vm.assertEq(registry.enclaveIdOf(a.enclaveAddress), bytes32(0), "address released");
        _registerAs(a);
        vm.assertEq(registry.enclaveIdOf(a.enclaveAddress), a.enclaveId, "A holds its address");
    }

    /// @dev Before the deadline nothing expires, whoever calls: not even one second early.
    function test_expireBeforeDeadlineReverts() public {
        TestNode memory a = _node(3);
        bytes32 id = _squat(a, true);
        uint64 endsAt = _endsAt(id);
        vm.warp(endsAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundNotExpired.selector, id, 1, endsAt, endsAt - 1));
        registry.expireRound(id, 1);
    }

    /// @dev Fuzz over time: expirable exactly from the deadline on.
    function testFuzz_expiryFromDeadlineOn(uint32 dt) public {
        TestNode memory a = _node(4);
        bytes32 id = _squat(a, true);
        uint64 start = uint64(block.timestamp);
        vm.warp(start + dt);
        if (start + dt < _endsAt(id)) {
            vm.expectRevert(
                abi.encodeWithSelector(IFirnRegistry.RoundNotExpired.selector, id, 1, _endsAt(id), start + dt)
            );
            registry.expireRound(id, 1);
        } else {
            registry.expireRound(id, 1);
            vm.assertEq(uint256(registry.getNode(id).status), uint256(IFirnRegistry.NodeStatus.Exited), "expired");
        }
    }

    /// @dev Wrong round, no open round, and decided rounds (by votes, or decidable by concludeRound).
    function test_wrongRoundAndClosedRoundsRevert() public {
        TestNode memory a = _node(5);
        _registerAs(a);
        vm.warp(_endsAt(a.enclaveId));
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundMismatch.selector, a.enclaveId, 1, 2));
        registry.expireRound(a.enclaveId, 2);
        // Votes still count after the deadline until someone expires the round.
        _approveAll(a.enclaveId, a.evidenceDigest);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, a.enclaveId, IFirnRegistry.NodeStatus.Active)
        );
        registry.expireRound(a.enclaveId, 1);

        TestNode memory r = _node(6);
        _registerAs(r);
        for (uint256 i = 0; i < REFUSE_QUORUM; ++i) {
            vm.prank(verifierList[i]);
            registry.refuse(r.enclaveId, 1, r.evidenceDigest, 5);
        }
        vm.warp(_endsAt(r.enclaveId));
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, r.enclaveId, IFirnRegistry.NodeStatus.Rejected)
        );
        registry.expireRound(r.enclaveId, 1);

        bytes32 never = keccak256("never registered");
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, never, IFirnRegistry.NodeStatus.None)
        );
        registry.expireRound(never, 0);
    }

    /// @dev A round its votes decide, left for concludeRound after a voter left: never expired.
    function test_decidableRoundIsConcludedNotExpired() public {
        TestNode memory a = _node(7);
        _registerAs(a);
        // Two of four equal verifiers approve (not > 2/3); the other two leave, so the votes cast decide.
        for (uint256 i = 0; i < 2; ++i) {
            vm.prank(verifierList[i]);
            registry.approve(a.enclaveId, 1, a.evidenceDigest);
        }
        for (uint256 i = 2; i < 4; ++i) {
            vm.prank(verifierList[i]);
            verifierSet.requestLeave();
        }
        vm.warp(_endsAt(a.enclaveId));
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundDecidable.selector, a.enclaveId, 1));
        registry.expireRound(a.enclaveId, 1);
        registry.concludeRound(a.enclaveId, 1);
        vm.assertTrue(registry.isActive(a.enclaveId), "concluded as voted");
    }

    /// @dev The rotation front-run: B registers the address A's node will rotate to; after the
    /// deadline A's rotation goes through. And A's own rotation, left unanswered, expires: A stays
    /// Active with its old keys and the reserved address is released.
    function test_attack_rotationFrontRunFreedAndRotationExpires() public {
        TestNode memory a = _activeNode(8, SIM, MEASUREMENT);
        TestNode memory next = _node(9);
        bytes32 id = _squat(next, false);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.EnclaveAddressInUse.selector, next.enclaveAddress, id));
        vm.prank(a.operator);
        registry.rotateKeys{value: FEE}(a.enclaveId, next.enclaveAddress, keccak256("kem2"), next.evidenceDigest);

        vm.warp(_endsAt(id));
        registry.expireRound(id, 1);
        vm.prank(a.operator);
        registry.rotateKeys{value: FEE}(a.enclaveId, next.enclaveAddress, keccak256("kem2"), next.evidenceDigest);
        uint32 round = _round(a.enclaveId);
        uint64 endsAt = _endsAt(a.enclaveId);
        vm.assertEq(endsAt, block.timestamp + 1 days, "rotation deadline");
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.RoundNotExpired.selector, a.enclaveId, round, endsAt, block.timestamp)
        );
        registry.expireRound(a.enclaveId, round);

        vm.warp(endsAt);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.RoundExpired(a.enclaveId, round, anyone, true, 0);
        vm.prank(anyone);
        registry.expireRound(a.enclaveId, round);
        IFirnRegistry.Node memory n = registry.getNode(a.enclaveId);
        vm.assertEq(uint256(n.status), uint256(IFirnRegistry.NodeStatus.Active), "still active");
        vm.assertFalse(n.rotationPending, "rotation dropped");
        vm.assertEq(n.enclaveAddress, a.enclaveAddress, "old keys");
        vm.assertEq(n.stake, MIN_NODE_STAKE, "stake untouched");
        vm.assertEq(registry.enclaveIdOf(next.enclaveAddress), bytes32(0), "reserved address released");
        // Votes on the expired round revert cleanly.
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, a.enclaveId, IFirnRegistry.NodeStatus.Active)
        );
        vm.prank(verifierList[0]);
        registry.approve(a.enclaveId, round, next.evidenceDigest);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, a.enclaveId, IFirnRegistry.NodeStatus.Active)
        );
        registry.concludeRound(a.enclaveId, round);
    }

    /// @dev Votes and concludeRound on an expired registration round revert NoOpenRound.
    function test_votesOnExpiredRegistrationRevert() public {
        TestNode memory a = _node(10);
        bytes32 id = _squat(a, true);
        vm.warp(_endsAt(id));
        registry.expireRound(id, 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, id, IFirnRegistry.NodeStatus.Exited));
        vm.prank(verifierList[0]);
        registry.refuse(id, 1, keccak256("any"), 5);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, id, IFirnRegistry.NodeStatus.Exited));
        registry.concludeRound(id, 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, id, IFirnRegistry.NodeStatus.Exited));
        registry.expireRound(id, 1);
    }

    /// @dev Governance: bounded, owner only, applies to rounds opened afterwards.
    function test_roundTimeoutParameter() public {
        vm.assertEq(registry.roundTimeout(), 1 days, "default");
        uint64 minT = 1 hours;
        uint64 maxT = 30 days;
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundTimeoutOutOfRange.selector, minT - 1, minT, maxT));
        registry.setRoundTimeout(minT - 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundTimeoutOutOfRange.selector, maxT + 1, minT, maxT));
        registry.setRoundTimeout(maxT + 1);
        vm.prank(stranger);
        vm.expectRevert();
        registry.setRoundTimeout(2 hours);

        TestNode memory a = _node(11);
        _registerAs(a);
        uint64 oldEnd = _endsAt(a.enclaveId);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.RoundTimeoutSet(1 days, maxT);
        registry.setRoundTimeout(maxT);
        vm.assertEq(_endsAt(a.enclaveId), oldEnd, "an open round keeps its deadline");
        TestNode memory b = _node(12);
        _registerAs(b);
        vm.assertEq(_endsAt(b.enclaveId), block.timestamp + maxT, "new rounds take the new timeout");
    }

    /// @dev A registration the quorum approved but whose measurement was revoked meanwhile is
    /// decided by its votes: it is not expired (concludeRound refuses to activate it); it is its
    /// own operator's, who withdraws it with requestExit.
    function test_approvedButRevokedIsNotExpired() public {
        TestNode memory a = _node(13);
        _registerAs(a);
        for (uint256 i = 0; i < 2; ++i) {
            vm.prank(verifierList[i]);
            registry.approve(a.enclaveId, 1, a.evidenceDigest);
        }
        registry.revokeMeasurement(SIM, MEASUREMENT);
        for (uint256 i = 2; i < 4; ++i) {
            vm.prank(verifierList[i]);
            verifierSet.requestLeave();
        }
        vm.warp(_endsAt(a.enclaveId));
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RoundDecidable.selector, a.enclaveId, 1));
        registry.expireRound(a.enclaveId, 1);
        vm.prank(a.operator);
        registry.requestExit(a.enclaveId);
        vm.assertEq(registry.withdrawable(a.operator), MIN_NODE_STAKE, "stake refundable");
    }
}
