// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../src/interfaces/IFirnJobMarket.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @notice R7, malicious host against a requester's escrow. The SDK binds a job to the one enclave
/// it attested (`enclaveIds = [A]`, decision 1060) with a 900 s claim timeout and a 1 h deadline.
/// Node A claims and never runs the job. Decision 1060 promises the requester its escrow back once
/// A's claim lapses ("until the chain's time passes claimedAt + claimTimeout … then reclaim"). But
/// `claimJob` lets any eligible node, A itself included, claim a lapsed claim again: A re-claims
/// in the first block after each lapse, before the requester's reclaim (which reverts
/// NotReclaimable), and so holds the escrow and the requester's job until the deadline. Each cycle
/// costs A one claim bond, paid to the owner's treasury, none of it to the requester it stalled.
/// Secure outcome: the claimant whose claim lapsed cannot take the same job back; the requester's
/// reclaim after the first lapse succeeds.
contract AttackR7ReclaimStallTest is FirnFixture {
    address internal requester = address(0xA11CE);
    uint64 internal constant CLAIM_TIMEOUT = 900; // SDK default (--claim-timeout)
    uint64 internal constant DEADLINE_S = 1 hours; // SDK default deadlineSeconds
    TestNode internal nodeA;

    function setUp() public override {
        super.setUp();
        nodeA = _activeNode(1, SIM, MEASUREMENT);
        vm.deal(requester, 10 ether);
        vm.deal(nodeA.operator, 10 ether);
    }

    function test_attack_lapsedClaimantReclaimsBeforeTheRequesterCanReclaim() public {
        IFirnJobMarket.JobRequest memory r;
        r.teeTypeMask = uint8(1) << SIM;
        r.allowedMeasurements = new bytes32[](1);
        r.allowedMeasurements[0] = MEASUREMENT;
        r.enclaveIds = new bytes32[](1);
        r.enclaveIds[0] = nodeA.enclaveId; // bound to the attested node, as the SDK posts it
        r.workloadHash = keccak256("requester's training job");
        r.inputCommitment = keccak256("requester's dataset");
        r.deadline = uint64(block.timestamp + DEADLINE_S);
        r.claimTimeout = CLAIM_TIMEOUT;
        vm.prank(requester);
        bytes32 jobId = market.postJob{value: 1 ether}(r);
        _remember(jobId, r);

        vm.prank(nodeA.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, nodeA.enclaveId, _termsFor(jobId));

        // Every time the claim lapses, A's claim lands first in the next block; then the requester's
        // reclaim (decision 1060, step 2) is tried.
        uint256 reclaimedAt = 0;
        uint256 stalls = 0;
        while (block.timestamp <= r.deadline) {
            IFirnJobMarket.Job memory j = market.getJob(jobId);
            vm.warp(j.claimExpiresAt + 1);
            vm.prank(nodeA.operator);
            (bool reclaimedByA,) = address(market).call{value: CLAIM_BOND}(
                abi.encodeCall(market.claimJob, (jobId, nodeA.enclaveId, _termsFor(jobId)))
            );
            vm.prank(requester);
            (bool ok,) = address(market).call(abi.encodeCall(market.reclaim, (jobId)));
            if (ok) {
                reclaimedAt = block.timestamp;
                break;
            }
            if (reclaimedByA) ++stalls;
        }
        if (reclaimedAt == 0) {
            vm.warp(uint256(r.deadline) + 1);
            vm.prank(requester);
            market.reclaim(jobId);
            reclaimedAt = block.timestamp;
        }
        // The requester waited for one claim timeout, not until the deadline, and no re-claim by the
        // node that let its claim lapse came between.
        vm.assertEq(stalls, 0, "the node that let its claim lapse took the job back");
        vm.assertLe(reclaimedAt, uint256(r.deadline) - DEADLINE_S + CLAIM_TIMEOUT + 1, "escrow held past the lapse");
    }
}
