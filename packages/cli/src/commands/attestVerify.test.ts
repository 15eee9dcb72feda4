import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { runAttestVerify } from './attestVerify.ts';

const V = (p: string) => sharedPath('vectors', 'attestation', p);
// The shared cases, copied with provenance into packages/attestation/vectors/cases (see its SOURCE.md).
const CASE = (c: string, f: string) =>
  fileURLToPath(new URL(`../../../attestation/vectors/cases/${c}/${f}`, import.meta.url));
const caseArgs = (c: string, collateral = 'collateral.json') => ({
  quote: CASE(c, 'quote.bin'),
  collateral: CASE(c, collateral),
  at: readFileSync(CASE(c, 'now.txt'), 'utf8').trim(),
  root: CASE(c, 'root.pem'),
  policy: CASE(c, 'prod-policy.json'),
});
const dir = mkdtempSync(join(tmpdir(), 'firn-attest-verify-'));
const tmp = (name: string, data: string | Uint8Array) => {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
};
const out = (r: { output: string }) => JSON.parse(r.output) as Record<string, unknown>;

describe('firn attest verify (runAttestVerify)', () => {
  it('SGX v3: prints status, advisories and measurements, exit 0', async () => {
    const r = await runAttestVerify({
      quote: V('phala-dcap-qvl/sgx_quote'),
      collateral: V('phala-dcap-qvl/sgx_quote_collateral.json'),
      at: 1752919277,
    });
    expect(r.exitCode).toBe(0);
    const o = out(r);
    expect(o).toMatchObject({
      teeType: 'sgx',
      quoteVersion: 3,
      status: 'ConfigurationAndSWHardeningNeeded',
      debug: false,
      fmspc: '00a067110000',
    });
    expect(o.advisoryIds).toEqual(['INTEL-SA-00289', 'INTEL-SA-00615']);
    expect(o.mrenclave).toMatch(/^[0-9a-f]{64}$/);
    expect(o.reportData).toMatch(/^[0-9a-f]{128}$/);
  });
  it('TDX v4 given as hex with 0x: UpToDate with MRTD and RTMRs', async () => {
    const hex = `0x${Buffer.from(readFileSync(V('phala-dcap-qvl/tdx_quote'))).toString('hex')}\n`;
    const r = await runAttestVerify({
      quote: tmp('tdx.hex', hex),
      collateral: V('phala-dcap-qvl/tdx_quote_collateral.json'),
      at: '1752919234',
    });
    expect(r.exitCode).toBe(0);
    expect(out(r)).toMatchObject({ teeType: 'tdx', quoteVersion: 4, status: 'UpToDate', advisoryIds: [] });
    expect(out(r).rtmr3).toMatch(/^[0-9a-f]{96}$/);
  });
  it('an Intel strict appraisal policy refuses ConfigurationAndSWHardeningNeeded', async () => {
    const r = await runAttestVerify({
      quote: V('phala-dcap-qvl/sgx_quote'),
      collateral: V('phala-dcap-qvl/sgx_quote_collateral.json'),
      at: 1752919277,
      policy: V('intel-dcap-appraisal-policies/sgx_platform_policy_strict.json'),
    });
    expect(r.exitCode).not.toBe(0);
    expect((out(r).error as { code: string }).code).toBe('E_EVIDENCE_TCB');
  });
  it('expired collateral, a wrong root, a tampered quote and the v5 unsupported TCB all fail with an error object', async () => {
    const sgx = {
      quote: V('phala-dcap-qvl/sgx_quote'),
      collateral: V('phala-dcap-qvl/sgx_quote_collateral.json'),
    };
    const cases = [
      [{ ...sgx, at: 1752919277 + 3600 }, 'E_EVIDENCE_EXPIRED'],
      [
        { ...sgx, at: 1752919277, root: V('intel-qvl-sampledata/sgx/trustedRootCaCert.pem') },
        'E_EVIDENCE_CHAIN',
      ],
      [
        {
          ...sgx,
          at: 1752919277,
          quote: tmp(
            'bad.dat',
            (() => {
              const b = readFileSync(sgx.quote);
              b[100]! ^= 1;
              return b;
            })(),
          ),
        },
        'E_EVIDENCE_SIGNATURE',
      ],
      [
        {
          quote: V('phala-dcap-qvl/tdx_quote_outdated'),
          collateral: V('phala-dcap-qvl/tdx_quote_outdated_collateral.json'),
          at: 1773997200,
        },
        'E_EVIDENCE_TCB',
      ],
      [{ ...sgx, at: 'yesterday' }, 'E_INVALID_INPUT'],
      [{ ...sgx, at: 1, quote: join(dir, 'missing') }, 'E_NOT_FOUND'],
    ] as const;
    for (const [opts, code] of cases) {
      const r = await runAttestVerify(opts);
      expect(r.exitCode, code).not.toBe(0);
      expect((out(r).error as { code: string }).code, JSON.stringify(opts)).toBe(code);
    }
  });
  it('Intel QVL sample SGX quote with --root (test root): UpToDate', async () => {
    const r = await runAttestVerify({
      quote: V('intel-qvl-sampledata/sgx/quote.dat'),
      collateral: V('intel-qvl-sampledata/sgx/collateral.dcap-qvl.json'),
      root: V('intel-qvl-sampledata/sgx/trustedRootCaCert.pem'),
      at: 1735689600,
    });
    expect(r.exitCode).toBe(0);
    expect(out(r).status).toBe('UpToDate');
  });
  describe('shared cases', () => {
    it('qe-vendor-id: refused, the quote header names a QE vendor that is not Intel', async () => {
      const r = await runAttestVerify(caseArgs('qe-vendor-id'));
      expect(r.exitCode).toBe(1);
      expect(out(r).error).toMatchObject({
        code: 'E_EVIDENCE_MALFORMED',
        message: expect.stringContaining('939a7233f79c4ca9940a0db3957f0607'),
      });
    });
    it('tcb-level-order: UpToDate for both JSON orders of the same signed levels', async () => {
      for (const col of ['collateral.json', 'collateral-levels-sorted.json']) {
        const r = await runAttestVerify(caseArgs('tcb-level-order', col));
        expect(r.exitCode, col).toBe(0);
        expect(out(r).status, col).toBe('UpToDate');
      }
    });
  });
});
