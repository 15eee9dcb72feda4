import { createFirnClients, firnJobMarketAbi, getJob } from '@firn/chain';
import { runJob } from '@firn/client';
import { type CreateGrantParams, generateKemKeyPair } from '@firn/crypto';
import { toFunctionSelector } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { openNetworkSession } from '../helpers/networkSession.ts';
import { tinyInferenceJob } from '../helpers/tinyInferenceJob.ts';

// The failure (decision 1653): runJob and openInferenceSession posted the job with a deadline of
// max(block time, host clock) + deadlineSeconds, then read the clock again after the post to set the
// grants' expiry. A second boundary crossed in between (every post takes a block) gave grants that
// outlast the job they are for by a second: the data key is usable in the enclave after the job's
// own deadline. Here the requester's clock steps one second once the post is sent, as a real clock
// does across a slow post (it steps when the postJob transaction is sent); the grants must expire
// exactly at the deadline the chain stores.
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

const POST_JOB = toFunctionSelector(
  firnJobMarketAbi.find((x) => x.type === 'function' && x.name === 'postJob') as never,
).slice(2);

/**
 * Run `f` with a requester clock ahead of chain time (so it sets the deadline) that moves on one
 * second once a postJob transaction is sent (its raw bytes carry the selector).
 */
async function withSteppingClock<T>(f: (now: () => number) => Promise<T>): Promise<T> {
  const base = Math.floor(Date.now() / 1000) + 120;
  let stepped = 0;
  const realFetch = globalThis.fetch;
  globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    const body = typeof init?.body === 'string' ? init.body : '';
    if (body.includes('eth_sendRawTransaction') && body.includes(POST_JOB)) stepped = 1;
    return realFetch(url, init);
  }) as typeof fetch;
  try {
    return await f(() => base + stepped);
  } finally {
    globalThis.fetch = realFetch;
  }
}

const reader = () => createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);

describe('grants expire with the job they are for', () => {
  it('runJob: every input grant expires at the deadline posted, not a second later', async () => {
    const expiries: number[] = [];
    const kem = await generateKemKeyPair();
    const r = await withSteppingClock(async (now) =>
      runJob(
        await tinyInferenceJob(net, kem, [1, 2, 3], {
          now,
          mutateGrant: (p: CreateGrantParams) => {
            expiries.push(p.expiresAt);
            return p;
          },
        }),
      ),
    );
    const job = await getJob(reader(), r.jobId);
    expect(expiries.length).toBeGreaterThan(0);
    for (const e of expiries) expect(e).toBe(Number(job.deadline));
  }, 90_000);

  it('openInferenceSession: the model grant expires at the deadline posted', async () => {
    const expiries: number[] = [];
    const s = await withSteppingClock((now) =>
      openNetworkSession(net, tinyLinearModel().bytes, {
        now,
        mutateGrant: (p: CreateGrantParams) => {
          expiries.push(p.expiresAt);
          return p;
        },
      }),
    );
    try {
      const job = await getJob(reader(), s.jobId);
      expect(expiries).toEqual([Number(job.deadline)]);
    } finally {
      await s.close().catch(() => undefined);
    }
  }, 90_000);
});
