import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { appraiseEvidence } from '../../packages/attestation/src/appraiseEvidence.ts';
import { createKdsClient } from '../../packages/attestation/src/sev-snp/kdsClient.ts';
import {
  createSevSnpVerifier,
  sevSnpVerifier,
} from '../../packages/attestation/src/sev-snp/sevSnpVerifier.ts';
import { parseSevSnpReport } from '../../packages/attestation/src/sev-snp/sevSnpReport.ts';
import { makeSyntheticSevSnp } from '../../packages/attestation/test/sev-snp/syntheticSevSnp.ts';
import {
  kdsServing,
  syntheticSevSnpGuest,
} from '../../packages/attestation/test/sev-snp/syntheticSevSnpGuest.ts';
import {
  SEV_SNP_VECTORS,
  sevSnpVector,
  sevSnpVectorText,
} from '../../packages/attestation/test/sev-snp/sevSnpVectors.ts';
import { registerVerifier } from '../../packages/attestation/src/verifiers.ts';

// A host whose chip's VCEK AMD has revoked, against a verifier that fetches collateral from the KDS
// (createSevSnpVerifier({ kds }), CRL on by default). The host controls the bundle, including the
// collateral it attaches; it does not hold AMD's keys.

afterEach(() => registerVerifier(sevSnpVerifier));

describe('attack: attached collateral steers a KDS-backed SEV-SNP verifier around the CRL', () => {
  it("a revoked VCEK is refused by the verifier's KDS CRL even when the host attaches the VCEK without a CRL", async () => {
    const nonce = randomBytes(32);
    const { s, bundle, opts } = await syntheticSevSnpGuest(nonce, { revokeVek: true });
    registerVerifier(
      createSevSnpVerifier({
        kds: createKdsClient({
          baseUrl: 'https://kds.test',
          fetch: kdsServing(s.vekDer, s.chainPem, s.crlDer),
          retries: 0,
        }),
      }),
    );
    // Control: with nothing attached the verifier fetches from its KDS and the CRL revokes.
    const fetched = await appraiseEvidence(bundle, opts);
    expect(fetched.ok).toBe(false);
    if (!fetched.ok) expect(fetched.reasons.map((r) => r.code)).toContain('E_EVIDENCE_REVOKED');

    // The attack: attach the (genuine, revoked) VCEK and chain, and no CRL.
    const attached = await appraiseEvidence(
      { ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem } },
      opts,
    );
    expect(attached.ok).toBe(false);
    if (!attached.ok) expect(attached.reasons.map((r) => r.code)).toContain('E_EVIDENCE_REVOKED');
  });
});

describe('attack: a KDS mirror that lies once', () => {
  it('a lie cached until the forged notAfter does not refuse the real report after the mirror tells the truth', async () => {
    const v = SEV_SNP_VECTORS.gcpMilanV5;
    const fake = await makeSyntheticSevSnp(); // its own "ARK-Milan", valid until 2045
    let lying = true;
    const mirror = (async (input: string | URL | Request) => {
      const p = new URL(String(input)).pathname;
      if (p.endsWith('/cert_chain')) return new Response(lying ? fake.chainPem : sevSnpVectorText(v.chain!));
      return new Response(lying ? fake.vekPem : sevSnpVectorText(v.vek));
    }) as typeof fetch;
    const verifier = createSevSnpVerifier({
      kds: createKdsClient({ baseUrl: 'https://mirror.test', fetch: mirror, crl: false, retries: 0 }),
    });
    const report = parseSevSnpReport(sevSnpVector(v.report));
    // While it lies the report is refused: nothing the mirror says is trusted.
    await expect(verifier.verify(report, { now: v.now })).rejects.toMatchObject({ code: 'E_EVIDENCE_CHAIN' });
    // The mirror is fixed (or the man in the middle is gone): the real report must verify again.
    lying = false;
    const facts = await verifier.verify(report, { now: v.now });
    expect(facts.teeType).toBe('sev-snp');
  });
});
