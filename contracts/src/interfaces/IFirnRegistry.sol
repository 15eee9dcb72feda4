// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnVerifierSet} from "./IFirnVerifierSet.sol";

/// @title IFirnRegistry
/// @notice Measurement allow-list, node registration with stake, stake-weighted verifier approval,
/// key rotation with the history of enclave addresses, exit with an unbonding period that outlasts
/// every open challenge window, slashing by the job market, and pull refunds.
/// See docs/decisions/0102-contract-lifecycles.md and docs/decisions/0800-economics.md.
interface IFirnRegistry {
    /// @notice Life cycle of one Enclave ID.
    /// None: never registered. Pending: registered, waiting for the verifier quorum.
    /// Active: approved; may take jobs and post data while eligible. Rejected: refused by the
    /// quorum, stake refundable; may register again. Exiting: exit requested from Active, stake
    /// locked until unbonding and every challenge window end. Exited: stake withdrawn, or the
    /// registration was withdrawn while Pending; may register again. Slashed: punished for a
    /// proven fault; the Enclave ID may never register again.
    enum NodeStatus {
        None,
        Pending,
        Active,
        Rejected,
        Exiting,
        Exited,
        Slashed
    }

    /// @notice What an operator submits to register an Enclave ID. `platformIdHash` =
    /// taggedKeccak256("firn/platform-id/v1", teeType, platformId): one physical platform earns one
    /// capacity share however many Enclave IDs it hosts; verifiers check it against the evidence.
    struct RegistrationParams {
        bytes32 enclaveId;
        uint8 teeType;
        bytes32 measurement;
        bytes32 platformIdHash;
        address enclaveAddress;
        bytes32 kemPublicKey;
        string endpoint;
        bytes32 evidenceDigest;
    }

    /// @notice One node as stored, packed into eight slots (docs/decisions/1140-contract-gas.md).
    /// `snapshotId` is the verifier-set snapshot of the current `round` (the registration or the
    /// pending key rotation); `approvalStake` and `refusalStake` are the vote weights (wei) cast in
    /// that round. `lockedUntil` is the latest end of a challenge window of this node's proofs plus
    /// the market's finalize grace (decision 1776): stake cannot be withdrawn before it. The KEM
    /// public key and the endpoint are not stored: the contract never reads them, so they live in
    /// the events (`NodeRegistered`, `KeysRotated`, `EndpointUpdated`), where clients and indexers
    /// read them.
    struct Node {
        // slot 0. `round` counts registration and rotation rounds of this Enclave ID (at most 65535).
        address operator;
        uint16 round;
        uint80 stake;
        // slot 1: everything a proof check reads, in one slot. Times are unix seconds (uint40 lasts
        // to year 36812); `snapshotId` is a verifier-set snapshot id (uint32: one per stake change).
        address enclaveAddress;
        uint40 lockedUntil;
        uint8 teeType;
        NodeStatus status;
        bool rotationPending;
        uint32 snapshotId;
        bytes32 measurement;
        bytes32 platformIdHash;
        bytes32 evidenceDigest;
        // one slot, written by exits, votes and every round's opening. `roundEndsAt` is the open
        // round's deadline (decision 1833): from then on anyone may `expireRound` it. The vote
        // tallies are uint88 (3.09e26 wei, above all the ether in existence) to make room for it.
        uint40 unbondingEndsAt;
        uint40 roundEndsAt;
        uint88 approvalStake;
        uint88 refusalStake;
        // rotation only
        address pendingEnclaveAddress;
        bytes32 pendingKemPublicKey;
        bytes32 pendingEvidenceDigest;
    }

    /// @notice The fields the job market, rewards and ledger need, without the endpoint string:
    /// cheap to read. `ineligibility` as returned by `ineligibility(enclaveId)`.
    struct NodeSummary {
        address operator;
        uint8 teeType;
        NodeStatus status;
        uint8 ineligibility;
        bytes32 measurement;
        bytes32 platformIdHash;
        address enclaveAddress;
        uint256 stake;
    }

    /// @notice One entry of an Enclave ID's key history: `enclaveAddress` was its approved enclave
    /// key from block `fromBlock` to block `toBlock`, both inclusive (`toBlock` = type(uint64).max
    /// while still in force).
    struct EnclaveKeyRecord {
        address enclaveAddress;
        uint64 fromBlock;
        uint64 toBlock;
    }

