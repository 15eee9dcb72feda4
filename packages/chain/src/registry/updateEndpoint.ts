import type { Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/** Operator: publish a new endpoint URL (at most 256 bytes) for a Pending or Active node. */
export async function updateEndpoint(
  clients: FirnClients,
  enclaveId: Hex,
  endpoint: string,
): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'updateEndpoint',
    args: [assertBytes32(enclaveId, 'enclaveId'), endpoint],
  });
}
