// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice The forge cheatcodes these tests use, declared here because the forge-std published
/// on npm (1.1.2) predates them. Forge serves these at the fixed cheatcode address.
interface Vm {
    enum CallerMode {
        None,
        Broadcast,
        RecurrentBroadcast,
        Prank,
        RecurrentPrank
    }

    function warp(uint256 newTimestamp) external;
    function roll(uint256 newHeight) external;
    function chainId(uint256 newChainId) external;
    function deal(address account, uint256 newBalance) external;
    function prank(address msgSender) external;
    function startPrank(address msgSender) external;
    function stopPrank() external;
    function expectRevert() external;
    function expectRevert(bytes4 revertData) external;
    function expectRevert(bytes calldata revertData) external;
    function expectEmit(address emitter) external;
    function mockCallRevert(address callee, bytes calldata data, bytes calldata revertData) external;
    function clearMockedCalls() external;
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function addr(uint256 privateKey) external pure returns (address keyAddr);
    function assume(bool condition) external pure;
    function label(address account, string calldata newLabel) external;
    function assertEq(uint256 left, uint256 right, string calldata error) external pure;
    function assertEq(address left, address right, string calldata error) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata error) external pure;
    function assertEq(bool left, bool right, string calldata error) external pure;
    function assertEq(string calldata left, string calldata right, string calldata error) external pure;
    function assertTrue(bool condition, string calldata error) external pure;
    function assertFalse(bool condition, string calldata error) external pure;
    function assertLe(uint256 left, uint256 right, string calldata error) external pure;
    // Scripts (contracts/script): broadcasting and configuration from the environment.
    function startBroadcast() external;
    function stopBroadcast() external;
    function readCallers() external returns (CallerMode callerMode, address msgSender, address txOrigin);
    function envOr(string calldata name, uint256 defaultValue) external view returns (uint256 value);
    function envOr(string calldata name, address defaultValue) external view returns (address value);
    function envOr(string calldata name, string calldata delim, address[] calldata defaultValue)
        external
        view
        returns (address[] memory value);
    function envOr(string calldata name, string calldata delim, bytes32[] calldata defaultValue)
        external
        view
        returns (bytes32[] memory value);
}

/// @notice Minimal base for forge tests: the cheatcode handle, a bound() for fuzz inputs and the
/// hooks forge reads to pick invariant targets.
abstract contract FirnTest {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    address[] private _targetContracts;

    /// @dev Maps any x into [lo, hi] without discarding runs (unlike assume).
    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        require(lo <= hi, "bound: lo > hi");
        uint256 size = hi - lo;
        if (size == type(uint256).max) return x;
        return lo + (x % (size + 1));
    }

    function targetContract(address target) internal {
        _targetContracts.push(target);
    }

    /// @dev Read by forge's invariant runner.
    function targetContracts() public view returns (address[] memory) {
        return _targetContracts;
    }
}
