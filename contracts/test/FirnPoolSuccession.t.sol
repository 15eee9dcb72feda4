// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {FirnRewards} from "../src/FirnRewards.sol";
import {IFirnRewards} from "../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @notice After a pool move, governance moves the old pool's unallocated balance to its successor
/// (decision 1757), never what an epoch with points is owed: not before every such epoch is closed,
/// and never a closed epoch's budget, claimed or not.
contract FirnPoolSuccessionTest is FirnFixture {
    TestNode internal nodeA;
    FirnRewards internal pool2;

    function setUp() public override {
        super.setUp();
        nodeA = _activeNode(1, SIM, MEASUREMENT); // its approvers earn points in epoch 0
        vm.deal(address(this), 100 ether);
        rewards.fund{value: 10 ether}();
        pool2 = new FirnRewards(
            owner, registry, verifierSet, EPOCH, ANSWER_WINDOW, LIVENESS_TARGET, EPOCH_BUDGET_BPS, VERIFIER_SHARE_BPS
        );
    }

    function _work(FirnRewards pool, uint256 v, TestNode memory t) internal {
        vm.prank(verifierList[v]);
        bytes32 id = pool.issueChallenge(t.enclaveId);
        IFirnRewards.Challenge memory c = pool.getChallenge(id);
        pool.answerChallenge(
            id, _sig(t.enclaveKey, pool.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch)))
        );
    }

    function _warpTo(uint64 epoch) internal {
        vm.warp(rewards.genesis() + epoch * EPOCH + 1);
    }

    /// @dev The node works epoch 1 on the old pool; the registry moves to pool2 during epoch 1.
    /// Moving the unallocated balance then would leave epoch 1's budget (half of what is left when it
    /// closes) with nothing: the move waits until epoch 1 is closed, and the node is paid exactly
    /// what it was owed before any move was tried.
    function test_attack_moveCannotTakeWhatAWorkedEpochIsOwed() public {
        _warpTo(1);
        rewards.closeEpoch(0);
        vm.assertEq(rewards.openWorkedEpochs(), 0, "epoch 0 closed");
        _work(rewards, 0, nodeA);
        vm.assertEq(rewards.openWorkedEpochs(), 1, "epoch 1 worked");

        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.PoolNotRetired.selector, address(rewards)));
        rewards.moveUnallocated();
        registry.setRewardPool(address(pool2));
        // Anyone may move (decision 1820), and no one before the worked epoch is closed.
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.WorkedEpochsOpen.selector, uint256(1)));
        vm.prank(stranger);
        rewards.moveUnallocated();
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.WorkedEpochsOpen.selector, uint256(1)));
        rewards.moveUnallocated();

        _warpTo(2);
        uint256 owedNode = rewards.pendingNodeReward(1, nodeA.enclaveId);
        uint256 owedVerifier = rewards.pendingVerifierReward(1, verifierList[0]);
        vm.assertTrue(owedNode != 0 && owedVerifier != 0, "epoch 1 is owed a budget");
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.WorkedEpochsOpen.selector, uint256(1)));
        rewards.moveUnallocated(); // ended, not closed yet

        rewards.closeEpoch(1);
        uint256 allocated = rewards.totalAllocated();
        uint256 unallocated = rewards.totalReceived() - allocated;
        vm.expectEmit(address(rewards));
        emit IFirnRewards.UnallocatedMoved(address(pool2), unallocated);
        vm.assertEq(rewards.moveUnallocated(), unallocated, "returns the amount");
        vm.assertEq(pool2.totalReceived(), unallocated, "the successor's budgets take it");
        vm.assertEq(address(pool2).balance, unallocated, "and holds it");
        vm.assertEq(rewards.totalMoved(), unallocated, "recorded");
        vm.expectRevert(IFirnRewards.NothingToMove.selector);
        rewards.moveUnallocated();

        // Everything owed is still paid in full, after the move.
        rewards.claimNodeReward(1, nodeA.enclaveId);
        rewards.claimVerifierReward(1, verifierList[0]);
        vm.assertEq(rewards.withdrawable(nodeA.operator), owedNode, "the node is paid what it was owed");
        vm.assertEq(rewards.withdrawable(verifierList[0]), owedVerifier, "its verifier too");
        for (uint256 i = 0; i < APPROVE_QUORUM; ++i) {
            if (rewards.verifierPoints(0, verifierList[i]) != 0) rewards.claimVerifierReward(0, verifierList[i]);
        }
        vm.prank(nodeA.operator);
        rewards.withdraw();
        vm.prank(verifierList[0]);
        rewards.withdraw();
        vm.assertLe(rewards.totalWithdrawn(), allocated, "paid from the allocation only");
        vm.assertEq(
            address(rewards).balance, allocated - rewards.totalWithdrawn(), "the old pool holds exactly what it still owes"
        );
    }

    /// @dev Pointed back at the old pool after a move, it takes work again and budgets a later
    /// epoch from what it received since, never from the balance it moved away.
    function test_pointedBackAfterAMove_budgetsOnlyWhatCameSince() public {
        registry.setRewardPool(address(pool2));
        _warpTo(1);
        rewards.closeEpoch(0);
        uint256 moved = rewards.moveUnallocated();
        vm.assertTrue(moved != 0, "moved");

        registry.setRewardPool(address(rewards));
        rewards.fund{value: 2 ether}();
        _work(rewards, 0, nodeA);
        vm.assertEq(rewards.openWorkedEpochs(), 1, "worked again");
        _warpTo(2);
        rewards.closeEpoch(1);
        IFirnRewards.Epoch memory ep = rewards.getEpoch(1);
        vm.assertEq(ep.nodeBudget + ep.verifierBudget, uint256(2 ether) * EPOCH_BUDGET_BPS / 10_000, "from the 2 ether only");
        vm.assertEq(rewards.openWorkedEpochs(), 0, "closed");
    }
}
