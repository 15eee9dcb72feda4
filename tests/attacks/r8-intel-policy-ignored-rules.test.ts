import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { verifyDcapQuote } from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';
import { loadAttestationPolicy } from '../../packages/attestation/src/policy/dcapPolicy.ts';
import { evaluateEvidence } from '../../packages/attestation/src/policy/policy.ts';
import { makeSyntheticTdx } from '../../packages/attestation/test/dcap/syntheticDcap.ts';

// An Intel platform policy whose rule firn does not read is dropped in silence: a mistyped
// accepted_tcb_status leaves firn's default (every status but Revoked), and a restrictive
// platform flag (allow_smt_enabled false) is not enforced. firn's own policy format refuses unknown
// keys for exactly this reason; the Intel format must too (or enforce the rule), so that a host on
// an out-of-date or SMT-enabled platform is not approved by a policy that says otherwise.
const PLATFORM = 'f708b97f-0fb2-4e6b-8b03-8a5bcd1221d3';
const platformFile = (reference: Record<string, unknown>) => ({
  policy_array: [{ environment: { class_id: PLATFORM }, reference }],
});
const cpu = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];

function loadOrCode(json: unknown) {
  try {
    return loadAttestationPolicy(json, 'file');
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return e.code;
  }
}

describe('attack: Intel platform-policy rules that firn drops in silence', () => {
  it('a mistyped accepted_tcb_status is refused, not read as "accept every status but Revoked"', async () => {
    const s = await makeSyntheticTdx({ tcbLevels: [{ comps: cpu, pcesvn: 13, status: 'OutOfDate' }] });
    const facts = await verifyDcapQuote(s.quote, {
      collateral: s.collateral,
      now: s.now,
      roots: [Buffer.from(s.rootPem)],
    });
    const p = loadOrCode(platformFile({ accepted_tcb_stauts: ['UpToDate'], collateral_grace_period: 0 }));
    if (typeof p === 'string') expect(p).toBe('E_INVALID_INPUT');
    else
      expect(
        evaluateEvidence(facts, p, { now: s.now }).ok,
        `the mistyped key was dropped: accepted ${p.acceptedTcbStatuses.join(', ')}`,
      ).toBe(false);
  });

  it('allow_smt_enabled: false is refused as unsupported (firn cannot enforce it), not ignored', () => {
    const p = loadOrCode(platformFile({ accepted_tcb_status: ['UpToDate'], allow_smt_enabled: false }));
    expect(p, 'the policy loaded with its SMT rule dropped').toBe('E_INVALID_INPUT');
  });
});
