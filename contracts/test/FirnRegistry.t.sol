// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {FirnRegistry} from "../src/FirnRegistry.sol";
import {IFirnRegistry} from "../src/interfaces/IFirnRegistry.sol";
import {IFirnRewards} from "../src/interfaces/IFirnRewards.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @dev An operator contract that refuses ether until told otherwise: a push refund to it would
/// revert, so it could freeze a refusal; pull refunds make that impossible.
contract RejectingOperator {
    FirnRegistry internal immutable _registry;
    bool public accepting;

    constructor(FirnRegistry registry_) payable {
        _registry = registry_;
    }

    function register(IFirnRegistry.RegistrationParams calldata p, uint256 value) external {
        _registry.register{value: value}(p);
    }

    function setAccepting(bool a) external {
        accepting = a;
    }

    function withdraw() external {
        _registry.withdraw();
    }

    receive() external payable {
        require(accepting, "refusing ether");
    }
}

contract FirnRegistryTest is FirnFixture {
    function _status(bytes32 id) internal view returns (uint256) {
        return uint256(registry.getNode(id).status);
    }

    function test_allowMeasurement_ownerOnlyAndEvents() public {
        bytes32 m = keccak256("m");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        registry.allowMeasurement(TDX, m);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.InvalidTeeType.selector, uint8(6)));
        registry.allowMeasurement(6, m);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.MeasurementAllowed(TDX, m);
        registry.allowMeasurement(TDX, m);
        vm.assertTrue(registry.isMeasurementAllowed(TDX, m), "allowed");

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotGuardian.selector, stranger));
        vm.prank(stranger);
        registry.revokeMeasurement(TDX, m);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.MeasurementRevoked(TDX, m, address(this));
        registry.revokeMeasurement(TDX, m);
        vm.assertFalse(registry.isMeasurementAllowed(TDX, m), "revoked");

        // The guardian may restrict at once (revoke), never widen (allow).
        address g = address(0x6A4D);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.GuardianSet(address(0), g);
        registry.setGuardian(g);
        registry.allowMeasurement(TDX, m);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.MeasurementRevoked(TDX, m, g);
        vm.prank(g);
        registry.revokeMeasurement(TDX, m);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, g));
        vm.prank(g);
        registry.allowMeasurement(TDX, m);
    }

    function test_register_emitsAndStores() public {
        TestNode memory t = _node(1);
        IFirnRegistry.RegistrationParams memory p = _params(t, SIM, MEASUREMENT);
        uint64 snap = verifierSet.currentSnapshot();
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeRegistered(
            t.enclaveId,
            t.operator,
            1,
            SIM,
            MEASUREMENT,
            t.platformIdHash,
            t.enclaveAddress,
            p.kemPublicKey,
            p.endpoint,
            t.evidenceDigest,
            MIN_NODE_STAKE,
            0,
            snap
        );
        vm.prank(t.operator);
        registry.register{value: MIN_NODE_STAKE}(p);
        IFirnRegistry.Node memory n = registry.getNode(t.enclaveId);
        vm.assertEq(uint256(n.status), uint256(IFirnRegistry.NodeStatus.Pending), "pending");
        vm.assertEq(n.operator, t.operator, "operator");
        vm.assertEq(n.stake, MIN_NODE_STAKE, "stake");
        vm.assertEq(n.platformIdHash, t.platformIdHash, "platform");
        vm.assertEq(uint256(n.snapshotId), uint256(snap), "snapshot");
        vm.assertEq(registry.enclaveIdOf(t.enclaveAddress), t.enclaveId, "reverse map");
        // Pending registrations are not indexed on chain (decision 1140): NodeRegistered lists them.
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.StatusNotIndexed.selector, IFirnRegistry.NodeStatus.Pending));
        registry.countByStatus(IFirnRegistry.NodeStatus.Pending);
        vm.assertEq(address(registry).balance, MIN_NODE_STAKE, "balance");
        IFirnRegistry.NodeSummary memory s = registry.getNodeSummary(t.enclaveId);
        vm.assertEq(s.operator, t.operator, "summary operator");
        vm.assertEq(uint256(s.ineligibility), 1, "pending is not eligible");
    }

    /// Registration params for `t` (simulated TEE, MEASUREMENT) with the one field that `zeroError`
    /// (a Zero* error of IFirnRegistry) names set to zero.
    function _paramsWithZero(TestNode memory t, bytes4 zeroError)
        internal
        pure
        returns (IFirnRegistry.RegistrationParams memory p)
    {
        p = _params(t, SIM, MEASUREMENT);
        if (zeroError == IFirnRegistry.ZeroEnclaveAddress.selector) p.enclaveAddress = address(0);
        else if (zeroError == IFirnRegistry.ZeroKemPublicKey.selector) p.kemPublicKey = bytes32(0);
        else if (zeroError == IFirnRegistry.ZeroEvidenceDigest.selector) p.evidenceDigest = bytes32(0);
        else if (zeroError == IFirnRegistry.ZeroEnclaveId.selector) p.enclaveId = bytes32(0);
        else if (zeroError == IFirnRegistry.ZeroPlatformIdHash.selector) p.platformIdHash = bytes32(0);
        else revert("unknown Zero* error");
    }

    function test_register_reverts() public {
        TestNode memory t = _node(1);
        IFirnRegistry.RegistrationParams memory p = _params(t, SIM, MEASUREMENT);
        vm.startPrank(t.operator);

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.StakeTooLow.selector, MIN_NODE_STAKE - 1, MIN_NODE_STAKE));
        registry.register{value: MIN_NODE_STAKE - 1}(p);

        p.teeType = 0;
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.InvalidTeeType.selector, uint8(0)));
        registry.register{value: MIN_NODE_STAKE}(p);

        p.teeType = TDX;
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.MeasurementNotAllowed.selector, TDX, MEASUREMENT));
        registry.register{value: MIN_NODE_STAKE}(p);

        p = _params(t, SIM, MEASUREMENT);
        p.endpoint = "";
        vm.expectRevert(IFirnRegistry.EmptyEndpoint.selector);
        registry.register{value: MIN_NODE_STAKE}(p);

        p.endpoint = string(new bytes(257));
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.EndpointTooLong.selector, 257, 256));
        registry.register{value: MIN_NODE_STAKE}(p);

        // Each identity field left zero is refused with its own error.
        bytes4[5] memory zeroErrors = [
            IFirnRegistry.ZeroEnclaveAddress.selector,
            IFirnRegistry.ZeroKemPublicKey.selector,
            IFirnRegistry.ZeroEvidenceDigest.selector,
            IFirnRegistry.ZeroEnclaveId.selector,
            IFirnRegistry.ZeroPlatformIdHash.selector
        ];
        for (uint256 i = 0; i < zeroErrors.length; i++) {
            vm.expectRevert(zeroErrors[i]);
            registry.register{value: MIN_NODE_STAKE}(_paramsWithZero(t, zeroErrors[i]));
        }

        p = _params(t, SIM, MEASUREMENT);
        registry.register{value: MIN_NODE_STAKE}(p);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.EnclaveIdActive.selector, t.enclaveId, IFirnRegistry.NodeStatus.Pending)
        );
        registry.register{value: MIN_NODE_STAKE}(p);
        vm.stopPrank();

        // Another Enclave ID cannot take this enclave address.
        TestNode memory u = _node(2);
        IFirnRegistry.RegistrationParams memory q = _params(u, SIM, MEASUREMENT);
        q.enclaveAddress = t.enclaveAddress;
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.EnclaveAddressInUse.selector, t.enclaveAddress, t.enclaveId)
        );
        vm.prank(u.operator);
        registry.register{value: MIN_NODE_STAKE}(q);
    }

    function test_register_feeGoesToTreasuryAndIsNotStake() public {
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0.05 ether);
        TestNode memory t = _node(1);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.StakeTooLow.selector, MIN_NODE_STAKE, MIN_NODE_STAKE + 0.05 ether)
        );
        vm.prank(t.operator);
        registry.register{value: MIN_NODE_STAKE}(_params(t, SIM, MEASUREMENT));
        _register(t, SIM, MEASUREMENT);
        vm.assertEq(registry.getNode(t.enclaveId).stake, MIN_NODE_STAKE, "stake excludes the fee");
        vm.assertEq(registry.feesHeld(), 0.05 ether, "fee held for the treasury");
        vm.assertEq(address(registry).balance, MIN_NODE_STAKE + 0.05 ether, "stake and fee held");
        vm.expectEmit(address(registry));
        emit IFirnRegistry.FeesSwept(address(rewards), 0.05 ether);
        vm.expectEmit(address(rewards));
        emit IFirnRewards.TreasuryCredited(rewards.owner(), 0.05 ether);
        vm.prank(stranger);
        vm.assertEq(registry.sweepFees(), 0.05 ether, "anyone sweeps");
        vm.assertEq(registry.feesHeld(), 0, "nothing held");
        vm.assertEq(registry.sweepFees(), 0, "a second sweep pays nothing");
        vm.assertEq(address(rewards).balance, 0.05 ether, "fee held by the pool contract");
        // Decision 1671: credited to the owner's treasury, outside the pool's books and budgets.
        vm.assertEq(rewards.treasuryCredit(rewards.owner()), 0.05 ether, "the owner's treasury holds the fee");
        vm.assertEq(rewards.totalReceived(), 0, "the pool's budgets never see the fee");
        vm.assertEq(address(registry).balance, registry.totalStaked(), "registry holds only stake");
    }

    function test_approve_weightedQuorumActivates() public {
        TestNode memory t = _node(1);
        _register(t, SIM, MEASUREMENT);

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotVerifier.selector, stranger));
        vm.prank(stranger);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);

        bytes32 other = keccak256("other evidence");
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.EvidenceMismatch.selector, t.enclaveId, t.evidenceDigest, other)
        );
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, 1, other);

        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeApproved(t.enclaveId, verifierList[0], 1, MIN_VERIFIER_STAKE, MIN_VERIFIER_STAKE);
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.assertFalse(registry.isActive(t.enclaveId), "1/4 is not a quorum");

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.AlreadyVoted.selector, t.enclaveId, 1, verifierList[0]));
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);

        vm.prank(verifierList[1]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.assertFalse(registry.isActive(t.enclaveId), "2/4 is not more than 2/3");

        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeApproved(t.enclaveId, verifierList[2], 1, MIN_VERIFIER_STAKE, 3 * MIN_VERIFIER_STAKE);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeActivated(t.enclaveId, 1);
        vm.prank(verifierList[2]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        vm.assertTrue(registry.isActive(t.enclaveId), "active");
        vm.assertTrue(registry.isEligible(t.enclaveId), "eligible");
        vm.assertEq(registry.countByStatus(IFirnRegistry.NodeStatus.Active), 1, "listed as active");
        vm.assertEq(rewards.verifierPoints(0, verifierList[0]), MIN_VERIFIER_STAKE, "vote reported to the pool, x stake");

        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, t.enclaveId, IFirnRegistry.NodeStatus.Active)
        );
        vm.prank(verifierList[3]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
    }

    /// @dev Nine cheap accounts holding 0.9 ether of a 2.9 ether verifier stake (31 %) outnumber the
    /// four honest verifiers: with a count threshold they would activate a node that has no TEE.
    function test_sybil_minorityCannotActivate() public {
        verifierSet.setParameters(0.1 ether, UNBONDING);
        address[] memory sybils = new address[](9);
        for (uint256 i = 0; i < 9; ++i) {
            sybils[i] = address(uint160(0x5b11 + i));
            _joinVerifier(sybils[i], 0.1 ether);
        }
        TestNode memory fake = _node(66);
        _register(fake, SIM, MEASUREMENT);
        for (uint256 i = 0; i < 9; ++i) {
            vm.prank(sybils[i]);
            registry.approve(fake.enclaveId, 1, fake.evidenceDigest);
        }
        vm.assertEq(_status(fake.enclaveId), uint256(IFirnRegistry.NodeStatus.Pending), "9 sybil votes do not activate");
        vm.assertEq(registry.getNode(fake.enclaveId).approvalStake, 0.9 ether, "their weight is their stake");

        // Accounts created after the round opened have no weight in it, however much they stake.
        address late = address(0x1a7e);
        _joinVerifier(late, 50 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFirnRegistry.NotEligibleVoter.selector, fake.enclaveId, late, registry.getNode(fake.enclaveId).snapshotId
            )
        );
        vm.prank(late);
        registry.approve(fake.enclaveId, 1, fake.evidenceDigest);

        // One honest verifier joining the sybils is still short of 2/3 (1.4 of 2.9).
        vm.prank(verifierList[0]);
        registry.approve(fake.enclaveId, 1, fake.evidenceDigest);
        vm.assertEq(_status(fake.enclaveId), uint256(IFirnRegistry.NodeStatus.Pending), "still pending");
        // The honest majority refuses it.
        vm.prank(verifierList[1]);
        registry.refuse(fake.enclaveId, 1, fake.evidenceDigest, 7);
        vm.prank(verifierList[2]);
        registry.refuse(fake.enclaveId, 1, fake.evidenceDigest, 7);
        vm.assertEq(_status(fake.enclaveId), uint256(IFirnRegistry.NodeStatus.Rejected), "rejected by > 1/3");
    }

    /// @dev The same 31 % coalition refuses a valid registration: not enough to reject it (refusal
    /// needs > 1/3), and the honest verifiers activate it.
    function test_sybil_minorityCannotRefuse() public {
        verifierSet.setParameters(0.1 ether, UNBONDING);
        address[] memory sybils = new address[](9);
        for (uint256 i = 0; i < 9; ++i) {
            sybils[i] = address(uint160(0x5b11 + i));
            _joinVerifier(sybils[i], 0.1 ether);
        }
        TestNode memory t = _node(1);
        _register(t, SIM, MEASUREMENT);
        for (uint256 i = 0; i < 9; ++i) {
            vm.prank(sybils[i]);
            registry.refuse(t.enclaveId, 1, t.evidenceDigest, 1);
        }
        vm.assertEq(_status(t.enclaveId), uint256(IFirnRegistry.NodeStatus.Pending), "9 sybil refusals do not reject");
        // Honest stake: 2.0 of 2.9 ether = 69 % > 2/3, so the honest verifiers alone conclude.
        for (uint256 i = 0; i < VERIFIERS; ++i) {
            vm.prank(verifierList[i]);
            registry.approve(t.enclaveId, 1, t.evidenceDigest);
        }
        vm.assertEq(_status(t.enclaveId), uint256(IFirnRegistry.NodeStatus.Active), "honest majority activates");
    }

    function test_refuse_quorumRejectsAndAllowsNewRound() public {
        TestNode memory t = _node(1);
        _register(t, SIM, MEASUREMENT);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeRefused(t.enclaveId, verifierList[0], 42, 1, MIN_VERIFIER_STAKE, MIN_VERIFIER_STAKE);
        vm.prank(verifierList[0]);
        registry.refuse(t.enclaveId, 1, t.evidenceDigest, 42);
        vm.assertEq(_status(t.enclaveId), uint256(IFirnRegistry.NodeStatus.Pending), "1/4 is not more than 1/3");
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeRejected(t.enclaveId, 1, MIN_NODE_STAKE);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.RefundCredited(t.operator, MIN_NODE_STAKE);
        vm.prank(verifierList[1]);
        registry.refuse(t.enclaveId, 1, t.evidenceDigest, 43);
        vm.assertEq(_status(t.enclaveId), uint256(IFirnRegistry.NodeStatus.Rejected), "rejected");
        vm.assertEq(registry.withdrawable(t.operator), MIN_NODE_STAKE, "refund credited");
        vm.assertEq(registry.enclaveIdOf(t.enclaveAddress), bytes32(0), "address released");

        // New evidence, new round; earlier voters may vote again.
        IFirnRegistry.RegistrationParams memory p = _params(t, SIM, MEASUREMENT);
        p.evidenceDigest = keccak256("new evidence");
        vm.prank(t.operator);
        registry.register{value: MIN_NODE_STAKE}(p);
        vm.assertEq(registry.getNode(t.enclaveId).round, 2, "round 2");
        _approveAll(t.enclaveId, p.evidenceDigest);
        vm.assertTrue(registry.isActive(t.enclaveId), "active in round 2");
        vm.assertEq(registry.countByStatus(IFirnRegistry.NodeStatus.Active), 1, "listed once");
    }

    /// @dev The operator is a contract that rejects ether. Under push refunds the refusing vote
    /// reverted, so the registration could never be refused. Now the vote concludes and the refund
    /// waits in the operator's balance until it chooses to withdraw.
    function test_refusal_pullRefund() public {
        RejectingOperator op = new RejectingOperator{value: 5 ether}(registry);
        TestNode memory t = _node(1);
        op.register(_params(t, SIM, MEASUREMENT), MIN_NODE_STAKE);
        vm.prank(verifierList[0]);
        registry.refuse(t.enclaveId, 1, t.evidenceDigest, 9);
        vm.prank(verifierList[1]);
        registry.refuse(t.enclaveId, 1, t.evidenceDigest, 9);
        vm.assertEq(_status(t.enclaveId), uint256(IFirnRegistry.NodeStatus.Rejected), "refusal concluded");
        vm.assertEq(registry.withdrawable(address(op)), MIN_NODE_STAKE, "credited, not pushed");
        vm.assertEq(registry.totalWithdrawable(), MIN_NODE_STAKE, "books");

        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.TransferFailed.selector, address(op), MIN_NODE_STAKE)
        );
        op.withdraw();
        op.setAccepting(true);
        uint256 before = address(op).balance;
        vm.expectEmit(address(registry));
        emit IFirnRegistry.Withdrawn(address(op), MIN_NODE_STAKE);
        op.withdraw();
        vm.assertEq(address(op).balance, before + MIN_NODE_STAKE, "pulled");
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NothingToWithdraw.selector, address(op)));
        op.withdraw();
    }

    function test_leavingVerifierNoLongerVotes() public {
        TestNode memory t = _node(1);
        _register(t, SIM, MEASUREMENT);
        vm.prank(verifierList[0]);
        verifierSet.requestLeave();
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotVerifier.selector, verifierList[0]));
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        // It had not voted, so its stake leaves the round's denominator (decision 1720): 3 of the 4
        // stakes remain and two approvals are exactly 2/3 of them, not more; all three must approve.
        for (uint256 i = 1; i < VERIFIERS; ++i) {
            vm.prank(verifierList[i]);
            registry.approve(t.enclaveId, 1, t.evidenceDigest);
        }
        vm.assertTrue(registry.isActive(t.enclaveId), "active with 3/4");
    }

    function test_approve_refusesMeasurementRevokedWhilePending() public {
        TestNode memory t = _node(1);
        _register(t, SIM, MEASUREMENT);
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.MeasurementRevokedWhilePending.selector, t.enclaveId, SIM, MEASUREMENT)
        );
        vm.prank(verifierList[1]);
        registry.approve(t.enclaveId, 1, t.evidenceDigest);
        // Refusing still works, so the registration ends.
        vm.prank(verifierList[1]);
        registry.refuse(t.enclaveId, 1, t.evidenceDigest, 3);
        vm.prank(verifierList[2]);
        registry.refuse(t.enclaveId, 1, t.evidenceDigest, 3);
        vm.assertEq(_status(t.enclaveId), uint256(IFirnRegistry.NodeStatus.Rejected), "rejected");

        // The same holds for a TEE type governance stopped accepting.
        TestNode memory u = _node(2);
        _register(u, SGX, MEASUREMENT);
        registry.setAllowedTeeTypes(uint8(1) << SIM);
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.MeasurementRevokedWhilePending.selector, u.enclaveId, SGX, MEASUREMENT)
        );
        vm.prank(verifierList[0]);
        registry.approve(u.enclaveId, 1, u.evidenceDigest);
    }

    function test_revokedMeasurement_makesNodesIneligibleAtOnce() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        TestNode memory u = _activeNode(2, SIM, MEASUREMENT_B);
        vm.assertTrue(registry.isEligible(t.enclaveId), "eligible");
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.assertFalse(registry.isEligible(t.enclaveId), "revoked: ineligible in the same block");
        vm.assertEq(uint256(registry.ineligibility(t.enclaveId)), 3, "reason: measurement");
        vm.assertTrue(registry.isEligible(u.enclaveId), "other measurement unaffected");
        registry.allowMeasurement(SIM, MEASUREMENT);
        vm.assertTrue(registry.isEligible(t.enclaveId), "allowed again");
    }

    /// Nitro (4) and SEV-SNP (5) nodes register and activate like the others; type 6 does not exist.
    function test_register_nitroAndSevSnp() public {
        registry.setAllowedTeeTypes(0x3e);
        for (uint8 tee = 4; tee <= 5; tee++) {
            bytes32 m = keccak256(abi.encode("m", tee));
            registry.allowMeasurement(tee, m);
            TestNode memory t = _activeNode(100 + tee, tee, m);
            vm.assertTrue(registry.isEligible(t.enclaveId), "active and eligible");
        }
        FirnRegistry prod = new FirnRegistry(owner, verifierSet, MIN_NODE_STAKE, UNBONDING, 0x3c);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.InvalidTeeType.selector, uint8(6)));
        prod.allowMeasurement(6, bytes32(0));
    }

    function test_allowedTeeTypes_productionRefusesSimulated() public {
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.InvalidTeeTypeMask.selector, uint8(0x11)));
        new FirnRegistry(owner, verifierSet, MIN_NODE_STAKE, UNBONDING, 0x11);
        FirnRegistry prod = new FirnRegistry(owner, verifierSet, MIN_NODE_STAKE, UNBONDING, 0x0c);
        prod.allowMeasurement(SIM, MEASUREMENT);
        TestNode memory t = _node(1);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.TeeTypeNotAllowed.selector, SIM, uint8(0x0c)));
        vm.prank(t.operator);
        prod.register{value: MIN_NODE_STAKE}(_params(t, SIM, MEASUREMENT));

        // Clearing a type on a live registry makes its nodes ineligible at once.
        TestNode memory s = _activeNode(2, SIM, MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        registry.setAllowedTeeTypes(0x0c);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.InvalidTeeTypeMask.selector, uint8(0x01)));
        registry.setAllowedTeeTypes(0x01);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.AllowedTeeTypesSet(ALL_TEE_TYPES, 0x0c);
        registry.setAllowedTeeTypes(0x0c);
        vm.assertEq(uint256(registry.ineligibility(s.enclaveId)), 2, "reason: TEE type");
        vm.assertEq(uint256(registry.allowedTeeTypes()), 0x0c, "mask");
    }

    function test_rotateKeys_approvedAndRefused() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        address newAddr = vm.addr(0xabc);
        bytes32 newKem = keccak256("kem2");
        bytes32 newEv = keccak256("ev2");
        uint64 snap = verifierSet.currentSnapshot();

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotOperator.selector, t.enclaveId, stranger));
        vm.prank(stranger);
        registry.rotateKeys(t.enclaveId, newAddr, newKem, newEv);

        vm.expectEmit(address(registry));
        emit IFirnRegistry.KeyRotationRequested(t.enclaveId, 2, newAddr, newKem, newEv, snap);
        vm.prank(t.operator);
        registry.rotateKeys(t.enclaveId, newAddr, newKem, newEv);
        vm.assertTrue(registry.isActive(t.enclaveId), "stays active");
        vm.assertEq(registry.getNode(t.enclaveId).enclaveAddress, t.enclaveAddress, "old keys in force");

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RotationPending.selector, t.enclaveId));
        vm.prank(t.operator);
        registry.rotateKeys(t.enclaveId, newAddr, newKem, newEv);

        vm.roll(200);
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, 2, newEv);
        vm.prank(verifierList[1]);
        registry.approve(t.enclaveId, 2, newEv);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.KeysRotated(t.enclaveId, 2, newAddr, newKem);
        vm.prank(verifierList[2]);
        registry.approve(t.enclaveId, 2, newEv);
        IFirnRegistry.Node memory n = registry.getNode(t.enclaveId);
        vm.assertEq(n.enclaveAddress, newAddr, "new address");
        vm.assertEq(n.evidenceDigest, newEv, "new evidence");
        vm.assertEq(registry.enclaveIdOf(t.enclaveAddress), bytes32(0), "old address released");
        vm.assertEq(registry.enclaveIdOf(newAddr), t.enclaveId, "new address mapped");

        // A refused rotation keeps the current keys.
        address third = vm.addr(0xdef);
        vm.prank(t.operator);
        registry.rotateKeys(t.enclaveId, third, newKem, keccak256("ev3"));
        vm.prank(verifierList[0]);
        registry.refuse(t.enclaveId, 3, keccak256("ev3"), 1);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.KeyRotationRefused(t.enclaveId, 3);
        vm.prank(verifierList[2]);
        registry.refuse(t.enclaveId, 3, keccak256("ev3"), 1);
        vm.assertEq(registry.getNode(t.enclaveId).enclaveAddress, newAddr, "kept");
        vm.assertTrue(registry.isActive(t.enclaveId), "still active");
        vm.assertEq(registry.enclaveIdOf(third), bytes32(0), "pending address released");
        vm.assertEq(registry.enclaveKeyHistory(t.enclaveId).length, 2, "refused rotation not recorded");
    }

    /// @dev "Was address A the enclave key of E at block B" across a rotation and an exit.
    function test_keyHistory_answersAcrossRotationAndExit() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT); // active from block 100
        address newAddr = vm.addr(0xabc);
        vm.roll(150);
        vm.prank(t.operator);
        registry.rotateKeys(t.enclaveId, newAddr, keccak256("kem2"), keccak256("ev2"));
        vm.roll(160);
        _approveAll(t.enclaveId, keccak256("ev2"));
        vm.roll(170);
        vm.prank(t.operator);
        registry.requestExit(t.enclaveId);
        vm.warp(block.timestamp + UNBONDING);
        vm.roll(180);
        vm.prank(t.operator);
        registry.withdrawStake(t.enclaveId);

        IFirnRegistry.EnclaveKeyRecord[] memory h = registry.enclaveKeyHistory(t.enclaveId);
        vm.assertEq(h.length, 2, "two keys");
        vm.assertEq(h[0].enclaveAddress, t.enclaveAddress, "first key");
        vm.assertEq(uint256(h[0].fromBlock), 100, "from activation");
        vm.assertEq(uint256(h[0].toBlock), 160, "to rotation");
        vm.assertEq(uint256(h[1].fromBlock), 160, "second from rotation");
        vm.assertEq(uint256(h[1].toBlock), 180, "closed at exit");

        vm.assertFalse(registry.wasEnclaveAddress(t.enclaveId, t.enclaveAddress, 99), "before activation");
        vm.assertTrue(registry.wasEnclaveAddress(t.enclaveId, t.enclaveAddress, 100), "at activation");
        vm.assertTrue(registry.wasEnclaveAddress(t.enclaveId, t.enclaveAddress, 159), "before rotation");
        vm.assertTrue(registry.wasEnclaveAddress(t.enclaveId, t.enclaveAddress, 160), "rotation block: both");
        vm.assertTrue(registry.wasEnclaveAddress(t.enclaveId, newAddr, 160), "rotation block: new");
        vm.assertFalse(registry.wasEnclaveAddress(t.enclaveId, t.enclaveAddress, 161), "old key after rotation");
        vm.assertFalse(registry.wasEnclaveAddress(t.enclaveId, newAddr, 159), "new key before rotation");
        vm.assertTrue(registry.wasEnclaveAddress(t.enclaveId, newAddr, 175), "exiting still signs");
        vm.assertFalse(registry.wasEnclaveAddress(t.enclaveId, newAddr, 181), "after exit");
        vm.assertFalse(registry.wasEnclaveAddress(keccak256("none"), newAddr, 170), "unknown id");
    }

    function test_updateEndpoint() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.EndpointUpdated(t.enclaveId, "https://new.example");
        vm.prank(t.operator);
        registry.updateEndpoint(t.enclaveId, "https://new.example");
        // Not stored (decision 1140): the event above is the record clients read.
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.EndpointTooLong.selector, 257, 256));
        vm.prank(t.operator);
        registry.updateEndpoint(t.enclaveId, string(new bytes(257)));
    }

    function test_exit_unbondsThenPaysAndAllowsReRegistration() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        uint64 endsAt = uint64(block.timestamp) + UNBONDING;
        vm.expectEmit(address(registry));
        emit IFirnRegistry.ExitRequested(t.enclaveId, endsAt);
        vm.prank(t.operator);
        registry.requestExit(t.enclaveId);
        vm.assertFalse(registry.isActive(t.enclaveId), "not active while exiting");
        vm.assertEq(registry.countByStatus(IFirnRegistry.NodeStatus.Exiting), 1, "listed as exiting");

        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.StillUnbonding.selector, t.enclaveId, endsAt, uint64(block.timestamp))
        );
        vm.prank(t.operator);
        registry.withdrawStake(t.enclaveId);

        vm.warp(endsAt);
        uint256 before = t.operator.balance;
        vm.expectEmit(address(registry));
        emit IFirnRegistry.StakeWithdrawn(t.enclaveId, t.operator, MIN_NODE_STAKE);
        vm.prank(t.operator);
        registry.withdrawStake(t.enclaveId);
        vm.assertEq(t.operator.balance, before + MIN_NODE_STAKE, "paid");
        vm.assertEq(_status(t.enclaveId), uint256(IFirnRegistry.NodeStatus.Exited), "exited");
        vm.assertEq(registry.countByStatus(IFirnRegistry.NodeStatus.Exiting), 0, "exited ids are not listed");
        _register(t, SIM, MEASUREMENT);
        vm.assertEq(registry.getNode(t.enclaveId).round, 2, "new round");
    }

    /// @dev Squatting an Enclave ID by registering and withdrawing while Pending costs the fee
    /// every round and holds the ID for no unbonding period.
    function test_exitFromPending_freesIdAtOnceAndCostsTheFee() public {
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0.05 ether);
        TestNode memory t = _node(1);
        _register(t, SIM, MEASUREMENT);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.RegistrationWithdrawn(t.enclaveId, 1, MIN_NODE_STAKE);
        vm.prank(t.operator);
        registry.requestExit(t.enclaveId);
        vm.assertEq(_status(t.enclaveId), uint256(IFirnRegistry.NodeStatus.Exited), "exited at once");
        vm.assertEq(registry.withdrawable(t.operator), MIN_NODE_STAKE, "stake back, fee kept");
        vm.assertEq(registry.enclaveIdOf(t.enclaveAddress), bytes32(0), "address released");
        // The Enclave ID is free in the same block; each squat round cost 0.05 ether.
        _register(t, SIM, MEASUREMENT);
        registry.sweepFees();
        vm.assertEq(address(rewards).balance, 0.1 ether, "two rounds, two fees");
    }

    /// @dev An attacker registers a victim's Enclave ID (computable from public facts) with its own
    /// keys. Verifiers refuse it, the Enclave ID is free in the same block, and each attempt cost the
    /// attacker the fee; the lists clients read do not grow.
    function test_squatting_victimEnclaveIdCostsTheSquatter() public {
        registry.setParameters(MIN_NODE_STAKE, UNBONDING, 0.05 ether);
        TestNode memory victim = _node(1);
        TestNode memory squatter = _node(2);
        IFirnRegistry.RegistrationParams memory p = _params(squatter, SIM, MEASUREMENT);
        p.enclaveId = victim.enclaveId;
        for (uint256 round = 0; round < 3; ++round) {
            vm.prank(squatter.operator);
            registry.register{value: MIN_NODE_STAKE + 0.05 ether}(p);
            vm.prank(verifierList[0]);
            registry.refuse(victim.enclaveId, uint32(round) + 1, p.evidenceDigest, 2);
            vm.prank(verifierList[1]);
            registry.refuse(victim.enclaveId, uint32(round) + 1, p.evidenceDigest, 2);
        }
        vm.assertEq(registry.withdrawable(squatter.operator), 3 * MIN_NODE_STAKE, "stake back");
        registry.sweepFees();
        vm.assertEq(address(rewards).balance, 3 * 0.05 ether, "three fees lost");
        _register(victim, SIM, MEASUREMENT);
        _approveAll(victim.enclaveId, victim.evidenceDigest);
        vm.assertTrue(registry.isActive(victim.enclaveId), "victim registers at once");
    }

    function test_slash_onlySlasherAndTerminal() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotSlasher.selector, address(this)));
        registry.slash(t.enclaveId, 1, stranger, "r");
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotSlasher.selector, address(this)));
        registry.lockStake(t.enclaveId, 1);

        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeSlashed(t.enclaveId, 0.3 ether, stranger, "fault");
        vm.prank(address(market));
        registry.slash(t.enclaveId, 0.3 ether, stranger, "fault");
        vm.assertEq(stranger.balance, 0.3 ether, "beneficiary paid");
        IFirnRegistry.Node memory n = registry.getNode(t.enclaveId);
        vm.assertEq(uint256(n.status), uint256(IFirnRegistry.NodeStatus.Slashed), "slashed");
        vm.assertEq(n.stake, MIN_NODE_STAKE - 0.3 ether, "stake reduced");
        vm.assertEq(registry.countByStatus(IFirnRegistry.NodeStatus.Active), 0, "slashed ids are not listed");

        // Capped at the remaining stake.
        vm.prank(address(market));
        uint256 taken = registry.slash(t.enclaveId, 100 ether, stranger, "again");
        vm.assertEq(taken, MIN_NODE_STAKE - 0.3 ether, "capped");

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.EnclaveIdSlashed.selector, t.enclaveId));
        vm.prank(t.operator);
        registry.register{value: MIN_NODE_STAKE}(_params(t, SIM, MEASUREMENT));

        vm.warp(block.timestamp + UNBONDING);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NothingToWithdraw.selector, t.operator));
        vm.prank(t.operator);
        registry.withdrawStake(t.enclaveId);
    }

    function test_lockStake_extendsOnlyForward() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.StakeLocked(t.enclaveId, 5000);
        vm.prank(address(market));
        registry.lockStake(t.enclaveId, 5000);
        vm.prank(address(market));
        registry.lockStake(t.enclaveId, 4000);
        vm.assertEq(uint256(registry.getNode(t.enclaveId).lockedUntil), 5000, "never shortened");
    }

    /// @dev The proof-time view answers from one slot whether a node may still submit, and with
    /// which key: a node that may not gets no address (the market then refuses the proof).
    function test_proofSigner_refusesIneligibleNodes() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        TestNode memory p = _node(2);
        _register(p, SIM, MEASUREMENT);
        (address a, uint8 r) = registry.proofSigner(p.enclaveId, MEASUREMENT);
        vm.assertEq(uint256(r), 1, "pending: not active");
        vm.assertEq(a, address(0), "no address");
        (a, r) = registry.proofSigner(t.enclaveId, MEASUREMENT);
        vm.assertEq(uint256(r), 0, "eligible");
        vm.assertEq(a, t.enclaveAddress, "its enclave key");
        registry.revokeMeasurement(SIM, MEASUREMENT);
        (a, r) = registry.proofSigner(t.enclaveId, MEASUREMENT);
        vm.assertEq(uint256(r), 3, "revoked measurement");
        vm.assertEq(a, address(0), "no address once revoked");
        (, r) = registry.proofSigner(t.enclaveId, MEASUREMENT_B);
        vm.assertEq(uint256(r), 0, "another allowed measurement");
        registry.setAllowedTeeTypes(0x0c);
        (a, r) = registry.proofSigner(t.enclaveId, MEASUREMENT_B);
        vm.assertEq(uint256(r), 2, "TEE type no longer allowed");
    }

    function test_lists_indexedByStatusWithPages() public {
        TestNode memory a = _activeNode(1, SIM, MEASUREMENT);
        TestNode memory b = _node(2);
        _register(b, SIM, MEASUREMENT);
        TestNode memory c = _node(3);
        _register(c, SIM, MEASUREMENT);
        TestNode memory d = _activeNode(4, SIM, MEASUREMENT);
        // Refused and withdrawn registrations leave the lists.
        vm.prank(verifierList[0]);
        registry.refuse(c.enclaveId, 1, c.evidenceDigest, 1);
        vm.prank(verifierList[1]);
        registry.refuse(c.enclaveId, 1, c.evidenceDigest, 1);
        vm.assertEq(registry.countByStatus(IFirnRegistry.NodeStatus.Active), 2, "two active");

        bytes32[] memory page = registry.enclaveIdsByStatus(IFirnRegistry.NodeStatus.Active, 0, 1);
        vm.assertEq(page.length, 1, "page size");
        vm.assertEq(page[0], a.enclaveId, "first");
        page = registry.enclaveIdsByStatus(IFirnRegistry.NodeStatus.Active, 1, 10);
        vm.assertEq(page.length, 1, "rest");
        vm.assertEq(page[0], d.enclaveId, "second");
        vm.assertEq(registry.enclaveIdsByStatus(IFirnRegistry.NodeStatus.Active, 5, 10).length, 0, "past end");
        vm.assertEq(registry.getNode(b.enclaveId).round, 1, "b stays pending, unlisted");

        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.StatusNotIndexed.selector, IFirnRegistry.NodeStatus.Rejected)
        );
        registry.countByStatus(IFirnRegistry.NodeStatus.Rejected);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.StatusNotIndexed.selector, IFirnRegistry.NodeStatus.Exited));
        registry.enclaveIdsByStatus(IFirnRegistry.NodeStatus.Exited, 0, 1);
    }

    function test_pause_stopsRegistrationNotExitOrWithdrawal() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        address g = address(0x6A4D);
        registry.setGuardian(g);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotGuardian.selector, stranger));
        vm.prank(stranger);
        registry.pause();
        vm.expectEmit(address(registry));
        emit Pausable.Paused(g);
        vm.prank(g);
        registry.pause();

        TestNode memory u = _node(2);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(u.operator);
        registry.register{value: MIN_NODE_STAKE}(_params(u, SIM, MEASUREMENT));
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(t.operator);
        registry.rotateKeys(t.enclaveId, vm.addr(0xabc), keccak256("k"), keccak256("e"));

        vm.prank(t.operator);
        registry.requestExit(t.enclaveId);
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(t.operator);
        registry.withdrawStake(t.enclaveId);
        vm.assertEq(_status(t.enclaveId), uint256(IFirnRegistry.NodeStatus.Exited), "exit works while paused");

        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, g));
        vm.prank(g);
        registry.unpause();
        vm.expectEmit(address(registry));
        emit Pausable.Unpaused(address(this));
        registry.unpause();
    }

    function test_setSlasherAndParameters() public {
        uint64 effectiveAt = uint64(block.timestamp) + UNBONDING + 1;
        vm.expectEmit(address(registry));
        emit IFirnRegistry.SlasherChangeScheduled(address(market), stranger, effectiveAt);
        registry.setSlasher(stranger);
        (address pending, uint64 at) = registry.pendingSlasher();
        vm.assertEq(pending, stranger, "pending");
        vm.assertEq(at, effectiveAt, "after the unbonding");
        vm.expectEmit(address(registry));
        emit IFirnRegistry.ParametersUpdated(2 ether, 1 days, 0.01 ether);
        registry.setParameters(2 ether, 1 days, 0.01 ether);
        vm.assertEq(registry.minNodeStake(), 2 ether, "min");
        vm.assertEq(registry.unbondingPeriod(), 1 days, "unbonding");
        vm.assertEq(registry.registrationFee(), 0.01 ether, "fee");
        vm.assertEq(address(registry.verifierSet()), address(verifierSet), "verifier set");

        vm.expectRevert(IFirnRegistry.RewardPoolNotSet.selector);
        registry.setRewardPool(address(0));
        registry.setParameters(2 ether, 1 days, 0);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.RewardPoolSet(address(rewards), address(0));
        registry.setRewardPool(address(0));
        vm.expectRevert(IFirnRegistry.RewardPoolNotSet.selector);
        registry.setParameters(2 ether, 1 days, 1);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        registry.setParameters(0, 0, 0);
    }

    function testFuzz_register_stake(uint256 stake) public {
        stake = bound(stake, 0, 50 ether);
        TestNode memory t = _node(7);
        vm.prank(t.operator);
        if (stake < MIN_NODE_STAKE) {
            vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.StakeTooLow.selector, stake, MIN_NODE_STAKE));
        }
        registry.register{value: stake}(_params(t, SIM, MEASUREMENT));
        if (stake >= MIN_NODE_STAKE) vm.assertEq(registry.totalStaked(), stake, "total");
    }

    /// @dev Random verifier stakes and vote patterns: the outcome is exactly what the stake
    /// fractions say (> 2/3 approves, > 1/3 refuses; the first to cross wins).
    function testFuzz_weightedVotes(uint8 pattern, uint64 s0, uint64 s1, uint64 s2) public {
        _joinVerifier(address(0xF1), bound(s0, MIN_VERIFIER_STAKE, 20 ether));
        _joinVerifier(address(0xF2), bound(s1, MIN_VERIFIER_STAKE, 20 ether));
        _joinVerifier(address(0xF3), bound(s2, MIN_VERIFIER_STAKE, 20 ether));
        TestNode memory t = _node(9);
        _register(t, SIM, MEASUREMENT);
        uint256 total = verifierSet.totalActiveStake();
        uint256 yes;
        uint256 no;
        IFirnRegistry.NodeStatus expected = IFirnRegistry.NodeStatus.Pending;
        for (uint256 i = 0; i < verifierList.length; ++i) {
            if (expected != IFirnRegistry.NodeStatus.Pending) break;
            uint256 w = verifierSet.getVerifier(verifierList[i]).stake;
            vm.prank(verifierList[i]);
            if ((pattern >> i) & 1 == 1) {
                registry.approve(t.enclaveId, 1, t.evidenceDigest);
                yes += w;
                if (yes * 3 > total * 2) expected = IFirnRegistry.NodeStatus.Active;
            } else {
                registry.refuse(t.enclaveId, 1, t.evidenceDigest, 1);
                no += w;
                if (no * 3 > total) expected = IFirnRegistry.NodeStatus.Rejected;
            }
        }
        vm.assertEq(_status(t.enclaveId), uint256(expected), "outcome follows stake fractions");
        vm.assertEq(
            address(registry).balance, registry.totalStaked() + registry.totalWithdrawable(), "balance matches books"
        );
    }

    function testFuzz_withdrawTiming(uint256 wait) public {
        wait = bound(wait, 0, 3 * UNBONDING);
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        vm.prank(t.operator);
        registry.requestExit(t.enclaveId);
        vm.warp(block.timestamp + wait);
        vm.prank(t.operator);
        if (wait < UNBONDING) vm.expectRevert();
        registry.withdrawStake(t.enclaveId);
    }
}
