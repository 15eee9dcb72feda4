// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {FirnScenario} from "../utils/FirnScenario.sol";

/// @notice Before decision 1856 a slashed node's stake (and its claim bond) went to the requester of
/// the slashed job, and each slash takes at most slashAmount of what is left. A cheating node that
/// expected a finding against a victim's job first had its stake slashed into jobs of its own
/// (posted by a colluding requester, here its operator's second account): it proved them and did
/// not serve their results, so the honest verifiers rightly found "result not served" (reason 19)
/// earlier. Its whole stake and bonds came back to it through those refunds, at once (no unbonding),
/// and the victim's finding slashed nothing. Now a slash and a bond go to the treasury: the
/// colluder gets back its escrows and nothing of the node's stake.
contract AttackSelfSlashToColluderTest is FirnScenario {
    uint16 internal constant RESULT_NOT_SERVED = 19;
    uint16 internal constant OUTPUT_WRONG = 17;

    function _find(bytes32 jobId, uint16 reason) internal {
        IFirnJobMarket.ProofFacts memory f = _factsFor(jobId);
        for (uint256 v = 0; v < 3; ++v) {
            vm.prank(verifierList[v]);
            market.dispute(jobId, reason, f);
        }
        vm.assertEq(
            uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Slashed), "finding concluded"
        );
    }

    function test_attack_cheaterRoutesItsOwnSlashesToAColludingRequester() public {
        TestNode memory node = _activeNode(51, SIM, MEASUREMENT);
        uint256 stake = registry.getNodeSummary(node.enclaveId).stake;
        address colluder = address(0xC0C0);
        vm.deal(colluder, 1 ether);
        vm.deal(node.operator, 1 ether);

        // The victim's job, which the node will not really run.
        bytes32 victimJob = _postOn(market, 2 ether, 1 days, 1 hours);
        // The colluder's jobs: enough of them for slashAmount x count to cover the stake.
        uint256 k = (stake + SLASH_AMOUNT - 1) / SLASH_AMOUNT;
        bytes32[] memory own = new bytes32[](k);
        for (uint256 i = 0; i < k; ++i) {
            IFirnJobMarket.JobRequest memory r = _request(1 days, 1 hours);
            vm.prank(colluder);
            own[i] = _remember(market.postJob{value: 0.001 ether}(r), r);
            _claimOn(market, own[i], node);
            _proveOn(market, own[i], node, keccak256(abi.encode("never served", i)));
        }
        _claimOn(market, victimJob, node);
        _proveOn(market, victimJob, node, keccak256("garbage"));

        // Honest verifiers find the colluder's jobs first (results never served), then the victim's.
        uint256 treasuryBefore = market.withdrawable(owner);
        for (uint256 i = 0; i < k; ++i) {
            _find(own[i], RESULT_NOT_SERVED);
        }
        _find(victimJob, OUTPUT_WRONG);

        for (uint256 i = 0; i < k; ++i) {
            vm.prank(colluder);
            market.reclaim(own[i]);
        }
        uint256 colluderBack = market.withdrawable(colluder);
        uint256 colluderPut = k * 0.001 ether;
        // The colluder gets back its escrows, nothing of the node's stake or bonds.
        vm.assertEq(colluderBack, colluderPut, "a cheating node routed its stake to itself through its own jobs");
        // The node's whole stake and every claim bond went to the treasury.
        vm.assertEq(
            market.withdrawable(owner) - treasuryBefore,
            stake + (k + 1) * CLAIM_BOND,
            "the slashed stake and the bonds are in the treasury"
        );
        vm.assertEq(market.getJob(victimJob).escrow, 2 ether, "the victim's escrow refundable");
    }
}
