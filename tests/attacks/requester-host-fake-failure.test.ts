import { runJob } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// The job event stream's `end` event is the host's word (only `progress` messages are sealed by
// the enclave). A hostile host answers the stream at once with `end: failed` while the enclave
// goes on and proves the job: the node is paid, and the requester, told "failed", gives up on a
// result it paid for (and may post the job again, paying twice). A failure the enclave did not
// seal and the chain does not show must not end the requester's wait.

let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

describe('attack: the host ends the job stream with a failure the enclave never reported', () => {
  it('runJob still gets the proved result', async () => {
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
      const kem = await generateKemKeyPair();
      const r = await runJob(await tinyInferenceJob(net, kem, [1, 2, 3]));
      expect(faked).toBeGreaterThan(0);
      expect(r.proofCheck.ok).toBe(true);
    } finally {
      globalThis.fetch = realFetch;
    }
  }, 120_000);
});
