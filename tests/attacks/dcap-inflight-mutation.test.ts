import { describe, expect, it } from 'vitest';
import { codeOf } from '../../packages/attestation/test/codeOf.ts';
import { VECTORS, vector, vectorJson } from '../../packages/attestation/test/dcap/testVectors.ts';
import { parseDcapQuote } from '../../packages/attestation/src/dcap/quote.ts';
import {
  clearDcapCaches,
  verifyDcapQuote,
  verifyDcapQuoteSync,
} from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';

/** Offset (in the quote) of a base64 letter of the PCK chain past the 192-byte bucket prefix. */
function chainLetter(quote: Uint8Array): number {
  const cd = parseDcapQuote(quote).certification.certData;
  const at = cd.byteOffset - quote.byteOffset;
  let i = 400;
  while (!/[A-Za-z]/.test(String.fromCharCode(quote[at + i]!))) i++;
  return at + i;
}

describe('attack: inputs changed in place while a pool verification is in flight', () => {
  it('a PCK chain changed in place during the verification is not cached as checked', async () => {
    for (const c of [VECTORS.sgx, VECTORS.tdx]) {
      clearDcapCaches();
      const quote = vector(c.quote);
      const i = chainLetter(quote);
      const tampered = quote.slice();
      tampered[i] = tampered[i] === 0x41 ? 0x42 : 0x41;
      // The tampered chain alone fails.
      expect(() =>
        verifyDcapQuoteSync(tampered, { collateral: vectorJson(c.collateral), now: c.now }),
      ).toThrow();
      clearDcapCaches();
      // A host reuses its buffer for the next quote while the first verification is in flight.
      const p = verifyDcapQuote(quote, {
        collateral: vectorJson(c.collateral),
        now: c.now,
        signatureThreads: 'pool',
      });
      quote.set(tampered);
      expect(await codeOf(p)).toBe('ok');
      // The tampered chain must still fail: it was never checked.
      expect(
        await codeOf(
          verifyDcapQuote(tampered.slice(), {
            collateral: vectorJson(c.collateral),
            now: c.now,
            signatureThreads: 'pool',
          }),
        ),
        c.quote,
      ).not.toBe('ok');
      expect(() =>
        verifyDcapQuoteSync(tampered.slice(), { collateral: vectorJson(c.collateral), now: c.now }),
      ).toThrow();
    }
  });

  it('a CRL changed in place during the verification is not cached as checked', async () => {
    for (const field of ['root_ca_crl', 'pck_crl'] as const) {
      clearDcapCaches();
      const base = vectorJson(VECTORS.sgx.collateral);
      const crl = new Uint8Array(Buffer.from(base[field] as string, 'hex'));
      const bad = crl.slice();
      bad[40]! ^= 0x01;
      const p = verifyDcapQuote(vector(VECTORS.sgx.quote), {
        collateral: { ...base, [field]: crl },
        now: VECTORS.sgx.now,
        signatureThreads: 'pool',
      });
      crl.set(bad);
      expect(await codeOf(p)).toBe('ok');
      const later = { ...base, [field]: bad.slice() };
      expect(
        await codeOf(
          verifyDcapQuote(vector(VECTORS.sgx.quote), {
            collateral: later,
            now: VECTORS.sgx.now,
            signatureThreads: 'pool',
          }),
        ),
        field,
      ).toBe('E_EVIDENCE_CHAIN');
      expect(() =>
        verifyDcapQuoteSync(vector(VECTORS.sgx.quote), { collateral: { ...later }, now: VECTORS.sgx.now }),
      ).toThrow(expect.objectContaining({ code: 'E_EVIDENCE_CHAIN' }));
    }
  });

  it("a verified result does not take the next quote's report data from a reused buffer", async () => {
    const c = VECTORS.sgx;
    const quote = vector(c.quote);
    const r = await verifyDcapQuote(quote, { collateral: vectorJson(c.collateral), now: c.now });
    const before = Buffer.from(r.reportData).toString('hex');
    // The host's buffer is reused for another quote after the verdict.
    quote.fill(0x77);
    expect(Buffer.from(r.reportData).toString('hex')).toBe(before);
  });
});
