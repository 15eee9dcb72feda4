import type { FirnJob } from '@firn/chain';
import type { Hex } from '@firn/core';
import type { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import type { StorageQuotas } from '../../packages/node/src/storage/quota.ts';
import { stubbedJobService } from './storageService.ts';

const zero = `0x${'00'.repeat(20)}` as Hex;

/**
 * A node's JobService in `dataDir` with no chain (every chain write answers at once) and an
 * enclave whose every job writes one output of `outBytes` bytes (distinct per job), under `quotas`.
 * For the job-output quota attacks (decision 1550).
 */
export function outputQuotaService(dataDir: string, quotas: StorageQuotas, outBytes: number): JobService {
  return stubbedJobService(dataDir, quotas, outBytes);
}

/** Run job number `i` of `requester` through `svc` (accepted, then processed); resolves to its record. */
export async function runOutputJob(svc: JobService, i: number, requester: string) {
  const job = {
    requester,
    escrow: 10n ** 30n,
    claimTimeout: 86_400n,
    deadline: BigInt(Math.floor(Date.now() / 1000) + 86_400 * 2),
  } as unknown as FirnJob;
  const jobId = `0x${String(i).padStart(64, '0')}` as Hex;
  svc.jobs.put({ jobId, status: 'accepted', inputs: [], createdAt: 1, updatedAt: 1 });
  await (svc as unknown as { process: (...a: unknown[]) => Promise<void> }).process(
    { jobId, inputs: [], enc: '0x', ciphertext: '0x' },
    { workloadHash: zero, inputCommitment: zero },
    job,
  );
  return svc.jobs.get(jobId);
}
