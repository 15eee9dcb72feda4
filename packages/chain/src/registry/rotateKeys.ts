import type { Address, Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertAddress, assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface RotateKeysParams {
  enclaveId: Hex;
  newEnclaveAddress: Address;
  newKemPublicKey: Hex;
  newEvidenceDigest: Hex;
}

/** Operator: propose new enclave keys; the old keys stay in force until the quorum approves. */
export async function rotateKeys(clients: FirnClients, p: RotateKeysParams): Promise<WriteResult> {
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
  });
}
