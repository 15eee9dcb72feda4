import type { Hex } from 'viem';
import { firnJobMarketAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import type { FirnJob, JobStatus } from '../types.ts';
import { assertBytes32 } from '../validate.ts';
import type { WorkProof } from '../workProof.ts';

/** Read one job; an unknown jobId comes back with status None. */
export async function getJob(clients: FirnClients, jobId: Hex): Promise<FirnJob> {
  assertBytes32(jobId, 'jobId');
  try {
    const j = await clients.public.readContract({
      address: clients.addresses.jobMarket,
      abi: firnJobMarketAbi,
      functionName: 'getJob',
      args: [jobId],
    });
    return { jobId, ...j, status: j.status as JobStatus };
  } catch (e) {
    throw toChainError(e, 'getJob');
  }
}

/** The contract's own EIP-712 digest of a Work Proof (for cross-checks against hashWorkProof). */
export async function getWorkProofDigest(clients: FirnClients, proof: WorkProof): Promise<Hex> {
  try {
    return await clients.public.readContract({
      address: clients.addresses.jobMarket,
      abi: firnJobMarketAbi,
      functionName: 'hashWorkProof',
      args: [proof],
    });
  } catch (e) {
    throw toChainError(e, 'hashWorkProof');
  }
}
