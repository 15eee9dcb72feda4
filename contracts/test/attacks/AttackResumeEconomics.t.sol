// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

interface VmResume {
    function fee(uint256 newBasefee) external;
    function cool(address target) external;
    function skip(bool skipTest) external;
    function snapshotState() external returns (uint256);
    function revertToState(uint256 id) external returns (bool);
}

contract ResumeBaseFeeProbe {
    event Read(uint256 baseFee);

    function baseFee() external returns (uint256) {
        emit Read(block.basefee);
        return block.basefee;
    }
}

/// @notice Decisions 1591 and 1594 priced a resume at the base fee of the block it lands in:
/// max(registrationFee, 3 x (CHALLENGE_GAS + (V - 1) x REFUSED_CHALLENGE_GAS) x block.basefee). The
/// verifiers pay their challenges at the base fees of their own blocks. A silent node's operator
/// (registration fee 0: every devnet, or governance's choice) lets the verifiers race its
/// challenges while gas is dear (30 gwei) and resumes in a cheap block (1 gwei): the fee it pays is a
/// thirtieth of what its silence cost them, and it repeats the cycle. A verifier that joined after
/// the resume raced too and was not counted at all.
/// Fix (decision 1645): each accepted challenge records what its epoch's race costs the verifiers at
/// the base fee they pay and the active verifier count then; the resume fee is priced on the dearest
/// epoch of the spell that made the node unresponsive, never below today's price.
contract AttackResumeCheapBlockTest is FirnFixture {
    uint256 internal constant DEAR = 30 gwei;
    uint256 internal constant CHEAP = 1 gwei;

    /// @notice For the record: what a spell cost the verifiers, what the cheap block's price asked,
    /// and what the resume asks now.
    event Spell(uint256 verifierCost, uint256 cheapBlockPrice, uint256 fee);
    /// @notice For the record: the dearest accepted and refused challenge transactions measured.
    event DearestChallengeGas(uint256 accepted, uint256 refused);

    uint256 internal maxAcceptedGas;
    uint256 internal maxRefusedGas;

    function _txGas(address verifier, bytes32 enclaveId) internal returns (uint256 gas, bool ok) {
        VmResume cheats = VmResume(address(vm));
        cheats.cool(address(rewards));
        cheats.cool(address(registry));
        cheats.cool(address(verifierSet));
        bytes memory data = abi.encodeCall(IFirnRewards.issueChallenge, (enclaveId));
        uint256 calldataGas;
        for (uint256 i = 0; i < data.length; ++i) {
            calldataGas += data[i] == 0 ? 4 : 16;
        }
        vm.prank(verifier);
        uint256 g = gasleft();
        (ok,) = address(rewards).call(data);
        gas = g - gasleft() + 21_000 + calldataGas;
    }

    /// @dev Every daemon races the node at each epoch's start, at `baseFee`, until the node is
    /// unresponsive. Returns what the verifiers paid, accepted and refused challenges alike.
    function _silentSpell(bytes32 enclaveId, uint256 baseFee) internal returns (uint256 cost) {
        VmResume(address(vm)).fee(baseFee);
        for (uint256 k = 0; k < 2 * rewards.MAX_MISSED_EPOCHS(); ++k) {
            vm.warp(rewards.genesis() + (rewards.currentEpoch() + 1) * EPOCH + 1);
            if (rewards.isUnresponsive(enclaveId)) break; // what each daemon reads first
            for (uint256 v = 0; v < verifierList.length; ++v) {
                (uint256 gas, bool ok) = _txGas(verifierList[v], enclaveId);
                cost += gas * baseFee;
                if (ok && gas > maxAcceptedGas) maxAcceptedGas = gas;
                if (!ok && gas > maxRefusedGas) maxRefusedGas = gas;
            }
        }
        vm.assertEq(rewards.missedEpochs(enclaveId), rewards.MAX_MISSED_EPOCHS(), "unresponsive");
    }

    /// @dev What one epoch of challenges costs the verifiers at `baseFee` by the pool's constants, at
    /// most: min(target, V) accepted and V - min(target, V) refused (decisions 1594, 1695).
    function _epochCostAt(uint256 baseFee) internal view returns (uint256) {
        uint256 v = verifierSet.verifierCount();
        uint256 t = rewards.livenessTarget() < v ? rewards.livenessTarget() : v;
        return (t * rewards.CHALLENGE_GAS() + (v - t) * rewards.REFUSED_CHALLENGE_GAS()) * baseFee;
    }

    /// @dev What the pre-1645 formula asked in a block at `baseFee`.
    function _priceAt(uint256 baseFee) internal view returns (uint256) {
        return uint256(rewards.MAX_MISSED_EPOCHS()) * _epochCostAt(baseFee);
    }

    function test_attack_resumeInACheapBlockPaysLessThanTheVerifiersSpent() public {
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0);
        TestNode memory silent = _activeNode(12, SIM, MEASUREMENT);
        VmResume(address(vm)).fee(DEAR);
        // Under isolation (--gas-report) every call sees a 0 base fee: nothing to measure there.
        if (new ResumeBaseFeeProbe().baseFee() != DEAR) {
            VmResume(address(vm)).skip(true);
            return;
        }
        vm.deal(silent.operator, 10 ether);

        for (uint256 cycle = 0; cycle < 3; ++cycle) {
            // A verifier joins after the resume and races too (cycles 1 and 2).
            if (cycle != 0) _joinVerifiers(1);
            uint256 spent = _silentSpell(silent.enclaveId, DEAR);
            VmResume(address(vm)).fee(CHEAP);
            uint256 cheap = _priceAt(CHEAP);
            uint256 fee = rewards.resumeFee(silent.enclaveId);
            emit Spell(spent, cheap, fee);
            vm.assertTrue(spent > cheap, "the attack's premise: the cheap block's price is below the verifiers' cost");
            // The cheap block's price is refused.
            vm.prank(silent.operator);
            vm.expectRevert(abi.encodeWithSelector(IFirnRewards.ResumeFeeTooLow.selector, cheap, fee));
            rewards.resumeChallenges{value: cheap}(silent.enclaveId);
            // What the resume asks covers what the spell cost every racing verifier, late joiners too.
            vm.assertLe(spent, fee, "a resume in a cheap block paid less than the verifiers spent");
            vm.assertEq(fee, _priceAt(DEAR), "priced at the dearest epoch of the spell");
            vm.prank(silent.operator);
            rewards.resumeChallenges{value: fee}(silent.enclaveId);
            vm.assertEq(rewards.peakChallengeCost(silent.enclaveId), 0, "a resume starts a new spell");
        }
        // Cheap gas throughout: the fee follows the cheap spell (no stale peak from an old spell).
        uint256 cheapSpent = _silentSpell(silent.enclaveId, CHEAP);
        uint256 cheapFee = rewards.resumeFee(silent.enclaveId);
        vm.assertLe(cheapSpent, cheapFee, "covers a cheap spell");
        vm.assertEq(cheapFee, _priceAt(CHEAP), "and asks no more than its price");
        // The constants the price is built on still bound every challenge measured (record written).
        emit DearestChallengeGas(maxAcceptedGas, maxRefusedGas);
        vm.assertLe(maxAcceptedGas, rewards.CHALLENGE_GAS(), "an accepted challenge fits CHALLENGE_GAS");
        vm.assertLe(maxRefusedGas, rewards.REFUSED_CHALLENGE_GAS(), "a refused challenge fits REFUSED_CHALLENGE_GAS");
        // Gas dearer at the resume than during the spell: today's price.
        VmResume(address(vm)).fee(DEAR);
        vm.assertEq(rewards.resumeFee(silent.enclaveId), _priceAt(DEAR), "today's base fee when it is higher");
    }

    /// @dev The record (decision 1695): the price of each missed epoch since the last resume, the
    /// dearest kept; an answered epoch adds nothing and an answer clears nothing; a resume clears it.
    function test_peakChallengeCost_followsTheMissedEpochsAndClearsOnResume() public {
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0);
        TestNode memory node = _activeNode(13, SIM, MEASUREMENT);
        vm.deal(node.operator, 10 ether);
        VmResume(address(vm)).fee(DEAR);
        if (new ResumeBaseFeeProbe().baseFee() != DEAR) {
            VmResume(address(vm)).skip(true);
            return;
        }
        uint256 dear = _epochCostAt(DEAR);
        // Epoch 1, dear: challenged and missed.
        vm.warp(rewards.genesis() + EPOCH + 1);
        vm.prank(verifierList[0]);
        rewards.issueChallenge(node.enclaveId);
        vm.assertEq(rewards.peakChallengeCost(node.enclaveId), 0, "an epoch not yet missed prices nothing");
        vm.warp(rewards.genesis() + 2 * EPOCH + 1);
        vm.assertEq(rewards.peakChallengeCost(node.enclaveId), dear, "the missed epoch's price");
        // Epoch 2, dear: answered; the record stays (the missed epoch is not paid for).
        VmResume(address(vm)).fee(DEAR);
        vm.prank(verifierList[1]);
        bytes32 id = rewards.issueChallenge(node.enclaveId);
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        rewards.answerChallenge(
            id,
            _sig(
                node.enclaveKey,
                rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch))
            )
        );
        vm.assertEq(rewards.peakChallengeCost(node.enclaveId), dear, "an answer does not clear it");
        // Epochs 3 and 4, cheap: missed; the dearest stays and the fee is priced on it.
        for (uint256 e = 3; e <= 4; ++e) {
            vm.warp(rewards.genesis() + e * EPOCH + 1);
            VmResume(address(vm)).fee(CHEAP);
            vm.prank(verifierList[0]);
            rewards.issueChallenge(node.enclaveId);
        }
        vm.warp(rewards.genesis() + 5 * EPOCH + 1);
        vm.assertEq(rewards.missedEpochs(node.enclaveId), 3, "three missed, one answered between");
        vm.assertEq(rewards.peakChallengeCost(node.enclaveId), dear, "the dearest missed epoch");
        uint256 fee = rewards.resumeFee(node.enclaveId);
        vm.assertEq(fee, 3 * dear, "priced on it, not on the cheap block");
        vm.prank(node.operator);
        rewards.resumeChallenges{value: fee}(node.enclaveId);
        vm.assertEq(rewards.peakChallengeCost(node.enclaveId), 0, "a resume clears it");
    }
}

