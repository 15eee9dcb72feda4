import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { nodeSubmissionDigest, signDigest } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestScope, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// A stranger holding no key the node trusts (a throwaway key, no funds, no job) sends POST
// /v1/jobs with a well-formed body signed by that key, for a job id it makes up, paced under the
// per-IP mutating rate (50/s). Every one is refused (404 "no such job on chain"), but only after
// the node asked its chain RPC for the job (jobApi.ts authorizeSubmission: getJob per request, no
// cache, no budget for unauthenticated reads). The node's RPC is usually a hosted endpoint with a
// request quota: one address's junk turns into one RPC call each, a few addresses (an IPv6 /48
// holds 65,536 /64 "clients") spend the operator's quota, and then the node's own claims, proofs
// and failJobs (with their deadlines and bonds) are the calls the provider refuses.
// Safe outcome: the node's RPC calls do not grow with a stranger's refused requests (a per-client
// or global budget for chain reads made on a stranger's behalf, a cache, or an order of checks
// that refuses before the chain is asked).
let net: TestNetwork;
let rpcCalls = 0;
const realFetch = globalThis.fetch;

beforeAll(async () => {
  net = await startTestNetwork();
  globalThis.fetch = ((url: string | URL | Request, init?: RequestInit) => {
    const u = typeof url === 'string' ? url : url instanceof URL ? url.href : url.url;
    if (u.startsWith(net.anvil.rpcUrl)) rpcCalls++;
    return realFetch(url, init);
  }) as typeof fetch;
}, 120_000);

afterAll(async () => {
  globalThis.fetch = realFetch;
  await net?.stop();
});

function strangerSubmit(key: Uint8Array): Promise<number> {
  const body = {
    jobId: `0x${randomBytes(32).toString('hex')}`,
    enc: `0x${randomBytes(32).toString('hex')}`,
    ciphertext: 'AAAA',
    inputs: [`0x${randomBytes(32).toString('hex')}`],
  } as const;
  const sig = signDigest(key, nodeSubmissionDigest('POST /v1/jobs', requestScope(net), body as never));
  const text = JSON.stringify(body);
  return new Promise((res) => {
    const r = request(
      `${net.node.url}/v1/jobs`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          'x-firn-signature': `0x${Buffer.from(sig).toString('hex')}`,
        },
      },
      (resp) => {
        resp.resume();
        resp.on('end', () => res(resp.statusCode ?? 0));
      },
    );
    r.on('error', () => res(0));
    r.end(text);
  });
}

describe("a stranger's refused submissions and the node's RPC", () => {
  it('200 signed junk submissions (refused) cost the node fewer than 50 RPC calls', async () => {
    const N = 200;
    const key = new Uint8Array(randomBytes(32));
    key[0] = 1;
    // The same span with no stranger: what the node, verifiers and watchers ask anyway.
    const span = Math.ceil((N / 25) * 1000);
    let before = rpcCalls;
    await new Promise((r) => setTimeout(r, span));
    const idle = rpcCalls - before;
    before = rpcCalls;
    const statuses: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      statuses.push(await strangerSubmit(key));
      // 25 a second: half the per-IP rate.
      const wait = t0 + ((i + 1) * 1000) / 25 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const attacked = rpcCalls - before;
    // Every one refused, none rate limited.
    expect(statuses.filter((s) => s === 429)).toEqual([]);
    expect(statuses.every((s) => s >= 400 && s < 500)).toBe(true);
    expect(attacked - idle, `idle ${idle} calls, under attack ${attacked} calls`).toBeLessThan(N / 4);
  }, 90_000);
});