    /// @notice Reasons a node is not eligible (returned by `ineligibility`; 0 = eligible).
    /// 1: not Active; 2: its TEE type is no longer allowed by governance; 3: its measurement was revoked.

    error StakeTooLow(uint256 sent, uint256 min);
    error RotationFeeMismatch(uint256 sent, uint256 required);
    error InvalidTeeType(uint8 teeType);
    error TeeTypeNotAllowed(uint8 teeType, uint8 allowedMask);
    error InvalidTeeTypeMask(uint8 mask);
    error MeasurementNotAllowed(uint8 teeType, bytes32 measurement);
    error MeasurementRevokedWhilePending(bytes32 enclaveId, uint8 teeType, bytes32 measurement);
    error EnclaveIdActive(bytes32 enclaveId, NodeStatus status);
    error EnclaveIdSlashed(bytes32 enclaveId);
    error EnclaveAddressInUse(address enclaveAddress, bytes32 enclaveId);
    error ZeroEnclaveId();
    error ZeroEnclaveAddress();
    error ZeroKemPublicKey();
    error ZeroEvidenceDigest();
    error ZeroPlatformIdHash();
    error EmptyEndpoint();
    error EndpointTooLong(uint256 length, uint256 max);
    error NotOperator(bytes32 enclaveId, address caller);
    error NotVerifier(address caller);
    error NotEligibleVoter(bytes32 enclaveId, address verifier, uint64 snapshotId);
    error NotSlasher(address caller);
    /// @notice `applySlasherChange` before the scheduled slasher's time (`effectiveAt`, 0: none).
    error SlasherChangeNotDue(address pendingSlasher, uint64 effectiveAt);
    /// @notice renounceOwnership is disabled: without an owner a guardian pause could never be
    /// lifted. Transfer ownership instead.
    error OwnershipRenounceDisabled();
    error NotGuardian(address caller);
    error NoOpenRound(bytes32 enclaveId, NodeStatus status);
    /// @notice `concludeRound` found neither approvals > 2/3 nor refusals > 1/3 of `quorumStake`,
    /// the round's denominator now (wei): it stays open for more votes.
    error RoundUndecided(bytes32 enclaveId, uint32 round, uint256 approvals, uint256 refusals, uint256 quorumStake);
    error EvidenceMismatch(bytes32 enclaveId, bytes32 expected, bytes32 given);
    /// @notice A vote (or `concludeRound`) named round `given` of `enclaveId`, whose open round is
    /// `expected`: the registration was withdrawn and made again, or the keys were rotated, since
    /// the caller read the claim it judged (decision 1831).
    error RoundMismatch(bytes32 enclaveId, uint32 expected, uint32 given);
    error AlreadyVoted(bytes32 enclaveId, uint32 round, address verifier);
    error UnexpectedStatus(bytes32 enclaveId, NodeStatus status);
    error RotationPending(bytes32 enclaveId);
    error StillUnbonding(bytes32 enclaveId, uint64 unlocksAt, uint64 nowTime);
    error NothingToWithdraw(address account);
    error StatusNotIndexed(NodeStatus status);
    error RewardPoolNotSet();
    /// @notice A reward pool must be a contract (its `fund()` takes protocol fees, `creditTreasury()`
    /// the swept fees); `pool` has no code. Name the FirnRewards deployment.
    error RewardPoolNotContract(address pool);
    /// @notice A reward pool must name this registry and its verifier set: `pool` answers
    /// `registry()` = `poolRegistry` and `verifierSet()` = `poolVerifierSet` (a pool built for another
    /// deployment). Deploy FirnRewards with this registry's address and verifier set.
    error RewardPoolMismatch(address pool, address poolRegistry, address poolVerifierSet);
    error StakeTooHigh(uint256 stake, uint256 max);
    /// @notice `expireRound` on round `round` of `enclaveId` before its deadline `endsAt` (decision 1833).
    error RoundNotExpired(bytes32 enclaveId, uint32 round, uint64 endsAt, uint64 nowTime);
    /// @notice `expireRound` on a round whose votes already decide it: `concludeRound` ends it
    /// as the votes say (decision 1833).
    error RoundDecidable(bytes32 enclaveId, uint32 round);
    /// @notice `setRoundTimeout` outside [`min`, `max`] seconds.
    error RoundTimeoutOutOfRange(uint256 timeout, uint256 min, uint256 max);
    error TransferFailed(address to, uint256 amount);

