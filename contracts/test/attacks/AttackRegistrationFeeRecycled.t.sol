// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnScenario} from "../utils/FirnScenario.sol";

interface VmStateFee {
    function snapshotState() external returns (uint256);
    function revertToState(uint256 id) external returns (bool);
}

/// @notice The registration fee is the price of a registration round (verifiers fetch evidence and
/// vote; a Pending registration holds its Enclave ID and address), of a key rotation ("squatting an
/// address by rotation costs what squatting it by registration costs") and the floor of a resume
/// (1576, 1591). It waits in the registry and is swept into the reward pool (decision 1140), and the
/// pool pays nodes by stake x answers with no cap on stake. Decision 1646 moved resume fees, and 1625
/// forfeited bonds, to the owner's treasury for exactly this reason ("the pool pays nodes by stake, so
/// a large staker would get most of its own fee back"; AttackCircularPoolFarm), but registration and
/// rotation fees still go to the pool.
/// Attack (an operator holding most of the node stake): it opens 20 registration rounds for enclaves
/// it never runs and withdraws each while Pending (stake refunded at once), paying 20 fees. Its live
/// node then earns its stake share of those fees back from the pool over the following epochs: the
/// test measures its marginal reward (same challenges and answers with and without the rounds) and
/// finds 81 % of the fees returned (0.162 of 0.2 ether, stake share 9/10 x node share 9/10), so each round costs it a fifth of the price governance set.
/// Safe outcome (1646's rule, applied to every fee): fees an operator pays never come back to it.
contract AttackRegistrationFeeRecycledTest is FirnScenario {
    uint256 internal constant FEE = 0.01 ether;
    uint256 internal constant ROUNDS = 20;
    uint256 internal constant EPOCHS = 30;
    TestNode internal whale;
    /// @notice For the record: the whale's node rewards without and with the rounds, the fees paid.
    event Measured(uint256 without, uint256 with, uint256 feesPaid);
    TestNode internal small;

    function setUp() public override {
        super.setUp();
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, FEE);
        whale = _node(1);
        _activate(whale, 9 * MIN_NODE_STAKE + FEE, SIM, MEASUREMENT);
        small = _activeNode(2, SIM, MEASUREMENT);
        _fundPool(1 ether);
    }

    /// @dev Epochs 1..EPOCHS, both nodes answering one challenge each; with `rounds`, the whale opens
    /// and withdraws that many registration rounds in epoch 1. Returns the whale's node rewards.
    function _world(uint256 rounds) internal returns (uint256 earned) {
        uint64 g0 = rewards.genesis();
        uint256 before = rewards.withdrawable(whale.operator);
        for (uint256 e = 1; e <= EPOCHS; ++e) {
            vm.warp(g0 + e * EPOCH + 1);
            // The node daemon claims each ended epoch at once (node LivenessService.claim).
            if (e > 1) rewards.claimNodeReward(uint64(e - 1), whale.enclaveId);
            if (e == 1) {
                for (uint256 k = 0; k < rounds; ++k) {
                    TestNode memory s = _node(100 + k);
                    vm.prank(whale.operator);
                    registry.register{value: MIN_NODE_STAKE + FEE}(_params(s, SIM, MEASUREMENT));
                    vm.prank(whale.operator);
                    registry.requestExit(s.enclaveId); // Pending: the stake comes back at once
                }
            }
            _answer(0, whale);
            _answer(1, small);
        }
        vm.warp(g0 + (EPOCHS + 1) * EPOCH + 1);
        rewards.claimNodeReward(uint64(EPOCHS), whale.enclaveId);
        earned = rewards.withdrawable(whale.operator) - before;
    }

    function test_attack_largeStakerGetsItsRegistrationFeesBackFromThePool() public {
        VmStateFee cheats = VmStateFee(address(vm));
        uint256 snap = cheats.snapshotState();
        uint256 without = _world(0);
        cheats.revertToState(snap);
        uint256 with = _world(ROUNDS);
        uint256 paid = ROUNDS * FEE;
        emit Measured(without, with, paid);
        vm.assertTrue(with >= without, "premise");
        // The attack works when a large share of the fees it paid came back to the payer.
        vm.assertLe(with - without, paid / 10, "the operator got its registration fees back from the pool");
    }
}
