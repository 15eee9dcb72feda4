import { getJob, JobStatus } from '@firn/chain';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { inferenceJobOptions, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// A requester's submission is retried while the first attempt is still in flight (a proxy or a
// client timeout resends the same signed POST /v1/jobs). Decision 1040 promises that a retried
// submission with the same body is the same job: it "answers 202 with the current record and never
// runs the job a second time". Two identical submissions that arrive together both pass the
// "already recorded?" check (the check and the write are separated by the chain read), both start
// processing, and the loser's failed claim overwrites the record of the job that is running: the
// node reports the job `failed` (and ends the event stream) although it is claimed and running.
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 9 });

describe('attack: the same signed job submission sent twice at once', () => {
  it('is one job: the run succeeds and the node never records it failed', async () => {
    const kem = await generateKemKeyPair();
    const realFetch = globalThis.fetch;
    const statuses: number[] = [];
    const seen: string[] = [];
    let jobId: Hex | undefined;
    globalThis.fetch = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      if (init?.method === 'POST' && url.endsWith('/v1/jobs') && statuses.length === 0) {
        // The same request, twice, concurrently (the second is a retry of the first).
        const { signal: _s, ...rest } = init;
        const [a, b] = await Promise.all([realFetch(input, rest), realFetch(input, rest)]);
        statuses.push(a.status, b.status);
        return a.status === 202 ? a : b;
      }
      return realFetch(input, init);
    }) as typeof fetch;
    let result: Awaited<ReturnType<typeof runJob>> | undefined;
    let error: unknown;
    try {
      const watch = (async () => {
        for (let i = 0; i < 600 && jobId === undefined; i++) await new Promise((r) => setTimeout(r, 20));
        for (let i = 0; i < 600; i++) {
          const r = net.node.jobs?.jobs.get(jobId!);
          if (r && seen.at(-1) !== r.status) seen.push(r.status);
          if (r?.status === 'proved' || r?.status === 'finalized') return;
          await new Promise((res) => setTimeout(res, 10));
        }
      })();
      result = await runJob(
        inferenceJobOptions(net, kem, model.bytes, {
          escrow: 1n,
          maxNodes: 1,
          onPosted: (id) => {
            jobId = id;
          },
        }),
      ).catch((e: unknown) => {
        error = e;
        return undefined;
      });
      await watch;
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(statuses).toEqual([202, 202]);
    expect(jobId).toBeDefined();
    const onChain = await getJob(
      // any client reads
      (await import('@firn/chain')).createFirnClients(
        net.anvil.rpcUrl,
        net.requester.privateKey,
        net.deployment,
      ),
      jobId!,
    );
    expect(
      seen,
      `record statuses seen: ${seen.join(' -> ')}; chain: ${JobStatus[onChain.status]}`,
    ).not.toContain('failed');
    expect((error as Error | undefined)?.message).toBeUndefined();
    expect(result?.proofCheck.ok).toBe(true);
  }, 120_000);
});
