import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toQuoteCollateralV3 } from '../dcap/quoteCollateral.ts';
import { verifyDcapQuote } from '../dcap/verifyDcapQuote.ts';
import { PRODUCTION_POLICY, evaluateEvidence } from '../policy/policy.ts';
import {
  ATTACHED_ONLY_COLLATERAL,
  offlineCollateralSource,
  pcsCollateralSource,
  quoteCollateralToJson,
} from './collateralSource.ts';
import { createCollateralFetcher } from './createCollateralFetcher.ts';
import { type LocalPcs, PCS_VECTORS, startLocalPcs, vectorQuote } from '../../test/collateral/localPcs.ts';

// Real quotes that are not in ../shared/vectors, with Intel PCS responses recorded for them
// (vectors/pcs/*/SOURCE.md), served by a PCS-compatible server on 127.0.0.1. The reference verdict
// is @phala/dcap-qvl's (a port of Intel's QVL) on the same bytes. Not covered: Intel's live
// service, TLS, subscription keys.
const require = createRequire(import.meta.url);
const dcapQvl = require('@phala/dcap-qvl') as {
  verify(q: Uint8Array, c: unknown, now: number): { status: string; advisory_ids: string[] };
};

const servers: LocalPcs[] = [];
async function pcs(...args: Parameters<typeof startLocalPcs>): Promise<LocalPcs> {
  const s = await startLocalPcs(...args);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
const fast = { minRetryDelayMs: 1, timeoutMs: 2000 };

describe('PCS client against recorded Intel responses', () => {
  for (const name of ['sgx', 'tdx'] as const) {
    const v = PCS_VECTORS[name];
    it(`${name}: fetched collateral gives Intel's status and advisories, as dcap-qvl does`, async () => {
      const s = await pcs({ dirs: [v.dir] });
      const src = pcsCollateralSource({ baseUrl: s.url, ...fast });
      const quote = vectorQuote(v.dir);
      const c = await src.collateralFor(quote, v.now);
      const facts = await verifyDcapQuote(quote, { collateral: c, now: v.now });
      expect(facts.tcbStatus).toBe(v.status);
      expect(facts.advisoryIds).toEqual(v.advisoryIds);
      expect(facts.collateralNextUpdate).toBe(v.nextUpdate);
      const ref = dcapQvl.verify(quote, quoteCollateralToJson(c), v.now);
      expect(ref.status).toBe(v.status);
      expect([...ref.advisory_ids].sort()).toEqual([...v.advisoryIds].sort());
      // Four pieces, each fetched once, at Intel's v4 paths.
      expect(s.hits.map((h) => h.split('?')[0]).sort()).toEqual(
        [
          '/sgx/certification/v4/pckcrl',
          '/sgx/certification/v4/rootcacrl',
          `/${name}/certification/v4/qe/identity`,
          `/${name}/certification/v4/tcb`,
        ].sort(),
      );
      // After nextUpdate the production policy refuses the same (refetched) collateral.
      const later = v.nextUpdate + 1;
      const again = await verifyDcapQuote(quote, {
        collateral: await src.collateralFor(quote, later),
        now: later,
      });
      const verdict = evaluateEvidence(
        again,
        { ...PRODUCTION_POLICY, acceptedTcbStatuses: [v.status] },
        { now: later },
      );
      expect(verdict.ok).toBe(false);
      expect(!verdict.ok && verdict.reasons.map((r) => r.code)).toEqual(['E_EVIDENCE_EXPIRED']);
    });
  }

  it('headers recorded verbatim from Intel (go-tdx-guest): chains and CRLs verify; the SPR E4 platform is below every TCB level', async () => {
    const v = PCS_VECTORS.tdxSprE4;
    const s = await pcs({ dirs: [v.dir] });
    const c = await pcsCollateralSource({ baseUrl: s.url, ...fast }).collateralFor(vectorQuote(v.dir), v.now);
    await expect(verifyDcapQuote(vectorQuote(v.dir), { collateral: c, now: v.now })).rejects.toMatchObject({
      code: 'E_EVIDENCE_TCB',
    });
    expect(() => dcapQvl.verify(vectorQuote(v.dir), quoteCollateralToJson(c), v.now)).toThrow();
  });

  it('accepts CRLs as DER, PEM or hex, and the SGX-TCB-Info-Issuer-Chain header name', async () => {
    const v = PCS_VECTORS.sgx;
    const quote = vectorQuote(v.dir);
    const der = await pcs({ dirs: [v.dir] });
    const base = await createCollateralFetcher({ baseUrl: der.url, ...fast }).getCollateral(quote, v.now);
    for (const o of [
      { crlEncoding: 'pem' as const },
      { crlEncoding: 'hex' as const },
      { tcbInfoChainHeader: 'SGX-TCB-Info-Issuer-Chain' },
    ]) {
      const s = await pcs({ dirs: [v.dir], ...o });
      expect(await createCollateralFetcher({ baseUrl: s.url, ...fast }).getCollateral(quote, v.now)).toEqual(
        base,
      );
    }
  });

  it('retries transient failures with backoff, then names the URL when it gives up', async () => {
    const v = PCS_VECTORS.sgx;
    const s = await pcs({ dirs: [v.dir] });
    s.failNext = 3; // spread over the four parallel requests: each gets through on a retry
    const c = await createCollateralFetcher({ baseUrl: s.url, retries: 3, ...fast }).getCollateral(
      vectorQuote(v.dir),
      v.now,
    );
    expect(c.tcbInfo.length).toBeGreaterThan(100);
    expect(s.hits.length).toBe(7);
    s.forceStatus = 503;
    s.hits.length = 0;
    const f = createCollateralFetcher({ baseUrl: s.url, retries: 2, ...fast });
    const e = await f.getCollateral(vectorQuote(v.dir), v.now).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'E_UNAVAILABLE' });
    expect((e as Error).message).toContain(`${s.url}/sgx/certification/v4/`);
    expect(s.hits.length).toBe(12); // 4 pieces x (1 + 2 retries)
  });

  it('does not retry a 404, and refuses a slow service after the timeout', async () => {
    const v = PCS_VECTORS.sgx;
    const s = await pcs({ dirs: [v.dir] });
    s.forceStatus = 404;
    await expect(
      createCollateralFetcher({ baseUrl: s.url, retries: 3, ...fast }).getCollateral(
        vectorQuote(v.dir),
        v.now,
      ),
    ).rejects.toMatchObject({ code: 'E_UNAVAILABLE', message: expect.stringContaining('answered 404') });
    expect(s.hits.length).toBe(4);
    s.forceStatus = undefined;
    s.delayMs = 400;
    await expect(
      createCollateralFetcher({ baseUrl: s.url, retries: 0, timeoutMs: 50 }).getCollateral(
        vectorQuote(v.dir),
        v.now,
      ),
    ).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringContaining('did not answer within 50 ms'),
    });
  });

  it('caps the response size and refuses a response without its issuer chain, naming the URL', async () => {
    const v = PCS_VECTORS.sgx;
    const s = await pcs({ dirs: [v.dir] });
    await expect(
      createCollateralFetcher({ baseUrl: s.url, maxResponseBytes: 1024, ...fast }).getCollateral(
        vectorQuote(v.dir),
        v.now,
      ),
    ).rejects.toMatchObject({ code: 'E_TOO_LARGE', message: expect.stringContaining(s.url) });
    const noHeader = await pcs({ dirs: [v.dir], tcbInfoChainHeader: 'X-Something-Else' });
    await expect(
      createCollateralFetcher({ baseUrl: noHeader.url, ...fast }).getCollateral(vectorQuote(v.dir), v.now),
    ).rejects.toMatchObject({
      code: 'E_EVIDENCE_COLLATERAL',
      message: expect.stringMatching(
        /lacks the TCB-Info-Issuer-Chain header .*\/sgx\/certification\/v4\/tcb\?fmspc=00606A000000/,
      ),
    });
  });

  it('caches each piece until its nextUpdate (memory and disk), then fetches it again', async () => {
    const v = PCS_VECTORS.tdx;
    const s = await pcs({ dirs: [v.dir] });
    const dir = mkdtempSync(join(tmpdir(), 'firn-pcs-'));
    const f = createCollateralFetcher({ baseUrl: s.url, cacheDir: dir, ...fast });
    await f.getCollateral(vectorQuote(v.dir), v.now);
    await f.getCollateral(vectorQuote(v.dir), v.now + 86399);
    await createCollateralFetcher({ baseUrl: s.url, cacheDir: dir, ...fast }).getCollateral(
      vectorQuote(v.dir),
      v.now,
    );
    expect(s.hits.length).toBe(4);
    // 2025-07-04T09:30Z: only the PCK CRL (nextUpdate 09:19:31) has expired (refresh set past it).
    const monthly = createCollateralFetcher({
      baseUrl: s.url,
      cacheDir: dir,
      refreshSeconds: 60 * 86400,
      ...fast,
    });
    await monthly.getCollateral(vectorQuote(v.dir), Date.parse('2025-07-04T09:30:00Z') / 1000);
    expect(s.hits.slice(4).map((h) => h.split('?')[0])).toEqual(['/sgx/certification/v4/pckcrl']);
  });

  it('attack: a TCB recovery or a revocation published after a fetch is seen the next day, not at nextUpdate (decision 1792)', async () => {
    const v = PCS_VECTORS.tdx;
    const s = await pcs({ dirs: [v.dir] });
    const f = createCollateralFetcher({ baseUrl: s.url, retries: 0, ...fast });
    await f.getCollateral(vectorQuote(v.dir), v.now);
    expect(s.hits).toHaveLength(4);
    // A day later every piece is asked again, though each is weeks before its nextUpdate.
    await f.getCollateral(vectorQuote(v.dir), v.now + 86400);
    expect(s.hits).toHaveLength(8);
    // A refresh that fails leaves the current copies in use: no verdict is lost to an outage.
    s.forceStatus = 503;
    const c = await f.getCollateral(vectorQuote(v.dir), v.now + 2 * 86400);
    expect(c.tcbInfo.length).toBeGreaterThan(100);
    expect(s.hits).toHaveLength(12);
  });

  it('uses a stale cached piece only inside the grace period when the service is down', async () => {
    const v = PCS_VECTORS.sgx;
    const s = await pcs({ dirs: [v.dir] });
    const f = createCollateralFetcher({ baseUrl: s.url, retries: 0, ...fast });
    await f.getCollateral(vectorQuote(v.dir), v.now);
    s.forceStatus = 503;
    const late = v.nextUpdate + 600;
    const c = await f.getCollateral(vectorQuote(v.dir), late, { graceSeconds: 3600 });
    expect(c.tcbInfo.length).toBeGreaterThan(100);
    await expect(f.getCollateral(vectorQuote(v.dir), late)).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    await expect(
      f.getCollateral(vectorQuote(v.dir), v.nextUpdate + 7200, { graceSeconds: 3600 }),
    ).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });
});

