import type { Hex } from 'viem';
import { firnJobMarketAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/** Operator: claim a job for one of its Active nodes. */
export async function claimJob(
  clients: FirnClients,
  p: { jobId: Hex; enclaveId: Hex },
): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'claimJob',
    args: [assertBytes32(p.jobId, 'jobId'), assertBytes32(p.enclaveId, 'enclaveId')],
  });
}

/** Claimant: give a claimed job back so another node can take it. */
export async function releaseJob(clients: FirnClients, jobId: Hex): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'releaseJob',
    args: [assertBytes32(jobId, 'jobId')],
  });
}
