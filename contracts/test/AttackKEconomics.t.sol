// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../src/interfaces/IFirnJobMarket.sol";
import {IFirnRewards} from "../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @dev forge cheatcodes these tests use beyond utils/Vm.sol: set block.basefee, and mark an
/// account and its storage cold (as at the start of a transaction).
interface VmLiveness {
    function fee(uint256 newBasefee) external;
    function cool(address target) external;
    function skip(bool skipTest) external;
}

/// @dev Reads block.basefee in a call of its own: forge's isolation mode (`--gas-report`, `--isolate`)
/// runs each call as its own transaction with the base fee at 0, where a fee set by `fee` does not hold.
contract BaseFeeProbe {
    function baseFee() external returns (uint256) {
        emit Read(block.basefee);
        return block.basefee;
    }

    event Read(uint256 baseFee);
}

/// @notice Economic attacks by a dishonest requester, operator or verifier minority. Each test
/// performs the attack, prints balances in its assertions, and asserts what docs/decisions/0800
/// promises.
contract AttackKEconomicsTest is FirnFixture {
    address internal requester = address(0xCAFE);
    bytes32 internal constant WORKLOAD = keccak256("model");
    bytes32 internal constant INPUT = keccak256("inputs");
    TestNode internal nodeA;

    function setUp() public override {
        super.setUp();
        vm.deal(requester, 100 ether);
        nodeA = _activeNode(1, SIM, MEASUREMENT);
    }

    function _request(uint64 deadline, uint64 claimTimeout) internal pure returns (IFirnJobMarket.JobRequest memory r) {
        r.teeTypeMask = uint8(1) << SIM;
        r.allowedMeasurements = new bytes32[](0);
        r.enclaveIds = new bytes32[](0);
        r.workloadHash = WORKLOAD;
        r.inputCommitment = INPUT;
        r.deadline = deadline;
        r.claimTimeout = claimTimeout;
    }

    function _post(uint64 deadline, uint64 claimTimeout, uint256 escrow) internal returns (bytes32 jobId) {
        vm.prank(requester);
        jobId = _remember(market.postJob{value: escrow}(_request(deadline, claimTimeout)), _request(deadline, claimTimeout));
    }

    function _claim(bytes32 jobId, TestNode memory t) internal {
        vm.prank(t.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, t.enclaveId, _termsFor(jobId));
    }

    function _prove(bytes32 jobId, TestNode memory t) internal {
        IFirnJobMarket.WorkProof memory p = IFirnJobMarket.WorkProof({
            jobId: jobId,
            enclaveId: t.enclaveId,
            measurement: MEASUREMENT,
            workloadHash: WORKLOAD,
            inputCommitment: INPUT,
            outputCommitment: keccak256("out"),
            startedAt: uint64(block.timestamp),
            finishedAt: uint64(block.timestamp),
            workUnits: 1
        });
        bytes memory sig = _sig(t.enclaveKey, market.hashWorkProof(p));
        vm.prank(t.operator);
        _submitTo(market, p, sig);
        _rememberProof(jobId, p, t.enclaveAddress);
    }

    // ------------------------------------------------------------------ requester locks stake

    /// @dev The requester picks `claimTimeout` (up to 2^32 - 1 s, ~136 years) independently of the
    /// deadline. claimJob locks the claimant's stake until claimedAt + claimTimeout + window, even
    /// though no proof can be submitted after the deadline (and so no dispute can open after
    /// deadline + window). A node's policy only checks a minimum claim time, so an honest node
    /// claims a 1-hour job with a 136-year claim timeout, does the work, is paid, and its stake
    /// stays locked for 136 years. Promise: a requester cannot lock an operator's stake.
    function test_attack_requesterLocksClaimantStakeWithHugeClaimTimeout() public {
        uint256 opBefore = nodeA.operator.balance;
        bytes32 jobId = _post(uint64(block.timestamp + 1 hours), type(uint32).max, 0.01 ether);
        _claim(jobId, nodeA);
        _prove(jobId, nodeA);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        market.finalize(jobId, _factsFor(jobId));
        vm.prank(nodeA.operator);
        market.withdraw();
        // The operator leaves right after: every dispute of its only job is closed.
        vm.prank(nodeA.operator);
        registry.requestExit(nodeA.enclaveId);
        vm.warp(block.timestamp + UNBONDING + 1);
        vm.prank(nodeA.operator);
        (bool ok,) = address(registry).call(abi.encodeCall(registry.withdrawStake, (nodeA.enclaveId)));
        vm.assertTrue(ok, "stake withdrawable after unbonding; no dispute of its job can be open");
        // Paid 0.01 ether for the job and its 1 ether stake is back.
        vm.assertLe(opBefore + 0.01 ether + MIN_NODE_STAKE, nodeA.operator.balance, "operator whole");
    }

    /// @dev The same with a far deadline: the requester posts a one-minute job with a deadline and a
    /// claim timeout ten years out. The node's policy checks only minimums, so it claims, proves
    /// in a minute and is paid; the lock is claimedAt + 10 years + window, so its stake stays locked
    /// for ten years although its only challenge window closed a day after the proof.
    /// Fixed (decision 1570): postJob refuses such a job; the longest claim a far deadline allows
    /// (MAX_CLAIM_TIMEOUT) locks no longer than the unbonding an exit after the window waits anyway,
    /// plus the finalize grace (decision 1776): with the fixture's 7-day unbonding the exit waits
    /// at most FINALIZE_GRACE more, with the deployment's 14 days not at all.
    function test_attack_requesterLocksClaimantStakeWithFarDeadline() public {
        uint64 tenYears = 3650 days;
        uint64 deadline = uint64(block.timestamp + tenYears);
        uint64 max = market.MAX_CLAIM_TIMEOUT();
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.ClaimTimeoutTooLong.selector, tenYears, deadline, max)
        );
        vm.prank(requester);
        market.postJob{value: 0.01 ether}(_request(deadline, tenYears));
        // One second over the bound is refused too; the bound itself is the worst a requester gets.
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.ClaimTimeoutTooLong.selector, max + 1, deadline, max)
        );
        vm.prank(requester);
        market.postJob{value: 0.01 ether}(_request(deadline, max + 1));
        uint256 opBefore = nodeA.operator.balance;
        bytes32 jobId = _post(deadline, max, 0.01 ether);
        _claim(jobId, nodeA);
        _prove(jobId, nodeA);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        market.finalize(jobId, _factsFor(jobId));
        vm.prank(nodeA.operator);
        market.withdraw();
        vm.prank(nodeA.operator);
        registry.requestExit(nodeA.enclaveId);
        vm.assertLe(
            registry.getNode(nodeA.enclaveId).lockedUntil,
            block.timestamp + UNBONDING + market.FINALIZE_GRACE(),
            "the lock outlasts the unbonding by at most the finalize grace"
        );
        vm.warp(block.timestamp + UNBONDING + market.FINALIZE_GRACE());
        vm.prank(nodeA.operator);
        (bool ok,) = address(registry).call(abi.encodeCall(registry.withdrawStake, (nodeA.enclaveId)));
        vm.assertTrue(ok, "stake withdrawable once the job's only challenge window and grace have closed");
        vm.assertLe(opBefore + 0.01 ether + MIN_NODE_STAKE - CLAIM_BOND, nodeA.operator.balance, "operator whole");
    }

    // ------------------------------------------------------------------ free claim-and-hold

    /// @dev Claim-and-abandon costs the bond (0800), and "claiming and failing at once" costs gas
    /// and a re-post. But failJob returns the bond at any time while the claim stands, with no
    /// enclave evidence: an operator claims a job it never runs, holds it for the whole claim
    /// timeout, and fails it one second before the claim lapses. The job is blocked for its full
    /// claim timeout and then ends Failed (no one else may claim it), exactly what abandoning does,
    /// but the griefer gets its bond back. Promise: blocking the market by claiming costs the bond.
    function test_attack_claimHoldAndFailAtLastSecondBlocksForFree() public {
        uint64 timeout = 6 hours;
        bytes32 jobId = _post(uint64(block.timestamp + 1 days), timeout, 1 ether);
        uint256 griefBefore = nodeA.operator.balance;
        uint256 marketBefore = market.withdrawable(nodeA.operator);
        uint256 poolBefore = rewards.totalReceived();
        uint256 treasuryBefore = market.withdrawable(owner);
        _claim(jobId, nodeA);
        vm.warp(block.timestamp + timeout - 1); // held for the whole claim timeout, enclave never ran it
        vm.prank(nodeA.operator);
        market.failJob(jobId, bytes32("E_INTERNAL"));
        vm.assertEq(uint8(market.getJob(jobId).status), uint8(IFirnJobMarket.JobStatus.Failed), "job is dead");
        uint256 griefAfter = nodeA.operator.balance + market.withdrawable(nodeA.operator) - marketBefore;
        // The griefer held the job as long as an abandoning claimant: it must have paid the bond,
        // all but the share of the one second it left (decision 1571: refund = bond x time left).
        uint256 leftShare = CLAIM_BOND / timeout;
        vm.assertLe(griefAfter + CLAIM_BOND - leftShare, griefBefore, "holding a claim for its full timeout costs the bond");
        // What the griefer lost is credited to the owner's treasury (decision 1625, amended), never
        // to the requester nor to the stake-weighted reward pool.
        vm.assertEq(market.withdrawable(owner) - treasuryBefore, CLAIM_BOND - leftShare, "forfeit to the treasury");
        vm.assertEq(rewards.totalReceived(), poolBefore, "none to the pool");
        vm.assertEq(market.withdrawable(requester), 0, "requester credited no bond");
    }

    // ------------------------------------------------------------------ silent nodes cost verifiers

    /// @dev Verifier daemons challenge every Active, eligible node each epoch (0800; livenessChallenger
    /// challengeAll), and silence costs a node only its reward share. An operator registers enclaves
    /// (fee 0.01 ether each, the deploy script's default; stake refundable) and shuts them down: each
    /// verifier then pays an issueChallenge transaction per silent node per epoch, for as long as the
    /// node stays Active. At 10 gwei, 4 verifiers spend more on one silent node within a month of
    /// 1-day epochs than the attacker paid for it, and the stake comes back whenever it exits.
    /// Promise: a party cannot grief honest parties for less than it costs itself.
    /// Fix (decision 1576): a node that missed a challenged epoch gets one challenge per epoch, and
    /// after MAX_MISSED_EPOCHS such epochs none: issueChallenge reverts and daemons skip it (a free
    /// `isUnresponsive` read, as livenessChallenger does); its operator pays the registration fee
    /// again to be challenged.
    function test_attack_silentNodesMakeVerifiersPayChallengesForever() public {
        uint256 fee = 0.01 ether;
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, fee);
        TestNode memory silent = _activeNode(9, SIM, MEASUREMENT);
        uint256 gasPrice = 10 gwei;
        uint256 verifierGas;
        uint256 sent;
        for (uint256 e = 0; e < 30; ++e) {
            vm.warp(block.timestamp + EPOCH);
            for (uint256 v = 0; v < verifierList.length; ++v) {
                if (rewards.isUnresponsive(silent.enclaveId)) break; // what a daemon reads first
                vm.prank(verifierList[v]);
                uint256 g = gasleft();
                rewards.issueChallenge(silent.enclaveId); // never answered
                ++sent;
                verifierGas += g - gasleft() + 21_000;
            }
        }
        uint256 harm = verifierGas * gasPrice;
        vm.assertLe(harm, fee, "30 epochs of challenging a silent node cost the verifiers no more than its fee");
        // The contract refuses a daemon that does not read first: no challenge past the bound.
        uint8 bound = rewards.MAX_MISSED_EPOCHS();
        // Whatever the number of verifiers: one challenge per epoch until the bound, then none.
        vm.assertEq(sent, bound, "challenges paid for a silent node");
        vm.assertEq(rewards.missedEpochs(silent.enclaveId), bound, "missed the bound");
        vm.prank(verifierList[0]);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.NodeUnresponsive.selector, silent.enclaveId, bound));
        rewards.issueChallenge(silent.enclaveId);
        // Coming back costs the attacker the fee again (paid into the pool), for at most one more
        // epoch of challenges: each round of griefing costs it what it costs the verifiers.
        vm.deal(silent.operator, 1 ether);
        vm.prank(silent.operator);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.ResumeFeeTooLow.selector, fee - 1, fee));
        rewards.resumeChallenges{value: fee - 1}(silent.enclaveId);
        vm.prank(silent.operator);
        rewards.resumeChallenges{value: fee}(silent.enclaveId);
        vm.assertFalse(rewards.isUnresponsive(silent.enclaveId), "challenged again after paying the fee");
    }

    // ------------------------------------------------------------------ sybil verifier rewards

    /// @dev Verifier liveness points are counted per account: each active verifier account may
    /// challenge each eligible node once per epoch and earns 1 point per answer, whatever its
    /// stake. A minority (2 ether of 12 ether, 1/6 of the stake) split over 4 admitted accounts at the
    /// minimum stake does what verifier daemons do (challenge every Active node) and takes 4/9 of
    /// the verifier budget from the honest verifiers (8 ether on one account + 4 x 0.5 ether). The
    /// same stake on one account would earn 1/6 of it. Promise: sybils splitting stake over many
    /// addresses cannot take honest verifiers' rewards.
    function test_attack_sybilVerifierAccountsMultiplyLivenessRewardShare() public {
        rewards.fund{value: 10 ether}();
        TestNode memory nodeB = _activeNode(2, SIM, MEASUREMENT);
        // Honest side: the four fixture verifiers (4 x 0.5 ether) and one with 8 ether.
        address bigHonest = address(0xB16);
        _joinVerifier(bigHonest, 8 ether);
        // Attacker: 2 ether split over 4 accounts at the minimum stake.
        address[4] memory sybil;
        for (uint256 i = 0; i < 4; ++i) {
            sybil[i] = address(uint160(0x5B1000 + i));
            _joinVerifier(sybil[i], MIN_VERIFIER_STAKE);
        }
        uint256 total = verifierSet.totalActiveStake();
        vm.assertEq(total, 12 ether, "12 ether of verifier stake");
        // Every verifier's challenge counts (decision 1576 refuses challenges past the target); from
        // the next epoch on (decision 1706).
        rewards.setParameters(
            rewards.answerWindow(), uint32(verifierList.length), rewards.epochBudgetBps(), rewards.verifierShareBps()
        );
        // New epoch so registration votes do not mix in.
        vm.warp(block.timestamp + EPOCH);
        uint64 epoch = rewards.currentEpoch();
        TestNode[2] memory nodes = [nodeA, nodeB];
        address[] memory all = new address[](verifierList.length);
        for (uint256 v = 0; v < verifierList.length; ++v) all[v] = verifierList[v];
        for (uint256 k = 0; k < 2; ++k) {
            for (uint256 v = 0; v < all.length; ++v) {
                vm.prank(all[v]);
                bytes32 id = rewards.issueChallenge(nodes[k].enclaveId);
                IFirnRewards.Challenge memory c = rewards.getChallenge(id);
                bytes32 digest =
                    rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch));
                rewards.answerChallenge(id, _sig(nodes[k].enclaveKey, digest));
            }
        }
        vm.warp(block.timestamp + EPOCH);
        rewards.closeEpoch(epoch);
        uint256 budget = rewards.getEpoch(epoch).verifierBudget;
        uint256 attackerReward;
        for (uint256 i = 0; i < 4; ++i) attackerReward += rewards.pendingVerifierReward(epoch, sybil[i]);
        uint256 stakeShare = budget * (4 * MIN_VERIFIER_STAKE) / total;
        // 1/6 of the stake doing the same work per account as everyone: at most its stake share.
        vm.assertLe(attackerReward, stakeShare + 1, "sybil accounts earn no more than their stake share");
    }

    // ------------------------------------------------------------------ liveness (decisions 1590, 1591)

    /// @dev A dishonest verifier, the first to challenge a node on probation (one challenge per
    /// epoch until it answers), sends its challenge so late that the answer window runs past the
    /// epoch's end. answerChallenge refuses an answer from another epoch (StaleChallenge), so the
    /// node, online and answering at once, would miss the epoch and move towards NodeUnresponsive
    /// through no fault of its own; the probation slot is taken, so no honest verifier can
    /// challenge it in that epoch. Promise: only a node that could have answered in time and did
    /// not ever counts a missed epoch. Fix (decision 1590): issueChallenge refuses a challenge whose
    /// deadline is not before the epoch's end (ChallengeTooLate).
    function test_attack_lateChallengeOnProbationMakesNodeMissAnEpoch() public {
        TestNode memory fresh = _activeNode(11, SIM, MEASUREMENT); // never answered: on probation
        vm.warp(block.timestamp + EPOCH);
        uint64 epoch = rewards.currentEpoch();
        uint64 epochEnd = rewards.genesis() + (epoch + 1) * rewards.epochLength();
        uint64 window = rewards.answerWindow();
        address dishonest = verifierList[0];

        // The attack: half a window before the epoch ends.
        vm.warp(epochEnd - window / 2);
        vm.prank(dishonest);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRewards.ChallengeTooLate.selector, epoch, epochEnd + window / 2, epochEnd)
        );
        rewards.issueChallenge(fresh.enclaveId);
        // The last second at which the deadline would fall on the epoch's end is refused too.
        vm.warp(epochEnd - window);
        vm.prank(dishonest);
        vm.expectRevert(abi.encodeWithSelector(IFirnRewards.ChallengeTooLate.selector, epoch, epochEnd, epochEnd));
        rewards.issueChallenge(fresh.enclaveId);
        vm.assertFalse(rewards.isUnresponsive(fresh.enclaveId), "a refused challenge took no probation slot");

        // One second earlier the whole window fits: the node can answer at its very deadline.
        vm.warp(epochEnd - window - 1);
        vm.prank(dishonest);
        bytes32 id = rewards.issueChallenge(fresh.enclaveId);
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        vm.assertEq(uint256(c.deadline), uint256(epochEnd - 1), "deadline is the epoch's last second");
        vm.warp(c.deadline);
        bytes32 digest = rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch));
        rewards.answerChallenge(id, _sig(fresh.enclaveKey, digest));
        vm.assertEq(rewards.nodeAnswers(epoch, fresh.enclaveId), 1, "answered within its epoch");
        vm.warp(epochEnd);
        vm.assertEq(rewards.missedEpochs(fresh.enclaveId), 0, "no epoch missed");
        vm.assertFalse(rewards.isUnresponsive(fresh.enclaveId), "every verifier may challenge it");
    }

    /// @dev Verifier gas of one issueChallenge transaction, storage and accounts cold as in a real
    /// transaction (forge's `cool` cheatcode), plus the intrinsic 21,000 and the calldata.
    function _coldChallengeGas(address verifier, bytes32 enclaveId) internal returns (uint256) {
        VmLiveness cheats = VmLiveness(address(vm));
        cheats.cool(address(rewards));
        cheats.cool(address(registry));
        cheats.cool(address(verifierSet));
        bytes memory data = abi.encodeCall(IFirnRewards.issueChallenge, (enclaveId));
        uint256 calldataGas;
        for (uint256 i = 0; i < data.length; ++i) calldataGas += data[i] == 0 ? 4 : 16;
        vm.prank(verifier);
        uint256 g = gasleft();
        rewards.issueChallenge(enclaveId);
        return g - gasleft() + 21_000 + calldataGas;
    }

    /// @dev With registrationFee 0 (a devnet, or governance's choice), resumeChallenges was free: a
    /// silent node cycles (MAX_MISSED_EPOCHS missed epochs, resume, again) and makes the verifiers
    /// pay MAX_MISSED_EPOCHS challenges per cycle, forever, for the gas of one resume. Promise: a
    /// party cannot grief honest parties for less than it costs itself. Fix (decision 1591):
    /// resumeFee() = max(registrationFee, MAX_MISSED_EPOCHS x CHALLENGE_GAS x block.basefee); since
    /// 1594 and 1645 the per-node resumeFee(enclaveId), which equals it at one steady base fee.
    function test_attack_freeResumeMakesVerifiersPayForSilenceForever() public {
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0);
        vm.assertEq(registry.registrationFee(), 0, "a free registration fee");
        TestNode memory silent = _activeNode(12, SIM, MEASUREMENT);
        uint256 baseFee = 10 gwei;
        VmLiveness(address(vm)).fee(baseFee);
        // Under isolation the calls below would see a 0 base fee: the test measures nothing there.
        if (new BaseFeeProbe().baseFee() != baseFee) {
            VmLiveness(address(vm)).skip(true);
            return;
        }
        vm.deal(silent.operator, 10 ether);
        uint8 bound = rewards.MAX_MISSED_EPOCHS();
        // min(target, V) accepted challenges per epoch plus the refused ones of every other racing
        // daemon (1594, 1695).
        uint256 v = verifierSet.verifierCount();
        uint256 t = rewards.livenessTarget() < v ? rewards.livenessTarget() : v;
        uint256 required =
            uint256(bound) * (t * rewards.CHALLENGE_GAS() + (v - t) * rewards.REFUSED_CHALLENGE_GAS()) * baseFee;
        vm.assertEq(rewards.resumeFee(silent.enclaveId), required, "the fee covers the challenges a resume allows");
        uint256 worstChallenge;
        for (uint256 cycle = 0; cycle < 3; ++cycle) {
            uint256 verifierCost;
            uint256 sent;
            for (uint256 e = 0; e < 2 * bound; ++e) {
                vm.warp(block.timestamp + EPOCH);
                for (uint256 v = 0; v < verifierList.length; ++v) {
                    if (rewards.isUnresponsive(silent.enclaveId)) break; // what a daemon reads first
                    uint256 gas = _coldChallengeGas(verifierList[v], silent.enclaveId);
                    if (gas > worstChallenge) worstChallenge = gas;
                    verifierCost += gas * baseFee;
                    ++sent;
                }
            }
            vm.assertEq(sent, bound, "challenges per cycle");
            vm.assertTrue(rewards.isUnresponsive(silent.enclaveId), "unresponsive at the end of the cycle");
            // The free resume of the attack is refused; the fee it pays covers the cycle.
            vm.prank(silent.operator);
            vm.expectRevert(abi.encodeWithSelector(IFirnRewards.ResumeFeeTooLow.selector, 0, required));
            rewards.resumeChallenges(silent.enclaveId);
            uint256 fee = rewards.resumeFee(silent.enclaveId);
            uint256 received = rewards.totalReceived();
            uint256 credited = rewards.treasuryCredit(rewards.owner());
            vm.expectEmit(address(rewards));
            emit IFirnRewards.ChallengesResumed(silent.enclaveId, silent.operator, fee);
            vm.prank(silent.operator);
            rewards.resumeChallenges{value: fee}(silent.enclaveId);
            vm.assertEq(rewards.totalReceived(), received, "none of the fee went into the pool (decision 1646)");
            vm.assertEq(rewards.treasuryCredit(rewards.owner()), credited + fee, "the owner's treasury took the fee");
            vm.assertLe(verifierCost, fee, "a cycle costs the attacker at least what it costs the verifiers");
        }
        vm.assertLe(worstChallenge, rewards.CHALLENGE_GAS(), "CHALLENGE_GAS bounds a cold challenge transaction");
        // The fee follows the base fee, and never drops below the registration fee.
        VmLiveness(address(vm)).fee(100 gwei);
        vm.assertEq(rewards.resumeFee(silent.enclaveId), required * 10, "at ten times the base fee");
        VmLiveness(address(vm)).fee(0);
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0.01 ether);
        vm.assertEq(rewards.resumeFee(silent.enclaveId), 0.01 ether, "the registration fee when gas is cheaper");
    }
}
