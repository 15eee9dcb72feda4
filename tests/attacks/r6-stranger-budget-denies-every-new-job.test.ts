import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { nodeSubmissionDigest, signDigest } from '@firn/crypto';
import { hexToBytes } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestScope, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// R6 red team, decision 1741. The node-wide budget for chain reads made "for strangers" (100 per
// 10 s) is spent by whoever misses the cache first, and every submission of a NEW job is such a
// miss for its honest requester too (jobApi.ts authorizeSubmission: the `job:` read for a job id
// not cached goes through strangerReads.read, which spends the node budget before reading). A
// stranger with 10 source addresses (10 IPv4 addresses, or 10 /64s of any IPv6 allocation),
// each under its per-client budget of 10 per 10 s, sends signed junk submissions with a fresh
// throwaway key each (one `sent:` miss each) and keeps the node budget at zero for good. Then no
// requester can submit any new job to this node (429), not only first-time users: a returning
// requester whose signer is cached as "has sent a transaction" is refused as well, because its new
// job id is a miss. 1741 describes the flood as "a denial of first submissions from new
// requesters"; it is a denial of every job submission, at 10 requests/s per address.
// Safe outcome: a requester's own submission is not answered 429 because other clients spent the
// node-wide budget (here: it gets the same 404 "no such job" it gets without the flood).
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
}, 180_000);

afterAll(async () => {
  await net?.stop();
});

function submit(key: Uint8Array, jobId: string, localAddress: string): Promise<number> {
  const body = {
    jobId,
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
        localAddress,
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

const freshId = () => `0x${randomBytes(32).toString('hex')}`;
const throwaway = () => {
  const k = new Uint8Array(randomBytes(32));
  k[0] = 1;
  return k;
};

describe("strangers spend the node's chain-read budget (1741)", () => {
  it("a returning requester's next job is not refused 429 because 10 addresses sent junk", async () => {
    // The honest requester (it has sent transactions: it deployed the contracts) on 127.0.0.1.
    const honest = hexToBytes(net.deployer.privateKey);
    const before = await submit(honest, freshId(), '127.0.0.1');
    expect(before, 'without the flood: no such job on chain').toBe(404);

    // The stranger: 10 loopback addresses, 10 junk submissions each with a fresh throwaway key.
    const floods: Promise<number>[] = [];
    for (let a = 2; a <= 11; a++)
      for (let i = 0; i < 10; i++) floods.push(submit(throwaway(), freshId(), `127.0.0.${a}`));
    const strangerStatuses = await Promise.all(floods);
    expect(strangerStatuses.every((s) => s === 403 || s === 429)).toBe(true);

    // The honest requester's next job (its signer is cached; the job id is new).
    const after = await submit(honest, freshId(), '127.0.0.1');
    expect(after, 'the honest requester is refused 429 because strangers spent the node budget').toBe(404);
  }, 60_000);
});