describe('malformed PCS answers fail typed, naming the URL', () => {
  const v = PCS_VECTORS.sgx;
  const tcb = '/sgx/certification/v4/tcb';
  const crl = '/sgx/certification/v4/pckcrl';
  const chainHeader = (h: string) => ({ 'TCB-Info-Issuer-Chain': h });
  const cases: [string, string, Buffer | undefined, Record<string, string> | undefined][] = [
    ['TCB info that is not JSON', tcb, Buffer.from('<html>maintenance</html>'), undefined],
    ['TCB info without tcbInfo', tcb, Buffer.from('{"signature":"00"}'), undefined],
    ['TCB info with an unterminated object', tcb, Buffer.from('{"tcbInfo":{"id":"SGX"'), undefined],
    ['TCB info with a short signature', tcb, undefined, undefined],
    ['an issuer chain that is not URL-encoding', tcb, undefined, chainHeader('%E0%A4%A')],
    ['an issuer chain without a certificate', tcb, undefined, chainHeader('hello')],
    ['a CRL that is neither DER, PEM nor hex', crl, Buffer.from('not a crl at all'), undefined],
    ['a CRL whose DER is cut short', crl, Buffer.from([0x30, 0x82, 0x0a, 0x63, 0x30]), undefined],
  ];
  for (const [name, path, body, headers] of cases)
    it(name, async () => {
      const s = await pcs({ dirs: [v.dir] });
      if (name.includes('short signature')) {
        const { readFileSync } = await import('node:fs');
        const real = readFileSync(join(v.dir, 'tcb.json'), 'utf8');
        s.override.set(path, Buffer.from(real.replace(/"signature":"[0-9a-f]+"/, '"signature":"abcd"')));
      } else if (body !== undefined) s.override.set(path, body);
      if (headers !== undefined) s.overrideHeaders.set(path, headers);
      const e = await pcsCollateralSource({ baseUrl: s.url, ...fast })
        .collateralFor(vectorQuote(v.dir), v.now)
        .catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'E_EVIDENCE_COLLATERAL' });
      if (!name.includes('short signature')) expect((e as Error).message).toContain(`${s.url}${path}`);
    });
});

