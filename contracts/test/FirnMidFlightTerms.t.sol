// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {FirnJobMarket} from "../src/FirnJobMarket.sol";
import {FirnRegistry} from "../src/FirnRegistry.sol";
import {FirnRewards} from "../src/FirnRewards.sol";
import {FirnVerifierSet} from "../src/FirnVerifierSet.sol";
import {IFirnJobMarket} from "../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../src/interfaces/IFirnRegistry.sol";
import {IFirnRewards} from "../src/interfaces/IFirnRewards.sol";
import {BoundPool} from "./utils/BoundPool.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @dev A fee recipient whose fund() reverts.
contract RevertingPool is BoundPool {
    constructor(IFirnRegistry registry_) BoundPool(registry_) {}

    function fund() external payable {
        revert("closed");
    }
}

/// @dev A fee recipient whose fund() burns every gas unit it is given.
contract GasBurningPool is BoundPool {
    constructor(IFirnRegistry registry_) BoundPool(registry_) {}

    function fund() external payable {
        while (true) {}
    }
}

/// @notice Decisions 1700-1703: a job settles on the terms of its claim, a market migration keeps
/// in-flight proofs slashable, no reward pool can block finalize, a claimant made ineligible by
/// governance gets its bond back, and ownership cannot be renounced.
contract FirnMidFlightTermsTest is FirnFixture {
    address internal requester = address(0xCAFE);
    TestNode internal nodeA;

    function setUp() public override {
        super.setUp();
        vm.deal(requester, 100 ether);
        nodeA = _activeNode(1, SIM, MEASUREMENT);
    }

    function _post(uint256 escrow, uint64 claimTimeout) internal returns (bytes32 jobId) {
        IFirnJobMarket.JobRequest memory r;
        r.teeTypeMask = uint8(1) << SIM;
        r.allowedMeasurements = new bytes32[](0);
        r.enclaveIds = new bytes32[](0);
        r.workloadHash = keccak256("model");
        r.inputCommitment = keccak256("inputs");
        r.deadline = uint64(block.timestamp + 2 days);
        r.claimTimeout = claimTimeout;
        vm.prank(requester);
        jobId = _remember(market.postJob{value: escrow}(r), r);
    }

    function _claim(bytes32 jobId) internal {
        uint256 bond = market.claimBond();
        vm.prank(nodeA.operator);
        market.claimJob{value: bond}(jobId, nodeA.enclaveId, _termsFor(jobId));
    }

    function _submit(bytes32 jobId) internal {
        IFirnJobMarket.WorkProof memory p = IFirnJobMarket.WorkProof({
            jobId: jobId,
            enclaveId: nodeA.enclaveId,
            measurement: MEASUREMENT,
            workloadHash: keccak256("model"),
            inputCommitment: keccak256("inputs"),
            outputCommitment: keccak256("out"),
            startedAt: uint64(block.timestamp),
            finishedAt: uint64(block.timestamp),
            workUnits: 1
        });
        bytes memory sig = _sig(nodeA.enclaveKey, market.hashWorkProof(p));
        vm.prank(nodeA.operator);
        _submitTo(market, p, sig);
        _rememberProof(jobId, p, nodeA.enclaveAddress);
    }

    function _setFee(uint16 feeBps, uint256 slashAmount_) internal {
        market.setParameters(CHALLENGE_WINDOW, slashAmount_, CLAIM_BOND, feeBps, FALSE_DISPUTE_SLASH);
    }

    function _concludeFinding(bytes32 jobId) internal {
        IFirnJobMarket.ProofFacts memory facts = _factsFor(jobId);
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(verifierList[i]);
            market.dispute(jobId, 17, facts);
        }
    }

    // ------------------------------------------------------------ 1700 settlement terms

    /// @notice A claim made after a fee change settles on the new fee; one made before on the old.
    function test_feeOfEachJobIsTheOneInForceAtItsClaim() public {
        _setFee(100, SLASH_AMOUNT);
        bytes32 early = _post(10 ether, 1 hours);
        _claim(early);
        vm.warp(block.timestamp + 1);
        _setFee(1000, SLASH_AMOUNT);
        vm.warp(block.timestamp + 1);
        bytes32 late = _post(10 ether, 1 hours);
        _claim(late);

        _submit(early);
        _submit(late);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        market.finalize(early, _factsFor(early));
        vm.assertEq(market.withdrawable(nodeA.operator), 10 ether - 0.1 ether + CLAIM_BOND, "1% fee of the early claim");
        market.finalize(late, _factsFor(late));
        vm.assertEq(
            market.withdrawable(nodeA.operator),
            (10 ether - 0.1 ether + CLAIM_BOND) + (10 ether - 1 ether + CLAIM_BOND),
            "10% fee of the later claim"
        );
    }

    /// @notice A lowered slash amount does not reach back either: the requester's compensation is
    /// the one in force when the node claimed.
    function test_slashAmountLoweredAfterClaimDoesNotReduceTheSlash() public {
        bytes32 jobId = _post(3 ether, 1 hours);
        _claim(jobId);
        _submit(jobId);
        vm.warp(block.timestamp + 1);
        _setFee(0, 0.01 ether);
        _concludeFinding(jobId);
        vm.assertEq(registry.getNode(nodeA.enclaveId).stake, MIN_NODE_STAKE - SLASH_AMOUNT, "slashed at claim terms");
        vm.assertEq(market.getJob(jobId).escrow, 3 ether, "the escrow refundable, the slash to the treasury (1856)");
    }

    // ------------------------------------------------------------ 1700 slasher migration

    /// @notice After a migration the old market slashes until its latest lock, never after, and
    /// can take no new lock; the new market's horizon starts at 0. The new market takes over only
    /// after the unbonding and the old market's locks (decision 1778); the old one keeps locking
    /// until then, and its retirement covers those later locks too.
    function test_retiredSlasherKeepsSlashUntilItsLastLockOnly() public {
        bytes32 jobId = _post(3 ether, 1 hours);
        _claim(jobId);
        vm.assertEq(
            registry.slasherLockHorizon(),
            uint64(block.timestamp) + 1 hours + CHALLENGE_WINDOW + market.FINALIZE_GRACE(),
            "horizon = claim lock"
        );

        address market2 = address(0xBEEF);
        uint64 effectiveAt = uint64(block.timestamp) + UNBONDING + 1;
        vm.expectEmit(address(registry));
        emit IFirnRegistry.SlasherChangeScheduled(address(market), market2, effectiveAt);
        registry.setSlasher(market2);
        vm.assertEq(registry.slasher(), address(market), "the old market until the change is due");

        // Still the slasher a second before: it takes a claim whose lock outlasts the change.
        vm.warp(effectiveAt - 1);
        bytes32 late = _post(3 ether, 1 hours);
        _claim(late);
        uint64 horizon = registry.slasherLockHorizon();
        vm.assertTrue(horizon > effectiveAt, "a lock past the change");

        vm.warp(effectiveAt);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.SlasherRetired(address(market), horizon);
        registry.applySlasherChange();
        vm.assertEq(registry.slasher(), market2, "the new market took over");
        vm.assertEq(registry.retiredSlasherUntil(address(market)), horizon, "retired until its last lock");
        vm.assertEq(registry.slasherLockHorizon(), 0, "the new slasher has taken no lock");

        // A retired market takes no new claim (its lock is refused).
        bytes32 other = _post(1 ether, 1 hours);
        vm.prank(nodeA.operator);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotSlasher.selector, address(market)));
        market.claimJob{value: CLAIM_BOND}(other, nodeA.enclaveId, _termsFor(other));

        vm.warp(horizon + 1);
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotSlasher.selector, address(market)));
        registry.slash(nodeA.enclaveId, 1, address(market), bytes32(0));

        vm.warp(horizon);
        vm.prank(address(market));
        uint256 slashed = registry.slash(nodeA.enclaveId, 1, address(market), bytes32(0));
        vm.assertEq(slashed, 1, "still slashes at its horizon");
    }

    /// @notice If the registry refuses the stake slash (NotSlasher), the finding still concludes:
    /// the job is Slashed and the requester gets escrow and bond back, the node nothing.
    function test_slashRefusedByRegistryStillSlashesTheJob() public {
        bytes32 jobId = _post(3 ether, 1 hours);
        _claim(jobId);
        _submit(jobId);
        vm.mockCallRevert(
            address(registry),
            abi.encodeWithSelector(IFirnRegistry.slash.selector),
            abi.encodeWithSelector(IFirnRegistry.NotSlasher.selector, address(market))
        );
        IFirnJobMarket.ProofFacts memory facts = _factsFor(jobId);
        for (uint256 i = 0; i < 2; ++i) {
            vm.prank(verifierList[i]);
            market.dispute(jobId, 17, facts);
        }
        vm.expectEmit(address(market));
        emit IFirnJobMarket.NodeSlashRefused(jobId, nodeA.enclaveId, SLASH_AMOUNT);
        vm.prank(verifierList[2]);
        market.dispute(jobId, 17, facts);
        vm.clearMockedCalls();
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Slashed), "Slashed");
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), 3 ether, "the escrow to the requester, the bond to the treasury");
        vm.assertEq(market.withdrawable(nodeA.operator), 0, "nothing to the node");
    }

    /// @notice Any other registry failure is not swallowed: the concluding dispute reverts.
    function test_slashOtherRegistryErrorPropagates() public {
        bytes32 jobId = _post(3 ether, 1 hours);
        _claim(jobId);
        _submit(jobId);
        vm.mockCallRevert(address(registry), abi.encodeWithSelector(IFirnRegistry.slash.selector), bytes("boom"));
        IFirnJobMarket.ProofFacts memory facts = _factsFor(jobId);
        for (uint256 i = 0; i < 2; ++i) {
            vm.prank(verifierList[i]);
            market.dispute(jobId, 17, facts);
        }
        vm.prank(verifierList[2]);
        vm.expectRevert(bytes("boom"));
        market.dispute(jobId, 17, facts);
    }

    // ------------------------------------------------------------ 1701 fee push never blocks

    function _provedWithFee() internal returns (bytes32 jobId) {
        _setFee(200, SLASH_AMOUNT);
        jobId = _post(3 ether, 1 hours);
        _claim(jobId);
        _submit(jobId);
    }

    /// @notice A pool move is one governance call (decision 1756): once the registry points at the
    /// new pool, the market pays the protocol fee of the next finalize there, and the old pool
    /// gets nothing. With a pointer of its own the market kept paying the old pool until a second
    /// call, and in between the two contracts disagreed.
    function test_poolMove_isOneGovernanceCall() public {
        bytes32 jobId = _provedWithFee();
        FirnRewards pool2 = new FirnRewards(
            owner, registry, verifierSet, EPOCH, ANSWER_WINDOW, LIVENESS_TARGET, EPOCH_BUDGET_BPS, VERIFIER_SHARE_BPS
        );
        uint256 oldReceived = rewards.totalReceived();
        registry.setRewardPool(address(pool2));
        vm.assertEq(market.rewardPool(), address(pool2), "the market follows the registry");
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        market.finalize(jobId, _factsFor(jobId));
        uint256 fee = 3 ether * 200 / 10_000;
        vm.assertEq(pool2.totalReceived(), fee, "the fee goes to the new pool");
        vm.assertEq(rewards.totalReceived(), oldReceived, "the old pool gets nothing");
        vm.assertEq(market.feesHeld(), 0, "nothing held");
    }

    function test_setRewardPoolRefusesAnAccountWithoutCode() public {
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RewardPoolNotContract.selector, address(0x1234)));
        registry.setRewardPool(address(0x1234));
    }

    /// @notice A pool built for another registry (same bytecode, another constructor argument) is
    /// refused, naming the registry it serves; the pointer stays (decision 1756, amended).
    function test_setRewardPoolRefusesAPoolOfAnotherRegistry() public {
        FirnRegistry otherRegistry = new FirnRegistry(owner, verifierSet, MIN_NODE_STAKE, UNBONDING, ALL_TEE_TYPES);
        FirnRewards foreign = new FirnRewards(
            owner,
            otherRegistry,
            verifierSet,
            EPOCH,
            ANSWER_WINDOW,
            LIVENESS_TARGET,
            EPOCH_BUDGET_BPS,
            VERIFIER_SHARE_BPS
        );
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnRegistry.RewardPoolMismatch.selector,
                address(foreign),
                address(otherRegistry),
                address(verifierSet)
            )
        );
        registry.setRewardPool(address(foreign));
        vm.assertEq(registry.rewardPool(), address(rewards), "pointer unchanged");
    }

    /// @notice A pool naming this registry but another verifier set is refused too: its verifier
    /// work reports would be weighed against stakes this registry's votes never used.
    function test_setRewardPoolRefusesAPoolOfAnotherVerifierSet() public {
        FirnVerifierSet otherSet = new FirnVerifierSet(owner, MIN_VERIFIER_STAKE, UNBONDING);
        FirnRewards foreign = new FirnRewards(
            owner, registry, otherSet, EPOCH, ANSWER_WINDOW, LIVENESS_TARGET, EPOCH_BUDGET_BPS, VERIFIER_SHARE_BPS
        );
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnRegistry.RewardPoolMismatch.selector, address(foreign), address(registry), address(otherSet)
            )
        );
        registry.setRewardPool(address(foreign));
    }

    /// @notice A contract without the pool's views (no back-pointer to check) is refused.
    function test_setRewardPoolRefusesAContractWithoutBackPointers() public {
        vm.expectRevert();
        registry.setRewardPool(address(verifierSet));
        vm.assertEq(registry.rewardPool(), address(rewards), "pointer unchanged");
    }

    /// @notice A reverting pool: finalize pays the node and holds the fee; the sweep fails while the
    /// pool refuses and pays the fee to the next pool.
    function test_revertingPoolFeeIsHeldThenSwept() public {
        bytes32 jobId = _provedWithFee();
        registry.setRewardPool(address(new RevertingPool(registry)));
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        uint256 fee = 3 ether * 200 / 10_000;
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ProtocolFeeHeld(jobId, market.rewardPool(), fee);
        market.finalize(jobId, _factsFor(jobId));
        vm.assertEq(market.withdrawable(nodeA.operator), 3 ether - fee + CLAIM_BOND, "node paid");
        vm.assertEq(market.feesHeld(), fee, "fee held");
        vm.assertEq(address(market).balance, market.totalWithdrawable() + fee, "books hold the fee");

        vm.expectRevert(bytes("closed"));
        market.sweepFees();
        vm.assertEq(market.feesHeld(), fee, "a failed sweep moves nothing");

        registry.setRewardPool(address(rewards));
        uint256 before = address(rewards).balance;
        vm.assertEq(market.sweepFees(), fee, "swept");
        vm.assertEq(address(rewards).balance - before, fee, "the pool received the held fee");
        vm.assertEq(market.feesHeld(), 0, "nothing left");
    }

    /// @notice A pool that burns all gas it gets cannot make finalize run out of gas.
    function test_gasBurningPoolCannotBlockFinalize() public {
        bytes32 jobId = _provedWithFee();
        registry.setRewardPool(address(new GasBurningPool(registry)));
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        market.finalize{gas: 1_000_000}(jobId, _factsFor(jobId));
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Paid), "paid");
        vm.assertEq(market.feesHeld(), 3 ether * 200 / 10_000, "fee held");
    }

    /// @notice The working pool is still paid at once.
    function test_workingPoolIsFundedAtFinalize() public {
        bytes32 jobId = _provedWithFee();
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        uint256 before = address(rewards).balance;
        market.finalize(jobId, _factsFor(jobId));
        vm.assertEq(address(rewards).balance - before, 3 ether * 200 / 10_000, "funded");
        vm.assertEq(market.feesHeld(), 0, "nothing held");
    }

    // ------------------------------------------------------------ 1702 ineligible since the claim

    /// @notice A TEE type disallowed after the claim: failJob returns the whole bond.
    function test_teeTypeDisallowedAfterClaimFailJobReturnsWholeBond() public {
        bytes32 jobId = _post(3 ether, 10 hours);
        _claim(jobId);
        vm.warp(block.timestamp + 9 hours);
        registry.setAllowedTeeTypes(ALL_TEE_TYPES & ~uint8(1 << SIM));
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondReturned(jobId, nodeA.enclaveId, 5, CLAIM_BOND);
        vm.prank(nodeA.operator);
        market.failJob(jobId, bytes32("tee type"));
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND, "whole bond back");
        vm.assertEq(market.withdrawable(owner), 0, "nothing forfeited");
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), 3 ether, "requester reclaims at once");
    }

    /// @notice A measurement revoked after the claim: releaseJob returns the whole bond and the job
    /// is Open again for another node.
    function test_measurementRevokedAfterClaimReleaseReturnsWholeBond() public {
        bytes32 jobId = _post(3 ether, 10 hours);
        _claim(jobId);
        vm.warp(block.timestamp + 9 hours);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.prank(nodeA.operator);
        market.releaseJob(jobId);
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND, "whole bond back");
        vm.assertEq(market.totalBonds(), 0, "bond out of the books");
        IFirnJobMarket.Job memory j = market.getJob(jobId);
        vm.assertEq(uint256(j.status), uint256(IFirnJobMarket.JobStatus.Open), "open again");
        vm.assertEq(j.claimant, address(0), "claim cleared");
    }

    /// @notice The node's own exit is its act: failJob keeps the time-left rule.
    function test_ownExitAfterClaimKeepsTheTimeLeftRule() public {
        bytes32 jobId = _post(3 ether, 10 hours);
        _claim(jobId);
        vm.warp(block.timestamp + 9 hours);
        vm.prank(nodeA.operator);
        registry.requestExit(nodeA.enclaveId);
        vm.prank(nodeA.operator);
        market.failJob(jobId, bytes32("exit"));
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND / 10, "one tenth back");
    }

    // ------------------------------------------------------------ 1723 lapse first, no hostage

    function _assertBondBooks() internal view {
        vm.assertEq(
            address(market).balance,
            market.totalEscrow() + market.totalBonds() + market.totalWithdrawable() + market.feesHeld(),
            "market balance == escrow + bonds + credits + held fees"
        );
    }

    /// @notice A claim that lapsed by the node's inaction stays forfeit when the measurement is
    /// revoked after the lapse: releaseJob credits the whole bond to the treasury, none to the node.
    function test_lapsedClaimReleasedAfterARevocationIsForfeit() public {
        bytes32 jobId = _post(3 ether, 1 hours);
        _claim(jobId);
        vm.warp(block.timestamp + 2 hours);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondForfeited(jobId, nodeA.enclaveId, owner, CLAIM_BOND);
        vm.prank(nodeA.operator);
        market.releaseJob(jobId);
        vm.assertEq(market.withdrawable(nodeA.operator), 0, "nothing back to the node");
        vm.assertEq(market.withdrawable(owner), CLAIM_BOND, "the whole bond to the treasury");
        vm.assertEq(uint256(market.getJob(jobId).status), uint256(IFirnJobMarket.JobStatus.Open), "open again");
        _assertBondBooks();
    }

    /// @notice The same lapse ended by the requester's reclaim after a TEE type was disallowed: the
    /// bond is forfeit too (lapse first on every path).
    function test_lapsedClaimReclaimedAfterADisallowedTeeTypeIsForfeit() public {
        bytes32 jobId = _post(3 ether, 1 hours);
        _claim(jobId);
        vm.warp(block.timestamp + 1 hours + 1);
        registry.setAllowedTeeTypes(ALL_TEE_TYPES & ~uint8(1 << SIM));
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), 3 ether, "escrow back");
        vm.assertEq(market.withdrawable(nodeA.operator), 0, "nothing back to the node");
        vm.assertEq(market.withdrawable(owner), CLAIM_BOND, "the whole bond to the treasury");
        _assertBondBooks();
    }

    /// @notice A measurement revoked during a 7-day claim: the requester reclaims a second later;
    /// the escrow comes back and the whole bond goes to the claimant, not to the requester.
    function test_requesterReclaimsARevokedClaimAtOnce() public {
        bytes32 jobId = _post(3 ether, 7 days);
        _claim(jobId);
        vm.warp(block.timestamp + 1 hours);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.warp(block.timestamp + 1);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondReturned(jobId, nodeA.enclaveId, 3, CLAIM_BOND);
        vm.prank(requester);
        market.reclaim(jobId);
        vm.assertEq(market.withdrawable(requester), 3 ether, "exactly the escrow");
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND, "whole bond to the claimant");
        vm.assertEq(market.withdrawable(owner), 0, "nothing forfeited");
        IFirnJobMarket.Job memory j = market.getJob(jobId);
        vm.assertEq(uint256(j.status), uint256(IFirnJobMarket.JobStatus.Reclaimed), "reclaimed");
        vm.assertEq(j.claimant, address(0), "claim cleared");
        vm.assertEq(market.totalBonds(), 0, "bond out of the books");
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnJobMarket.UnexpectedJobStatus.selector, jobId, IFirnJobMarket.JobStatus.Reclaimed
            )
        );
        vm.prank(nodeA.operator);
        market.releaseJob(jobId);
        _assertBondBooks();
    }

    /// @notice Anyone may end a running claim whose TEE type was disallowed: the job is Open again
    /// and the whole bond goes to the claimant, never to the caller.
    function test_anyoneReleasesARevokedClaim() public {
        bytes32 jobId = _post(3 ether, 7 days);
        _claim(jobId);
        vm.warp(block.timestamp + 1 hours);
        registry.setAllowedTeeTypes(ALL_TEE_TYPES & ~uint8(1 << SIM));
        address stranger = address(0xBEEF);
        vm.expectEmit(address(market));
        emit IFirnJobMarket.ClaimBondReturned(jobId, nodeA.enclaveId, 5, CLAIM_BOND);
        vm.prank(stranger);
        market.releaseJob(jobId);
        vm.assertEq(market.withdrawable(stranger), 0, "the caller gets nothing");
        vm.assertEq(market.withdrawable(nodeA.operator), CLAIM_BOND, "whole bond to the claimant");
        IFirnJobMarket.Job memory j = market.getJob(jobId);
        vm.assertEq(uint256(j.status), uint256(IFirnJobMarket.JobStatus.Open), "open again");
        vm.assertEq(j.claimant, address(0), "claim cleared");
        _assertBondBooks();
    }

    /// @notice Without a governance restriction a running claim stays the claimant's: a stranger's
    /// release reverts NotClaimant and the requester's reclaim NotReclaimable, also after the
    /// node's own exit (registry ineligibility 1, its act).
    function test_eligibleOrExitedClaimantKeepsItsRunningClaim() public {
        bytes32 jobId = _post(3 ether, 7 days);
        _claim(jobId);
        vm.warp(block.timestamp + 1 hours);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotClaimant.selector, jobId, address(0xBEEF)));
        vm.prank(address(0xBEEF));
        market.releaseJob(jobId);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NotReclaimable.selector, jobId, IFirnJobMarket.JobStatus.Claimed)
        );
        vm.prank(requester);
        market.reclaim(jobId);
        vm.prank(nodeA.operator);
        registry.requestExit(nodeA.enclaveId);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnJobMarket.NotReclaimable.selector, jobId, IFirnJobMarket.JobStatus.Claimed)
        );
        vm.prank(requester);
        market.reclaim(jobId);
        vm.expectRevert(abi.encodeWithSelector(IFirnJobMarket.NotClaimant.selector, jobId, address(0xBEEF)));
        vm.prank(address(0xBEEF));
        market.releaseJob(jobId);
    }

    // ------------------------------------------------------------ 1703 no renounce

    function test_renounceOwnershipIsDisabled() public {
        vm.expectRevert(IFirnJobMarket.OwnershipRenounceDisabled.selector);
        market.renounceOwnership();
        vm.expectRevert(IFirnRegistry.OwnershipRenounceDisabled.selector);
        registry.renounceOwnership();
        vm.expectRevert(IFirnRewards.OwnershipRenounceDisabled.selector);
        rewards.renounceOwnership();
        vm.assertEq(Ownable(address(market)).owner(), owner, "market keeps its owner");
        vm.assertEq(Ownable(address(registry)).owner(), owner, "registry keeps its owner");
        vm.assertEq(Ownable(address(rewards)).owner(), owner, "rewards keeps its owner");
    }
}
