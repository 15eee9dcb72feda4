import { readdirSync, readFileSync } from 'node:fs';
import { sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { verifyDcapQuote } from '../dcap/verifyDcapQuote.ts';
import { evaluateDcapEvidence, fromIntelAppraisalPolicy } from './dcapPolicy.ts';

const dir = sharedPath('vectors', 'attestation', 'intel-dcap-appraisal-policies');
const file = (f: string) => JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
const load = (f: string) => fromIntelAppraisalPolicy(file(f), f);
/** A tenant file with a platform class accepting every status but Revoked (Intel needs one). */
const withPlatform = (f: string, platformFile = 'sgx_platform_policy_strict.json') => {
  const platform = file(platformFile).policy_array;
  platform[0].reference.accepted_tcb_status = [
    'UpToDate',
    'SWHardeningNeeded',
    'ConfigurationNeeded',
    'OutOfDate',
  ];
  return fromIntelAppraisalPolicy({ policy_array: [...platform, ...file(f).policy_array] }, f);
};
const sgxFacts = () =>
  verifyDcapQuote(vector(VECTORS.sgx.quote), {
    collateral: vectorJson(VECTORS.sgx.collateral),
    now: VECTORS.sgx.now,
  });
const tdxFacts = () =>
  verifyDcapQuote(vector(VECTORS.tdx.quote), {
    collateral: vectorJson(VECTORS.tdx.collateral),
    now: VECTORS.tdx.now,
  });

describe("Intel's appraisal policies as firn policies", () => {
  it('every example file with a platform class converts; a tenant file alone is refused', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files.length).toBe(13);
    const tenantOnly = ['sgx_enclave_policy.json', 'tenant_td_policy.json'];
    for (const f of files)
      if (tenantOnly.includes(f))
        expect(() => load(f), f).toThrow(
          expect.objectContaining({
            code: 'E_INVALID_INPUT',
            message: expect.stringMatching(/no platform class/),
          }),
        );
      else expect(() => load(f), f).not.toThrow();
  });
  it('strict: only UpToDate, no grace', () => {
    const p = load('sgx_platform_policy_strict.json');
    expect(p.policy.acceptedTcbStatuses).toEqual(['UpToDate']);
    expect(p.policy.collateralGraceSeconds).toBe(0);
    expect(p.dcap.teeType).toBe('sgx');
  });
  it('grace periods, minimum evaluation number and rejected advisories map to their fields', () => {
    expect(load('sgx_platform_policy_collateral_grace_period.json').policy.collateralGraceSeconds).toBe(
      7776000,
    );
    expect(
      load('sgx_platform_policy_platform_grace_period.json').dcap.platformClass?.platformGraceSeconds,
    ).toBe(7776000);
    expect(load('sgx_platform_policy_min_eval_num.json').dcap.platformClass?.minEvalNum).toBe(1);
    const ali = load('alibabacloud_tdx_platform_policy_90C06F000000.json').dcap;
    expect([ali.platformClass?.minEvalNum, ali.qeClass?.minEvalNum]).toEqual([16, 16]);
    const rejected = load('tdx_platform_policy_rejected_id.json').dcap;
    expect(rejected.platformClass?.rejectedAdvisoryIds).toEqual(['INTEL-SA-00617']);
    expect(rejected.qeClass?.rejectedAdvisoryIds).toEqual(['INTEL-SA-00617']);
    // TDRelaunchAdvised is not a TCB status in firn; the TDQE part becomes the QE class. A
    // combined status is accepted when each of its parts is listed, as Intel's engine does.
    const t = load('tdx_platform_policy_collateral_grace_period.json');
    expect(t.policy.acceptedTcbStatuses).not.toContain('TDRelaunchAdvised');
    expect(t.dcap.qeClass?.acceptedTcbStatuses).toEqual([
      'UpToDate',
      'SWHardeningNeeded',
      'ConfigurationNeeded',
      'ConfigurationAndSWHardeningNeeded',
      'OutOfDate',
      'OutOfDateConfigurationNeeded',
    ]);
    // Each class keeps its own collateral grace; the generic check takes the largest.
    expect([t.dcap.platformClass?.collateralGraceSeconds, t.dcap.qeClass?.collateralGraceSeconds]).toEqual([
      7776000, 5184000,
    ]);
    expect(t.policy.collateralGraceSeconds).toBe(7776000);
  });
  it('tenant policies become register rules', () => {
    // Intel writes attributes as big-endian numbers; the quote holds them little-endian.
    expect(
      withPlatform('tenant_td_policy.json', 'tdx_platform_policy_strict.json').dcap.measurements,
    ).toEqual({
      tdAttributes: { value: '0000001000000000', mask: 'ffffffffffffffff' },
    });
    const e = withPlatform('sgx_enclave_policy.json').dcap;
    expect(e.measurements?.attributes).toEqual({
      value: '05000000000000000300000000000000',
      mask: 'fdffffffffff00ff1bffffffffffffff',
    });
    expect(e.minIsvSvn).toBe(0);
  });
  it('evaluates the real SGX quote: strict refuses, the collateral-grace policy refuses its status too, a custom one accepts', async () => {
    const f = await sgxFacts();
    const now = VECTORS.sgx.now;
    const strict = evaluateDcapEvidence(f, load('sgx_platform_policy_strict.json'), { now });
    expect(strict.ok).toBe(false);
    const custom = load('sgx_platform_policy_strict.json');
    custom.policy.acceptedTcbStatuses = ['ConfigurationAndSWHardeningNeeded'];
    expect(evaluateDcapEvidence(f, custom, { now }).ok).toBe(true);
    // Grace: 10 days after nextUpdate is refused at 0 and accepted under the platform class's
    // 90-day grace (the file's collateral_grace_period), which the generic grace follows.
    const later = now + 10 * 86400;
    expect(evaluateDcapEvidence(f, custom, { now: later }).ok).toBe(false);
    custom.policy.collateralGraceSeconds = 7776000;
    expect(evaluateDcapEvidence(f, custom, { now: later }).ok, 'the platform class still says 0').toBe(false);
    custom.dcap.platformClass!.collateralGraceSeconds = 7776000;
    expect(evaluateDcapEvidence(f, custom, { now: later }).ok).toBe(true);
    // A TDX policy on SGX evidence is refused.
    expect(evaluateDcapEvidence(f, { ...custom, dcap: { teeType: 'tdx' } }, { now }).ok).toBe(false);
  });
  it('the tenant TD policy checks SEPT_VE_DISABLE on the real TDX quote', async () => {
    const f = await tdxFacts();
    const p = withPlatform('tenant_td_policy.json', 'tdx_platform_policy_strict.json');
    p.policy.acceptedTcbStatuses = [...p.dcap.platformClass!.acceptedTcbStatuses];
    // This TD's attributes bytes are 0000001000000000: SEPT_VE_DISABLE (bit 28) only, as the policy asks.
    expect(f.measurements.tdAttributes).toBe('0000001000000000');
    expect(evaluateDcapEvidence(f, p, { now: VECTORS.tdx.now }).ok).toBe(true);
    // A debug TD (TUD.DEBUG, bit 0) would differ under the full mask.
    p.dcap.measurements = { tdAttributes: { value: '0100001000000000', mask: 'ffffffffffffffff' } };
    expect(evaluateDcapEvidence(f, p, { now: VECTORS.tdx.now }).ok).toBe(false);
  });
});
