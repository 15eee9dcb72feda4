// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title IFirnVerifierSet
/// @notice Staked verifiers admitted by governance, weighted by stake. Quorums elsewhere are
/// fractions of the active stake recorded in a snapshot when a round opens (registration, key
/// rotation, work proof); a verifier votes in a round only when it was active at that snapshot.
/// Stake is at risk: the slasher (the job market) takes it for a provably wrong vote.
/// See docs/decisions/0800-economics.md.
interface IFirnVerifierSet {
    /// @notice Membership state of one account.
    enum VerifierStatus {
        None,
        Active,
        Leaving
    }

    /// @notice One member's record. `joinedSnapshot` is the snapshot id its join created: it may
    /// vote in rounds whose snapshot id is >= this. `stake` is its vote weight (wei).
    struct Verifier {
        VerifierStatus status;
        uint64 joinedAt;
        uint64 unbondingEndsAt;
        uint64 joinedSnapshot;
        uint256 stake;
    }

    error StakeTooLow(uint256 sent, uint256 min);
    error NotAdmitted(address account);
    error AlreadyMember(address account, VerifierStatus status);
    error NotVerifier(address account);
    error NotLeaving(address account);
    error StillUnbonding(address account, uint64 unbondingEndsAt, uint64 nowTime);
    error NotSlasher(address caller);
    /// @notice `applySlasherChange` before the scheduled slasher's time (`effectiveAt`, 0: none).
    error SlasherChangeNotDue(address pendingSlasher, uint64 effectiveAt);
    error UnknownSnapshot(uint64 snapshotId, uint64 latest);
    error TransferFailed(address to, uint256 amount);
    /// @notice addStake was called without value: send the wei to add as msg.value.
    error EmptyTopUp(address account);

    event AdmissionSet(address indexed account, bool admitted);
    event VerifierJoined(address indexed verifier, uint256 stake, uint64 snapshotId);
    event LeaveRequested(address indexed verifier, uint64 unbondingEndsAt, uint64 snapshotId);
    event VerifierWithdrew(address indexed verifier, uint256 amount);
    event VerifierSlashed(address indexed verifier, uint256 amount, address indexed beneficiary, bytes32 reason);
    event ActiveStakeChanged(uint64 indexed snapshotId, uint256 totalActiveStake);
    /// @notice `newSlasher` took over: at once while no slasher was set and the set held no stake,
    /// else on the first call after its scheduled time (its own `slash` or anyone's
    /// `applySlasherChange`; decision 1778).
    event SlasherSet(address indexed previousSlasher, address indexed newSlasher);
    /// @notice Governance changed the slasher: `pendingSlasher` may act from `effectiveAt` (unix s)
    /// on, after every member that asks to leave now (or asked under a longer unbonding) can have
    /// withdrawn; `currentSlasher` keeps slashing until then (decision 1778). Emitted again, with
    /// the later time, when a raised unbonding period moves a pending change (decision 1781).
    event SlasherChangeScheduled(address indexed currentSlasher, address indexed pendingSlasher, uint64 effectiveAt);
    /// @notice The scheduled change to `pendingSlasher` was dropped before its time (another change,
    /// or the current slasher set again).
    event SlasherChangeCancelled(address indexed pendingSlasher);
    event ParametersUpdated(uint256 minVerifierStake, uint64 unbondingPeriod);
    /// @notice A slash, or governance raising `minVerifierStake` (decision 1705), left an active
    /// member below `minVerifierStake`: it left the active set at once (snapshot `snapshotId`) and
    /// its remaining stake unbonds until `unbondingEndsAt`.
    event VerifierDeactivated(
        address indexed verifier, uint256 remainingStake, uint256 minVerifierStake, uint64 unbondingEndsAt, uint64 snapshotId
    );

    /// @notice An active member added `amount` wei; its stake is now `stake`, counted from snapshot
    /// `snapshotId` on (decision 1705).
    event StakeAdded(address indexed verifier, uint256 amount, uint256 stake, uint64 snapshotId);

    /// @notice Join with a stake of at least `minVerifierStake()` (msg.value). Only accounts that
    /// governance admitted may join (reverts NotAdmitted, AlreadyMember, StakeTooLow).
    function join() external payable;

    /// @notice Active member: add msg.value (wei) to its stake, e.g. to stay at or above a raised
    /// `minVerifierStake` while governance's delay runs (decision 1705). Creates a new snapshot: the
    /// member votes with the larger stake in rounds opened from it on, and with the stake it had
    /// before in rounds opened earlier, whose totals counted only that (reverts NotVerifier for an
    /// account that is not an active member, EmptyTopUp without value).
    function addStake() external payable;

    /// @notice Stop voting at once and start the unbonding period (reverts NotVerifier). The stake
    /// stays slashable until withdrawn.
    function requestLeave() external;

    /// @notice Take the remaining stake back after the unbonding period (pull; pays msg.sender).
    function withdraw() external;

    /// @notice Owner (timelock): admit or un-admit an account. Un-admitting does not remove a member.
    function setAdmission(address account, bool admitted) external;

    /// @notice Owner (timelock): the contract allowed to slash verifiers (the job market). The change
    /// is scheduled (SlasherChangeScheduled), not made: the new slasher may act only after the later
    /// of the unbonding period from now and the end of any leave requested under a longer period
    /// (plus one second), so a member that objects can leave with its stake first; the current
    /// slasher keeps working until then (decision 1778). Immediate while no slasher is set and the
    /// set holds no stake (deployment). Setting the pending slasher again keeps its time; another
    /// address, the current one included, cancels it.
    function setSlasher(address newSlasher) external;

