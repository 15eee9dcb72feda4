import { type FirnClients, getJob, JobStatus, reclaimJob } from '@firn/chain';
import type { Hex } from '@firn/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MarketSession } from './marketJob.ts';
import { JobFailedError, NodeLostError, settleHostFailure } from './runJob.ts';

// The attack of tests/attacks/requester-host-fake-failure.test.ts at unit scale (decision 1581): a
// host ends the job's event stream with `end: failed` the enclave never sealed. The requester must
// believe the chain, not the host: a job the chain shows proved is fetched, and a failure is
// reported as the node's unsigned word only once the chain freed the job (and it was reclaimed).
vi.mock('@firn/chain', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@firn/chain')>()),
  getJob: vi.fn(),
  reclaimJob: vi.fn(async () => ({})),
  withdrawCredits: vi.fn(async () => ({})),
}));

const JOB = `0x${'ab'.repeat(32)}` as Hex;
const m = { clients: {} as FirnClients, node: { endpoint: 'http://node.test' } } as unknown as MarketSession;
const job = (status: JobStatus) => ({ status }) as Awaited<ReturnType<typeof getJob>>;
const neverFollowed = () => Promise.reject(new Error('the stream must not be followed again'));
const hostEnd = (code: string, message: string) => ({
  status: 'failed',
  error: { code: code as never, message },
});

afterEach(() => {
  vi.mocked(getJob).mockReset();
  vi.mocked(reclaimJob).mockClear();
});

describe('settleHostFailure', () => {
  it('returns proved when the chain shows the job proved, whatever the host said', async () => {
    vi.mocked(getJob).mockResolvedValue(job(JobStatus.Proved));
    const end = await settleHostFailure(
      m,
      JOB,
      hostEnd('E_JOB_FAILED', 'out of memory'),
      { rpcUrl: 'http://rpc.test' },
      neverFollowed,
      10n ** 10n,
      () => undefined,
    );
    expect(end.status).toBe('proved');
    expect(reclaimJob).not.toHaveBeenCalled();
  });

  it('reports a chain-Failed job as the node’s unsigned word, with the host’s code, after reclaiming', async () => {
    vi.mocked(getJob).mockResolvedValue(job(JobStatus.Failed));
    const err = await settleHostFailure(
      m,
      JOB,
      hostEnd('E_NOT_FOUND', 'input missing\u0000\n'.padEnd(5000, 'x')),
      { rpcUrl: 'http://rpc.test' },
      neverFollowed,
      10n ** 10n,
      () => undefined,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    const f = err as JobFailedError;
    expect(f.code).toBe('E_NOT_FOUND');
    expect(f.reclaimed).toBe(true);
    expect(f.message).toMatch(/the node says the job failed \(E_NOT_FOUND: input missing/);
    expect(f.message).toMatch(/but the enclave did not sign it; the chain shows the job Failed/);
    // The host's text is capped and carries no control characters.
    expect(f.message.length).toBeLessThan(500);
    expect(f.message).not.toMatch(/[\u0000-\u001f]/);
    expect(reclaimJob).toHaveBeenCalledTimes(1);
  });

  it('a code naming the node (a restart) on a chain-Failed job is a lost node, for another node to run', async () => {
    vi.mocked(getJob).mockResolvedValue(job(JobStatus.Failed));
    const err = await settleHostFailure(
      m,
      JOB,
      hostEnd('E_ENCLAVE_UNAVAILABLE', 'the node restarted while the job ran'),
      { rpcUrl: 'http://rpc.test' },
      neverFollowed,
      10n ** 10n,
      () => undefined,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeLostError);
    expect((err as NodeLostError).reclaimed).toBe(true);
  });

  it('an unparsable host code becomes E_JOB_FAILED', async () => {
    vi.mocked(getJob).mockResolvedValue(job(JobStatus.Slashed));
    const err = await settleHostFailure(
      m,
      JOB,
      hostEnd('<script>', 'x'),
      { rpcUrl: 'http://rpc.test' },
      neverFollowed,
      10n ** 10n,
      () => undefined,
    ).catch((e: unknown) => e);
    expect((err as JobFailedError).code).toBe('E_JOB_FAILED');
    expect((err as JobFailedError).message).toMatch(/the chain shows the job Slashed/);
  });

  it('leaves a failure the enclave sealed to the caller, without reading the chain', async () => {
    const end = hostEnd('E_GRANT_SCOPE', 'refused');
    const out = await settleHostFailure(
      m,
      JOB,
      end,
      { rpcUrl: 'http://rpc.test' },
      neverFollowed,
      10n ** 10n,
      () => ({
        code: 'E_GRANT_SCOPE',
        message: 'the grant names another job',
      }),
    );
    expect(out).toBe(end);
    expect(getJob).not.toHaveBeenCalled();
  });
});
