import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FirnDeployment, FirnJob } from '@firn/chain';
import type { Hex } from '@firn/core';
import { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import type { JobHost } from '../../packages/node/src/jobs/jobHost.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { NodeDb } from '../../packages/node/src/storage/nodeDb.ts';
import type { StorageQuotas } from '../../packages/node/src/storage/quota.ts';

const zero = `0x${'00'.repeat(20)}` as Hex;

/**
 * A node's JobService in `dataDir` with no chain (every chain write answers at once) and an
 * enclave whose every job writes one output of `outBytes` bytes (distinct per job), under `quotas`.
 * For the job-output quota attacks (decision 1550).
 */
export function outputQuotaService(dataDir: string, quotas: StorageQuotas, outBytes: number): JobService {
  let n = 0;
  const supervisor = Object.assign(new EventEmitter(), {
    call: async (method: string, args: { outputDir?: string }) => {
      if (method !== 'runJob') return {};
      const bytes = Buffer.alloc(outBytes, ++n);
      const path = join(args.outputDir!, 'result');
      writeFileSync(path, bytes);
      const artifactId = `0x${createHash('sha256').update(bytes).digest('hex')}`;
      return {
        outputs: [{ role: 'result', path, artifactId, contentType: 'application/octet-stream' }],
        proof: '{}',
        response: '0x',
      };
    },
  });
  const host = {
    opts: { dataDir },
    db: new NodeDb(dataDir),
    quotas,
    supervisor,
    identity: { enclaveId: `0x${'33'.repeat(32)}` },
  } as unknown as JobHost;
  const svc = new JobService(host, {
    rpcUrl: 'http://127.0.0.1:9',
    // A made-up test key (a repeated byte), never a real account's.
    operatorKey: `0x${'11'.repeat(32)}`,
    deployment: {
      chainId: 31337,
      registry: zero,
      verifierSet: zero,
      jobMarket: zero,
      dataLedger: zero,
      deployBlock: 0n,
    } as FirnDeployment,
    logger: createLogger({}, { write: () => undefined }),
  });
  const s = svc as unknown as Record<string, unknown>;
  s.chain = async () => ({ hash: `0x${'44'.repeat(32)}` });
  (svc.chainMonitor as unknown as { requireUp: () => Promise<void> }).requireUp = async () => undefined;
  return svc;
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
