// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRegistry} from "../src/interfaces/IFirnRegistry.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @notice `concludeRound` (decision 1755): a registration or key rotation whose every remaining
/// member has voted, and that passes only because stake left, was deactivated or was slashed after
/// the last vote, is concluded by anyone exactly as a vote would have concluded it.
contract FirnConcludeRoundTest is FirnFixture {
    address internal big1;
    address internal big2;

    function setUp() public override {
        super.setUp();
        big1 = _verifierAddr(101);
        big2 = _verifierAddr(102);
    }

    /// @dev Four 0.5-ether members and two 1-ether members: 4 ether in the round's snapshot.
    function _joinBig() internal {
        _joinVerifier(big1, 1 ether);
        _joinVerifier(big2, 1 ether);
    }

    function _vote(address v, TestNode memory t, bool approve) internal {
        uint32 round = _round(t.enclaveId);
        vm.prank(v);
        if (approve) registry.approve(t.enclaveId, round, t.evidenceDigest);
        else registry.refuse(t.enclaveId, round, t.evidenceDigest, 1);
    }

    /// @dev How one member votes in `_pendingRound`: not at all, approve or refuse.
    enum Ballot {
        Silent,
        Approve,
        Refuse
    }

    /// @dev The set-up the registration tests share: the two 1-ether members join (`_joinBig`), node
    /// `seed` registers, then `verifierList[0..3]` cast `members` in that order and `big1` casts
    /// `bigOne` last. No ballot set here reaches either bar, so the order does not change the tally.
    /// Returns the node and its open round.
    function _pendingRound(uint256 seed, Ballot[4] memory members, Ballot bigOne)
        internal
        returns (TestNode memory t, uint32 round)
    {
        _joinBig();
        t = _node(seed);
        _register(t, SIM, MEASUREMENT);
        round = registry.getNode(t.enclaveId).round;
        for (uint256 i = 0; i < 4; ++i) {
            if (members[i] != Ballot.Silent) _vote(verifierList[i], t, members[i] == Ballot.Approve);
        }
        if (bigOne != Ballot.Silent) _vote(big1, t, bigOne == Ballot.Approve);
    }

    /// @dev 2.5 of 4 ether approve and 0.5 refuse: 7.5 <= 8, the round stays open. The one member
    /// that had not voted leaves; 2.5 of the 3 ether that can still vote is > 2/3, but nobody is
    /// left to cast the vote that would conclude it. Before concludeRound the registration stayed
    /// Pending for good (decision 1720's known limit).
    function test_attack_roundPassedByALaterLeaveIsStuckWithoutConcludeRound() public {
        (TestNode memory t, uint32 round) =
            _pendingRound(1, [Ballot.Approve, Ballot.Approve, Ballot.Approve, Ballot.Refuse], Ballot.Approve);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.RoundUndecided.selector, t.enclaveId, round, 2.5 ether, 0.5 ether, 4 ether)
        );
        registry.concludeRound(t.enclaveId, round);

        vm.prank(big2);
        verifierSet.requestLeave();
        // No vote can conclude the round any more: every member that can vote has voted.
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.AlreadyVoted.selector, t.enclaveId, round, verifierList[0]));
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, round, t.evidenceDigest);
        vm.assertEq(uint256(registry.getNode(t.enclaveId).status), uint256(IFirnRegistry.NodeStatus.Pending), "stuck");

        // A measurement revoked meanwhile cannot be activated, here as by a vote.
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.MeasurementRevokedWhilePending.selector, t.enclaveId, SIM, MEASUREMENT)
        );
        registry.concludeRound(t.enclaveId, round);
        registry.allowMeasurement(SIM, MEASUREMENT);

        uint64 epoch = rewards.currentEpoch();
        vm.assertEq(rewards.verifierPoints(epoch, verifierList[0]), 0, "no point before the round is decided");
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeActivated(t.enclaveId, round);
        vm.prank(stranger);
        registry.concludeRound(t.enclaveId, round);
        vm.assertTrue(registry.isActive(t.enclaveId), "activated by anyone");
        vm.assertEq(registry.enclaveKeyHistory(t.enclaveId).length, 1, "key record opened");
        vm.assertTrue(rewards.verifierPoints(epoch, verifierList[0]) > 0, "approvers earn their point");
        vm.assertTrue(rewards.verifierPoints(epoch, big1) > 0, "every approver");
        vm.assertEq(rewards.verifierPoints(epoch, verifierList[3]), 0, "the refuser earns nothing");

        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, t.enclaveId, IFirnRegistry.NodeStatus.Active)
        );
        registry.concludeRound(t.enclaveId, round);
    }

    /// @dev 1 of 4 ether refuses and 1 approves; a raise deactivates the silent 0.5-ether members
    /// and the last silent member leaves: 1 of the 2 ether left is > 1/3 of what is left, but a
    /// refusal is weighed against the snapshot's whole 4 ether (decision 1780), so the round stays
    /// open and the node Pending (no jobs): leaves never turn a minority's refusal into a rejection.
    function test_refusalUnderAThirdOfTheSnapshotNeverRejects() public {
        (TestNode memory t, uint32 round) =
            _pendingRound(2, [Ballot.Refuse, Ballot.Refuse, Ballot.Silent, Ballot.Silent], Ballot.Approve);
        verifierSet.setParameters(1 ether, UNBONDING); // deactivates every 0.5-ether member
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.RoundUndecided.selector, t.enclaveId, round, 1 ether, 1 ether, 3 ether)
        );
        registry.concludeRound(t.enclaveId, round);
        vm.prank(big2);
        verifierSet.requestLeave();

        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.RoundUndecided.selector, t.enclaveId, round, 1 ether, 1 ether, 2 ether)
        );
        vm.prank(stranger);
        registry.concludeRound(t.enclaveId, round);
        vm.assertEq(uint256(registry.getNode(t.enclaveId).status), uint256(IFirnRegistry.NodeStatus.Pending), "pending");
    }

    /// @dev A round that is still short of both bars after a leave stays open: concludeRound
    /// decides nothing a vote could not.
    function test_undecidedRoundStaysOpen() public {
        (TestNode memory t, uint32 round) =
            _pendingRound(3, [Ballot.Refuse, Ballot.Refuse, Ballot.Approve, Ballot.Approve], Ballot.Approve);
        vm.prank(big2);
        verifierSet.requestLeave();
        // 2 approve and 1 refuses of 3: neither 2 > 2 nor 1 > 1.
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.RoundUndecided.selector, t.enclaveId, round, 2 ether, 1 ether, 3 ether)
        );
        registry.concludeRound(t.enclaveId, round);
        vm.assertEq(uint256(registry.getNode(t.enclaveId).status), uint256(IFirnRegistry.NodeStatus.Pending), "open");
    }

    /// @dev A key rotation approved by 1.5 of 3 ether, the silent 1-ether member leaving: 1.5 of 2
    /// passes 2/3 and the new keys take effect at concludeRound.
    function test_rotationPassedByALaterLeaveRotates() public {
        TestNode memory t = _activeNode(4, SIM, MEASUREMENT);
        _joinVerifier(big1, 1 ether);
        address newAddr = vm.addr(0xabc);
        bytes32 newKem = keccak256("kem2");
        bytes32 newEv = keccak256("ev2");
        vm.prank(t.operator);
        registry.rotateKeys(t.enclaveId, newAddr, newKem, newEv);
        uint32 round = registry.getNode(t.enclaveId).round;
        vm.roll(block.number + 1);
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(verifierList[i]);
            registry.approve(t.enclaveId, round, newEv);
        }
        vm.prank(verifierList[3]);
        registry.refuse(t.enclaveId, round, newEv, 1);
        vm.assertTrue(registry.getNode(t.enclaveId).rotationPending, "1.5 of 3 is not 2/3");
        vm.prank(big1);
        verifierSet.requestLeave();

        vm.expectEmit(address(registry));
        emit IFirnRegistry.KeysRotated(t.enclaveId, round, newAddr, newKem);
        vm.prank(stranger);
        registry.concludeRound(t.enclaveId, round);
        IFirnRegistry.Node memory n = registry.getNode(t.enclaveId);
        vm.assertFalse(n.rotationPending, "concluded");
        vm.assertEq(n.enclaveAddress, newAddr, "new keys");
        vm.assertEq(registry.enclaveIdOf(t.enclaveAddress), bytes32(0), "old address released");
    }
}
