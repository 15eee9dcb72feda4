import { readFileSync } from 'node:fs';
import { bytesToHex, FirnError, sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence, refusalOf } from './appraiseEvidence.ts';
import type { CollateralSource } from './collateral/collateralSource.ts';
import { PRODUCTION_POLICY } from './policy/policy.ts';

// A failure of the appraiser's own machinery (a bug, a library's untyped error) is no fact about
// the evidence: E_INTERNAL, never E_EVIDENCE_MALFORMED, so a verifier abstains instead of refusing
// an honest node (decision 1831), while a requester still fails closed.
describe('refusalOf', () => {
  it('keeps a typed error’s code and calls any other failure E_INTERNAL', () => {
    expect(refusalOf(new FirnError('E_EVIDENCE_CHAIN', 'no chain'))).toEqual({
      code: 'E_EVIDENCE_CHAIN',
      message: 'no chain',
    });
    expect(refusalOf(new TypeError("Cannot read properties of undefined (reading 'tcbLevels')"))).toEqual({
      code: 'E_INTERNAL',
      message: "the appraisal failed: Cannot read properties of undefined (reading 'tcbLevels')",
    });
    expect(refusalOf('thrown text').code).toBe('E_INTERNAL');
  });

  it('an appraisal whose own collateral source throws an untyped error is refused E_INTERNAL, not as malformed evidence', async () => {
    const dir = sharedPath('vectors', 'attestation', 'phala-dcap-qvl');
    const nonce = new Uint8Array(32).fill(7);
    const broken: CollateralSource = {
      description: 'a source with a bug',
      collateralFor: async () => {
        throw new TypeError('collateral cache entry is undefined');
      },
    };
    const a = await appraiseEvidence(
      {
        version: 1,
        teeType: 'sgx',
        quote: bytesToHex(readFileSync(`${dir}/sgx_quote`)),
        nonce: bytesToHex(nonce),
        enclaveAddress: `0x${'11'.repeat(20)}`,
        kemPublicKey: `0x${'22'.repeat(32)}`,
      },
      { now: 1752919277, policy: PRODUCTION_POLICY, expectedNonce: nonce, collateralSource: broken },
    );
    expect(a.ok).toBe(false);
    if (a.ok) return;
    expect(a.reasons.map((r) => r.code)).toEqual(['E_INTERNAL']);
  });
});
