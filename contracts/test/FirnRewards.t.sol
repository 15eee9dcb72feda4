// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {FirnRewards} from "../src/FirnRewards.sol";
import {IFirnRegistry} from "../src/interfaces/IFirnRegistry.sol";
import {IFirnRewards} from "../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @dev forge's `cool` cheatcode (not in utils/Vm.sol): an account and its storage cold again.
interface VmCool {
    function cool(address target) external;
    function fee(uint256 newBasefee) external;
}

contract FirnRewardsTest is FirnFixture {
    /// @notice For the record: the dearest challenge transaction measured.
    event FirstColdChallengeGas(uint256 gas);

    TestNode internal nodeA;
    TestNode internal nodeB;
    TestNode internal nodeD; // twice the stake
    address internal funder = address(0xF00D);

    function setUp() public override {
        super.setUp();
        nodeA = _activeNode(1, SIM, MEASUREMENT);
        nodeB = _activeNode(2, SIM, MEASUREMENT);
        nodeD = _node(4);
        vm.prank(nodeD.operator);
        registry.register{value: 2 * MIN_NODE_STAKE}(_params(nodeD, SIM, MEASUREMENT));
        _approveAll(nodeD.enclaveId, nodeD.evidenceDigest);
        vm.deal(funder, 100 ether);
        vm.prank(funder);
        rewards.fund{value: 10 ether}();
    }

    function _challenge(uint256 v, TestNode memory t) internal returns (bytes32 id) {
        vm.prank(verifierList[v]);
        id = rewards.issueChallenge(t.enclaveId);
    }

    function _answerSig(bytes32 id, uint256 key) internal view returns (bytes memory) {
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        bytes32 digest = rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch));
        return _sig(key, digest);
    }

    function _answer(bytes32 id, TestNode memory t) internal {
        bytes memory sig = _answerSig(id, t.enclaveKey);
        vm.prank(stranger); // any relayer: the enclave's signature is the authority
        rewards.answerChallenge(id, sig);
    }

    /// @dev Nodes A (1 ether) and D (2 ether) answer, node B stays silent; verifier 0 issues the
    /// answered challenges, verifier 3 does nothing. Only the live nodes and the working verifiers
    /// earn, pro rata to stake and to work, and the sum stays within the epoch's budget.
    function test_rewards_onlyLiveNodesEarn() public {
        _answer(_challenge(0, nodeA), nodeA);
        _answer(_challenge(0, nodeD), nodeD);
        _challenge(1, nodeB); // B never answers

        vm.assertEq(rewards.nodePoints(0, nodeA.enclaveId), MIN_NODE_STAKE, "A points = stake");
        vm.assertEq(rewards.nodePoints(0, nodeD.enclaveId), 2 * MIN_NODE_STAKE, "D points = stake");
        vm.assertEq(rewards.nodePoints(0, nodeB.enclaveId), 0, "B silent");
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.EpochNotEnded.selector, uint64(0), uint64(0)));
        rewards.claimNodeReward(0, nodeA.enclaveId);

        vm.warp(block.timestamp + EPOCH);
        uint256 received = rewards.totalReceived();
        uint256 budget = received * EPOCH_BUDGET_BPS / 10_000;
        uint256 verifierBudget = budget * VERIFIER_SHARE_BPS / 10_000;
        uint256 nodeBudget = budget - verifierBudget;
        vm.assertEq(rewards.pendingNodeReward(0, nodeA.enclaveId), nodeBudget / 3, "pending view");

        vm.expectEmit(address(rewards));
        emit IFirnRewards.EpochClosed(
            0, nodeBudget, verifierBudget, 3 * MIN_NODE_STAKE, rewards.getEpoch(0).verifierPoints
        );
        vm.expectEmit(address(rewards));
        emit IFirnRewards.NodeRewardClaimed(0, nodeA.enclaveId, nodeA.operator, nodeBudget / 3);
        rewards.claimNodeReward(0, nodeA.enclaveId);
        rewards.claimNodeReward(0, nodeD.enclaveId);
        vm.assertEq(rewards.withdrawable(nodeA.operator), nodeBudget / 3, "A: 1/3");
        vm.assertEq(rewards.withdrawable(nodeD.operator), nodeBudget * 2 / 3, "D: 2/3");
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NothingToClaim.selector, uint64(0), nodeB.enclaveId));
        rewards.claimNodeReward(0, nodeB.enclaveId);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NothingToClaim.selector, uint64(0), nodeA.enclaveId));
        rewards.claimNodeReward(0, nodeA.enclaveId);

        // Verifier 0 issued two answered challenges; verifiers 0..2 voted on the registrations.
        uint256 v0 = rewards.verifierPoints(0, verifierList[0]);
        // Each unit of work earns the verifier's active stake (decision 1575).
        vm.assertEq(v0, (2 + 3) * MIN_VERIFIER_STAKE, "2 answered challenges + 3 registration votes, x stake");
        // Its share of the work (5 of 11 units) is above its share of the active stake (1 of 4
        // equal verifiers): it is paid the stake share, the rest returns to the pool (decision 1820).
        uint256 byWork = verifierBudget * v0 / rewards.getEpoch(0).verifierPoints;
        uint256 byStake = verifierBudget / 4;
        vm.assertLe(byStake, byWork, "the cap binds");
        vm.assertEq(rewards.pendingVerifierReward(0, verifierList[0]), byStake, "pending view, capped");
        uint256 allocated = rewards.totalAllocated();
        vm.expectEmit(address(rewards));
        emit IFirnRewards.VerifierRewardWithheld(0, verifierList[0], byWork - byStake);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.VerifierRewardClaimed(0, verifierList[0], byStake);
        rewards.claimVerifierReward(0, verifierList[0]);
        vm.assertEq(rewards.withdrawable(verifierList[0]), byStake, "verifier share by work, capped at its stake share");
        vm.assertEq(rewards.totalAllocated(), allocated - (byWork - byStake), "the withheld part is unallocated again");

        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnRewards.NothingToClaim.selector, uint64(0), bytes32(uint256(uint160(verifierList[3])))
            )
        );
        rewards.claimVerifierReward(0, verifierList[3]);

        uint256 before = nodeA.operator.balance;
        vm.expectEmit(address(rewards));
        emit IFirnRewards.Withdrawn(nodeA.operator, nodeBudget / 3);
        vm.prank(nodeA.operator);
        rewards.withdraw();
        vm.assertEq(nodeA.operator.balance, before + nodeBudget / 3, "pulled");
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NothingToWithdraw.selector, nodeA.operator));
        vm.prank(nodeA.operator);
        rewards.withdraw();
        vm.assertLe(rewards.totalAllocated(), rewards.totalReceived(), "allocated <= received");
        vm.assertLe(rewards.totalWithdrawn(), rewards.totalAllocated(), "withdrawn <= allocated");
    }

    function test_rewards_staleLivenessAnswerRejected() public {
        // Node A answered once this epoch: every verifier may challenge it (decision 1576).
        _answer(_challenge(2, nodeA), nodeA);
        // Past its deadline.
        bytes32 late = _challenge(0, nodeA);
        bytes memory lateSig = _answerSig(late, nodeA.enclaveKey);
        uint64 deadline = rewards.getChallenge(late).deadline;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.ChallengeExpired.selector, late, deadline, deadline + 1));
        rewards.answerChallenge(late, lateSig);

        // A challenge whose window would run into epoch 1 is not issued (decision 1590); the last
        // one that is has its deadline in epoch 0, so an answer in epoch 1 is past its deadline.
        uint64 epochEnd = rewards.genesis() + EPOCH;
        vm.warp(epochEnd - 1);
        vm.prank(verifierList[1]);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRewards.ChallengeTooLate.selector, uint64(0), epochEnd - 1 + ANSWER_WINDOW, epochEnd)
        );
        rewards.issueChallenge(nodeA.enclaveId);
        vm.warp(epochEnd - ANSWER_WINDOW - 1);
        bytes32 edge = _challenge(1, nodeA);
        bytes memory edgeSig = _answerSig(edge, nodeA.enclaveKey);
        vm.warp(epochEnd);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.ChallengeExpired.selector, edge, epochEnd - 1, epochEnd));
        rewards.answerChallenge(edge, edgeSig);

        // A host-made answer: signed by the operator's (or any non-enclave) key.
        bytes32 id = _challenge(0, nodeA);
        uint256 hostKey = 0xB0571;
        bytes memory hostSig = _answerSig(id, hostKey);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRewards.WrongSigner.selector, nodeA.enclaveId, nodeA.enclaveAddress, vm.addr(hostKey))
        );
        rewards.answerChallenge(id, hostSig);

        // An enclave signature for another challenge (an old nonce) does not fit this one.
        bytes32 other = _challenge(0, nodeB);
        bytes memory oldAnswer = _answerSig(other, nodeA.enclaveKey);
        vm.expectRevert(); // recovers to an unrelated address: WrongSigner with that address
        rewards.answerChallenge(id, oldAnswer);

        // Malformed signature.
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.InvalidSignature.selector, uint8(2)));
        rewards.answerChallenge(id, hex"1234");

        // The real answer counts once; a replay is refused.
        bytes memory good = _answerSig(id, nodeA.enclaveKey);
        rewards.answerChallenge(id, good);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.AlreadyAnswered.selector, id));
        rewards.answerChallenge(id, good);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.UnknownChallenge.selector, bytes32(uint256(5))));
        rewards.answerChallenge(bytes32(uint256(5)), hex"");
        vm.assertEq(rewards.nodeAnswers(1, nodeA.enclaveId), 1, "one answer counted");
    }

    /// @dev After a key rotation the old enclave key cannot answer.
    function test_rewards_oldKeyAfterRotationRejected() public {
        address newAddr = vm.addr(0xabc);
        vm.prank(nodeA.operator);
        registry.rotateKeys(nodeA.enclaveId, newAddr, keccak256("kem2"), keccak256("ev2"));
        _approveAll(nodeA.enclaveId, keccak256("ev2"));
        bytes32 id = _challenge(3, nodeA);
        bytes memory oldSig = _answerSig(id, nodeA.enclaveKey);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRewards.WrongSigner.selector, nodeA.enclaveId, newAddr, nodeA.enclaveAddress)
        );
        rewards.answerChallenge(id, oldSig);
        rewards.answerChallenge(id, _answerSig(id, 0xabc));
    }

    /// @dev Two Enclave IDs (two apps) on one physical platform earn one capacity share.
    function test_rewards_onePlatformOneShare() public {
        TestNode memory twin = _node(5);
        twin.platformIdHash = nodeA.platformIdHash;
        vm.prank(twin.operator);
        registry.register{value: MIN_NODE_STAKE}(_params(twin, SIM, MEASUREMENT_B));
        _approveAll(twin.enclaveId, twin.evidenceDigest);

        // Equal stakes: the share goes to the first of the two in the epoch's fixed order (1622),
        // so `holder` answers first and `other` second, whichever enclave each is.
        bool aFirst = keccak256(abi.encode(uint64(0), nodeA.enclaveId)) < keccak256(abi.encode(uint64(0), twin.enclaveId));
        TestNode memory holder = aFirst ? nodeA : twin;
        TestNode memory other = aFirst ? twin : nodeA;
        _answer(_challenge(0, holder), holder);
        bytes32 id = _challenge(0, other);
        // The other's answer proves it live (it is not on probation, nothing is missed) but earns
        // no points, and its verifier earns none for it.
        uint256 v0 = rewards.verifierPoints(0, verifierList[0]);
        _answer(id, other);
        vm.assertTrue(rewards.getChallenge(id).answered, "other's answer recorded");
        vm.assertEq(rewards.nodePoints(0, other.enclaveId), 0, "other earns no share");
        vm.assertEq(rewards.verifierPoints(0, verifierList[0]), v0, "no verifier point for it");
        vm.assertFalse(rewards.isUnresponsive(other.enclaveId), "other live");
        // The counted enclave may keep answering (more liveness samples) in that epoch.
        _answer(_challenge(1, holder), holder);
        vm.assertEq(rewards.nodeAnswers(0, holder.enclaveId), 2, "two answers");
    }

    /// @dev Decision 1670: when a co-tenant with more stake replaces the platform's holder, the
    /// verifier points the holder's answers earned leave the epoch with its node points
    /// (VerifierWorkRevoked for each), the replacing answer's verifier keeps its point, and the
    /// epoch's verifier total is the sum of what remains.
    function test_rewards_replacedHolderLosesItsVerifiersPoints() public {
        TestNode memory big = _node(5);
        big.platformIdHash = nodeA.platformIdHash;
        vm.prank(big.operator);
        registry.register{value: 2 * MIN_NODE_STAKE}(_params(big, SIM, MEASUREMENT_B));
        _approveAll(big.enclaveId, big.evidenceDigest);
        vm.warp(rewards.genesis() + EPOCH + 1);
        // nodeA holds the share for two answers (verifiers 0 and 1), then `big` answers (verifier 2).
        _answer(_challenge(0, nodeA), nodeA);
        _answer(_challenge(1, nodeA), nodeA);
        uint256 p0 = rewards.verifierPoints(1, verifierList[0]);
        uint256 p1 = rewards.verifierPoints(1, verifierList[1]);
        vm.assertTrue(p0 > 0 && p1 > 0, "premise: the holder's verifiers earned points");
        bytes32 id = _challenge(2, big);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.VerifierWorkRevoked(verifierList[0], 1, nodeA.enclaveId, 0);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.VerifierWorkRevoked(verifierList[1], 1, nodeA.enclaveId, 0);
        _answer(id, big);
        vm.assertEq(rewards.nodePoints(1, nodeA.enclaveId), 0, "the replaced holder's node points left");
        vm.assertEq(rewards.verifierPoints(1, verifierList[0]), 0, "its first verifier's point left");
        vm.assertEq(rewards.verifierPoints(1, verifierList[1]), 0, "its second verifier's point left");
        uint256 p2 = rewards.verifierPoints(1, verifierList[2]);
        vm.assertTrue(p2 > 0, "the replacing answer's verifier keeps its point");
        vm.assertEq(rewards.getEpoch(1).verifierPoints, p2, "the epoch's verifier total is what remains");
        // A later answer of the replaced enclave earns nothing, and nothing is taken twice.
        _answer(_challenge(3, nodeA), nodeA);
        vm.assertEq(rewards.verifierPoints(1, verifierList[3]), 0, "no point for a shareless answer");
        vm.assertEq(rewards.getEpoch(1).verifierPoints, p2, "the total is unchanged");
    }

    /// @dev Decision 1695: no more challenges are accepted in an epoch than the node owes answers
    /// (answered plus open reach the target); a target lowered during the epoch leaves challenges
    /// beyond it open, answerable without points, and none of them makes the epoch missed.
    function test_rewards_livenessTargetCapsPoints() public {
        // One answer ends probation; two more are accepted while open, the fourth is refused.
        _answer(_challenge(0, nodeA), nodeA);
        bytes32 one = _challenge(1, nodeA);
        bytes32 two = _challenge(2, nodeA);
        vm.assertTrue(rewards.isUnresponsive(nodeA.enclaveId), "the target is covered: daemons skip it");
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRewards.LivenessTargetReached.selector, nodeA.enclaveId, uint64(0), uint32(3))
        );
        _challenge(3, nodeA);
        // A target lowered during the epoch applies from the next one (decision 1706).
        rewards.setParameters(ANSWER_WINDOW, 2, EPOCH_BUDGET_BPS, VERIFIER_SHARE_BPS);
        _answer(one, nodeA);
        _answer(two, nodeA);
        vm.assertEq(rewards.nodeAnswers(0, nodeA.enclaveId), 3, "three answers");
        vm.assertEq(rewards.nodePoints(0, nodeA.enclaveId), 3 * MIN_NODE_STAKE, "the epoch keeps the target it began with");
        vm.assertEq(rewards.parametersAt(1).livenessTarget, 2, "the lowered target applies from epoch 1");
        vm.warp(block.timestamp + EPOCH);
        vm.assertEq(rewards.missedEpochs(nodeA.enclaveId), 0, "nothing missed");
    }

    /// @dev Decision 1593: an epoch's budget comes only from what the pool had received by the
    /// epoch's end, whenever it is closed and in whatever order. 10 ether before epoch 1, 30 more in
    /// epoch 1, closed at epoch 3 in the order 1, 0, 2.
    function test_closeEpoch_budgetOnlyFromMoneyReceivedByItsEnd() public {
        uint64 g0 = rewards.genesis();
        for (uint64 e = 0; e < 3; ++e) {
            vm.warp(g0 + e * EPOCH + 1);
            _answer(_challenge(0, nodeA), nodeA);
            if (e == 1) {
                vm.prank(funder);
                rewards.fund{value: 30 ether}();
            }
        }
        vm.warp(g0 + 3 * EPOCH + 1);
        // Whatever the registry sweep adds now counts as received in epoch 3: it funds none of 0..2.
        uint256 byEnd0 = 10 ether;
        uint256 byEnd1 = 40 ether;
        vm.assertTrue(rewards.pendingNodeReward(0, nodeA.enclaveId) > 0, "epoch 0 pays");
        // The first point of epochs 1 and 2 closed the epoch before (decision 1821): in order, so the
        // closes below change nothing and no later epoch's budget comes before an earlier one's.
        rewards.closeEpoch(1);
        rewards.closeEpoch(0);
        rewards.closeEpoch(2);
        IFirnRewards.Epoch memory ep0 = rewards.getEpoch(0);
        uint256 b0 = ep0.nodeBudget + ep0.verifierBudget;
        // Epoch 0 ended with 10 ether received: the 30 ether funded in epoch 1 never fund it.
        vm.assertEq(b0, byEnd0 * EPOCH_BUDGET_BPS / 10_000, "epoch 0 takes none of the money received after it");
        IFirnRewards.Epoch memory ep1 = rewards.getEpoch(1);
        uint256 b1 = ep1.nodeBudget + ep1.verifierBudget;
        vm.assertEq(b1, (byEnd1 - b0) * EPOCH_BUDGET_BPS / 10_000, "epoch 1: 40 ether by its end, less epoch 0's");
        IFirnRewards.Epoch memory ep2 = rewards.getEpoch(2);
        uint256 left = byEnd1 - b0 - b1;
        vm.assertEq(ep2.nodeBudget + ep2.verifierBudget, left * EPOCH_BUDGET_BPS / 10_000, "epoch 2: what is left of 40");
        vm.assertLe(rewards.totalAllocated(), rewards.totalReceived(), "allocated <= received");
    }

    /// @dev Decision 1576: a node that counted livenessTarget answers in an epoch owes no verifier
    /// another one, so a further challenge (which it may let expire at the verifier's cost) is
    /// refused, and `isUnresponsive` tells the daemons so before they pay for it.
    function test_issueChallenge_refusedOnceTheLivenessTargetIsReached() public {
        for (uint256 v = 0; v < LIVENESS_TARGET; ++v) {
            vm.assertFalse(rewards.isUnresponsive(nodeA.enclaveId), "challengeable below the target");
            _answer(_challenge(v, nodeA), nodeA);
        }
        vm.assertTrue(rewards.isUnresponsive(nodeA.enclaveId), "the daemons skip it");
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnRewards.LivenessTargetReached.selector, nodeA.enclaveId, uint64(0), uint32(LIVENESS_TARGET)
            )
        );
        _challenge(LIVENESS_TARGET, nodeA);
        // Another node is unaffected; the next epoch the node is challengeable again.
        _challenge(LIVENESS_TARGET, nodeB);
        vm.warp(rewards.genesis() + EPOCH + 1);
        vm.assertFalse(rewards.isUnresponsive(nodeA.enclaveId), "challengeable in the next epoch");
        _answer(_challenge(LIVENESS_TARGET, nodeA), nodeA);
        vm.assertEq(rewards.nodeAnswers(1, nodeA.enclaveId), 1, "answered in the next epoch");
    }

    function test_issueChallenge_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NotVerifier.selector, stranger));
        vm.prank(stranger);
        rewards.issueChallenge(nodeA.enclaveId);

        TestNode memory pending = _node(9);
        _register(pending, SIM, MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NodeNotEligible.selector, pending.enclaveId, uint8(1)));
        _challenge(0, pending);

        bytes32 id = _challenge(0, nodeA);
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        vm.assertEq(c.verifier, verifierList[0], "issuer");
        vm.assertEq(uint256(c.deadline), block.timestamp + ANSWER_WINDOW, "deadline");
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRewards.AlreadyChallenged.selector, uint64(0), verifierList[0], nodeA.enclaveId)
        );
        _challenge(0, nodeA);

        // Revoked measurement: no new challenges, and open ones cannot be answered.
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NodeNotEligible.selector, nodeB.enclaveId, uint8(3)));
        _challenge(0, nodeB);
        bytes memory sig = _answerSig(id, nodeA.enclaveKey);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NodeNotEligible.selector, nodeA.enclaveId, uint8(3)));
        rewards.answerChallenge(id, sig);
    }

    function test_issueChallenge_emitsAndTypedHashMatchesEip712() public {
        bytes32 id = _challenge(0, nodeA);
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("firn"),
                keccak256("1"),
                block.chainid,
                address(rewards)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("LivenessAnswer(bytes32 challengeId,bytes32 nonce,bytes32 enclaveId,uint64 epoch)"),
                id,
                c.nonce,
                nodeA.enclaveId,
                uint64(0)
            )
        );
        vm.assertEq(
            rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, nodeA.enclaveId, 0)),
            keccak256(abi.encodePacked("\x19\x01", domain, structHash)),
            "EIP-712 digest"
        );
        vm.assertEq(rewards.DOMAIN_SEPARATOR(), domain, "domain");

        vm.expectEmit(address(rewards));
        emit IFirnRewards.ChallengeAnswered(id, nodeA.enclaveId, 0, MIN_NODE_STAKE, MIN_NODE_STAKE);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.VerifierWorkRecorded(verifierList[0], 0, 4 * MIN_VERIFIER_STAKE);
        _answer(id, nodeA);
        // A second verifier may challenge once the node answered (decision 1576).
        bytes32 id2 = _challenge(1, nodeA);
        vm.assertTrue(rewards.getChallenge(id2).nonce != c.nonce, "fresh nonce per challenge");
    }

    function test_closeEpoch_budgetsAndEmptySides() public {
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.EpochNotEnded.selector, uint64(0), uint64(0)));
        rewards.closeEpoch(0);
        // Epoch 1 has no live node: its node part stays in the pool.
        vm.warp(block.timestamp + EPOCH);
        _challenge(0, nodeA);
        vm.warp(block.timestamp + EPOCH);
        uint256 before = rewards.totalAllocated();
        rewards.closeEpoch(1);
        IFirnRewards.Epoch memory e = rewards.getEpoch(1);
        vm.assertTrue(e.closed, "closed");
        vm.assertEq(e.nodeBudget, 0, "no points, no node budget");
        rewards.closeEpoch(1); // idempotent
        vm.assertEq(rewards.totalAllocated(), before + e.verifierBudget, "allocated once");
    }

    function test_recordVerifierWork_onlyReporters() public {
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NotReporter.selector, stranger));
        vm.prank(stranger);
        rewards.recordVerifierWork(_one(stranger));
        vm.expectEmit(address(rewards));
        emit IFirnRewards.VerifierWorkRecorded(verifierList[3], 0, MIN_VERIFIER_STAKE);
        vm.prank(address(market));
        rewards.recordVerifierWork(_one(verifierList[3]));
    }

    /// @dev Work reported for an account that is not an active verifier earns nothing.
    function test_recordVerifierWork_nonVerifierWithheld() public {
        vm.expectEmit(address(rewards));
        emit IFirnRewards.VerifierWorkWithheld(stranger, 0);
        vm.prank(address(market));
        rewards.recordVerifierWork(_one(stranger));
        vm.assertEq(rewards.verifierPoints(0, stranger), 0, "no point for a non-verifier");
    }

    function _one(address a) internal pure returns (address[] memory l) {
        l = new address[](1);
        l[0] = a;
    }

    function test_setParametersAndReporters() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        rewards.setParameters(1, 1, 1, 0);
        vm.expectRevert(IFirnRewards.InvalidParameters.selector);
        rewards.setParameters(0, 1, 1, 0);
        vm.expectRevert(IFirnRewards.InvalidParameters.selector);
        rewards.setParameters(1, 0, 1, 0);
        vm.expectRevert(IFirnRewards.InvalidParameters.selector);
        rewards.setParameters(1, 1, 0, 0);
        vm.expectRevert(IFirnRewards.InvalidParameters.selector);
        rewards.setParameters(1, 1, 10_001, 0);
        vm.expectRevert(IFirnRewards.InvalidParameters.selector);
        rewards.setParameters(1, 1, 1, 5001);
        // An answer window as long as the epoch leaves no second to issue a challenge (decision 1590).
        vm.expectRevert(IFirnRewards.InvalidParameters.selector);
        rewards.setParameters(EPOCH, 1, 1, 0);
        vm.expectRevert(IFirnRewards.InvalidParameters.selector);
        new FirnRewards(owner, registry, verifierSet, 60, 60, 1, 1, 0);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.ParametersUpdated(60, 2, 100, 500, rewards.currentEpoch() + 1);
        rewards.setParameters(60, 2, 100, 500);
        // From the next epoch on (decision 1706).
        vm.assertEq(uint256(rewards.answerWindow()), ANSWER_WINDOW, "this epoch keeps its window");
        vm.warp(block.timestamp + EPOCH);
        vm.assertEq(uint256(rewards.answerWindow()), 60, "window");
        vm.assertEq(uint256(rewards.livenessTarget()), 2, "target");
        vm.assertEq(uint256(rewards.epochBudgetBps()), 100, "budget");
        vm.assertEq(uint256(rewards.verifierShareBps()), 500, "share");
        vm.expectEmit(address(rewards));
        emit IFirnRewards.ReporterSet(stranger, true);
        rewards.setReporter(stranger, true);
        vm.assertTrue(rewards.isReporter(stranger), "reporter");
        vm.expectRevert(IFirnRewards.InvalidParameters.selector);
        new FirnRewards(owner, registry, verifierSet, 0, 1, 1, 1, 0);
    }

    function test_fund_andPlainTransfersArePooled() public {
        vm.expectEmit(address(rewards));
        emit IFirnRewards.PoolFunded(funder, 1 ether);
        vm.prank(funder);
        rewards.fund{value: 1 ether}();
        vm.prank(funder);
        (bool ok,) = address(rewards).call{value: 2 ether}("");
        vm.assertTrue(ok, "plain transfer accepted");
        vm.assertEq(rewards.totalReceived(), 13 ether, "books");
        vm.assertEq(address(rewards.registry()), address(registry), "registry");
        vm.assertEq(address(rewards.verifierSet()), address(verifierSet), "verifier set");
        vm.assertEq(uint256(rewards.epochLength()), EPOCH, "epoch length");
    }

    /// @dev Random stakes, answers and funding over several epochs: what is credited never
    /// exceeds what was allocated, which never exceeds what the pool received.
    function testFuzz_rewardsWithinPool(uint8 pattern, uint96 extra, uint8 epochs) public {
        uint256 n = bound(epochs, 1, 4);
        for (uint256 e = 0; e < n; ++e) {
            if ((pattern >> e) & 1 == 1) _answer(_challenge(e % VERIFIERS, nodeA), nodeA);
            if ((pattern >> (e + 4)) & 1 == 1) _answer(_challenge(e % VERIFIERS, nodeB), nodeB);
            vm.prank(funder);
            rewards.fund{value: bound(extra, 0, 5 ether)}();
            vm.warp(block.timestamp + EPOCH);
        }
        uint256 credited;
        for (uint64 e = 0; e < n; ++e) {
            uint256 a = rewards.pendingNodeReward(e, nodeA.enclaveId);
            uint256 b = rewards.pendingNodeReward(e, nodeB.enclaveId);
            if (rewards.nodePoints(e, nodeA.enclaveId) != 0) {
                rewards.claimNodeReward(e, nodeA.enclaveId);
                credited += a;
            }
            if (rewards.nodePoints(e, nodeB.enclaveId) != 0) {
                rewards.claimNodeReward(e, nodeB.enclaveId);
                credited += b;
            }
        }
        vm.assertLe(credited, rewards.totalAllocated(), "credited <= allocated");
        vm.assertLe(rewards.totalAllocated(), rewards.totalReceived(), "allocated <= received");
        vm.assertEq(address(rewards).balance, rewards.totalReceived() - rewards.totalWithdrawn(), "balance");
    }

    // ------------------------------------------------------------------ unresponsive nodes (1576)

    /// @dev A node that answers every challenge it is owed is never cut off (decision 1695: at most
    /// livenessTarget are accepted per epoch, so it answers each).
    function test_liveness_answeringNodeStaysChallengeable() public {
        for (uint256 e = 0; e < 3; ++e) {
            _answer(_challenge(1, nodeA), nodeA);
            _answer(_challenge(0, nodeA), nodeA);
            _answer(_challenge(2, nodeA), nodeA);
            vm.warp(block.timestamp + EPOCH);
            vm.assertEq(rewards.missedEpochs(nodeA.enclaveId), 0, "answered all: no missed epoch");
            vm.assertFalse(rewards.isUnresponsive(nodeA.enclaveId), "still challenged");
        }
        _challenge(0, nodeA);
    }

    /// @dev Decision 1695: a challenge accepted before the node reached its target and left to expire
    /// makes the epoch missed, though the node answered another; an answer gives no missed epoch
    /// back, so MAX_MISSED_EPOCHS such epochs make it unresponsive until its operator pays.
    function test_liveness_expiredChallengeMissesTheEpochDespiteAnAnswer() public {
        for (uint8 e = 0; e < rewards.MAX_MISSED_EPOCHS(); ++e) {
            _answer(_challenge(1, nodeA), nodeA);
            _challenge(0, nodeA); // expires unanswered
            vm.warp(block.timestamp + EPOCH);
            vm.assertEq(rewards.missedEpochs(nodeA.enclaveId), e + 1, "each epoch with an expired challenge missed");
        }
        vm.assertTrue(rewards.isUnresponsive(nodeA.enclaveId), "unresponsive");
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRewards.NodeUnresponsive.selector, nodeA.enclaveId, rewards.MAX_MISSED_EPOCHS())
        );
        _challenge(1, nodeA);
    }

    /// @dev The attack: a silent node (never answered) takes one challenge per epoch (NodeOnProbation
    /// for a second) for MAX_MISSED_EPOCHS epochs;
    /// from then on every issueChallenge reverts NodeUnresponsive, whichever verifier sends it and
    /// however many epochs pass; the view says so before anyone pays.
    function test_liveness_silentNodeUnresponsiveAfterMaxMissedEpochs() public {
        _challenge(0, nodeB);
        vm.assertTrue(rewards.isUnresponsive(nodeB.enclaveId), "never answered: one challenge per epoch");
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NodeOnProbation.selector, nodeB.enclaveId, uint8(0)));
        _challenge(1, nodeB);
        uint8 bound = rewards.MAX_MISSED_EPOCHS();
        for (uint8 m = 1; m < bound; ++m) {
            vm.warp(block.timestamp + EPOCH);
            vm.assertEq(rewards.missedEpochs(nodeB.enclaveId), m, "missed epochs counted");
            vm.assertFalse(rewards.isUnresponsive(nodeB.enclaveId), "one challenge still accepted");
            _challenge(m % 4, nodeB);
            vm.assertTrue(rewards.isUnresponsive(nodeB.enclaveId), "probation: no second challenge");
            vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NodeOnProbation.selector, nodeB.enclaveId, m));
            _challenge((m + 1) % 4, nodeB);
        }
        vm.warp(block.timestamp + EPOCH);
        vm.assertEq(rewards.missedEpochs(nodeB.enclaveId), bound, "bound reached");
        vm.assertTrue(rewards.isUnresponsive(nodeB.enclaveId), "unresponsive");
        for (uint256 v = 0; v < verifierList.length; ++v) {
            vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NodeUnresponsive.selector, nodeB.enclaveId, bound));
            _challenge(v, nodeB);
        }
        vm.warp(block.timestamp + 10 * EPOCH);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NodeUnresponsive.selector, nodeB.enclaveId, bound));
        _challenge(0, nodeB);
        // Epochs in which nobody challenged a node are not missed ones: node A is unaffected.
        _answer(_challenge(0, nodeA), nodeA);
    }

    /// @dev A node on probation that answers its one challenge is cleared at once: every verifier
    /// may challenge it again in the same epoch.
    function test_liveness_probationEndsWithAnAnswer() public {
        _challenge(0, nodeB);
        vm.warp(block.timestamp + EPOCH);
        _answer(_challenge(1, nodeB), nodeB);
        vm.assertEq(rewards.missedEpochs(nodeB.enclaveId), 1, "an answer gives no missed epoch back (1695)");
        vm.assertFalse(rewards.isUnresponsive(nodeB.enclaveId), "challengeable");
        _answer(_challenge(2, nodeB), nodeB);
        _challenge(3, nodeB);
    }

    /// @dev Only the operator may resume, only an unresponsive node, only for the registration fee,
    /// which is credited to the owner's treasury, not the pool (decision 1646); then the node is
    /// challenged and can earn again.
    function test_liveness_resumeChallengesCostsTheFee() public {
        uint256 fee = 0.01 ether;
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, fee);
        vm.deal(nodeB.operator, 1 ether);
        vm.prank(nodeB.operator);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NodeNotUnresponsive.selector, nodeB.enclaveId, uint8(0)));
        rewards.resumeChallenges{value: fee}(nodeB.enclaveId);

        for (uint256 e = 0; e < rewards.MAX_MISSED_EPOCHS(); ++e) {
            _challenge(0, nodeB);
            vm.warp(block.timestamp + EPOCH);
        }
        vm.deal(stranger, 1 ether);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NotNodeOperator.selector, nodeB.enclaveId, stranger));
        rewards.resumeChallenges{value: fee}(nodeB.enclaveId);
        vm.prank(nodeB.operator);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.ResumeFeeTooLow.selector, fee - 1, fee));
        rewards.resumeChallenges{value: fee - 1}(nodeB.enclaveId);

        uint256 received = rewards.totalReceived();
        address treasury = rewards.owner();
        vm.expectEmit(address(rewards));
        emit IFirnRewards.ChallengesResumed(nodeB.enclaveId, nodeB.operator, fee);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.TreasuryCredited(treasury, fee);
        vm.prank(nodeB.operator);
        rewards.resumeChallenges{value: fee}(nodeB.enclaveId);
        vm.assertEq(rewards.totalReceived(), received, "none into the pool (decision 1646)");
        vm.assertEq(rewards.treasuryCredit(treasury), fee, "credited to the owner's treasury");
        vm.assertEq(rewards.totalTreasuryCredit(), fee, "the treasury total");
        vm.assertEq(rewards.missedEpochs(nodeB.enclaveId), 0, "cleared");
        _answer(_challenge(0, nodeB), nodeB);
        vm.assertEq(rewards.nodePoints(rewards.currentEpoch(), nodeB.enclaveId), MIN_NODE_STAKE, "earns again");
    }

    // ------------------------------------------------------------------ stake-weighted work (1575)

    /// @dev The attack: one stake split over two accounts doing twice the work earns what the same
    /// stake on one account earns doing the work once per account: points are work x stake.
    function test_verifierPoints_splittingStakeGainsNothing() public {
        address whole = address(0xA11);
        address half1 = address(0xA12);
        address half2 = address(0xA13);
        _joinVerifier(whole, 2 * MIN_VERIFIER_STAKE);
        _joinVerifier(half1, MIN_VERIFIER_STAKE);
        _joinVerifier(half2, MIN_VERIFIER_STAKE);
        vm.warp(block.timestamp + EPOCH);
        uint64 epoch = rewards.currentEpoch();
        uint256 w = verifierList.length - 3;
        _answer(_challenge(w, nodeA), nodeA);
        _answer(_challenge(w + 1, nodeA), nodeA);
        _answer(_challenge(w + 2, nodeA), nodeA);
        vm.assertEq(rewards.verifierPoints(epoch, whole), 2 * MIN_VERIFIER_STAKE, "whole: stake x 1");
        vm.assertEq(
            rewards.verifierPoints(epoch, half1) + rewards.verifierPoints(epoch, half2),
            rewards.verifierPoints(epoch, whole),
            "two halves, twice the work: the same points"
        );
        vm.warp(block.timestamp + EPOCH);
        uint256 split = rewards.pendingVerifierReward(epoch, half1) + rewards.pendingVerifierReward(epoch, half2);
        vm.assertEq(split, rewards.pendingVerifierReward(epoch, whole), "same reward");
        vm.assertTrue(split > 0, "something was paid");
    }

    // ------------------------------------------------------------------ resume fee (1591)

    /// @dev CHALLENGE_GAS bounds the dearest challenge transaction: the pool's first challenge ever
    /// (its counter and the node's liveness slot written from zero), storage and accounts cold,
    /// plus the intrinsic 21,000 and the calldata. The resume fee is priced on it. At a non-zero
    /// base fee, so the node's challenge-cost record (decision 1645) is written too (forge's
    /// isolation mode runs it at 0, where the record is not written).
    function test_challengeGas_boundsTheFirstColdChallenge() public {
        VmCool(address(vm)).fee(30 gwei);
        VmCool(address(vm)).cool(address(rewards));
        VmCool(address(vm)).cool(address(registry));
        VmCool(address(vm)).cool(address(verifierSet));
        bytes memory data = abi.encodeCall(IFirnRewards.issueChallenge, (nodeA.enclaveId));
        uint256 calldataGas;
        for (uint256 i = 0; i < data.length; ++i) calldataGas += data[i] == 0 ? 4 : 16;
        vm.prank(verifierList[0]);
        uint256 g = gasleft();
        rewards.issueChallenge(nodeA.enclaveId);
        uint256 used = g - gasleft() + 21_000 + calldataGas;
        emit FirstColdChallengeGas(used);
        vm.assertLe(used, rewards.CHALLENGE_GAS(), "the first cold challenge transaction fits CHALLENGE_GAS");
    }
}