    event MeasurementAllowed(uint8 indexed teeType, bytes32 indexed measurement);
    event MeasurementRevoked(uint8 indexed teeType, bytes32 indexed measurement, address indexed by);
    event AllowedTeeTypesSet(uint8 previousMask, uint8 newMask);
    event NodeRegistered(
        bytes32 indexed enclaveId,
        address indexed operator,
        uint32 round,
        uint8 teeType,
        bytes32 measurement,
        bytes32 platformIdHash,
        address enclaveAddress,
        bytes32 kemPublicKey,
        string endpoint,
        bytes32 evidenceDigest,
        uint256 stake,
        uint256 fee,
        uint64 snapshotId
    );
    event NodeApproved(
        bytes32 indexed enclaveId, address indexed verifier, uint32 round, uint256 weight, uint256 approvalStake
    );
    event NodeRefused(
        bytes32 indexed enclaveId,
        address indexed verifier,
        uint16 reasonCode,
        uint32 round,
        uint256 weight,
        uint256 refusalStake
    );
    event NodeActivated(bytes32 indexed enclaveId, uint32 round);
    event NodeRejected(bytes32 indexed enclaveId, uint32 round, uint256 refundable);
    event KeyRotationRequested(
        bytes32 indexed enclaveId,
        uint32 round,
        address newEnclaveAddress,
        bytes32 newKemPublicKey,
        bytes32 newEvidenceDigest,
        uint64 snapshotId
    );
    event KeysRotated(bytes32 indexed enclaveId, uint32 round, address enclaveAddress, bytes32 kemPublicKey);
    event KeyRotationRefused(bytes32 indexed enclaveId, uint32 round);
    event EndpointUpdated(bytes32 indexed enclaveId, string endpoint);
    event ExitRequested(bytes32 indexed enclaveId, uint64 unbondingEndsAt);
    event RegistrationWithdrawn(bytes32 indexed enclaveId, uint32 round, uint256 refundable);
    /// @notice Round `round` of `enclaveId` passed its deadline undecided and was ended by `by`
    /// (decision 1833): a registration became Exited with `refundable` credited to its operator
    /// (the fee kept); a key rotation was dropped (`refundable` 0), the node keeps its old keys.
    event RoundExpired(bytes32 indexed enclaveId, uint32 round, address indexed by, bool rotation, uint256 refundable);
    event RoundTimeoutSet(uint64 previousTimeout, uint64 newTimeout);
    event StakeLocked(bytes32 indexed enclaveId, uint64 lockedUntil);
    event StakeWithdrawn(bytes32 indexed enclaveId, address indexed operator, uint256 amount);
    event NodeSlashed(bytes32 indexed enclaveId, uint256 amount, address indexed beneficiary, bytes32 reason);
    event RefundCredited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice `newSlasher` took over: at once while no slasher was set and nothing was staked, else
    /// on the first call after its scheduled time (its own `slash` or `lockStake`, or anyone's
    /// `applySlasherChange`; decision 1778).
    event SlasherSet(address indexed previousSlasher, address indexed newSlasher);
    /// @notice Governance changed the slasher: `pendingSlasher` may act from `effectiveAt` (unix s)
    /// on, after every node that asks to exit now (or asked under a longer unbonding) can have
    /// withdrawn; `currentSlasher` keeps both rights until then (decision 1778). Emitted again,
    /// with the later time, when a raised unbonding period moves a pending change (decision 1781).
    event SlasherChangeScheduled(address indexed currentSlasher, address indexed pendingSlasher, uint64 effectiveAt);
    /// @notice The scheduled change to `pendingSlasher` was dropped before its time (another change,
    /// or the current slasher set again).
    event SlasherChangeCancelled(address indexed pendingSlasher);
    /// @notice A replaced slasher keeps its right to `slash` (not to `lockStake`) until `until`
    /// (unix s), the latest stake lock it took: its last challenge window (decision 1700).
    event SlasherRetired(address indexed slasher, uint64 until);
    event GuardianSet(address indexed previousGuardian, address indexed newGuardian);
    event RewardPoolSet(address indexed previousPool, address indexed newPool);
    event ParametersUpdated(uint256 minNodeStake, uint64 unbondingPeriod, uint256 registrationFee);
    /// @notice Registration and rotation fees held since the last sweep were paid to `pool`, which
    /// credits them to its owner's treasury, outside its budgets (decision 1671).
    event FeesSwept(address indexed pool, uint256 amount);

