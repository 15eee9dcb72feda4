// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

interface VmExpired {
    function fee(uint256 newBasefee) external;
    function cool(address target) external;
    function skip(bool skipTest) external;
}

contract ExpiredBaseFeeProbe {
    event Read(uint256 baseFee);

    function baseFee() external returns (uint256) {
        emit Read(block.basefee);
        return block.basefee;
    }
}

/// @dev Shared harness: every epoch all verifier daemons read `isUnresponsive` at the same head and
/// race the node (each pays its transaction, accepted or refused, measured cold with intrinsic
/// gas); the node then answers as its strategy says; the operator resumes whenever the pool stops
/// challenging it. The books: `unrecovered` is every wei the verifiers paid on the node in an epoch
/// in which one of their accepted challenges expired unanswered (nothing earned, nothing to recover
/// it from); `fees` is what the operator paid the pool (resume fees; the registration fee is 0 here,
/// as on every devnet). `nodeGas` is what the node's answers cost it.
abstract contract ExpiredChallengeHarness is FirnFixture {
    uint256 internal constant BASE_FEE = 30 gwei;

    TestNode internal node;
    uint256 internal unrecovered;
    uint256 internal verifierSpend;
    uint256 internal fees;
    uint256 internal nodeGas;
    uint256 internal resumes;
    uint256 internal maxAcceptedGas;
    uint256 internal maxRefusedGas;

    /// @notice For the record: the books after `epochs` epochs.
    event Books(uint256 epochs, uint256 verifierSpend, uint256 unrecovered, uint256 fees, uint256 nodeGas, uint256 resumes);

    function _setUpAttack(uint32 target) internal returns (bool measured) {
        rewards.setParameters(ANSWER_WINDOW, target, 1000, 2000);
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0);
        node = _activeNode(21, SIM, MEASUREMENT);
        vm.deal(node.operator, 100 ether);
        VmExpired(address(vm)).fee(BASE_FEE);
        // Under isolation (--gas-report) every call sees a 0 base fee: nothing to measure there.
        if (new ExpiredBaseFeeProbe().baseFee() != BASE_FEE) {
            VmExpired(address(vm)).skip(true);
            return false;
        }
        return true;
    }

    function _cool() internal {
        VmExpired cheats = VmExpired(address(vm));
        cheats.cool(address(rewards));
        cheats.cool(address(registry));
        cheats.cool(address(verifierSet));
    }

    function _calldataGas(bytes memory data) internal pure returns (uint256 g) {
        for (uint256 i = 0; i < data.length; ++i) {
            g += data[i] == 0 ? 4 : 16;
        }
    }

    function _challenge(address verifier) internal returns (uint256 gas, bytes32 id) {
        _cool();
        bytes memory data = abi.encodeCall(IFirnRewards.issueChallenge, (node.enclaveId));
        vm.prank(verifier);
        uint256 g = gasleft();
        (bool ok, bytes memory ret) = address(rewards).call(data);
        gas = g - gasleft() + 21_000 + _calldataGas(data);
        if (ok) {
            id = abi.decode(ret, (bytes32));
            if (gas > maxAcceptedGas) maxAcceptedGas = gas;
        } else if (gas > maxRefusedGas) {
            maxRefusedGas = gas;
        }
    }

    function _answer(bytes32 id) internal {
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        bytes memory sig = _sig(
            node.enclaveKey, rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch))
        );
        _cool();
        bytes memory data = abi.encodeCall(IFirnRewards.answerChallenge, (id, sig));
        uint256 g = gasleft();
        (bool ok,) = address(rewards).call(data);
        require(ok, "answer refused");
        nodeGas += (g - gasleft() + 21_000 + _calldataGas(data)) * BASE_FEE;
    }

    /// @dev The node's strategy for epoch `e`: which of the epoch's accepted challenges it answers.
    function _answers(uint256 e, bytes32[] memory accepted, uint256 count) internal virtual returns (bool[] memory);

    /// @dev One epoch: resume if the pool stopped challenging the node, race, answer, settle.
    function _epoch(uint256 e) internal {
        vm.warp(rewards.genesis() + e * EPOCH + 1);
        if (rewards.missedEpochs(node.enclaveId) >= rewards.MAX_MISSED_EPOCHS()) {
            // Every wei the pool asks covers what the spell cost (asserted at each resume below).
            uint256 fee = rewards.resumeFee(node.enclaveId);
            vm.prank(node.operator);
            rewards.resumeChallenges{value: fee}(node.enclaveId);
            fees += fee;
            ++resumes;
            vm.assertLe(unrecovered, fees, "after a resume the node has paid for every challenge it let expire");
        }
        if (rewards.isUnresponsive(node.enclaveId)) return; // every daemon reads this first, same head
        bytes32[] memory accepted = new bytes32[](verifierList.length);
        uint256 count;
        uint256 spent;
        for (uint256 v = 0; v < verifierList.length; ++v) {
            (uint256 gas, bytes32 id) = _challenge(verifierList[v]);
            spent += gas * BASE_FEE;
            if (id != bytes32(0)) accepted[count++] = id;
        }
        verifierSpend += spent;
        vm.warp(rewards.genesis() + e * EPOCH + 60);
        bool[] memory answer = _answers(e, accepted, count);
        bool expired;
        for (uint256 i = 0; i < count; ++i) {
            if (answer[i]) _answer(accepted[i]);
            else expired = true;
        }
        if (expired) unrecovered += spent;
    }

    /// @dev Runs `epochs` epochs and checks the promise after each: what the verifiers paid for
    /// expired challenges is covered by what the node paid, but for the spell its next resume
    /// prices (at most MAX_MISSED_EPOCHS epochs, each at most what `resumeFee` charges one).
    function _run(uint256 epochs) internal {
        for (uint256 e = 1; e <= epochs; ++e) {
            _epoch(e);
            vm.assertLe(
                unrecovered,
                fees + rewards.resumeFee(node.enclaveId),
                "verifiers paid for expired challenges beyond what the node paid or owes for one spell"
            );
        }
        emit Books(epochs, verifierSpend, unrecovered, fees, nodeGas, resumes);
        vm.assertLe(maxAcceptedGas, rewards.CHALLENGE_GAS(), "an accepted challenge fits CHALLENGE_GAS");
        vm.assertLe(maxRefusedGas, rewards.REFUSED_CHALLENGE_GAS(), "a refused challenge fits REFUSED_CHALLENGE_GAS");
    }
}

