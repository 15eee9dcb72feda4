// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice Decision 1595: a requester who posts a workload built to fail late (its own committed
/// model or data makes it fail at the end) took f x bond from every honest node under 1571's
/// time-left rule. The enclave now signs a JobFailure for such failures and failJobAttested refunds
/// the whole bond. These tests perform the attack and every forgery of the new path.
contract AttackAttestedFailureTest is FirnFixture {
    address internal requester = address(0xCAFE);
    bytes32 internal constant WORKLOAD = keccak256("model that fails at its last layer");
    bytes32 internal constant INPUT = keccak256("inputs");
    uint256 internal constant ESCROW = 1 ether;
    uint64 internal constant CLAIM_TIMEOUT = 1 hours;
    /// @dev secp256k1 group order.
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    /// @dev The enclave's reason code for E_MODEL_INVALID (packages/enclave jobFailure.ts).
    uint16 internal constant MODEL_INVALID = 1;
    TestNode internal nodeA;

    function setUp() public override {
        super.setUp();
        vm.deal(requester, 100 ether);
        nodeA = _activeNode(1, SIM, MEASUREMENT);
    }

    function _post() internal returns (bytes32 jobId) {
        IFirnJobMarket.JobRequest memory r;
        r.teeTypeMask = uint8(1) << SIM;
        r.allowedMeasurements = new bytes32[](0);
        r.enclaveIds = new bytes32[](0);
        r.workloadHash = WORKLOAD;
        r.inputCommitment = INPUT;
        r.deadline = uint64(block.timestamp + 1 days);
        r.claimTimeout = CLAIM_TIMEOUT;
        vm.prank(requester);
        jobId = _remember(market.postJob{value: ESCROW}(r), r);
    }

    function _claim(bytes32 jobId, TestNode memory t) internal {
        vm.prank(t.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, t.enclaveId, _termsFor(jobId));
    }

    function _failure(bytes32 jobId, TestNode memory t) internal view returns (IFirnJobMarket.JobFailure memory) {
        return IFirnJobMarket.JobFailure({
            jobId: jobId,
            enclaveId: t.enclaveId,
            measurement: MEASUREMENT,
            workloadHash: WORKLOAD,
            inputCommitment: INPUT,
            reasonCode: MODEL_INVALID,
            failedAt: uint64(block.timestamp)
        });
    }

    /// @dev The EIP-712 digest written out by hand (the TypeScript side encodes the same bytes).
    function _digest(IFirnJobMarket.JobFailure memory f, uint256 chainId) internal view returns (bytes32) {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("firn"),
                keccak256("1"),
                chainId,
                address(market)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "JobFailure(bytes32 jobId,bytes32 enclaveId,bytes32 measurement,bytes32 workloadHash,bytes32 inputCommitment,uint16 reasonCode,uint64 failedAt)"
                ),
                f.jobId,
                f.enclaveId,
                f.measurement,
                f.workloadHash,
                f.inputCommitment,
                f.reasonCode,
                f.failedAt
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    function _signed(uint256 key, IFirnJobMarket.JobFailure memory f) internal view returns (bytes32 r, bytes32 vs) {
        return _compact(_sig(key, _digest(f, block.chainid)));
    }

    function _failAttested(TestNode memory t, IFirnJobMarket.JobFailure memory f, bytes32 r, bytes32 vs) internal {
        vm.prank(t.operator);
        market.failJobAttested(f, r, vs);
    }

    function _expectWrongSigner(TestNode memory t, IFirnJobMarket.JobFailure memory f, bytes memory sig) internal {
        (bytes32 r, bytes32 vs) = _compact(sig);
        address recovered =
            ecrecover(market.hashFailure(f), uint8(uint256(vs) >> 255) + 27, r, bytes32(uint256(vs) << 1 >> 1));
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.WrongSigner.selector, t.enclaveId, t.enclaveAddress, recovered)
        );
        _failAttested(t, f, r, vs);
    }

    // ------------------------------------------------------------------ the attack

    /// @dev The requester posts a workload whose own committed model fails at its last layer, so an
    /// honest node fails it 59 minutes into a 60-minute claim. With plain failJob (1571) the node
    /// loses 59/60 of the bond per claim (which funded the requester until decision 1625, and the
    /// owner's treasury since); the enclave signs this failure (it is a deterministic function of the
    /// committed workload), so failJobAttested refunds the whole bond and the requester ends with
    /// exactly its escrow: it gains nothing from the failure, and the node loses nothing.
    function test_attack_requesterFarmsBondWithLateDeterministicFailure() public {
        // Under 1571 alone (unattested failJob): the node pays 59/60 of the bond, to the treasury (1625).
        bytes32 farmed = _post();
        _claim(farmed, nodeA);
        vm.warp(block.timestamp + CLAIM_TIMEOUT - 1 minutes);
        uint256 treasuryBefore = market.withdrawable(owner);
        vm.prank(nodeA.operator);
        market.failJob(farmed, bytes32("E_MODEL_INVALID"));
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND / 60, "1571's rule: the node keeps 1/60");
        vm.assertEq(
            market.withdrawable(owner) - treasuryBefore,
            CLAIM_BOND - CLAIM_BOND / 60,
            "1625: the 59/60 go to the treasury"
        );
        vm.assertEq(market.withdrawable(requester), 0, "1625: the requester is credited no share");
        vm.prank(requester);
        market.reclaim(farmed);
        vm.prank(requester);
        market.withdraw();
        vm.prank(nodeA.operator);
        market.withdraw();

        // The same late failure, attested by the enclave.
        uint256 requesterBefore = requester.balance;
        uint256 operatorBefore = nodeA.operator.balance;
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.warp(block.timestamp + CLAIM_TIMEOUT - 1 minutes);
        IFirnJobMarket.JobFailure memory f = _failure(jobId, nodeA);
        (bytes32 r, bytes32 vs) = _signed(nodeA.enclaveKey, f);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobFailed(jobId, nodeA.enclaveId, bytes32(uint256(MODEL_INVALID)));
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobFailureAttested(jobId, nodeA.enclaveId, MODEL_INVALID, f.failedAt, nodeA.enclaveAddress);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.Credited(nodeA.operator, CLAIM_BOND);
        _failAttested(nodeA, f, r, vs);
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Failed), "failed");
        vm.assertEq(market.withdrawable(requester), 0, "no bond share to the requester");
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND, "whole bond back");
        vm.assertEq(market.totalBonds(), 0, "no bond held");
        // The requester's escrow is reclaimable at once, and that is all it gets.
        vm.prank(requester);
        market.reclaim(jobId);
        vm.prank(requester);
        market.withdraw();
        vm.prank(nodeA.operator);
        market.withdraw();
        vm.assertEq(requester.balance, requesterBefore, "requester: escrow back, nothing gained");
        vm.assertEq(nodeA.operator.balance, operatorBefore, "operator: bond back, nothing lost on chain");
        vm.assertEq(
            address(market).balance, market.totalWithdrawable() + market.totalEscrow() + market.totalBonds(), "books"
        );
    }

    /// @dev Fuzzed over when the node fails: the requester never gains from an attested failure.
    function testFuzz_attestedFailure_requesterNeverGains(uint64 heldFor) public {
        heldFor = uint64(bound(heldFor, 0, CLAIM_TIMEOUT));
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.warp(block.timestamp + heldFor);
        IFirnJobMarket.JobFailure memory f = _failure(jobId, nodeA);
        (bytes32 r, bytes32 vs) = _signed(nodeA.enclaveKey, f);
        _failAttested(nodeA, f, r, vs);
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), ESCROW, "escrow only");
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND, "whole bond");
    }

    // ------------------------------------------------------------------ forgeries

    /// @dev The host (operator) signs a failure with its own key: refused, and plain failJob's rule holds.
    function test_forgery_hostSignsItsOwnFailure() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.warp(block.timestamp + 30 minutes);
        IFirnJobMarket.JobFailure memory f = _failure(jobId, nodeA);
        uint256 hostKey = uint256(keccak256("operator's own key"));
        _expectWrongSigner(nodeA, f, _sig(hostKey, _digest(f, block.chainid)));
        // The only way out is failJob, which still costs the time held.
        uint256 treasuryBefore = market.withdrawable(owner);
        vm.prank(nodeA.operator);
        market.failJob(jobId, bytes32("E_MODEL_INVALID"));
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND / 2, "half the bond back, as 1571");
        vm.assertEq(market.withdrawable(owner) - treasuryBefore, CLAIM_BOND / 2, "half to the treasury (1625)");
        vm.assertEq(market.withdrawable(requester), 0, "none to the requester (1625)");
    }

    /// @dev A failure the enclave signed for job A is presented for job B (same terms, same node).
    function test_forgery_attestedFailureForAnotherJob() public {
        bytes32 jobA = _post();
        bytes32 jobB = _post();
        _claim(jobA, nodeA);
        _claim(jobB, nodeA);
        IFirnJobMarket.JobFailure memory fa = _failure(jobA, nodeA);
        bytes memory sigA = _sig(nodeA.enclaveKey, _digest(fa, block.chainid));
        IFirnJobMarket.JobFailure memory fb = _failure(jobB, nodeA);
        _expectWrongSigner(nodeA, fb, sigA);
        vm.assertEq(uint256(market.getJob(jobB).status), uint256(IFirnJobMarket.JobStatus.Claimed), "B still claimed");
    }

    /// @dev Other inputs: a failure signed over other inputs than the claim's is refused by the claim
    /// check, and one that repeats the claim's inputs with that signature does not recover the enclave.
    function test_forgery_attestedFailureForOtherInputs() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.JobFailure memory other = _failure(jobId, nodeA);
        other.inputCommitment = keccak256("other inputs");
        (bytes32 r, bytes32 vs) = _signed(nodeA.enclaveKey, other);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.ProofMismatch.selector, jobId, "measurement, workloadHash or inputCommitment"
            )
        );
        _failAttested(nodeA, other, r, vs);
        IFirnJobMarket.JobFailure memory claimed = _failure(jobId, nodeA);
        _expectWrongSigner(nodeA, claimed, abi.encodePacked(_sig(nodeA.enclaveKey, _digest(other, block.chainid))));
        // Another workload likewise.
        IFirnJobMarket.JobFailure memory otherWorkload = _failure(jobId, nodeA);
        otherWorkload.workloadHash = keccak256("other workload");
        (r, vs) = _signed(nodeA.enclaveKey, otherWorkload);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.ProofMismatch.selector, jobId, "measurement, workloadHash or inputCommitment"
            )
        );
        _failAttested(nodeA, otherWorkload, r, vs);
    }

    /// @dev Other measurement: the claim recorded MEASUREMENT; a failure naming another one (e.g.
    /// signed by an enclave of another image) is refused, and the other image's node cannot sign
    /// for nodeA's claim.
    function test_forgery_attestedFailureForOtherMeasurement() public {
        registry.allowMeasurement(SIM, MEASUREMENT_B);
        TestNode memory nodeB = _activeNode(2, SIM, MEASUREMENT_B);
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.JobFailure memory f = _failure(jobId, nodeA);
        f.measurement = MEASUREMENT_B;
        (bytes32 r, bytes32 vs) = _signed(nodeB.enclaveKey, f);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.ProofMismatch.selector, jobId, "measurement, workloadHash or inputCommitment"
            )
        );
        _failAttested(nodeA, f, r, vs);
        // nodeB's enclave signing nodeA's exact facts: not nodeA's enclave key.
        IFirnJobMarket.JobFailure memory g = _failure(jobId, nodeA);
        _expectWrongSigner(nodeA, g, _sig(nodeB.enclaveKey, _digest(g, block.chainid)));
        // nodeB's operator presenting nodeB's own failure for nodeA's claim: not the claimant.
        IFirnJobMarket.JobFailure memory h = _failure(jobId, nodeB);
        h.measurement = MEASUREMENT_B;
        (r, vs) = _signed(nodeB.enclaveKey, h);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotClaimant.selector, jobId, nodeB.operator));
        _failAttested(nodeB, h, r, vs);
    }

    /// @dev A key the node rotated away from (revoked) no longer signs failures; a revoked
    /// measurement makes the node's failures unattestable (as its proofs).
    function test_forgery_revokedKeyAndRevokedMeasurement() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.JobFailure memory f = _failure(jobId, nodeA);
        bytes memory oldSig = _sig(nodeA.enclaveKey, _digest(f, block.chainid));
        uint256 newKey = 0xabc;
        vm.prank(nodeA.operator);
        registry.rotateKeys(nodeA.enclaveId, vm.addr(newKey), keccak256("kem2"), keccak256("ev2"));
        _approveAll(nodeA.enclaveId, keccak256("ev2"));
        vm.assertEq(registry.getNode(nodeA.enclaveId).enclaveAddress, vm.addr(newKey), "rotated");
        (bytes32 r, bytes32 vs) = _compact(oldSig);
        address recovered = nodeA.enclaveAddress;
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.WrongSigner.selector, nodeA.enclaveId, vm.addr(newKey), recovered)
        );
        _failAttested(nodeA, f, r, vs);

        registry.revokeMeasurement(SIM, MEASUREMENT);
        (r, vs) = _signed(newKey, f);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, jobId, nodeA.enclaveId, uint8(3))
        );
        _failAttested(nodeA, f, r, vs);
    }

    /// @dev The enclave's signature under another chain's domain (same market address) is refused.
    function test_forgery_replayOnAnotherChain() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.JobFailure memory f = _failure(jobId, nodeA);
        _expectWrongSigner(nodeA, f, _sig(nodeA.enclaveKey, _digest(f, block.chainid + 1)));
        // Sanity: the hand-written digest on this chain is the contract's.
        vm.assertEq(_digest(f, block.chainid), market.hashFailure(f), "EIP-712 digest");
    }

    /// @dev The malleable twin (high s) of a valid signature is refused; the valid one is accepted.
    function test_forgery_highS() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.JobFailure memory f = _failure(jobId, nodeA);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(nodeA.enclaveKey, market.hashFailure(f));
        bytes32 highS = bytes32(N - uint256(s));
        if (uint256(highS) >> 255 == 0) {
            // Expressible in vs: refused as high s by the recovery (ECDSA.RecoverError.InvalidSignatureS).
            vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidSignature.selector, uint8(3)));
            _failAttested(nodeA, f, r, bytes32(uint256(highS) | (uint256(v == 27 ? 1 : 0) << 255)));
        } else {
            vm.expectRevert();
            _failAttested(nodeA, f, r, highS);
        }
        // A high s below 2^255 is refused as such whatever the parity.
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidSignature.selector, uint8(3)));
        _failAttested(nodeA, f, r, bytes32(uint256(0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1)));
        _failAttested(nodeA, f, r, bytes32(uint256(s) | (uint256(v - 27) << 255)));
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Failed), "failed");
    }

    /// @dev A valid attested failure replayed after it was used, or after the claim lapsed.
    function test_forgery_replayAndLapsedClaim() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.JobFailure memory f = _failure(jobId, nodeA);
        (bytes32 r, bytes32 vs) = _signed(nodeA.enclaveKey, f);
        _failAttested(nodeA, f, r, vs);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.UnexpectedJobStatus.selector, jobId, IFirnJobMarket.JobStatus.Failed)
        );
        _failAttested(nodeA, f, r, vs);

        bytes32 late = _post();
        _claim(late, nodeA);
        IFirnJobMarket.JobFailure memory g = _failure(late, nodeA);
        (r, vs) = _signed(nodeA.enclaveKey, g);
        uint64 expires = uint64(block.timestamp + CLAIM_TIMEOUT);
        vm.warp(expires + 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.ClaimExpired.selector, late, expires, expires + 1));
        _failAttested(nodeA, g, r, vs);
    }

    /// @dev Reason 0 is never signed; a failure dated outside the claim (a run before it, or in the
    /// future) is refused; only the claimant may present it; an unknown job is named.
    function test_failJobAttested_refusesBadReasonTimeCallerAndJob() public {
        bytes32 jobId = _post();
        vm.warp(block.timestamp + 1 hours);
        _claim(jobId, nodeA);
        uint64 claimedAt = uint64(block.timestamp);
        IFirnJobMarket.JobFailure memory f = _failure(jobId, nodeA);
        f.reasonCode = 0;
        (bytes32 r, bytes32 vs) = _signed(nodeA.enclaveKey, f);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidFailureReason.selector, uint16(0)));
        _failAttested(nodeA, f, r, vs);

        f.reasonCode = MODEL_INVALID;
        uint64 skew = market.MAX_CLOCK_SKEW();
        f.failedAt = claimedAt - skew - 1;
        (r, vs) = _signed(nodeA.enclaveKey, f);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.InvalidFailureTime.selector, f.failedAt, claimedAt, claimedAt)
        );
        _failAttested(nodeA, f, r, vs);
        f.failedAt = claimedAt + skew + 1;
        (r, vs) = _signed(nodeA.enclaveKey, f);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.InvalidFailureTime.selector, f.failedAt, claimedAt, claimedAt)
        );
        _failAttested(nodeA, f, r, vs);

        f.failedAt = claimedAt;
        (r, vs) = _signed(nodeA.enclaveKey, f);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotClaimant.selector, jobId, stranger));
        vm.prank(stranger);
        market.failJobAttested(f, r, vs);

        IFirnJobMarket.JobFailure memory unknown = _failure(keccak256("no such job"), nodeA);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.UnknownJob.selector, unknown.jobId));
        _failAttested(nodeA, unknown, r, vs);

        // At the skew's edge (a clock up to MAX_CLOCK_SKEW behind) the honest failure is accepted.
        f.failedAt = claimedAt - skew;
        (r, vs) = _signed(nodeA.enclaveKey, f);
        _failAttested(nodeA, f, r, vs);
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND, "whole bond");
    }
}
