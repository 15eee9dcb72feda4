import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appraiseRegistration,
  MAX_BUSY_RETRY_WAIT_MS,
} from '../../packages/attestation/src/appraiseRegistration.ts';
import { DEV_POLICY } from '../../packages/attestation/src/policy/policy.ts';
import { placeholderClaim } from '../helpers/placeholderClaim.ts';

// Attack (fixed): a hostile node answers every attestation request "busy" (429, Retry-After: 0),
// but only just before the requester's fetch timeout, or trickles the 429's body up to that
// timeout. Each of the 1 + busyRetries tries had its own full timeout, so attestNode (10 s, 3
// retries) was held 4 x 10 s + 3 x 5 s = 55 s. Now the tries share one deadline (decision 1791):
// the request timeout, plus the waits the node named (at most busyRetries x MAX_BUSY_RETRY_WAIT_MS).

const TIMEOUT_MS = 1_000;
const DELAY_MS = 900;
let node: Server;
let mode: 'late-headers' | 'trickle-body' = 'late-headers';
let requests = 0;
const url = () => `http://127.0.0.1:${(node.address() as AddressInfo).port}`;

beforeAll(async () => {
  node = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      if (mode === 'late-headers') {
        setTimeout(() => {
          res.statusCode = 429;
          res.setHeader('retry-after', '0');
          res.end('{"error":{"code":"E_RATE_LIMITED"}}');
        }, DELAY_MS);
        return;
      }
      res.statusCode = 429;
      res.setHeader('retry-after', '0');
      res.flushHeaders();
      const start = Date.now();
      const t = setInterval(() => {
        if (Date.now() - start >= DELAY_MS) {
          clearInterval(t);
          res.end('}');
        } else res.write(' ');
      }, 50);
      res.on('close', () => clearInterval(t));
    });
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
});
afterAll(() => new Promise((r) => node.close(r)));

const claim = () => placeholderClaim(url());

describe('attack: a node answers busy just before each request times out', () => {
  for (const m of ['late-headers', 'trickle-body'] as const)
    it(`${m}: the requester is held no longer than one request timeout plus the named waits`, async () => {
      mode = m;
      requests = 0;
      let slept = 0;
      const t0 = Date.now();
      const v = await appraiseRegistration(claim(), {
        now: 1_800_000_000,
        policy: DEV_POLICY,
        allowPrivateEndpoints: true,
        timeoutMs: TIMEOUT_MS,
        busyRetries: 3, // attestNode's ATTEST_BUSY_RETRIES
        sleep: async (ms) => {
          slept += ms;
        },
      });
      const held = Date.now() - t0 - slept;
      expect(v).toMatchObject({ approve: false, reasons: [{ code: 'E_UNREACHABLE' }] });
      expect(slept).toBeLessThanOrEqual(3 * MAX_BUSY_RETRY_WAIT_MS);
      // One request deadline for the whole busy loop (here 1 s); it was about 4 x 0.9 s.
      expect(held).toBeLessThan(TIMEOUT_MS + 500);
    }, 20_000);
});
