// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IFirnDataLedger} from "../src/interfaces/IFirnDataLedger.sol";
import {FirnFixture} from "./utils/FirnFixture.sol";

contract FirnDataLedgerTest is FirnFixture {
    function _sig(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

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

        vm.expectRevert(abi.encodeWithSelector(IFirnDataLedger.AlreadyPosted.selector, digest));
        ledger.post(d.enclaveId, d.dataHash, d.uri, good);

        vm.expectRevert(abi.encodeWithSelector(IFirnDataLedger.NodeNotActive.selector, other.enclaveId));
        ledger.post(other.enclaveId, d.dataHash, d.uri, good);

        vm.expectRevert(abi.encodeWithSelector(IFirnDataLedger.UriTooLong.selector, 2049, 2048));
        ledger.post(d.enclaveId, d.dataHash, string(new bytes(2049)), good);
    }
}
