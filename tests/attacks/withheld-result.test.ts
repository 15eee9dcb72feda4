import { createFirnClients, finalizeJob, getJob, JobStatus, reclaimJob } from '@firn/chain';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { increaseTime, startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { JOB_RESULT_PATH, tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// Attack (malicious host): the host runs the job, submits the enclave's valid Work Proof, and then
// never serves the result (the sealed outputs and the sealed summary live only in its storage).
// Verifiers check the proof against chain data only, so nobody disputes; after the challenge
// window the operator is paid in full, and the requester, who got nothing, cannot reclaim.
let net: TestNetwork;
const realFetch = globalThis.fetch;
beforeAll(async () => {
  net = await startTestNetwork({ challengeWindow: 60 });
}, 120_000);
afterAll(async () => {
  globalThis.fetch = realFetch;
  await net?.stop();
});

describe('attack: host withholds the result of a proved job', () => {
  it('the requester who never got its outputs can recover the escrow', async () => {
    const kem = await generateKemKeyPair();
    // The host's relay: everything passes except the result, which it never hands out.
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (JOB_RESULT_PATH.test(urlOf(url)))
        return new Response('{"error":{"code":"E_NOT_FOUND","message":"no result"}}', {
          status: 404,
          headers: { 'content-type': 'application/json' },
        });
      return realFetch(url, init);
    }) as typeof fetch;
    let jobId: Hex | undefined;
    let failure: { code?: string } | undefined;
    try {
      await runJob(
        await tinyInferenceJob(net, kem, [1, 2, 3], {
          onPosted: (id: Hex) => {
            jobId = id;
          },
        }),
      );
    } catch (e) {
      jobId ??= (e as { jobId?: Hex }).jobId;
      failure = e as { code?: string };
    } finally {
      globalThis.fetch = realFetch;
    }
    const operatorClients = createFirnClients(net.anvil.rpcUrl, net.operator.privateKey, net.deployment);
    if (jobId === undefined) throw new Error('the job was never posted');
    // The host's proof was accepted on chain (the requester's SDK waits for the verifiers' verdict
    // on a withheld result, so by now the job may already be Slashed or Reclaimed).
    const proved = await getJob(operatorClients, jobId);
    expect(proved.provedAt).toBeGreaterThan(0n);
    expect([JobStatus.Proved, JobStatus.Slashed, JobStatus.Reclaimed]).toContain(proved.status);
    // The requester was told why, with the stable code.
    expect(failure?.code).toBe('E_RESULT_UNAVAILABLE');
    await increaseTime(net.anvil.rpcUrl, 120);
    await finalizeJob(operatorClients, jobId).catch(() => undefined);
    const requesterClients = createFirnClients(net.anvil.rpcUrl, net.requester.privateKey, net.deployment);
    await reclaimJob(requesterClients, jobId).catch(() => undefined);
    // The promise: a job whose outputs never reached the requester is not paid for.
    expect(JobStatus[(await getJob(requesterClients, jobId)).status]).toBe('Reclaimed');
  }, 180_000);
});
