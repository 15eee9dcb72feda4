import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSyntheticSgx } from '../../test/dcap/syntheticDcap.ts';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { verifyDcapQuote } from '../dcap/verifyDcapQuote.ts';
import { createCollateralFetcher, rawMember } from './createCollateralFetcher.ts';
import { loadQuoteCollateralV3 } from './loadQuoteCollateralV3.ts';

// A local PCCS on 127.0.0.1 serving the SGX vector's collateral the way PCS v4 does (JSON bodies
// with the signed object inside, issuer chains URL-encoded in headers, DER CRLs). Not covered:
// Intel's real service, HTTP redirects and PCCS-specific error bodies.
const col = vectorJson(VECTORS.sgx.collateral) as Record<string, string>;
const hits: string[] = [];
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    hits.push(url.pathname + url.search);
    const enc = (s: string) => encodeURIComponent(s);
    if (url.pathname === '/sgx/certification/v4/pckcrl' && url.searchParams.get('ca') === 'processor') {
      res.writeHead(200, { 'SGX-PCK-CRL-Issuer-Chain': enc(col.pck_crl_issuer_chain!) });
      res.end(Buffer.from(col.pck_crl!, 'hex'));
    } else if (url.pathname === '/sgx/certification/v4/rootcacrl') {
      res.end(col.root_ca_crl); // PCCS serves this one as hex text
    } else if (
      url.pathname === '/sgx/certification/v4/tcb' &&
      url.searchParams.get('fmspc') === '00A067110000'
    ) {
      res.writeHead(200, {
        'TCB-Info-Issuer-Chain': enc(col.tcb_info_issuer_chain!),
        'content-type': 'application/json',
      });
      res.end(`{"tcbInfo":${col.tcb_info},"signature":"${col.tcb_info_signature}"}`);
    } else if (url.pathname === '/sgx/certification/v4/qe/identity') {
      res.writeHead(200, { 'SGX-Enclave-Identity-Issuer-Chain': enc(col.qe_identity_issuer_chain!) });
      res.end(`{"enclaveIdentity":${col.qe_identity},"signature":"${col.qe_identity_signature}"}`);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('createCollateralFetcher', () => {
  it('fetches collateral that verifies, byte-identical to the offline file', async () => {
    const f = createCollateralFetcher({ baseUrl: base });
    const c = await f.getCollateral(vector(VECTORS.sgx.quote), VECTORS.sgx.now);
    expect(c.tcbInfo).toBe(col.tcb_info);
    expect(c.qeIdentity).toBe(col.qe_identity);
    expect(Buffer.from(c.pckCrl).toString('hex')).toBe(col.pck_crl);
    expect(Buffer.from(c.rootCaCrl).toString('hex')).toBe(col.root_ca_crl);
    const facts = await verifyDcapQuote(vector(VECTORS.sgx.quote), { collateral: c, now: VECTORS.sgx.now });
    expect(facts.tcbStatus).toBe('ConfigurationAndSWHardeningNeeded');
  });
  it('caches until nextUpdate, in memory and on disk, and refetches after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-pccs-'));
    hits.length = 0;
    // Refreshing past nextUpdate, so that only nextUpdate decides here (the daily refresh: collateralSource.test.ts).
    const f = createCollateralFetcher({ baseUrl: `${base}/`, cacheDir: dir, refreshSeconds: 365 * 86400 });
    await f.getCollateral(vector(VECTORS.sgx.quote), VECTORS.sgx.now);
    expect(hits.length).toBe(4);
    await f.getCollateral(vector(VECTORS.sgx.quote), VECTORS.sgx.now);
    expect(hits.length).toBe(4);
    // A new fetcher on the same directory starts from the disk cache.
    await createCollateralFetcher({ baseUrl: base, cacheDir: dir }).getCollateral(
      vector(VECTORS.sgx.quote),
      VECTORS.sgx.now,
    );
    expect(hits.length).toBe(4);
    // 40 days on, the TCB info, QE identity and PCK CRL are past nextUpdate and fetched again;
    // the root CA CRL's nextUpdate is later, so it stays cached.
    await f.getCollateral(vector(VECTORS.sgx.quote), VECTORS.sgx.now + 40 * 86400);
    expect(
      hits
        .slice(4)
        .map((h) => h.split('?')[0])
        .sort(),
    ).toEqual([
      '/sgx/certification/v4/pckcrl',
      '/sgx/certification/v4/qe/identity',
      '/sgx/certification/v4/tcb',
    ]);
  });
  it('a missing service or endpoint is E_UNAVAILABLE', async () => {
    const f = createCollateralFetcher({ baseUrl: `${base}/nothing-here` });
    await expect(f.getCollateral(vector(VECTORS.sgx.quote), VECTORS.sgx.now)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
    });
  });
  it('a 404 for the FMSPC of a self-made PCK leaf refuses the evidence, remembered briefly; a service that fails every piece stays E_UNAVAILABLE (decision 1834)', async () => {
    // The node's quote carries a PCK chain of its own making that names an FMSPC Intel never
    // issued: the service answers every piece but that one.
    const forged = await makeSyntheticSgx({ fmspc: 'DEADBEEF0000' });
    const tcbHits = () => hits.filter((h) => h.includes('fmspc=DEADBEEF0000')).length;
    const before = tcbHits();
    const f = createCollateralFetcher({ baseUrl: base, retries: 0 });
    for (let i = 0; i < 3; i++)
      await expect(f.getCollateral(forged.quote, VECTORS.sgx.now)).rejects.toMatchObject({
        code: 'E_EVIDENCE_COLLATERAL',
        message: expect.stringMatching(/FMSPC DEADBEEF0000.*answered 404/),
      });
    // Asked once: the refusal is remembered, so repeated tries do not ask again.
    expect(tcbHits() - before).toBe(1);
    const forgetful = createCollateralFetcher({ baseUrl: base, retries: 0, refusalCacheSeconds: 0 });
    await expect(forgetful.getCollateral(forged.quote, VECTORS.sgx.now)).rejects.toMatchObject({
      code: 'E_EVIDENCE_COLLATERAL',
    });
    await expect(forgetful.getCollateral(forged.quote, VECTORS.sgx.now)).rejects.toMatchObject({
      code: 'E_EVIDENCE_COLLATERAL',
    });
    expect(tcbHits() - before).toBe(3);
    // A service down (503, 429) says nothing about the evidence, whatever the FMSPC.
    for (const status of [503, 429]) {
      const down = createCollateralFetcher({
        baseUrl: 'https://pccs.test',
        retries: 0,
        fetch: (async () => new Response(null, { status })) as typeof fetch,
      });
      await expect(down.getCollateral(forged.quote, VECTORS.sgx.now)).rejects.toMatchObject({
        code: 'E_UNAVAILABLE',
      });
    }
    // A service that answers 404 to every piece (a wrong base URL) is the verifier's own failure.
    const wrong = createCollateralFetcher({
      baseUrl: 'https://pccs.test',
      retries: 0,
      fetch: (async () => new Response(null, { status: 404 })) as typeof fetch,
    });
    await expect(wrong.getCollateral(forged.quote, VECTORS.sgx.now)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
    });
  });
  it('rawMember returns the exact signed text, strings with braces included', () => {
    expect(rawMember('{"tcbInfo":{"a":"}{\\"","b":{"c":1}},"signature":"00"}', 'tcbInfo')).toBe(
      '{"a":"}{\\"","b":{"c":1}}',
    );
  });
  it('loadQuoteCollateralV3 reads the dcap-qvl file shape and refuses bad JSON', () => {
    const c = loadQuoteCollateralV3(JSON.stringify(col));
    expect(c.tcbInfoSignature.length).toBe(64);
    expect(() => loadQuoteCollateralV3('{')).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_COLLATERAL' }),
    );
    expect(() => loadQuoteCollateralV3(JSON.stringify({ ...col, tcb_info_signature: 'zz' }))).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_COLLATERAL' }),
    );
  });
});
