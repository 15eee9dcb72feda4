import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/codeOf.ts';
import { evaluateEvidence, PRODUCTION_POLICY } from '../policy/policy.ts';
import { parsePckExtensions } from './pckExtensions.ts';
import { parseQeIdentity } from './qeIdentity.ts';
import { parseDcapQuote } from './quote.ts';
import { toQuoteCollateralV3 } from './quoteCollateral.ts';
import { matchQeIdentity, matchTcbLevel, matchTdxModule } from './tcbMatch.ts';
import { parseTcbInfo, type TcbInfo } from './tcbInfo.ts';
import { makeSyntheticSgx, type SyntheticDcap } from '../../test/dcap/syntheticDcap.ts';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { verifyDcapQuote } from './verifyDcapQuote.ts';
import { chainCertificates, parseCertificate } from './x509.ts';

// The shared cases (../shared/cases, copied with SOURCE.md into vectors/cases/).
const CASES = fileURLToPath(new URL('../../vectors/cases/', import.meta.url));
const caseFile = (c: string, f: string) => new Uint8Array(readFileSync(`${CASES}${c}/${f}`));
const caseJson = (c: string, f: string) => JSON.parse(readFileSync(`${CASES}${c}/${f}`, 'utf8')) as unknown;
const caseNow = (c: string) => Number(readFileSync(`${CASES}${c}/now.txt`, 'utf8').trim());

const runCase = (c: string, collateral = 'collateral.json') =>
  verifyDcapQuote(caseFile(c, 'quote.bin'), {
    collateral: caseJson(c, collateral),
    now: caseNow(c),
    roots: [caseFile(c, 'root.pem')],
  });
const run = (s: SyntheticDcap) =>
  verifyDcapQuote(s.quote, { collateral: s.collateral, now: s.now, roots: [Buffer.from(s.rootPem)] });

