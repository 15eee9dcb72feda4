// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../src/interfaces/IFirnRegistry.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

contract FirnJobMarketTest is FirnFixture {
    // secp256k1 group order, for building the high-s twin of a signature.
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    address internal requester = address(0xCAFE);
    bytes32 internal constant WORKLOAD = keccak256("model");
    bytes32 internal constant INPUT = keccak256("inputs");
    TestNode internal nodeA;
    TestNode internal nodeB;

    function setUp() public override {
        super.setUp();
        vm.deal(requester, 100 ether);
        nodeA = _activeNode(1, SIM, MEASUREMENT);
        nodeB = _activeNode(2, SIM, MEASUREMENT);
    }

    function _request(uint8 mask) internal view returns (IFirnJobMarket.JobRequest memory r) {
        r.teeTypeMask = mask;
        r.allowedMeasurements = new bytes32[](0);
        r.workloadHash = WORKLOAD;
        r.inputCommitment = INPUT;
        r.deadline = uint64(block.timestamp + 1 days);
        r.claimTimeout = 1 hours;
    }

    function _post() internal returns (bytes32 jobId) {
        vm.prank(requester);
        jobId = market.postJob{value: 3 ether}(_request(uint8(1) << SIM));
    }

    function _claim(bytes32 jobId, TestNode memory t) internal {
        vm.prank(t.operator);
        market.claimJob(jobId, t.enclaveId);
    }

    function _proof(bytes32 jobId, TestNode memory t) internal view returns (IFirnJobMarket.WorkProof memory p) {
        p = IFirnJobMarket.WorkProof({
            jobId: jobId,
            enclaveId: t.enclaveId,
            measurement: MEASUREMENT,
            workloadHash: WORKLOAD,
            inputCommitment: INPUT,
            outputCommitment: keccak256("out"),
            startedAt: uint64(block.timestamp),
            finishedAt: uint64(block.timestamp),
            workUnits: 7
        });
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _proved() internal returns (bytes32 jobId) {
        jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.prank(nodeA.operator);
        market.submitProof(jobId, p, sig);
    }

    function test_postJob_emitsAndValidates() public {
        IFirnJobMarket.JobRequest memory r = _request(2);
        bytes32 expectedId = keccak256(abi.encode(block.chainid, address(market), uint256(1)));
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobPosted(expectedId, requester, 3 ether, 2, WORKLOAD, INPUT, r.deadline, r.claimTimeout);
        vm.prank(requester);
        bytes32 jobId = market.postJob{value: 3 ether}(r);
        vm.assertEq(jobId, expectedId, "job id");
        vm.assertEq(market.totalEscrow(), 3 ether, "escrow");

        vm.startPrank(requester);
        vm.expectRevert(IFirnJobMarket.EmptyEscrow.selector);
        market.postJob(r);
        r.teeTypeMask = 1;
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidTeeTypeMask.selector, uint8(1)));
        market.postJob{value: 1}(r);
        r = _request(2);
        r.deadline = uint64(block.timestamp);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.DeadlineInPast.selector, r.deadline, uint64(block.timestamp))
        );
        market.postJob{value: 1}(r);
        r = _request(2);
        r.allowedMeasurements = new bytes32[](33);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.TooManyMeasurements.selector, 33, 32));
        market.postJob{value: 1}(r);
        vm.stopPrank();
    }

    function test_claim_doubleClaimAndIneligible() public {
        bytes32 jobId = _post();
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotNodeOperator.selector, nodeA.enclaveId, stranger));
        vm.prank(stranger);
        market.claimJob(jobId, nodeA.enclaveId);

        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobClaimed(jobId, nodeA.enclaveId, nodeA.operator, uint64(block.timestamp + 1 hours));
        _claim(jobId, nodeA);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.AlreadyClaimed.selector, jobId, nodeA.enclaveId, uint64(block.timestamp + 1 hours)
            )
        );
        _claim(jobId, nodeB);

        // TEE type not accepted.
        vm.prank(requester);
        bytes32 tdxJob = market.postJob{value: 1 ether}(_request(uint8(1) << TDX));
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, tdxJob, nodeB.enclaveId, 2));
        _claim(tdxJob, nodeB);

        // Measurement not in the job's own list.
        IFirnJobMarket.JobRequest memory r = _request(uint8(1) << SIM);
        r.allowedMeasurements = new bytes32[](1);
        r.allowedMeasurements[0] = MEASUREMENT_B;
        vm.prank(requester);
        bytes32 listJob = market.postJob{value: 1 ether}(r);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, listJob, nodeB.enclaveId, 4));
        _claim(listJob, nodeB);

        // A pending (not yet approved) node.
        TestNode memory pending = _node(3);
        _register(pending, SIM, MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, tdxJob, pending.enclaveId, 1));
        _claim(tdxJob, pending);
    }

    function test_claimTimeout_letsAnotherNodeClaim() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.warp(block.timestamp + 1 hours + 1);
        _claim(jobId, nodeB);
        vm.assertEq(market.getJob(jobId).enclaveId, nodeB.enclaveId, "reassigned");
        // The late first claimant can no longer submit.
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotClaimant.selector, jobId, nodeA.operator));
        vm.prank(nodeA.operator);
        market.submitProof(jobId, p, sig);
    }

    function test_release_reopens() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobReleased(jobId, nodeA.enclaveId);
        vm.prank(nodeA.operator);
        market.releaseJob(jobId);
        _claim(jobId, nodeB);
    }

    function test_submitProof_successEmits() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ProofSubmitted(
            jobId, nodeA.enclaveId, p.outputCommitment, 7, uint64(block.timestamp) + CHALLENGE_WINDOW
        );
        vm.prank(nodeA.operator);
        market.submitProof(jobId, p, sig);
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Proved), "proved");
    }

    function test_submitProof_wrongSigner() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes32 digest = market.hashWorkProof(p);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.WrongSigner.selector, nodeA.enclaveId, nodeA.enclaveAddress, nodeB.enclaveAddress
            )
        );
        vm.prank(nodeA.operator);
        market.submitProof(jobId, p, _sign(nodeB.enclaveKey, digest));
    }

    function test_submitProof_replayOnAnotherJob() public {
        bytes32 job1 = _post();
        bytes32 job2 = _post();
        _claim(job1, nodeA);
        _claim(job2, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(job1, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.ProofMismatch.selector, job2, "jobId"));
        vm.prank(nodeA.operator);
        market.submitProof(job2, p, sig);

        // Rewriting the jobId breaks the signature instead.
        p.jobId = job2;
        address recovered = _recover(market.hashWorkProof(p), sig);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.WrongSigner.selector, nodeA.enclaveId, nodeA.enclaveAddress, recovered)
        );
        vm.prank(nodeA.operator);
        market.submitProof(job2, p, sig);
    }

    function test_submitProof_otherChainDomain() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes32 foreignDomain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("firn"),
                keccak256("1"),
                block.chainid + 1,
                address(market)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                market.WORK_PROOF_TYPEHASH(),
                p.jobId,
                p.enclaveId,
                p.measurement,
                p.workloadHash,
                p.inputCommitment,
                p.outputCommitment,
                p.startedAt,
                p.finishedAt,
                p.workUnits
            )
        );
        bytes32 foreignDigest = keccak256(abi.encodePacked("\x19\x01", foreignDomain, structHash));
        bytes memory sig = _sign(nodeA.enclaveKey, foreignDigest);
        address recovered = _recover(market.hashWorkProof(p), sig);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.WrongSigner.selector, nodeA.enclaveId, nodeA.enclaveAddress, recovered)
        );
        vm.prank(nodeA.operator);
        market.submitProof(jobId, p, sig);
        // Sanity: the same struct under this chain's domain is what the contract hashes.
        bytes32 localDomain = market.DOMAIN_SEPARATOR();
        vm.assertEq(keccak256(abi.encodePacked("\x19\x01", localDomain, structHash)), market.hashWorkProof(p), "v4");
    }

    function test_submitProof_malleableSignature() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(nodeA.enclaveKey, market.hashWorkProof(p));
        bytes memory twin = abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        // ecrecover alone would accept the twin; the contract must not.
        vm.assertEq(ecrecover(market.hashWorkProof(p), v == 27 ? 28 : 27, r, bytes32(N - uint256(s))), nodeA.enclaveAddress, "twin");
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidSignature.selector, uint8(3)));
        vm.prank(nodeA.operator);
        market.submitProof(jobId, p, twin);
    }

    function test_submitProof_lateAndMismatch() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        p.measurement = MEASUREMENT_B;
        bytes memory badSig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.ProofMismatch.selector, jobId, "measurement"));
        vm.prank(nodeA.operator);
        market.submitProof(jobId, p, badSig);

        p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        uint64 expires = uint64(block.timestamp + 1 hours);
        vm.warp(expires + 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.ClaimExpired.selector, jobId, expires, expires + 1));
        vm.prank(nodeA.operator);
        market.submitProof(jobId, p, sig);

        uint64 deadline = market.getJob(jobId).deadline;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.DeadlinePassed.selector, jobId, deadline, deadline + 1));
        vm.prank(nodeA.operator);
        market.submitProof(jobId, p, sig);
    }

    function test_finalize_paysAfterWindow() public {
        bytes32 jobId = _proved();
        uint64 endsAt = market.getJob(jobId).challengeEndsAt;
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.ChallengeWindowOpen.selector, jobId, endsAt, uint64(block.timestamp))
        );
        market.finalize(jobId);
        vm.warp(endsAt);
        uint256 before = nodeA.operator.balance;
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobFinalized(jobId, nodeA.enclaveId, nodeA.operator, 3 ether);
        vm.prank(stranger);
        market.finalize(jobId);
        vm.assertEq(nodeA.operator.balance, before + 3 ether, "paid");
        vm.assertEq(address(market).balance, 0, "nothing left");
    }

    function test_dispute_quorumSlashesAndRefunds() public {
        bytes32 jobId = _proved();
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotVerifier.selector, stranger));
        vm.prank(stranger);
        market.dispute(jobId, 1);

        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobDisputed(jobId, verifierList[0], 9, 1);
        vm.prank(verifierList[0]);
        market.dispute(jobId, 9);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.AlreadyDisputed.selector, jobId, verifierList[0]));
        vm.prank(verifierList[0]);
        market.dispute(jobId, 9);

        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeSlashed(nodeA.enclaveId, SLASH_AMOUNT, address(market), jobId);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobSlashed(jobId, nodeA.enclaveId, SLASH_AMOUNT, 3 ether + SLASH_AMOUNT);
        vm.prank(verifierList[1]);
        market.dispute(jobId, 9);
        vm.assertFalse(registry.isActive(nodeA.enclaveId), "node no longer active");

        uint256 before = requester.balance;
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobReclaimed(jobId, requester, 3 ether + SLASH_AMOUNT);
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(requester.balance, before + 3 ether + SLASH_AMOUNT, "escrow and slash refunded");
    }

    function test_dispute_afterWindow() public {
        bytes32 jobId = _proved();
        uint64 endsAt = market.getJob(jobId).challengeEndsAt;
        vm.warp(endsAt);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.ChallengeWindowClosed.selector, jobId, endsAt, endsAt));
        vm.prank(verifierList[0]);
        market.dispute(jobId, 1);
    }

    function test_reclaim_rules() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NotReclaimable.selector, jobId, IFirnJobMarket.JobStatus.Claimed)
        );
        vm.prank(requester);
        market.reclaim(jobId);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotRequester.selector, jobId, stranger));
        vm.prank(stranger);
        market.reclaim(jobId);

        // After a missed deadline the requester gets the escrow back.
        vm.warp(market.getJob(jobId).deadline + 1);
        uint256 before = requester.balance;
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(requester.balance, before + 3 ether, "refunded");
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Reclaimed), "reclaimed");
    }

    function test_failJob_thenReclaim() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobFailed(jobId, nodeA.enclaveId, "bad input");
        vm.prank(nodeA.operator);
        market.failJob(jobId, "bad input");
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.totalEscrow(), 0, "no escrow left");
    }

    function testFuzz_submitTiming(uint256 wait) public {
        wait = bound(wait, 0, 2 hours);
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.warp(block.timestamp + wait);
        if (wait > 1 hours) vm.expectRevert();
        vm.prank(nodeA.operator);
        market.submitProof(jobId, p, sig);
    }

    function testFuzz_escrowAccounting(uint96 a, uint96 b) public {
        uint256 x = bound(a, 1, 10 ether);
        uint256 y = bound(b, 1, 10 ether);
        vm.startPrank(requester);
        bytes32 j1 = market.postJob{value: x}(_request(2));
        market.postJob{value: y}(_request(2));
        market.reclaim(j1);
        vm.stopPrank();
        vm.assertEq(address(market).balance, y, "balance");
        vm.assertEq(market.totalEscrow(), y, "escrow");
    }

    function _recover(bytes32 digest, bytes memory sig) internal pure returns (address) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        return ecrecover(digest, v, r, s);
    }
}
