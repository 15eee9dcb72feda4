import type { Hex } from 'viem';
import { firnJobMarketAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/**
 * Requester: credit the escrow back (Open; Claimed past its deadline or claim timeout, whose bond
 * then goes to the governance treasury (decision 1625); Failed; Slashed with the slashed stake). Pull it with withdrawCredits(c, 'jobMarket').
 */
export async function reclaimJob(clients: FirnClients, jobId: Hex): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'reclaim',
    args: [assertBytes32(jobId, 'jobId')],
  });
}