    // ------------------------------------------------------------ governance (owner = timelock)

    /// @notice Owner: allow-list `measurement` for `teeType` (1 simulated, 2 SGX, 3 TDX).
    function allowMeasurement(uint8 teeType, bytes32 measurement) external;
    /// @notice Owner or guardian (an emergency restriction): revoke a measurement. Its nodes become
    /// ineligible at once (no claims, no proofs, no liveness), and pending ones cannot be approved.
    function revokeMeasurement(uint8 teeType, bytes32 measurement) external;
    /// @notice Owner: the TEE types accepted, bit (1 << teeType); a production deployment clears
    /// bit 1 (simulated). Nodes of a cleared type become ineligible at once.
    function setAllowedTeeTypes(uint8 mask) external;
    /// @notice Owner: the contract allowed to slash nodes and lock stake (the job market). The one it
    /// replaces may still slash until the latest lock it took ends (SlasherRetired, decision 1700):
    /// a migration never makes a proof in its challenge window unslashable.
    /// The change is scheduled (SlasherChangeScheduled), not made: the new slasher may act only after
    /// the later of the unbonding period from now, the end of any exit requested under a longer
    /// period, and the current slasher's latest lock (plus one second), so a node that objects can
    /// leave with its stake first; the current slasher keeps working until then (decision 1778).
    /// Immediate while no slasher is set and nothing is staked (deployment). Setting the pending
    /// slasher again keeps its time; another address, the current one included, cancels it.
    function setSlasher(address newSlasher) external;
    /// @notice Anyone: make the scheduled slasher the current one once its time has come (it also
    /// takes over on its own first `slash` or `lockStake`); else SlasherChangeNotDue.
    function applySlasherChange() external;
    /// @notice Owner: the account that may pause and revoke measurements at once.
    function setGuardian(address newGuardian) external;
    /// @notice Owner: the network's reward pool: it receives registration fees (for its owner's
    /// treasury, decision 1671) and verifier work reports, and the job market reads it for protocol
    /// fees and findings, so this one call moves the whole network (decision 1756). Reverts
    /// RewardPoolNotContract for an address without code, RewardPoolMismatch for a pool whose
    /// `registry()` is not this registry or whose `verifierSet()` is not this registry's (a pool
    /// without these views reverts the call), RewardPoolNotSet for address(0) while the
    /// registration fee is > 0.
    function setRewardPool(address newPool) external;
    /// @notice Owner: minimum stake (wei), unbonding period (s), non-refundable registration fee
    /// (wei, credited to the governance treasury through the reward pool contract; reverts RewardPoolNotSet when > 0 without a pool).
    /// Raising the unbonding period while a slasher change is pending moves the change to at least
    /// now + the new period + 1 s and emits SlasherChangeScheduled again with that time (decision
    /// 1781), so a node that asks to exit when the raise executes still leaves first.
    function setParameters(uint256 newMinNodeStake, uint64 newUnbondingPeriod, uint256 newRegistrationFee) external;
    /// @notice Owner: seconds a registration or key-rotation round may stay undecided before anyone
    /// may `expireRound` it, within [1 hour, 30 days] (default 1 day). Applies to rounds opened
    /// from now on; an open round keeps its deadline (decision 1833).
    function setRoundTimeout(uint64 newTimeout) external;
    /// @notice Owner or guardian: stop new registrations and key rotations.
    function pause() external;
    /// @notice Owner: resume.
    function unpause() external;

    // ------------------------------------------------------------ operators

