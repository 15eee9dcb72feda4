import { createFirnClients, getJob, getNode, JobStatus, NodeStatus } from '@firn/chain';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { JOB_RESULT_PATH, tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// A verifier whose host clock runs 30 minutes ahead of the chain (or a chain that runs behind)
// waits for a proved job's result before it disputes "result unavailable". Judged on the host's
// clock, the grace share of the challenge window looked spent at the first look, so a result served
// a few seconds after the proof got an honest node disputed and slashed at once.
const SKEW = 1800;
let net: TestNetwork;
const realFetch = globalThis.fetch;

async function rpc(method: string, params: unknown[]): Promise<unknown> {
  const r = await realFetch(net.anvil.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return ((await r.json()) as { result: unknown }).result;
}

beforeAll(async () => {
  net = await startTestNetwork({ challengeWindow: 60 });
  await rpc('anvil_setTime', [Math.floor(Date.now() / 1000) - SKEW]);
  await rpc('evm_mine', []);
}, 120_000);
afterAll(async () => {
  globalThis.fetch = realFetch;
  await net?.stop();
});

describe('verifiers on a host clock ahead of the chain', () => {
  it('do not dispute an honest result served a few seconds after the proof', async () => {
    const kem = await generateKemKeyPair();
    // The result is served from 5 s after the job is posted (a slow store, a restart).
    let servedFrom = Number.POSITIVE_INFINITY;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (JOB_RESULT_PATH.test(urlOf(url)) && Date.now() < servedFrom)
        return new Response('{"error":{"code":"E_NOT_FOUND","message":"no result yet"}}', {
          status: 404,
          headers: { 'content-type': 'application/json' },
        });
      return realFetch(url, init);
    }) as typeof fetch;
    let jobId: Hex | undefined;
    try {
      await runJob(
        await tinyInferenceJob(net, kem, [1, 2, 3], {
          onPosted: (id: Hex) => {
            jobId = id;
            servedFrom = Date.now() + 5_000;
          },
        }),
      ).catch(() => undefined);
      if (jobId === undefined) throw new Error('the job was never posted');
      const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
      // Let the verifiers look again after the result is served (they retry every 2 s).
      while (Date.now() < servedFrom + 6_000) await new Promise((r) => setTimeout(r, 500));
      const job = await getJob(clients, jobId);
      expect(job.provedAt).toBeGreaterThan(0n);
      expect(JobStatus[job.status]).toBe('Proved');
      expect(NodeStatus[(await getNode(clients, job.enclaveId)).status]).toBe('Active');
    } finally {
      globalThis.fetch = realFetch;
    }
  }, 180_000);
});
