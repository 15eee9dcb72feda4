import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirnDeployment, FirnJob } from '@firn/chain';
import type { Hex } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import type { JobHost } from '../../packages/node/src/jobs/jobHost.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { NodeDb } from '../../packages/node/src/storage/nodeDb.ts';

// Attack: a requester runs several jobs at once whose outputs are each under the room left in
// the node's total, but not together. Each job's outputs are checked against the total
// (quota.checkTotal) and only counted once adopted, after an await (the output is hashed): nothing
// is reserved in between, so concurrent jobs all pass the check and together store past
// quotas.totalBytes.
// Promise (docs/decisions/1550, docs/api.md "Limits"): job outputs count in the node's total; a
// job whose outputs would cross it fails with E_QUOTA_EXCEEDED.
const dir = mkdtempSync(join(tmpdir(), 'firn-output-race-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const zero = `0x${'00'.repeat(20)}` as Hex;
const TOTAL = 100_000;
const OUT = 60_000;

function service() {
  const dataDir = join(dir, 'node');
  let n = 0;
  const supervisor = Object.assign(new EventEmitter(), {
    call: async (method: string, args: { outputDir?: string }) => {
      if (method !== 'runJob') return {};
      // The enclave writes one output of OUT bytes (distinct per job) and names it by its hash.
      const bytes = Buffer.alloc(OUT, ++n);
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
    quotas: { perAddressBytes: 1_000_000, totalBytes: TOTAL },
    supervisor,
    identity: { enclaveId: `0x${'33'.repeat(32)}` },
  } as unknown as JobHost;
  const svc = new JobService(host, {
    rpcUrl: 'http://127.0.0.1:9',
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
  // No chain here: the claim and every other chain write answer at once; the chain is "up".
  const s = svc as unknown as Record<string, unknown>;
  s.chain = async () => ({ hash: `0x${'44'.repeat(32)}` });
  (svc.chainMonitor as unknown as { requireUp: () => Promise<void> }).requireUp = async () => undefined;
  return svc;
}

describe('concurrent jobs whose outputs together cross the node total', () => {
  it('do not store past quotas.totalBytes (one of them fails E_QUOTA_EXCEEDED)', async () => {
    const svc = service();
    const job = {
      requester: `0x${'ab'.repeat(20)}`,
      escrow: 10n ** 30n,
      claimTimeout: 86_400n,
      deadline: BigInt(Math.floor(Date.now() / 1000) + 86_400 * 2),
    } as unknown as FirnJob;
    const run = (i: number) => {
      const jobId = `0x${String(i).padStart(64, '0')}` as Hex;
      svc.jobs.put({ jobId, status: 'accepted', inputs: [], createdAt: 1, updatedAt: 1 });
      const p = (svc as unknown as { process: (...a: unknown[]) => Promise<void> }).process(
        { jobId, inputs: [], enc: '0x', ciphertext: '0x' },
        { workloadHash: zero, inputCommitment: zero },
        job,
      );
      return p.then(() => svc.jobs.get(jobId));
    };
    const records = await Promise.all([run(1), run(2), run(3)]);
    expect(svc.quota.total).toBeLessThanOrEqual(TOTAL);
    expect(records.filter((r) => r?.error?.code === 'E_QUOTA_EXCEEDED').length).toBeGreaterThanOrEqual(2);
    svc.stop();
  }, 30_000);
});
