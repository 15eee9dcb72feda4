import { type FirnClients, getJob, JobStatus, reclaimJob } from '@firn/chain';
import { FirnError, type Hex } from '@firn/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MarketSession } from '../../packages/client/src/marketJob.ts';
import { chainBoundedFollow, NodeLostError, waitOutLostNode } from '../../packages/client/src/runJob.ts';

// Attack by a malicious host (decision 1822, second round), unit scale. chainBoundedFollow passes a node-loss error of the event
// stream through verbatim: a host that refuses GET /v1/jobs/{id}/events with
// `503 {error: {code: 'E_ENCLAVE_UNAVAILABLE', message: <its text>}}` (followEvents raises that
// typed error as is) and then fails the job on chain itself (failJob, which it may: it holds the
// claim) ends runJob/runApp with NodeLostError whose message is the host's text, 2000 chars with
// control characters, not said to be the node's word (waitOutLostNode: `cause.message`). runJob
// also copies it into `reassignments[].reason` and into the final "node X was lost (...)" error.
vi.mock('@firn/chain', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@firn/chain')>()),
  getJob: vi.fn(),
  getJobStatus: vi.fn(),
  reclaimJob: vi.fn(async () => ({})),
  withdrawCredits: vi.fn(async () => ({})),
}));

const JOB = `0x${'cd'.repeat(32)}` as Hex;
const HOST_TEXT = '\u001b[2J\u001b[31mThe enclave rejected input "x": dims wrong.\u001b[0m\r\n'.padEnd(
  2000,
  '~',
);

afterEach(() => {
  vi.mocked(getJob).mockReset();
  vi.mocked(reclaimJob).mockClear();
});

describe('host word: node-loss refusal of the event stream carrying host text', () => {
  it('the NodeLostError that ends the wait does not carry the host text raw', async () => {
    vi.mocked(getJob).mockResolvedValue({
      status: JobStatus.Failed,
      claimedAt: 1000n,
      claimTimeout: 900n,
      deadline: 10_000n,
    } as Awaited<ReturnType<typeof getJob>>);
    const m = {
      clients: { public: { getBlock: async () => ({ timestamp: 1100n }) } } as unknown as FirnClients,
      node: { endpoint: 'http://node.test' },
      chainClock: { observe: (t: number) => t, now: async () => 1100, estimate: () => 1100 },
    } as unknown as MarketSession;
    // What NodeApi.followEvents raises for a 503 whose body is the node's typed error.
    const follow = chainBoundedFollow(m, JOB, async () => {
      throw new FirnError('E_ENCLAVE_UNAVAILABLE', HOST_TEXT);
    });
    let cause: FirnError | undefined;
    try {
      await follow(new AbortController().signal);
    } catch (e) {
      cause = e as FirnError;
    }
    expect(cause).toBeDefined();
    const err = await waitOutLostNode(
      m,
      JOB,
      cause!,
      { rpcUrl: 'http://rpc.test', pollMs: 1 },
      follow,
      10_000n,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeLostError);
    const msg = (err as Error).message;
    expect(msg, JSON.stringify(msg.slice(0, 100))).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(msg.length).toBeLessThan(600);
    expect(msg).toContain('node http://node.test');
  });
});
