// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice The guardian, within its powers, against decisions 1702/1723. An Exiting node still
/// proves its running claims (`proofSigner` accepts Exiting: exit stops new work, not work in
/// flight). When the guardian revokes its measurement, it can no longer prove, through no act of
/// its own, exactly as an Active node. But the market asked `registry.ineligibility`, which answers
/// "not Active" (1) before it looks at the measurement, so the Exiting claimant's failJob refunded
/// only the claim time left, releaseJob by anyone was refused, the requester could not reclaim at
/// once, and the lapse forfeited the whole bond to the treasury.
/// Safe outcome (decision 1775): a claimant made unable to prove by a restriction keeps its whole
/// bond, whether it was Active or Exiting (the market reads `registry.restriction`); a Slashed
/// claimant, which its slash already stopped, keeps the time-left rule.
contract AttackExitingClaimantRevokedTest is FirnScenario {
    TestNode internal node;

    function setUp() public override {
        super.setUp();
        node = _activeNode(1, SIM, MEASUREMENT);
        _handOver();
    }

    function test_attack_guardianRevocationTakesAnExitingClaimantsBond() public {
        bytes32 jobId = _postOn(market, 5 ether, 3 days, 2 days);
        _claimOn(market, jobId, node);
        // The operator retires the node; it finishes the claim it holds (Exiting nodes prove).
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);

        vm.warp(block.timestamp + 1 days);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);

        // The node can no longer prove; it gives the job back.
        vm.prank(node.operator);
        market.failJob(jobId, bytes32("measurement revoked"));
        vm.assertEq(
            market.withdrawable(node.operator), CLAIM_BOND, "the guardian's revocation cost an exiting claimant its bond"
        );
    }

    /// @notice The same restriction ends the Exiting claimant's claim at once for anyone (1723):
    /// a stranger's release opens the job again and returns the whole bond to the claimant.
    function test_exitingRevokedClaimIsReleasedByAnyoneWithTheWholeBond() public {
        bytes32 jobId = _postOn(market, 5 ether, 3 days, 2 days);
        _claimOn(market, jobId, node);
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);
        vm.warp(block.timestamp + 1 days);
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);

        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondReturned(jobId, node.enclaveId, 3, CLAIM_BOND);
        vm.prank(stranger);
        market.releaseJob(jobId);
        vm.assertEq(market.withdrawable(node.operator), CLAIM_BOND, "whole bond to the claimant");
        vm.assertEq(market.withdrawable(stranger), 0, "nothing to the stranger");
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Open), "open again");
    }

    /// @notice A TEE type withdrawn by governance (through the timelock) while the claimant is
    /// Exiting: the requester reclaims at once, the claimant gets its whole bond (reason 5).
    function test_exitingClaimantWhoseTeeTypeIsWithdrawnIsReclaimedAtOnce() public {
        uint256 escrow = 5 ether;
        bytes32 jobId = _postOn(market, escrow, 5 days, 4 days);
        _claimOn(market, jobId, node);
        vm.prank(node.operator);
        registry.requestExit(node.enclaveId);
        bytes memory data = abi.encodeCall(IFirnRegistry.setAllowedTeeTypes, (ALL_TEE_TYPES & ~(uint8(1) << SIM)));
        bytes32 salt = _schedule(address(registry), data);
        vm.warp(block.timestamp + DELAY);
        _execute(address(registry), data, salt);

        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondReturned(jobId, node.enclaveId, 5, CLAIM_BOND);
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), escrow, "escrow back at once");
        vm.assertEq(market.withdrawable(node.operator), CLAIM_BOND, "whole bond to the claimant");
        vm.assertEq(market.totalBonds(), 0, "bond out of the books");
    }

    /// @notice A claimant slashed during its claim cannot prove for its own fault (1702); a later
    /// revocation does not make that the guardian's doing: failJob keeps the time-left rule and the
    /// claim stays the claimant's (a stranger's release is refused).
    function test_slashedClaimantKeepsTheTimeLeftRuleAfterARevocation() public {
        bytes32 jobId = _postOn(market, 5 ether, 3 days, 2 days);
        _claimOn(market, jobId, node);
        vm.warp(block.timestamp + 1 days);
        // A finding on another of its proofs slashed it (the market is the registry's slasher).
        vm.prank(address(market));
        registry.slash(node.enclaveId, SLASH_AMOUNT, stranger, bytes32("other job"));
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);

        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotClaimant.selector, jobId, stranger));
        vm.prank(stranger);
        market.releaseJob(jobId);
        vm.prank(node.operator);
        market.failJob(jobId, bytes32("slashed"));
        vm.assertEq(market.withdrawable(node.operator), CLAIM_BOND / 2, "half the claim time left, half the bond");
    }
}
