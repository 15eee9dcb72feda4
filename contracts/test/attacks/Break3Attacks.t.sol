// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice Attacks by a sybil verifier coalition and a greedy operator / requester. Each test
/// performs the attack and asserts what docs/decisions/0800-economics.md promises.
contract Break3AttacksTest is FirnFixture {
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

    function _postClaim(uint64 deadline, uint64 claimTimeout) internal returns (bytes32 jobId) {
        vm.prank(requester);
        jobId = _remember(market.postJob{value: 1 ether}(_request(deadline, claimTimeout)), _request(deadline, claimTimeout));
        vm.prank(nodeA.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, nodeA.enclaveId, _termsFor(jobId));
    }

    function _proof(bytes32 jobId) internal view returns (IFirnJobMarket.WorkProof memory p) {
        p = IFirnJobMarket.WorkProof({
            jobId: jobId,
            enclaveId: nodeA.enclaveId,
            measurement: MEASUREMENT,
            workloadHash: WORKLOAD,
            inputCommitment: INPUT,
            outputCommitment: keccak256("out"),
            startedAt: uint64(block.timestamp),
            finishedAt: uint64(block.timestamp),
            workUnits: 7
        });
    }

    function _trySubmit(bytes32 jobId) internal returns (bool ok) {
        IFirnJobMarket.WorkProof memory p = _proof(jobId);
        bytes memory sig = _sig(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.prank(nodeA.operator);
        (bytes32 r, bytes32 vs) = _compact(sig);
        (ok,) = address(market).call(abi.encodeCall(IFirnJobMarket.submitProof, (p, r, vs)));
        if (ok) _rememberProof(jobId, p, nodeA.enclaveAddress);
    }

    function _proved() internal returns (bytes32 jobId) {
        jobId = _postClaim(uint64(block.timestamp + 1 days), 1 hours);
        vm.assertTrue(_trySubmit(jobId), "valid proof accepted");
    }

    // ------------------------------------------------------------------ dispute reward farming

    /// @dev A verifier that disputes every valid proof with a finding (reason >= 16) is never
    /// slashed (< 2/3 cannot conclude, the contract cannot judge a finding) yet earns one work point
    /// per dispute, exactly like an honest vote. A minority member thus takes most of the verifier
    /// budget from honest verifiers by griefing honest nodes, and every verifier is paid to dispute
    /// everything. Promise: verifier rewards pay work, a wrong vote earns nothing.
    function test_attack_falseFindingDisputesFarmVerifierRewards() public {
        rewards.fund{value: 10 ether}();
        uint64 epoch = rewards.currentEpoch();
        address honest = verifierList[0]; // voted on nodeA's registration: 1 point
        address griefer = verifierList[3]; // did not vote
        for (uint256 i = 0; i < 5; ++i) {
            bytes32 jobId = _proved();
            vm.prank(griefer);
            market.dispute(jobId, 18, _factsFor(jobId));
        }
        vm.warp(block.timestamp + EPOCH + 1);
        vm.assertTrue(rewards.currentEpoch() > epoch, "epoch ended");
        rewards.closeEpoch(epoch);
        uint256 honestReward = rewards.pendingVerifierReward(epoch, honest);
        uint256 grieferReward = rewards.pendingVerifierReward(epoch, griefer);
        vm.assertLe(grieferReward, honestReward, "disputing valid proofs earns no more than honest work");
    }

    // ------------------------------------------------------------------ requester-chosen times

    /// @dev A requester posts a job whose deadline is near 2^64: `deadline + MAX_CLOCK_SKEW`
    /// overflows in submitProof, so no valid proof can ever be submitted; once the claim lapses the
    /// requester reclaims and takes the honest claimant's bond.
    function test_attack_deadlineNearMaxMakesEveryProofRevert() public {
        // Deadlines are stored in 40 bits: one beyond is refused at post, so no such job exists.
        IFirnJobMarket.JobRequest memory r = _request(type(uint64).max - 10, 1 hours);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.TimeTooLarge.selector, type(uint64).max - 10, type(uint40).max)
        );
        vm.prank(requester);
        market.postJob{value: 1 ether}(r);
        // The largest postable deadline still lets a valid proof in.
        bytes32 jobId = _postClaim(type(uint40).max - 10, 1 hours);
        vm.assertTrue(_trySubmit(jobId), "a valid proof of a postable job is accepted");
    }

    // ------------------------------------------------------------------ squatting by rotation

    /// @dev register costs the fee for every round, so squatting an enclave by registering its
    /// address first costs the fee. rotateKeys costs nothing and reserves the new address at once:
    /// an operator with one Active node front-runs a newcomer's registration with a rotation to the
    /// newcomer's enclave address, which then cannot register until verifiers refuse the rotation;
    /// then the squatter rotates again, for gas only.
    function test_attack_rotationSquatsAnotherEnclaveAddressForFree() public {
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0.05 ether);
        TestNode memory victim = _node(77);
        uint256 squatterBefore = nodeA.operator.balance;
        // The free rotation is refused...
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RotationFeeMismatch.selector, 0, 0.05 ether));
        vm.prank(nodeA.operator);
        registry.rotateKeys(nodeA.enclaveId, victim.enclaveAddress, keccak256("kem-x"), keccak256("junk"));
        // An overpayment is refused too: the fee is exact.
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RotationFeeMismatch.selector, 0.06 ether, 0.05 ether));
        vm.prank(nodeA.operator);
        registry.rotateKeys{value: 0.06 ether}(nodeA.enclaveId, victim.enclaveAddress, keccak256("kem-x"), keccak256("junk"));
        // ...so the squatter pays the fee to hold the address (whatever it sends, it is the fee or a revert).
        uint256 poolBefore = rewards.totalReceived();
        uint256 treasuryBefore = rewards.treasuryCredit(rewards.owner());
        uint256 fee = registry.registrationFee();
        vm.prank(nodeA.operator);
        registry.rotateKeys{value: fee}(
            nodeA.enclaveId, victim.enclaveAddress, keccak256("kem-x"), keccak256("junk")
        );
        uint256 paid = squatterBefore - nodeA.operator.balance;
        vm.assertEq(registry.feesHeld(), paid, "the rotation fee is held for the treasury");
        registry.sweepFees();
        // Decision 1671: to the owner's treasury, never into the stake-weighted pool.
        vm.assertEq(
            rewards.treasuryCredit(rewards.owner()), treasuryBefore + paid, "the rotation fee went to the treasury"
        );
        vm.assertEq(rewards.totalReceived(), poolBefore, "none of it reached the pool's budgets");
        vm.assertEq(paid, fee, "exactly the fee");

        uint256 value = MIN_NODE_STAKE + registry.registrationFee();
        vm.prank(victim.operator);
        (bool ok,) = address(registry).call{value: value}(
            abi.encodeCall(IFirnRegistry.register, (_params(victim, SIM, MEASUREMENT)))
        );
        // Either the newcomer registers, or holding its address cost the squatter the fee.
        vm.assertTrue(ok || paid >= registry.registrationFee(), "squatting an enclave address costs the fee");
    }

    // ------------------------------------------------------------------ claim-and-abandon

    /// @dev A griefing node claims a job and sits on it for the whole claim timeout (no other node
    /// can claim it meanwhile), then, once the claim has lapsed and before anyone reclaims or
    /// re-claims, calls failJob: the bond comes back, so abandoning the claim cost nothing.
    /// Promise: when the claim lapses the claimant has lost the bond (to the owner's treasury since
    /// decision 1625 as amended; the requester gets its escrow).
    function test_attack_failJobAfterLapseRecoversTheBond() public {
        bytes32 jobId = _postClaim(uint64(block.timestamp + 1 days), 1 hours);
        vm.warp(block.timestamp + 1 hours + 1); // the claim has lapsed
        vm.prank(nodeA.operator);
        (bool ok,) = address(market).call(abi.encodeCall(IFirnJobMarket.failJob, (jobId, bytes32("E_GRIEF"))));
        ok; // whether failJob reverts or not, the griefer must not get the bond back
        vm.assertEq(market.withdrawable(nodeA.operator), 0, "a lapsed claim's bond is not returned to the claimant");
        uint256 poolBefore = rewards.totalReceived();
        uint256 treasuryBefore = market.withdrawable(owner);
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), 1 ether, "requester gets its escrow");
        vm.assertEq(market.withdrawable(owner) - treasuryBefore, CLAIM_BOND, "the lapsed bond goes to the treasury");
        vm.assertEq(rewards.totalReceived(), poolBefore, "none of it to the reward pool");
    }

    // ------------------------------------------------------------------ stake-less verifiers

    /// @dev A verifier whose whole stake was slashed for provably wrong disputes stays an active
    /// verifier with nothing at risk: it keeps issuing liveness challenges and earning verifier
    /// reward points. Promise: verifiers are admitted by governance *and stake*, which a provably
    /// wrong vote loses.
    function test_attack_fullySlashedVerifierKeepsEarning() public {
        address v = verifierList[3];
        bytes32 jobId = _proved();
        vm.prank(v);
        market.dispute(jobId, 1, _factsFor(jobId)); // provably wrong: the recorded signer was the enclave key
        vm.assertTrue(verifierSet.getVerifier(v).stake < verifierSet.minVerifierStake(), "slashed below the minimum");
        vm.assertFalse(verifierSet.isVerifier(v), "left the active set with the slash");
        // It can no longer vote: neither another dispute nor a registration vote.
        jobId = _proved();
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotVerifier.selector, v));
        vm.prank(v);
        market.dispute(jobId, 1, _factsFor(jobId));
        TestNode memory newcomer = _node(78);
        _register(newcomer, SIM, MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotVerifier.selector, v));
        vm.prank(v);
        registry.approve(newcomer.enclaveId, 1, newcomer.evidenceDigest);

        vm.warp(block.timestamp + EPOCH);
        uint64 epoch = rewards.currentEpoch();
        vm.prank(v);
        (bool issued, bytes memory ret) =
            address(rewards).call(abi.encodeCall(IFirnRewards.issueChallenge, (nodeA.enclaveId)));
        vm.assertFalse(issued, "a verifier below the minimum stake cannot challenge");
        vm.assertEq(bytes4(ret), IFirnRewards.NotVerifier.selector, "refused as not a verifier");
        if (issued) {
            bytes32 id = abi.decode(ret, (bytes32));
            IFirnRewards.Challenge memory c = rewards.getChallenge(id);
            bytes32 digest =
                rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, nodeA.enclaveId, c.epoch));
            rewards.answerChallenge(id, _sig(nodeA.enclaveKey, digest));
        }
        vm.assertEq(rewards.verifierPoints(epoch, v), 0, "a verifier without stake earns no reward points");
    }

    // ------------------------------------------------------------------ confirmed votes earn

    /// @dev The counterpart of the farming attack: a finding the quorum joins concludes, slashes the
    /// node and credits every disputer of it, and only then.
    function test_rewards_concludedFindingCreditsItsDisputers() public {
        uint64 epoch = rewards.currentEpoch();
        bytes32 jobId = _proved();
        uint256[3] memory before;
        for (uint256 i = 0; i < 3; ++i) {
            before[i] = rewards.verifierPoints(epoch, verifierList[i]);
        }
        for (uint256 i = 0; i < 2; ++i) {
            vm.prank(verifierList[i]);
            market.dispute(jobId, 17, _factsFor(jobId));
            vm.assertEq(rewards.verifierPoints(epoch, verifierList[i]), before[i], "an open finding earns nothing yet");
        }
        vm.expectEmit(address(rewards));
        emit IFirnRewards.VerifierWorkRecorded(verifierList[0], epoch, before[0] + MIN_VERIFIER_STAKE);
        vm.prank(verifierList[2]);
        market.dispute(jobId, 17, _factsFor(jobId)); // 3 of 4 equal stakes: > 2/3, the node is slashed
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Slashed), "slashed");
        for (uint256 i = 0; i < 3; ++i) {
            vm.assertEq(rewards.verifierPoints(epoch, verifierList[i]), before[i] + MIN_VERIFIER_STAKE, "each disputer credited once");
        }
    }

    /// @dev Registration votes earn only on the side that decided the round: a lone refusal of a
    /// registration the quorum activates earns nothing, nor does a lone approval of one it refuses.
    function test_rewards_registrationVotesEarnOnlyOnTheDecidingSide() public {
        uint64 epoch = rewards.currentEpoch();
        address lone = verifierList[3];
        uint256 loneBefore = rewards.verifierPoints(epoch, lone);
        uint256 v0Before = rewards.verifierPoints(epoch, verifierList[0]);

        TestNode memory a = _node(90);
        _register(a, SIM, MEASUREMENT);
        vm.prank(lone);
        registry.refuse(a.enclaveId, 1, a.evidenceDigest, 1); // 1/4: not > 1/3
        _approveAll(a.enclaveId, a.evidenceDigest);
        vm.assertTrue(registry.isActive(a.enclaveId), "activated");
        vm.assertEq(rewards.verifierPoints(epoch, lone), loneBefore, "the losing refusal earns nothing");
        vm.assertEq(rewards.verifierPoints(epoch, verifierList[0]), v0Before + MIN_VERIFIER_STAKE, "the approvers earn");

        TestNode memory b = _node(91);
        _register(b, SIM, MEASUREMENT);
        vm.prank(verifierList[0]);
        registry.approve(b.enclaveId, 1, b.evidenceDigest);
        vm.prank(verifierList[1]);
        registry.refuse(b.enclaveId, 1, b.evidenceDigest, 1);
        vm.assertEq(rewards.verifierPoints(epoch, verifierList[1]), v0Before + MIN_VERIFIER_STAKE, "an open refusal earns nothing yet");
        vm.prank(lone);
        registry.refuse(b.enclaveId, 1, b.evidenceDigest, 1); // 2/4 > 1/3: refused
        vm.assertEq(
            uint256(registry.getNode(b.enclaveId).status), uint256(IFirnRegistry.NodeStatus.Rejected), "refused"
        );
        vm.assertEq(rewards.verifierPoints(epoch, lone), loneBefore + MIN_VERIFIER_STAKE, "the deciding refusers earn");
        vm.assertEq(rewards.verifierPoints(epoch, verifierList[1]), v0Before + 2 * MIN_VERIFIER_STAKE, "both refusers earn");
        vm.assertEq(rewards.verifierPoints(epoch, verifierList[0]), v0Before + MIN_VERIFIER_STAKE, "the losing approval earns nothing");
    }

    /// @dev A challenge issued while active and answered after the verifier was slashed out earns
    /// the verifier nothing; the node's answer still counts.
    function test_rewards_challengeAnsweredAfterDeactivationEarnsTheVerifierNothing() public {
        address v = verifierList[3];
        uint64 epoch = rewards.currentEpoch();
        vm.prank(v);
        bytes32 id = rewards.issueChallenge(nodeA.enclaveId);
        bytes32 jobId = _proved();
        vm.prank(v);
        market.dispute(jobId, 1, _factsFor(jobId)); // provably wrong: slashed below the minimum, deactivated
        vm.assertFalse(verifierSet.isVerifier(v), "deactivated");

        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        bytes32 digest = rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, nodeA.enclaveId, c.epoch));
        vm.expectEmit(address(rewards));
        emit IFirnRewards.VerifierWorkWithheld(v, epoch);
        rewards.answerChallenge(id, _sig(nodeA.enclaveKey, digest));
        vm.assertEq(rewards.verifierPoints(epoch, v), 0, "no point for a deactivated verifier");
        vm.assertTrue(rewards.nodePoints(epoch, nodeA.enclaveId) > 0, "the node's answer counts");
    }
}
