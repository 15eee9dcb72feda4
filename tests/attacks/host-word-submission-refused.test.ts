import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// Attack by a malicious host (decision 1822). The answer to POST /v1/jobs is the host's word alone. The host takes
// the job (forwards it to its real daemon, which pre-flights and claims it on chain), waits until
// its claim is mined, and only then answers the requester with a refusal that reads like the
// enclave's own sealed error: `422 E_INPUT_INVALID` with a message naming a tensor. The SDK
// (runJob's runOnNode) treats any non node-loss refusal of the submission as final: it tries to
// reclaim (the job is Claimed, so nothing comes back) and rejects with JobFailedError carrying the
// host's code and message verbatim. The enclave meanwhile runs the job and the node proves it and
// is paid from the requester's escrow: the requester paid for a result its SDK told it was refused.
// What should happen: a refusal the enclave did not seal is final only where the chain says so
// (as for the stream's `end` event, decision 1581): with the job Claimed the SDK waits on it and
// gets the proved result (or the escrow back).

let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 180_000);
afterAll(() => net?.stop());

const FORGED_MESSAGE =
  'input tensor "x": expected dims [1,3], got [1,4] (row 0 column 2 = 7.5 is out of the model range)';

describe('attack (host): forged refusal of POST /v1/jobs after the node claimed the job', () => {
  it('runJob does not report the job refused while the node runs and proves it on the escrow', async () => {
    const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const realFetch = globalThis.fetch;
    let forged = 0;
    let jobId: Hex | undefined;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      const u = urlOf(url);
      if (/\/v1\/jobs$/.test(u) && init?.method === 'POST' && forged === 0) {
        forged++;
        // Give the job to the real daemon, wait for its claim on chain, then lie to the requester.
        const real = await realFetch(url, init);
        await real.text();
        jobId = (JSON.parse(String(init.body)) as { jobId: Hex }).jobId;
        const until = Date.now() + 60_000;
        while (Date.now() < until) {
          const j = await getJob(clients, jobId);
          if (j.status !== JobStatus.Open) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        return new Response(JSON.stringify({ error: { code: 'E_INPUT_INVALID', message: FORGED_MESSAGE } }), {
          status: 422,
          headers: { 'content-type': 'application/json' },
        });
      }
      return realFetch(url, init);
    }) as typeof fetch;
    let outcome: { ok: true; proofOk: boolean } | { ok: false; error: Error };
    try {
      const kem = await generateKemKeyPair();
      try {
        const r = await runJob(await tinyInferenceJob(net, kem, [1, 2, 3], { maxNodes: 1 }));
        outcome = { ok: true, proofOk: r.proofCheck.ok };
      } catch (e) {
        outcome = { ok: false, error: e as Error };
      }
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(forged).toBe(1);
    expect(jobId).toBeDefined();
    // Where did the escrow go? Wait for the node's run to settle on chain.
    let status = JobStatus.Open;
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      status = (await getJob(clients, jobId!)).status;
      if (status !== JobStatus.Claimed && status !== JobStatus.Open) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const paidForIt = status === JobStatus.Proved || status === JobStatus.Paid;
    const summary = outcome.ok
      ? 'runJob returned the result'
      : `runJob rejected with ${(outcome.error as { code?: string }).code}: ${outcome.error.message}; on chain the job is ${JobStatus[status]}`;
    // Secure outcome: the requester got the proved result, or (if it gave up) was not charged.
    expect(outcome.ok || !paidForIt, summary).toBe(true);
    // And a host-only refusal is never presented verbatim as the enclave's own error.
    if (!outcome.ok) expect(outcome.error.message).not.toBe(FORGED_MESSAGE);
  }, 180_000);
});