    /// @notice Register with msg.value = stake + registrationFee (minNodeStake <= stake < 2^80 wei).
    /// The fee is held until the next sweep (`sweepFees`) credits it to the governance treasury.
    function register(RegistrationParams calldata params) external payable;
    /// @notice Operator of an Active node: propose new enclave keys with msg.value exactly
    /// `registrationFee()` (non-refundable, credited to the governance treasury: a rotation reserves the new
    /// enclave address while its vote runs, so holding an address costs the fee like a registration
    /// does). Reverts RotationFeeMismatch, UnexpectedStatus, RotationPending, EnclaveAddressInUse.
    function rotateKeys(
        bytes32 enclaveId,
        address newEnclaveAddress,
        bytes32 newKemPublicKey,
        bytes32 newEvidenceDigest
    ) external payable;
    function updateEndpoint(bytes32 enclaveId, string calldata endpoint) external;
    /// @notice From Active: Exiting, unbonding starts. From Pending: Exited at once, the stake is
    /// credited to the operator's withdrawable balance (the registration fee is not refunded).
    function requestExit(bytes32 enclaveId) external;
    /// @notice Operator: after max(unbondingEndsAt, lockedUntil), pay the stake to the caller.
    function withdrawStake(bytes32 enclaveId) external;
    /// @notice Pay the caller's withdrawable balance (refunds of refused or withdrawn registrations).
    function withdraw() external;

    // ------------------------------------------------------------ verifiers

    /// @notice Vote for the open round; activates (or rotates keys) once approvals > 2/3 of the
    /// round's snapshot stake. `round` is the round the verifier judged (`getNode(enclaveId).round`
    /// where it read the enclave address and KEM key it checked the evidence against), and
    /// `evidenceDigest` that round's digest: a vote counts only for the round it names, whose keys
    /// no later register or rotateKeys can change (decision 1831). Reverts NoOpenRound when no
    /// round is open, RoundMismatch when another round is open, EvidenceMismatch on another
    /// digest, and MeasurementRevokedWhilePending when the measurement (or TEE type) was revoked
    /// meanwhile: refuse instead.
    function approve(bytes32 enclaveId, uint32 round, bytes32 evidenceDigest) external;
    /// @notice Vote against round `round` (named as for `approve`, with the same reverts but
    /// MeasurementRevokedWhilePending); rejects (stake refundable, pull) once refusals > 1/3 of
    /// the snapshot's whole stake (`totalStakeAt`, never a shrunk denominator: decision 1780).
    function refuse(bytes32 enclaveId, uint32 round, bytes32 evidenceDigest, uint16 reasonCode) external;
    /// @notice Anyone: re-evaluate the open round (a registration or a key rotation) against its
    /// denominator now (decisions 1720, 1755) and conclude it as a vote would: activate or rotate
    /// when approvals > 2/3 of it, reject or drop the rotation when refusals > 1/3 of the snapshot's
    /// whole stake (decision 1780), the deciding side's
    /// voters earning their work point. For a round that passes only because stake that could still
    /// vote has left, been deactivated or slashed since its last vote. `round` names the round the
    /// caller means, as a vote does (decision 1831). Reverts NoOpenRound when the node has no open
    /// round, RoundMismatch when its open round is another, RoundUndecided when neither threshold
    /// is met, and MeasurementRevokedWhilePending when an approval would activate a registration
    /// whose measurement or TEE type was revoked meanwhile.
    function concludeRound(bytes32 enclaveId, uint32 round) external;
    /// @notice Anyone: end round `round` of `enclaveId`, still open and undecided at its deadline
    /// (`getNode(enclaveId).roundEndsAt`). A registration becomes Exited: its Enclave ID and enclave
    /// address are free at once, its stake is credited to the operator (`withdraw`), its fee kept. A
    /// key rotation is dropped: the node stays Active with its old keys and the reserved address is
    /// released. Reverts `NoOpenRound`, `RoundMismatch`, `RoundNotExpired`, or `RoundDecidable`
    /// when `concludeRound` would decide it (decision 1833).
    function expireRound(bytes32 enclaveId, uint32 round) external;

    // ------------------------------------------------------------ slasher (job market)

    /// @notice Slasher, or a retired slasher until `retiredSlasherUntil` (else NotSlasher): take up
    /// to `amount` wei of the node's stake for `beneficiary`; returns what was taken. An Active
    /// node becomes Slashed and unbonds from now; an Exiting or Slashed node keeps its unbonding
    /// end (never later for a slash, decision 1781), its stake lock still holding it for claims.
    /// Once an Exiting or Slashed node's unbonding end and stake lock have both passed (it may
    /// withdraw), nothing is taken and nothing changes (returns 0, no event; decision 1781).
    function slash(bytes32 enclaveId, uint256 amount, address beneficiary, bytes32 reason)
        external
        returns (uint256 slashed);
    /// @notice Slasher: the node's stake stays locked until at least `until`. The market locks at
    /// claim until the latest end the claim's challenge window can have plus its finalize grace,
    /// during which a passed finding concludes (decisions 1141, 1776).
    function lockStake(bytes32 enclaveId, uint64 until) external;
    /// @notice Pay the registration and rotation fees held so far to the reward pool contract, which
    /// credits them to its owner's treasury, never to an epoch's budget (anyone; the pool also sweeps
    /// when it closes an epoch; decision 1671). Reverts RewardPoolNotSet without a pool.
    function sweepFees() external returns (uint256 amount);

