import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnvilInstance, type FirnDeployment, startAnvil } from '@firn/chain';
import { type Hex, keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestFirn } from '../../../chain/test/testDeployment.ts';
import { createLogger } from '../logger.ts';
import { NodeDb } from '../storage/nodeDb.ts';
import { DEFAULT_STORAGE_QUOTAS } from '../storage/quota.ts';
import { JobService } from './jobApi.ts';
import type { JobHost } from './jobHost.ts';

// A job this node proved, that the chain then lost (an anvil reset, or a reorg that dropped the
// proof): the market reads it as None. The finalizer used to poll such a job for ever; now it
// gives up after `lostProofChecks` checks in a row and the record says why it will not be paid.
let anvil: AnvilInstance;
let deployment: FirnDeployment;
let svc: JobService;
const logs: string[] = [];

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 2 });
  deployment = await deployTestFirn(anvil);

  const dataDir = mkdtempSync(join(tmpdir(), 'firn-lost-proof-'));
  const host = {
    opts: { dataDir },
    db: new NodeDb(dataDir),
    quotas: DEFAULT_STORAGE_QUOTAS,
    // No enclave is needed to finalize: the supervisor only takes chain-time updates here.
    supervisor: Object.assign(new EventEmitter(), { call: async () => ({}) }),
    identity: undefined,
  } as unknown as JobHost;
  svc = new JobService(host, {
    rpcUrl: anvil.rpcUrl,
    operatorKey: anvil.accounts[1]!.privateKey,
    deployment,
    logger: createLogger({}, { write: (l: string) => void logs.push(l) }),
    // The finalizer runs only when the test calls it.
    finalizeIntervalMs: 3_600_000,
    lostProofChecks: 3,
  });
  await svc.start();
}, 120_000);
afterAll(async () => {
  svc?.stop();
  await anvil?.stop();
});

const proved = (tag: string): Hex => {
  const jobId = keccak256(toHex(tag));
  svc.jobs.put({ jobId, status: 'proved', inputs: [], createdAt: 1, updatedAt: 1, challengeEndsAt: 1 });
  return jobId;
};

describe('a proved job the chain lost', () => {
  it('is marked failed (E_CHAIN, naming the cause) after lostProofChecks checks, then no longer polled', async () => {
    const jobId = proved('lost after a reset');
    await svc.finalizeDue();
    await svc.finalizeDue();
    expect(svc.jobs.get(jobId)?.status).toBe('proved');
    await svc.finalizeDue();
    const r = svc.jobs.get(jobId)!;
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('E_CHAIN');
    expect(r.error?.message).toMatch(
      /no longer holds this job's proof \(it reads the job as None after 3 checks\)/,
    );
    expect(svc.jobs.withStatus('proved').map((x) => x.jobId)).not.toContain(jobId);
    expect(logs.some((l) => l.includes('proof lost on chain'))).toBe(true);
  }, 60_000);

  it('an unreachable chain is an outage, not a loss: nothing is marked while it is down', async () => {
    const jobId = proved('kept through an outage');
    await anvil.stop();
    // The chain monitor learns the RPC is down; the finalizer then waits instead of counting.
    await svc.chainMonitor.requireUp('test').catch(() => undefined);
    for (let i = 0; i < 5; i++) await svc.finalizeDue();
    expect(svc.jobs.get(jobId)?.status).toBe('proved');
  }, 60_000);
});
