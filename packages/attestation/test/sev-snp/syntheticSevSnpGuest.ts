import { bytesToHex, computeReportData } from '@firn/core';
import { PRODUCTION_POLICY } from '../../src/policy/policy.ts';
import { makeSyntheticSevSnp, type SyntheticSevSnpOptions } from './syntheticSevSnp.ts';

/**
 * Test-only: the keys a synthetic SEV-SNP guest binds into REPORT_DATA (an enclave address of 0xab
 * bytes, a KEM public key of 0xcd bytes), as firn does for every TEE.
 */
export const GUEST_KEYS = {
  enclaveAddress: new Uint8Array(20).fill(0xab),
  kemPublicKey: new Uint8Array(32).fill(0xcd),
} as const;

/**
 * A guest whose synthetic report (makeSyntheticSevSnp with `o`) binds GUEST_KEYS and `nonce`
 * into REPORT_DATA; returns the synthetic PKI and report (`s`), its evidence bundle (no collateral
 * attached) and the appraiseEvidence options of a verifier pinning the synthetic ARK under the
 * production policy at the report's own time.
 */
export async function syntheticSevSnpGuest(nonce: Uint8Array, o: SyntheticSevSnpOptions = {}) {
  const reportData = computeReportData({ ...GUEST_KEYS, nonce });
  const s = await makeSyntheticSevSnp({ ...o, reportData });
  const bundle = {
    version: 1,
    teeType: 'sev-snp',
    quote: bytesToHex(s.report),
    nonce: bytesToHex(nonce),
    enclaveAddress: bytesToHex(GUEST_KEYS.enclaveAddress),
    kemPublicKey: bytesToHex(GUEST_KEYS.kemPublicKey),
  };
  const opts = {
    now: s.now,
    policy: PRODUCTION_POLICY,
    expectedNonce: nonce,
    roots: { 'sev-snp': [new Uint8Array(Buffer.from(s.arkPem))] },
  };
  return { s, bundle, opts };
}

/** A KDS (fetch) serving `chain` at .../cert_chain, `crl` at .../crl and `vek` at every other path. */
export function kdsServing(vek: Uint8Array, chain: string, crl: Uint8Array): typeof fetch {
  return (async (input: string | URL | Request) => {
    const p = new URL(String(input)).pathname;
    if (p.endsWith('/cert_chain')) return new Response(chain);
    if (p.endsWith('/crl')) return new Response(Buffer.from(crl));
    return new Response(Buffer.from(vek));
  }) as typeof fetch;
}