/// @notice Decision 1594 refused challenges once a node counted `livenessTarget` answers in an epoch,
/// and left open (its residual risk) the challenges issued before that: every daemon races the node
/// at an epoch's start, all V are accepted, and the node answers exactly its target (with the deploy
/// default target 1: one answer, its partner verifier's) and lets every other expire. It earns its
/// whole share, is never on probation, and each other verifier pays an accepted challenge (~175k gas)
/// every epoch with no point and nothing to recover it from; the node pays one answer.
contract AttackPreTargetChallengesExpireTest is ExpiredChallengeHarness {
    uint256 internal constant EPOCHS = 12;

    /// @dev Answers the last accepted challenge (its partner races last) up to the target, no more.
    function _answers(uint256, bytes32[] memory, uint256 count) internal view override returns (bool[] memory a) {
        a = new bool[](count);
        uint256 target = rewards.livenessTarget();
        uint256 wanted = target > 1 ? target - 1 : 1; // target 1: its one answer; else one short of it
        for (uint256 i = count; i > 0 && wanted > 0; --i) {
            a[i - 1] = true;
            --wanted;
        }
    }

    function test_attack_nodeLetsPreTargetChallengesExpire_target1() public {
        if (!_setUpAttack(1)) return;
        _run(EPOCHS);
    }

    function test_attack_nodeLetsPreTargetChallengesExpire_target3() public {
        if (!_setUpAttack(3)) return;
        _run(EPOCHS);
    }
}

/// @notice Decision 1645 (residual risk): the resume fee prices one spell of probation, and one
/// answer cleared the missed count. A node that answers exactly once between spells (the third
/// epoch of each, before the count reaches MAX_MISSED_EPOCHS) never becomes unresponsive and never
/// pays a resume; each spell's first epoch (not on probation: it answered in the epoch before)
/// takes all V challenges, and every epoch of the spell costs the verifiers with nothing earned.
contract AttackChainedSpellsTest is ExpiredChallengeHarness {
    /// @dev Silent, except one answer when the next missed epoch would make it unresponsive.
    function _answers(uint256, bytes32[] memory, uint256 count) internal view override returns (bool[] memory a) {
        a = new bool[](count);
        if (count != 0 && rewards.missedEpochs(node.enclaveId) + 1 >= rewards.MAX_MISSED_EPOCHS()) a[0] = true;
    }

    function test_attack_answeringOnceBetweenSpellsChainsThemCheaply() public {
        if (!_setUpAttack(1)) return;
        // Every N: the books are checked after each epoch of 5 cycles of 3 epochs.
        _run(15);
    }

    function test_attack_answeringOnceBetweenSpellsChainsThemCheaply_target3() public {
        if (!_setUpAttack(3)) return;
        _run(15);
    }
}
