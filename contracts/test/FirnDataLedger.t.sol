// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnDataLedger} from "../src/interfaces/IFirnDataLedger.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

contract FirnDataLedgerTest is FirnFixture {
    function test_post_recordsOnceAndChecksSigner() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        TestNode memory other = _node(2);
        IFirnDataLedger.SignedData memory d = IFirnDataLedger.SignedData(t.enclaveId, keccak256("d"), "firn://a");
        bytes32 digest = ledger.hashSignedData(d);
        bytes memory good = _sig(t.enclaveKey, digest);
        bytes memory bad = _sig(other.enclaveKey, digest);

        vm.expectRevert(
            abi.encodeWithSelector(IFirnDataLedger.WrongSigner.selector, t.enclaveId, t.enclaveAddress, other.enclaveAddress)
        );
        ledger.post(d.enclaveId, d.dataHash, d.uri, bad);

        vm.expectEmit(address(ledger));
        emit IFirnDataLedger.DataPosted(t.enclaveId, d.dataHash, digest, d.uri, stranger);
        vm.prank(stranger);
        ledger.post(d.enclaveId, d.dataHash, d.uri, good);
        vm.assertTrue(ledger.isPosted(digest), "posted");
        IFirnDataLedger.Record memory r = ledger.getRecord(digest);
        vm.assertEq(r.signer, t.enclaveAddress, "signer");
        vm.assertEq(uint256(r.blockNumber), block.number, "block");

        vm.expectRevert(abi.encodeWithSelector(IFirnDataLedger.AlreadyPosted.selector, digest));
        ledger.post(d.enclaveId, d.dataHash, d.uri, good);

        vm.expectRevert(abi.encodeWithSelector(IFirnDataLedger.NodeNotEligible.selector, other.enclaveId, uint8(1)));
        ledger.post(other.enclaveId, d.dataHash, d.uri, good);

        vm.expectRevert(abi.encodeWithSelector(IFirnDataLedger.UriTooLong.selector, 2049, 2048));
        ledger.post(d.enclaveId, d.dataHash, string(new bytes(2049)), good);

        vm.expectRevert(abi.encodeWithSelector(IFirnDataLedger.InvalidSignature.selector, uint8(2)));
        ledger.post(d.enclaveId, d.dataHash, d.uri, hex"1234");

        // A revoked measurement stops posting at once.
        registry.revokeMeasurement(SIM, MEASUREMENT);
        IFirnDataLedger.SignedData memory d2 = IFirnDataLedger.SignedData(t.enclaveId, keccak256("d2"), "firn://b");
        bytes memory sig2 = _sig(t.enclaveKey, ledger.hashSignedData(d2));
        vm.expectRevert(abi.encodeWithSelector(IFirnDataLedger.NodeNotEligible.selector, t.enclaveId, uint8(3)));
        ledger.post(d2.enclaveId, d2.dataHash, d2.uri, sig2);
    }

    /// @dev A record signed and posted before a key rotation and an exit stays valid; a record
    /// signed with the old key after the rotation does not verify.
    function test_records_stayVerifiableAfterRotationAndExit() public {
        TestNode memory t = _activeNode(1, SIM, MEASUREMENT);
        vm.roll(120);
        IFirnDataLedger.SignedData memory d = IFirnDataLedger.SignedData(t.enclaveId, keccak256("d"), "firn://a");
        bytes32 digest = ledger.hashSignedData(d);
        bytes memory sig = _sig(t.enclaveKey, digest);
        ledger.post(d.enclaveId, d.dataHash, d.uri, sig);

        vm.roll(130);
        address newAddr = vm.addr(0xabc);
        vm.prank(t.operator);
        registry.rotateKeys(t.enclaveId, newAddr, keccak256("kem2"), keccak256("ev2"));
        _approveAll(t.enclaveId, keccak256("ev2"));
        vm.roll(140);
        vm.prank(t.operator);
        registry.requestExit(t.enclaveId);
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(t.operator);
        registry.withdrawStake(t.enclaveId);
        vm.roll(150);

        vm.assertTrue(ledger.isValidRecord(digest), "posted record still valid after rotation and exit");
        vm.assertTrue(ledger.verifySignedData(d, sig, 120), "unposted check at the signing block");
        vm.assertFalse(ledger.verifySignedData(d, sig, 145), "old key is not valid after rotation");
        vm.assertFalse(ledger.isValidRecord(keccak256("never posted")), "unknown digest");
        vm.assertFalse(ledger.verifySignedData(d, hex"1234", 120), "malformed signature is just invalid");
        IFirnDataLedger.SignedData memory d3 = IFirnDataLedger.SignedData(t.enclaveId, keccak256("d3"), "x");
        bytes memory newSig = _sig(0xabc, ledger.hashSignedData(d3));
        vm.assertTrue(ledger.verifySignedData(d3, newSig, 135), "new key in its range");
        vm.assertFalse(ledger.verifySignedData(d3, newSig, 151), "not after exit");
    }
}
