import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isFirnError, sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { parseCertificate, pemCertificates } from './x509.ts';

// Decision 1160: P-256 SPKI keys are imported from their point. The fast path must give the same
// key as OpenSSL's DER import and must still refuse a point that is not on the curve.
const collateral = JSON.parse(
  readFileSync(sharedPath('vectors', 'attestation', 'phala-dcap-qvl', 'tdx_quote_collateral.json'), 'utf8'),
) as { tcb_info_issuer_chain: string };
const [signingDer] = pemCertificates(collateral.tcb_info_issuer_chain, 'chain');

describe('DCAP x509: P-256 key import from the point', () => {
  it('imports the same key as the DER path', () => {
    const c = parseCertificate(signingDer!);
    const viaDer = createPublicKey({ key: Buffer.from(c.spki), format: 'der', type: 'spki' });
    expect(c.publicKey().equals(viaDer)).toBe(true);
  });

  it('refuses a certificate whose public key point is off the curve', () => {
    const der = signingDer!.slice();
    const c0 = parseCertificate(der);
    // Last byte of y inside the SPKI: the point leaves the curve.
    const at = c0.spki.byteOffset - der.byteOffset + c0.spki.length - 1;
    der[at]! ^= 1;
    const c = parseCertificate(der);
    let code = 'ok';
    try {
      c.publicKey();
    } catch (e) {
      code = isFirnError(e) ? e.code : 'foreign';
    }
    expect(code).toBe('E_EVIDENCE_MALFORMED');
  });
});
