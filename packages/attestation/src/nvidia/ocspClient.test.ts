import 'reflect-metadata';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { checkOcsp } from './checkOcsp.ts';
import { createOcspClient, ocspRequestSerials } from './ocspClient.ts';
import {
  der,
  findIssuerByKeyHash,
  issueTestCert,
  pk,
  readOcspRequest,
  signOcspAnswer,
  type TestCert,
} from './testing/testPki.ts';

// An RFC 6960 responder on 127.0.0.1 for a P-384 chain shaped like NVIDIA's (root -> CA -> device
// leaf), answering with responses it signs itself. NO recorded NVIDIA OCSP answer is public (NVIDIA's
// responder is online-only), so these answers are generated here; NVIDIA's real ones differ in
// responder ids and certificates. What is tested is the client (offline folder, cache until
// nextUpdate, retries, size caps) together with checkOcsp, which must refuse forged or stale answers.
const NOW = 1_760_000_000;

type Node = TestCert;
const issue = (name: string, issuer: Node | undefined, ca: boolean, serial: string) =>
  issueTestCert(name, issuer, ca, serial, [NOW - 86400 * 365, NOW + 86400 * 365 * 10]);

let root: Node;
let ca: Node;
let leaf: Node;
let forger: Node;
let chain: Uint8Array[];
const revoked = new Set<string>();
const hits: string[] = [];
let failNext = 0;
let signWith: 'issuer' | 'forger' = 'issuer';
let validity = 3600;
let server: Server;
let url = '';

async function respond(body: Uint8Array): Promise<Uint8Array> {
  const { reqCert, serial, issuerKeyHash } = readOcspRequest(body);
  // The issuer of the asked certificate signs (a CA answers for the certificates it issued).
  const issuer = (await findIssuerByKeyHash([root, ca], issuerKeyHash)) ?? root;
  const signer = signWith === 'forger' ? forger : issuer;
  return signOcspAnswer({
    certID: reqCert,
    responder: issuer,
    signer,
    producedAt: NOW,
    thisUpdate: NOW - 60,
    nextUpdate: NOW + validity,
    // The forger always claims "good".
    ...(revoked.has(serial) && signWith === 'issuer' ? { revokedAt: NOW - 3600 } : {}),
  });
}

beforeAll(async () => {
  root = await issue('Test Device Identity CA', undefined, true, '01');
  ca = await issue('Test Provisioner ICA', root, true, '02');
  leaf = await issue('Test GPU leaf', ca, false, '0a0b0c');
  // Same name as the CA, its own key: what an attacker on the network can mint.
  forger = await issue('Test Provisioner ICA', undefined, true, '03');
  chain = [der(leaf), der(ca), der(root)];
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      hits.push(req.method ?? '');
      if (failNext > 0) {
        failNext--;
        res.writeHead(503).end();
        return;
      }
      respond(new Uint8Array(Buffer.concat(parts))).then(
        (b) => res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(b),
        () => res.writeHead(400).end(),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  hits.length = 0;
  failNext = 0;
  signWith = 'issuer';
  validity = 3600;
  revoked.clear();
});
const fast = { minRetryDelayMs: 1, timeoutMs: 2000 };

describe('OCSP client with checkOcsp', () => {
  it('good answers are checked, then served from the cache until nextUpdate', async () => {
    const client = createOcspClient({ url, ...fast });
    const r = await checkOcsp(chain, client.options(NOW), NOW);
    expect(r).toMatchObject({ checked: true, revoked: false });
    expect(hits.length).toBe(2); // leaf and CA
    await checkOcsp(chain, client.options(NOW + 600), NOW + 600);
    expect(hits.length).toBe(2);
    const late = await checkOcsp(chain, client.options(NOW + 7200), NOW + 7200);
    expect(hits.length).toBe(4);
    expect(late.checked).toBe(false); // the responder's fixed answer is stale by then
  });

  it('a revoked leaf is reported revoked', async () => {
    revoked.add('0a0b0c');
    const r = await checkOcsp(chain, createOcspClient({ url, ...fast }).options(NOW), NOW);
    expect(r).toMatchObject({ checked: true, revoked: true });
  });

  it('attack: a "good" answer for a revoked leaf, signed by a look-alike CA key, is not a check', async () => {
    revoked.add('0a0b0c');
    signWith = 'forger';
    const r = await checkOcsp(chain, createOcspClient({ url, ...fast }).options(NOW), NOW);
    expect(r.checked).toBe(false);
    expect(r.problems.length).toBeGreaterThan(0);
  });

  it('recorded answers in the offline folder need no responder; stale ones are not a check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-ocsp-'));
    const live = createOcspClient({ url, ...fast });
    // Record the two answers the way an operator would (named by certificate serial).
    const recorder = live.options(NOW);
    for (const [cert, issuer] of [
      [leaf, ca],
      [ca, root],
    ] as const) {
      const req = new pkijs.OCSPRequest();
      await req.createForCertificate(pk(cert), { hashAlgorithm: 'SHA-384', issuerCertificate: pk(issuer) });
      const body = new Uint8Array(req.toSchema(true).toBER(false));
      const res = await recorder.fetch!(url, { method: 'POST', body });
      writeFileSync(join(dir, `${ocspRequestSerials(body)[0]}.der`), Buffer.from(await res.arrayBuffer()));
    }
    hits.length = 0;
    const offline = createOcspClient({ url: 'http://127.0.0.1:9/', offlineDir: dir, retries: 0 });
    expect(await checkOcsp(chain, offline.options(NOW), NOW)).toMatchObject({
      checked: true,
      revoked: false,
    });
    expect(hits).toEqual([]);
    expect((await checkOcsp(chain, offline.options(NOW + 7200), NOW + 7200)).checked).toBe(false);
  });

  it('retries a 503, and an unreachable responder is never a pass', async () => {
    failNext = 2;
    expect(
      (await checkOcsp(chain, createOcspClient({ url, retries: 2, ...fast }).options(NOW), NOW)).checked,
    ).toBe(true);
    const down = await checkOcsp(
      chain,
      createOcspClient({ url: 'http://127.0.0.1:9/', retries: 0 }).options(NOW),
      NOW,
    );
    expect(down).toMatchObject({ checked: false, revoked: false });
    expect(down.problems.join(' ')).toContain('http://127.0.0.1:9/');
  });

  it('refuses a malformed request body and a bad responder URL with typed errors', () => {
    expect(() => ocspRequestSerials(new Uint8Array([1, 2, 3]))).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
    );
    expect(() => createOcspClient({ url: 'ftp://x' })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
  });
});
