import { type FirnClients, getJob, JobStatus } from '@firn/chain';
import type { Hex } from '@firn/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AttestedNode } from '../../packages/client/src/attestNode.ts';
import { followUntilLapse, isLapseBound } from '../../packages/client/src/followUntilLapse.ts';

// A lying RPC (the RPC is not trusted, ARCHITECTURE §1) and a node whose stream never ends
// (keep-alives, or "progress" for ever). The requester posted the job itself: deadline = post time
// + 900 s, claim timeout 900 s, so no honest chain can show the claim standing after post + 900 s.
// The RPC answers getJob with a claim that lapses in the far future (claimTimeout and deadline at
// 2^64-1). Decision 1475 promises the wait on the node ends on the chain, bounded: the follow must
// end soon after the lapse the requester's own post fixed, not when the RPC says.
vi.mock('@firn/chain', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@firn/chain')>()),
  getJob: vi.fn(),
}));

const JOB = `0x${'ab'.repeat(32)}` as Hex;
const U64 = (1n << 64n) - 1n;

afterEach(() => {
  vi.useRealTimers();
  vi.mocked(getJob).mockReset();
});

describe('requester wait under an RPC that names a far-future lapse', () => {
  it('is ended near the lapse the requester posted, whatever claimTimeout/deadline the RPC reports', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const t0 = Math.floor(Date.now() / 1000);
    // The SDK's chain clock: chain time seen at the post, plus own elapsed time.
    const chainClock = {
      estimate: () => Math.floor(Date.now() / 1000),
      now: async () => Math.floor(Date.now() / 1000),
    };
    const m = {
      clients: {} as FirnClients,
      chainClock,
      node: { endpoint: 'http://127.0.0.1:9' } as AttestedNode,
    } as unknown as Parameters<typeof followUntilLapse>[0];
    vi.mocked(getJob).mockResolvedValue({
      status: JobStatus.Claimed,
      claimedAt: BigInt(t0 + 1),
      claimTimeout: U64,
      deadline: U64,
    } as Awaited<ReturnType<typeof getJob>>);
    const postedLapse = BigInt(t0 + 900); // post time + min(claimTimeout, deadline) the requester posted
    let ended: unknown;
    // The node's stream: never ends on its own (a keep-alive or a progress event every few seconds).
    const follow = (signal: AbortSignal) =>
      new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    const call = (followUntilLapse as (...a: unknown[]) => Promise<unknown>)(
      m,
      JOB,
      follow,
      postedLapse,
      postedLapse, // the latest the claim can lapse: the deadline the requester posted
    ).then(
      () => (ended = 'resolved'),
      (e) => (ended = e),
    );
    // One own day, in steps (bounded).
    for (let i = 0; i < 24 && ended === undefined; i++) await vi.advanceTimersByTimeAsync(3_600_000);
    expect(ended, 'the follow still runs a day after the posted deadline').toBeDefined();
    expect(isLapseBound(ended)).toBe(true);
    void call;
  });
});
