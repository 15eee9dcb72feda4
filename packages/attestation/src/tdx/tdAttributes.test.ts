import { bytesToHex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { makeSyntheticTdx, type SyntheticDcap } from '../../test/dcap/syntheticDcap.ts';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { verifyDcapQuote } from '../dcap/verifyDcapQuote.ts';
import { evaluateEvidence, PRODUCTION_POLICY, parsePolicy } from '../policy/policy.ts';
import type { AttestationPolicy } from '../policy/policy.ts';
import { parseTdAttributes } from './tdAttributes.ts';

const run = (s: SyntheticDcap) =>
  verifyDcapQuote(s.quote, { collateral: s.collateral, now: s.now, roots: [Buffer.from(s.rootPem)] });
const reasons = async (s: SyntheticDcap, policy: AttestationPolicy = PRODUCTION_POLICY) => {
  const v = evaluateEvidence(await run(s), policy, { now: s.now });
  return v.ok ? [] : v.reasons.map((r) => r.message);
};
// TD ATTRIBUTES as report bytes (little-endian u64): byte 3 bit 4 = bit 28 SEPT_VE_DISABLE.
const SEPT = '0000001000000000';

describe('parseTdAttributes', () => {
  it('decodes DEBUG, SEPT_VE_DISABLE, PKS, KL, PERFMON and names reserved bits', () => {
    expect(parseTdAttributes(SEPT)).toEqual({
      debug: false,
      septVeDisable: true,
      pks: false,
      kl: false,
      perfmon: false,
      reservedBits: [],
    });
    const all = parseTdAttributes('01000050000000c0'); // debug, SEPT, PKS, bit 62, PERFMON
    expect(all).toMatchObject({ debug: true, septVeDisable: true, pks: true, perfmon: true });
    expect(all.reservedBits).toEqual([62]);
    expect(parseTdAttributes('0200002000000000').reservedBits).toEqual([1, 29]);
  });
  it('refuses anything but 8 bytes with a typed error', () => {
    for (const bad of ['00', '00'.repeat(9), 'zz'.repeat(8)])
      expect(() => parseTdAttributes(bad)).toThrow(expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }));
    expect(() => parseTdAttributes(new Uint8Array(7))).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
    );
  });
});

describe('TD attributes and MRSERVICETD (synthetic signed TDX quotes)', () => {
  it('a conforming TD (SEPT_VE_DISABLE set, no reserved bit) verifies and is accepted, v4 and v5', async () => {
    for (const version of [4, 5] as const) {
      const s = await makeSyntheticTdx({ version });
      const f = await run(s);
      expect(f.teeType).toBe('tdx');
      expect(f.tcbStatus).toBe('UpToDate');
      expect(await reasons(s)).toEqual([]);
    }
  });
  it('the same TD in a v4 and a v5 quote (zero MRSERVICETD) has the same measurement', async () => {
    const a = await run(await makeSyntheticTdx({ version: 4 }));
    const b = await run(await makeSyntheticTdx({ version: 5 }));
    expect(bytesToHex(a.measurement)).toBe(bytesToHex(b.measurement));
  });
  it('SEPT_VE_DISABLE clear: refused by default, accepted by a policy that opts in', async () => {
    const s = await makeSyntheticTdx({ tdAttributes: '0000000000000000' });
    expect(await reasons(s)).toEqual(['TD attribute SEPT_VE_DISABLE is not set']);
    expect(await reasons(s, { ...PRODUCTION_POLICY, tdx: { allowSeptVeEnabled: true } })).toEqual([]);
  });
  it('reserved attribute bits (TUD, SEC, OTHER): refused whatever the policy', async () => {
    for (const attrs of ['0200001000000000', '0001001000000000', '0000003000000000', '0000001001000000']) {
      const s = await makeSyntheticTdx({ tdAttributes: attrs });
      const r = await reasons(s, {
        ...PRODUCTION_POLICY,
        tdx: { allowSeptVeEnabled: true, allowServiceTd: true },
      });
      expect(r.join(), attrs).toMatch(/reserved TD attribute bits are set/);
    }
  });
  it('PKS, KL and PERFMON are allowed', async () => {
    const s = await makeSyntheticTdx({ tdAttributes: '000000d000000080' });
    expect(await reasons(s)).toEqual([]);
  });
  it('DEBUG: verified as debug and refused', async () => {
    const s = await makeSyntheticTdx({ tdAttributes: '0100001000000000' });
    expect((await run(s)).debug).toBe(true);
    expect(await reasons(s)).toEqual(['debug enclaves are not accepted']);
  });
  it('TD attributes and XFAM are part of the attested identity (measurement digest)', async () => {
    const base = await run(await makeSyntheticTdx());
    const noSept = await run(await makeSyntheticTdx({ tdAttributes: '0000000000000000' }));
    const pks = await run(await makeSyntheticTdx({ tdAttributes: '0000005000000000' }));
    const xfam = await run(await makeSyntheticTdx({ xfam: 'e700060000000000' }));
    const digests = [base, noSept, pks, xfam].map((f) => bytesToHex(f.measurement));
    expect(new Set(digests).size).toBe(4);
    // Same MRTD and RTMRs in all four: only the attributes / XFAM differ.
    expect(new Set([base, noSept, pks, xfam].map((f) => f.measurements.mrtd)).size).toBe(1);
  });
  it('MRSERVICETD non-zero: refused by default; opt-in accepts it, with an allow-list, into the identity', async () => {
    const svc = 'ab'.repeat(48);
    const s = await makeSyntheticTdx({ version: 5, mrServiceTd: svc });
    expect(await reasons(s)).toEqual(['the TD is bound to a service TD (MRSERVICETD is not zero)']);
    expect(await reasons(s, { ...PRODUCTION_POLICY, tdx: { allowServiceTd: true } })).toEqual([]);
    expect(
      await reasons(s, { ...PRODUCTION_POLICY, tdx: { allowServiceTd: true, mrServiceTdAllowList: [svc] } }),
    ).toEqual([]);
    const other = {
      ...PRODUCTION_POLICY,
      tdx: { allowServiceTd: true, mrServiceTdAllowList: ['cd'.repeat(48)] },
    };
    expect((await reasons(s, other)).join()).toMatch(/MRSERVICETD .* is not on the policy's allow-list/);
    const plain = await run(await makeSyntheticTdx({ version: 5 }));
    const bound = await run(s);
    expect(bytesToHex(bound.measurement)).not.toBe(bytesToHex(plain.measurement));
  });
  it('a policy file carries the tdx section; unknown keys and bad values are refused', () => {
    expect(parsePolicy({ tdx: { allowSeptVeEnabled: true } }).tdx).toEqual({ allowSeptVeEnabled: true });
    for (const tdx of [
      { allowSeptVe: true },
      { allowServiceTd: 'yes' },
      { mrServiceTdAllowList: ['00'] },
      [],
    ])
      expect(() => parsePolicy({ tdx })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }));
  });
  it('the real TDX quotes (Phala, dstack) set SEPT_VE_DISABLE and pass the TD attribute rules', async () => {
    const f = await verifyDcapQuote(vector(VECTORS.tdx.quote), {
      collateral: vectorJson(VECTORS.tdx.collateral),
      now: VECTORS.tdx.now,
    });
    expect(parseTdAttributes(f.measurements.tdAttributes!).septVeDisable).toBe(true);
    const v = evaluateEvidence(f, PRODUCTION_POLICY, { now: VECTORS.tdx.now });
    expect(v.ok || v.reasons.every((r) => !/TD attribute|MRSERVICETD/.test(r.message))).toBe(true);
  });
});
