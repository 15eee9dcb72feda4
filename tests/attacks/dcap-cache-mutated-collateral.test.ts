import { describe, expect, it } from 'vitest';
import { codeOf } from '../../packages/attestation/test/codeOf.ts';
import { makeSyntheticSgx } from '../../packages/attestation/test/dcap/syntheticDcap.ts';
import { verifyDcapQuote, verifyDcapQuoteSync } from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';

// Attack (careless verifier / rogue PCCS): the DCAP verifier caches prepared collateral by the
// collateral OBJECT as well as by its bytes. A verifier that keeps one collateral object and
// refreshes its pieces in place (a new PCK CRL, a new TCB info) gets the verdict of the OLD
// contents: a revocation or a tampered piece never takes effect. Promise: a cache never makes a
// later, different, revoked or tampered input pass.

describe('attack: collateral object changed after it passed once', () => {
  it('a PCK CRL refreshed in place to one that revokes the PCK is honoured', async () => {
    const s = await makeSyntheticSgx({ revokePck: true });
    const roots = [new Uint8Array(Buffer.from(s.rootPem))];
    // The collateral as fetched yesterday: the older CRL does not list the PCK yet.
    const col: Record<string, unknown> = { ...s.collateral, pck_crl: s.olderPckCrl };
    expect(await codeOf(verifyDcapQuote(s.quote, { collateral: col, now: s.now, roots }))).toBe('ok');
    // Today's CRL (signed by the same CA) revokes the PCK; the verifier updates its object.
    col.pck_crl = s.collateral.pck_crl;
    // A fresh object with the same contents is refused, as it must be...
    expect(await codeOf(verifyDcapQuote(s.quote, { collateral: { ...col }, now: s.now, roots }))).toBe(
      'E_EVIDENCE_REVOKED',
    );
    // ...and so must the updated object.
    expect(await codeOf(verifyDcapQuote(s.quote, { collateral: col, now: s.now, roots }))).toBe(
      'E_EVIDENCE_REVOKED',
    );
    expect(() => verifyDcapQuoteSync(s.quote, { collateral: col, now: s.now, roots })).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_REVOKED' }),
    );
  });

  it('a TCB info tampered in place after a pass fails its signature check', async () => {
    const s = await makeSyntheticSgx();
    const roots = [new Uint8Array(Buffer.from(s.rootPem))];
    const col: Record<string, unknown> = { ...s.collateral };
    expect(await codeOf(verifyDcapQuote(s.quote, { collateral: col, now: s.now, roots }))).toBe('ok');
    // Not signed by Intel any more (and claims a later evaluation number).
    col.tcb_info = (col.tcb_info as string).replace(
      '"tcbEvaluationDataNumber":17',
      '"tcbEvaluationDataNumber":18',
    );
    expect(col.tcb_info).not.toBe(s.collateral.tcb_info);
    expect(await codeOf(verifyDcapQuote(s.quote, { collateral: col, now: s.now, roots }))).toBe(
      'E_EVIDENCE_COLLATERAL',
    );
  });

  it('a signature overwritten in place (same Uint8Array) is checked again', async () => {
    const s = await makeSyntheticSgx();
    const roots = [new Uint8Array(Buffer.from(s.rootPem))];
    const sig = new Uint8Array(Buffer.from(s.collateral.tcb_info_signature as string, 'hex'));
    const col = { ...s.collateral, tcb_info_signature: sig };
    expect(await codeOf(verifyDcapQuote(s.quote, { collateral: col, now: s.now, roots }))).toBe('ok');
    sig[10]! ^= 0x01;
    expect(await codeOf(verifyDcapQuote(s.quote, { collateral: { ...col }, now: s.now, roots }))).toBe(
      'E_EVIDENCE_COLLATERAL',
    );
    expect(await codeOf(verifyDcapQuote(s.quote, { collateral: col, now: s.now, roots }))).toBe(
      'E_EVIDENCE_COLLATERAL',
    );
  });
});
