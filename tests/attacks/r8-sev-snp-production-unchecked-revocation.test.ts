import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from '../../packages/attestation/src/appraiseEvidence.ts';
import { syntheticSevSnpGuest } from '../../packages/attestation/test/sev-snp/syntheticSevSnpGuest.ts';

// A malicious host whose chip's VCEK AMD has revoked (the product CRL lists it). It attaches its
// genuine VCEK and chain to the evidence and leaves the CRL out. A verifier running the production
// policy without its own KDS source (the default `firn verifier start`) sees no CRL at all. The
// production policy demands revocation for the other TEEs (DCAP collateral always carries the PCK
// and root CRLs; GPUs need OCSP: allowRevocationUnchecked false), so an SEV-SNP report whose
// revocation was never checked must be refused too, not approved.
const codes = (a: Awaited<ReturnType<typeof appraiseEvidence>>) => (a.ok ? [] : a.reasons.map((r) => r.code));

describe('attack: a revoked VCEK attached without its CRL passes the production policy', () => {
  it('control: with the CRL attached the revoked VCEK is refused', async () => {
    const nonce = new Uint8Array(randomBytes(32));
    const { s, bundle, opts } = await syntheticSevSnpGuest(nonce, { revokeVek: true });
    const crl = Buffer.from(s.crlDer).toString('base64');
    const a = await appraiseEvidence(
      { ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem, crl } },
      opts,
    );
    expect(codes(a)).toContain('E_EVIDENCE_REVOKED');
  });

  it('the attack: the same revoked VCEK and chain, no CRL, is refused by production', async () => {
    const nonce = new Uint8Array(randomBytes(32));
    const { s, bundle, opts } = await syntheticSevSnpGuest(nonce, { revokeVek: true });
    const a = await appraiseEvidence({ ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem } }, opts);
    expect(a.ok, 'revocation was never checked, yet the production policy approved').toBe(false);
  });
});
