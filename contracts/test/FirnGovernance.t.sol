// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {FirnGovernance} from "../src/FirnGovernance.sol";
import {IFirnJobMarket} from "../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../src/interfaces/IFirnRegistry.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

/// @notice The production hand-over (docs/decisions/0800-economics.md, "API for clients"): the
/// deployer wires and bootstraps the contracts, then hands every one of them to the timelock.
/// From then on nothing changes before the delay, and the deployer key is powerless.
contract FirnGovernanceTest is FirnFixture {
    uint256 internal constant DELAY = 2 days;
    FirnGovernance internal timelock;
    address internal proposer = address(0x9909);
    address internal guardian = address(0x6A4D);

    function setUp() public override {
        super.setUp();
        address[] memory proposers = new address[](1);
        proposers[0] = proposer;
        address[] memory executors = new address[](1);
        executors[0] = address(0); // anyone may execute a ready operation
        timelock = new FirnGovernance(DELAY, proposers, executors, address(0));
        registry.setGuardian(guardian);
        market.setGuardian(guardian);
        verifierSet.transferOwnership(address(timelock));
        registry.transferOwnership(address(timelock));
        market.transferOwnership(address(timelock));
        rewards.transferOwnership(address(timelock));
    }

    function _schedule(address target, bytes memory data, bytes32 salt) internal returns (bytes32 id) {
        id = timelock.hashOperation(target, 0, data, bytes32(0), salt);
        vm.prank(proposer);
        timelock.schedule(target, 0, data, bytes32(0), salt, DELAY);
    }

    function test_governance_actsOnlyAfterDelay() public {
        // The former deployer key no longer governs anything.
        address attacker = address(0xBAD);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        registry.setSlasher(attacker);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        market.setParameters(1, 100 ether, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        verifierSet.setAdmission(attacker, true);

        // Only a proposer schedules, and never with less than the minimum delay.
        bytes memory data = abi.encodeCall(IFirnRegistry.setSlasher, (attacker));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, timelock.PROPOSER_ROLE()
            )
        );
        vm.prank(stranger);
        timelock.schedule(address(registry), 0, data, bytes32(0), bytes32(0), DELAY);
        vm.expectRevert(abi.encodeWithSelector(TimelockController.TimelockInsufficientDelay.selector, 1, DELAY));
        vm.prank(proposer);
        timelock.schedule(address(registry), 0, data, bytes32(0), bytes32(0), 1);

        bytes32 id = _schedule(address(registry), data, bytes32("slasher"));
        vm.assertEq(registry.slasher(), address(market), "nothing changed when scheduled");
        vm.warp(block.timestamp + DELAY - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                TimelockController.TimelockUnexpectedOperationState.selector, id, bytes32(uint256(1) << 2)
            )
        );
        timelock.execute(address(registry), 0, data, bytes32(0), bytes32("slasher"));
        vm.assertEq(registry.slasher(), address(market), "still nothing one second early");

        // During the delay, everyone can see the pending change (and the guardian can pause).
        vm.assertTrue(timelock.isOperationPending(id), "visible while pending");
        vm.warp(block.timestamp + 1);
        // A slasher change then waits out the unbonding (decision 1778).
        uint64 effectiveAt = uint64(block.timestamp) + registry.unbondingPeriod() + 1;
        vm.expectEmit(address(registry));
        emit IFirnRegistry.SlasherChangeScheduled(address(market), attacker, effectiveAt);
        vm.prank(stranger);
        timelock.execute(address(registry), 0, data, bytes32(0), bytes32("slasher"));
        vm.assertTrue(timelock.isOperationDone(id), "done");
        vm.assertEq(registry.slasher(), address(market), "scheduled, not made");
        vm.warp(effectiveAt);
        vm.expectEmit(address(registry));
        emit IFirnRegistry.SlasherSet(address(market), attacker);
        vm.prank(stranger);
        registry.applySlasherChange();
        vm.assertEq(registry.slasher(), attacker, "applied after the delay and the unbonding");
    }

    function test_governance_allowListAndAdmissionGoThroughTheDelay() public {
        bytes32 m = keccak256("new-build");
        bytes memory allow = abi.encodeCall(IFirnRegistry.allowMeasurement, (TDX, m));
        _schedule(address(registry), allow, bytes32("allow"));
        address v = address(0x7E41);
        bytes memory admit = abi.encodeWithSignature("setAdmission(address,bool)", v, true);
        _schedule(address(verifierSet), admit, bytes32("admit"));
        vm.warp(block.timestamp + DELAY);
        vm.assertFalse(registry.isMeasurementAllowed(TDX, m), "not before execution");
        timelock.execute(address(registry), 0, allow, bytes32(0), bytes32("allow"));
        timelock.execute(address(verifierSet), 0, admit, bytes32(0), bytes32("admit"));
        vm.assertTrue(registry.isMeasurementAllowed(TDX, m), "allowed after delay");
        vm.assertTrue(verifierSet.isAdmitted(v), "admitted after delay");
    }

    /// @dev The guardian restricts at once (pause, revoke); lifting a restriction takes the delay.
    function test_guardian_restrictsAtOnceUnpauseWaitsForDelay() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        vm.prank(guardian);
        market.pause();
        vm.prank(guardian);
        registry.revokeMeasurement(SIM, MEASUREMENT);
        vm.assertFalse(registry.isEligible(t.enclaveId), "revoked at once");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, guardian));
        vm.prank(guardian);
        market.unpause();
        bytes memory data = abi.encodeCall(IFirnJobMarket.unpause, ());
        _schedule(address(market), data, bytes32("unpause"));
        vm.warp(block.timestamp + DELAY);
        vm.expectEmit(address(market));
        emit Pausable.Unpaused(address(timelock));
        timelock.execute(address(market), 0, data, bytes32(0), bytes32("unpause"));
        vm.assertFalse(market.paused(), "unpaused by governance");
    }
}
