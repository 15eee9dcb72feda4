// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Reward economics against a dishonest minority of the verifier stake. Each test performs
/// an attack and asserts that it fails (decisions 1820, 1821).
contract RewardsMinorityTest is FirnScenario {
    // ------------------------------------------------------------------ helpers

    /// @dev Tops the four fixture verifiers up to `each` wei of stake (the honest majority).
    function _growHonest(uint256 each) internal {
        for (uint256 i = 0; i < 4; ++i) {
            vm.deal(verifierList[i], each + 1 ether);
            vm.prank(verifierList[i]);
            verifierSet.addStake{value: each - MIN_VERIFIER_STAKE}();
        }
    }

    /// @dev `v` challenges `t`; `t`'s honest daemon answers it at once. Returns false when refused.
    function _tryChallengeAndAnswer(address v, TestNode memory t) internal returns (bool) {
        vm.prank(v);
        try rewards.issueChallenge(t.enclaveId) returns (bytes32 id) {
            IFirnRewards.Challenge memory c = rewards.getChallenge(id);
            rewards.answerChallenge(
                id,
                _sig(t.enclaveKey, rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch)))
            );
            return true;
        } catch {
            return false;
        }
    }

    // ------------------------------------------------------------------ the epoch-start race

    /// @dev Decisions 1594/1695 cap accepted challenges per node and epoch at `livenessTarget`
    /// (deploy default 1), so work is a scarce slot that goes to whoever's issueChallenge lands first
    /// in the epoch. A minority verifier (2.4 % of the stake) orders its challenges first at each
    /// epoch start (priority fee) and takes every slot on every node; the honest daemons' challenges
    /// revert LivenessTargetReached. It earns no more than its stake share of the verifier budget
    /// (decision 1820); the rest stays in the pool.
    function test_minorityWinningEveryChallengeSlotEarnsOnlyItsStakeShare_target1() public {
        _raceCapture(1, 1);
    }

    /// @dev Same with livenessTarget 3 (the fixture's): a minority split over 3 accounts at the
    /// minimum stake (7 % of the stake) fills all three slots of every node at the epoch's start, and
    /// the split earns it no more than its stake share either.
    function test_sybilSplitMinorityWinningEveryChallengeSlotEarnsOnlyItsStakeShare_target3() public {
        _raceCapture(3, 3);
    }

    function _raceCapture(uint32 target, uint256 sybils) internal {
        TestNode[3] memory nodes = [
            _activeNode(11, SIM, MEASUREMENT),
            _activeNode(12, SIM, MEASUREMENT),
            _activeNode(13, SIM, MEASUREMENT)
        ];
        _growHonest(5 ether); // honest: 4 x 5 ether
        address[] memory attacker = new address[](sybils);
        for (uint256 i = 0; i < sybils; ++i) {
            attacker[i] = address(uint160(0xA77A0 + i));
            _joinVerifier(attacker[i], MIN_VERIFIER_STAKE);
        }
        uint256 total = verifierSet.totalActiveStake();
        uint256 attackerStake = sybils * MIN_VERIFIER_STAKE;
        vm.assertTrue(attackerStake * 3 < total, "the attacker is a minority (< 1/3)");
        rewards.setParameters(ANSWER_WINDOW, target, EPOCH_BUDGET_BPS, VERIFIER_SHARE_BPS); // from next epoch
        _fundPool(10 ether);

        uint64 g0 = rewards.genesis();
        uint64 epoch = rewards.currentEpoch() + 1;
        vm.warp(g0 + uint256(epoch) * EPOCH + 1); // first block of the epoch
        uint256 refused;
        for (uint256 k = 0; k < 3; ++k) {
            // The attacker's transactions are ordered first in the block (priority fee).
            for (uint256 i = 0; i < sybils; ++i) {
                vm.assertTrue(_tryChallengeAndAnswer(attacker[i], nodes[k]), "attacker challenge accepted");
            }
            // Every honest daemon sends in the same block, as they do at an epoch's start.
            for (uint256 v = 0; v < 4; ++v) {
                if (!_tryChallengeAndAnswer(verifierList[v], nodes[k])) ++refused;
            }
        }
        vm.assertEq(refused, 12, "every honest challenge lost the race");
        vm.warp(g0 + uint256(epoch + 1) * EPOCH + 1);
        rewards.closeEpoch(epoch);
        uint256 budget = rewards.getEpoch(epoch).verifierBudget;
        uint256 unallocatedBefore = rewards.totalReceived() - rewards.totalAllocated();
        uint256 taken;
        uint256 shown;
        for (uint256 i = 0; i < sybils; ++i) {
            shown += rewards.pendingVerifierReward(epoch, attacker[i]);
            rewards.claimVerifierReward(epoch, attacker[i]);
            taken += rewards.withdrawable(attacker[i]);
        }
        uint256 stakeShare = budget * attackerStake / total;
        emit log_named_uint("refused honest challenges", refused);
        emit log_named_uint("verifier budget (wei)", budget);
        emit log_named_uint("attacker's stake share of it (wei)", stakeShare);
        emit log_named_uint("attacker took (wei)", taken);
        // A minority earns no more than its stake share of the verifier budget, however it splits it.
        vm.assertLe(taken, stakeShare, "a minority verifier took more than its stake share");
        vm.assertLe(stakeShare - sybils, taken, "it keeps its stake share (rounding aside)");
        vm.assertEq(shown, taken, "the pending view shows the capped claim");
        // What the cap withheld (all of the budget the attacker's points would have taken beyond its
        // share: only its accounts have points) is back in the unallocated pool, for later epochs.
        // Each claim's part rounds down by less than a wei.
        uint256 withheld = rewards.totalReceived() - rewards.totalAllocated() - unallocatedBefore;
        vm.assertLe(withheld + taken, budget, "nothing credited twice");
        vm.assertLe(budget - sybils, withheld + taken, "what the cap withheld is unallocated again");
        vm.assertLe(budget / 2, withheld, "most of the budget stays in the pool");
    }


    // ------------------------------------------------------------------ held: key-history fact dispute

    /// @dev A requester-aligned minority verifier wants an honest node slashed by a fact dispute
    /// (reason 1, signer not the enclave key at the proof's block) after the node rotated its keys
    /// and then exited: the judge reads the key history at the proof's block, so the dispute is
    /// provably wrong and only the disputer loses stake. Held.
    function test_factDisputeAfterRotationAndExitSlashesOnlyTheDisputer() public {
        TestNode memory t = _activeNode(21, SIM, MEASUREMENT);
        bytes32 jobId = _postOn(market, 1 ether, 2 days, 1 days);
        _claimOn(market, jobId, t);
        vm.roll(block.number + 5);
        IFirnJobMarket.ProofFacts memory facts = _proveOn(market, jobId, t, keccak256("out"));
        // The node rotates to a new key (approved) a few blocks later, then asks to exit.
        vm.roll(block.number + 5);
        uint256 fee = registry.registrationFee();
        address newAddr = vm.addr(0xBEEF);
        vm.prank(t.operator);
        registry.rotateKeys{value: fee}(t.enclaveId, newAddr, keccak256("kem2"), keccak256("ev2"));
        for (uint256 i = 0; i < APPROVE_QUORUM; ++i) {
            vm.prank(verifierList[i]);
            registry.approve(t.enclaveId, 2, keccak256("ev2"));
        }
        vm.prank(t.operator);
        registry.requestExit(t.enclaveId);
        uint256 nodeStake = registry.getNode(t.enclaveId).stake;
        uint256 vStake = verifierSet.getVerifier(verifierList[3]).stake;
        uint16 reason = market.DISPUTE_SIGNER_NOT_ENCLAVE_KEY();
        vm.prank(verifierList[3]);
        market.dispute(jobId, reason, facts);
        vm.assertEq(registry.getNode(t.enclaveId).stake, nodeStake, "the honest node keeps its stake");
        vm.assertEq(
            verifierSet.getVerifier(verifierList[3]).stake, vStake - FALSE_DISPUTE_SLASH, "the false disputer pays"
        );
        vm.warp(facts.challengeEndsAt);
        market.finalize(jobId, facts);
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Paid), "the node is paid");
    }

    // ------------------------------------------------------------------ minor: pending views after close

    /// @dev Once an epoch is closed, pendingNodeReward / pendingVerifierReward read the budgets its
    /// close fixed, not the pool's books now (which already hold its own allocation and would show
    /// about 1 - epochBudgetBps of the claim): off-chain readers (CLI, dashboards) show what a claim
    /// credits (decision 1821).
    function test_pendingRewardViewAfterCloseMatchesTheClaim() public {
        TestNode memory t = _activeNode(31, SIM, MEASUREMENT);
        _fundPool(10 ether);
        uint64 g0 = rewards.genesis();
        uint64 epoch = rewards.currentEpoch() + 1;
        vm.warp(g0 + uint256(epoch) * EPOCH + 1);
        _answer(0, t);
        vm.warp(g0 + uint256(epoch + 1) * EPOCH + 1);
        uint256 shownOpen = rewards.pendingNodeReward(epoch, t.enclaveId);
        uint256 shownVerifierOpen = rewards.pendingVerifierReward(epoch, verifierList[0]);
        rewards.closeEpoch(epoch);
        uint256 shown = rewards.pendingNodeReward(epoch, t.enclaveId);
        uint256 shownVerifier = rewards.pendingVerifierReward(epoch, verifierList[0]);
        vm.assertEq(shown, shownOpen, "closing changes nothing the view shows");
        vm.assertEq(shownVerifier, shownVerifierOpen, "closing changes nothing the verifier view shows");
        rewards.claimNodeReward(epoch, t.enclaveId);
        vm.assertEq(shown, rewards.withdrawable(t.operator), "the pending view equals what the claim credits");
        uint256 before = rewards.withdrawable(verifierList[0]);
        rewards.claimVerifierReward(epoch, verifierList[0]);
        vm.assertEq(
            shownVerifier, rewards.withdrawable(verifierList[0]) - before, "the verifier view equals its claim"
        );
    }


    // ------------------------------------------------------------------ close order

    /// @dev Anyone may close any ended epoch. An honest node earned alone in epoch E and has not
    /// claimed yet (its daemon was down a day); a node+verifier pair earned alone in E+1. At E+2 the
    /// pair closes E+1 first, hoping to take epochBudgetBps of everything received and leave E
    /// epochBudgetBps of what is left (half the honest node's reward with the fixture's 50 %). The
    /// pair's first point in E+1 already closed E (decision 1821), so E keeps the budget it has when
    /// closed in order.
    function test_closingALaterEpochFirstLeavesAnEarlierEpochsBudget() public {
        TestNode memory honest = _activeNode(41, SIM, MEASUREMENT);
        TestNode memory pair = _activeNode(42, SIM, MEASUREMENT);
        _fundPool(10 ether);
        uint64 g0 = rewards.genesis();
        uint64 e = rewards.currentEpoch() + 1;
        vm.warp(g0 + uint256(e) * EPOCH + 1);
        _answer(0, honest); // honest verifier, honest node
        // The fixture's registration votes earned verifier points before E: that epoch closed at
        // E's first point, in order, and its allocation is all E's budget is computed after.
        uint256 allocatedBeforeE = rewards.totalAllocated();
        vm.assertEq(rewards.openWorkedEpochs(), 1, "only E is open");
        vm.warp(g0 + uint256(e + 1) * EPOCH + 1);
        uint256 shownInOrder = rewards.pendingNodeReward(e, honest.enclaveId);
        _answer(3, pair); // the pair
        vm.assertTrue(rewards.getEpoch(e).closed, "the pair's first point closed E");
        vm.warp(g0 + uint256(e + 2) * EPOCH + 1);
        rewards.closeEpoch(e + 1); // the pair, first
        rewards.claimNodeReward(e, honest.enclaveId);
        uint256 inOrder = (10 ether - allocatedBeforeE) * uint256(EPOCH_BUDGET_BPS) / 10_000
            * (10_000 - uint256(VERIFIER_SHARE_BPS)) / 10_000;
        vm.assertEq(rewards.withdrawable(honest.operator), inOrder, "the honest epoch keeps its budget");
        vm.assertEq(shownInOrder, inOrder, "what the view showed before the pair acted");
        // E+1 was budgeted after E: from what E left.
        vm.assertEq(
            rewards.getEpoch(e + 1).nodeBudget,
            (10 ether - rewards.getEpoch(e).nodeBudget - rewards.getEpoch(e).verifierBudget - allocatedBeforeE)
                * uint256(EPOCH_BUDGET_BPS) / 10_000 * (10_000 - uint256(VERIFIER_SHARE_BPS)) / 10_000,
            "the later epoch takes its budget from what the earlier one left"
        );
    }

    event log_named_uint(string key, uint256 val);
}
