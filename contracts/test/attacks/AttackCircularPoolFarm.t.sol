// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

interface IVmState {
    function snapshotState() external returns (uint256);
    function revertToState(uint256 id) external returns (bool);
}

/// @notice Decision 1625 sends every forfeited claim bond to the reward pool so that "no requester
/// gains from a node's forfeit". But the pool pays node rewards by liveness points = stake x
/// answers, with no cap on stake, and a requester may also be a node operator. An operator that
/// holds most of the node stake (refundable capital, not a cost) posts 1-wei jobs whose workload
/// runs past the node policy's minimum claim (1625's own farm); honest nodes claim, fail at the
/// claim's end and forfeit 59/60 of the bond into the pool; the pool then pays the operator's node
/// its stake share of that money, epoch after epoch. The test measures the operator's marginal gain
/// (rewards with the farm minus rewards without it, same challenges and answers in both worlds)
/// against the farm's own gas (posts, reclaims, withdraw) at 10 gwei, under the deploy defaults
/// (bond 0.01 ether, epoch budget 10 %, verifier share 20 %, liveness target 1).
contract AttackCircularPoolFarmTest is FirnFixture {
    IVmState internal constant VMS = IVmState(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant BOND = 0.01 ether;
    uint64 internal constant CLAIM_TIMEOUT = 60;
    uint256 internal constant GAS_PRICE = 10 gwei;
    uint256 internal constant JOBS = 10;
    uint256 internal constant EPOCHS = 20;

    TestNode internal honest;
    TestNode internal sybil; // the requester's own node
    address internal requester;

    function setUp() public override {
        super.setUp();
        market.setParameters(CHALLENGE_WINDOW, SLASH_AMOUNT, BOND, 0, FALSE_DISPUTE_SLASH);
        rewards.setParameters(ANSWER_WINDOW, 1, 1000, 2000);
        honest = _activeNode(1, SIM, MEASUREMENT);
        // The requester's node: 9x the honest stake, all of it refundable.
        sybil = _node(2);
        vm.deal(sybil.operator, 100 ether);
        vm.prank(sybil.operator);
        registry.register{value: 9 * MIN_NODE_STAKE}(_params(sybil, SIM, MEASUREMENT));
        _approveAll(sybil.enclaveId, sybil.evidenceDigest);
        requester = sybil.operator;
        vm.deal(honest.operator, 10 ether);
    }

    function _answerOnce(TestNode memory t, uint256 v) internal {
        vm.prank(verifierList[v]);
        bytes32 id = rewards.issueChallenge(t.enclaveId);
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        bytes memory sig =
            _sig(t.enclaveKey, rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch)));
        rewards.answerChallenge(id, sig);
    }

    /// @dev Both nodes answer one challenge per epoch for EPOCHS epochs; afterwards the sybil claims
    /// every epoch's reward. Returns what the sybil's operator was credited by the pool.
    function _liveAndClaim(bool farm) internal returns (uint256 credited, uint256 farmGas) {
        uint64 g0 = rewards.genesis();
        for (uint256 e = 0; e < EPOCHS; ++e) {
            vm.warp(g0 + e * EPOCH + 1);
            _answerOnce(honest, 0);
            _answerOnce(sybil, 1);
            if (farm && e == 0) farmGas = _farm();
        }
        vm.warp(g0 + EPOCHS * EPOCH + 1);
        uint256 before = rewards.withdrawable(sybil.operator);
        for (uint64 e = 0; e < EPOCHS; ++e) {
            if (rewards.nodePoints(e, sybil.enclaveId) != 0) rewards.claimNodeReward(e, sybil.enclaveId);
        }
        credited = rewards.withdrawable(sybil.operator) - before;
    }

    function _farm() internal returns (uint256 gasUsed) {
        for (uint256 i = 0; i < JOBS; ++i) {
            IFirnJobMarket.JobRequest memory r;
            r.teeTypeMask = uint8(1) << SIM;
            r.allowedMeasurements = new bytes32[](0);
            r.enclaveIds = new bytes32[](0);
            r.workloadHash = keccak256("a loop that outlives any claim");
            r.inputCommitment = keccak256("input");
            r.deadline = uint64(block.timestamp + 1 hours);
            r.claimTimeout = CLAIM_TIMEOUT;
            uint256 g = gasleft();
            vm.prank(requester);
            bytes32 jobId = market.postJob{value: 1}(r);
            gasUsed += g - gasleft() + 21_000;
            _remember(jobId, r);
            // The honest node's policy accepts it (minEscrowWei 1, minClaimSeconds 60); the run hits
            // the claim's end, E_TIMEOUT, never attested (1595), failJob as soon as the enclave says so.
            vm.prank(honest.operator);
            market.claimJob{value: BOND}(jobId, honest.enclaveId, _termsFor(jobId));
            vm.warp(block.timestamp + CLAIM_TIMEOUT - 1);
            vm.prank(honest.operator);
            market.failJob(jobId, bytes32("E_TIMEOUT"));
            g = gasleft();
            vm.prank(requester);
            market.reclaim(jobId);
            gasUsed += g - gasleft() + 21_000;
        }
        uint256 g2 = gasleft();
        vm.prank(requester);
        market.withdraw();
        gasUsed += g2 - gasleft() + 21_000;
    }

    function test_attack_requesterWithNodeStakeFarmsForfeitsThroughThePool() public {
        uint256 state = VMS.snapshotState();
        (uint256 without,) = _liveAndClaim(false);
        VMS.revertToState(state);
        uint256 honestBefore = honest.operator.balance + market.withdrawable(honest.operator);
        (uint256 with, uint256 farmGas) = _liveAndClaim(true);
        uint256 honestLost = honestBefore - (honest.operator.balance + market.withdrawable(honest.operator));
        vm.assertEq(honestLost, JOBS * (BOND - BOND / CLAIM_TIMEOUT), "the honest node forfeited 59/60 per claim");
        uint256 gain = with - without;
        uint256 cost = farmGas * GAS_PRICE;
        // The promise (1625): no requester profits from a claimant's forfeited bond.
        vm.assertLe(gain, cost, "the requester's own node earns more of the forfeits than the farm's gas");
    }
}
