import type { Hex } from 'viem';
import { firnJobMarketAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/** Claimant operator: report that the enclave could not do the job; the requester may reclaim at once. */
export async function failJob(clients: FirnClients, p: { jobId: Hex; reason: Hex }): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'failJob',
    args: [assertBytes32(p.jobId, 'jobId'), assertBytes32(p.reason, 'reason')],
  });
}
