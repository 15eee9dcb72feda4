import { JobStatus } from '@firn/chain';
import { runApp, runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { foreignModelAppJob } from '../helpers/foreignModelAppJob.ts';
import { JOB_RESULT_PATH, settledStatus, tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// Attack by a malicious host (decision 1822, second round), runApp and runJob alike. The same host behaviour, both SDK entry points:
//  1. the host (or the network) drops the answer to the first POST /v1/jobs before forwarding it
//     (a connection reset): runJob asks again (idempotent, decision 1040) and gets the result;
//     runApp does not retry, reclaims the Open job and reports the node lost.
//  2. the host withholds GET /v1/jobs/{id}/result for ~15 s after proving (then serves it):
//     runJob's awaitResult waits while the job is Proved; runApp's fetchResult gives up after
//     20 tries 500 ms apart (~10 s): E_RESULT_UNAVAILABLE, nothing reclaimed, and the node is paid
//     (the requester paid and its SDK reported failure).
//  3. the result refusal's text (the host's, up to 2000 chars, control characters) in the error.

let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 180_000);
afterAll(() => net?.stop());

const settled = (jobId: Hex): Promise<JobStatus> => settledStatus(net, jobId);

type Hook = (url: string, init: RequestInit | undefined, real: typeof fetch) => Promise<Response> | undefined;

async function withHost<T>(hook: Hook, run: () => Promise<T>): Promise<{ r?: T; err?: unknown }> {
  const realFetch = globalThis.fetch;
  globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) =>
    hook(urlOf(url), init, realFetch) ?? realFetch(url, init)) as typeof fetch;
  try {
    return { r: await run() };
  } catch (err) {
    return { err };
  } finally {
    globalThis.fetch = realFetch;
  }
}

function dropFirstSubmission(): Hook {
  let dropped = 0;
  return (url, init) => {
    if (/\/v1\/jobs$/.test(url) && init?.method === 'POST' && dropped === 0) {
      dropped++;
      return Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } }));
    }
    return undefined;
  };
}

function withholdResult(ms: number, message = 'not yet'): Hook {
  let since: number | undefined;
  return (url) => {
    if (!JOB_RESULT_PATH.test(url)) return undefined;
    since ??= performance.now();
    if (performance.now() - since > ms) return undefined;
    return Promise.resolve(
      new Response(JSON.stringify({ error: { code: 'E_UNAVAILABLE', message } }), {
        status: 503,
        headers: { 'content-type': 'application/json' },
      }),
    );
  };
}

const describeErr = (err: unknown) =>
  err === undefined
    ? 'returned'
    : `${(err as { code?: string }).code}: ${(err as Error).message.slice(0, 300)}`;

describe('host word: same host behaviour, runJob vs runApp', () => {
  it('runJob: a dropped answer to the first submission still gets the result (held check)', async () => {
    const kem = await generateKemKeyPair();
    const { r, err } = await withHost(dropFirstSubmission(), async () =>
      runJob(await tinyInferenceJob(net, kem, [1, 2, 3], { maxNodes: 1 })),
    );
    expect(r?.proofCheck.ok, describeErr(err)).toBe(true);
  }, 180_000);

  it('runApp: a dropped answer to the first submission still gets the result', async () => {
    const job = await foreignModelAppJob(net);
    let jobId: Hex | undefined;
    const { r, err } = await withHost(dropFirstSubmission(), () =>
      runApp({
        ...job.options,
        onPosted: (id) => {
          jobId = id;
        },
        collectGrants: async (plan) => [await job.grant(plan)],
      }),
    );
    expect(r?.proofCheck.ok, `${describeErr(err)}; job ${jobId}`).toBe(true);
  }, 180_000);

  it('runJob: a result withheld 15 s after the proof is still fetched (held check)', async () => {
    const kem = await generateKemKeyPair();
    const { r, err } = await withHost(withholdResult(15_000), async () =>
      runJob(await tinyInferenceJob(net, kem, [1, 2, 3], { maxNodes: 1, resultRetryMs: 1000 })),
    );
    expect(r?.proofCheck.ok, describeErr(err)).toBe(true);
  }, 180_000);

  // Verifiers dispute a withheld result (reason 19) and slash the node after a while: this one runs
  // on a network of its own, so the runJob case before it cannot have slashed its node.
  describe('on a fresh network', () => {
    let outer: TestNetwork;
    beforeAll(async () => {
      outer = net;
      net = await startTestNetwork();
    }, 180_000);
    afterAll(async () => {
      await net?.stop();
      net = outer;
    });
    it('runApp: a result withheld 15 s after the proof is still fetched, not reported unavailable while the node is paid', async () => {
      const job = await foreignModelAppJob(net);
      let jobId: Hex | undefined;
      const { r, err } = await withHost(withholdResult(15_000), () =>
        runApp({
          ...job.options,
          onPosted: (id) => {
            jobId = id;
          },
          collectGrants: async (plan) => [await job.grant(plan)],
        }),
      );
      const status = jobId ? JobStatus[await settled(jobId)] : 'not posted';
      expect(r?.proofCheck.ok, `${describeErr(err)}; on chain the job is ${status}`).toBe(true);
    }, 180_000);
  });

  it('runApp: the host’s refusal text of the result is capped and clean in the error', async () => {
    const job = await foreignModelAppJob(net);
    const text = '\u001b[2Jresult deleted by the enclave\r\n'.padEnd(1990, '#');
    const { err } = await withHost(withholdResult(60_000, text), () =>
      runApp({ ...job.options, collectGrants: async (plan) => [await job.grant(plan)] }),
    );
    expect(err).toBeDefined();
    const msg = (err as Error).message;
    expect(msg, JSON.stringify(msg.slice(0, 160))).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(msg.length).toBeLessThan(600);
  }, 180_000);
});
