import { request } from 'node:http';
import { fetchEvidenceOverHttp } from '@firn/attestation';
import type { EvidenceBundle } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestRateLimiter } from '../../packages/node/src/http/limits.ts';
import { type StubNodeApiServer, startStubNodeApi } from '../helpers/stubNodeApiServer.ts';

// A stranger (no key, one IPv4 address, far under the 50 requests/s per-IP rate) takes the node's
// attestation places: POST /v1/attestation is capped at 4 in flight over ALL clients (limits.ts
// maxAttestationsInFlight, nodeApi.ts InFlightCap.tryEnter), so four requests in flight from one
// address refuse everyone else with 429 at once. The verifier re-checking the node's registration
// is "everyone else": VerifierDaemon.vote (verifierDaemon.ts) fetches evidence with
// fetchEvidenceOverHttp, retries 5 times over ~5 s (500 ms * i), and then votes REFUSE on chain
// (appraiseRegistration.ts maps any fetch failure, a 429 included, to E_UNREACHABLE). Registrations
// are public on chain, so the stranger floods exactly while the verifiers vote. Here the stranger
// has its four requests in the enclave each time the verifier asks (a stranger looping requests
// does so most of the time; the test makes it certain for each of the daemon's five attempts).
// Safe outcome: a client that is not the one holding the places still gets its evidence (a
// per-client share of the cap, or a queue that serves other clients first); and a busy answer is
// never a reason to refuse a registration.
const QUOTE_MS = 250; // one hardware quote (SGX/TDX quoting service; a GPU's SPDM report is slower)
let api: StubNodeApiServer;

/** One attestation request from 127.0.0.2 (another address than the verifier's 127.0.0.1). */
function strangerAttest(url: string): Promise<number> {
  const body = JSON.stringify({ nonce: `0x${'11'.repeat(32)}` });
  return new Promise((res) => {
    const r = request(
      `${url}/v1/attestation`,
      {
        method: 'POST',
        localAddress: '127.0.0.2',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (resp) => {
        resp.resume();
        resp.on('end', () => res(resp.statusCode ?? 0));
        resp.on('error', () => res(0));
      },
    );
    r.on('error', () => res(0));
    r.end(body);
  });
}

beforeAll(async () => {
  api = await startStubNodeApi({
    rateLimiter: new RequestRateLimiter(50),
    attest: async () => {
      await new Promise((r) => setTimeout(r, QUOTE_MS));
      return { version: 1 } as unknown as EvidenceBundle;
    },
  });
});

afterAll(() => api?.close());

describe('attestation places', () => {
  it("a stranger's four requests in flight do not refuse a verifier's evidence fetch through all its retries", async () => {
    const outcomes: string[] = [];
    let strangerSent = 0;
    // The verifier daemon's schedule: 5 attempts, 500 ms * i apart.
    for (let i = 1; i <= 5; i++) {
      const held = [0, 1, 2, 3].map(() => strangerAttest(api.url));
      strangerSent += 4;
      await new Promise((r) => setTimeout(r, 40));
      try {
        await fetchEvidenceOverHttp(api.url, new Uint8Array(32).fill(i), 10_000, {
          allowPrivateEndpoints: true,
        });
        outcomes.push('evidence');
      } catch (e) {
        outcomes.push((e as Error).message);
      }
      expect(await Promise.all(held)).toEqual([200, 200, 200, 200]);
      if (outcomes.includes('evidence')) break;
      await new Promise((r) => setTimeout(r, 500 * i));
    }
    // Four requests every half second or more: a tiny fraction of the per-IP rate.
    expect(strangerSent).toBeLessThanOrEqual(20);
    expect(outcomes, outcomes.join(' | ')).toContain('evidence');
  }, 60_000);
});
