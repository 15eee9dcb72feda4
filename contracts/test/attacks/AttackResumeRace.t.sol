// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

interface VmFee {
    function fee(uint256 newBasefee) external;
    function cool(address target) external;
    function skip(bool skipTest) external;
}

contract BaseFeeReader {
    function baseFee() external returns (uint256) {
        emit Read(block.basefee);
        return block.basefee;
    }

    event Read(uint256 baseFee);
}

/// @notice Decision 1591 promises that a resume pays for the challenges it lets verifiers spend:
/// resumeFee() = max(registrationFee, 3 x CHALLENGE_GAS x base fee) against "at most 3 challenge
/// transactions per resume". But every honest daemon (packages/verifier LivenessChallenger) reads
/// `isUnresponsive` at the head and then sends, and all of them challenge early in each epoch: a
/// node on probation is open to one challenge per epoch, so at each epoch's start all V daemons
/// read "challengeable" from the same head and all send; one is accepted, V - 1 revert
/// `NodeOnProbation` and still pay their gas. A resumed node that stays silent therefore costs the
/// verifiers 3 x (one challenge + (V - 1) refused ones) per resume, which the fee's 6 % head-room
/// over one challenge per epoch does not cover with V = 4 (the fixture's set) and a free
/// registration fee (every devnet, or governance's choice), at one and the same base fee.
contract AttackResumeRaceTest is FirnFixture {
    uint256 internal constant BASE_FEE = 10 gwei;

    /// @notice The dearest refused challenge measured (cold, intrinsic gas included), for the record.
    event DearestRefusedChallengeGas(uint256 gas);

    function _txGas(address verifier, bytes32 enclaveId) internal returns (uint256 gas, bool ok) {
        VmFee cheats = VmFee(address(vm));
        cheats.cool(address(rewards));
        cheats.cool(address(registry));
        cheats.cool(address(verifierSet));
        bytes memory data = abi.encodeCall(IFirnRewards.issueChallenge, (enclaveId));
        uint256 calldataGas;
        for (uint256 i = 0; i < data.length; ++i) calldataGas += data[i] == 0 ? 4 : 16;
        vm.prank(verifier);
        uint256 g = gasleft();
        (ok,) = address(rewards).call(data);
        gas = g - gasleft() + 21_000 + calldataGas;
    }

    function test_attack_racingDaemonsMakeAResumedSilentNodeCostMoreThanItsFee() public {
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0);
        TestNode memory silent = _activeNode(12, SIM, MEASUREMENT);
        VmFee(address(vm)).fee(BASE_FEE);
        if (new BaseFeeReader().baseFee() != BASE_FEE) {
            VmFee(address(vm)).skip(true);
            return;
        }
        vm.deal(silent.operator, 10 ether);
        // Silent until unresponsive (one challenge per epoch while on probation).
        for (uint256 e = 1; e <= 4; ++e) {
            vm.warp(rewards.genesis() + e * EPOCH + 1);
            if (rewards.isUnresponsive(silent.enclaveId)) break;
            vm.prank(verifierList[0]);
            rewards.issueChallenge(silent.enclaveId);
        }
        vm.assertTrue(rewards.isUnresponsive(silent.enclaveId), "unresponsive");
        uint256 fee = rewards.resumeFee(silent.enclaveId);
        vm.prank(silent.operator);
        rewards.resumeChallenges{value: fee}(silent.enclaveId);

        uint256 verifierCost;
        uint256 accepted;
        uint256 refused;
        uint256 maxRefusedGas;
        uint256 start = (block.timestamp - rewards.genesis()) / EPOCH + 1;
        for (uint256 e = start; e < start + 4; ++e) {
            vm.warp(rewards.genesis() + e * EPOCH + 1);
            // Every daemon reads the same head before any of their transactions lands.
            if (rewards.isUnresponsive(silent.enclaveId)) break;
            for (uint256 v = 0; v < verifierList.length; ++v) {
                (uint256 gas, bool ok) = _txGas(verifierList[v], silent.enclaveId);
                verifierCost += gas * BASE_FEE;
                if (ok) {
                    ++accepted;
                } else {
                    ++refused;
                    if (gas > maxRefusedGas) maxRefusedGas = gas;
                }
            }
        }
        vm.assertEq(accepted, rewards.MAX_MISSED_EPOCHS(), "one accepted challenge per epoch");
        vm.assertEq(refused, 3 * (verifierList.length - 1), "the other daemons' challenges were refused");
        emit DearestRefusedChallengeGas(maxRefusedGas);
        // The fee's unit for a refused challenge (decision 1594) covers the dearest one measured.
        vm.assertLe(maxRefusedGas, rewards.REFUSED_CHALLENGE_GAS(), "a refused challenge fits REFUSED_CHALLENGE_GAS");
        // The promise (1591): the resume paid at least what the silence cost the verifiers.
        vm.assertLe(verifierCost, fee, "the verifiers paid more for the resumed node's silence than its resume fee");
    }
}
