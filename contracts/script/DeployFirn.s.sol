// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnDataLedger} from "../src/FirnDataLedger.sol";
import {FirnGovernance} from "../src/FirnGovernance.sol";
import {FirnJobMarket} from "../src/FirnJobMarket.sol";
import {FirnRegistry} from "../src/FirnRegistry.sol";
import {FirnRewards} from "../src/FirnRewards.sol";
import {FirnVerifierSet} from "../src/FirnVerifierSet.sol";
import {Vm} from "../test/utils/Vm.sol";

/// @notice Production deployment: deploys the five contracts and the timelock, wires and
/// bootstraps them with the broadcaster as temporary owner, then hands every contract to the
/// timelock (docs/decisions/0800-economics.md). Defaults refuse the simulated TEE (mask 0x3c: SGX, TDX, Nitro, SEV-SNP).
/// Run: `node ../scripts/forge.mjs script script/DeployFirn.s.sol --rpc-url URL --private-key KEY
/// --broadcast` with FIRN_PROPOSER set (and optionally the other FIRN_* variables read below).
/// The devnet deploys through packages/chain (deployFirn) instead, with the same steps.
contract DeployFirn {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    struct Deployment {
        FirnVerifierSet verifierSet;
        FirnRegistry registry;
        FirnJobMarket market;
        FirnRewards rewards;
        FirnDataLedger ledger;
        FirnGovernance timelock;
    }

    error MissingProposer();

    function run() external returns (Deployment memory d) {
        address proposer = vm.envOr("FIRN_PROPOSER", address(0));
        if (proposer == address(0)) revert MissingProposer();
        vm.startBroadcast();
        (, address deployer,) = vm.readCallers();
        d = _deploy(deployer, proposer);
        _bootstrap(d);
        d.verifierSet.transferOwnership(address(d.timelock));
        d.registry.transferOwnership(address(d.timelock));
        d.market.transferOwnership(address(d.timelock));
        d.rewards.transferOwnership(address(d.timelock));
        vm.stopBroadcast();
    }

    function _deploy(address deployer, address proposer) internal returns (Deployment memory d) {
        uint64 unbonding = uint64(vm.envOr("FIRN_UNBONDING", uint256(14 days)));
        d.verifierSet = new FirnVerifierSet(deployer, vm.envOr("FIRN_MIN_VERIFIER_STAKE", uint256(32 ether)), unbonding);
        d.registry = new FirnRegistry(
            deployer,
            d.verifierSet,
            vm.envOr("FIRN_MIN_NODE_STAKE", uint256(1 ether)),
            unbonding,
            uint8(vm.envOr("FIRN_TEE_MASK", uint256(0x3c)))
        );
        d.market = new FirnJobMarket(
            deployer,
            d.registry,
            d.verifierSet,
            uint64(vm.envOr("FIRN_CHALLENGE_WINDOW", uint256(1 days))),
            vm.envOr("FIRN_SLASH_AMOUNT", uint256(0.5 ether)),
            vm.envOr("FIRN_CLAIM_BOND", uint256(0.01 ether)),
            vm.envOr("FIRN_FALSE_DISPUTE_SLASH", uint256(1 ether))
        );
        d.rewards = new FirnRewards(
            deployer,
            d.registry,
            d.verifierSet,
            uint64(vm.envOr("FIRN_EPOCH_LENGTH", uint256(1 days))),
            uint64(vm.envOr("FIRN_ANSWER_WINDOW", uint256(10 minutes))),
            uint32(vm.envOr("FIRN_LIVENESS_TARGET", uint256(3))),
            uint16(vm.envOr("FIRN_EPOCH_BUDGET_BPS", uint256(1000))),
            uint16(vm.envOr("FIRN_VERIFIER_SHARE_BPS", uint256(1000)))
        );
        d.ledger = new FirnDataLedger(d.registry);
        address[] memory proposers = new address[](1);
        proposers[0] = proposer;
        address[] memory executors = new address[](1);
        executors[0] = address(0);
        d.timelock = new FirnGovernance(vm.envOr("FIRN_TIMELOCK_DELAY", uint256(2 days)), proposers, executors, address(0));
    }

    function _bootstrap(Deployment memory d) internal {
        d.registry.setSlasher(address(d.market));
        d.verifierSet.setSlasher(address(d.market));
        d.registry.setRewardPool(address(d.rewards));
        d.rewards.setReporter(address(d.registry), true);
        d.rewards.setReporter(address(d.market), true);
        d.registry.setParameters(
            d.registry.minNodeStake(), d.registry.unbondingPeriod(), vm.envOr("FIRN_REGISTRATION_FEE", uint256(0.01 ether))
        );
        d.market.setParameters(
            d.market.challengeWindow(),
            d.market.slashAmount(),
            d.market.claimBond(),
            uint16(vm.envOr("FIRN_PROTOCOL_FEE_BPS", uint256(200))),
            d.market.falseDisputeSlash()
        );
        address guardian = vm.envOr("FIRN_GUARDIAN", address(0));
        if (guardian != address(0)) {
            d.registry.setGuardian(guardian);
            d.market.setGuardian(guardian);
        }
        address[] memory verifiers = vm.envOr("FIRN_VERIFIERS", ",", new address[](0));
        for (uint256 i = 0; i < verifiers.length; ++i) {
            d.verifierSet.setAdmission(verifiers[i], true);
        }
        // FIRN_MEASUREMENTS: "teeType:measurement" is not expressible as one env type, so the
        // allow-list takes one TEE type (FIRN_MEASUREMENT_TEE_TYPE, default 3 = TDX) for the list.
        bytes32[] memory measurements = vm.envOr("FIRN_MEASUREMENTS", ",", new bytes32[](0));
        uint8 teeType = uint8(vm.envOr("FIRN_MEASUREMENT_TEE_TYPE", uint256(3)));
        for (uint256 i = 0; i < measurements.length; ++i) {
            d.registry.allowMeasurement(teeType, measurements[i]);
        }
    }
}