describe('QE vendor ID (case qe-vendor-id)', () => {
  it('refuses the case quote: its header names a QE vendor that is not Intel', async () => {
    await expect(runCase('qe-vendor-id')).rejects.toMatchObject({
      code: 'E_EVIDENCE_MALFORMED',
      message: expect.stringMatching(/QE vendor ID 0{32}, not Intel's \(939a7233f79c4ca9940a0db3957f0607\)/),
    });
  });
  it('refuses any non-Intel vendor on an otherwise valid quote, accepts Intel', async () => {
    expect((await run(await makeSyntheticSgx())).tcbStatus).toBe('UpToDate');
    for (const v of ['00'.repeat(16), '939a7233f79c4ca9940a0db3957f0606', 'ff'.repeat(16)])
      expect(await codeOf(run(await makeSyntheticSgx({ qeVendorId: v }))), v).toBe('E_EVIDENCE_MALFORMED');
  });
  it('every real Intel quote names Intel as QE vendor and still verifies', async () => {
    for (const v of [VECTORS.sgx, VECTORS.tdx]) {
      const f = await verifyDcapQuote(vector(v.quote), { collateral: vectorJson(v.collateral), now: v.now });
      expect(f.tcbStatus).toBeDefined();
    }
  });
});

/** Fisher-Yates with a fixed LCG, so every run tries the same permutations. */
function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const a = [...xs];
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

describe('TCB level order (case tcb-level-order)', () => {
  it('gives the same verdict, UpToDate, for both JSON orders of the same signed levels', async () => {
    const a = await runCase('tcb-level-order');
    const b = await runCase('tcb-level-order', 'collateral-levels-sorted.json');
    expect(a.tcbStatus).toBe('UpToDate');
    expect(b.tcbStatus).toBe('UpToDate');
    expect(a.advisoryIds).toEqual(b.advisoryIds);
    // Under the case's production policy both are accepted.
    const policy = {
      ...PRODUCTION_POLICY,
      acceptedTcbStatuses: ['UpToDate' as const, 'SWHardeningNeeded' as const],
    };
    expect(evaluateEvidence(a, policy, { now: caseNow('tcb-level-order') }).ok).toBe(true);
    expect(evaluateEvidence(b, policy, { now: caseNow('tcb-level-order') }).ok).toBe(true);
  });

  it('platform levels: every JSON order of signed levels gives the same status (synthetic, signed)', async () => {
    const cpu = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
    const up = (i: number, d: number) => cpu.map((v, k) => (k === i ? v + d : v));
    const levels = [
      { comps: up(0, 1), pcesvn: 13, status: 'UpToDate' },
      { comps: cpu, pcesvn: 14, status: 'SWHardeningNeeded', advisoryIDs: ['INTEL-SA-00001'] },
      { comps: cpu, pcesvn: 13, status: 'ConfigurationNeeded', advisoryIDs: ['INTEL-SA-00002'] },
      { comps: up(1, -1), pcesvn: 13, status: 'OutOfDate', advisoryIDs: ['INTEL-SA-00003'] },
      { comps: up(1, -2), pcesvn: 2, status: 'Revoked' },
    ];
    const seen = new Set<string>();
    for (const seed of [1, 2, 3, 4]) {
      const f = await run(await makeSyntheticSgx({ tcbLevels: shuffled(levels, seed) }));
      seen.add(`${f.tcbStatus} ${f.advisoryIds.join(',')}`);
    }
    expect([...seen]).toEqual(['ConfigurationNeeded INTEL-SA-00002']);
  });

  it('TDX platform and TDX module levels: reversed and shuffled JSON give the same match (real TDX collateral)', () => {
    const col = toQuoteCollateralV3(vectorJson(VECTORS.tdx.collateral));
    const info = parseTcbInfo(col.tcbInfo);
    const q = parseDcapQuote(vector(VECTORS.tdx.quote));
    if (q.body.kind !== 'tdx') throw new Error('vector is TDX');
    const td = q.body.report;
    const pck = parsePckExtensions(
      parseCertificate(chainCertificates(q.certification.certData, 'PCK chain')[0]!),
    );
    const base = { level: matchTcbLevel(info, pck, td), module: matchTdxModule(info, td) };
    for (const seed of [0, 1, 2]) {
      const perm = <T>(xs: T[]) => (seed === 0 ? [...xs].reverse() : shuffled(xs, seed));
      const other: TcbInfo = {
        ...info,
        tcbLevels: perm(info.tcbLevels),
        tdxModuleIdentities: info.tdxModuleIdentities.map((m) => ({ ...m, tcbLevels: perm(m.tcbLevels) })),
      };
      expect(matchTcbLevel(other, pck, td)).toEqual(base.level);
      expect(matchTdxModule(other, td)).toEqual(base.module);
    }
  });

  it('TDX module levels: a module SVN between two levels gets the lower one in any order', () => {
    const col = toQuoteCollateralV3(vectorJson(VECTORS.tdx.collateral));
    const info = parseTcbInfo(col.tcbInfo);
    const q = parseDcapQuote(vector(VECTORS.tdx.quote));
    if (q.body.kind !== 'tdx') throw new Error('vector is TDX');
    const ident = info.tdxModuleIdentities[0]!;
    const td = { ...q.body.report, teeTcbSvn: Uint8Array.from(q.body.report.teeTcbSvn) };
    td.teeTcbSvn[1] = Number.parseInt(ident.id.slice(4), 16);
    td.teeTcbSvn[0] = 5;
    const levels = [
      { isvSvn: 2, status: 'OutOfDate' as const, advisoryIds: ['INTEL-SA-1'] },
      { isvSvn: 6, status: 'UpToDate' as const, advisoryIds: [] },
      { isvSvn: 4, status: 'SWHardeningNeeded' as const, advisoryIds: ['INTEL-SA-2'] },
    ];
    for (const order of [levels, [...levels].reverse(), shuffled(levels, 9)]) {
      const other = { ...info, tdxModuleIdentities: [{ ...ident, tcbLevels: order }] };
      expect(matchTdxModule(other, td)).toEqual({ status: 'SWHardeningNeeded', advisoryIds: ['INTEL-SA-2'] });
    }
  });

  it('QE identity levels: any JSON order gives the same QE status', () => {
    const col = toQuoteCollateralV3(vectorJson(VECTORS.sgx.collateral));
    const q = parseDcapQuote(vector(VECTORS.sgx.quote));
    const json = JSON.parse(col.qeIdentity) as { tcbLevels: unknown[] };
    const base = matchQeIdentity(parseQeIdentity(col.qeIdentity), q.certification.qeReport);
    for (const order of [[...json.tcbLevels].reverse(), shuffled(json.tcbLevels, 5)]) {
      const text = JSON.stringify({ ...json, tcbLevels: order });
      expect(matchQeIdentity(parseQeIdentity(text), q.certification.qeReport)).toEqual(base);
    }
    // A QE between two levels: ISVSVN 5 with levels 8 (UpToDate) and 3 (OutOfDate), either order.
    const qe = { ...q.certification.qeReport, isvSvn: 5 };
    const levels = [
      { tcb: { isvsvn: 3 }, tcbDate: '2023-01-01T00:00:00Z', tcbStatus: 'OutOfDate' },
      { tcb: { isvsvn: 8 }, tcbDate: '2024-01-01T00:00:00Z', tcbStatus: 'UpToDate' },
    ];
    for (const order of [levels, [...levels].reverse()]) {
      const ident = parseQeIdentity(JSON.stringify({ ...json, tcbLevels: order }));
      expect(matchQeIdentity(ident, qe).status).toBe('OutOfDate');
    }
  });
});
