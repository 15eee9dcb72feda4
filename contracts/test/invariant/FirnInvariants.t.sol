// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnJobMarket} from "../../src/interfaces/IFirnJobMarket.sol";
import {IFirnRegistry} from "../../src/interfaces/IFirnRegistry.sol";
import {FirnDataLedger} from "../../src/FirnDataLedger.sol";
import {FirnJobMarket} from "../../src/FirnJobMarket.sol";
import {FirnRegistry} from "../../src/FirnRegistry.sol";
import {FirnVerifierSet} from "../../src/FirnVerifierSet.sol";
import {FirnFixture} from "../utils/FirnFixture.sol";
import {Vm} from "../utils/Vm.sol";

/// @notice Drives all three value-holding contracts with bounded random actions. Each call picks
/// actors from small fixed pools so that actions interact; calls that revert are simply skipped.
contract Handler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    FirnVerifierSet internal vs;
    FirnRegistry internal reg;
    FirnJobMarket internal market;
    address[] internal verifiers;
    bytes32[] internal jobIds;
    bytes32 internal measurement;
    uint256 internal constant NODES = 4;

    constructor(FirnVerifierSet vs_, FirnRegistry reg_, FirnJobMarket market_, address[] memory v, bytes32 m) {
        vs = vs_;
        reg = reg_;
        market = market_;
        verifiers = v;
        measurement = m;
    }

    function _op(uint256 i) internal pure returns (address) {
        return address(uint160(0x1000 + i));
    }

    function _id(uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("inv-node", i));
    }

    function _key(uint256 i) internal pure returns (uint256) {
        return 0xA000 + i;
    }

    function register(uint256 i, uint256 stake) external {
        i %= NODES;
        stake = 1 ether + (stake % 3 ether);
        vm.deal(_op(i), stake);
        vm.prank(_op(i));
        try reg.register{value: stake}(
            IFirnRegistry.RegistrationParams(
                _id(i), 1, measurement, vm.addr(_key(i)), bytes32(uint256(1)), "http://n", bytes32(uint256(7))
            )
        ) {} catch {}
    }

    function vote(uint256 i, uint256 v, bool yes) external {
        address who = verifiers[v % verifiers.length];
        vm.prank(who);
        if (yes) {
            try reg.approve(_id(i % NODES), bytes32(uint256(7))) {} catch {}
        } else {
            try reg.refuse(_id(i % NODES), bytes32(uint256(7)), 1) {} catch {}
        }
    }

    function exitAndWithdraw(uint256 i, uint256 wait) external {
        i %= NODES;
        vm.prank(_op(i));
        try reg.requestExit(_id(i)) {} catch {}
        vm.warp(block.timestamp + (wait % 10 days));
        vm.prank(_op(i));
        try reg.withdrawStake(_id(i)) {} catch {}
    }

    function verifierChurn(uint256 v, uint256 wait) external {
        address who = verifiers[v % verifiers.length];
        vm.deal(who, 1 ether);
        vm.startPrank(who);
        try vs.requestLeave() {} catch {}
        vm.warp(block.timestamp + (wait % 10 days));
        try vs.withdraw() {} catch {}
        try vs.join{value: 1 ether}() {} catch {}
        vm.stopPrank();
    }

    function post(uint256 amount) external {
        amount = 1 + (amount % 5 ether);
        address requester = address(0xBEEF);
        vm.deal(requester, amount);
        IFirnJobMarket.JobRequest memory r;
        r.teeTypeMask = 2;
        r.allowedMeasurements = new bytes32[](0);
        r.workloadHash = bytes32(uint256(1));
        r.inputCommitment = bytes32(uint256(2));
        r.deadline = uint64(block.timestamp + 1 days);
        r.claimTimeout = 1 hours;
        vm.prank(requester);
        jobIds.push(market.postJob{value: amount}(r));
    }

    function claimAndProve(uint256 j, uint256 i, bool prove) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[j % jobIds.length];
        i %= NODES;
        vm.prank(_op(i));
        try market.claimJob(jobId, _id(i)) {} catch {}
        if (!prove) return;
        IFirnJobMarket.WorkProof memory p = IFirnJobMarket.WorkProof(
            jobId, _id(i), measurement, bytes32(uint256(1)), bytes32(uint256(2)), bytes32(uint256(3)), 0, 0, 1
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(_key(i), market.hashWorkProof(p));
        vm.prank(_op(i));
        try market.submitProof(jobId, p, abi.encodePacked(r, s, v)) {} catch {}
    }

    function disputeOrFinalize(uint256 j, uint256 v, bool disputeIt, uint256 wait) external {
        if (jobIds.length == 0) return;
        bytes32 jobId = jobIds[j % jobIds.length];
        if (disputeIt) {
            vm.prank(verifiers[v % verifiers.length]);
            try market.dispute(jobId, 1) {} catch {}
        } else {
            vm.warp(block.timestamp + (wait % 2 days));
            try market.finalize(jobId) {} catch {}
        }
    }

    function reclaim(uint256 j, uint256 wait) external {
        if (jobIds.length == 0) return;
        vm.warp(block.timestamp + (wait % 2 days));
        vm.prank(address(0xBEEF));
        try market.reclaim(jobIds[j % jobIds.length]) {} catch {}
    }

    function jobCount() external view returns (uint256) {
        return jobIds.length;
    }

    function jobAt(uint256 k) external view returns (bytes32) {
        return jobIds[k];
    }

    function nodeId(uint256 i) external pure returns (bytes32) {
        return _id(i);
    }

    function verifierAt(uint256 k) external view returns (address) {
        return verifiers[k];
    }

    function verifierTotal() external view returns (uint256) {
        return verifiers.length;
    }
}

/// @notice No value is created or lost: each contract holds exactly what its books say it owes.
contract FirnInvariantsTest is FirnFixture {
    Handler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new Handler(verifierSet, registry, market, verifierList, MEASUREMENT);
        targetContract(address(handler));
    }

    function invariant_registryBalanceEqualsStakes() public view {
        uint256 sum;
        for (uint256 i = 0; i < 4; ++i) sum += registry.getNode(handler.nodeId(i)).stake;
        vm.assertEq(address(registry).balance, sum, "registry balance == sum of stakes");
        vm.assertEq(registry.totalStaked(), sum, "totalStaked == sum of stakes");
    }

    function invariant_verifierSetBalanceEqualsStakes() public view {
        uint256 sum;
        for (uint256 k = 0; k < handler.verifierTotal(); ++k) sum += verifierSet.getVerifier(handler.verifierAt(k)).stake;
        vm.assertEq(address(verifierSet).balance, sum, "verifier set balance == sum of stakes");
    }

    function invariant_marketBalanceEqualsOpenEscrow() public view {
        uint256 sum;
        for (uint256 k = 0; k < handler.jobCount(); ++k) {
            IFirnJobMarket.Job memory j = market.getJob(handler.jobAt(k));
            if (j.status != IFirnJobMarket.JobStatus.Paid && j.status != IFirnJobMarket.JobStatus.Reclaimed) {
                sum += j.escrow;
            } else {
                vm.assertEq(j.escrow, 0, "settled jobs hold nothing");
            }
        }
        vm.assertEq(address(market).balance, sum, "market balance == sum of open escrows");
        vm.assertEq(market.totalEscrow(), sum, "totalEscrow == sum of open escrows");
    }
}
