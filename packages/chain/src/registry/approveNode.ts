import type { Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface ApproveNodeParams {
  enclaveId: Hex;
  /** The evidence digest the verifier checked; must equal the round's digest on chain. */
  evidenceDigest: Hex;
}

/** Cast this verifier's approval for the node's open round (registration or key rotation). */
export async function approveNode(clients: FirnClients, p: ApproveNodeParams): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'approve',
    args: [assertBytes32(p.enclaveId, 'enclaveId'), assertBytes32(p.evidenceDigest, 'evidenceDigest')],
  });
}
