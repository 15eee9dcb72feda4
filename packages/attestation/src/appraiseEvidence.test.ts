import { readFileSync } from 'node:fs';
import { bytesToHex, sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from './appraiseEvidence.ts';
import { PRODUCTION_POLICY } from './policy/policy.ts';

/**
 * Real Intel evidence goes through the same appraisal path as simulated evidence: the bundle's
 * TEE type selects the DCAP verifier, the quote verifies against the pinned Intel root, and the
 * policy and binding checks run. The captured quotes bind other report data than firn's, so a
 * full acceptance is not possible here; what this covers is the routing and the refusal reasons.
 */
const dir = sharedPath('vectors', 'attestation', 'phala-dcap-qvl');
const nonce = new Uint8Array(32).fill(7);

function bundle(quoteFile: string, teeType: 'sgx' | 'tdx', collateralFile: string) {
  return {
    version: 1,
    teeType,
    quote: bytesToHex(readFileSync(`${dir}/${quoteFile}`)),
    collateral: JSON.parse(readFileSync(`${dir}/${collateralFile}`, 'utf8')),
    nonce: bytesToHex(nonce),
    enclaveAddress: `0x${'11'.repeat(20)}`,
    kemPublicKey: `0x${'22'.repeat(32)}`,
  };
}

describe('appraiseEvidence with real DCAP evidence', () => {
  it('verifies a real SGX quote and refuses it only for policy and binding reasons', async () => {
    const a = await appraiseEvidence(bundle('sgx_quote', 'sgx', 'sgx_quote_collateral.json'), {
      now: 1752919277,
      policy: PRODUCTION_POLICY,
      expectedNonce: nonce,
    });
    expect(a.ok).toBe(false);
    if (a.ok) return;
    expect(a.facts?.teeType).toBe('sgx');
    expect(a.facts?.tcbStatus).toBe('ConfigurationAndSWHardeningNeeded');
    const codes = a.reasons.map((r) => r.code);
    expect(codes).toContain('E_EVIDENCE_TCB');
    expect(codes).toContain('E_EVIDENCE_BINDING');
  });

  it('verifies a real TDX quote: UpToDate passes the policy, the foreign report data does not bind', async () => {
    const a = await appraiseEvidence(bundle('tdx_quote', 'tdx', 'tdx_quote_collateral.json'), {
      now: 1752919234,
      policy: PRODUCTION_POLICY,
      expectedNonce: nonce,
    });
    expect(a.ok).toBe(false);
    if (a.ok) return;
    expect(a.facts?.tcbStatus).toBe('UpToDate');
    expect(a.reasons.map((r) => r.code)).toEqual(['E_EVIDENCE_BINDING']);
  });

  it('refuses a TDX quote presented as SGX evidence with a typed error', async () => {
    const a = await appraiseEvidence(bundle('tdx_quote', 'sgx', 'tdx_quote_collateral.json'), {
      now: 1752919234,
      policy: PRODUCTION_POLICY,
      expectedNonce: nonce,
    });
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reasons[0]!.code).toMatch(/^E_EVIDENCE_/);
  });
});
