// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title IFirnVerifierSet
/// @notice Staked verifiers and the quorum threshold that registry approvals and job disputes use.
interface IFirnVerifierSet {
    /// @notice Membership state of one account.
    enum VerifierStatus {
        None,
        Active,
        Leaving
    }

    /// @notice One member's record.
    struct Verifier {
        VerifierStatus status;
        uint64 joinedAt;
        uint64 unbondingEndsAt;
        uint256 stake;
    }

    error StakeTooLow(uint256 sent, uint256 min);
    error AlreadyMember(address account, VerifierStatus status);
    error NotVerifier(address account);
    error NotLeaving(address account);
    error StillUnbonding(address account, uint64 unbondingEndsAt, uint64 nowTime);
    error InvalidThreshold(uint16 threshold);
    error TransferFailed(address to, uint256 amount);

    event VerifierJoined(address indexed verifier, uint256 stake);
    event LeaveRequested(address indexed verifier, uint64 unbondingEndsAt);
    event VerifierWithdrew(address indexed verifier, uint256 amount);
    event ThresholdUpdated(uint16 previousThreshold, uint16 newThreshold);
    event ParametersUpdated(uint256 minVerifierStake, uint64 unbondingPeriod);

    /// @notice Join with a stake of at least `minVerifierStake()` (msg.value).
    function join() external payable;

    /// @notice Stop voting at once and start the unbonding period.
    function requestLeave() external;

    /// @notice Take the stake back after the unbonding period.
    function withdraw() external;

    /// @notice Owner: set the number of votes that make a quorum (at least 1).
    function setThreshold(uint16 newThreshold) external;

    /// @notice Owner: set the minimum stake for new members and the unbonding period.
    function setParameters(uint256 newMinVerifierStake, uint64 newUnbondingPeriod) external;

    /// @notice True when `account` has joined and not requested to leave: it may vote.
    function isVerifier(address account) external view returns (bool);

    /// @notice Votes needed for a quorum.
    function threshold() external view returns (uint16);

    /// @notice Number of voting verifiers.
    function verifierCount() external view returns (uint256);

    /// @notice All voting verifiers (unordered).
    function verifiers() external view returns (address[] memory);

    /// @notice A member's record (status None when unknown).
    function getVerifier(address account) external view returns (Verifier memory);

    function minVerifierStake() external view returns (uint256);

    function unbondingPeriod() external view returns (uint64);
}
