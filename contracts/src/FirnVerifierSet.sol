// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IFirnVerifierSet} from "./interfaces/IFirnVerifierSet.sol";

/// @title FirnVerifierSet
/// @notice Staked verifiers admitted by governance. Quorums are fractions of the active stake in a
/// snapshot taken when a round opens; every join, leave and slash of an active member creates a new
/// snapshot (id -> total active stake). A member who asked to leave stops voting at once; its stake
/// stays locked and slashable for the unbonding period. Every snapshot counts only stake that can
/// vote: a raised minimum deactivates the members below it (decision 1705), and a member's weight in
/// a round is never more than the stake that round's snapshot counted for it (a top-up counts from
/// the snapshot it creates). See docs/decisions/0800-economics.md.
contract FirnVerifierSet is IFirnVerifierSet, Ownable, ReentrancyGuard {
    using EnumerableSet for EnumerableSet.AddressSet;
    using Checkpoints for Checkpoints.Trace208;

    EnumerableSet.AddressSet private _active;
    mapping(address account => Verifier) private _members;
    mapping(address account => bool) private _admitted;
    mapping(uint64 snapshotId => uint256 totalActiveStake) private _totalAt;
    uint64 private _snapshot;
    uint256 private _totalActiveStake;
    address private _slasher;
    /// @dev The second the scheduled slasher may take over (0: none) and the latest unbonding end of
    /// a leave requested under a longer unbonding period than today's, in `_slasher`'s slot
    /// (decision 1778).
    uint40 private _slasherChangeAt;
    uint40 private _leaveCover;
    uint256 private _minVerifierStake;
    uint64 private _unbondingPeriod;
    /// @dev Per member, one checkpoint per top-up: key = the snapshot id the top-up created, value =
    /// the stake (wei) before it. A round opened at an earlier snapshot weighs the member at most at
    /// the stake before the first later top-up, which is what that round's total counted.
    mapping(address account => Checkpoints.Trace208) private _stakeBeforeTopUp;
    /// @dev The latest snapshot that took counted stake away from members (a leave, a deactivation or
    /// a slash of an active member). A round opened at or after it loses no voice (decision 1720).
    uint64 private _lastReduction;
    /// @dev The slasher scheduled by `setSlasher`, taking over at `_slasherChangeAt` (decision 1778).
    address private _pendingSlasher;

    /// @param initialOwner the deployer during bootstrap, then the timelock (FirnGovernance)
    /// @param minStake minimum stake to join (wei)
    /// @param unbonding seconds between requestLeave and withdraw
    constructor(address initialOwner, uint256 minStake, uint64 unbonding) Ownable(initialOwner) {
        _minVerifierStake = minStake;
        _unbondingPeriod = unbonding;
        emit ParametersUpdated(minStake, unbonding);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IFirnVerifierSet
    function setAdmission(address account, bool admitted) external onlyOwner {
        _admitted[account] = admitted;
        emit AdmissionSet(account, admitted);
    }

    /// @inheritdoc IFirnVerifierSet
    /// @dev Decision 1778: the change waits until every member can have withdrawn: the unbonding of
    /// a leave requested now, and of any leave requested under a longer period before
    /// (`_leaveCover`). Immediate only while no slasher is set and the set holds no stake.
    function setSlasher(address newSlasher) external onlyOwner {
        uint40 changeAt = _slasherChangeAt;
        if (changeAt != 0) {
            if (block.timestamp >= changeAt) _applySlasherChange();
            else if (newSlasher == _pendingSlasher) return; // already scheduled: keeps its time
            else _cancelSlasherChange();
        }
        address current = _slasher;
        if (newSlasher == current) return;
        if (current == address(0) && address(this).balance == 0) {
            emit SlasherSet(current, newSlasher);
            _slasher = newSlasher;
            return;
        }
        uint256 at = block.timestamp + _unbondingPeriod;
        if (_leaveCover > at) at = _leaveCover;
        // A second after the last withdrawal it waits for, so none races the new slasher's first call.
        uint40 effectiveAt = SafeCast.toUint40(at + 1);
        _pendingSlasher = newSlasher;
        _slasherChangeAt = effectiveAt;
        emit SlasherChangeScheduled(current, newSlasher, effectiveAt);
    }

    /// @inheritdoc IFirnVerifierSet
    function applySlasherChange() external {
        uint40 changeAt = _slasherChangeAt;
        if (changeAt == 0 || block.timestamp < changeAt) revert SlasherChangeNotDue(_pendingSlasher, changeAt);
        _applySlasherChange();
    }

    /// @dev The scheduled slasher takes over (its time has come; decision 1778).
    function _applySlasherChange() private {
        address next = _pendingSlasher;
        emit SlasherSet(_slasher, next);
        _slasher = next;
        _slasherChangeAt = 0;
        delete _pendingSlasher;
    }

    /// @dev Forgets the scheduled slasher before its time.
    function _cancelSlasherChange() private {
        emit SlasherChangeCancelled(_pendingSlasher);
        _slasherChangeAt = 0;
        delete _pendingSlasher;
    }

    /// @inheritdoc IFirnVerifierSet
    /// @dev A raise walks the active set once (bounded by the members governance admitted) so that
    /// no later snapshot counts stake that `voteWeight` gives no vote (decision 1705). A raised
    /// unbonding period moves a pending slasher change to at least now + the new period + 1
    /// (decision 1781): leaves requested (or deactivations made) from now on unbond that long.
    function setParameters(uint256 newMinVerifierStake, uint64 newUnbondingPeriod) external onlyOwner {
        uint256 oldMin = _minVerifierStake;
        _minVerifierStake = newMinVerifierStake;
        uint64 oldUnbonding = _unbondingPeriod;
        if (newUnbondingPeriod < oldUnbonding) {
            // Leaves requested so far may end as late as this: a slasher scheduled later waits for
            // them although the new period is shorter (decision 1778).
            uint40 cover = SafeCast.toUint40(block.timestamp + oldUnbonding);
            if (cover > _leaveCover) _leaveCover = cover;
        } else if (newUnbondingPeriod > oldUnbonding) {
            // Leaves requested before keep their end, before the pending change's time; those
            // requested from now on unbond longer, and the change waits for them (decision 1781).
            uint40 changeAt = _slasherChangeAt;
            if (changeAt != 0 && block.timestamp < changeAt) {
                uint40 effectiveAt = SafeCast.toUint40(block.timestamp + uint256(newUnbondingPeriod) + 1);
                if (effectiveAt > changeAt) {
                    _slasherChangeAt = effectiveAt;
                    emit SlasherChangeScheduled(_slasher, _pendingSlasher, effectiveAt);
                }
            }
        }
        _unbondingPeriod = newUnbondingPeriod;
        emit ParametersUpdated(newMinVerifierStake, newUnbondingPeriod);
        if (newMinVerifierStake > oldMin) _deactivateBelow(newMinVerifierStake, newUnbondingPeriod);
    }

    // ---------------------------------------------------------------- members

    /// @inheritdoc IFirnVerifierSet
    function join() external payable {
        if (!_admitted[msg.sender]) revert NotAdmitted(msg.sender);
        Verifier storage v = _members[msg.sender];
        if (v.status != VerifierStatus.None) revert AlreadyMember(msg.sender, v.status);
        if (msg.value < _minVerifierStake) revert StakeTooLow(msg.value, _minVerifierStake);
        uint64 id = _recordTotal(_totalActiveStake + msg.value);
        v.status = VerifierStatus.Active;
        v.joinedAt = uint64(block.timestamp);
        v.unbondingEndsAt = 0;
        v.joinedSnapshot = id;
        v.stake = msg.value;
        _active.add(msg.sender);
        emit VerifierJoined(msg.sender, msg.value, id);
    }

    /// @inheritdoc IFirnVerifierSet
    function addStake() external payable {
        Verifier storage v = _members[msg.sender];
        if (v.status != VerifierStatus.Active) revert NotVerifier(msg.sender);
        if (msg.value == 0) revert EmptyTopUp(msg.sender);
        uint256 before = v.stake;
        uint64 id = _recordTotal(_totalActiveStake + msg.value);
        // Rounds opened before this snapshot counted `before` for this member: it votes there with no more.
        _stakeBeforeTopUp[msg.sender].push(SafeCast.toUint48(id), SafeCast.toUint208(before));
        uint256 stake = before + msg.value;
        v.stake = stake;
        emit StakeAdded(msg.sender, msg.value, stake, id);
    }

    /// @inheritdoc IFirnVerifierSet
    function requestLeave() external {
        Verifier storage v = _members[msg.sender];
        if (v.status != VerifierStatus.Active) revert NotVerifier(msg.sender);
        uint64 endsAt = uint64(block.timestamp) + _unbondingPeriod;
        v.status = VerifierStatus.Leaving;
        v.unbondingEndsAt = endsAt;
        _active.remove(msg.sender);
        uint64 id = _recordTotal(_totalActiveStake - v.stake);
        _lastReduction = id;
        emit LeaveRequested(msg.sender, endsAt, id);
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
        _pay(msg.sender, amount);
    }

    // ---------------------------------------------------------------- slashing

    /// @inheritdoc IFirnVerifierSet
    /// @dev Only the slasher (the job market, for a provably wrong dispute). Leaving members are
    /// still slashable: their unbonding exists for this. A Leaving member's unbonding end is left as
    /// it is (decision 1781: a restart would carry an objector's remainder past a scheduled slasher
    /// change); only an Active member deactivated here starts unbonding. Once a Leaving member's
    /// unbonding has ended (`withdraw` would pay) its stake is out of reach: the call takes nothing
    /// and changes nothing.
    function slash(address verifier, uint256 amount, address beneficiary, bytes32 reason)
        external
        nonReentrant
        returns (uint256 slashed)
    {
        if (msg.sender != _slasher || msg.sender == address(0)) {
            // The scheduled slasher takes over on its first call once its time has come (1778).
            uint40 changeAt = _slasherChangeAt;
            if (
                changeAt == 0 || block.timestamp < changeAt || msg.sender != _pendingSlasher
                    || msg.sender == address(0)
            ) revert NotSlasher(msg.sender);
            _applySlasherChange();
        }
        Verifier storage v = _members[verifier];
        if (v.status == VerifierStatus.None) revert NotVerifier(verifier);
        // Unbonded: the stake is the member's to withdraw, whoever slashes now (decision 1781).
        if (v.status == VerifierStatus.Leaving && block.timestamp >= v.unbondingEndsAt) return 0;
        uint256 before = v.stake;
        slashed = amount < before ? amount : before;
        uint256 remaining = before - slashed;
        v.stake = remaining;
        if (v.status == VerifierStatus.Active) {
            if (remaining < _minVerifierStake) {
                // Below the minimum nothing worth a vote is at risk: out of the active set at once.
                uint64 endsAt = uint64(block.timestamp) + _unbondingPeriod;
                v.status = VerifierStatus.Leaving;
                v.unbondingEndsAt = endsAt;
                _active.remove(verifier);
                uint64 id = _recordTotal(_totalActiveStake - before);
                _lastReduction = id;
                emit VerifierDeactivated(verifier, remaining, _minVerifierStake, endsAt, id);
            } else if (slashed != 0) {
                _lastReduction = _recordTotal(_totalActiveStake - slashed);
            }
        }
        emit VerifierSlashed(verifier, slashed, beneficiary, reason);
        _pay(beneficiary, slashed);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IFirnVerifierSet
    function isVerifier(address account) external view returns (bool) {
        return _active.contains(account) && _members[account].stake >= _minVerifierStake;
    }

    /// @inheritdoc IFirnVerifierSet
    function activeStake(address account) external view returns (uint256) {
        uint256 stake = _members[account].stake;
        return _active.contains(account) && stake >= _minVerifierStake ? stake : 0;
    }

    /// @inheritdoc IFirnVerifierSet
    function activeStakeAndTotal(address account) external view returns (uint256 stake, uint256 totalActive) {
        stake = _members[account].stake;
        if (!_active.contains(account) || stake < _minVerifierStake) stake = 0;
        totalActive = _totalActiveStake;
    }

    /// @inheritdoc IFirnVerifierSet
    function isAdmitted(address account) external view returns (bool) {
        return _admitted[account];
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
    function totalActiveStake() external view returns (uint256) {
        return _totalActiveStake;
    }

    /// @inheritdoc IFirnVerifierSet
    function currentSnapshot() external view returns (uint64) {
        return _snapshot;
    }

    /// @inheritdoc IFirnVerifierSet
    function totalStakeAt(uint64 snapshotId) external view returns (uint256) {
        if (snapshotId > _snapshot) revert UnknownSnapshot(snapshotId, _snapshot);
        return _totalAt[snapshotId];
    }

    /// @inheritdoc IFirnVerifierSet
    function voteWeight(address account, uint64 snapshotId) external view returns (uint256) {
        return _voteWeight(account, snapshotId);
    }

    /// @inheritdoc IFirnVerifierSet
    function minVerifierStake() external view returns (uint256) {
        return _minVerifierStake;
    }

    /// @inheritdoc IFirnVerifierSet
    function lastReduction() external view returns (uint64) {
        return _lastReduction;
    }

    /// @inheritdoc IFirnVerifierSet
    /// @dev Walks the active set (bounded by the members governance admitted, as the raise in
    /// decision 1705 does) and the voters (one per member and round). Rounds call it only when
    /// `lastReduction()` is after their snapshot; otherwise it is `totalStakeAt(snapshotId)`.
    function quorumStakeAt(uint64 snapshotId, address[] calldata voters, uint256 cast) external view returns (uint256) {
        if (snapshotId > _snapshot) revert UnknownSnapshot(snapshotId, _snapshot);
        uint256 total = _totalAt[snapshotId];
        if (_lastReduction <= snapshotId) return total;
        // Weight every member counted there can still cast, less what its voters can still cast
        // (their votes are in `cast` with the weight they had): what the round still waits for.
        // Alongside, the floor's active stake (decision 1783): each active member's stake as it
        // was before any top-up made after the round's snapshot (members counted there) or after
        // its own join (members that joined since), so a top-up, which needs no admission, never
        // raises the bar; joins, which governance admits, do.
        uint256 left = cast;
        uint256 activeFloor;
        uint256 n = _active.length();
        for (uint256 i = 0; i < n; ++i) {
            address account = _active.at(i);
            uint64 joined = _members[account].joinedSnapshot;
            if (joined > snapshotId) {
                activeFloor += _stakeBeforeTopUpAfter(account, joined);
            } else {
                left += _voteWeight(account, snapshotId);
                activeFloor += _stakeBeforeTopUpAfter(account, snapshotId);
            }
        }
        uint256 votersNow;
        for (uint256 i = 0; i < voters.length; ++i) {
            votersNow += _voteWeight(voters[i], snapshotId);
        }
        left -= votersNow;
        uint256 shrunk = left < total ? left : total;
        // Never below the stake active now (decision 1758), with the weight of votes whose voters
        // have left since counted as if still active (decision 1779): a snapshot's members leaving
        // or rejoining under new keys cannot hand its remaining voters a decision they are a
        // minority of the network for, and voters leaving after their vote cannot lower the floor
        // under their own vote. Never above the snapshot's total (decision 1779): more than two
        // thirds of the stake the round counted decides it, whoever joined since and cannot vote.
        uint256 departed = cast > votersNow ? cast - votersNow : 0;
        uint256 floor = activeFloor + departed;
        if (floor > total) floor = total;
        return shrunk > floor ? shrunk : floor;
    }

    /// @inheritdoc IFirnVerifierSet
    function unbondingPeriod() external view returns (uint64) {
        return _unbondingPeriod;
    }

    /// @inheritdoc IFirnVerifierSet
    function slasher() external view returns (address) {
        return _slasher;
    }

    /// @inheritdoc IFirnVerifierSet
    function pendingSlasher() external view returns (address pending, uint64 effectiveAt) {
        return (_pendingSlasher, _slasherChangeAt);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Moves every active member holding less than `min` out of the active set (status Leaving,
    /// unbonding `unbonding` seconds from now, VerifierDeactivated), then records one snapshot without
    /// their stake. Walks the set backwards: EnumerableSet.remove moves the last member into the freed
    /// index, one already visited.
    function _deactivateBelow(uint256 min, uint64 unbonding) private {
        uint64 endsAt = uint64(block.timestamp) + unbonding;
        uint64 id = _snapshot + 1; // the snapshot _recordTotal creates below
        uint256 removed;
        for (uint256 i = _active.length(); i > 0; --i) {
            address account = _active.at(i - 1);
            Verifier storage v = _members[account];
            uint256 stake = v.stake;
            if (stake >= min) continue;
            v.status = VerifierStatus.Leaving;
            v.unbondingEndsAt = endsAt;
            _active.remove(account);
            removed += stake;
            emit VerifierDeactivated(account, stake, min, endsAt, id);
        }
        if (removed != 0) _lastReduction = _recordTotal(_totalActiveStake - removed);
    }

    /// @dev See `voteWeight`: 0 unless active now and counted at `snapshotId`, capped by the stake
    /// that snapshot counted.
    function _voteWeight(address account, uint64 snapshotId) private view returns (uint256) {
        Verifier storage v = _members[account];
        if (v.status != VerifierStatus.Active || v.joinedSnapshot > snapshotId) return 0;
        // A member below the minimum (raised by governance since it joined) has too little at risk.
        if (v.stake < _minVerifierStake) return 0;
        // A top-up after the round's snapshot adds nothing to the round: its total did not count it.
        return _stakeBeforeTopUpAfter(account, snapshotId);
    }

    /// @dev `account`'s stake now (wei), capped by what it held before its first top-up recorded
    /// after snapshot `since`: stake added after `since` does not count. See `_voteWeight`.
    function _stakeBeforeTopUpAfter(address account, uint64 since) private view returns (uint256 stake) {
        stake = _members[account].stake;
        Checkpoints.Trace208 storage topUps = _stakeBeforeTopUp[account];
        (bool exists, uint48 lastTopUp,) = topUps.latestCheckpoint();
        if (exists && lastTopUp > since) {
            uint256 counted = topUps.lowerLookup(SafeCast.toUint48(uint256(since) + 1));
            if (counted < stake) stake = counted;
        }
    }

    /// @dev Sets the active total and records it under a new snapshot id.
    function _recordTotal(uint256 total) private returns (uint64 id) {
        id = ++_snapshot;
        _totalActiveStake = total;
        _totalAt[id] = total;
        emit ActiveStakeChanged(id, total);
    }

    function _pay(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
