import type { Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/**
 * Operator: from Active, stop taking jobs and start the unbonding period; from Pending, end the
 * registration at once (stake credited to `withdrawable`, the registration fee is kept).
 */
export async function requestExit(clients: FirnClients, enclaveId: Hex): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'requestExit',
    args: [assertBytes32(enclaveId, 'enclaveId')],
  });
}
