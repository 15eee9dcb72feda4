// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {BoundPool} from "../utils/BoundPool.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice A reward pool that does not take `fund()` (an EOA or a treasury multisig named as the
/// fee recipient, any contract other than FirnRewards) and the pull payments the market promises
/// (0800: "no contract that rejects ether can freeze anyone else's money").
contract RejectingPool is BoundPool {
    constructor(IFirnRegistry registry_) BoundPool(registry_) {}
}

/// @notice Red team R2 (governance parameter vs escrow). finalize pushes the protocol fee with a
/// high-level call `IFirnRewards(_rewardPool).fund{value: fee}()`; setRewardPool accepts any
/// non-zero address. Once governance points the pool at anything whose fund() reverts, every Proved
/// job with a non-zero fee can never be finalized, and a Proved job has no other way out (reclaim
/// refuses Proved): the requester's escrow, the node's pay and its bond are frozen until governance
/// changes the pool back (a further delay), and for ever if it never does.
contract AttackRewardPoolFreezesFinalizeTest is FirnFixture {
    address internal requester = address(0xCAFE);

    function test_attack_feeRecipientThatRejectsFundFreezesProvedEscrow() public {
        vm.deal(requester, 10 ether);
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        market.setParameters(CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, 200, FALSE_DISPUTE_SLASH);

        IFirnJobMarket.JobRequest memory r;
        r.teeTypeMask = uint8(1) << SIM;
        r.allowedMeasurements = new bytes32[](0);
        r.enclaveIds = new bytes32[](0);
        r.workloadHash = keccak256("model");
        r.inputCommitment = keccak256("inputs");
        r.deadline = uint64(block.timestamp + 1 days);
        r.claimTimeout = 1 hours;
        vm.prank(requester);
        bytes32 jobId = _remember(market.postJob{value: 3 ether}(r), r);
        vm.prank(t.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, t.enclaveId, _termsFor(jobId));
        IFirnJobMarket.WorkProof memory p = IFirnJobMarket.WorkProof({
            jobId: jobId,
            enclaveId: t.enclaveId,
            measurement: MEASUREMENT,
            workloadHash: r.workloadHash,
            inputCommitment: r.inputCommitment,
            outputCommitment: keccak256("out"),
            startedAt: uint64(block.timestamp),
            finishedAt: uint64(block.timestamp),
            workUnits: 1
        });
        bytes memory sig = _sig(t.enclaveKey, market.hashWorkProof(p));
        vm.prank(t.operator);
        _submitTo(market, p, sig);
        _rememberProof(jobId, p, t.enclaveAddress);

        // Governance (after its delay) sends protocol fees somewhere else.
        registry.setRewardPool(address(new RejectingPool(registry)));

        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        try market.finalize(jobId, _factsFor(jobId)) {} catch {}
        vm.prank(requester);
        try market.reclaim(jobId) {} catch {}
        vm.assertTrue(
            market.getJob(jobId).status != IFirnJobMarket.JobStatus.Proved,
            "a proved job's escrow and the node's pay are frozen by the fee recipient"
        );
    }
}
