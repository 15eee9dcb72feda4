// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {FirnDataLedger} from "../../src/FirnDataLedger.sol";
import {FirnJobMarket} from "../../src/FirnJobMarket.sol";
import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {FirnRegistry} from "../../src/FirnRegistry.sol";
import {FirnRewards} from "../../src/FirnRewards.sol";
import {FirnVerifierSet} from "../../src/FirnVerifierSet.sol";
import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {FirnTest} from "./Vm.sol";

/// @notice Deploys the five contracts wired as in production (the market slashes nodes and
/// verifiers, the rewards pool receives fees and vote reports) with this test as owner, and offers
/// helpers to set up verifiers and nodes. Four verifiers of equal stake: 3 approvals activate
/// (> 2/3), 2 refusals reject (> 1/3), 3 findings slash (> 2/3).
abstract contract FirnFixture is FirnTest {
    uint256 internal constant MIN_NODE_STAKE = 1 ether;
    uint256 internal constant MIN_VERIFIER_STAKE = 0.5 ether;
    uint256 internal constant VERIFIERS = 4;
    uint256 internal constant APPROVE_QUORUM = 3;
    uint256 internal constant REFUSE_QUORUM = 2;
    uint64 internal constant UNBONDING = 7 days;
    uint64 internal constant CHALLENGE_WINDOW = 1 days;
    uint256 internal constant SLASH_AMOUNT = 0.6 ether;
    uint256 internal constant CLAIM_BOND = 0.1 ether;
    uint256 internal constant FALSE_DISPUTE_SLASH = 0.2 ether;
    uint64 internal constant EPOCH = 1 days;
    uint64 internal constant ANSWER_WINDOW = 10 minutes;
    uint32 internal constant LIVENESS_TARGET = 3;
    uint16 internal constant EPOCH_BUDGET_BPS = 5000;
    uint16 internal constant VERIFIER_SHARE_BPS = 1000;
    uint8 internal constant ALL_TEE_TYPES = 0x0e;
    uint8 internal constant SIM = 1;
    uint8 internal constant SGX = 2;
    uint8 internal constant TDX = 3;
    bytes32 internal constant MEASUREMENT = keccak256("measurement-a");
    bytes32 internal constant MEASUREMENT_B = keccak256("measurement-b");

    FirnVerifierSet internal verifierSet;
    FirnRegistry internal registry;
    FirnJobMarket internal market;
    FirnRewards internal rewards;
    FirnDataLedger internal ledger;
    address internal owner = address(this);
    address internal stranger = address(0x5eed);
    address[] internal verifierList;

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        vm.roll(100);
        verifierSet = new FirnVerifierSet(owner, MIN_VERIFIER_STAKE, UNBONDING);
        registry = new FirnRegistry(owner, verifierSet, MIN_NODE_STAKE, UNBONDING, ALL_TEE_TYPES);
        market = new FirnJobMarket(
            owner, registry, verifierSet, CHALLENGE_WINDOW, SLASH_AMOUNT, CLAIM_BOND, FALSE_DISPUTE_SLASH
        );
        rewards = new FirnRewards(
            owner, registry, verifierSet, EPOCH, ANSWER_WINDOW, LIVENESS_TARGET, EPOCH_BUDGET_BPS, VERIFIER_SHARE_BPS
        );
        ledger = new FirnDataLedger(registry);
        registry.setSlasher(address(market));
        verifierSet.setSlasher(address(market));
        registry.setRewardPool(address(rewards));
        rewards.setReporter(address(registry), true);
        rewards.setReporter(address(market), true);
        registry.allowMeasurement(SIM, MEASUREMENT);
        registry.allowMeasurement(SGX, MEASUREMENT);
        registry.allowMeasurement(SIM, MEASUREMENT_B);
        _joinVerifiers(VERIFIERS);
    }

    function _verifierAddr(uint256 k) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode("verifier", k)))));
    }

    function _joinVerifiers(uint256 n) internal {
        for (uint256 i = 0; i < n; ++i) {
            _joinVerifier(_verifierAddr(verifierList.length + 1), MIN_VERIFIER_STAKE);
        }
    }

    function _joinVerifier(address v, uint256 stake) internal {
        verifierSet.setAdmission(v, true);
        vm.deal(v, stake + 10 ether);
        vm.prank(v);
        verifierSet.join{value: stake}();
        verifierList.push(v);
    }

    /// @dev A deterministic node: enclave key, operator, Enclave ID and platform derived from `seed`.
    struct TestNode {
        bytes32 enclaveId;
        uint256 enclaveKey;
        address enclaveAddress;
        address operator;
        bytes32 evidenceDigest;
        bytes32 platformIdHash;
    }

    function _node(uint256 seed) internal returns (TestNode memory t) {
        t.enclaveKey = uint256(keccak256(abi.encode("enclave-key", seed))) % (type(uint128).max) + 1;
        t.enclaveAddress = vm.addr(t.enclaveKey);
        t.operator = address(uint160(uint256(keccak256(abi.encode("operator", seed)))));
        t.enclaveId = keccak256(abi.encode("enclave-id", seed));
        t.evidenceDigest = keccak256(abi.encode("evidence", seed));
        t.platformIdHash = keccak256(abi.encode("platform", seed));
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
            platformIdHash: t.platformIdHash,
            enclaveAddress: t.enclaveAddress,
            kemPublicKey: keccak256(abi.encode("kem", t.enclaveAddress)),
            endpoint: "https://node.example:8443",
            evidenceDigest: t.evidenceDigest
        });
    }

    function _register(TestNode memory t, uint8 teeType, bytes32 measurement) internal {
        uint256 value = MIN_NODE_STAKE + registry.registrationFee();
        vm.prank(t.operator);
        registry.register{value: value}(_params(t, teeType, measurement));
    }

    /// @dev The node's current round, the one a vote names (decision 1831). Read it before a
    /// `vm.prank`: a call made while evaluating the vote's arguments would take the prank.
    function _round(bytes32 enclaveId) internal view returns (uint32) {
        return registry.getNode(enclaveId).round;
    }

    /// @dev Approves the open round with the first APPROVE_QUORUM verifiers (> 2/3 of equal stakes).
    function _approveAll(bytes32 enclaveId, bytes32 digest) internal {
        uint32 round = _round(enclaveId);
        for (uint256 i = 0; i < APPROVE_QUORUM; ++i) {
            vm.prank(verifierList[i]);
            registry.approve(enclaveId, round, digest);
        }
    }

    function _activeNode(uint256 seed, uint8 teeType, bytes32 measurement) internal returns (TestNode memory t) {
        t = _node(seed);
        _register(t, teeType, measurement);
        _approveAll(t.enclaveId, t.evidenceDigest);
    }

    /// @dev Terms of posted jobs and facts of submitted proofs, as a node or verifier reads them from
    /// JobPosted and ProofSubmitted, for claimJob and fact disputes (the market stores only hashes).
    mapping(bytes32 jobId => IFirnJobMarket.JobTerms) private _jobTerms;
    mapping(bytes32 jobId => IFirnJobMarket.ProofFacts) private _jobFacts;

    function _remember(bytes32 jobId, IFirnJobMarket.JobRequest memory r) internal returns (bytes32) {
        _jobTerms[jobId] = IFirnJobMarket.JobTerms(r.workloadHash, r.inputCommitment, r.allowedMeasurements, r.enclaveIds);
        return jobId;
    }

    function _termsFor(bytes32 jobId) internal view returns (IFirnJobMarket.JobTerms memory) {
        return _jobTerms[jobId];
    }

    /// @dev Call right after a successful submitProof of `p` signed by `signer`.
    function _rememberProof(bytes32 jobId, IFirnJobMarket.WorkProof memory p, address signer) internal {
        _rememberProofOn(market, jobId, p, signer);
    }

    function _rememberProofOn(
        FirnJobMarket m,
        bytes32 jobId,
        IFirnJobMarket.WorkProof memory p,
        address signer
    ) internal {
        _jobFacts[jobId] = IFirnJobMarket.ProofFacts({
            signer: signer,
            startedAt: p.startedAt,
            finishedAt: p.finishedAt,
            provedBlock: uint64(block.number),
            challengeEndsAt: uint64(block.timestamp) + m.getJob(jobId).challengeWindow,
            workUnits: p.workUnits,
            snapshotId: verifierSet.currentSnapshot()
        });
    }

    function _factsFor(bytes32 jobId) internal view returns (IFirnJobMarket.ProofFacts memory) {
        return _jobFacts[jobId];
    }

    /// @dev submitProof with a 65-byte (r, s, v) signature turned into EIP-2098's (r, vs).
    function _submitTo(FirnJobMarket m, IFirnJobMarket.WorkProof memory p, bytes memory sig) internal {
        (bytes32 r, bytes32 vs) = _compact(sig);
        m.submitProof(p, r, vs);
    }

    function _compact(bytes memory sig) internal pure returns (bytes32 r, bytes32 vs) {
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        vs = bytes32(uint256(s) | (uint256(v - 27) << 255));
    }

    function _sig(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev Schedules `newSlasher` on the registry and the verifier set, waits until both may take
    /// over and makes them take over (decision 1778: a slasher change waits out the unbonding).
    function _installSlasher(address newSlasher) internal {
        registry.setSlasher(newSlasher);
        verifierSet.setSlasher(newSlasher);
        (, uint64 regAt) = registry.pendingSlasher();
        (, uint64 setAt) = verifierSet.pendingSlasher();
        uint64 at = regAt > setAt ? regAt : setAt;
        if (at > block.timestamp) vm.warp(at);
        if (regAt != 0) registry.applySlasherChange();
        if (setAt != 0) verifierSet.applySlasherChange();
    }
}
