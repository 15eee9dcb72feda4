import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  appraiseRegistration,
  MAX_BUSY_RETRY_WAIT_MS,
} from '../../packages/attestation/src/appraiseRegistration.ts';
import { DEV_POLICY } from '../../packages/attestation/src/policy/policy.ts';
import { placeholderClaim } from '../helpers/placeholderClaim.ts';

// A node refuses a requester's attestation request as busy (429/503: its per-client rate limit,
// which every requester behind one address shares). Seen in the scale benchmark: two of 1,000 jobs
// failed with "node could not be attested: node answered 429". A requester now waits the refusal
// out a few times (decision 1791); a host answering "busy" forever, with a huge Retry-After, still
// cannot hold it longer than 3 x 5 s, and other failures are not retried.

let node: Server;
let answers: { status: number; retryAfter?: string }[] = [];
let nonces: string[] = [];
const url = () => `http://127.0.0.1:${(node.address() as AddressInfo).port}`;

beforeAll(async () => {
  node = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      nonces.push((JSON.parse(body) as { nonce: string }).nonce);
      const a = answers.shift() ?? { status: 200 };
      res.statusCode = a.status;
      if (a.retryAfter !== undefined) res.setHeader('retry-after', a.retryAfter);
      res.setHeader('content-type', 'application/json');
      // 200: an answer that is no evidence bundle, so the verdict names the evidence, not the fetch.
      res.end(a.status === 200 ? '{"not":"evidence"}' : '{"error":{"code":"E_RATE_LIMITED"}}');
    });
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
});
afterAll(() => new Promise((r) => node.close(r)));
beforeEach(() => {
  answers = [];
  nonces = [];
});

const claim = () => placeholderClaim(url());

function appraise(busyRetries: number | undefined, waits: number[]) {
  return appraiseRegistration(claim(), {
    now: 1_800_000_000,
    policy: DEV_POLICY,
    allowPrivateEndpoints: true,
    ...(busyRetries === undefined ? {} : { busyRetries }),
    sleep: async (ms) => {
      waits.push(ms);
    },
  });
}

describe('attack: a node refuses the attestation request as busy', () => {
  it('a requester asks again after Retry-After, with a fresh nonce each time, and gets the evidence', async () => {
    answers = [
      { status: 429, retryAfter: '1' },
      { status: 503, retryAfter: '0' },
    ];
    const waits: number[] = [];
    const v = await appraise(3, waits);
    expect(nonces).toHaveLength(3);
    expect(new Set(nonces).size).toBe(3);
    expect(waits).toEqual([1000, 0]);
    // The third answer was read: the verdict is about the evidence, not about reaching the node.
    if (v.approve) throw new Error('no evidence was served: nothing to approve');
    expect(v.reasons[0]!.code).not.toBe('E_UNREACHABLE');
  });

  it('busy forever with an hour of Retry-After: four requests, each wait cut to 5 s, then no verdict', async () => {
    answers = Array.from({ length: 10 }, () => ({ status: 429, retryAfter: '3600' }));
    const waits: number[] = [];
    const v = await appraise(3, waits);
    expect(nonces).toHaveLength(4);
    expect(waits).toEqual([MAX_BUSY_RETRY_WAIT_MS, MAX_BUSY_RETRY_WAIT_MS, MAX_BUSY_RETRY_WAIT_MS]);
    expect(v).toMatchObject({ approve: false, reasons: [{ code: 'E_UNREACHABLE' }] });
  });

  it('without Retry-After the waits start at 250 ms and double', async () => {
    answers = [{ status: 503 }, { status: 503 }, { status: 429 }];
    const waits: number[] = [];
    await appraise(3, waits);
    expect(waits).toEqual([250, 500, 1000]);
    expect(nonces).toHaveLength(4);
  });

  it('other refusals (500, 404) are not retried; a verifier (the default, 0) asks once', async () => {
    for (const status of [500, 404]) {
      answers = [{ status }];
      nonces = [];
      const waits: number[] = [];
      expect(await appraise(3, waits)).toMatchObject({
        approve: false,
        reasons: [{ code: 'E_UNREACHABLE' }],
      });
      expect(nonces).toHaveLength(1);
      expect(waits).toEqual([]);
    }
    answers = [{ status: 429, retryAfter: '0' }];
    nonces = [];
    expect(await appraise(undefined, [])).toMatchObject({
      approve: false,
      reasons: [{ code: 'E_UNREACHABLE' }],
      unavailable: { retryAfterMs: 0 },
    });
    expect(nonces).toHaveLength(1);
  });
});
