// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice A dishonest requester farming claim bonds with workloads the enclave never attests as
/// the requester's own failure (decision 1595: a timeout is never signed, since the host owns the
/// clock). The node's policy (packages/node jobApi `DEFAULT_JOB_POLICY`: minEscrowWei 1,
/// minClaimSeconds 60) accepts a 1-wei job; the enclave runs it until the claim's end (the host
/// passes claimEnd as the enclave's deadline), it fails E_TIMEOUT, and the node's `failJob` then
/// refunds bond x (time left) / span, about nothing. Promise (README, 0800): a dishonest minority
/// cannot profit from honest nodes. Fix (decision 1625, amended): every forfeited bond share is
/// credited to the owner's treasury, never to the requester (nor to the stake-weighted reward pool,
/// AttackCircularPoolFarm), so the node still pays for the claim it held and the requester gets
/// exactly its escrow back.
contract AttackRequesterHangFarmTest is FirnFixture {
    address internal requester = address(0xBAD);
    bytes32 internal constant WORKLOAD = keccak256("training with 10^6 epochs");
    bytes32 internal constant INPUT = keccak256("dataset");
    uint64 internal constant CLAIM_TIMEOUT = 60; // the node's minimum claim time
    uint256 internal constant GAS_PRICE = 10 gwei;
    uint256 internal constant JOBS = 10;
    TestNode internal node;

    function setUp() public override {
        super.setUp();
        node = _activeNode(1, SIM, MEASUREMENT);
        vm.deal(requester, 1 ether);
        vm.deal(node.operator, 10 ether);
    }

    function test_attack_requesterFarmsBondWithWorkloadThatRunsPastTheClaim() public {
        uint256 requesterGas;
        uint256 nodeBefore = node.operator.balance + market.withdrawable(node.operator);
        uint256 poolBefore = rewards.totalReceived();
        uint256 treasuryBefore = market.withdrawable(owner);
        uint256 start = requester.balance;
        for (uint256 i = 0; i < JOBS; ++i) {
            IFirnJobMarket.JobRequest memory r;
            r.teeTypeMask = uint8(1) << SIM;
            r.allowedMeasurements = new bytes32[](0);
            r.enclaveIds = new bytes32[](0);
            r.workloadHash = WORKLOAD;
            r.inputCommitment = INPUT;
            r.deadline = uint64(block.timestamp + 1 hours);
            r.claimTimeout = CLAIM_TIMEOUT;
            uint256 g = gasleft();
            vm.prank(requester);
            bytes32 jobId = market.postJob{value: 1}(r);
            requesterGas += g - gasleft() + 21_000;
            _remember(jobId, r);

            // An honest node: its policy accepts the job, it claims and runs it.
            vm.prank(node.operator);
            market.claimJob{value: CLAIM_BOND}(jobId, node.enclaveId, _termsFor(jobId));
            // The workload is still running when the enclave's deadline (the claim's end) fires;
            // the node fails the job with the E_TIMEOUT code as soon as the enclave answers.
            vm.warp(block.timestamp + CLAIM_TIMEOUT - 1);
            vm.prank(node.operator);
            market.failJob(jobId, bytes32("E_TIMEOUT"));

            g = gasleft();
            vm.prank(requester);
            market.reclaim(jobId);
            requesterGas += g - gasleft() + 21_000;
        }
        uint256 g2 = gasleft();
        vm.prank(requester);
        market.withdraw();
        requesterGas += g2 - gasleft() + 21_000;

        uint256 gasCost = requesterGas * GAS_PRICE;
        uint256 gained = requester.balance - start; // escrows came back; no bond share may come in
        uint256 nodeAfter = node.operator.balance + market.withdrawable(node.operator);
        // The node still paid for holding the claims (1571), and that went to the owner's treasury.
        vm.assertEq(nodeBefore - nodeAfter, JOBS * (CLAIM_BOND - CLAIM_BOND / CLAIM_TIMEOUT), "the node paid");
        vm.assertEq(market.withdrawable(owner) - treasuryBefore, nodeBefore - nodeAfter, "the node's loss is the treasury's");
        vm.assertEq(rewards.totalReceived(), poolBefore, "none of it reaches the reward pool");
        // The promise: the requester's farm does not pay for itself.
        vm.assertLe(gained, gasCost, "requester profits from honest nodes' bonds with jobs that outrun the claim");
        vm.assertEq(gained, 0, "the requester gets exactly its escrows back");
    }

    /// @dev Every way a requester can make a claimant forfeit (a failure at any time, a release, a
    /// lapse superseded by another claim or ended by the reclaim): the requester ends with exactly
    /// its escrow, the claimant loses bond - refund, the owner's treasury gains exactly that and the
    /// reward pool nothing.
    function testFuzz_attack_noForfeitPathPaysTheRequester(uint8 path, uint32 heldFor) public {
        TestNode memory other = _activeNode(2, SIM, MEASUREMENT);
        vm.deal(other.operator, 10 ether);
        heldFor = uint32(bound(heldFor, 0, CLAIM_TIMEOUT));
        path = uint8(bound(path, 0, 3));
        IFirnJobMarket.JobRequest memory r;
        r.teeTypeMask = uint8(1) << SIM;
        r.allowedMeasurements = new bytes32[](0);
        r.enclaveIds = new bytes32[](0);
        r.workloadHash = WORKLOAD;
        r.inputCommitment = INPUT;
        r.deadline = uint64(block.timestamp + 1 hours);
        r.claimTimeout = CLAIM_TIMEOUT;
        vm.prank(requester);
        bytes32 jobId = market.postJob{value: 1}(r);
        _remember(jobId, r);
        uint256 nodeBefore = node.operator.balance;
        uint256 poolBefore = rewards.totalReceived();
        uint256 treasuryBefore = market.withdrawable(owner);
        vm.prank(node.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, node.enclaveId, _termsFor(jobId));
        if (path == 0) {
            vm.warp(block.timestamp + heldFor);
            vm.prank(node.operator);
            market.failJob(jobId, bytes32("E_TIMEOUT"));
        } else if (path == 1) {
            vm.warp(block.timestamp + heldFor);
            vm.prank(node.operator);
            market.releaseJob(jobId);
        } else {
            vm.warp(block.timestamp + CLAIM_TIMEOUT + 1); // the claim lapsed (the workload hangs)
            if (path == 2) {
                vm.prank(other.operator);
                market.claimJob{value: CLAIM_BOND}(jobId, other.enclaveId, _termsFor(jobId));
                vm.prank(other.operator);
                market.failJob(jobId, bytes32("E_INPUT_INVALID")); // failed at once: whole bond back
            }
        }
        vm.prank(requester);
        market.reclaim(jobId);
        vm.prank(node.operator);
        try market.withdraw() {} catch {}
        vm.assertEq(market.withdrawable(requester), 1, "the requester: its escrow, nothing more");
        uint256 lost = nodeBefore - node.operator.balance;
        vm.assertEq(market.withdrawable(owner) - treasuryBefore, lost, "what the claimant lost is the treasury's");
        vm.assertEq(rewards.totalReceived(), poolBefore, "the pool gains nothing");
        if (path != 0) vm.assertEq(lost, CLAIM_BOND, "a release or a lapse costs the whole bond");
        vm.assertEq(
            address(market).balance, market.totalEscrow() + market.totalBonds() + market.totalWithdrawable(), "books"
        );
    }
}
