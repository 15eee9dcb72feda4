import type { Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/** Operator: take the stake back once unbonding has ended (Exiting → Exited, or what a slash left). */
export async function withdrawStake(clients: FirnClients, enclaveId: Hex): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'withdrawStake',
    args: [assertBytes32(enclaveId, 'enclaveId')],
  });
}
