// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnRewards} from "../src/FirnRewards.sol";
import {IFirnRewards} from "../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @notice The pool's terms for an epoch are the ones it began with (decision 1706); a pool that is
/// no longer the registry's takes no new work (1707); a node governance made ineligible loses the
/// epoch's points and its platform's share (1708).
contract FirnRewardsEpochTermsTest is FirnFixture {
    TestNode internal nodeA;
    address internal guardian = address(0x6A4D);

    function setUp() public override {
        super.setUp();
        registry.setGuardian(guardian);
        nodeA = _activeNode(1, SIM, MEASUREMENT);
        vm.deal(address(this), 100 ether);
        rewards.fund{value: 10 ether}();
    }

    function _answerOn(FirnRewards pool, bytes32 id, TestNode memory t) internal {
        IFirnRewards.Challenge memory c = pool.getChallenge(id);
        pool.answerChallenge(
            id, _sig(t.enclaveKey, pool.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch)))
        );
    }

    function _challengeOn(FirnRewards pool, uint256 v, TestNode memory t) internal returns (bytes32 id) {
        vm.prank(verifierList[v]);
        id = pool.issueChallenge(t.enclaveId);
    }

    function _work(uint256 v, TestNode memory t) internal {
        _answerOn(rewards, _challengeOn(rewards, v, t), t);
    }

    // ------------------------------------------------------------------ 1706 parameters per epoch

    function test_setParameters_appliesFromTheNextEpoch() public {
        uint64 epoch = rewards.currentEpoch();
        vm.expectEmit(address(rewards));
        emit IFirnRewards.ParametersUpdated(20 minutes, 1, 2000, 0, epoch + 1);
        rewards.setParameters(20 minutes, 1, 2000, 0);

        vm.assertEq(rewards.answerWindow(), ANSWER_WINDOW, "this epoch keeps its window");
        vm.assertEq(rewards.livenessTarget(), LIVENESS_TARGET, "and its target");
        vm.assertEq(rewards.epochBudgetBps(), EPOCH_BUDGET_BPS, "and its budget");
        vm.assertEq(rewards.verifierShareBps(), VERIFIER_SHARE_BPS, "and its verifier share");
        IFirnRewards.RewardParameters memory next = rewards.parametersAt(epoch + 1);
        vm.assertEq(next.verifierShareBps, 0, "the next epoch runs on the new set");
        vm.assertEq(next.fromEpoch, epoch + 1, "from the next epoch");
        vm.assertEq(rewards.parametersAt(epoch).fromEpoch, 0, "this epoch: the deploy set");

        // This epoch still counts LIVENESS_TARGET answers and gives challenges the old window.
        bytes32 id = _challengeOn(rewards, 0, nodeA);
        vm.assertEq(rewards.getChallenge(id).deadline, block.timestamp + ANSWER_WINDOW, "old window this epoch");
        _answerOn(rewards, id, nodeA);
        _work(1, nodeA);
        vm.assertEq(rewards.nodePoints(epoch, nodeA.enclaveId), 2 * MIN_NODE_STAKE, "two answers count, not one");

        vm.warp(rewards.genesis() + (epoch + 1) * EPOCH + 1);
        vm.assertEq(rewards.answerWindow(), 20 minutes, "the new window applies now");
        vm.assertEq(rewards.livenessTarget(), 1, "the new target applies now");
        id = _challengeOn(rewards, 0, nodeA);
        vm.assertEq(rewards.getChallenge(id).deadline, block.timestamp + 20 minutes, "new window");
    }

    /// @notice Attack: cut the verifier share and the budget while an epoch with work is left open,
    /// then close it two changes later. It is budgeted on the set it ran under.
    function test_lateClose_budgetsAnEpochOnItsOwnParameters() public {
        uint64 epoch = rewards.currentEpoch();
        _work(0, nodeA);
        rewards.setParameters(ANSWER_WINDOW, LIVENESS_TARGET, 100, 0); // applies from epoch + 1
        vm.warp(rewards.genesis() + (epoch + 2) * EPOCH + 1);
        rewards.setParameters(ANSWER_WINDOW, LIVENESS_TARGET, 10_000, 5000); // from epoch + 3
        vm.warp(rewards.genesis() + (epoch + 4) * EPOCH + 1);

        uint256 budget = uint256(10 ether) * EPOCH_BUDGET_BPS / 10_000;
        uint256 verifierBudget = budget * VERIFIER_SHARE_BPS / 10_000;
        vm.expectEmit(address(rewards));
        emit IFirnRewards.EpochClosed(
            epoch, budget - verifierBudget, verifierBudget, MIN_NODE_STAKE, rewards.getEpoch(epoch).verifierPoints
        );
        rewards.closeEpoch(epoch);
        vm.assertEq(rewards.parametersAt(epoch + 1).epochBudgetBps, 100, "the epoch between ran on the first change");
        vm.assertEq(rewards.parametersAt(epoch + 3).verifierShareBps, 5000, "the last change from epoch + 3");
    }

    function test_setParameters_twiceInOneEpochKeepsTheLast() public {
        uint64 epoch = rewards.currentEpoch();
        rewards.setParameters(ANSWER_WINDOW, 1, 100, 0);
        rewards.setParameters(ANSWER_WINDOW, 2, 200, 300);
        IFirnRewards.RewardParameters memory next = rewards.parametersAt(epoch + 1);
        vm.assertEq(next.livenessTarget, 2, "the second call replaces the first");
        vm.assertEq(next.verifierShareBps, 300, "share");
        vm.assertEq(rewards.parametersAt(epoch).livenessTarget, LIVENESS_TARGET, "this epoch untouched");
    }

    // ------------------------------------------------------------------ 1707 retired pool

    /// @notice After governance moves the registry to a new pool, the old one takes no challenge,
    /// answer or work report; the epoch worked before the move stays closable and claimable.
    function test_retiredPool_refusesNewWorkAndPaysWorkDone() public {
        uint64 epoch = rewards.currentEpoch();
        _work(0, nodeA);
        bytes32 open = _challengeOn(rewards, 1, nodeA); // issued before the move, answered after

        FirnRewards pool2 =
            new FirnRewards(owner, registry, verifierSet, EPOCH, ANSWER_WINDOW, LIVENESS_TARGET, EPOCH_BUDGET_BPS, VERIFIER_SHARE_BPS);
        registry.setRewardPool(address(pool2));

        vm.prank(verifierList[2]);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.PoolRetired.selector, address(pool2)));
        rewards.issueChallenge(nodeA.enclaveId);
        bytes memory sig;
        {
            IFirnRewards.Challenge memory c = rewards.getChallenge(open);
            sig = _sig(
                nodeA.enclaveKey,
                rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(open, c.nonce, c.enclaveId, c.epoch))
            );
        }
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.PoolRetired.selector, address(pool2)));
        rewards.answerChallenge(open, sig);
        address[] memory voters = new address[](1);
        voters[0] = verifierList[0];
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.PoolRetired.selector, address(pool2)));
        rewards.recordVerifierWork(voters);

        // The new pool takes the work.
        _answerOn(pool2, _challengeOn(pool2, 2, nodeA), nodeA);

        vm.warp(rewards.genesis() + (epoch + 1) * EPOCH + 1);
        uint256 budget = uint256(10 ether) * EPOCH_BUDGET_BPS / 10_000;
        uint256 nodeBudget = budget - budget * VERIFIER_SHARE_BPS / 10_000;
        rewards.claimNodeReward(epoch, nodeA.enclaveId);
        rewards.claimVerifierReward(epoch, verifierList[0]);
        vm.assertEq(rewards.withdrawable(nodeA.operator), nodeBudget, "the work done before the move is paid");
        IFirnRewards.Epoch memory ep = rewards.getEpoch(epoch);
        // By work, capped at its share of the active verifier stake (decision 1820).
        uint256 byWork = ep.verifierBudget * rewards.verifierPoints(epoch, verifierList[0]) / ep.verifierPoints;
        uint256 byStake = ep.verifierBudget * verifierSet.activeStake(verifierList[0]) / verifierSet.totalActiveStake();
        vm.assertEq(rewards.withdrawable(verifierList[0]), byWork < byStake ? byWork : byStake, "its verifier too");
        vm.assertEq(ep.verifierBudget, budget * VERIFIER_SHARE_BPS / 10_000, "the verifier budget in full");
        uint256 before = nodeA.operator.balance;
        vm.prank(nodeA.operator);
        rewards.withdraw();
        vm.assertEq(nodeA.operator.balance - before, nodeBudget, "and withdrawn");

        // Pointed back at the old pool, it takes work again.
        registry.setRewardPool(address(rewards));
        _work(3, nodeA);
    }

    // ------------------------------------------------------------------ 1708 revoked nodes

    function test_dropRevokedPoints_dropsTheEpochsPointsAndTheirVerifierPoints() public {
        uint64 epoch = rewards.currentEpoch();
        TestNode memory nodeB = _activeNode(2, SIM, MEASUREMENT_B);
        _work(0, nodeA);
        _work(1, nodeA);
        _work(0, nodeB);
        uint256 v1Points = rewards.verifierPoints(epoch, verifierList[1]);
        vm.assertTrue(v1Points != 0, "verifier 1 earned");

        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NodeNotRevoked.selector, nodeA.enclaveId, uint8(0)));
        rewards.dropRevokedPoints(nodeA.enclaveId);

        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.NodePointsDropped(epoch, nodeA.enclaveId, 2 * MIN_NODE_STAKE, 3);
        vm.prank(stranger);
        rewards.dropRevokedPoints(nodeA.enclaveId);

        vm.assertEq(rewards.nodePoints(epoch, nodeA.enclaveId), 0, "A's points dropped");
        // Decision 1726: A's points stay void in the total, so B's share does not grow.
        vm.assertEq(rewards.getEpoch(epoch).nodePoints, 3 * MIN_NODE_STAKE, "A's points stay in the total");
        uint256 verifierTotal = rewards.getEpoch(epoch).verifierPoints;
        (uint256 nodeVoid, uint256 verifierVoid) = rewards.voidPoints(epoch);
        vm.assertEq(nodeVoid, 2 * MIN_NODE_STAKE, "A's points are void");
        vm.assertEq(verifierVoid, 2 * MIN_VERIFIER_STAKE, "the two points for challenging A are void");
        vm.assertEq(
            rewards.verifierPoints(epoch, verifierList[1]),
            v1Points - MIN_VERIFIER_STAKE,
            "the point for challenging A went too (its approvals stay)"
        );
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NothingToDrop.selector, epoch, nodeA.enclaveId));
        rewards.dropRevokedPoints(nodeA.enclaveId);

        vm.warp(rewards.genesis() + (epoch + 1) * EPOCH + 1);
        vm.assertEq(rewards.pendingNodeReward(epoch, nodeA.enclaveId), 0, "A is paid nothing for the epoch");
        uint256 budget = uint256(10 ether) * EPOCH_BUDGET_BPS / 10_000;
        uint256 verifierBudget = budget * VERIFIER_SHARE_BPS / 10_000;
        uint256 nodeBudget = budget - verifierBudget;
        vm.assertEq(rewards.pendingNodeReward(epoch, nodeB.enclaveId), nodeBudget / 3, "B keeps its own third");
        rewards.closeEpoch(epoch);
        vm.assertEq(
            rewards.totalAllocated(),
            nodeBudget / 3 + verifierBudget * (verifierTotal - verifierVoid) / verifierTotal,
            "the void points' budget stays in the pool"
        );
    }

    /// @notice Decision 1726: a holder that replaced a smaller co-tenant and is then revoked and
    /// dropped gives the share back to that co-tenant, credited for its earlier answer; the drop
    /// works after the revoked node exited, and no other platform gains.
    function test_dropRevokedPoints_givesTheShareToTheEligibleCoTenantEvenAfterAnExit() public {
        uint64 epoch = rewards.currentEpoch();
        TestNode memory big = _node(8);
        big.platformIdHash = nodeA.platformIdHash;
        vm.prank(big.operator);
        registry.register{value: 2 * MIN_NODE_STAKE}(_params(big, SIM, MEASUREMENT_B));
        _approveAll(big.enclaveId, big.evidenceDigest);
        _work(0, nodeA);
        _work(1, big);
        vm.assertEq(rewards.nodePoints(epoch, nodeA.enclaveId), 0, "the bigger co-tenant replaced A");

        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT_B);
        vm.prank(big.operator);
        registry.requestExit(big.enclaveId);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.PlatformShareReplaced(epoch, nodeA.platformIdHash, big.enclaveId, nodeA.enclaveId);
        vm.prank(stranger);
        rewards.dropRevokedPoints(big.enclaveId);
        vm.assertEq(rewards.nodePoints(epoch, big.enclaveId), 0, "the exited revoked node is dropped");
        vm.assertEq(rewards.nodePoints(epoch, nodeA.enclaveId), MIN_NODE_STAKE, "A's earlier answer counts");
        (uint256 nodeVoid,) = rewards.voidPoints(epoch);
        vm.assertEq(nodeVoid, MIN_NODE_STAKE, "what A does not take stays void");
        vm.assertEq(rewards.getEpoch(epoch).nodePoints, 2 * MIN_NODE_STAKE, "the platform's weight is unchanged");
    }

    /// @notice Points of an epoch that ended before the revocation are kept: it ran under an
    /// allowed measurement.
    function test_dropRevokedPoints_keepsEpochsThatEndedBefore() public {
        uint64 epoch = rewards.currentEpoch();
        _work(0, nodeA);
        vm.warp(rewards.genesis() + (epoch + 1) * EPOCH + 1);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NothingToDrop.selector, epoch + 1, nodeA.enclaveId));
        rewards.dropRevokedPoints(nodeA.enclaveId);
        vm.assertEq(rewards.nodePoints(epoch, nodeA.enclaveId), MIN_NODE_STAKE, "the ended epoch keeps its points");
    }

    /// @notice An eligible co-tenant with less stake takes the platform's share from a holder whose
    /// TEE type governance withdrew after it answered.
    function test_platformShare_goesFromAnIneligibleHolderToAnEligibleCoTenant() public {
        uint64 epoch = rewards.currentEpoch();
        TestNode memory big = _node(7);
        vm.prank(big.operator);
        registry.register{value: 3 * MIN_NODE_STAKE}(_params(big, SGX, MEASUREMENT));
        _approveAll(big.enclaveId, big.evidenceDigest);
        TestNode memory small = _node(8);
        small.platformIdHash = big.platformIdHash;
        vm.prank(small.operator);
        registry.register{value: MIN_NODE_STAKE}(_params(small, SIM, MEASUREMENT_B));
        _approveAll(small.enclaveId, small.evidenceDigest);

        _work(0, big);
        registry.setAllowedTeeTypes(ALL_TEE_TYPES & ~(uint8(1) << SGX));
        bytes32 id = _challengeOn(rewards, 1, small);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.PlatformShareReplaced(epoch, big.platformIdHash, big.enclaveId, small.enclaveId);
        _answerOn(rewards, id, small);
        vm.assertEq(rewards.nodePoints(epoch, big.enclaveId), 0, "the withdrawn TEE type lost the share");
        vm.assertEq(rewards.nodePoints(epoch, small.enclaveId), MIN_NODE_STAKE, "the eligible co-tenant holds it");
        // A governance restriction: the holder's points stay void in the total (decision 1777).
        (uint256 nodeVoid,) = rewards.voidPoints(epoch);
        vm.assertEq(nodeVoid, 3 * MIN_NODE_STAKE, "the restricted holder's points stay void");
        vm.assertEq(rewards.getEpoch(epoch).nodePoints, 4 * MIN_NODE_STAKE, "no other platform gains");
    }
}
