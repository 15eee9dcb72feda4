import { runApp } from '@firn/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { foreignModelAppJob } from '../helpers/foreignModelAppJob.ts';
import { urlOf } from '../helpers/tinyInferenceJob.ts';

// The attack of requester-host-fake-failure.test.ts on an app job (runApp, decision 1581): the
// host answers the job's event stream at once with `end: failed` while the enclave goes on and
// proves the job. runApp must keep to the chain and return the proved result.

let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

describe('attack: the host ends an app job stream with a failure the enclave never reported', () => {
  it('runApp still gets the proved result', async () => {
    const job = await foreignModelAppJob(net);
    const realFetch = globalThis.fetch;
    let faked = 0;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (/\/v1\/jobs\/0x[0-9a-f]{64}\/events$/i.test(urlOf(url)) && faked < 3) {
        faked++;
        return new Response(
          'event: end\ndata: {"status":"failed","error":{"code":"E_JOB_FAILED","message":"out of memory"}}\n\n',
          { status: 200, headers: { 'content-type': 'text/event-stream' } },
        );
      }
      return realFetch(url, init);
    }) as typeof fetch;
    try {
      const r = await runApp({ ...job.options, collectGrants: async (plan) => [await job.grant(plan)] });
      expect(faked).toBeGreaterThan(0);
      expect(r.proofCheck.ok).toBe(true);
      expect(r.outputs.length).toBeGreaterThan(0);
    } finally {
      globalThis.fetch = realFetch;
    }
  }, 120_000);
});
