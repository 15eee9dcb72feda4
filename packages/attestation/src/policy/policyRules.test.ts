import { readFileSync } from 'node:fs';
import { bytesToHex, sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from '../appraiseEvidence.ts';
import { makeSyntheticSgx, type SyntheticDcap } from '../../test/dcap/syntheticDcap.ts';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { verifyDcapQuote } from '../dcap/verifyDcapQuote.ts';
import type { VerifiedEvidence } from '../types.ts';
import { loadAttestationPolicy } from './dcapPolicy.ts';
import { type AttestationPolicy, evaluateEvidence, PRODUCTION_POLICY, parsePolicy } from './policy.ts';

// Every rule of AttestationPolicy (and its DCAP section) with one test that it refuses and one
// that it accepts, on facts from real or synthetic signed quotes (never hand-made facts).
const sgx = () =>
  verifyDcapQuote(vector(VECTORS.sgx.quote), {
    collateral: vectorJson(VECTORS.sgx.collateral),
    now: VECTORS.sgx.now,
  });
const NOW: number = VECTORS.sgx.now;
// The real SGX quote is ConfigurationAndSWHardeningNeeded with INTEL-SA-00289 and INTEL-SA-00615.
const base: AttestationPolicy = {
  ...PRODUCTION_POLICY,
  name: 'rules',
  acceptedTcbStatuses: ['UpToDate', 'ConfigurationAndSWHardeningNeeded'],
};
const verdict = (f: VerifiedEvidence, p: Partial<AttestationPolicy>, now = NOW) =>
  evaluateEvidence(f, { ...base, ...p }, { now });
const messages = (f: VerifiedEvidence, p: Partial<AttestationPolicy>, now = NOW) => {
  const v = verdict(f, p, now);
  return v.ok ? [] : v.reasons.map((r) => `${r.code}: ${r.message}`);
};

describe('policy rules on the real SGX quote', () => {
  it('the base policy accepts it (the control for every refusal below)', async () => {
    expect(messages(await sgx(), {})).toEqual([]);
  });
  it('acceptedTcbStatuses: refuses a status not listed, accepts a listed one', async () => {
    const f = await sgx();
    expect(messages(f, { acceptedTcbStatuses: ['UpToDate'] })).toEqual([
      'E_EVIDENCE_TCB: TCB status ConfigurationAndSWHardeningNeeded is not accepted by policy rules',
    ]);
    expect(messages(f, { acceptedTcbStatuses: ['ConfigurationAndSWHardeningNeeded'] })).toEqual([]);
  });
  it('measurementAllowList: refuses a digest not listed, accepts the listed one (any case)', async () => {
    const f = await sgx();
    const m = bytesToHex(f.measurement).slice(2);
    expect(messages(f, { measurementAllowList: ['00'.repeat(32)] }).join()).toMatch(
      /measurement .* is not on the policy's allow-list/,
    );
    expect(
      messages(f, { measurementAllowList: ['00'.repeat(32), `0x${m}`.toUpperCase().replace('0X', '0x')] }),
    ).toEqual([]);
    expect(messages(f, { measurementAllowList: [`0x${m}`] })).toEqual([]);
    expect(messages(f, { measurementAllowList: [m] })).toEqual([]);
  });
  it('minTcbEvaluationDataNumber: refuses collateral under the minimum, accepts at it', async () => {
    const f = await sgx();
    const n = f.tcbEvaluationDataNumber!;
    expect(n).toBeGreaterThan(0);
    expect(messages(f, { minTcbEvaluationDataNumber: n + 1 })).toEqual([
      `E_EVIDENCE_COLLATERAL: TCB evaluation data number ${n} is under ${n + 1}`,
    ]);
    expect(messages(f, { minTcbEvaluationDataNumber: n })).toEqual([]);
  });
  it('rejectedAdvisoryIds: refuses an advisory the platform has, accepts others', async () => {
    const f = await sgx();
    expect(messages(f, { rejectedAdvisoryIds: ['INTEL-SA-00615'] })).toEqual([
      'E_POLICY_REJECTED: advisory INTEL-SA-00615 is rejected by policy',
    ]);
    expect(messages(f, { rejectedAdvisoryIds: ['INTEL-SA-00617'] })).toEqual([]);
  });
  it('maxEvidenceAgeSeconds: refuses collateral older than allowed, accepts younger', async () => {
    const f = await sgx();
    const age = NOW - f.collateralIssuedAt!;
    expect(age).toBeGreaterThan(0);
    expect(messages(f, { maxEvidenceAgeSeconds: age - 1 })).toEqual([
      'E_EVIDENCE_EXPIRED: collateral is older than the policy allows',
    ]);
    expect(messages(f, { maxEvidenceAgeSeconds: age })).toEqual([]);
  });
  it('collateralGraceSeconds: refuses collateral past nextUpdate + grace, accepts inside it', async () => {
    const f = await sgx();
    const after = f.collateralNextUpdate! + 3600;
    expect(messages(f, {}, after)).toEqual([
      'E_EVIDENCE_EXPIRED: collateral is past its nextUpdate and the grace period',
    ]);
    expect(messages(f, { collateralGraceSeconds: 3600 }, after)).toEqual([]);
  });
  it('allowSimulated: a production policy refuses the simulated TEE (see simulatedVerifier.test.ts); real facts pass', async () => {
    expect(verdict(await sgx(), { allowSimulated: false }).ok).toBe(true);
  });
});

const runSynthetic = (s: SyntheticDcap) =>
  verifyDcapQuote(s.quote, { collateral: s.collateral, now: s.now, roots: [Buffer.from(s.rootPem)] });

describe('DCAP rules (Intel appraisal-policy fields)', () => {
  // An OutOfDate platform whose own TCB level is dated 2024-03-13; the newest level, 2024-11-13.
  const outOfDate = async () => {
    const cpu = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
    const s = await makeSyntheticSgx({
      tcbLevels: [
        {
          comps: cpu.map((v, i) => (i === 0 ? v + 1 : v)),
          pcesvn: 13,
          status: 'UpToDate',
          tcbDate: '2024-11-13T00:00:00Z',
        },
        { comps: cpu, pcesvn: 13, status: 'OutOfDate', advisoryIDs: ['INTEL-SA-00828'] },
      ],
    });
    return { s, f: await runSynthetic(s) };
  };
  const oodPolicy = { acceptedTcbStatuses: ['UpToDate' as const, 'OutOfDate' as const] };
  it("platformGraceSeconds: counts from the platform's own level's tcbDate, not the newest level's", async () => {
    const { s, f } = await outOfDate();
    expect(f.tcbStatus).toBe('OutOfDate');
    const recovery = Date.parse('2024-03-13T00:00:00Z') / 1000;
    const sinceRecovery = s.now - recovery;
    expect(messages(f, { ...oodPolicy, dcap: { platformGraceSeconds: sinceRecovery - 1 } }, s.now)).toEqual([
      'E_EVIDENCE_TCB: platform has been out of date for longer than the platform grace period',
    ]);
    expect(messages(f, { ...oodPolicy, dcap: { platformGraceSeconds: sinceRecovery } }, s.now)).toEqual([]);
  });
  it('qeAcceptedTcbStatuses: refuses a QE status not listed, accepts a listed one', async () => {
    const s = await makeSyntheticSgx({ qeIsvSvn: 3 });
    const f = await runSynthetic(s);
    expect(f.extra.qeTcbStatus).toBe('OutOfDate');
    const p = { acceptedTcbStatuses: ['OutOfDate' as const] };
    expect(messages(f, { ...p, dcap: { qeAcceptedTcbStatuses: ['UpToDate'] } }, s.now)).toEqual([
      'E_EVIDENCE_TCB: quoting enclave TCB status OutOfDate is not accepted',
    ]);
    expect(messages(f, { ...p, dcap: { qeAcceptedTcbStatuses: ['UpToDate', 'OutOfDate'] } }, s.now)).toEqual(
      [],
    );
  });
  it('measurements (tenant registers, masked): refuses another MRENCLAVE, accepts its own', async () => {
    const f = await sgx();
    const own = f.measurements.mrenclave!;
    expect(messages(f, { dcap: { measurements: { mrenclave: { value: '00'.repeat(32) } } } })).toEqual([
      'E_POLICY_REJECTED: mrenclave does not match the policy',
    ]);
    expect(messages(f, { dcap: { measurements: { mrenclave: { value: own } } } })).toEqual([]);
    // A zero mask accepts any value.
    expect(
      messages(f, {
        dcap: { measurements: { mrenclave: { value: '00'.repeat(32), mask: '00'.repeat(32) } } },
      }),
    ).toEqual([]);
  });
  it('minIsvSvn and teeType: refuse above the enclave ISVSVN and for the other TEE, accept otherwise', async () => {
    const f = await sgx();
    const svn = Number(f.measurements.isvSvn);
    expect(messages(f, { dcap: { minIsvSvn: svn + 1 } })).toEqual([
      `E_POLICY_REJECTED: ISVSVN is under ${svn + 1}`,
    ]);
    expect(messages(f, { dcap: { minIsvSvn: svn, teeType: 'sgx' } })).toEqual([]);
    expect(messages(f, { dcap: { teeType: 'tdx' } })).toEqual([
      'E_POLICY_REJECTED: policy is for tdx, evidence is sgx',
    ]);
  });
  it('a firn policy file carries the dcap section; bad values are refused', () => {
    expect(parsePolicy({ dcap: { platformGraceSeconds: 60, teeType: 'sgx' } }).dcap).toEqual({
      platformGraceSeconds: 60,
      teeType: 'sgx',
    });
    for (const dcap of [
      { platformGraceSeconds: -1 },
      { teeType: 'sev' },
      { measurements: { x: { value: 'zz' } } },
      { nope: 1 },
    ])
      expect(() => parsePolicy({ dcap })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }));
  });
});