describe('collateral sources and attached collateral', () => {
  it("no round trip while the verifier's cache is current; with a cold cache every piece is fetched, attached or not", async () => {
    const v = PCS_VECTORS.tdx;
    const s = await pcs({ dirs: [v.dir] });
    const src = pcsCollateralSource({ baseUrl: s.url, ...fast });
    const attached = quoteCollateralToJson(await src.collateralFor(vectorQuote(v.dir), v.now));
    s.hits.length = 0;
    // The verifier's own cache is current: nothing is asked, attached or not.
    await src.collateralFor(vectorQuote(v.dir), v.now, { attached });
    await src.collateralFor(vectorQuote(v.dir), v.now);
    expect(s.hits).toEqual([]);
    // Another verifier with a cold cache: every piece is asked of its own (cached) fetcher, so a
    // node cannot stand in an older, still current TCB info or QE identity (decision 1792).
    const other = pcsCollateralSource({ baseUrl: s.url, ...fast });
    await other.collateralFor(vectorQuote(v.dir), v.now, { attached });
    expect(s.hits.map((h) => h.split('?')[0]).sort()).toEqual([
      '/sgx/certification/v4/pckcrl',
      '/sgx/certification/v4/rootcacrl',
      '/tdx/certification/v4/qe/identity',
      '/tdx/certification/v4/tcb',
    ]);
    s.hits.length = 0;
    await other.collateralFor(vectorQuote(v.dir), v.now, { attached });
    expect(s.hits).toEqual([]);
    // A month on every piece is asked again (the daily refresh; the PCK CRL is past its nextUpdate too).
    const t = Date.parse('2025-07-04T09:30:00Z') / 1000;
    await other.collateralFor(vectorQuote(v.dir), t, { attached });
    expect(s.hits).toHaveLength(4);
  });

  it('attack: a host attaches an edited TCB info (status raised to UpToDate): the verifier fetches its own, and the attached-only source refuses it by its signature', async () => {
    const v = PCS_VECTORS.tdx;
    const s = await pcs({ dirs: [v.dir] });
    const src = pcsCollateralSource({ baseUrl: s.url, ...fast });
    const good = quoteCollateralToJson(await src.collateralFor(vectorQuote(v.dir), v.now));
    const forged = { ...good, tcb_info: good.tcb_info!.replaceAll('"OutOfDate"', '"UpToDate"') };
    expect(forged.tcb_info).not.toBe(good.tcb_info);
    const cold = pcsCollateralSource({ baseUrl: s.url, ...fast });
    const c = await cold.collateralFor(vectorQuote(v.dir), v.now, { attached: forged });
    expect(c.tcbInfo).toBe(good.tcb_info);
    const only = await ATTACHED_ONLY_COLLATERAL.collateralFor(vectorQuote(v.dir), v.now, {
      attached: forged,
    });
    await expect(verifyDcapQuote(vectorQuote(v.dir), { collateral: only, now: v.now })).rejects.toMatchObject(
      {
        code: 'E_EVIDENCE_COLLATERAL',
        message: 'TCB info signature is invalid',
      },
    );
    // Where the verifier holds its own current copy, an equally dated attachment does not replace it.
    const warm = await src.collateralFor(vectorQuote(v.dir), v.now, { attached: forged });
    expect(warm.tcbInfo).toBe(good.tcb_info);
  });

  it('attack: an attached TCB info claiming a newer tcbEvaluationDataNumber wins the date and is refused by its signature', async () => {
    const v = PCS_VECTORS.tdx;
    const s = await pcs({ dirs: [v.dir] });
    const src = pcsCollateralSource({ baseUrl: s.url, ...fast });
    const good = quoteCollateralToJson(await src.collateralFor(vectorQuote(v.dir), v.now));
    const n = /"tcbEvaluationDataNumber":(\d+)/.exec(good.tcb_info!)![1]!;
    const forged = {
      ...good,
      tcb_info: good
        .tcb_info!.replace(`"tcbEvaluationDataNumber":${n}`, `"tcbEvaluationDataNumber":${Number(n) + 1}`)
        .replaceAll('"OutOfDate"', '"UpToDate"'),
    };
    expect(forged.tcb_info).not.toBe(good.tcb_info);
    const c = await src.collateralFor(vectorQuote(v.dir), v.now, { attached: forged });
    expect(c.tcbInfo).toBe(forged.tcb_info);
    await expect(verifyDcapQuote(vectorQuote(v.dir), { collateral: c, now: v.now })).rejects.toMatchObject({
      code: 'E_EVIDENCE_COLLATERAL',
      message: 'TCB info signature is invalid',
    });
  });

  it('attack: a PCCS serves an edited TCB info body: refused by its signature', async () => {
    const v = PCS_VECTORS.sgx;
    const s = await pcs({ dirs: [v.dir] });
    const { readFileSync } = await import('node:fs');
    const body = readFileSync(join(v.dir, 'tcb.json'), 'utf8').replaceAll(
      '"SWHardeningNeeded"',
      '"UpToDate"',
    );
    s.override.set('/sgx/certification/v4/tcb', Buffer.from(body));
    const c = await pcsCollateralSource({ baseUrl: s.url, ...fast }).collateralFor(vectorQuote(v.dir), v.now);
    await expect(verifyDcapQuote(vectorQuote(v.dir), { collateral: c, now: v.now })).rejects.toMatchObject({
      code: 'E_EVIDENCE_COLLATERAL',
    });
  });

  it('attack: a PCCS substitutes a genuine TCB info of another platform: refused', async () => {
    const v = PCS_VECTORS.sgx;
    const other = PCS_VECTORS.tdx;
    const s = await pcs({ dirs: [v.dir] });
    const { readFileSync } = await import('node:fs');
    const headers = JSON.parse(readFileSync(join(other.dir, 'headers.json'), 'utf8')) as {
      tcb: Record<string, string>;
    };
    s.override.set('/sgx/certification/v4/tcb', readFileSync(join(other.dir, 'tcb.json')));
    s.overrideHeaders.set('/sgx/certification/v4/tcb', headers.tcb);
    const c = await pcsCollateralSource({ baseUrl: s.url, ...fast }).collateralFor(vectorQuote(v.dir), v.now);
    await expect(verifyDcapQuote(vectorQuote(v.dir), { collateral: c, now: v.now })).rejects.toMatchObject({
      code: 'E_EVIDENCE_COLLATERAL',
      message: 'TCB info is for TDX but the quote is SGX',
    });
  });

  it('attack: a forged entry in the disk cache is used while current, and refused by its signature', async () => {
    const v = PCS_VECTORS.sgx;
    const s = await pcs({ dirs: [v.dir] });
    const dir = mkdtempSync(join(tmpdir(), 'firn-pcs-poison-'));
    await createCollateralFetcher({ baseUrl: s.url, cacheDir: dir, ...fast }).getCollateral(
      vectorQuote(v.dir),
      v.now,
    );
    const { readdirSync, readFileSync, writeFileSync } = await import('node:fs');
    for (const f of readdirSync(dir)) {
      const e = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { body: string };
      if (!e.body.includes('"tcbInfo"')) continue;
      e.body = e.body.replaceAll('"SWHardeningNeeded"', '"UpToDate"');
      writeFileSync(join(dir, f), JSON.stringify(e));
    }
    s.hits.length = 0;
    const c = await createCollateralFetcher({ baseUrl: s.url, cacheDir: dir, ...fast }).getCollateral(
      vectorQuote(v.dir),
      v.now,
    );
    expect(s.hits).toEqual([]);
    await expect(verifyDcapQuote(vectorQuote(v.dir), { collateral: c, now: v.now })).rejects.toMatchObject({
      code: 'E_EVIDENCE_COLLATERAL',
      message: 'TCB info signature is invalid',
    });
  });

  it('attached collateral for another platform or TEE is dropped and fetched instead', async () => {
    const s = await pcs({ dirs: [PCS_VECTORS.tdx.dir] });
    const sgxServer = await pcs({ dirs: [PCS_VECTORS.sgx.dir] });
    const sgxCol = quoteCollateralToJson(
      await pcsCollateralSource({ baseUrl: sgxServer.url, ...fast }).collateralFor(
        vectorQuote(PCS_VECTORS.sgx.dir),
        PCS_VECTORS.sgx.now,
      ),
    );
    const v = PCS_VECTORS.tdx;
    // At the SGX vector's time its pieces are current, but they are for SGX / another FMSPC.
    const c = await pcsCollateralSource({ baseUrl: s.url, ...fast }).collateralFor(
      vectorQuote(v.dir),
      v.now,
      {
        attached: sgxCol,
      },
    );
    // The CRLs are always asked of the verifier's fetcher; the other pieces are for SGX.
    expect(s.hits.map((h) => h.split('?')[0]).sort()).toEqual([
      '/sgx/certification/v4/pckcrl',
      '/sgx/certification/v4/rootcacrl',
      '/tdx/certification/v4/qe/identity',
      '/tdx/certification/v4/tcb',
    ]);
    const facts = await verifyDcapQuote(vectorQuote(v.dir), { collateral: c, now: v.now });
    expect(facts.tcbStatus).toBe(v.status);
  });

  it('offline source: the file, with current attached pieces preferred; attached-only refuses without collateral', async () => {
    const v = PCS_VECTORS.sgx;
    const s = await pcs({ dirs: [v.dir] });
    const file = quoteCollateralToJson(
      await pcsCollateralSource({ baseUrl: s.url, ...fast }).collateralFor(vectorQuote(v.dir), v.now),
    );
    const c = await offlineCollateralSource(file).collateralFor(vectorQuote(v.dir), v.now);
    expect(c).toEqual(toQuoteCollateralV3(file));
    expect((await verifyDcapQuote(vectorQuote(v.dir), { collateral: c, now: v.now })).tcbStatus).toBe(
      v.status,
    );
    await expect(ATTACHED_ONLY_COLLATERAL.collateralFor(vectorQuote(v.dir), v.now)).rejects.toMatchObject({
      code: 'E_EVIDENCE_COLLATERAL',
    });
    expect(
      await ATTACHED_ONLY_COLLATERAL.collateralFor(vectorQuote(v.dir), v.now, { attached: file }),
    ).toEqual(toQuoteCollateralV3(file));
  });

  it('refuses a service URL with credentials or a non-http scheme', () => {
    expect(() => createCollateralFetcher({ baseUrl: 'https://user:pw@pccs.example' })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
    expect(() => createCollateralFetcher({ baseUrl: 'file:///etc' })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
  });
});
