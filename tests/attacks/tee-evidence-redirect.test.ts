import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchEvidenceOverHttp } from '../../packages/attestation/src/appraiseRegistration.ts';

// A registered node's endpoint answers the verifier's attestation request with a redirect: to
// another (honest) node's endpoint, whose evidence it would borrow, or to an address only the
// verifier can reach. The verifier must refuse the redirect and never contact the target.

let target: Server;
let node: Server;
let targetHits = 0;
let status = 307;
const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

beforeAll(async () => {
  target = createServer((req, res) => {
    targetHits++;
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ borrowed: true }));
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  node = createServer((req, res) => {
    req.resume();
    res.statusCode = status;
    res.setHeader('location', `${url(target)}/v1/attestation`);
    res.end();
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => target.close(r));
  await new Promise((r) => node.close(r));
});

describe('attack: a node endpoint redirects the attestation request', () => {
  it('307 and 308 (which keep the POST) and 301/302/303 are refused; the target is never asked', async () => {
    for (const s of [307, 308, 301, 302, 303]) {
      status = s;
      await expect(
        fetchEvidenceOverHttp(url(node), new Uint8Array(32), 5_000, { allowPrivateEndpoints: true }),
      ).rejects.toMatchObject({
        code: 'E_UNAVAILABLE',
        message: expect.stringContaining(`redirect (${s})`),
      });
    }
    expect(targetHits).toBe(0);
  });

  it('control: the target itself answers (so a followed redirect would have returned its body)', async () => {
    const body = await fetchEvidenceOverHttp(url(target), new Uint8Array(32), 5_000, {
      allowPrivateEndpoints: true,
    });
    expect(JSON.parse(String(body))).toEqual({ borrowed: true });
  });
});
