import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { verifyDcapQuote } from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';
import { loadAttestationPolicy } from '../../packages/attestation/src/policy/dcapPolicy.ts';
import { evaluateEvidence } from '../../packages/attestation/src/policy/policy.ts';
import { makeSyntheticSgx } from '../../packages/attestation/test/dcap/syntheticDcap.ts';

// Intel's platform_grace_period (sgx_platform_policy_platform_grace_period.json: 90 days) lets an
// OutOfDate platform pass while its TCB level's date (QVL's tcb_level_date_tag: the tcbDate of the
// level the platform matched) is within the grace period. firn counts the grace from the newest
// level's date instead (extra.latestTcbDate), so a malicious host on a platform left at a 2018 TCB
// level passes for 90 days after every new TCB recovery, years after Intel's engine refuses it.
const POLICY =
  '/work/shared/vectors/attestation/intel-dcap-appraisal-policies/sgx_platform_policy_platform_grace_period.json';
const cpu = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
const higher = cpu.map((v, i) => (i === 1 ? v + 1 : v));

describe("attack: platform grace counted from the newest TCB level instead of the platform's own", () => {
  it('a platform at a 2018 OutOfDate level is refused under a 90-day platform grace period', async () => {
    const s = await makeSyntheticSgx({
      tcbLevels: [
        { comps: higher, pcesvn: 13, status: 'UpToDate', tcbDate: '2024-11-13T00:00:00Z' },
        { comps: cpu, pcesvn: 13, status: 'OutOfDate', tcbDate: '2018-01-04T00:00:00Z' },
      ],
    });
    const facts = await verifyDcapQuote(s.quote, {
      collateral: s.collateral,
      now: s.now, // 2025-01-01T01:00Z: 49 days after the newest level, 7 years after the platform's
      roots: [Buffer.from(s.rootPem)],
    });
    expect(facts.tcbStatus).toBe('OutOfDate');
    expect(facts.extra.tcbDate).toBe('2018-01-04T00:00:00Z');
    const policy = loadAttestationPolicy(JSON.parse(readFileSync(POLICY, 'utf8')), 'grace');
    const v = evaluateEvidence(facts, policy, { now: s.now });
    expect(v.ok, 'a platform out of date since its 2018 level passed the 90-day grace').toBe(false);
  });
});
