import type { Address, Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertAddress, assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';
import { getRegistrationFee } from './registerNode.ts';

export interface RotateKeysParams {
  enclaveId: Hex;
  newEnclaveAddress: Address;
  newKemPublicKey: Hex;
  newEvidenceDigest: Hex;
  /** The non-refundable rotation fee = the registry's registrationFee, wei (default: read from it). */
  registrationFee?: bigint;
}

/**
 * Operator: propose new enclave keys with msg.value = the registration fee (credited to the
 * governance treasury, never the reward pool, decision 1671: the rotation reserves the new address
 * while its vote runs, see docs/decisions/0800-economics.md); the old keys stay in force until the quorum approves.
 * Reverts (ChainRevertedError) RotationFeeMismatch, UnexpectedStatus, RotationPending,
 * EnclaveAddressInUse, NotOperator, EnforcedPause.
 */
export async function rotateKeys(clients: FirnClients, p: RotateKeysParams): Promise<WriteResult> {
  const fee = p.registrationFee ?? (await getRegistrationFee(clients));
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'rotateKeys',
    args: [
      assertBytes32(p.enclaveId, 'enclaveId'),
      assertAddress(p.newEnclaveAddress, 'newEnclaveAddress'),
      assertBytes32(p.newKemPublicKey, 'newKemPublicKey'),
      assertBytes32(p.newEvidenceDigest, 'newEvidenceDigest'),
    ],
    value: fee,
  });
}
