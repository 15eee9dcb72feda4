import type { Hex } from 'viem';
import { firnJobMarketAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/** Verifier: dispute a proved job within its challenge window; a quorum slashes the node. */
export async function disputeJob(
  clients: FirnClients,
  p: { jobId: Hex; reasonCode: number },
): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'dispute',
    args: [assertBytes32(p.jobId, 'jobId'), Number(assertUint(p.reasonCode, 16, 'reasonCode'))],
  });
}
