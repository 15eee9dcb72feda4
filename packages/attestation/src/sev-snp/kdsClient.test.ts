import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createKdsClient } from './kdsClient.ts';
import { parseSevSnpReport } from './sevSnpReport.ts';
import { createSevSnpVerifier } from './sevSnpVerifier.ts';
import { makeSyntheticSevSnp } from '../../test/sev-snp/syntheticSevSnp.ts';
import { SEV_SNP_VECTORS, sevSnpVector, sevSnpVectorText } from '../../test/sev-snp/sevSnpVectors.ts';

const gcp = SEV_SNP_VECTORS.gcpMilanV5;
const gcpReport = parseSevSnpReport(sevSnpVector(gcp.report));

/** A fake KDS: path -> [status, body]; records every request. */
function fakeKds(routes: Record<string, Array<[number, Uint8Array | string]>>) {
  const calls: string[] = [];
  const fetch = (async (input: string | URL | Request) => {
    const url = new URL(String(input));
    const key = url.pathname + url.search;
    calls.push(key);
    const queue = routes[url.pathname];
    const next = queue?.length
      ? queue.length > 1
        ? queue.shift()!
        : queue[0]!
      : ([404, 'not found'] as const);
    return new Response(typeof next[1] === 'string' ? next[1] : Buffer.from(next[1]), { status: next[0] });
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

async function code(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (e) {
    if (!isFirnError(e)) throw new Error(`untyped error: ${(e as Error)?.message}`);
    return e.code;
  }
  return 'ACCEPTED';
}

const chipHex = Buffer.from(gcpReport.chipId).toString('hex');
const vcekPath = `/vcek/v1/Milan/${chipHex}`;

describe('KDS client', () => {
  it('builds the KDS VCEK URL from the chip id and REPORTED_TCB (Milan: 64-byte hwid; Turin: 8 bytes + fmcSPL)', async () => {
    const kds = createKdsClient({ baseUrl: 'https://kds.test/' });
    expect(kds.vcekUrl(gcpReport, 'Milan')).toBe(
      `https://kds.test${vcekPath}?blSPL=4&teeSPL=0&snpSPL=27&ucodeSPL=222`,
    );
    const turin = parseSevSnpReport((await makeSyntheticSevSnp({ product: 'Turin' })).report);
    expect(kds.vcekUrl(turin, 'Turin')).toBe(
      `https://kds.test/vcek/v1/Turin/${Buffer.from(turin.chipId.subarray(0, 8)).toString('hex')}?fmcSPL=1&blSPL=9&teeSPL=0&snpSPL=23&ucodeSPL=72`,
    );
  });

  it('fetches the real VCEK and chain, which then verify the real report; the second call is served from cache', async () => {
    const { fetch, calls } = fakeKds({
      [vcekPath]: [[200, sevSnpVector(gcp.vek)]],
      '/vcek/v1/Milan/cert_chain': [[200, sevSnpVectorText(gcp.chain!)]],
    });
    const kds = createKdsClient({ baseUrl: 'https://kds.test', fetch, crl: false, minRetryDelayMs: 1 });
    const verifier = createSevSnpVerifier({ kds });
    const facts = await verifier.verify(gcpReport, { now: gcp.now });
    expect(facts.extra.product).toBe('Milan');
    expect(calls).toHaveLength(2);
    await verifier.verify(gcpReport, { now: gcp.now });
    expect(calls).toHaveLength(2);
  });

  it('retries a 503 and a 429, then succeeds; a 404 is not retried (E_UNAVAILABLE naming the URL)', async () => {
    const { fetch, calls } = fakeKds({
      [vcekPath]: [
        [503, 'busy'],
        [429, 'slow down'],
        [200, sevSnpVector(gcp.vek)],
      ],
      '/vcek/v1/Milan/cert_chain': [[200, sevSnpVectorText(gcp.chain!)]],
    });
    const kds = createKdsClient({ baseUrl: 'https://kds.test', fetch, crl: false, minRetryDelayMs: 1 });
    await kds.collateralFor(gcpReport, gcp.now);
    expect(calls.filter((c) => c.startsWith(vcekPath))).toHaveLength(3);

    const missing = fakeKds({});
    const k2 = createKdsClient({
      baseUrl: 'https://kds.test',
      fetch: missing.fetch,
      crl: false,
      minRetryDelayMs: 1,
    });
    let message = '';
    try {
      await k2.collateralFor(gcpReport, gcp.now);
    } catch (e) {
      message = (e as Error).message;
      expect((e as { code: string }).code).toBe('E_UNAVAILABLE');
    }
    expect(message).toContain('https://kds.test/vcek/v1/Milan/');
    expect(missing.calls.filter((c) => c.startsWith(vcekPath))).toHaveLength(1);
  });

  it('an oversized or unparsable answer is refused with a typed error', async () => {
    const big = fakeKds({
      [vcekPath]: [[200, new Uint8Array(64 * 1024)]],
      '/vcek/v1/Milan/cert_chain': [[200, sevSnpVectorText(gcp.chain!)]],
    });
    const k = createKdsClient({
      baseUrl: 'https://kds.test',
      fetch: big.fetch,
      crl: false,
      minRetryDelayMs: 1,
    });
    expect(await code(() => k.collateralFor(gcpReport, gcp.now))).toBe('E_TOO_LARGE');
    const junk = fakeKds({
      [vcekPath]: [[200, 'not a certificate']],
      '/vcek/v1/Milan/cert_chain': [[200, sevSnpVectorText(gcp.chain!)]],
    });
    const k2 = createKdsClient({
      baseUrl: 'https://kds.test',
      fetch: junk.fetch,
      crl: false,
      minRetryDelayMs: 1,
    });
    expect(await code(() => k2.collateralFor(gcpReport, gcp.now))).toBe('E_EVIDENCE_COLLATERAL');
  });

  it('a v2 report needs a configured product; VLEK and masked reports are not looked up', async () => {
    const k = createKdsClient({ baseUrl: 'https://kds.test', fetch: fakeKds({}).fetch });
    const v2 = parseSevSnpReport(sevSnpVector(SEV_SNP_VECTORS.goSevGuestMilanV2.report));
    expect(await code(() => k.collateralFor(v2, gcp.now))).toBe('E_INVALID_INPUT');
    const vlek = parseSevSnpReport((await makeSyntheticSevSnp({ signingKey: 'vlek' })).report);
    expect(await code(() => k.collateralFor(vlek, gcp.now))).toBe('E_UNSUPPORTED');
    const masked = parseSevSnpReport((await makeSyntheticSevSnp({ maskChipId: true })).report);
    expect(await code(() => k.collateralFor(masked, gcp.now))).toBe('E_UNSUPPORTED');
    expect(() => createKdsClient({ baseUrl: 'https://user:pw@kds.test' })).toThrow(/credentials/);
  });

  it('fetches and caches the CRL until its nextUpdate, on disk as well', async () => {
    const s = await makeSyntheticSevSnp();
    const r = parseSevSnpReport(s.report);
    const chip = Buffer.from(r.chipId).toString('hex');
    const dir = await mkdtemp(join(tmpdir(), 'firn-kds-'));
    try {
      const routes = () => ({
        [`/vcek/v1/Milan/${chip}`]: [[200, s.vekDer]] as Array<[number, Uint8Array | string]>,
        '/vcek/v1/Milan/cert_chain': [[200, s.chainPem]] as Array<[number, Uint8Array | string]>,
        '/vcek/v1/Milan/crl': [[200, s.crlDer]] as Array<[number, Uint8Array | string]>,
      });
      const a = fakeKds(routes());
      const c = await createKdsClient({
        baseUrl: 'https://kds.test',
        fetch: a.fetch,
        cacheDir: dir,
      }).collateralFor(r, s.now);
      expect(c.crl).toBe(Buffer.from(s.crlDer).toString('base64'));
      expect(a.calls).toHaveLength(3);
      // A new client on the same cache directory: nothing fetched before the CRL's nextUpdate.
      const b = fakeKds(routes());
      await createKdsClient({ baseUrl: 'https://kds.test', fetch: b.fetch, cacheDir: dir }).collateralFor(
        r,
        s.now,
      );
      expect(b.calls).toHaveLength(0);
      // After it, the CRL is fetched again (VCEK and chain stay current until their notAfter).
      const later = Date.parse('2026-07-01T00:00:00Z') / 1000;
      const d = fakeKds(routes());
      await createKdsClient({ baseUrl: 'https://kds.test', fetch: d.fetch, cacheDir: dir }).collateralFor(
        r,
        later,
      );
      expect(d.calls).toEqual(['/vcek/v1/Milan/crl']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