    /// @notice Anyone: make the scheduled slasher the current one once its time has come (it also
    /// takes over on its own first `slash`); else SlasherChangeNotDue.
    function applySlasherChange() external;

    /// @notice Owner (timelock): minimum stake (wei) and unbonding period (seconds). Raising the
    /// minimum deactivates, in the same call, every active member holding less (status Leaving,
    /// unbonding from now, VerifierDeactivated, one new snapshot without their stake), so that no
    /// quorum counts stake that cannot vote (decision 1705); members top up with addStake before
    /// the change executes. Walks the active set once. Raising the unbonding period while a
    /// slasher change is pending moves the change to at least now + the new period + 1 s and emits
    /// SlasherChangeScheduled again with that time (decision 1781), so a member that asks to leave
    /// when the raise executes (or is deactivated by it) still withdraws first.
    function setParameters(uint256 newMinVerifierStake, uint64 newUnbondingPeriod) external;

    /// @notice Slasher only: take up to `amount` of `verifier`'s stake (Active or Leaving) and send it
    /// to `beneficiary`. Returns the amount taken (capped at the stake). An active member left below
    /// `minVerifierStake` leaves the active set in the same call (status Leaving, unbonding from
    /// now, new snapshot, VerifierDeactivated): without the minimum at risk it can neither vote,
    /// challenge nor earn. A Leaving member keeps its unbonding end (a slash never makes it later,
    /// decision 1781); once that end has passed (it may withdraw) nothing is taken and nothing
    /// changes (returns 0, no event).
    function slash(address verifier, uint256 amount, address beneficiary, bytes32 reason)
        external
        returns (uint256 slashed);

    /// @notice True when `account` has joined, not requested to leave (nor been deactivated by a
    /// slash or a raised minimum, decision 1705) and holds at least `minVerifierStake()`.
    function isVerifier(address account) external view returns (bool);

    /// @notice The stake (wei) `account` earns and votes with now: its stake when it is an active
    /// member holding at least `minVerifierStake()`, else 0 (the same test as `isVerifier`). Reward
    /// points are weighted by it, so splitting one stake over many accounts earns nothing more
    /// (decision 1575).
    function activeStake(address account) external view returns (uint256);

    /// @notice `activeStake(account)` and `totalActiveStake()` (wei) in one call: the reward pool
    /// caps a verifier's payout for an epoch at its share of the active stake when it did the work
    /// (decision 1820).
    function activeStakeAndTotal(address account) external view returns (uint256 stake, uint256 totalActive);

    /// @notice True when governance admitted `account`.
    function isAdmitted(address account) external view returns (bool);

    /// @notice Number of active verifiers.
    function verifierCount() external view returns (uint256);

    /// @notice All active verifiers (unordered).
    function verifiers() external view returns (address[] memory);

    /// @notice A member's record (status None when unknown).
    function getVerifier(address account) external view returns (Verifier memory);

    /// @notice Sum of the active verifiers' stakes now (wei).
    function totalActiveStake() external view returns (uint256);

    /// @notice Id of the latest snapshot of the active stake; every join, leave and slash of an
    /// active member creates a new one. Rounds record this id when they open.
    function currentSnapshot() external view returns (uint64);

    /// @notice Total active stake (wei) recorded in snapshot `snapshotId` (reverts UnknownSnapshot).
    function totalStakeAt(uint64 snapshotId) external view returns (uint256);

    /// @notice Vote weight (wei) of `account` in a round opened at `snapshotId`: its stake when it
    /// is active now with at least `minVerifierStake()` and joined at or before that snapshot, else 0;
    /// never more than the stake it held at that snapshot (a later addStake adds nothing there).
    function voteWeight(address account, uint64 snapshotId) external view returns (uint256);

    /// @notice Id of the latest snapshot that took stake away from members counted before it (a
    /// leave, a deactivation, a slash of an active member). Rounds opened at or after it have
    /// `quorumStakeAt` equal to `totalStakeAt` (decision 1720).
    function lastReduction() external view returns (uint64);

    /// @notice Denominator (wei) of a round opened at `snapshotId` whose distinct `voters` have
    /// cast `cast` wei of weight in it (any side): `cast` plus the `voteWeight` every member that has
    /// not voted can still cast there. Stake that left, was deactivated or slashed since the
    /// snapshot and had not voted counts no more, so the members that can still vote can always
    /// conclude; votes already cast keep their weight in both the tally and the denominator, so
    /// leaving after voting never lowers a bar. Once a reduction followed the snapshot, never
    /// less than `min(totalActiveStake() + w, totalStakeAt(snapshotId))`, where `w` is the weight
    /// in `cast` whose voters no longer hold it (left, deactivated, slashed) (decisions 1758,
    /// 1779): a round passes only on a share of the stake active when it concludes, counting its
    /// departed voters as still active, so a round the remaining members cannot carry stays
    /// undecided; yet more than the share of the snapshot's whole total always decides, whoever
    /// joined since. Always at most `totalStakeAt(snapshotId)`; equal to it while
    /// `lastReduction() <= snapshotId`. Reverts UnknownSnapshot for a future id.
    function quorumStakeAt(uint64 snapshotId, address[] calldata voters, uint256 cast) external view returns (uint256);

    function minVerifierStake() external view returns (uint256);

    function unbondingPeriod() external view returns (uint64);

    /// @notice The current slasher (a scheduled one only once it took over, see `pendingSlasher`).
    function slasher() external view returns (address);

    /// @notice The scheduled slasher and the second it may take over from (0, 0: none).
    function pendingSlasher() external view returns (address pending, uint64 effectiveAt);
}
