import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/codeOf.ts';
import { rawMember } from '../collateral/createCollateralFetcher.ts';
import { PCS_VECTORS, PCS_VECTORS_DIR } from '../../test/collateral/localPcs.ts';
import { evaluateEvidence, PRODUCTION_POLICY } from '../policy/policy.ts';
import type { AttestationPolicy } from '../policy/policy.ts';
import { parseDcapQuote } from './quote.ts';
import type { QuoteCollateralV3 } from './quoteCollateral.ts';
import { verifyDcapQuote } from './verifyDcapQuote.ts';

/**
 * Real quotes that are not in ../shared/vectors (vectors/pcs, see each SOURCE.md), each with the
 * verdict Intel's QVL and dcap-qvl give at a stated time, and the variants that must be refused:
 * a tampered quote, a time after the collateral's nextUpdate and before its issue, a wrong nonce
 * (report data that is not the one the verifier expects).
 */
function collateralOf(dir: string): QuoteCollateralV3 {
  const f = (n: string) => readFileSync(join(dir, n));
  const headers = JSON.parse(f('headers.json').toString('utf8')) as Record<string, Record<string, string>>;
  const header = (k: string, h: string) => decodeURIComponent(headers[k]![h]!);
  const tcb = f('tcb.json').toString('utf8');
  const qe = f('qe-identity.json').toString('utf8');
  const sig = (body: string) => Buffer.from((JSON.parse(body) as { signature: string }).signature, 'hex');
  return {
    pckCrlIssuerChain: header('pckcrl', 'SGX-PCK-CRL-Issuer-Chain'),
    rootCaCrl: new Uint8Array(f('rootcacrl.der')),
    pckCrl: new Uint8Array(f('pckcrl.der')),
    tcbInfoIssuerChain: header('tcb', 'TCB-Info-Issuer-Chain'),
    tcbInfo: rawMember(tcb, 'tcbInfo'),
    tcbInfoSignature: new Uint8Array(sig(tcb)),
    qeIdentityIssuerChain: header('qe', 'SGX-Enclave-Identity-Issuer-Chain'),
    qeIdentity: rawMember(qe, 'enclaveIdentity'),
    qeIdentitySignature: new Uint8Array(sig(qe)),
  };
}
const quoteOf = (dir: string) => new Uint8Array(readFileSync(join(dir, 'quote.dat')));

const V5 = {
  dir: join(PCS_VECTORS_DIR, 'tdx-90c06f000000-v5'),
  // Automata's QuoteV5Test pins 2025-06-15T00:00:00Z and expects the quote to verify.
  now: 1749945600,
  nextUpdate: Date.parse('2025-07-04T09:19:31Z') / 1000,
};

describe('real TDX v5 quote (TD 1.5 report, bound to a service TD)', () => {
  const verify = (now = V5.now, quote = quoteOf(V5.dir)) =>
    verifyDcapQuote(quote, { collateral: collateralOf(V5.dir), now });
  it('verifies at the stated time: TD 1.5, Intel status and advisories, MRSERVICETD non-zero', async () => {
    const f = await verify();
    expect(f.teeType).toBe('tdx');
    expect(f.extra.tdReportVersion).toBe('1.5');
    expect(f.extra.quoteVersion).toBe(5);
    expect(f.extra.fmspc).toBe('90c06f000000');
    expect(f.tcbStatus).toBe('UpToDate');
    expect(f.advisoryIds).toEqual([]);
    expect(f.measurements.mrservicetd).toMatch(/^383c87d3/);
    expect(f.collateralNextUpdate).toBe(V5.nextUpdate);
  });
  it("the production policy refuses it as dcap-qvl's defaults do (service TD); a policy that opts in accepts it", async () => {
    const f = await verify();
    const v = evaluateEvidence(f, PRODUCTION_POLICY, { now: V5.now });
    expect(v.ok ? [] : v.reasons.map((r) => r.message)).toEqual([
      'the TD is bound to a service TD (MRSERVICETD is not zero)',
    ]);
    const optIn: AttestationPolicy = {
      ...PRODUCTION_POLICY,
      tdx: { allowServiceTd: true, mrServiceTdAllowList: [f.measurements.mrservicetd!] },
    };
    expect(evaluateEvidence(f, optIn, { now: V5.now }).ok).toBe(true);
  });
  it('refuses tampered, expired, not-yet-valid and wrong-nonce variants', async () => {
    const q = quoteOf(V5.dir);
    const parsed = parseDcapQuote(q);
    for (const at of [20, 48 + 6 + 200, parsed.signedBytes.length + 10]) {
      const bad = new Uint8Array(q);
      bad[at]! ^= 1;
      expect(await codeOf(verify(V5.now, bad)), `offset ${at}`).not.toBe('ok');
    }
    const f = await verify();
    const optIn: AttestationPolicy = { ...PRODUCTION_POLICY, tdx: { allowServiceTd: true } };
    const late = evaluateEvidence(f, optIn, { now: V5.nextUpdate + 1 });
    expect(!late.ok && late.reasons.map((r) => r.code)).toEqual(['E_EVIDENCE_EXPIRED']);
    expect(await codeOf(verify(Date.parse('2025-06-01T00:00:00Z') / 1000))).toBe('E_EVIDENCE_EXPIRED');
    const wrongNonce = evaluateEvidence(f, optIn, {
      now: V5.now,
      expectedReportData: new Uint8Array(64).fill(1),
    });
    expect(!wrongNonce.ok && wrongNonce.reasons.map((r) => r.code)).toEqual(['E_EVIDENCE_BINDING']);
    expect(evaluateEvidence(f, optIn, { now: V5.now, expectedReportData: f.reportData }).ok).toBe(true);
  });
});

describe('recorded PCS vectors (SGX v3, TDX v4): vendor verdicts and refused variants', () => {
  for (const [name, v] of [
    ['SGX v3 00606A000000', PCS_VECTORS.sgx],
    ['TDX v4 00806F050000', PCS_VECTORS.tdx],
  ] as const) {
    it(`${name}: Intel's status and advisories at the stated time; tampered, expired, wrong nonce refused`, async () => {
      const run = (now: number = v.now, quote = quoteOf(v.dir)) =>
        verifyDcapQuote(quote, { collateral: collateralOf(v.dir), now });
      const f = await run();
      expect(f.tcbStatus).toBe(v.status);
      expect(f.advisoryIds).toEqual(v.advisoryIds);
      const accepting: AttestationPolicy = { ...PRODUCTION_POLICY, acceptedTcbStatuses: [f.tcbStatus] };
      expect(evaluateEvidence(f, accepting, { now: v.now, expectedReportData: f.reportData }).ok).toBe(true);
      const q = quoteOf(v.dir);
      const bad = new Uint8Array(q);
      bad[100]! ^= 1;
      expect(await codeOf(run(v.now, bad))).toBe('E_EVIDENCE_SIGNATURE');
      const late = evaluateEvidence(f, accepting, { now: v.nextUpdate + 1 });
      expect(!late.ok && late.reasons.map((r) => r.code)).toEqual(['E_EVIDENCE_EXPIRED']);
      const wrong = evaluateEvidence(f, accepting, {
        now: v.now,
        expectedReportData: new Uint8Array(64).fill(0xab),
      });
      expect(!wrong.ok && wrong.reasons.map((r) => r.code)).toEqual(['E_EVIDENCE_BINDING']);
    });
  }
});
