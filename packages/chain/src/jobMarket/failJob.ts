import type { Hex } from 'viem';
import { firnJobMarketAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/**
 * Claimant operator: report that the enclave could not do the job; the requester may reclaim at once.
 * The claim bond comes back in proportion to the claim time left, bond * (end - now) / (end -
 * claimedAt) with end = min(claim expiry, deadline); the rest goes to the governance treasury
 * (ClaimBondForfeited, decision 1625), never to the requester. Fail as soon as the failure is
 * known (decision 1571). When governance or the guardian revoked the node's measurement or
 * disallowed its TEE type since the claim, the whole bond comes back (ClaimBondReturned, 1702).
 */
export async function failJob(clients: FirnClients, p: { jobId: Hex; reason: Hex }): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'failJob',
    args: [assertBytes32(p.jobId, 'jobId'), assertBytes32(p.reason, 'reason')],
  });
}
