// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";

/// @notice The normal paths whose gas the benchmark reports (bench/gas.ts, decision 1140). Every call
/// here succeeds and is what an honest network does: register, the approving votes, post (open and
/// bound to one attested Enclave ID), claim, submitProof, finalize, a finding dispute by a quorum,
/// a liveness answer. Run with `forge test --match-contract FirnGasPaths --gas-report`, which runs
/// each call as its own transaction (cold storage, intrinsic and calldata gas included), with the
/// devnet's registration fee and protocol fee so the pool payments are part of the figures.
contract FirnGasPaths is FirnFixture {
    bytes32 internal constant WORKLOAD = keccak256("model");
    bytes32 internal constant INPUT = keccak256("inputs");
    address internal requester = address(0xCAFE);
    TestNode internal nodeA;
    TestNode internal nodeB;

    function setUp() public override {
        super.setUp();
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0.01 ether);
        market.setParameters(CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, 500, FALSE_DISPUTE_SLASH);
        vm.deal(requester, 100 ether);
        nodeA = _activeNode(1, SIM, MEASUREMENT);
        nodeB = _activeNode(2, SIM, MEASUREMENT);
    }

    function _request(bytes32[] memory enclaveIds) internal view returns (IFirnJobMarket.JobRequest memory r) {
        r.teeTypeMask = uint8(1) << SIM;
        r.allowedMeasurements = new bytes32[](0);
        r.enclaveIds = enclaveIds;
        r.workloadHash = WORKLOAD;
        r.inputCommitment = INPUT;
        r.deadline = uint64(block.timestamp + 1 days);
        r.claimTimeout = 1 hours;
        r.maxWorkUnits = 100;
    }

    function _post(bytes32[] memory enclaveIds) internal returns (bytes32 jobId) {
        IFirnJobMarket.JobRequest memory r = _request(enclaveIds);
        vm.prank(requester);
        jobId = _remember(market.postJob{value: 1 ether}(r), r);
    }

    function _bound(bytes32 enclaveId) internal pure returns (bytes32[] memory ids) {
        ids = new bytes32[](1);
        ids[0] = enclaveId;
    }

    function _claimAndProve(bytes32 jobId, TestNode memory t) internal {
        vm.prank(t.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, t.enclaveId, _termsFor(jobId));
        vm.warp(block.timestamp + 60);
        IFirnJobMarket.WorkProof memory p = IFirnJobMarket.WorkProof({
            jobId: jobId,
            enclaveId: t.enclaveId,
            measurement: MEASUREMENT,
            workloadHash: WORKLOAD,
            inputCommitment: INPUT,
            outputCommitment: keccak256(abi.encode("out", jobId)),
            startedAt: uint64(block.timestamp - 50),
            finishedAt: uint64(block.timestamp - 1),
            workUnits: 100
        });
        bytes memory sig = _sig(t.enclaveKey, market.hashWorkProof(p));
        vm.prank(t.operator);
        _submitTo(market, p, sig);
        _rememberProof(jobId, p, t.enclaveAddress);
    }

    /// @dev A new node registers and the quorum activates it.
    function test_gas_registerAndActivate() public {
        _activeNode(3, SIM, MEASUREMENT);
    }

    /// @dev Open jobs and jobs bound to the attested node, each claimed, proved and finalized.
    function test_gas_jobLifecycle() public {
        bytes32[] memory jobs = new bytes32[](4);
        for (uint256 i = 0; i < 4; ++i) {
            jobs[i] = _post(i % 2 == 0 ? new bytes32[](0) : _bound(i < 2 ? nodeA.enclaveId : nodeB.enclaveId));
            _claimAndProve(jobs[i], i < 2 ? nodeA : nodeB);
        }
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        for (uint256 i = 0; i < 4; ++i) {
            market.finalize(jobs[i], _factsFor(jobs[i]));
        }
    }

    /// @dev Verifiers find a proof wrong: three finding disputes (> 2/3 of the stake) slash the node.
    function test_gas_findingDispute() public {
        bytes32 jobId = _post(_bound(nodeA.enclaveId));
        _claimAndProve(jobId, nodeA);
        for (uint256 i = 0; i < APPROVE_QUORUM; ++i) {
            vm.prank(verifierList[i]);
            market.dispute(jobId, 17, _factsFor(jobId));
        }
    }

    /// @dev A verifier challenges a node and any relayer posts the enclave's answer.
    function test_gas_livenessAnswer() public {
        vm.prank(verifierList[0]);
        bytes32 id = rewards.issueChallenge(nodeA.enclaveId);
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        bytes32 digest = rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch));
        vm.prank(stranger);
        rewards.answerChallenge(id, _sig(nodeA.enclaveKey, digest));
    }
}