describe('loadAttestationPolicy: one loader for the CLI, the verifier daemon and the SDK', () => {
  const intel = (f: string) =>
    JSON.parse(
      readFileSync(sharedPath('vectors', 'attestation', 'intel-dcap-appraisal-policies', f), 'utf8'),
    );
  it("loads Intel's files into one AttestationPolicy whose rules evaluateEvidence applies", async () => {
    const f = await sgx();
    const rejected = loadAttestationPolicy(intel('sgx_platform_policy_rejected_id.json'));
    expect(rejected.dcap?.platformClass?.rejectedAdvisoryIds).toEqual(['INTEL-SA-00617']);
    expect(rejected.dcap?.teeType).toBe('sgx');
    expect(rejected.gpu).toEqual(PRODUCTION_POLICY.gpu);
    const grace = loadAttestationPolicy(intel('sgx_platform_policy_platform_grace_period.json'));
    expect(grace.dcap?.platformClass?.platformGraceSeconds).toBe(7776000);
    const strict = loadAttestationPolicy(intel('sgx_platform_policy_strict.json'), 'strict');
    expect(evaluateEvidence(f, strict, { now: NOW }).ok).toBe(false);
    const tdxOnly = loadAttestationPolicy(intel('tdx_platform_policy_strict.json'));
    const v = evaluateEvidence(f, tdxOnly, { now: NOW });
    expect(!v.ok && v.reasons.map((r) => r.message)).toContain('policy is for tdx, evidence is sgx');
  });
  it("loads firn's own JSON too, and refuses what is neither", () => {
    const own = loadAttestationPolicy({ name: 'x', acceptedTcbStatuses: ['UpToDate'] });
    expect(own.name).toBe('x');
    // Saying nothing about GPUs does not loosen them: the production GPU rules apply.
    expect(own.gpu).toEqual(PRODUCTION_POLICY.gpu);
    const gpu = {
      required: 2,
      requireMeasurementsMatch: true,
      allowRevocationUnchecked: false,
      allowSimulated: false,
    };
    expect(loadAttestationPolicy({ gpu }).gpu).toEqual(gpu);
    expect(loadAttestationPolicy({ allowSimulated: true }).gpu).toBeUndefined();
    for (const bad of [
      { ...gpu, requiredSwitches: -1 },
      { ...gpu, revocationGraceSeconds: 1e9 },
      { ...gpu, extra: 1 },
    ])
      expect(() => loadAttestationPolicy({ gpu: bad })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_INPUT' }),
      );
    expect(() => loadAttestationPolicy({ policy_array: [] })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
    expect(() => loadAttestationPolicy('production')).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
  });
  it("an Intel file applies through appraiseEvidence (the daemon's and the SDK's path)", async () => {
    const dir = sharedPath('vectors', 'attestation', 'phala-dcap-qvl');
    const nonce = new Uint8Array(32).fill(7);
    const bundle = {
      version: 1,
      teeType: 'sgx',
      quote: bytesToHex(readFileSync(`${dir}/sgx_quote`)),
      collateral: JSON.parse(readFileSync(`${dir}/sgx_quote_collateral.json`, 'utf8')),
      nonce: bytesToHex(nonce),
      enclaveAddress: `0x${'11'.repeat(20)}`,
      kemPublicKey: `0x${'22'.repeat(32)}`,
    };
    const run = async (file: string) => {
      const a = await appraiseEvidence(bundle, {
        now: NOW,
        policy: loadAttestationPolicy(intel(file)),
        expectedNonce: nonce,
      });
      return a.ok ? [] : a.reasons.map((r) => r.message);
    };
    // The captured quote binds other report data than firn's, so binding is always refused; the
    // Intel rule is what differs between the files.
    const tdx = await run('tdx_platform_policy_strict.json');
    expect(tdx).toContain('policy is for tdx, evidence is sgx');
    expect(tdx.join()).toMatch(/report data does not bind/);
    const sgxStrict = await run('sgx_platform_policy_strict.json');
    expect(sgxStrict).not.toContain('policy is for tdx, evidence is sgx');
    expect(sgxStrict.join()).toMatch(/TCB status ConfigurationAndSWHardeningNeeded is not accepted/);
  });
});
