import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { verifyDcapQuote } from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';
import { loadAttestationPolicy } from '../../packages/attestation/src/policy/dcapPolicy.ts';
import { evaluateEvidence } from '../../packages/attestation/src/policy/policy.ts';
import { makeSyntheticTdx, type SyntheticDcap } from '../../packages/attestation/test/dcap/syntheticDcap.ts';

// `firn verifier start --policy FILE` and every client command accept Intel's appraisal-policy
// files (loadAttestationPolicy). Intel's appraisal engine judges each class by its own policy:
// the platform TCB by the platform policy (its TCB status, and the expiry of the platform's
// collateral against that policy's collateral_grace_period), the TD QE by the QE-identity policy,
// and it refuses outright (overall_appraisal_result false) when no platform policy is present.
// firn flattens the classes into one AttestationPolicy, so a malicious host on an out-of-date
// platform, or relaying collateral past what the platform policy allows, is approved.
const POLICIES = '/work/shared/vectors/attestation/intel-dcap-appraisal-policies';
const intel = (name: string) => JSON.parse(readFileSync(`${POLICIES}/${name}`, 'utf8'));
const PLATFORM = 'f708b97f-0fb2-4e6b-8b03-8a5bcd1221d3';
const TDQE = '3769258c-75e6-4bc7-8d72-d2b0e224cad2';

const verify = (s: SyntheticDcap, now = s.now) =>
  verifyDcapQuote(s.quote, { collateral: s.collateral, now, roots: [Buffer.from(s.rootPem)] });
const cpu = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];

describe('attack: an Intel tenant TD policy without a platform policy', () => {
  it("Intel's tenant_td_policy.json alone does not accept an OutOfDate platform", async () => {
    // The host's platform is behind Intel's latest TCB recovery: its only level is OutOfDate.
    const s = await makeSyntheticTdx({ tcbLevels: [{ comps: cpu, pcesvn: 13, status: 'OutOfDate' }] });
    const facts = await verify(s);
    expect(facts.tcbStatus).toBe('OutOfDate');
    const policy = loadAttestationPolicy(intel('tenant_td_policy.json'), 'tenant');
    // The TD itself matches the tenant rules (SEPT_VE_DISABLE set): only the platform is at issue.
    const v = evaluateEvidence(facts, policy, { now: s.now });
    expect(
      v.ok,
      `accepted TCB statuses without a platform policy: ${policy.acceptedTcbStatuses.join(', ')}`,
    ).toBe(false);
  });
});

describe('attack: a platform policy with no collateral grace, merged with a lenient TD QE policy', () => {
  // A strict platform (no grace) and a QE identity policy tolerating 60 days: the platform's
  // collateral (TCB info, PCK CRL) must not be accepted past its nextUpdate.
  const file = {
    policy_array: [
      {
        environment: { class_id: PLATFORM },
        reference: { accepted_tcb_status: ['UpToDate'], collateral_grace_period: 0 },
      },
      {
        environment: { class_id: TDQE },
        reference: { accepted_tcb_status: ['UpToDate'], collateral_grace_period: 5184000 },
      },
    ],
  };
  it('control: the same platform with current collateral is accepted', async () => {
    const s = await makeSyntheticTdx();
    const v = evaluateEvidence(await verify(s), loadAttestationPolicy(file, 'mixed'), { now: s.now });
    expect(v.ok).toBe(true);
  });
  it('TCB info and PCK CRL expired 30 days ago are refused by the platform policy (grace 0)', async () => {
    const s = await makeSyntheticTdx();
    const now = Date.parse('2025-02-01T00:00:00Z') / 1000 + 30 * 86400; // collateral nextUpdate + 30 days
    const facts = await verify(s, now);
    expect(facts.extra.collateralExpired).toBe(true);
    const policy = loadAttestationPolicy(file, 'mixed');
    const v = evaluateEvidence(facts, policy, { now });
    expect(v.ok, `collateral grace applied to every piece: ${policy.collateralGraceSeconds} s`).toBe(false);
  });
});

describe('attack: per-class minimum evaluation numbers merged in file order', () => {
  // The TD QE policy wants QE identity from TCB evaluation 18 on; the platform policy wants 17.
  // Intel judges each class by its own number, whatever the order of policy_array. firn keeps the
  // last one read, so listing the QE policy first lets a host relay a QE identity of evaluation 17.
  const qe = {
    environment: { class_id: TDQE },
    reference: { accepted_tcb_status: ['UpToDate'], min_eval_num: 18 },
  };
  const platform = {
    environment: { class_id: PLATFORM },
    reference: { accepted_tcb_status: ['UpToDate'], min_eval_num: 17 },
  };
  it('control: platform first, the QE identity of evaluation 17 is refused', async () => {
    const s = await makeSyntheticTdx(); // TCB info and QE identity of evaluation 17
    const p = loadAttestationPolicy({ policy_array: [platform, qe] }, 'ordered');
    expect(evaluateEvidence(await verify(s), p, { now: s.now }).ok).toBe(false);
  });
  it('QE policy first: the QE identity of evaluation 17 is still refused', async () => {
    const s = await makeSyntheticTdx();
    const p = loadAttestationPolicy({ policy_array: [qe, platform] }, 'reordered');
    expect(
      evaluateEvidence(await verify(s), p, { now: s.now }).ok,
      `min evaluation number kept: ${p.minTcbEvaluationDataNumber}`,
    ).toBe(false);
  });
});
