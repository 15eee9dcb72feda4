import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { evaluateEvidence, PRODUCTION_POLICY } from '../policy/policy.ts';
import { parseSevSnpReport } from './sevSnpReport.ts';
import { sevSnpVerifier } from './sevSnpVerifier.ts';
import { makeSyntheticSevSnp, type SyntheticSevSnp } from '../../test/sev-snp/syntheticSevSnp.ts';
import { verifySevSnpReport } from './verifySevSnpReport.ts';

async function outcome(s: SyntheticSevSnp, extra: { crl?: boolean; now?: number } = {}): Promise<string> {
  try {
    verifySevSnpReport(s.report, {
      now: extra.now ?? s.now,
      vek: s.vekPem,
      chain: s.chainPem,
      roots: [Buffer.from(s.arkPem)],
      ...(extra.crl === true ? { crl: s.crlDer } : {}),
    });
  } catch (e) {
    if (!isFirnError(e)) throw new Error(`untyped error: ${(e as Error)?.message}`);
    return e.code;
  }
  return 'ACCEPTED';
}

async function facts(s: SyntheticSevSnp, crl = false) {
  return sevSnpVerifier.verify(parseSevSnpReport(s.report), {
    now: s.now,
    roots: [Buffer.from(s.arkPem)],
    collateral: {
      vek: s.vekPem,
      chain: s.chainPem,
      ...(crl ? { crl: Buffer.from(s.crlDer).toString('base64') } : {}),
    },
  });
}

describe('SEV-SNP under a synthetic AMD-shaped PKI (paths no public report reaches)', () => {
  it('a well-formed Milan, Genoa and Turin report each verifies, with the CRL', async () => {
    for (const product of ['Milan', 'Genoa', 'Turin'] as const) {
      const s = await makeSyntheticSevSnp({ product });
      expect(await outcome(s, { crl: true }), product).toBe('ACCEPTED');
      const f = await facts(s, true);
      expect(f.extra.product).toBe(product);
      expect(f.extra.crlChecked).toBe(true);
      expect(f.collateralNextUpdate).toBe(Date.parse('2026-06-01T00:00:00Z') / 1000);
    }
  });

  it('Turin: the TCB decodes with FMC first; a VCEK certifying another FMC is refused (E_EVIDENCE_TCB)', async () => {
    const ok = await makeSyntheticSevSnp({ product: 'Turin' });
    expect((await facts(ok)).extra.reportedTcb).toMatchObject({
      fmc: 1,
      bootloader: 9,
      tee: 0,
      snp: 23,
      microcode: 72,
    });
    const bad = await makeSyntheticSevSnp({
      product: 'Turin',
      vekTcb: { fmc: 2, bootloader: 9, tee: 0, snp: 23, microcode: 72 },
    });
    expect(await outcome(bad)).toBe('E_EVIDENCE_TCB');
  });

  it('a VCEK for an older TCB than the report claims: E_EVIDENCE_TCB', async () => {
    const s = await makeSyntheticSevSnp({ vekTcb: { bootloader: 9, tee: 0, snp: 22, microcode: 72 } });
    expect(await outcome(s)).toBe('E_EVIDENCE_TCB');
  });

  it('a VCEK for another chip (hwID differs from CHIP_ID): E_EVIDENCE_TCB', async () => {
    const s = await makeSyntheticSevSnp({ vekHwId: new Uint8Array(64).fill(9) });
    expect(await outcome(s)).toBe('E_EVIDENCE_TCB');
  });

  it('a revoked VCEK on the ARK-signed CRL: E_EVIDENCE_REVOKED; a CRL from another ARK: E_EVIDENCE_COLLATERAL', async () => {
    const s = await makeSyntheticSevSnp({ revokeVek: true });
    expect(await outcome(s)).toBe('ACCEPTED');
    expect(await outcome(s, { crl: true })).toBe('E_EVIDENCE_REVOKED');
    const other = await makeSyntheticSevSnp();
    expect(await outcome({ ...s, crlDer: other.crlDer, report: s.report }, { crl: true })).toBe(
      'E_EVIDENCE_COLLATERAL',
    );
  });

  it('a report whose CPUID names another product than its chain: E_EVIDENCE_CHAIN', async () => {
    const s = await makeSyntheticSevSnp({ product: 'Milan' });
    const genoa = await makeSyntheticSevSnp({ product: 'Genoa' });
    // The Genoa report under a chain whose root is named ARK-Milan: the CPUID check refuses it
    // even before the signature (which would fail too).
    expect(await outcome({ ...s, report: genoa.report })).toBe('E_EVIDENCE_CHAIN');
  });

  it('a signed debug guest verifies but the production policy refuses it', async () => {
    const s = await makeSyntheticSevSnp({ policy: 0x30000n | (1n << 19n) });
    const f = await facts(s);
    expect(f.debug).toBe(true);
    const v = evaluateEvidence(f, PRODUCTION_POLICY, { now: s.now });
    expect(v.ok).toBe(false);
  });

  it('a signed migration-agent guest, a VMPL 1 report and a masked chip id are refused by production', async () => {
    for (const o of [{ policy: 0x30000n | (1n << 18n) }, { vmpl: 1 }, { maskChipId: true }]) {
      const s = await makeSyntheticSevSnp(o);
      expect(
        await outcome(s),
        JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
      ).toBe('ACCEPTED');
      expect(evaluateEvidence(await facts(s), PRODUCTION_POLICY, { now: s.now }).ok).toBe(false);
    }
  });

  it('a VLEK-signed report verifies through the ASVK; a VLEK presented for a VCEK report is refused', async () => {
    const s = await makeSyntheticSevSnp({ signingKey: 'vlek' });
    expect(await outcome(s)).toBe('ACCEPTED');
    expect((await facts(s)).extra.cspId).toBe('firn-test-csp');
    const vcek = await makeSyntheticSevSnp();
    expect(await outcome({ ...vcek, vekPem: s.vekPem })).toBe('E_EVIDENCE_CHAIN');
  });

  it('a report version 2 (no CPUID) and version 3 verify', async () => {
    for (const version of [2, 3])
      expect(await outcome(await makeSyntheticSevSnp({ version }))).toBe('ACCEPTED');
  });

  it("an ARK with AMD's name but another key does not anchor a real chain", async () => {
    const s = await makeSyntheticSevSnp();
    const t = await makeSyntheticSevSnp();
    // t's chain under s's ARK (same subject "ARK-Milan", another key): E_EVIDENCE_CHAIN.
    expect(await outcome({ ...t, arkPem: s.arkPem })).toBe('E_EVIDENCE_CHAIN');
  });
});
