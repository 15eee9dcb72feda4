import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { runApp } from '@firn/client';
import type { Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { foreignModelAppJob } from '../helpers/foreignModelAppJob.ts';
import { settledStatus, urlOf } from '../helpers/tinyInferenceJob.ts';

// Attack by a malicious host (decision 1822), app jobs (runApp / completeAppJob). The same host-only words as in
// host-word-submission-refused and host-word-event-stream, against runApp:
//  1. POST /v1/jobs is forwarded to the real daemon (pre-flight, claim on chain), then the host
//     drops the connection (the requester sees E_UNAVAILABLE) once its claim is mined. completeAppJob
//     treats every submission error as final: reclaim (refused: Claimed) and JobFailedError.
//  2. The host answers the event stream at once with `end: proved`: fetchResult reads the chain,
//     sees the job not Proved yet, and gives up with E_RESULT_UNAVAILABLE, nothing reclaimed.
// In both the enclave runs the job and the node is paid; the requester's runApp has thrown.

let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 180_000);
afterAll(() => net?.stop());

const settled = (jobId: Hex): Promise<JobStatus> => settledStatus(net, jobId);

async function attempt(
  hook: (url: string, init: RequestInit | undefined, real: typeof fetch) => Promise<Response> | undefined,
): Promise<{ outcome: string; ok: boolean; status: JobStatus }> {
  const job = await foreignModelAppJob(net);
  const realFetch = globalThis.fetch;
  let jobId: Hex | undefined;
  globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) =>
    hook(urlOf(url), init, realFetch) ?? realFetch(url, init)) as typeof fetch;
  let outcome = '';
  let ok = false;
  try {
    const r = await runApp({
      ...job.options,
      onPosted: (id) => {
        jobId = id;
      },
      collectGrants: async (plan) => [await job.grant(plan)],
    });
    ok = r.proofCheck.ok;
    outcome = 'runApp returned the result';
  } catch (e) {
    outcome = `runApp rejected with ${(e as { code?: string }).code}: ${(e as Error).message}`;
  } finally {
    globalThis.fetch = realFetch;
  }
  expect(jobId).toBeDefined();
  return { outcome, ok, status: await settled(jobId!) };
}

describe('attack (host): app job, host-only refusals', () => {
  it('a submission whose answer the host drops after claiming does not end runApp while the node is paid', async () => {
    const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    let forged = 0;
    const r = await attempt((url, init, real) => {
      if (!(/\/v1\/jobs$/.test(url) && init?.method === 'POST' && forged === 0)) return undefined;
      forged++;
      return (async () => {
        await (await real(url, init)).text();
        const jobId = (JSON.parse(String(init!.body)) as { jobId: Hex }).jobId;
        const until = Date.now() + 60_000;
        while (Date.now() < until && (await getJob(clients, jobId)).status === JobStatus.Open)
          await new Promise((res) => setTimeout(res, 200));
        // What undici raises for a reset connection.
        throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
      })();
    });
    expect(forged).toBe(1);
    const paid = r.status === JobStatus.Proved || r.status === JobStatus.Paid;
    expect(r.ok || !paid, `${r.outcome}; on chain the job is ${JobStatus[r.status]}`).toBe(true);
  }, 180_000);

  it('an early `end: proved` on the event stream does not end runApp while the node is paid', async () => {
    let forged = 0;
    const r = await attempt((url) => {
      if (!(/\/v1\/jobs\/0x[0-9a-f]{64}\/events$/i.test(url) && forged === 0)) return undefined;
      forged++;
      return Promise.resolve(
        new Response('event: end\ndata: {"status":"proved"}\n\n', {
          status: 200,
          headers: { 'content-type': 'text/event-stream' },
        }),
      );
    });
    expect(forged).toBe(1);
    const paid = r.status === JobStatus.Proved || r.status === JobStatus.Paid;
    expect(r.ok || !paid, `${r.outcome}; on chain the job is ${JobStatus[r.status]}`).toBe(true);
  }, 180_000);
});
