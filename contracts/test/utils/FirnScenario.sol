// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnGovernance} from "../../src/FirnGovernance.sol";
import {FirnJobMarket} from "../../src/FirnJobMarket.sol";
import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRewards} from "../../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "./FirnFixture.sol";

/// @notice FirnFixture plus the steps the scenario and attack tests share: the production hand-over
/// to a timelock (proposer, guardian, delay) and governance through it, a requester's job posted,
/// claimed and proved as a node does it, nodes registered with a chosen stake (platform co-tenants)
/// and liveness challenges issued and answered. A test states only what its scenario changes.
abstract contract FirnScenario is FirnFixture {
    /// @dev The timelock's delay after `_handOver` (FirnGovernance's minimum delay).
    uint256 internal constant DELAY = 2 days;
    bytes32 internal constant WORKLOAD = keccak256("model");
    bytes32 internal constant INPUT = keccak256("inputs");
    FirnGovernance internal timelock;
    address internal proposer = address(0x9909);
    address internal guardian = address(0x6A4D);
    /// @dev Posts every job of `_postOn`; funded with 100 ether in setUp.
    address internal requester = address(0xCAFE);
    uint256 private _saltCounter;

    function setUp() public virtual override {
        super.setUp();
        vm.deal(requester, 100 ether);
    }

    // ---------------------------------------------------------------- governance

    /// @dev The production hand-over (FirnGovernance.t.sol): the guardian set on the registry and
    /// the market, every contract owned by a timelock whose only proposer is `proposer` and whose
    /// executor is anyone.
    function _handOver() internal {
        address[] memory proposers = new address[](1);
        proposers[0] = proposer;
        address[] memory executors = new address[](1);
        executors[0] = address(0);
        timelock = new FirnGovernance(DELAY, proposers, executors, address(0));
        registry.setGuardian(guardian);
        market.setGuardian(guardian);
        verifierSet.transferOwnership(address(timelock));
        registry.transferOwnership(address(timelock));
        market.transferOwnership(address(timelock));
        rewards.transferOwnership(address(timelock));
    }

    /// @dev Schedules `data` on `target` as the proposer, ready after DELAY; returns its salt.
    function _schedule(address target, bytes memory data) internal returns (bytes32 salt) {
        salt = bytes32(++_saltCounter);
        vm.prank(proposer);
        timelock.schedule(target, 0, data, bytes32(0), salt, DELAY);
    }

    function _execute(address target, bytes memory data, bytes32 salt) internal {
        timelock.execute(target, 0, data, bytes32(0), salt);
    }

    // ---------------------------------------------------------------- jobs

    /// @dev Any simulated node, any allow-listed measurement, WORKLOAD on INPUT; times in seconds
    /// from now.
    function _request(uint64 deadlineIn, uint64 claimTimeout) internal view returns (IFirnJobMarket.JobRequest memory r) {
        r.teeTypeMask = uint8(1) << SIM;
        r.allowedMeasurements = new bytes32[](0);
        r.enclaveIds = new bytes32[](0);
        r.workloadHash = WORKLOAD;
        r.inputCommitment = INPUT;
        r.deadline = uint64(block.timestamp + deadlineIn);
        r.claimTimeout = claimTimeout;
    }

    /// @dev The requester posts `_request(deadlineIn, claimTimeout)` on `m` with `escrow` wei.
    function _postOn(FirnJobMarket m, uint256 escrow, uint64 deadlineIn, uint64 claimTimeout)
        internal
        returns (bytes32 jobId)
    {
        IFirnJobMarket.JobRequest memory r = _request(deadlineIn, claimTimeout);
        vm.prank(requester);
        jobId = _remember(m.postJob{value: escrow}(r), r);
    }

    /// @dev `t`'s operator claims with the bond `m` asks now.
    function _claimOn(FirnJobMarket m, bytes32 jobId, TestNode memory t) internal {
        uint256 bond = m.claimBond();
        vm.prank(t.operator);
        m.claimJob{value: bond}(jobId, t.enclaveId, _termsFor(jobId));
    }

    /// @dev The proof `t`'s enclave signs for `jobId` now: MEASUREMENT, 7 work units.
    function _workProof(bytes32 jobId, TestNode memory t, bytes32 outputCommitment)
        internal
        view
        returns (IFirnJobMarket.WorkProof memory)
    {
        return IFirnJobMarket.WorkProof({
            jobId: jobId,
            enclaveId: t.enclaveId,
            measurement: MEASUREMENT,
            workloadHash: WORKLOAD,
            inputCommitment: INPUT,
            outputCommitment: outputCommitment,
            startedAt: uint64(block.timestamp),
            finishedAt: uint64(block.timestamp),
            workUnits: 7
        });
    }

    /// @dev `t`'s operator submits `_workProof` on `m`; returns the facts as a verifier reads them
    /// from the events (the round's snapshot is the claim's, decision 1141), and records the proof
    /// for `_factsFor` as FirnFixture's `_rememberProofOn` does.
    function _proveOn(FirnJobMarket m, bytes32 jobId, TestNode memory t, bytes32 outputCommitment)
        internal
        returns (IFirnJobMarket.ProofFacts memory facts)
    {
        IFirnJobMarket.WorkProof memory p = _workProof(jobId, t, outputCommitment);
        bytes memory sig = _sig(t.enclaveKey, m.hashWorkProof(p));
        vm.prank(t.operator);
        _submitTo(m, p, sig);
        _rememberProofOn(m, jobId, p, t.enclaveAddress);
        IFirnJobMarket.Job memory j = m.getJob(jobId);
        facts = IFirnJobMarket.ProofFacts({
            signer: t.enclaveAddress,
            startedAt: p.startedAt,
            finishedAt: p.finishedAt,
            provedBlock: uint64(block.number),
            challengeEndsAt: uint64(block.timestamp) + j.challengeWindow,
            workUnits: p.workUnits,
            snapshotId: j.snapshotId
        });
    }

    // ---------------------------------------------------------------- nodes and liveness

    /// @dev `t` registers paying `value` wei (stake plus any registration fee) and the first
    /// APPROVE_QUORUM verifiers approve it. Give `t` another node's platformIdHash first to make it
    /// that node's co-tenant.
    function _activate(TestNode memory t, uint256 value, uint8 teeType, bytes32 measurement) internal {
        vm.prank(t.operator);
        registry.register{value: value}(_params(t, teeType, measurement));
        _approveAll(t.enclaveId, t.evidenceDigest);
    }

    /// @dev This test (the owner) deposits `amount` wei into the reward pool.
    function _fundPool(uint256 amount) internal {
        vm.deal(address(this), amount);
        rewards.fund{value: amount}();
    }

    /// @dev verifierList[v] challenges `t` and `t`'s enclave answers at once.
    function _answer(uint256 v, TestNode memory t) internal {
        vm.prank(verifierList[v]);
        bytes32 id = rewards.issueChallenge(t.enclaveId);
        IFirnRewards.Challenge memory c = rewards.getChallenge(id);
        rewards.answerChallenge(
            id, _sig(t.enclaveKey, rewards.hashLivenessAnswer(IFirnRewards.LivenessAnswer(id, c.nonce, c.enclaveId, c.epoch)))
        );
    }
}
