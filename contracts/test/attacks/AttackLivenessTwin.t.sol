// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice Liveness attacks through the one-share-per-platform rule (FirnRewards.answerChallenge,
/// `PlatformAlreadyCounted`). Decisions 1576/1590 promise that an epoch counts as missed only when
/// a challenge the node could have answered went unanswered, so an honest node that answers every
/// challenge in time is never on probation nor unresponsive.
contract AttackLivenessTwinTest is FirnFixture {
    TestNode internal honest;
    TestNode internal twin;

    function setUp() public override {
        super.setUp();
        honest = _activeNode(1, SIM, MEASUREMENT);
        // Another operator's enclave on the same physical platform (two tenants of one cloud host,
        // or another app on it): the registry records the same platformIdHash for both.
        twin = _node(5);
        twin.platformIdHash = honest.platformIdHash;
        vm.prank(twin.operator);
        registry.register{value: MIN_NODE_STAKE}(_params(twin, SIM, MEASUREMENT_B));
        _approveAll(twin.enclaveId, twin.evidenceDigest);
    }

    function _challenge(uint256 v, TestNode memory t) internal returns (bytes32 id) {
        vm.prank(verifierList[v]);
        id = rewards.issueChallenge(t.enclaveId);
    }

    function _sigFor(bytes32 id, uint256 key) internal view returns (bytes memory) {
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        return _sig(key, rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch)));
    }

    /// @dev Each epoch the twin's enclave answers first (a colluding verifier challenges it at the
    /// epoch's start); the honest node answers every challenge it gets at once, with a valid
    /// signature, inside the window. Its answers are refused, every challenged epoch counts as
    /// missed, and after three it is unresponsive: verifiers stop challenging it, it earns nothing
    /// until its operator pays the resume fee (the node daemon does so automatically), and the
    /// twin can repeat it after every resume.
    function test_attack_platformTwinMakesHonestNodeUnresponsive() public {
        uint256 refused;
        for (uint256 e = 0; e < 4; ++e) {
            vm.warp(rewards.genesis() + e * EPOCH + 1);
            // The twin takes the platform's slot for this epoch.
            bytes32 t = _challenge(3, twin);
            rewards.answerChallenge(t, _sigFor(t, twin.enclaveKey));
            // An honest verifier challenges the honest node, which answers at once.
            if (rewards.isUnresponsive(honest.enclaveId)) break;
            bytes32 h = _challenge(0, honest);
            (bool ok,) = address(rewards).call(
                abi.encodeCall(IFirnRewards.answerChallenge, (h, _sigFor(h, honest.enclaveKey)))
            );
            if (!ok) ++refused;
        }
        vm.warp(rewards.genesis() + 4 * EPOCH + 1);
        // The promise: a node that answered every challenge in time has missed nothing.
        vm.assertEq(refused, 0, "the honest node's timely, validly signed answers were refused");
        vm.assertEq(rewards.missedEpochs(honest.enclaveId), 0, "honest node counted as missing epochs");
        vm.assertFalse(rewards.isUnresponsive(honest.enclaveId), "honest node made unresponsive");
    }
}
