// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IFirnRegistry} from "../src/interfaces/IFirnRegistry.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

contract FirnRegistryTest is FirnFixture {
    function test_allowMeasurement_ownerOnlyAndEvents() public {
        bytes32 m = keccak256("m");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        registry.allowMeasurement(TDX, m);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.InvalidTeeType.selector, uint8(4)));
        registry.allowMeasurement(4, m);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.MeasurementAllowed(TDX, m);
        registry.allowMeasurement(TDX, m);
        vm.assertTrue(registry.isMeasurementAllowed(TDX, m), "allowed");
        vm.expectEmit(address(registry));
        emit IFirnRegistry.MeasurementRevoked(TDX, m);
        registry.revokeMeasurement(TDX, m);
        vm.assertFalse(registry.isMeasurementAllowed(TDX, m), "revoked");
    }

    function test_register_emitsAndStores() public {
        TestNode memory t = _node(1);
        IFirnRegistry.RegistrationParams memory p = _params(t, SIM, MEASUREMENT);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeRegistered(
            t.enclaveId,
            t.operator,
            1,
            SIM,
            MEASUREMENT,
            t.enclaveAddress,
            p.kemPublicKey,
            p.endpoint,
            t.evidenceDigest,
            MIN_NODE_STAKE
        );
        vm.prank(t.operator);
        registry.register{value: MIN_NODE_STAKE}(p);
        IFirnRegistry.Node memory n = registry.getNode(t.enclaveId);
        vm.assertEq(uint256(n.status), uint256(IFirnRegistry.NodeStatus.Pending), "pending");
        vm.assertEq(n.operator, t.operator, "operator");
        vm.assertEq(n.stake, MIN_NODE_STAKE, "stake");
        vm.assertEq(registry.enclaveIdOf(t.enclaveAddress), t.enclaveId, "reverse map");
        vm.assertEq(registry.enclaveIds().length, 1, "listed");
        vm.assertEq(address(registry).balance, MIN_NODE_STAKE, "balance");
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

        p = _params(t, SIM, MEASUREMENT);
        p.enclaveAddress = address(0);
        vm.expectRevert(IFirnRegistry.ZeroEnclaveAddress.selector);
        registry.register{value: MIN_NODE_STAKE}(p);

        p = _params(t, SIM, MEASUREMENT);
        p.enclaveId = bytes32(0);
        vm.expectRevert(IFirnRegistry.ZeroEnclaveId.selector);
        registry.register{value: MIN_NODE_STAKE}(p);

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

    function test_approve_quorumActivates() public {
        TestNode memory t = _node(1);
        _register(t, SIM, MEASUREMENT);

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotVerifier.selector, stranger));
        vm.prank(stranger);
        registry.approve(t.enclaveId, t.evidenceDigest);

        bytes32 other = keccak256("other evidence");
        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.EvidenceMismatch.selector, t.enclaveId, t.evidenceDigest, other)
        );
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, other);

        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeApproved(t.enclaveId, verifierList[0], 1, 1);
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, t.evidenceDigest);
        vm.assertFalse(registry.isActive(t.enclaveId), "one vote is not a quorum");

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.AlreadyVoted.selector, t.enclaveId, 1, verifierList[0]));
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, t.evidenceDigest);

        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeApproved(t.enclaveId, verifierList[1], 1, 2);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeActivated(t.enclaveId, 1);
        vm.prank(verifierList[1]);
        registry.approve(t.enclaveId, t.evidenceDigest);
        vm.assertTrue(registry.isActive(t.enclaveId), "active");

        vm.expectRevert(
            abi.encodeWithSelector(IFirnRegistry.NoOpenRound.selector, t.enclaveId, IFirnRegistry.NodeStatus.Active)
        );
        vm.prank(verifierList[2]);
        registry.approve(t.enclaveId, t.evidenceDigest);
    }

    function test_refuse_quorumRejectsRefundsAndAllowsNewRound() public {
        TestNode memory t = _node(1);
        _register(t, SIM, MEASUREMENT);
        uint256 before = t.operator.balance;
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeRefused(t.enclaveId, verifierList[0], 42, 1, 1);
        vm.prank(verifierList[0]);
        registry.refuse(t.enclaveId, t.evidenceDigest, 42);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeRejected(t.enclaveId, 1, MIN_NODE_STAKE);
        vm.prank(verifierList[1]);
        registry.refuse(t.enclaveId, t.evidenceDigest, 43);
        vm.assertEq(uint256(registry.getNode(t.enclaveId).status), uint256(IFirnRegistry.NodeStatus.Rejected), "rej");
        vm.assertEq(t.operator.balance, before + MIN_NODE_STAKE, "refunded");
        vm.assertEq(registry.enclaveIdOf(t.enclaveAddress), bytes32(0), "address released");

        // New evidence, new round; earlier voters may vote again.
        IFirnRegistry.RegistrationParams memory p = _params(t, SIM, MEASUREMENT);
        p.evidenceDigest = keccak256("new evidence");
        vm.prank(t.operator);
        registry.register{value: MIN_NODE_STAKE}(p);
        vm.assertEq(registry.getNode(t.enclaveId).round, 2, "round 2");
        _approveAll(t.enclaveId, p.evidenceDigest);
        vm.assertTrue(registry.isActive(t.enclaveId), "active in round 2");
        vm.assertEq(registry.enclaveIds().length, 1, "listed once");
    }

    function test_leavingVerifierNoLongerVotes() public {
        TestNode memory t = _node(1);
        _register(t, SIM, MEASUREMENT);
        vm.prank(verifierList[0]);
        verifierSet.requestLeave();
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotVerifier.selector, verifierList[0]));
        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, t.evidenceDigest);
    }

    function test_rotateKeys_approvedAndRefused() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        address newAddr = vm.addr(0xabc);
        bytes32 newKem = keccak256("kem2");
        bytes32 newEv = keccak256("ev2");

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotOperator.selector, t.enclaveId, stranger));
        vm.prank(stranger);
        registry.rotateKeys(t.enclaveId, newAddr, newKem, newEv);

        vm.expectEmit(address(registry));
        emit IFirnRegistry.KeyRotationRequested(t.enclaveId, 2, newAddr, newKem, newEv);
        vm.prank(t.operator);
        registry.rotateKeys(t.enclaveId, newAddr, newKem, newEv);
        vm.assertTrue(registry.isActive(t.enclaveId), "stays active");
        vm.assertEq(registry.getNode(t.enclaveId).enclaveAddress, t.enclaveAddress, "old keys in force");

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.RotationPending.selector, t.enclaveId));
        vm.prank(t.operator);
        registry.rotateKeys(t.enclaveId, newAddr, newKem, newEv);

        vm.prank(verifierList[0]);
        registry.approve(t.enclaveId, newEv);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.KeysRotated(t.enclaveId, 2, newAddr, newKem);
        vm.prank(verifierList[1]);
        registry.approve(t.enclaveId, newEv);
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
        registry.refuse(t.enclaveId, keccak256("ev3"), 1);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.KeyRotationRefused(t.enclaveId, 3);
        vm.prank(verifierList[2]);
        registry.refuse(t.enclaveId, keccak256("ev3"), 1);
        vm.assertEq(registry.getNode(t.enclaveId).enclaveAddress, newAddr, "kept");
        vm.assertTrue(registry.isActive(t.enclaveId), "still active");
        vm.assertEq(registry.enclaveIdOf(third), bytes32(0), "pending address released");
    }

    function test_updateEndpoint() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.EndpointUpdated(t.enclaveId, "https://new.example");
        vm.prank(t.operator);
        registry.updateEndpoint(t.enclaveId, "https://new.example");
        vm.assertEq(registry.getNode(t.enclaveId).endpoint, "https://new.example", "endpoint");
    }

    function test_exit_unbondsThenPaysAndAllowsReRegistration() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        uint64 endsAt = uint64(block.timestamp) + UNBONDING;
        vm.expectEmit(address(registry));
        emit IFirnRegistry.ExitRequested(t.enclaveId, endsAt);
        vm.prank(t.operator);
        registry.requestExit(t.enclaveId);
        vm.assertFalse(registry.isActive(t.enclaveId), "not active while exiting");

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
        vm.assertEq(uint256(registry.getNode(t.enclaveId).status), uint256(IFirnRegistry.NodeStatus.Exited), "exited");
        _register(t, SIM, MEASUREMENT);
        vm.assertEq(registry.getNode(t.enclaveId).round, 2, "new round");
    }

    function test_slash_onlySlasherAndTerminal() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.NotSlasher.selector, address(this)));
        registry.slash(t.enclaveId, 1, stranger, "r");

        vm.expectEmit(address(registry));
        emit IFirnRegistry.NodeSlashed(t.enclaveId, 0.3 ether, stranger, "fault");
        vm.prank(address(market));
        registry.slash(t.enclaveId, 0.3 ether, stranger, "fault");
        vm.assertEq(stranger.balance, 0.3 ether, "beneficiary paid");
        IFirnRegistry.Node memory n = registry.getNode(t.enclaveId);
        vm.assertEq(uint256(n.status), uint256(IFirnRegistry.NodeStatus.Slashed), "slashed");
        vm.assertEq(n.stake, MIN_NODE_STAKE - 0.3 ether, "stake reduced");

        // Capped at the remaining stake.
        vm.prank(address(market));
        uint256 taken = registry.slash(t.enclaveId, 100 ether, stranger, "again");
        vm.assertEq(taken, MIN_NODE_STAKE - 0.3 ether, "capped");

        vm.expectRevert(abi.encodeWithSelector(IFirnRegistry.EnclaveIdSlashed.selector, t.enclaveId));
        vm.prank(t.operator);
        registry.register{value: MIN_NODE_STAKE}(_params(t, SIM, MEASUREMENT));
    }

    function test_setSlasherAndParameters() public {
        vm.expectEmit(address(registry));
        emit IFirnRegistry.SlasherSet(address(market), stranger);
        registry.setSlasher(stranger);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.ParametersUpdated(2 ether, 1 days);
        registry.setParameters(2 ether, 1 days);
        vm.assertEq(registry.minNodeStake(), 2 ether, "min");
        vm.assertEq(registry.unbondingPeriod(), 1 days, "unbonding");
        vm.assertEq(address(registry.verifierSet()), address(verifierSet), "verifier set");
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

    /// @dev Random approve/refuse sequences: exactly one outcome once either side reaches the quorum.
    function testFuzz_votes(uint8 pattern, uint8 threshold) public {
        uint16 th = uint16(bound(threshold, 1, 3));
        verifierSet.setThreshold(th);
        TestNode memory t = _node(9);
        _register(t, SIM, MEASUREMENT);
        uint256 approvals;
        uint256 refusals;
        for (uint256 i = 0; i < verifierList.length; ++i) {
            IFirnRegistry.NodeStatus s = registry.getNode(t.enclaveId).status;
            if (s != IFirnRegistry.NodeStatus.Pending) break;
            vm.prank(verifierList[i]);
            if ((pattern >> i) & 1 == 1) {
                registry.approve(t.enclaveId, t.evidenceDigest);
                approvals++;
            } else {
                registry.refuse(t.enclaveId, t.evidenceDigest, 1);
                refusals++;
            }
        }
        IFirnRegistry.NodeStatus end = registry.getNode(t.enclaveId).status;
        if (approvals >= th) vm.assertEq(uint256(end), uint256(IFirnRegistry.NodeStatus.Active), "active");
        else if (refusals >= th) vm.assertEq(uint256(end), uint256(IFirnRegistry.NodeStatus.Rejected), "rejected");
        else vm.assertEq(uint256(end), uint256(IFirnRegistry.NodeStatus.Pending), "pending");
        vm.assertEq(address(registry).balance, registry.totalStaked(), "balance matches stakes");
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
