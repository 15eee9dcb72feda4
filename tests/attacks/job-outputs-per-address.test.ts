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

// Attack: a requester whose workload writes large outputs runs job after job. The outputs land on
// the node's disk but are charged to no address: only the node's total bounds them, so one
// requester fills the whole node (every other requester's uploads and inputs are then refused
// E_QUOTA_EXCEEDED on the total) without touching its own per-address quota.
// Promise (decision 1550, brief): every byte a requester makes land on the node's disk counts
// against its per-address quota (uploads, fetched inputs, session models, job outputs).
const dir = mkdtempSync(join(tmpdir(), 'firn-output-per-address-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const zero = `0x${'00'.repeat(20)}` as Hex;
const TOTAL = 1_000_000;
const PER_ADDRESS = 100_000;
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
    quotas: { perAddressBytes: PER_ADDRESS, totalBytes: TOTAL },
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

describe("one requester's job outputs", () => {
  it('count against its per-address quota: past it, its job fails E_QUOTA_EXCEEDED', async () => {
    const svc = service();
    const requester = `0x${'ab'.repeat(20)}`;
    const job = {
      requester,
      escrow: 10n ** 30n,
      claimTimeout: 86_400n,
      deadline: BigInt(Math.floor(Date.now() / 1000) + 86_400 * 2),
    } as unknown as FirnJob;
    const run = async (i: number) => {
      const jobId = `0x${String(i).padStart(64, '0')}` as Hex;
      svc.jobs.put({ jobId, status: 'accepted', inputs: [], createdAt: 1, updatedAt: 1 });
      await (svc as unknown as { process: (...a: unknown[]) => Promise<void> }).process(
        { jobId, inputs: [], enc: '0x', ciphertext: '0x' },
        { workloadHash: zero, inputCommitment: zero },
        job,
      );
      return svc.jobs.get(jobId);
    };
    const records = [await run(1), await run(2), await run(3)];
    // 3 x 60 000 bytes of outputs against a 100 000-byte quota: the second and third are refused.
    expect(svc.quota.usedBy(requester)).toBeLessThanOrEqual(PER_ADDRESS);
    expect(records.filter((r) => r?.error?.code === 'E_QUOTA_EXCEEDED').length).toBe(2);
    expect(records[1]?.error?.message).toMatch(/quotas\.perAddressBytes/);
    svc.stop();
  }, 30_000);
});
