import { createFirnClients, finalizeJob, getJob, JobStatus, reclaimJob } from '@firn/chain';
import { runJob, sealInput } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { increaseTime, requesterOptions, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

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
    const model = await sealInput(tinyLinearModel().bytes, 'application/onnx', kem.publicKey);
    const input = await sealInput(
      new TextEncoder().encode(JSON.stringify({ x: { dims: [1, 3], type: 'float32', data: [1, 2, 3] } })),
      'application/json',
      kem.publicKey,
    );
    // The host's relay: everything passes except the result, which it never hands out.
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      const u = typeof url === 'string' ? url : url instanceof URL ? url.href : url.url;
      if (/\/v1\/jobs\/0x[0-9a-f]{64}\/result$/i.test(u))
        return new Response('{"error":{"code":"E_NOT_FOUND","message":"no result"}}', {
          status: 404,
          headers: { 'content-type': 'application/json' },
        });
      return realFetch(url, init);
    }) as typeof fetch;
    let jobId: Hex | undefined;
    let failure: { code?: string } | undefined;
    try {
      await runJob({
        ...requesterOptions(net, kem),
        kind: 'inference',
        inputs: [
          { role: 'model', sealed: model },
          { role: 'input', sealed: input },
        ],
        params: {},
        escrow: 10n ** 15n,
        onPosted: (id: Hex) => {
          jobId = id;
        },
      });
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
