// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {FirnGovernance} from "../src/FirnGovernance.sol";
import {FirnJobMarket} from "../src/FirnJobMarket.sol";
import {IFirnJobMarket} from "../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../src/interfaces/IFirnRegistry.sol";
import {IFirnRewards} from "../src/interfaces/IFirnRewards.sol";
import {IFirnVerifierSet} from "../src/interfaces/IFirnVerifierSet.sol";
import {BoundPool} from "./utils/BoundPool.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @dev A requester contract that re-enters withdraw() from its receive hook.
contract ReenteringRequester {
    FirnJobMarket internal immutable _market;
    bool public reenter = true;
    uint256 public received;

    constructor(FirnJobMarket market_) payable {
        _market = market_;
    }

    function post(IFirnJobMarket.JobRequest calldata r, uint256 value) external returns (bytes32) {
        return _market.postJob{value: value}(r);
    }

    function reclaim(bytes32 jobId) external {
        _market.reclaim(jobId);
    }

    function withdraw() external {
        _market.withdraw();
    }

    function setReenter(bool r) external {
        reenter = r;
    }

    receive() external payable {
        received += msg.value;
        if (reenter) _market.withdraw();
    }
}

/// @dev An operator contract: registers its node, then releases its claim and claims the same job
/// again in one transaction (decision 1768's attack).
contract ReleaseAndReclaimOperator {
    FirnJobMarket internal immutable _market;

    constructor(FirnJobMarket market_) payable {
        _market = market_;
    }

    function register(IFirnRegistry registry_, IFirnRegistry.RegistrationParams calldata p, uint256 value) external {
        registry_.register{value: value}(p);
    }

    function claim(bytes32 jobId, bytes32 enclaveId, IFirnJobMarket.JobTerms calldata terms, uint256 bond) external {
        _market.claimJob{value: bond}(jobId, enclaveId, terms);
    }

    function releaseAndClaim(bytes32 jobId, bytes32 enclaveId, IFirnJobMarket.JobTerms calldata terms, uint256 bond)
        external
    {
        _market.releaseJob(jobId);
        _market.claimJob{value: bond}(jobId, enclaveId, terms);
    }
}

