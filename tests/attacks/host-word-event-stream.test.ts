import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// Attack by a malicious host (decision 1822). The job event stream (GET /v1/jobs/{id}/events) is relayed by the
// host: only `progress` messages are sealed by the enclave; the `end` event, the SSE framing and
// the `seq` numbers are the host's. Two attacks on it, each while the real daemon runs and proves
// the job on the requester's escrow:
//  1. the stream answers at once `end: proved` (no `events` count, which the schema lets it leave
//     out), before the job is proved: runJob goes straight to the result, the node answers 409,
//     the chain says Claimed, and awaitResult gives up (E_RESULT_UNAVAILABLE, nothing reclaimed).
//  2. the stream answers one `progress` event that does not authenticate: runJob's event handler
//     throws E_DECRYPT out of followEvents, which is not a node-loss code, so runJob rejects at
//     once without waiting on the chain or reclaiming.
// In both the node then proves the job and is paid; the requester's SDK has already thrown.
// What should happen: the host's stream is never the last word while the chain shows the job
// Claimed (decision 1581 for `end: failed`): wait for Proved and fetch the result.

let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 180_000);
afterAll(() => net?.stop());

const EVENTS = /\/v1\/jobs\/(0x[0-9a-f]{64})\/events$/i;

async function runWithForgedStream(
  sse: string,
  httpStatus = 200,
): Promise<{ outcome: string; ok: boolean; status: JobStatus }> {
  const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
  const realFetch = globalThis.fetch;
  let forged = 0;
  let jobId: Hex | undefined;
  globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    const m = EVENTS.exec(urlOf(url));
    if (m && forged === 0) {
      forged++;
      jobId = m[1] as Hex;
      return new Response(sse, {
        status: httpStatus,
        headers: { 'content-type': httpStatus === 200 ? 'text/event-stream' : 'application/json' },
      });
    }
    return realFetch(url, init);
  }) as typeof fetch;
  let outcome: string;
  let ok = false;
  try {
    const kem = await generateKemKeyPair();
    try {
      const r = await runJob(await tinyInferenceJob(net, kem, [1, 2, 3], { maxNodes: 1 }));
      ok = r.proofCheck.ok;
      outcome = 'runJob returned the result';
    } catch (e) {
      outcome = `runJob rejected with ${(e as { code?: string }).code}: ${(e as Error).message}`;
    }
  } finally {
    globalThis.fetch = realFetch;
  }
  expect(forged).toBe(1);
  let status = JobStatus.Open;
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    status = (await getJob(clients, jobId!)).status;
    if (status !== JobStatus.Claimed && status !== JobStatus.Open) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  return { outcome, ok, status };
}

describe('attack (host): forged job event stream', () => {
  it('an early `end: proved` does not make runJob give up on a job the node then proves', async () => {
    const r = await runWithForgedStream('event: end\ndata: {"status":"proved"}\n\n');
    const paid = r.status === JobStatus.Proved || r.status === JobStatus.Paid;
    expect(r.ok || !paid, `${r.outcome}; on chain the job is ${JobStatus[r.status]}`).toBe(true);
  }, 180_000);

  it('one unauthenticated progress event does not make runJob give up on a job the node then proves', async () => {
    // A well-formed channel message header would be needed to reach the AEAD; junk base64 is
    // enough to make the requester's handler throw.
    const junk = Buffer.alloc(64, 7).toString('base64');
    const r = await runWithForgedStream(`id: 0\nevent: progress\ndata: {"seq":0,"message":"${junk}"}\n\n`);
    const paid = r.status === JobStatus.Proved || r.status === JobStatus.Paid;
    expect(r.ok || !paid, `${r.outcome}; on chain the job is ${JobStatus[r.status]}`).toBe(true);
  }, 180_000);

  it('a refusal of the event stream worded as the enclave’s error is not raised as the job’s error', async () => {
    // 3. The host refuses GET /v1/jobs/{id}/events with a body shaped like the enclave's sealed
    //    failure (code and a message naming a tensor); followEvents raises it as the node's typed
    //    error and runJob rejects with it verbatim, while the node proves the job.
    const forgedMessage = 'input tensor "x": dims [1,3] expected, got [1,4]';
    const r = await runWithForgedStream(
      JSON.stringify({ error: { code: 'E_INPUT_INVALID', message: forgedMessage } }),
      422,
    );
    const paid = r.status === JobStatus.Proved || r.status === JobStatus.Paid;
    expect(r.ok || !paid, `${r.outcome}; on chain the job is ${JobStatus[r.status]}`).toBe(true);
  }, 180_000);
});
