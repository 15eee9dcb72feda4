import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_JOBS_PER_REQUESTER, JobAdmission } from './admission.ts';

const A = `0x${'aa'.repeat(20)}`;
const B = `0x${'bb'.repeat(20)}`;

// Attack: one requester posts as many jobs as the node's queue holds (running + queued); every
// other requester then gets 429 "node busy" until they are done. With a per-requester share, the
// flood is refused past the share (429 with Retry-After, saying which limit) and others still get in.
describe('job intake fairness', () => {
  it('one requester flooding the queue holds at most its share; another requester is still admitted', () => {
    const adm = new JobAdmission(20, 3);
    const admitted: (() => void)[] = [];
    const refusals: unknown[] = [];
    for (let i = 0; i < 20; i++) {
      try {
        admitted.push(adm.enter(A));
      } catch (e) {
        refusals.push(e);
      }
    }
    expect(admitted).toHaveLength(3);
    expect(refusals).toHaveLength(17);
    expect(refusals[0]).toMatchObject({
      code: 'E_RATE_LIMITED',
      details: { retryAfterSeconds: 10 },
      message: expect.stringMatching(/already has 3 jobs running or queued on this node/),
    });
    // The other requester is not starved.
    const b = adm.enter(B);
    expect(adm.active).toBe(4);
    // The share is per address, whatever its case.
    expect(() => adm.check(A.toUpperCase().replace('0X', '0x'))).toThrow(/per-requester limit/);
    // A job ending frees one slot of its requester (release is idempotent).
    admitted[0]!();
    admitted[0]!();
    expect(adm.activeOf(A)).toBe(2);
    adm.enter(A);
    expect(() => adm.enter(A)).toThrow(/per-requester limit/);
    b();
    expect(adm.activeOf(B)).toBe(0);
  });

  it('the node total still applies across requesters, with its own message', () => {
    const adm = new JobAdmission(2, 2);
    adm.enter(A);
    adm.enter(B);
    expect(() => adm.enter(`0x${'cc'.repeat(20)}`)).toThrow(/this node is busy \(2 jobs running or queued\)/);
    expect(() => adm.check()).toThrow(expect.objectContaining({ code: 'E_RATE_LIMITED' }));
  });

  it('the default share is below the default queue (4 running + 16 queued)', () => {
    expect(DEFAULT_MAX_JOBS_PER_REQUESTER).toBeLessThan(20);
    expect(new JobAdmission(20).perRequester).toBe(DEFAULT_MAX_JOBS_PER_REQUESTER);
  });
});

describe('the job service uses the share (POST /v1/jobs admission)', () => {
  it('maxJobsPerRequester is applied by JobService.admit', async () => {
    const { EventEmitter } = await import('node:events');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { JobService } = await import('./jobApi.ts');
    const { NodeDb } = await import('../storage/nodeDb.ts');
    const { createLogger } = await import('../logger.ts');
    const { DEFAULT_STORAGE_QUOTAS } = await import('../storage/quota.ts');
    const dataDir = mkdtempSync(join(tmpdir(), 'firn-admission-'));
    const zero = `0x${'00'.repeat(20)}` as const;
    const svc = new JobService(
      {
        opts: { dataDir },
        db: new NodeDb(dataDir),
        quotas: DEFAULT_STORAGE_QUOTAS,
        supervisor: Object.assign(new EventEmitter(), { call: async () => ({}) }),
        identity: undefined,
      } as never,
      {
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
        },
        logger: createLogger({}, { write: () => undefined }),
        maxJobsPerRequester: 1,
      },
    );
    svc.admission.enter(A);
    expect(() => svc.admit(A)).toThrow(expect.objectContaining({ code: 'E_RATE_LIMITED' }));
    expect(() => svc.admit(B)).not.toThrow();
    expect(svc.activeJobs).toBe(1);
  });
});