contract FirnJobMarketTest is FirnFixture {
    // secp256k1 group order, for building the high-s twin of a signature.
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    address internal requester = address(0xCAFE);
    bytes32 internal constant WORKLOAD = keccak256("model");
    bytes32 internal constant INPUT = keccak256("inputs");
    TestNode internal nodeA;
    TestNode internal nodeB;

    function setUp() public override {
        super.setUp();
        vm.deal(requester, 100 ether);
        nodeA = _activeNode(1, SIM, MEASUREMENT);
        nodeB = _activeNode(2, SIM, MEASUREMENT);
    }

    function _request(uint8 mask) internal view returns (IFirnJobMarket.JobRequest memory r) {
        r.teeTypeMask = mask;
        r.allowedMeasurements = new bytes32[](0);
        r.enclaveIds = new bytes32[](0);
        r.workloadHash = WORKLOAD;
        r.inputCommitment = INPUT;
        r.deadline = uint64(block.timestamp + 1 days);
        r.claimTimeout = 1 hours;
    }

    function _post() internal returns (bytes32 jobId) {
        vm.prank(requester);
        jobId = _remember(market.postJob{value: 3 ether}(_request(uint8(1) << SIM)), _request(uint8(1) << SIM));
    }

    function _claim(bytes32 jobId, TestNode memory t) internal {
        vm.prank(t.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, t.enclaveId, _termsFor(jobId));
    }

    function _proof(bytes32 jobId, TestNode memory t) internal view returns (IFirnJobMarket.WorkProof memory p) {
        p = IFirnJobMarket.WorkProof({
            jobId: jobId,
            enclaveId: t.enclaveId,
            measurement: MEASUREMENT,
            workloadHash: WORKLOAD,
            inputCommitment: INPUT,
            outputCommitment: keccak256("out"),
            startedAt: uint64(block.timestamp),
            finishedAt: uint64(block.timestamp),
            workUnits: 7
        });
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _proved() internal returns (bytes32 jobId) {
        jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);
        _rememberProof(jobId, p, nodeA.enclaveAddress);
    }

    function _submit(bytes32 jobId, TestNode memory t) internal {
        IFirnJobMarket.WorkProof memory p = _proof(jobId, t);
        bytes memory sig = _sign(t.enclaveKey, market.hashWorkProof(p));
        vm.prank(t.operator);
        _submitTo(market, p, sig);
        _rememberProof(jobId, p, t.enclaveAddress);
    }

    function _status(bytes32 jobId) internal view returns (uint256) {
        return uint256(market.getJob(jobId).status);
    }

    /// @dev Market balance = open escrow + held bonds + credited balances.
    function _assertBooks() internal view {
        vm.assertEq(
            address(market).balance,
            market.totalEscrow() + market.totalBonds() + market.totalWithdrawable(),
            "market balance == escrow + bonds + withdrawable"
        );
    }

    function test_postJob_emitsAndValidates() public {
        IFirnJobMarket.JobRequest memory r = _request(2);
        bytes32 expectedId = keccak256(abi.encode(block.chainid, address(market), uint256(1)));
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobPosted(
            expectedId,
            requester,
            3 ether,
            2,
            WORKLOAD,
            INPUT,
            r.deadline,
            r.claimTimeout,
            0,
            new bytes32[](0),
            new bytes32[](0)
        );
        vm.prank(requester);
        bytes32 jobId = _remember(market.postJob{value: 3 ether}(r), r);
        vm.assertEq(jobId, expectedId, "job id");
        vm.assertEq(market.totalEscrow(), 3 ether, "escrow");
        IFirnJobMarket.Job memory j = market.getJob(jobId);
        vm.assertEq(
            j.termsHash, keccak256(abi.encode(WORKLOAD, INPUT, new bytes32[](0), new bytes32[](0))), "terms hashed"
        );
        vm.assertEq(j.escrow, 3 ether, "escrow recorded");

        vm.startPrank(requester);
        vm.expectRevert(IFirnJobMarket.EmptyEscrow.selector);
        market.postJob(r);
        r.teeTypeMask = 1;
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidTeeTypeMask.selector, uint8(1)));
        market.postJob{value: 1}(r);
        r = _request(2);
        r.deadline = uint64(block.timestamp);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.DeadlineInPast.selector, r.deadline, uint64(block.timestamp))
        );
        market.postJob{value: 1}(r);
        r = _request(2);
        r.claimTimeout = 0;
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidClaimTimeout.selector, uint64(0)));
        market.postJob{value: 1}(r);
        r = _request(2);
        r.allowedMeasurements = new bytes32[](33);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.TooManyMeasurements.selector, 33, 32));
        market.postJob{value: 1}(r);
        r = _request(2);
        r.enclaveIds = new bytes32[](33);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.TooManyEnclaveIds.selector, 33, 32));
        market.postJob{value: 1}(r);
        vm.stopPrank();
    }

    function test_claim_doubleClaimAndIneligible() public {
        bytes32 jobId = _post();
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotNodeOperator.selector, nodeA.enclaveId, stranger));
        vm.deal(stranger, 1 ether);
        vm.prank(stranger);
        market.claimJob{value: CLAIM_BOND}(jobId, nodeA.enclaveId, _termsFor(jobId));

        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.WrongClaimBond.selector, uint256(0), CLAIM_BOND));
        vm.prank(nodeA.operator);
        market.claimJob(jobId, nodeA.enclaveId, _termsFor(jobId));

        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobClaimed(
            jobId,
            nodeA.enclaveId,
            nodeA.operator,
            uint64(block.timestamp + 1 hours),
            CLAIM_BOND,
            MEASUREMENT,
            verifierSet.currentSnapshot()
        );
        _claim(jobId, nodeA);
        vm.assertEq(market.totalBonds(), CLAIM_BOND, "bond held");
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.AlreadyClaimed.selector, jobId, nodeA.enclaveId, uint64(block.timestamp + 1 hours)
            )
        );
        _claim(jobId, nodeB);

        // TEE type not accepted by the job.
        vm.prank(requester);
        bytes32 tdxJob = _remember(market.postJob{value: 1 ether}(_request(uint8(1) << TDX)), _request(uint8(1) << TDX));
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, tdxJob, nodeB.enclaveId, 2));
        _claim(tdxJob, nodeB);

        // Measurement not in the job's own list.
        IFirnJobMarket.JobRequest memory r = _request(uint8(1) << SIM);
        r.allowedMeasurements = new bytes32[](1);
        r.allowedMeasurements[0] = MEASUREMENT_B;
        vm.prank(requester);
        bytes32 listJob = _remember(market.postJob{value: 1 ether}(r), r);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, listJob, nodeB.enclaveId, 4));
        _claim(listJob, nodeB);

        // A pending (not yet approved) node.
        TestNode memory pending = _node(3);
        _register(pending, SIM, MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, tdxJob, pending.enclaveId, 1));
        _claim(tdxJob, pending);

        // Governance stopped accepting simulated TEEs.
        bytes32 other = _post();
        registry.setAllowedTeeTypes(0x0c);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, other, nodeB.enclaveId, 5));
        _claim(other, nodeB);
    }

    /// @dev Issue 10: a revoked measurement makes its nodes ineligible at once, for claims and proofs.
    function test_revokedMeasurement_refusesClaimsAndProofsAtOnce() public {
        bytes32 claimed = _post();
        _claim(claimed, nodeA);
        bytes32 open = _post();
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, open, nodeB.enclaveId, 3));
        _claim(open, nodeB);
        IFirnJobMarket.WorkProof memory p = _proof(claimed, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, claimed, nodeA.enclaveId, 3));
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);
        // The node reports the failure and keeps its bond; the requester reclaims at once.
        vm.prank(nodeA.operator);
        market.failJob(claimed, "revoked");
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND, "bond back");
    }

    function test_claim_boundToAttestedEnclaveIds() public {
        IFirnJobMarket.JobRequest memory r = _request(uint8(1) << SIM);
        r.enclaveIds = new bytes32[](1);
        r.enclaveIds[0] = nodeB.enclaveId;
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobPosted(
            keccak256(abi.encode(block.chainid, address(market), uint256(1))),
            requester,
            1 ether,
            r.teeTypeMask,
            WORKLOAD,
            INPUT,
            r.deadline,
            r.claimTimeout,
            0,
            r.allowedMeasurements,
            r.enclaveIds
        );
        vm.prank(requester);
        bytes32 jobId = _remember(market.postJob{value: 1 ether}(r), r);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, jobId, nodeA.enclaveId, 6));
        _claim(jobId, nodeA);
        _claim(jobId, nodeB);
        vm.assertEq(market.getJob(jobId).enclaveId, nodeB.enclaveId, "the attested enclave has it");
        vm.assertEq(
            market.getJob(jobId).termsHash,
            keccak256(abi.encode(WORKLOAD, INPUT, r.allowedMeasurements, r.enclaveIds)),
            "binding committed"
        );
    }

    /// @dev The market stores only the hash of a job's lists: a claimant that passes other terms
    /// (dropping the binding, or another measurement list) is refused, so the binding holds.
    function test_claim_refusesTermsOtherThanPosted() public {
        IFirnJobMarket.JobRequest memory r = _request(uint8(1) << SIM);
        r.enclaveIds = new bytes32[](1);
        r.enclaveIds[0] = nodeB.enclaveId;
        vm.prank(requester);
        bytes32 jobId = _remember(market.postJob{value: 1 ether}(r), r);
        bytes32 posted = market.getJob(jobId).termsHash;
        IFirnJobMarket.JobTerms memory forged = _termsFor(jobId);
        forged.enclaveIds = new bytes32[](0);
        bytes32 forgedHash = keccak256(
            abi.encode(forged.workloadHash, forged.inputCommitment, forged.allowedMeasurements, forged.enclaveIds)
        );
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.TermsMismatch.selector, jobId, posted, forgedHash));
        vm.prank(nodeA.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, nodeA.enclaveId, forged);

        forged = _termsFor(jobId);
        forged.enclaveIds[0] = nodeA.enclaveId;
        vm.expectRevert();
        vm.prank(nodeA.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, nodeA.enclaveId, forged);

        forged = _termsFor(jobId);
        forged.workloadHash = keccak256("another model");
        vm.expectRevert();
        vm.prank(nodeB.operator);
        market.claimJob{value: CLAIM_BOND}(jobId, nodeB.enclaveId, forged);
        vm.assertEq(_status(jobId), uint256(IFirnJobMarket.JobStatus.Open), "still open");
    }

    /// @dev Claim-and-abandon: the griefer's bond is credited to the owner (governance treasury)
    /// when its claim lapses (decision 1625, amended), whether another node takes the job over or
    /// the requester reclaims it; the requester gets exactly its escrow, the reward pool nothing.
    function test_claimBond_lostOnLapse() public {
        bytes32 jobId = _post();
        uint256 griefer = nodeA.operator.balance;
        uint256 pool = rewards.totalReceived();
        _claim(jobId, nodeA);
        vm.assertEq(nodeA.operator.balance, griefer - CLAIM_BOND, "bond paid in");
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondForfeited(jobId, nodeA.enclaveId, owner, CLAIM_BOND);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.Credited(owner, CLAIM_BOND);
        _claim(jobId, nodeB);
        vm.assertEq(market.withdrawable(owner), CLAIM_BOND, "the treasury was credited the bond");
        vm.assertEq(rewards.totalReceived(), pool, "the pool received nothing");
        vm.assertEq(market.withdrawable(requester), 0, "requester credited no bond");
        vm.assertEq(market.withdrawable(nodeA.operator), 0, "griefer gets nothing back");
        vm.assertEq(market.getJob(jobId).enclaveId, nodeB.enclaveId, "reassigned");
        // The late first claimant can no longer submit.
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotClaimant.selector, jobId, nodeA.operator));
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);

        // Second lapse, then the requester reclaims: that bond goes to the treasury too.
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondForfeited(jobId, nodeB.enclaveId, owner, CLAIM_BOND);
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), 3 ether, "escrow only");
        vm.assertEq(market.withdrawable(owner), 2 * CLAIM_BOND, "both bonds to the treasury");
        vm.assertEq(rewards.totalReceived(), pool, "none in the pool");
        uint256 before = requester.balance;
        vm.prank(requester);
        market.withdraw();
        vm.assertEq(requester.balance, before + 3 ether, "pulled");
        _assertBooks();
    }

    function test_release_reopensAndForfeitsBond() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotClaimant.selector, jobId, nodeB.operator));
        vm.prank(nodeB.operator);
        market.releaseJob(jobId);
        uint256 pool = rewards.totalReceived();
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobReleased(jobId, nodeA.enclaveId);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondForfeited(jobId, nodeA.enclaveId, owner, CLAIM_BOND);
        vm.prank(nodeA.operator);
        market.releaseJob(jobId);
        vm.assertEq(_status(jobId), uint256(IFirnJobMarket.JobStatus.Open), "open again");
        _claim(jobId, nodeB);
        vm.assertEq(market.withdrawable(owner), CLAIM_BOND, "bond to the treasury");
        vm.assertEq(rewards.totalReceived(), pool, "none to the pool");
        vm.assertEq(market.withdrawable(requester), 0, "none to the requester");
        vm.assertEq(market.withdrawable(nodeA.operator), 0, "none back to the releaser");
        _assertBooks();
    }

    /// Decision 1768: the attack is a node taking back the job its own claim released, in the same
    /// block (an operator contract releases and claims in one transaction), to hold the escrow again.
    /// Neither its Enclave ID nor its operator (with another Enclave ID) may claim the job again;
    /// any other eligible node still can.
    function test_release_neverReopensTheJobToItsClaimant() public {
        TestNode memory sibling = _node(31);
        sibling.operator = nodeA.operator; // a second enclave of nodeA's operator
        _register(sibling, SIM, MEASUREMENT);
        _approveAll(sibling.enclaveId, sibling.evidenceDigest);
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.prank(nodeA.operator);
        market.releaseJob(jobId);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, jobId, nodeA.enclaveId, uint8(7))
        );
        _claim(jobId, nodeA);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, jobId, sibling.enclaveId, uint8(7))
        );
        _claim(jobId, sibling);
        _claim(jobId, nodeB);
        vm.assertEq(market.getJob(jobId).enclaveId, nodeB.enclaveId, "another node holds it");
        // The bar is per job: nodeA claims other jobs as before.
        bytes32 other = _post();
        _claim(other, nodeA);
        _assertBooks();
    }

    /// Decision 1768, the atomic form: an operator contract releases its claim and claims the job
    /// back in the same transaction, so no reclaim can come between. The claim reverts with
    /// reason 7 and the whole transaction with it: the claim stands as it was, to its lapse.
    function test_release_andClaimInOneTransactionIsRefused() public {
        ReleaseAndReclaimOperator op = new ReleaseAndReclaimOperator{value: 10 ether}(market);
        TestNode memory t = _node(34);
        t.operator = address(op);
        op.register(registry, _params(t, SIM, MEASUREMENT), MIN_NODE_STAKE + registry.registrationFee());
        _approveAll(t.enclaveId, t.evidenceDigest);
        bytes32 jobId = _post();
        op.claim(jobId, t.enclaveId, _termsFor(jobId), CLAIM_BOND);
        uint64 expiresAt = market.getJob(jobId).claimExpiresAt;
        vm.warp(expiresAt - 1); // about to lapse: release and re-claim for a fresh claim timeout
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, jobId, t.enclaveId, uint8(7)));
        op.releaseAndClaim(jobId, t.enclaveId, _termsFor(jobId), CLAIM_BOND);
        vm.assertEq(market.getJob(jobId).claimExpiresAt, expiresAt, "the claim was not renewed");
        vm.warp(expiresAt + 1);
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), 3 ether, "the escrow back after one claim timeout");
        _assertBooks();
    }

    /// Decision 1768: a node whose claim lapsed cannot claim the job again, neither at once (ahead
    /// of the requester's reclaim) nor after another node's claim superseded its own and lapsed
    /// too; a node that never held it may still claim, and the requester's reclaim right after
    /// that claim's lapse succeeds.
    function test_lapse_neverReopensTheJobToItsClaimant() public {
        TestNode memory nodeC = _activeNode(32, SIM, MEASUREMENT);
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, jobId, nodeA.enclaveId, uint8(7))
        );
        _claim(jobId, nodeA);
        _claim(jobId, nodeB); // supersedes nodeA's lapsed claim
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, jobId, nodeA.enclaveId, uint8(7))
        );
        _claim(jobId, nodeA);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, jobId, nodeB.enclaveId, uint8(7))
        );
        _claim(jobId, nodeB);
        _claim(jobId, nodeC);
        vm.assertEq(market.getJob(jobId).enclaveId, nodeC.enclaveId, "a node that never held it may");
        vm.warp(block.timestamp + 1 hours + 1);
        vm.prank(requester);
        market.reclaim(jobId); // at the first block after nodeC's lapse
        vm.assertEq(market.withdrawable(requester), 3 ether, "the escrow back after the lapse");
        vm.assertEq(market.withdrawable(owner), 3 * CLAIM_BOND, "the lapsed bonds to the treasury");
        _assertBooks();
    }

    /// Decision 1768: a job bound to one Enclave ID (as the SDK posts it) is claimable by nobody
    /// once that node's claim lapsed or was released: the requester reclaims it after one claim
    /// timeout, whatever the node does.
    function test_boundJob_lapseOrReleaseLeavesItToTheRequester() public {
        IFirnJobMarket.JobRequest memory r = _request(uint8(1) << SIM);
        r.enclaveIds = new bytes32[](1);
        r.enclaveIds[0] = nodeA.enclaveId;
        vm.startPrank(requester);
        bytes32 lapsed = _remember(market.postJob{value: 3 ether}(r), r);
        bytes32 released = _remember(market.postJob{value: 3 ether}(r), r);
        vm.stopPrank();
        _claim(lapsed, nodeA);
        _claim(released, nodeA);
        vm.prank(nodeA.operator);
        market.releaseJob(released);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, released, nodeA.enclaveId, uint8(7))
        );
        _claim(released, nodeA);
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, lapsed, nodeA.enclaveId, uint8(7))
        );
        _claim(lapsed, nodeA);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, lapsed, nodeB.enclaveId, uint8(6))
        );
        _claim(lapsed, nodeB);
        vm.startPrank(requester);
        market.reclaim(lapsed);
        market.reclaim(released);
        vm.stopPrank();
        vm.assertEq(market.withdrawable(requester), 6 ether, "both escrows back");
        _assertBooks();
    }

    function test_submitProof_successRecordsFacts() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        uint64 endsAt = uint64(block.timestamp) + CHALLENGE_WINDOW;
        // The claim locked the stake until its expiry plus the window and the finalize grace
        // (decision 1776): a proof's window ends at least a grace earlier.
        vm.assertEq(
            uint256(registry.getNode(nodeA.enclaveId).lockedUntil),
            uint256(block.timestamp + 1 hours + CHALLENGE_WINDOW + market.FINALIZE_GRACE()),
            "stake locked at claim"
        );
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ProofSubmitted(
            jobId, nodeA.enclaveId, p.outputCommitment, 7, nodeA.enclaveAddress, p.startedAt, p.finishedAt
        );
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);
        IFirnJobMarket.Job memory j = market.getJob(jobId);
        vm.assertEq(uint256(j.status), uint256(IFirnJobMarket.JobStatus.Proved), "proved");
        IFirnJobMarket.ProofFacts memory f = IFirnJobMarket.ProofFacts({
            signer: nodeA.enclaveAddress,
            startedAt: p.startedAt,
            finishedAt: p.finishedAt,
            provedBlock: uint64(block.number),
            challengeEndsAt: endsAt,
            workUnits: 7,
            snapshotId: verifierSet.currentSnapshot()
        });
        vm.assertEq(j.factsHash, keccak256(abi.encode(f)), "signer, times, block, window, units, snapshot recorded");
        vm.assertLe(endsAt, registry.getNode(nodeA.enclaveId).lockedUntil, "window inside the lock");
    }

    function test_submitProof_wrongSigner() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes32 digest = market.hashWorkProof(p);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.WrongSigner.selector, nodeA.enclaveId, nodeA.enclaveAddress, nodeB.enclaveAddress
            )
        );
        vm.prank(nodeA.operator);
        _submitTo(market, p, _sign(nodeB.enclaveKey, digest));
    }

    function test_submitProof_replayOnAnotherJob() public {
        bytes32 job1 = _post();
        bytes32 job2 = _post();
        _claim(job1, nodeA);
        _claim(job2, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(job1, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        // The job is the proof's signed jobId: rewriting it to the other job breaks the signature.
        p.jobId = job2;
        address recovered = _recover(market.hashWorkProof(p), sig);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.WrongSigner.selector, nodeA.enclaveId, nodeA.enclaveAddress, recovered
            )
        );
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);
    }

    function test_submitProof_otherChainDomain() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes32 foreignDomain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("firn"),
                keccak256("1"),
                block.chainid + 1,
                address(market)
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(
                market.WORK_PROOF_TYPEHASH(),
                p.jobId,
                p.enclaveId,
                p.measurement,
                p.workloadHash,
                p.inputCommitment,
                p.outputCommitment,
                p.startedAt,
                p.finishedAt,
                p.workUnits
            )
        );
        bytes32 foreignDigest = keccak256(abi.encodePacked("\x19\x01", foreignDomain, structHash));
        bytes memory sig = _sign(nodeA.enclaveKey, foreignDigest);
        address recovered = _recover(market.hashWorkProof(p), sig);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.WrongSigner.selector, nodeA.enclaveId, nodeA.enclaveAddress, recovered
            )
        );
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);
        // Sanity: the same struct under this chain's domain is what the contract hashes.
        bytes32 localDomain = market.DOMAIN_SEPARATOR();
        vm.assertEq(keccak256(abi.encodePacked("\x19\x01", localDomain, structHash)), market.hashWorkProof(p), "v4");
    }

    function test_submitProof_malleableSignature() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(nodeA.enclaveKey, market.hashWorkProof(p));
        bytes memory twin = abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        // ecrecover alone would accept the twin; the contract must not.
        vm.assertEq(
            ecrecover(market.hashWorkProof(p), v == 27 ? 28 : 27, r, bytes32(N - uint256(s))),
            nodeA.enclaveAddress,
            "twin"
        );
        // In EIP-2098's (r, vs) the twin's s has its top bit set, which is the parity flag: the
        // contract reads another s and v, recovers another address or none, and refuses.
        vm.expectRevert();
        vm.prank(nodeA.operator);
        _submitTo(market, p, twin);
        // A high s below 2^255 (expressible in vs) is refused as such by the recovery.
        bytes32 highS = bytes32(uint256(0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1));
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidSignature.selector, uint8(3)));
        vm.prank(nodeA.operator);
        market.submitProof(p, r, highS);
        // The honest signature in compact form is accepted.
        vm.prank(nodeA.operator);
        _submitTo(market, p, abi.encodePacked(r, s, v));
        vm.assertEq(_status(jobId), uint256(IFirnJobMarket.JobStatus.Proved), "proved");
    }

    function test_submitProof_lateMismatchAndBadTimes() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        p.measurement = MEASUREMENT_B;
        bytes memory badSig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.ProofMismatch.selector, jobId, "measurement, workloadHash or inputCommitment"
            )
        );
        vm.prank(nodeA.operator);
        _submitTo(market, p, badSig);

        p = _proof(jobId, nodeA);
        p.startedAt = p.finishedAt + 1;
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidProofTimes.selector, p.startedAt, p.finishedAt));
        vm.prank(nodeA.operator);
        _submitTo(market, p, badSig);
        p = _proof(jobId, nodeA);
        p.finishedAt = market.getJob(jobId).deadline + market.MAX_CLOCK_SKEW() + 1;
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidProofTimes.selector, p.startedAt, p.finishedAt));
        vm.prank(nodeA.operator);
        _submitTo(market, p, badSig);

        p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        uint64 expires = uint64(block.timestamp + 1 hours);
        vm.warp(expires + 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.ClaimExpired.selector, jobId, expires, expires + 1));
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);

        uint64 deadline = market.getJob(jobId).deadline;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.DeadlinePassed.selector, jobId, deadline, deadline + 1));
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);
    }

    function test_finalize_creditsAfterWindowMinusFee() public {
        market.setParameters(CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, 500, FALSE_DISPUTE_SLASH);
        bytes32 jobId = _proved();
        uint64 endsAt = _factsFor(jobId).challengeEndsAt;
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.ChallengeWindowOpen.selector, jobId, endsAt, uint64(block.timestamp))
        );
        market.finalize(jobId, _factsFor(jobId));
        vm.warp(endsAt);
        uint256 fee = 3 ether * 500 / 10_000;
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobFinalized(jobId, nodeA.enclaveId, nodeA.operator, 3 ether - fee, fee);
        vm.prank(stranger);
        market.finalize(jobId, _factsFor(jobId));
        vm.assertEq(market.withdrawable(nodeA.operator), 3 ether - fee + CLAIM_BOND, "payout and bond credited");
        vm.assertEq(address(rewards).balance, fee, "fee funds the pool");
        uint256 before = nodeA.operator.balance;
        vm.expectEmit(address(market));
        emit IFirnJobMarket.Withdrawn(nodeA.operator, 3 ether - fee + CLAIM_BOND);
        vm.prank(nodeA.operator);
        market.withdraw();
        vm.assertEq(nodeA.operator.balance, before + 3 ether - fee + CLAIM_BOND, "pulled");
        vm.assertEq(address(market).balance, 0, "nothing left");
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NothingToWithdraw.selector, nodeA.operator));
        vm.prank(nodeA.operator);
        market.withdraw();
    }

    /// @dev Post a job paying for `maxWorkUnits` and prove `workUnits` of them.
    function _provedWork(uint64 maxWorkUnits, uint64 workUnits) internal returns (bytes32 jobId) {
        IFirnJobMarket.JobRequest memory r = _request(uint8(1) << SIM);
        r.maxWorkUnits = maxWorkUnits;
        vm.prank(requester);
        jobId = _remember(market.postJob{value: 3 ether}(r), r);
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        p.workUnits = workUnits;
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);
        _rememberProof(jobId, p, nodeA.enclaveAddress);
        vm.warp(_factsFor(jobId).challengeEndsAt);
    }

    function test_finalize_paysInProportionToWork() public {
        market.setParameters(CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, 500, FALSE_DISPUTE_SLASH);
        // 1 request served of the 1,000 paid for: the operator earns 1/1000 of the escrow.
        bytes32 jobId = _provedWork(1000, 1);
        vm.assertEq(market.getJob(jobId).maxWorkUnits, 1000, "budget recorded");
        uint256 earned = 3 ether / 1000;
        uint256 fee = earned * 500 / 10_000;
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobFinalized(jobId, nodeA.enclaveId, nodeA.operator, earned - fee, fee);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.UnusedEscrowReturned(jobId, requester, 3 ether - earned);
        vm.prank(stranger);
        market.finalize(jobId, _factsFor(jobId));
        vm.assertEq(market.withdrawable(nodeA.operator), earned - fee + CLAIM_BOND, "work paid, bond back");
        vm.assertEq(market.withdrawable(requester), 3 ether - earned, "unused escrow is the requester's");
        vm.assertEq(address(rewards).balance, fee, "fee only on what was earned");
        vm.assertEq(market.totalEscrow(), 0, "escrow released");
        vm.assertEq(
            address(market).balance, market.totalWithdrawable() + market.totalBonds(), "nothing created or lost"
        );
    }

    function test_finalize_zeroWorkUnitsPaysNothing() public {
        // A host that claims and closes at once (0 requests) is paid nothing for the escrow.
        bytes32 jobId = _provedWork(1000, 0);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobFinalized(jobId, nodeA.enclaveId, nodeA.operator, 0, 0);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.UnusedEscrowReturned(jobId, requester, 3 ether);
        market.finalize(jobId, _factsFor(jobId));
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND, "only its own bond back");
        vm.assertEq(market.withdrawable(requester), 3 ether, "whole escrow back");
    }

    function test_finalize_workBeyondBudgetPaysWholeEscrowOnly() public {
        bytes32 jobId = _provedWork(1000, 5000);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobFinalized(jobId, nodeA.enclaveId, nodeA.operator, 3 ether, 0);
        market.finalize(jobId, _factsFor(jobId));
        vm.assertEq(market.withdrawable(nodeA.operator), 3 ether + CLAIM_BOND, "capped at the escrow");
        vm.assertEq(market.withdrawable(requester), 0, "nothing unused");
    }

    function test_finalize_noBudgetIsAllOrNothing() public {
        bytes32 jobId = _provedWork(0, 0);
        market.finalize(jobId, _factsFor(jobId));
        vm.assertEq(market.withdrawable(nodeA.operator), 3 ether + CLAIM_BOND, "maxWorkUnits 0: whole escrow");
        vm.assertEq(market.withdrawable(requester), 0, "nothing returned");
    }

    function test_dispute_findingQuorumSlashesAndRefunds() public {
        bytes32 jobId = _proved();
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotVerifier.selector, stranger));
        vm.prank(stranger);
        market.dispute(jobId, 17, _factsFor(jobId));

        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobDisputed(jobId, verifierList[0], 17, MIN_VERIFIER_STAKE, MIN_VERIFIER_STAKE);
        vm.prank(verifierList[0]);
        market.dispute(jobId, 17, _factsFor(jobId));
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.AlreadyDisputed.selector, jobId, verifierList[0]));
        vm.prank(verifierList[0]);
        market.dispute(jobId, 17, _factsFor(jobId));
        vm.prank(verifierList[1]);
        market.dispute(jobId, 16, _factsFor(jobId));
        vm.assertEq(_status(jobId), uint256(IFirnJobMarket.JobStatus.Proved), "2/4 does not slash");

        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeSlashed(nodeA.enclaveId, SLASH_AMOUNT, address(market), jobId);
        uint256 treasuryBefore = market.withdrawable(owner);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobSlashed(jobId, nodeA.enclaveId, SLASH_AMOUNT, 3 ether);
        vm.prank(verifierList[2]);
        market.dispute(jobId, 17, _factsFor(jobId));
        vm.assertFalse(registry.isActive(nodeA.enclaveId), "node no longer active");
        // The slashed stake and the bond go to the treasury, never to the requester (decision 1856).
        vm.assertEq(
            market.withdrawable(owner) - treasuryBefore, SLASH_AMOUNT + CLAIM_BOND, "slash and bond to the treasury"
        );

        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobReclaimed(jobId, requester, 3 ether);
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), 3 ether, "the escrow refundable");
        _assertBooks();
    }

    /// @dev 31 % of the verifier stake in nine accounts disputes an honest proof with findings
    /// (a count threshold of 2 would slash at the second vote). The node is not slashed and is paid.
    function test_sybil_minorityCannotSlash() public {
        verifierSet.setParameters(0.1 ether, UNBONDING);
        address[] memory sybils = new address[](9);
        for (uint256 i = 0; i < 9; ++i) {
            sybils[i] = address(uint160(0x5b11 + i));
            _joinVerifier(sybils[i], 0.1 ether);
        }
        bytes32 jobId = _proved();
        for (uint256 i = 0; i < 9; ++i) {
            vm.prank(sybils[i]);
            market.dispute(jobId, 17, _factsFor(jobId));
        }
        vm.assertEq(_status(jobId), uint256(IFirnJobMarket.JobStatus.Proved), "not slashed");
        vm.assertEq(market.getJob(jobId).disputeStake, 0.9 ether, "weight = stake");

        // Stake bought after the proof has no weight on it.
        address late = address(0x1a7e);
        _joinVerifier(late, 50 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NotEligibleVoter.selector, jobId, late, _factsFor(jobId).snapshotId)
        );
        vm.prank(late);
        market.dispute(jobId, 17, _factsFor(jobId));

        vm.prank(verifierList[0]);
        verifierSet.requestLeave(); // 0.9 of the 2.4 ether left (decision 1720) is still far from 2/3
        vm.warp(_factsFor(jobId).challengeEndsAt);
        market.finalize(jobId, _factsFor(jobId));
        vm.assertEq(_status(jobId), uint256(IFirnJobMarket.JobStatus.Paid), "honest node paid");
        vm.assertEq(registry.getNode(nodeA.enclaveId).stake, MIN_NODE_STAKE, "stake intact");
    }

    /// @dev The proof was valid when submitted. Afterwards the node rotates its key, governance
    /// revokes its measurement and the node exits. A verifier that judges the state *now* would say
    /// "not signed by the registered enclave key": the contract judges the state recorded at
    /// submission, so the dispute is provably wrong and costs the disputer, not the node.
    function test_dispute_judgesStateAtSubmission() public {
        bytes32 jobId = _proved();
        uint256 provedBlock = block.number;
        address newKey = vm.addr(0xabc);
        vm.roll(block.number + 5);
        vm.prank(nodeA.operator);
        registry.rotateKeys(nodeA.enclaveId, newKey, keccak256("kem2"), keccak256("ev2"));
        _approveAll(nodeA.enclaveId, keccak256("ev2"));
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.prank(nodeA.operator);
        registry.requestExit(nodeA.enclaveId);
        vm.roll(block.number + 5);
        IFirnJobMarket.Job memory j = market.getJob(jobId);
        IFirnJobMarket.ProofFacts memory facts = _factsFor(jobId);
        vm.assertTrue(registry.getNode(nodeA.enclaveId).enclaveAddress != facts.signer, "today's key differs");
        vm.assertFalse(registry.isEligible(nodeA.enclaveId), "today the node is ineligible");
        vm.assertEq(uint256(facts.provedBlock), provedBlock, "proof block recorded");

        uint256 stakeBefore = verifierSet.getVerifier(verifierList[0]).stake;
        uint256 treasuryBefore = market.withdrawable(owner);
        uint256 poolBefore = address(rewards).balance;
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobDisputed(jobId, verifierList[0], 1, MIN_VERIFIER_STAKE, 0);
        vm.expectEmit(address(verifierSet));
        emit IFirnVerifierSet.VerifierSlashed(verifierList[0], FALSE_DISPUTE_SLASH, address(market), jobId);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.FalseDisputeSlashed(jobId, verifierList[0], 1, FALSE_DISPUTE_SLASH);
        vm.prank(verifierList[0]);
        market.dispute(jobId, 1, _factsFor(jobId));
        vm.assertEq(
            verifierSet.getVerifier(verifierList[0]).stake, stakeBefore - FALSE_DISPUTE_SLASH, "disputer slashed"
        );
        vm.assertEq(_status(jobId), uint256(IFirnJobMarket.JobStatus.Proved), "proof stands");

        // The times fact is judged on the recorded times too.
        vm.expectEmit(address(market));
        emit IFirnJobMarket.FalseDisputeSlashed(jobId, verifierList[1], 2, FALSE_DISPUTE_SLASH);
        vm.prank(verifierList[1]);
        market.dispute(jobId, 2, _factsFor(jobId));
        vm.assertEq(address(rewards).balance, poolBefore, "none of the slashed stake to the pool");

        vm.warp(facts.challengeEndsAt);
        market.finalize(jobId, _factsFor(jobId));
        vm.assertEq(_status(jobId), uint256(IFirnJobMarket.JobStatus.Paid), "paid");
        vm.assertEq(registry.getNode(nodeA.enclaveId).stake, MIN_NODE_STAKE, "node stake intact");
        // Decision 1671: the owner's treasury, never the stake-weighted pool.
        vm.assertEq(
            market.withdrawable(owner) - treasuryBefore, 2 * FALSE_DISPUTE_SLASH, "false disputes to the treasury"
        );
    }

    /// @dev The market keeps the submission facts as a hash. A verifier that passes other facts
    /// (a signer that was never the enclave key, so that reason 1 would "hold"; or times that break
    /// reason 2) is refused before anything is judged: the node is not slashed, nobody is.
    function test_dispute_refusesFactsOtherThanRecorded() public {
        bytes32 jobId = _proved();
        bytes32 recorded = market.getJob(jobId).factsHash;
        IFirnJobMarket.ProofFacts memory forged = _factsFor(jobId);
        forged.signer = stranger;
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.FactsMismatch.selector, jobId, recorded, keccak256(abi.encode(forged))
            )
        );
        vm.prank(verifierList[0]);
        market.dispute(jobId, 1, forged);
        forged = _factsFor(jobId);
        forged.startedAt = forged.finishedAt + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.FactsMismatch.selector, jobId, recorded, keccak256(abi.encode(forged))
            )
        );
        vm.prank(verifierList[0]);
        market.dispute(jobId, 2, forged);
        // A later challengeEndsAt cannot reopen a closed window for findings either.
        vm.warp(_factsFor(jobId).challengeEndsAt);
        forged = _factsFor(jobId);
        forged.challengeEndsAt += 1 days;
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.FactsMismatch.selector, jobId, recorded, keccak256(abi.encode(forged))
            )
        );
        vm.prank(verifierList[0]);
        market.dispute(jobId, 17, forged);
        vm.assertEq(registry.getNode(nodeA.enclaveId).stake, MIN_NODE_STAKE, "node stake intact");
        vm.assertEq(verifierSet.getVerifier(verifierList[0]).stake, MIN_VERIFIER_STAKE, "verifier stake intact");
    }

    /// @dev A finalizer that passes other facts (more work units than proved, to be paid more of a
    /// budgeted escrow; or an earlier window end, to be paid before verifiers could dispute) is refused.
    function test_finalize_refusesFactsOtherThanRecorded() public {
        bytes32 jobId = _provedWork(1000, 1);
        bytes32 recorded = market.getJob(jobId).factsHash;
        IFirnJobMarket.ProofFacts memory forged = _factsFor(jobId);
        forged.workUnits = 1000;
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.FactsMismatch.selector, jobId, recorded, keccak256(abi.encode(forged))
            )
        );
        market.finalize(jobId, forged);

        bytes32 early = _proved();
        recorded = market.getJob(early).factsHash;
        forged = _factsFor(early);
        forged.challengeEndsAt = uint64(block.timestamp);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.FactsMismatch.selector, early, recorded, keccak256(abi.encode(forged))
            )
        );
        market.finalize(early, forged);
        vm.assertEq(_status(early), uint256(IFirnJobMarket.JobStatus.Proved), "still in its window");
        market.finalize(jobId, _factsFor(jobId));
        vm.assertEq(market.withdrawable(requester), 3 ether - 3 ether / 1000, "paid for the proved unit only");
    }

    function test_dispute_invalidReasonAndAfterWindow() public {
        bytes32 jobId = _proved();
        for (uint16 code = 0; code < 16; ++code) {
            if (code == 1 || code == 2) continue;
            vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidDisputeReason.selector, code));
            vm.prank(verifierList[0]);
            market.dispute(jobId, code, _factsFor(jobId));
        }
        uint64 endsAt = _factsFor(jobId).challengeEndsAt;
        vm.warp(endsAt);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.ChallengeWindowClosed.selector, jobId, endsAt, endsAt));
        vm.prank(verifierList[0]);
        market.dispute(jobId, 17, _factsFor(jobId));
    }

    /// @dev Unbonding (1 hour) much shorter than the challenge window (1 day): the node exits right
    /// after its proof, and still cannot withdraw before the window closes; a dispute in the window
    /// still slashes it. Later parameter changes do not shorten the lock.
    function test_unbonding_waitsForChallengeWindows() public {
        registry.setParameters(MIN_NODE_STAKE, 1 hours, 0);
        bytes32 jobId = _proved();
        // Locked at claim until the claim's expiry plus the job's window, which covers the proof's window.
        uint64 endsAt = registry.getNode(nodeA.enclaveId).lockedUntil;
        vm.assertLe(_factsFor(jobId).challengeEndsAt, endsAt, "the proof's window is inside the lock");
        vm.prank(nodeA.operator);
        registry.requestExit(nodeA.enclaveId);
        market.setParameters(1, SLASH_AMOUNT, CLAIM_BOND, 0, FALSE_DISPUTE_SLASH);
        vm.warp(block.timestamp + 2 hours);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnRegistry.StillUnbonding.selector, nodeA.enclaveId, endsAt, uint64(block.timestamp)
            )
        );
        vm.prank(nodeA.operator);
        registry.withdrawStake(nodeA.enclaveId);

        // A second job on node B: exits, and at the end of the window it may leave.
        market.setParameters(CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, 0, FALSE_DISPUTE_SLASH);
        bytes32 second = _post();
        _claim(second, nodeB);
        _submit(second, nodeB);
        vm.prank(nodeB.operator);
        registry.requestExit(nodeB.enclaveId);

        // Node A's proof is disputed inside the window: the exiting node is slashed.
        for (uint256 i = 0; i < APPROVE_QUORUM; ++i) {
            vm.prank(verifierList[i]);
            market.dispute(jobId, 16, _factsFor(jobId));
        }
        vm.assertEq(registry.getNode(nodeA.enclaveId).stake, MIN_NODE_STAKE - SLASH_AMOUNT, "slashed while exiting");

        uint64 lockB = registry.getNode(nodeB.enclaveId).lockedUntil;
        vm.assertLe(_factsFor(second).challengeEndsAt, lockB, "window inside the lock");
        vm.warp(lockB - 1);
        vm.expectRevert();
        vm.prank(nodeB.operator);
        registry.withdrawStake(nodeB.enclaveId);
        vm.warp(lockB);
        vm.prank(nodeB.operator);
        registry.withdrawStake(nodeB.enclaveId);
        vm.assertEq(
            uint256(registry.getNode(nodeB.enclaveId).status), uint256(IFirnRegistry.NodeStatus.Exited), "exited"
        );
    }

    function test_submitProof_exitingNodeFinishesItsClaim() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.prank(nodeA.operator);
        registry.requestExit(nodeA.enclaveId);
        _submit(jobId, nodeA);
        vm.assertEq(_status(jobId), uint256(IFirnJobMarket.JobStatus.Proved), "proved while exiting");
        // But an exiting node takes no new job.
        bytes32 other = _post();
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NodeNotEligible.selector, other, nodeA.enclaveId, 1));
        _claim(other, nodeA);
    }

    /// @dev The emergency pause stops new jobs and claims only. Work in flight is proved,
    /// finalized and withdrawn; requesters reclaim and withdraw.
    function test_pause_keepsWithdrawalsOpen() public {
        bytes32 claimed = _post();
        _claim(claimed, nodeA);
        bytes32 proved = _post();
        _claim(proved, nodeB);
        _submit(proved, nodeB);
        bytes32 open = _post();

        address g = address(0x6A4D);
        market.setGuardian(g);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotGuardian.selector, stranger));
        vm.prank(stranger);
        market.pause();
        vm.expectEmit(address(market));
        emit Pausable.Paused(g);
        vm.prank(g);
        market.pause();

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(requester);
        market.postJob{value: 1 ether}(_request(uint8(1) << SIM));
        vm.expectRevert(Pausable.EnforcedPause.selector);
        _claim(open, nodeB);

        _submit(claimed, nodeA);
        vm.prank(verifierList[0]);
        market.dispute(proved, 17, _factsFor(proved));
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        market.finalize(proved, _factsFor(proved));
        market.finalize(claimed, _factsFor(claimed));
        vm.prank(requester);
        market.reclaim(open);
        uint256 a = nodeA.operator.balance;
        vm.prank(nodeA.operator);
        market.withdraw();
        vm.assertEq(nodeA.operator.balance, a + 3 ether + CLAIM_BOND, "node withdraws while paused");
        uint256 r = requester.balance;
        vm.prank(requester);
        market.withdraw();
        vm.assertEq(requester.balance, r + 3 ether, "requester withdraws while paused");

        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, g));
        vm.prank(g);
        market.unpause();
        market.unpause();
        _claim(_post(), nodeB);
        _assertBooks();
    }

    function test_reclaim_rules() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NotReclaimable.selector, jobId, IFirnJobMarket.JobStatus.Claimed)
        );
        vm.prank(requester);
        market.reclaim(jobId);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotRequester.selector, jobId, stranger));
        vm.prank(stranger);
        market.reclaim(jobId);

        // After a missed deadline the requester gets the escrow back; the bond goes to the treasury.
        vm.warp(market.getJob(jobId).deadline + 1);
        uint256 pool = rewards.totalReceived();
        uint256 treasury = market.withdrawable(owner);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobReclaimed(jobId, requester, 3 ether);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondForfeited(jobId, nodeA.enclaveId, owner, CLAIM_BOND);
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), 3 ether, "credited the escrow");
        vm.assertEq(market.withdrawable(owner), treasury + CLAIM_BOND, "bond to the treasury");
        vm.assertEq(rewards.totalReceived(), pool, "none to the pool");
        _assertBooks();
        vm.assertEq(_status(jobId), uint256(IFirnJobMarket.JobStatus.Reclaimed), "reclaimed");
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NotReclaimable.selector, jobId, IFirnJobMarket.JobStatus.Reclaimed)
        );
        vm.prank(requester);
        market.reclaim(jobId);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.UnknownJob.selector, bytes32(uint256(1))));
        market.reclaim(bytes32(uint256(1)));
    }

    function test_failJob_returnsBondThenReclaim() public {
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotClaimant.selector, jobId, stranger));
        vm.prank(stranger);
        market.failJob(jobId, "x");
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobFailed(jobId, nodeA.enclaveId, "bad input");
        vm.prank(nodeA.operator);
        market.failJob(jobId, "bad input");
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND, "bond returned");
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.totalEscrow(), 0, "no escrow left");
        _assertBooks();
    }

    function _postWith(uint64 deadline, uint64 claimTimeout) internal returns (bytes32 jobId) {
        IFirnJobMarket.JobRequest memory r = _request(uint8(1) << SIM);
        r.deadline = deadline;
        r.claimTimeout = claimTimeout;
        vm.prank(requester);
        jobId = _remember(market.postJob{value: 3 ether}(r), r);
    }

    /// Decision 1570: a claim timeout over MAX_CLAIM_TIMEOUT is refused only when the deadline is
    /// further away than that too; the lock a claim takes is then at most claimedAt + max + window.
    function test_postJob_claimTimeoutBoundedByMaxUnlessDeadlineIsNear() public {
        uint64 max = market.MAX_CLAIM_TIMEOUT();
        vm.assertEq(max, 7 days, "7 days");
        uint64 far = uint64(block.timestamp) + max + 1;
        IFirnJobMarket.JobRequest memory r = _request(uint8(1) << SIM);
        r.deadline = far;
        r.claimTimeout = max + 1;
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.ClaimTimeoutTooLong.selector, max + 1, far, max));
        vm.prank(requester);
        market.postJob{value: 1}(r);
        // Too large for storage is still TimeTooLarge, whatever the deadline.
        r.deadline = uint64(block.timestamp + 1 hours);
        r.claimTimeout = uint64(type(uint32).max) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.TimeTooLarge.selector, uint256(r.claimTimeout), type(uint32).max)
        );
        vm.prank(requester);
        market.postJob{value: 1}(r);
        // A long timeout under a deadline within the bound lapses at the deadline: accepted.
        _postWith(uint64(block.timestamp) + max, max * 10);
        // The bound itself under a far deadline: accepted, and the claim's lock is bounded by it.
        bytes32 jobId = _postWith(uint64(block.timestamp + 3650 days), max);
        _claim(jobId, nodeA);
        vm.assertEq(
            uint256(registry.getNode(nodeA.enclaveId).lockedUntil),
            block.timestamp + max + CHALLENGE_WINDOW + market.FINALIZE_GRACE(),
            "lock = claimedAt + max claim timeout + window + finalize grace"
        );
    }

    /// Decision 1571: failJob refunds the bond in proportion to the claim time left; the rest is
    /// credited to the owner (decision 1625, amended), announced as ClaimBondForfeited. Half the
    /// claim held costs half the bond.
    function test_failJob_refundShrinksWithTimeHeld() public {
        bytes32 jobId = _post(); // claim timeout 1 hour, deadline 1 day
        _claim(jobId, nodeA);
        vm.warp(block.timestamp + 30 minutes);
        uint256 pool = rewards.totalReceived();
        vm.expectEmit(address(market));
        emit IFirnJobMarket.JobFailed(jobId, nodeA.enclaveId, "E_CRASH");
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondForfeited(jobId, nodeA.enclaveId, owner, CLAIM_BOND / 2);
        vm.prank(nodeA.operator);
        market.failJob(jobId, "E_CRASH");
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND / 2, "half the bond back");
        vm.assertEq(market.withdrawable(owner), CLAIM_BOND / 2, "half to the treasury");
        vm.assertEq(rewards.totalReceived(), pool, "none to the pool");
        vm.assertEq(market.withdrawable(requester), 0, "none to the requester");
        vm.assertEq(market.totalBonds(), 0, "no bond held");
        _assertBooks();
    }

    /// The span is the claim's usable one: a deadline before the claim expiry ends it, so failing at
    /// the deadline refunds nothing, as letting the claim lapse would.
    function test_failJob_refundSpanEndsAtDeadline() public {
        bytes32 jobId = _postWith(uint64(block.timestamp + 2 hours), 6 hours);
        uint256 pool = rewards.totalReceived();
        _claim(jobId, nodeA);
        vm.warp(block.timestamp + 1 hours); // half of the 2 hours to the deadline
        vm.prank(nodeA.operator);
        market.failJob(jobId, "x");
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND / 2, "half of the span to the deadline");
        bytes32 late = _postWith(uint64(block.timestamp + 2 hours), 6 hours);
        _claim(late, nodeB);
        vm.warp(block.timestamp + 2 hours); // at the deadline: the claim still stands, for 0 s more
        vm.prank(nodeB.operator);
        market.failJob(late, "x");
        vm.assertEq(market.withdrawable(nodeB.operator), 0, "nothing back at the deadline");
        vm.assertEq(market.withdrawable(owner), CLAIM_BOND / 2 + CLAIM_BOND, "the treasury received the rest");
        vm.assertEq(rewards.totalReceived(), pool, "the pool received nothing");
        vm.assertEq(market.withdrawable(requester), 0, "none to the requester");
        _assertBooks();
    }

    /// Decision 1571 for any claim: the bond is split, never created or lost, the claimant's share
    /// is the time left over the usable span (so holding longer never pays more); the rest is the
    /// owner's (governance treasury), never the requester's nor the reward pool's (decision 1625).
    function testFuzz_failJob_splitsBondByTimeLeft(uint32 timeout, uint32 toDeadline, uint32 held) public {
        timeout = uint32(bound(timeout, 1, 7 days));
        toDeadline = uint32(bound(toDeadline, 1, 30 days));
        bytes32 jobId = _postWith(uint64(block.timestamp) + toDeadline, timeout);
        _claim(jobId, nodeA);
        uint256 span = timeout < toDeadline ? timeout : toDeadline;
        held = uint32(bound(held, 0, span));
        vm.warp(block.timestamp + held);
        uint256 reqBefore = market.withdrawable(requester);
        uint256 poolBefore = rewards.totalReceived();
        uint256 treasuryBefore = market.withdrawable(owner);
        vm.prank(nodeA.operator);
        market.failJob(jobId, "x");
        uint256 refund = market.withdrawable(nodeA.operator);
        vm.assertEq(refund, CLAIM_BOND * (span - held) / span, "refund = bond x time left / span");
        vm.assertEq(refund + market.withdrawable(owner) - treasuryBefore, CLAIM_BOND, "bond split, not lost");
        vm.assertEq(rewards.totalReceived(), poolBefore, "the pool gains nothing");
        vm.assertEq(market.withdrawable(requester), reqBefore, "the requester gains nothing");
        _assertBooks();
    }

    /// Decision 1625 without a reward pool: a forfeit goes to the owner (governance), never to the
    /// requester, on every path that forfeits (failJob's share, release, a lapse at reclaim), as it
    /// does with one.
    function test_forfeit_withoutPoolGoesToGovernance() public {
        registry.setRewardPool(address(0)); // allowed: the fixture's protocol fee is 0
        bytes32 failed = _post();
        _claim(failed, nodeA);
        vm.warp(block.timestamp + 30 minutes);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondForfeited(failed, nodeA.enclaveId, owner, CLAIM_BOND / 2);
        vm.prank(nodeA.operator);
        market.failJob(failed, "E_TIMEOUT");
        bytes32 released = _post();
        _claim(released, nodeB);
        vm.prank(nodeB.operator);
        market.releaseJob(released);
        _claim(released, nodeA);
        vm.warp(block.timestamp + 1 hours + 1);
        vm.startPrank(requester);
        market.reclaim(failed);
        market.reclaim(released);
        vm.stopPrank();
        vm.assertEq(market.withdrawable(owner), CLAIM_BOND / 2 + 2 * CLAIM_BOND, "forfeits to governance");
        vm.assertEq(market.withdrawable(requester), 6 ether, "the requester: its two escrows, no bond");
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND / 2, "the claimant: its time-left share");
        _assertBooks();
    }

    /// Decision 1625, amended: the reward pool pays by stake, so a forfeit paid into it would come
    /// back in part to a requester that also runs a node (AttackCircularPoolFarm). No forfeit path
    /// calls the pool: a pool that counts every call and every wei sees none from a failJob share, a
    /// release, a lapse superseded by a claim or a lapse ended by reclaim; the owner is credited all.
    function test_forfeit_neverCallsThePool() public {
        TestNode memory nodeC = _activeNode(33, SIM, MEASUREMENT); // its registration fee funds the pool
        CountingPool counting = new CountingPool(registry);
        registry.setRewardPool(address(counting));
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.warp(block.timestamp + 30 minutes);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondForfeited(jobId, nodeA.enclaveId, owner, CLAIM_BOND / 2);
        vm.prank(nodeA.operator);
        market.failJob(jobId, "E_TIMEOUT");
        vm.prank(requester);
        market.reclaim(jobId);
        bytes32 lapsed = _post();
        _claim(lapsed, nodeB);
        vm.warp(block.timestamp + 1 hours + 1);
        _claim(lapsed, nodeA); // supersedes nodeB's lapsed claim
        vm.prank(nodeA.operator);
        market.releaseJob(lapsed);
        _claim(lapsed, nodeC); // neither nodeA nor nodeB may (1768)
        vm.warp(block.timestamp + 1 hours + 1);
        vm.prank(requester);
        market.reclaim(lapsed); // ends the third node's lapsed claim
        vm.assertEq(counting.calls(), 0, "the pool was never called");
        vm.assertEq(address(counting).balance, 0, "the pool took nothing");
        vm.assertEq(market.withdrawable(owner), CLAIM_BOND / 2 + 3 * CLAIM_BOND, "forfeits to governance");
        vm.assertEq(market.withdrawable(requester), 6 ether, "escrows only");
        _assertBooks();
    }

    /// The treasury's credit is governance's to use by a timelocked proposal (decision 1625,
    /// amended): with the market owned by FirnGovernance, nobody but the timelock can pull it, and
    /// one batch executed after the delay withdraws it and funds the reward pool with it.
    function test_forfeit_treasuryFundsThePoolOnlyByTimelockedProposal() public {
        uint256 delay = 2 days;
        address proposer = address(0x9909);
        address[] memory proposers = new address[](1);
        proposers[0] = proposer;
        address[] memory executors = new address[](1);
        executors[0] = address(0);
        FirnGovernance timelock = new FirnGovernance(delay, proposers, executors, address(0));
        market.transferOwnership(address(timelock));
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        vm.prank(nodeA.operator);
        market.releaseJob(jobId);
        vm.assertEq(market.withdrawable(address(timelock)), CLAIM_BOND, "the new owner is credited");
        vm.assertEq(market.withdrawable(owner), 0, "the former owner is not");
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NothingToWithdraw.selector, nodeB.operator));
        vm.prank(nodeB.operator);
        market.withdraw();

        address[] memory targets = new address[](2);
        targets[0] = address(market);
        targets[1] = address(rewards);
        uint256[] memory values = new uint256[](2);
        values[1] = CLAIM_BOND;
        bytes[] memory data = new bytes[](2);
        data[0] = abi.encodeCall(IFirnJobMarket.withdraw, ());
        data[1] = abi.encodeCall(IFirnRewards.fund, ());
        vm.prank(proposer);
        timelock.scheduleBatch(targets, values, data, bytes32(0), bytes32(0), delay);
        vm.expectRevert();
        timelock.executeBatch(targets, values, data, bytes32(0), bytes32(0));
        uint256 pool = rewards.totalReceived();
        vm.warp(block.timestamp + delay);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.PoolFunded(address(timelock), CLAIM_BOND);
        timelock.executeBatch(targets, values, data, bytes32(0), bytes32(0));
        vm.assertEq(rewards.totalReceived(), pool + CLAIM_BOND, "funded by governance's decision");
        vm.assertEq(market.withdrawable(address(timelock)), 0, "credit pulled");
        _assertBooks();
    }

    function test_setParametersGuardianAndPool() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        market.setParameters(1, 1, 1, 1, 1);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidProtocolFee.selector, uint16(1001), uint16(1000)));
        market.setParameters(1, 1, 1, 1001, 1);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ParametersUpdated(2 days, 1 ether, 0.2 ether, 100, 0.3 ether);
        market.setParameters(2 days, 1 ether, 0.2 ether, 100, 0.3 ether);
        vm.assertEq(uint256(market.challengeWindow()), 2 days, "window");
        vm.assertEq(market.slashAmount(), 1 ether, "slash");
        vm.assertEq(market.claimBond(), 0.2 ether, "bond");
        vm.assertEq(uint256(market.protocolFeeBps()), 100, "fee");
        vm.assertEq(market.falseDisputeSlash(), 0.3 ether, "false dispute slash");
        // The market has no pool of its own: it reads the registry's (decision 1756).
        vm.assertEq(market.rewardPool(), address(rewards), "the registry's pool");
        market.setParameters(2 days, 1 ether, 0.2 ether, 0, 0.3 ether);
        registry.setRewardPool(address(0));
        vm.assertEq(market.rewardPool(), address(0), "follows the registry");
        vm.expectRevert(IFirnJobMarket.RewardPoolNotSet.selector);
        market.setParameters(2 days, 1 ether, 0.2 ether, 1, 0.3 ether);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.GuardianSet(address(0), stranger);
        market.setGuardian(stranger);
        vm.assertEq(market.guardian(), stranger, "guardian");

        vm.deal(stranger, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.UnexpectedPayment.selector, stranger));
        vm.prank(stranger);
        (bool ok,) = address(market).call{value: 1}("");
        ok;
    }

    /// @dev setParameters runs in FirnJobMarketAdmin (decision 1750): its bounds still revert with the
    /// market's errors, in the market's order, and a refused change writes nothing.
    function test_setParameters_boundsAndTheirOrder() public {
        uint256 tooBig128 = uint256(type(uint128).max) + 1;
        uint256 tooBig96 = uint256(type(uint96).max) + 1;
        // The fee bound comes first, then the window, then each amount in field order.
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.InvalidProtocolFee.selector, uint16(1001), uint16(1000)));
        market.setParameters(type(uint64).max, tooBig128, tooBig96, 1001, tooBig128);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.TimeTooLarge.selector, uint256(type(uint64).max), type(uint32).max)
        );
        market.setParameters(type(uint64).max, tooBig128, tooBig96, 0, tooBig128);
        vm.expectRevert(abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 128, tooBig128));
        market.setParameters(1 days, tooBig128, tooBig96, 0, tooBig128);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.AmountTooLarge.selector, tooBig96, type(uint96).max));
        market.setParameters(1 days, 1 ether, tooBig96, 0, tooBig128);
        vm.expectRevert(abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 128, tooBig128));
        market.setParameters(1 days, 1 ether, 0.1 ether, 0, tooBig128);
        vm.assertEq(uint256(market.challengeWindow()), CHALLENGE_WINDOW, "window kept");
        vm.assertEq(market.slashAmount(), SLASH_AMOUNT, "slash kept");
        vm.assertEq(market.claimBond(), CLAIM_BOND, "bond kept");
        vm.assertEq(market.falseDisputeSlash(), FALSE_DISPUTE_SLASH, "false dispute slash kept");
        // The largest values that fit are taken.
        market.setParameters(type(uint32).max, type(uint128).max, type(uint96).max, 1000, type(uint128).max);
        vm.assertEq(uint256(market.challengeWindow()), type(uint32).max, "window");
        vm.assertEq(market.slashAmount(), type(uint128).max, "slash");
        vm.assertEq(market.claimBond(), type(uint96).max, "bond");
        vm.assertEq(uint256(market.protocolFeeBps()), 1000, "fee");
        vm.assertEq(market.falseDisputeSlash(), type(uint128).max, "false dispute slash");
    }

    /// @dev eip712Domain answers with literals (decision 1750); they must describe the very domain
    /// the market signs under, or a wallet following ERC-5267 would build another digest.
    function test_eip712Domain_describesTheDomainSeparator() public view {
        (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        ) = market.eip712Domain();
        vm.assertEq(uint256(uint8(fields)), 0x0f, "fields: name, version, chainId, verifyingContract");
        vm.assertEq(name, "firn", "name");
        vm.assertEq(version, "1", "version");
        vm.assertEq(chainId, block.chainid, "chainId");
        vm.assertEq(verifyingContract, address(market), "verifyingContract");
        vm.assertEq(salt, bytes32(0), "salt");
        vm.assertEq(extensions.length, 0, "extensions");
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes(name)),
                keccak256(bytes(version)),
                chainId,
                verifyingContract
            )
        );
        vm.assertEq(domain, market.DOMAIN_SEPARATOR(), "the domain separator the market signs under");
    }

    /// @dev Without a reward pool too, a false disputer's stake goes to the owner's treasury
    /// (decision 1671), not to the claimant, which a colluding verifier could otherwise pay.
    function test_falseDispute_withoutPoolCreditsTheTreasury() public {
        FirnJobMarket bare = new FirnJobMarket(
            owner, registry, verifierSet, CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, FALSE_DISPUTE_SLASH
        );
        _installSlasher(address(bare));
        vm.prank(requester);
        bytes32 jobId = _remember(bare.postJob{value: 1 ether}(_request(uint8(1) << SIM)), _request(uint8(1) << SIM));
        vm.prank(nodeA.operator);
        bare.claimJob{value: CLAIM_BOND}(jobId, nodeA.enclaveId, _termsFor(jobId));
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, bare.hashWorkProof(p));
        vm.prank(nodeA.operator);
        _submitTo(bare, p, sig);
        _rememberProofOn(bare, jobId, p, nodeA.enclaveAddress);
        vm.prank(verifierList[0]);
        bare.dispute(jobId, 1, _factsFor(jobId));
        vm.assertEq(bare.withdrawable(owner), FALSE_DISPUTE_SLASH, "the owner's treasury credited");
        vm.assertEq(bare.withdrawable(nodeA.operator), 0, "the claimant is not paid by the disputer");
    }

    /// @dev Re-entering withdraw() from the payout cannot pay twice: the whole withdrawal
    /// reverts, the credit stays, and a plain withdrawal later pays exactly once.
    function test_withdraw_reentrancyPaysOnce() public {
        ReenteringRequester attacker = new ReenteringRequester{value: 5 ether}(market);
        bytes32 a = attacker.post(_request(uint8(1) << SIM), 2 ether);
        bytes32 b = attacker.post(_request(uint8(1) << SIM), 2 ether);
        attacker.reclaim(a);
        attacker.reclaim(b);
        vm.assertEq(market.withdrawable(address(attacker)), 4 ether, "credited");
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.TransferFailed.selector, address(attacker), 4 ether));
        attacker.withdraw();
        vm.assertEq(market.withdrawable(address(attacker)), 4 ether, "credit intact");
        attacker.setReenter(false);
        attacker.withdraw();
        vm.assertEq(attacker.received(), 4 ether, "paid once");
        vm.assertEq(address(market).balance, 0, "nothing left, nothing extra taken");
    }

    /// @dev A verifier slashed to nothing keeps its seat but has no vote weight.
    function test_slashedToZeroVerifierHasNoWeight() public {
        market.setParameters(CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, 0, 10 ether);
        bytes32 jobId = _proved();
        vm.prank(verifierList[0]);
        market.dispute(jobId, 1, _factsFor(jobId)); // provably wrong: loses its whole stake
        vm.assertEq(verifierSet.getVerifier(verifierList[0]).stake, 0, "stake gone");
        vm.assertFalse(verifierSet.isVerifier(verifierList[0]), "deactivated by the slash");
        bytes32 next = _proved();
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotVerifier.selector, verifierList[0]));
        vm.prank(verifierList[0]);
        market.dispute(next, 17, _factsFor(next));
    }

    function testFuzz_submitTiming(uint256 wait) public {
        wait = bound(wait, 0, 2 hours);
        bytes32 jobId = _post();
        _claim(jobId, nodeA);
        IFirnJobMarket.WorkProof memory p = _proof(jobId, nodeA);
        bytes memory sig = _sign(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.warp(block.timestamp + wait);
        if (wait > 1 hours) vm.expectRevert();
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);
    }

    function testFuzz_escrowAccounting(uint96 a, uint96 b, bool claimIt) public {
        uint256 x = bound(a, 1, 10 ether);
        uint256 y = bound(b, 1, 10 ether);
        vm.startPrank(requester);
        bytes32 j1 = _remember(market.postJob{value: x}(_request(2)), _request(2));
        bytes32 j2 = _remember(market.postJob{value: y}(_request(2)), _request(2));
        market.reclaim(j1);
        vm.stopPrank();
        if (claimIt) _claim(j2, nodeA);
        vm.assertEq(market.totalEscrow(), y, "escrow");
        vm.assertEq(market.totalBonds(), claimIt ? CLAIM_BOND : 0, "bonds");
        _assertBooks();
    }

    function _recover(bytes32 digest, bytes memory sig) internal pure returns (address) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        return ecrecover(digest, v, r, s);
    }
}

/// @dev A reward pool that accepts every payment and counts every call that reaches it.
contract CountingPool is BoundPool {
    constructor(IFirnRegistry registry_) BoundPool(registry_) {}

    uint256 public calls;

    function fund() external payable {
        calls++;
    }

    fallback() external payable {
        calls++;
    }
}
