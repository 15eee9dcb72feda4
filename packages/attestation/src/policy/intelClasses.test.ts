import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { makeSyntheticTdx, type SyntheticDcap } from '../../test/dcap/syntheticDcap.ts';
import { verifyDcapQuote } from '../dcap/verifyDcapQuote.ts';
import { loadAttestationPolicy } from './dcapPolicy.ts';
import { evaluateEvidence } from './policy.ts';

// Intel's appraisal classes judged each by its own rules on its own facts (decision 1766).
const PLATFORM = 'f708b97f-0fb2-4e6b-8b03-8a5bcd1221d3';
const SGX_PLATFORM = '3123ec35-8d38-4ea5-87a5-d6c48b567570';
const TDQE = '3769258c-75e6-4bc7-8d72-d2b0e224cad2';
const TD = '45b734fc-aa4e-4c3d-ad28-e43d08880e68';
const cls = (class_id: string, reference: Record<string, unknown>) => ({
  environment: { class_id },
  reference,
});
const verify = (s: SyntheticDcap, now = s.now) =>
  verifyDcapQuote(s.quote, { collateral: s.collateral, now, roots: [Buffer.from(s.rootPem)] });
const reasons = (v: ReturnType<typeof evaluateEvidence>) => (v.ok ? [] : v.reasons.map((r) => r.message));
const loadError = (json: unknown): string => {
  try {
    loadAttestationPolicy(json, 'policy.json');
  } catch (e) {
    if (isFirnError(e) && e.code === 'E_INVALID_INPUT') return e.message;
    throw e;
  }
  return 'loaded';
};
const cpu = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
const lenient = ['UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'OutOfDate'];

describe('Intel classes: the TD QE class on its own facts', () => {
  // The QE at ISVSVN 3 matches the QE identity's OutOfDate level, dated 2023-01-01 and carrying
  // INTEL-SA-00999; the platform itself is UpToDate.
  const qeBehind = () => makeSyntheticTdx({ qeIsvSvn: 3 });
  const platform = cls(PLATFORM, { accepted_tcb_status: lenient, collateral_grace_period: 0 });

  it("the QE class's platform_grace_period counts from the QE level's own tcbDate", async () => {
    const s = await qeBehind();
    const f = await verify(s);
    expect([f.extra.qeTcbStatus, f.extra.qeTcbDate]).toEqual(['OutOfDate', '2023-01-01T00:00:00Z']);
    const qe = (grace: number) =>
      cls(TDQE, { accepted_tcb_status: lenient, platform_grace_period: grace, collateral_grace_period: 0 });
    const since = s.now - Date.parse('2023-01-01T00:00:00Z') / 1000;
    const under = (grace: number) =>
      reasons(
        evaluateEvidence(f, loadAttestationPolicy({ policy_array: [platform, qe(grace)] }), { now: s.now }),
      );
    expect(under(since - 1)).toEqual([
      'TD QE identity has been out of date for longer than its platform grace period',
    ]);
    expect(under(since)).toEqual([]);
  });

  it("the QE class's rejected advisories judge the QE's advisories, the platform's judge the platform's", async () => {
    const s = await qeBehind();
    const f = await verify(s);
    const sa = ['INTEL-SA-00999'];
    const qe = (ids: string[]) => cls(TDQE, { accepted_tcb_status: lenient, rejected_advisory_ids: ids });
    const platformRejecting = cls(PLATFORM, { accepted_tcb_status: lenient, rejected_advisory_ids: sa });
    const run = (arr: unknown[]) =>
      reasons(evaluateEvidence(f, loadAttestationPolicy({ policy_array: arr }), { now: s.now }));
    expect(run([platform, qe(sa)])).toEqual(['TD QE identity advisory INTEL-SA-00999 is rejected by policy']);
    // The advisory is the QE's, not the platform's: the platform class does not refuse it.
    expect(run([platformRejecting, qe([])])).toEqual([]);
  });

  it("with a QE class, the platform's grace judges the platform's own status, not the QE's", async () => {
    const s = await qeBehind();
    const f = await verify(s);
    expect([f.tcbStatus, f.extra.platformClassTcbStatus]).toEqual(['OutOfDate', 'UpToDate']);
    const p = loadAttestationPolicy({
      policy_array: [
        cls(PLATFORM, {
          accepted_tcb_status: lenient,
          platform_grace_period: 86400,
          collateral_grace_period: 0,
        }),
        cls(TDQE, { accepted_tcb_status: lenient, platform_grace_period: 1e9, collateral_grace_period: 0 }),
      ],
    });
    expect(reasons(evaluateEvidence(f, p, { now: s.now }))).toEqual([]);
  });

  it("without a QE class the grace counts from the earlier of the platform's and the QE's level dates", async () => {
    // Platform OutOfDate at a level dated 2024-12-01; the QE OutOfDate at its 2023-01-01 level.
    const s = await makeSyntheticTdx({
      qeIsvSvn: 3,
      tcbLevels: [{ comps: cpu, pcesvn: 13, status: 'OutOfDate', tcbDate: '2024-12-01T00:00:00Z' }],
    });
    const f = await verify(s);
    const p = loadAttestationPolicy({
      policy_array: [
        cls(PLATFORM, {
          accepted_tcb_status: lenient,
          platform_grace_period: 90 * 86400,
          collateral_grace_period: 0,
        }),
      ],
    });
    expect(reasons(evaluateEvidence(f, p, { now: s.now }))).toEqual([
      'platform has been out of date for longer than its platform grace period',
    ]);
  });

  it("without a QE class the platform class covers the QE, as Intel's SGX platform class does", async () => {
    const s = await qeBehind();
    const f = await verify(s);
    const p = loadAttestationPolicy({
      policy_array: [
        cls(PLATFORM, { accepted_tcb_status: lenient, rejected_advisory_ids: ['INTEL-SA-00999'] }),
      ],
    });
    expect(reasons(evaluateEvidence(f, p, { now: s.now }))).toEqual([
      'platform advisory INTEL-SA-00999 is rejected by policy',
    ]);
  });
});

describe('Intel classes: combined statuses are accepted when each of their parts is listed', () => {
  it('OutOfDateConfigurationNeeded passes a list with OutOfDate and ConfigurationNeeded, not one without', async () => {
    const s = await makeSyntheticTdx({
      tcbLevels: [{ comps: cpu, pcesvn: 13, status: 'OutOfDateConfigurationNeeded' }],
    });
    const f = await verify(s);
    expect(f.tcbStatus).toBe('OutOfDateConfigurationNeeded');
    const under = (accepted: string[]) =>
      evaluateEvidence(
        f,
        loadAttestationPolicy({
          policy_array: [
            cls(PLATFORM, { accepted_tcb_status: accepted }),
            cls(TDQE, { accepted_tcb_status: accepted }),
          ],
        }),
        { now: s.now },
      ).ok;
    expect(under(lenient)).toBe(true);
    expect(under(['UpToDate', 'OutOfDate'])).toBe(false);
  });
});

describe('Intel classes: rules firn cannot honour are refused at load, naming the file and the key', () => {
  const ok = { accepted_tcb_status: ['UpToDate'] };
  it.each([
    ['a tenant class alone', [cls(TD, { tdx_attributes: '0000000010000000' })], /no platform class/],
    [
      'a misspelt key in the QE class',
      [cls(PLATFORM, ok), cls(TDQE, { ...ok, min_eval_nmu: 17 })],
      /"min_eval_nmu"/,
    ],
    ['allow_cached_keys false', [cls(PLATFORM, { ...ok, allow_cached_keys: false })], /allow_cached_keys/],
    [
      'allow_dynamic_platform false',
      [cls(PLATFORM, { ...ok, allow_dynamic_platform: false })],
      /allow_dynamic_platform/,
    ],
    [
      'accepted_platform_provider_ids',
      [cls(PLATFORM, { ...ok, accepted_platform_provider_ids: ['x'] })],
      /accepted_platform_provider_ids/,
    ],
    [
      'min_tcb_level_date',
      [cls(PLATFORM, { ...ok, min_tcb_level_date: '2024-01-01T00:00:00Z' })],
      /min_tcb_level_date/,
    ],
    [
      'no accepted_tcb_status',
      [cls(PLATFORM, { collateral_grace_period: 0 })],
      /accepted_tcb_status is missing/,
    ],
    [
      'a list without UpToDate',
      [cls(PLATFORM, { accepted_tcb_status: ['OutOfDate'] })],
      /must include UpToDate/,
    ],
    [
      'an unknown status name',
      [cls(PLATFORM, { accepted_tcb_status: ['UpToDate', 'OutOfDat'] })],
      /"OutOfDat"/,
    ],
    [
      'platform_grace_period without collateral_grace_period 0',
      [cls(PLATFORM, { accepted_tcb_status: lenient, platform_grace_period: 60 })],
      /needs collateral_grace_period 0/,
    ],
    [
      'platform_grace_period without OutOfDate',
      [cls(PLATFORM, { ...ok, platform_grace_period: 60, collateral_grace_period: 0 })],
      /needs OutOfDate/,
    ],
    [
      'min_eval_num with a grace period',
      [cls(PLATFORM, { ...ok, min_eval_num: 17, collateral_grace_period: 0 })],
      /min_eval_num excludes/,
    ],
    ['a TD QE class with an SGX platform', [cls(SGX_PLATFORM, ok), cls(TDQE, ok)], /TDX platform class/],
    [
      'two platform classes',
      [cls(PLATFORM, ok), cls(PLATFORM, { accepted_tcb_status: lenient })],
      /second platform class/,
    ],
    [
      'an SGX key in a TD class',
      [cls(PLATFORM, ok), cls(TD, { sgx_mrenclave: '00'.repeat(32) })],
      /"sgx_mrenclave"/,
    ],
  ])('%s', (_what, arr, message) => {
    const m = loadError({ policy_array: arr });
    expect(m).toMatch(message);
    expect(m).toMatch(/policy\.json/);
  });
  it("permissive flags set to true load (they restrict nothing), as in Intel's sample files", () => {
    expect(
      loadError({
        policy_array: [
          cls(PLATFORM, {
            ...ok,
            allow_dynamic_plaform: true,
            allow_smt_enabled: true,
            allow_cached_keys: true,
          }),
        ],
      }),
    ).toBe('loaded');
  });
});
