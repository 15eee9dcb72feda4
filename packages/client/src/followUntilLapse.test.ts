import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type FirnClients, getJob, JobStatus } from '@firn/chain';
import type { Hex } from '@firn/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AttestedNode } from './attestNode.ts';
import { ChainClock } from './chainClock.ts';
import { followUntilLapse, isLapseBound } from './followUntilLapse.ts';
import { NodeApi } from './nodeApi.ts';

// The attack of tests/attacks/requester-frozen-enclave-stream.test.ts at unit scale (decision
// 1475): a host that stays up around a hung enclave keeps the job's event stream alive with
// keep-alives for ever. The wait must end once the claim should have lapsed on the requester's
// chain clock, however many keep-alives come, and cost no chain read before the lapse can come.
vi.mock('@firn/chain', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@firn/chain')>()),
  getJob: vi.fn(),
}));

const JOB = `0x${'cd'.repeat(32)}` as Hex;
let server: Server | undefined;
let url = '';

beforeEach(async () => {
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const t = setInterval(() => res.write(': keep-alive\n\n'), 30);
    res.on('close', () => clearInterval(t));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  vi.mocked(getJob).mockReset();
});

/** A session whose chain clock reads `chain` first and then counts own elapsed time. */
async function session(chain: number) {
  const chainClock = new ChainClock(async () => chain);
  await chainClock.now();
  return {
    clients: {} as FirnClients,
    chainClock,
    node: { endpoint: url } as AttestedNode,
  };
}

const claimed = (claimedAt: bigint, claimTimeout: bigint) =>
  ({
    status: JobStatus.Claimed,
    claimedAt,
    claimTimeout,
    deadline: claimedAt + 3600n,
  }) as Awaited<ReturnType<typeof getJob>>;

describe('followUntilLapse', () => {
  it('ends a keep-alive-only stream with E_TIMEOUT naming the job once the claim lapsed on the chain clock', async () => {
    const m = await session(10_000);
    // Claimed at 9_900 for 60 s: lapsed at 9_960, long before the chain time now (10_000).
    vi.mocked(getJob).mockResolvedValue(claimed(9_900n, 60n));
    const api = new NodeApi(url);
    const t0 = performance.now();
    const err = await followUntilLapse(
      m,
      JOB,
      (signal) => api.followEvents(JOB, () => {}, { idleMs: 200, signal }),
      9_960n,
    ).catch((e: unknown) => e);
    expect(isLapseBound(err)).toBe(true);
    expect(err).toMatchObject({ code: 'E_TIMEOUT', message: expect.stringContaining(JOB) });
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it('keeps following while the claim stands and makes no chain read before the lapse can come', async () => {
    const m = await session(10_000);
    vi.mocked(getJob).mockResolvedValue(claimed(10_000n, 900n));
    const stream = new AbortController();
    const done = followUntilLapse(
      m,
      JOB,
      async (signal) =>
        new Promise((resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          stream.signal.addEventListener('abort', () => resolve({ status: 'proved' }), { once: true });
        }),
      10_900n,
    );
    await new Promise((r) => setTimeout(r, 1_200));
    stream.abort();
    await expect(done).resolves.toEqual({ status: 'proved' });
    expect(getJob).not.toHaveBeenCalled();
  });

  it('a lapse years away (beyond a 2^31 ms timer) neither fires early nor spins', async () => {
    const m = await session(10_000);
    vi.mocked(getJob).mockResolvedValue(claimed(10_000n, 900n));
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const done = followUntilLapse(
      m,
      JOB,
      (signal) =>
        new Promise((resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          setTimeout(() => resolve({ status: 'proved' }), 600);
        }),
      10_000n + 10n ** 9n,
    );
    await expect(done).resolves.toEqual({ status: 'proved' });
    // One timer for the bound and the test's own (a delay over 2^31-1 ms would fire at once, re-armed each ms).
    expect(timers.mock.calls.length).toBeLessThan(5);
    timers.mockRestore();
    expect(getJob).not.toHaveBeenCalled();
  });

  it('a claim that lapses later is looked up again at its lapse, not before, and then ends the wait', async () => {
    const m = await session(10_000);
    // The first look (at the earliest possible lapse) finds a claim that lapses 1 s from now.
    vi.mocked(getJob).mockResolvedValue(claimed(9_941n, 60n));
    const api = new NodeApi(url);
    const t0 = performance.now();
    const err = await followUntilLapse(
      m,
      JOB,
      (signal) => api.followEvents(JOB, () => {}, { idleMs: 200, signal }),
      9_990n,
    ).catch((e: unknown) => e);
    expect(isLapseBound(err)).toBe(true);
    // Lapse 10_001 + margin 2 s: about 3-4 s of own time, never the keep-alives' for ever.
    expect(performance.now() - t0).toBeGreaterThan(2_000);
    expect(performance.now() - t0).toBeLessThan(8_000);
    expect(vi.mocked(getJob).mock.calls.length).toBeLessThanOrEqual(3);
  });
});
