import type { Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface RefuseNodeParams {
  enclaveId: Hex;
  evidenceDigest: Hex;
  /** A uint16 reason, e.g. a verifier refusal code. */
  reasonCode: number;
}

/** Cast this verifier's refusal for the node's open round (registration or key rotation). */
export async function refuseNode(clients: FirnClients, p: RefuseNodeParams): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'refuse',
    args: [
      assertBytes32(p.enclaveId, 'enclaveId'),
      assertBytes32(p.evidenceDigest, 'evidenceDigest'),
      Number(assertUint(p.reasonCode, 16, 'reasonCode')),
    ],
  });
}