/// @notice Resume fees went into the reward pool (decisions 1576, 1591), which pays nodes by
/// liveness points = stake x answers. An operator holding most of the node stake resumes its silent
/// node and gets most of its own fee back through the epochs' node budgets: the fee that is meant to
/// cost it what its silence cost the verifiers costs it a fraction. The test measures the operator's
/// rewards with the resume and without it (same challenges and answers in both worlds; the resumed
/// node stays silent, so no points change).
/// Fix (decision 1646): the fee is credited to the owner's treasury (as forfeits are, 1625), where no
/// participant gets a share by stake; the pool receives none of it.
contract AttackResumeRebateTest is FirnFixture {
    uint256 internal constant EPOCHS = 40;
    uint256 internal constant REGISTRATION_FEE = 0.01 ether;

    TestNode internal honest;
    TestNode internal whale; // the attacker's live node, 9x the honest stake
    TestNode internal silent; // the attacker's silent node

    /// @notice For the record: the fee and what came back to its payer through the pool.
    event Rebate(uint256 fee, uint256 rebate);

    receive() external payable {}

    function setUp() public override {
        super.setUp();
        // Deploy defaults: liveness target 1, epoch budget 10 %, verifier share 20 %.
        rewards.setParameters(ANSWER_WINDOW, 1, 1000, 2000);
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, REGISTRATION_FEE);
        honest = _node(1);
        whale = _node(2);
        silent = _node(3);
        silent.operator = whale.operator;
        vm.deal(honest.operator, 10 ether);
        vm.deal(whale.operator, 100 ether);
        _registerWith(honest, MIN_NODE_STAKE);
        _registerWith(whale, 9 * MIN_NODE_STAKE);
        _registerWith(silent, MIN_NODE_STAKE);
        // The pool holds the registration fees from before the attack: swept to the owner's treasury
        // (decision 1671), pulled, and paid into the pool by governance.
        registry.sweepFees();
        rewards.withdraw();
        rewards.fund{value: 3 * REGISTRATION_FEE}();
    }

    function _registerWith(TestNode memory t, uint256 stake) internal {
        vm.prank(t.operator);
        registry.register{value: stake + REGISTRATION_FEE}(_params(t, SIM, MEASUREMENT));
        _approveAll(t.enclaveId, t.evidenceDigest);
    }

    function _answerOnce(TestNode memory t, uint256 v) internal {
        vm.prank(verifierList[v]);
        bytes32 id = rewards.issueChallenge(t.enclaveId);
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        rewards.answerChallenge(
            id,
            _sig(
                t.enclaveKey, rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch))
            )
        );
    }

    /// @dev The live nodes answer once per epoch; the silent node is challenged while challengeable
    /// and never answers; at epoch 4 (unresponsive since epoch 3) its operator resumes it or not.
    /// Returns what the whale's operator was credited by the pool, and the fee it paid.
    function _run(bool resume) internal returns (uint256 credited, uint256 fee) {
        uint64 g0 = rewards.genesis();
        for (uint256 e = 0; e < EPOCHS; ++e) {
            vm.warp(g0 + e * EPOCH + 1);
            _answerOnce(honest, 0);
            _answerOnce(whale, 1);
            if (resume && e == 4) {
                vm.assertTrue(rewards.missedEpochs(silent.enclaveId) >= rewards.MAX_MISSED_EPOCHS(), "unresponsive");
                fee = rewards.resumeFee(silent.enclaveId);
                vm.prank(silent.operator);
                rewards.resumeChallenges{value: fee}(silent.enclaveId);
            }
            if (!rewards.isUnresponsive(silent.enclaveId)) {
                vm.prank(verifierList[2]);
                rewards.issueChallenge(silent.enclaveId);
            }
        }
        vm.warp(g0 + EPOCHS * EPOCH + 1);
        uint256 before = rewards.withdrawable(whale.operator);
        for (uint64 e = 0; e < EPOCHS; ++e) {
            rewards.claimNodeReward(e, whale.enclaveId);
        }
        credited = rewards.withdrawable(whale.operator) - before;
    }

    function test_attack_largeStakerGetsItsResumeFeeBackFromThePool() public {
        uint256 snap = VmResume(address(vm)).snapshotState();
        (uint256 without,) = _run(false);
        VmResume(address(vm)).revertToState(snap);
        uint256 received = rewards.totalReceived();
        uint256 ownerBalance = address(this).balance;
        (uint256 with, uint256 fee) = _run(true);
        vm.assertLe(REGISTRATION_FEE, fee, "a resume was paid");
        uint256 rebate = with > without ? with - without : 0;
        emit Rebate(fee, rebate);
        vm.assertEq(rebate, 0, "the resuming staker got part of its fee back through the pool");
        vm.assertEq(with, without, "the whale earns the same with the resume as without it");
        vm.assertEq(rewards.totalReceived(), received, "the pool received none of the fee");
        vm.assertEq(rewards.treasuryCredit(owner), fee, "the owner's treasury holds the fee");
        // The owner pulls it; the pool's books do not move.
        uint256 withdrawn = rewards.totalWithdrawn();
        rewards.withdraw();
        vm.assertEq(address(this).balance, ownerBalance + fee, "the owner withdrew the fee");
        vm.assertEq(rewards.totalTreasuryCredit(), 0, "nothing left owed to the treasury");
        vm.assertEq(rewards.totalWithdrawn(), withdrawn, "not a pool withdrawal");
        vm.assertEq(
            address(rewards).balance,
            rewards.totalReceived() - rewards.totalWithdrawn() + rewards.totalTreasuryCredit(),
            "pool balance == received - paid + treasury credit"
        );
    }
}