    // ------------------------------------------------------------ views

    function isMeasurementAllowed(uint8 teeType, bytes32 measurement) external view returns (bool);
    function allowedTeeTypes() external view returns (uint8);
    function getNode(bytes32 enclaveId) external view returns (Node memory);
    /// @notice The node's fields other contracts judge by, with its current ineligibility.
    function getNodeSummary(bytes32 enclaveId) external view returns (NodeSummary memory);
    /// @notice For a proof check, from one storage slot: the node's enclave address when it may still
    /// submit proofs (Active, or Exiting after claiming while Active; TEE type allowed; `measurement`
    /// still allow-listed), else address(0) and why (1 neither Active nor Exiting, 2 TEE type no
    /// longer allowed, 3 measurement revoked).
    function proofSigner(bytes32 enclaveId, bytes32 measurement)
        external
        view
        returns (address enclaveAddress, uint8 ineligibility);
    /// @notice Fees held for the governance treasury, not yet swept (wei).
    function feesHeld() external view returns (uint256);
    /// @notice 0 when eligible for work, else the reason (see above).
    function ineligibility(bytes32 enclaveId) external view returns (uint8);
    /// @notice The governance restriction on the code the node runs, whatever its status (decision
    /// 1726): 2 when its TEE type is no longer allowed, 3 when its measurement is revoked, else 0
    /// (also for an unknown enclave id). Unlike `ineligibility`, an exit or a slash does not hide it.
    function restriction(bytes32 enclaveId) external view returns (uint8);
    /// @notice Active, TEE type allowed and measurement allow-listed, now.
    function isEligible(bytes32 enclaveId) external view returns (bool);
    /// @notice Enclave IDs in `status` (only Active and Exiting are indexed; others revert
    /// StatusNotIndexed: Pending registrations are found from `NodeRegistered` events), from `offset`, at most `limit` of them. Order is not stable.
    function enclaveIdsByStatus(NodeStatus status, uint256 offset, uint256 limit)
        external
        view
        returns (bytes32[] memory);
    function countByStatus(NodeStatus status) external view returns (uint256);
    function enclaveIdOf(address enclaveAddress) external view returns (bytes32);
    function isActive(bytes32 enclaveId) external view returns (bool);
    function hasVoted(bytes32 enclaveId, uint32 round, address verifier) external view returns (bool);
    /// @notice Every approved enclave key of `enclaveId` with the blocks it was in force.
    function enclaveKeyHistory(bytes32 enclaveId) external view returns (EnclaveKeyRecord[] memory);
    /// @notice True when `account` was the approved enclave key of `enclaveId` at `blockNumber`.
    function wasEnclaveAddress(bytes32 enclaveId, address account, uint256 blockNumber) external view returns (bool);
    function withdrawable(address account) external view returns (uint256);
    function minNodeStake() external view returns (uint256);
    function registrationFee() external view returns (uint256);
    function unbondingPeriod() external view returns (uint64);
    /// @notice Seconds a round may stay undecided before `expireRound` (decision 1833).
    function roundTimeout() external view returns (uint64);
    function verifierSet() external view returns (IFirnVerifierSet);
    /// @notice The current slasher (a scheduled one only once it took over, see `pendingSlasher`).
    function slasher() external view returns (address);
    /// @notice The scheduled slasher and the second it may take over from (0, 0: none).
    function pendingSlasher() external view returns (address pending, uint64 effectiveAt);
    /// @notice Until when (unix s, inclusive) a replaced slasher may still slash; 0 when never one.
    function retiredSlasherUntil(address account) external view returns (uint64);
    /// @notice The latest stake lock the current slasher took (unix s): its retirement horizon.
    function slasherLockHorizon() external view returns (uint64);
    function guardian() external view returns (address);
    function rewardPool() external view returns (address);
    function totalStaked() external view returns (uint256);
    function totalWithdrawable() external view returns (uint256);
}
