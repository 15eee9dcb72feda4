import { request } from 'node:http';
import { fetchEvidenceOverHttp } from '@firn/attestation';
import type { EvidenceBundle } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestRateLimiter } from '../../packages/node/src/http/limits.ts';
import { type StubNodeApiServer, startStubNodeApi } from '../helpers/stubNodeApiServer.ts';

// A stranger (no key, one IPv4 address, well under the 50 requests/s per-IP rate) keeps the node's
// attestation places taken: POST /v1/attestation is capped at 4 in flight over ALL clients
// (limits.ts maxAttestationsInFlight, nodeApi.ts InFlightCap), so four requests kept in flight
// from one address refuse everyone else with 429 at once. The verifier re-checking the node's
// registration is "everyone else": VerifierDaemon.vote (verifierDaemon.ts) fetches evidence with
// fetchEvidenceOverHttp, retries 5 times over ~5 s (500 ms * i), and then votes REFUSE on chain
// (appraiseRegistration maps any fetch failure, a 429 included, to E_UNREACHABLE). Registrations
// are public on chain, so the stranger floods exactly while the verifiers vote.
// Safe outcome: a client that is not the one holding the places still gets its evidence (a per-client
// share of the cap, or a queue that serves other clients first), within the verifier's retries.
const QUOTE_MS = 250; // one hardware quote (SGX/TDX quoting service; a GPU's SPDM report is slower)
let api: StubNodeApiServer;
let stop = false;

function strangerLoop(url: string): Promise<number> {
  // From 127.0.0.2: another address than the verifier's (127.0.0.1).
  let sent = 0;
  const one = () =>
    new Promise<void>((res) => {
      const body = JSON.stringify({ nonce: `0x${'11'.repeat(32)}` });
      const r = request(
        `${url}/v1/attestation`,
        {
          method: 'POST',
          localAddress: '127.0.0.2',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (resp) => {
          resp.resume();
          resp.on('end', () => res());
          resp.on('error', () => res());
        },
      );
      r.on('error', () => res());
      r.end(body);
    });
  return (async () => {
    while (!stop) {
      sent++;
      await one();
      // Paced so the four loops together stay far below the per-IP rate (50/s).
      await new Promise((r) => setTimeout(r, 20));
    }
    return sent;
  })();
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

afterAll(() => {
  stop = true;
  api?.close();
});

describe('attestation places', () => {
  it("a stranger's four requests in flight do not refuse a verifier's evidence fetch through all its retries", async () => {
    const loops = [0, 1, 2, 3].map(() => strangerLoop(api.url));
    await new Promise((r) => setTimeout(r, 300));
    const outcomes: string[] = [];
    // The verifier daemon's schedule: 5 attempts, 500 ms * i apart.
    for (let i = 1; i <= 5; i++) {
      try {
        await fetchEvidenceOverHttp(api.url, new Uint8Array(32).fill(i), 10_000);
        outcomes.push('evidence');
        break;
      } catch (e) {
        outcomes.push((e as Error).message);
      }
      await new Promise((r) => setTimeout(r, 500 * i));
    }
    stop = true;
    const sent = (await Promise.all(loops)).reduce((a, b) => a + b, 0);
    // The stranger stayed well under the per-IP rate limit (50/s) for the whole run.
    expect(sent).toBeLessThan(50 * 6);
    expect(outcomes, outcomes.join(' | ')).toContain('evidence');
  }, 60_000);
});
