// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IFirnVerifierSet} from "./interfaces/IFirnVerifierSet.sol";

/// @title FirnVerifierSet
/// @notice Staked verifiers who re-check registrations and work proofs, and the quorum threshold
/// their votes must reach. A member who asked to leave stops voting at once; its stake stays
/// locked for the unbonding period so that misbehaviour found late can still be acted on.
contract FirnVerifierSet is IFirnVerifierSet, Ownable2Step, ReentrancyGuard {
    using EnumerableSet for EnumerableSet.AddressSet;

    EnumerableSet.AddressSet private _active;
    mapping(address account => Verifier) private _members;
    uint16 private _threshold;
    uint256 private _minVerifierStake;
    uint64 private _unbondingPeriod;

    constructor(address initialOwner, uint256 minStake, uint16 initialThreshold, uint64 unbonding)
        Ownable(initialOwner)
    {
        if (initialThreshold == 0) revert InvalidThreshold(initialThreshold);
        _minVerifierStake = minStake;
        _threshold = initialThreshold;
        _unbondingPeriod = unbonding;
        emit ThresholdUpdated(0, initialThreshold);
        emit ParametersUpdated(minStake, unbonding);
    }

    /// @inheritdoc IFirnVerifierSet
    function join() external payable {
        Verifier storage v = _members[msg.sender];
        if (v.status != VerifierStatus.None) revert AlreadyMember(msg.sender, v.status);
        if (msg.value < _minVerifierStake) revert StakeTooLow(msg.value, _minVerifierStake);
        v.status = VerifierStatus.Active;
        v.joinedAt = uint64(block.timestamp);
        v.unbondingEndsAt = 0;
        v.stake = msg.value;
        _active.add(msg.sender);
        emit VerifierJoined(msg.sender, msg.value);
    }

    /// @inheritdoc IFirnVerifierSet
    function requestLeave() external {
        Verifier storage v = _members[msg.sender];
        if (v.status != VerifierStatus.Active) revert NotVerifier(msg.sender);
        uint64 endsAt = uint64(block.timestamp) + _unbondingPeriod;
        v.status = VerifierStatus.Leaving;
        v.unbondingEndsAt = endsAt;
        _active.remove(msg.sender);
        emit LeaveRequested(msg.sender, endsAt);
    }

    /// @inheritdoc IFirnVerifierSet
    function withdraw() external nonReentrant {
        Verifier storage v = _members[msg.sender];
        if (v.status != VerifierStatus.Leaving) revert NotLeaving(msg.sender);
        if (block.timestamp < v.unbondingEndsAt) {
            revert StillUnbonding(msg.sender, v.unbondingEndsAt, uint64(block.timestamp));
        }
        uint256 amount = v.stake;
        delete _members[msg.sender];
        emit VerifierWithdrew(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    /// @inheritdoc IFirnVerifierSet
    function setThreshold(uint16 newThreshold) external onlyOwner {
        if (newThreshold == 0) revert InvalidThreshold(newThreshold);
        emit ThresholdUpdated(_threshold, newThreshold);
        _threshold = newThreshold;
    }

    /// @inheritdoc IFirnVerifierSet
    function setParameters(uint256 newMinVerifierStake, uint64 newUnbondingPeriod) external onlyOwner {
        _minVerifierStake = newMinVerifierStake;
        _unbondingPeriod = newUnbondingPeriod;
        emit ParametersUpdated(newMinVerifierStake, newUnbondingPeriod);
    }

    /// @inheritdoc IFirnVerifierSet
    function isVerifier(address account) external view returns (bool) {
        return _active.contains(account);
    }

    /// @inheritdoc IFirnVerifierSet
    function threshold() external view returns (uint16) {
        return _threshold;
    }

    /// @inheritdoc IFirnVerifierSet
    function verifierCount() external view returns (uint256) {
        return _active.length();
    }

    /// @inheritdoc IFirnVerifierSet
    function verifiers() external view returns (address[] memory) {
        return _active.values();
    }

    /// @inheritdoc IFirnVerifierSet
    function getVerifier(address account) external view returns (Verifier memory) {
        return _members[account];
    }

    /// @inheritdoc IFirnVerifierSet
    function minVerifierStake() external view returns (uint256) {
        return _minVerifierStake;
    }

    /// @inheritdoc IFirnVerifierSet
    function unbondingPeriod() external view returns (uint64) {
        return _unbondingPeriod;
    }
}
