// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnDataLedger} from "../../src/FirnDataLedger.sol";
import {FirnJobMarket} from "../../src/FirnJobMarket.sol";
import {FirnRegistry} from "../../src/FirnRegistry.sol";
import {FirnVerifierSet} from "../../src/FirnVerifierSet.sol";
import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {FirnTest} from "./Vm.sol";

/// @notice Deploys the four contracts wired as in production (the market is the registry's
/// slasher) and offers helpers to set up verifiers and nodes.
abstract contract FirnFixture is FirnTest {
    uint256 internal constant MIN_NODE_STAKE = 1 ether;
    uint256 internal constant MIN_VERIFIER_STAKE = 0.5 ether;
    uint16 internal constant THRESHOLD = 2;
    uint64 internal constant UNBONDING = 7 days;
    uint64 internal constant CHALLENGE_WINDOW = 1 days;
    uint256 internal constant SLASH_AMOUNT = 0.6 ether;
    uint8 internal constant SIM = 1;
    uint8 internal constant SGX = 2;
    uint8 internal constant TDX = 3;
    bytes32 internal constant MEASUREMENT = keccak256("measurement-a");
    bytes32 internal constant MEASUREMENT_B = keccak256("measurement-b");

    FirnVerifierSet internal verifierSet;
    FirnRegistry internal registry;
    FirnJobMarket internal market;
    FirnDataLedger internal ledger;
    address internal owner = address(this);
    address internal stranger = address(0x5eed);
    address[] internal verifierList;

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        verifierSet = new FirnVerifierSet(owner, MIN_VERIFIER_STAKE, THRESHOLD, UNBONDING);
        registry = new FirnRegistry(owner, verifierSet, MIN_NODE_STAKE, UNBONDING);
        market = new FirnJobMarket(owner, registry, verifierSet, CHALLENGE_WINDOW, SLASH_AMOUNT);
        ledger = new FirnDataLedger(registry);
        registry.setSlasher(address(market));
        registry.allowMeasurement(SIM, MEASUREMENT);
        registry.allowMeasurement(SGX, MEASUREMENT);
        registry.allowMeasurement(SIM, MEASUREMENT_B);
        _joinVerifiers(3);
    }

    function _joinVerifiers(uint256 n) internal {
        for (uint256 i = 0; i < n; ++i) {
            address v = vm.addr(0xbeef00 + verifierList.length + 1);
            vm.deal(v, 10 ether);
            vm.prank(v);
            verifierSet.join{value: MIN_VERIFIER_STAKE}();
            verifierList.push(v);
        }
    }

    /// @dev A deterministic node: enclave key, operator and Enclave ID derived from `seed`.
    struct TestNode {
        bytes32 enclaveId;
        uint256 enclaveKey;
        address enclaveAddress;
        address operator;
        bytes32 evidenceDigest;
    }

    function _node(uint256 seed) internal returns (TestNode memory t) {
        t.enclaveKey = uint256(keccak256(abi.encode("enclave-key", seed))) % (type(uint128).max) + 1;
        t.enclaveAddress = vm.addr(t.enclaveKey);
        t.operator = address(uint160(uint256(keccak256(abi.encode("operator", seed)))));
        t.enclaveId = keccak256(abi.encode("enclave-id", seed));
        t.evidenceDigest = keccak256(abi.encode("evidence", seed));
        vm.deal(t.operator, 100 ether);
    }

    function _params(TestNode memory t, uint8 teeType, bytes32 measurement)
        internal
        pure
        returns (IFirnRegistry.RegistrationParams memory)
    {
        return IFirnRegistry.RegistrationParams({
            enclaveId: t.enclaveId,
            teeType: teeType,
            measurement: measurement,
            enclaveAddress: t.enclaveAddress,
            kemPublicKey: keccak256(abi.encode("kem", t.enclaveAddress)),
            endpoint: "https://node.example:8443",
            evidenceDigest: t.evidenceDigest
        });
    }

    function _register(TestNode memory t, uint8 teeType, bytes32 measurement) internal {
        vm.prank(t.operator);
        registry.register{value: MIN_NODE_STAKE}(_params(t, teeType, measurement));
    }

    function _approveAll(bytes32 enclaveId, bytes32 digest) internal {
        for (uint256 i = 0; i < THRESHOLD; ++i) {
            vm.prank(verifierList[i]);
            registry.approve(enclaveId, digest);
        }
    }

    function _activeNode(uint256 seed, uint8 teeType, bytes32 measurement) internal returns (TestNode memory t) {
        t = _node(seed);
        _register(t, teeType, measurement);
        _approveAll(t.enclaveId, t.evidenceDigest);
    }
}
