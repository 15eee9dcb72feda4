// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title FirnGovernance
/// @notice The owner of every firn contract: OpenZeppelin's TimelockController unchanged. Every
/// parameter, allow-list, slasher and admission change is scheduled by a proposer and executed by
/// an executor after `getMinDelay()` seconds. Named here so the deployment has its ABI and bytecode.
/// See docs/decisions/0800-economics.md.
contract FirnGovernance is TimelockController {
    /// @param minDelay seconds between schedule and execute (devnet: a few seconds; production: days)
    /// @param proposers accounts that may schedule (and cancel) operations (a multisig in production)
    /// @param executors accounts that may execute ready operations (address(0) = anyone)
    /// @param admin optional bootstrap admin of the roles (address(0) = none; renounce after setup)
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
