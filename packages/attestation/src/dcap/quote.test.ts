import { randomBytes } from 'node:crypto';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { parsePckExtensions } from './pckExtensions.ts';
import { parseDcapQuote } from './quote.ts';
import { VECTORS, vector } from '../../test/dcap/testVectors.ts';
import { chainCertificates, parseCertificate, parseCrl } from './x509.ts';

/** Run f and require that it either succeeds or throws a FirnError (never a TypeError, RangeError...). */
function typedOnly(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!isFirnError(e)) throw e;
  }
}

// A deterministic PRNG so that a failure reproduces.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s;
  };
}

describe('parseDcapQuote', () => {
  it('parses the field values dcap-qvl snapshots record for the SGX and TDX quotes', () => {
    const s = parseDcapQuote(vector(VECTORS.sgx.quote));
    expect(s.header.version).toBe(3);
    expect(s.body.kind).toBe('sgx');
    expect(s.certification.certDataType).toBe(5);
    const t = parseDcapQuote(vector(VECTORS.tdx.quote));
    expect(t.header).toMatchObject({ version: 4, attestationKeyType: 2, teeType: 0x81, qeSvn: 0, pceSvn: 0 });
    expect(Buffer.from(t.header.qeVendorId).toString('hex')).toBe('939a7233f79c4ca9940a0db3957f0607');
    expect(Buffer.from(t.header.userData.subarray(0, 3))).toEqual(Buffer.from([136, 155, 125]));
  });
  it('parses the hex-only TDX vectors', () => {
    for (const f of ['phala-dcap-qvl/tdx-quote.hex', 'phala-dcap-qvl/quote-from-tappd.hex']) {
      const text = Buffer.from(vector(f)).toString('utf8').trim().replace(/^0x/, '');
      const q = parseDcapQuote(new Uint8Array(Buffer.from(text, 'hex')));
      expect(q.body.kind).toBe('tdx');
    }
  });
  it('parses the PCK SGX extensions of every vector quote', () => {
    for (const c of [VECTORS.sgx, VECTORS.tdx, VECTORS.tdxOutdated]) {
      const q = parseDcapQuote(vector(c.quote));
      const ext = parsePckExtensions(
        parseCertificate(chainCertificates(q.certification.certData, 'chain')[0]!),
      );
      expect(ext.ppid.length).toBe(16);
      expect(ext.tcbComponents.length).toBe(16);
      expect(ext.fmspc.length).toBe(6);
    }
  });
  it('every truncation of a quote before its padding is a typed error', () => {
    for (const c of [VECTORS.sgx, VECTORS.tdx, VECTORS.tdxOutdated]) {
      const q = vector(c.quote);
      const p = parseDcapQuote(q);
      // zero padding after the signature data may be cut; anything before it may not
      const end = p.signedBytes.length + 4 + Buffer.from(q).readUInt32LE(p.signedBytes.length);
      for (let n = 0; n < end; n += 7)
        expect(() => parseDcapQuote(q.subarray(0, n))).toThrow(
          expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
        );
    }
  });
  it('random bytes and randomly mutated quotes only ever give typed errors', () => {
    const r = prng(7);
    for (let i = 0; i < 300; i++) typedOnly(() => parseDcapQuote(new Uint8Array(randomBytes(r() % 6000))));
    for (const c of [VECTORS.sgx, VECTORS.tdx, VECTORS.tdxOutdated]) {
      const base = vector(c.quote);
      for (let i = 0; i < 400; i++) {
        const q = base.slice();
        for (let k = 0; k < 1 + (r() % 4); k++) q[r() % q.length] = r() & 0xff;
        typedOnly(() => {
          const p = parseDcapQuote(q);
          const ders = chainCertificates(p.certification.certData, 'chain');
          parsePckExtensions(parseCertificate(ders[0]!));
        });
      }
    }
  });
  it('mutated certificates and CRLs only ever give typed errors', () => {
    const r = prng(11);
    const q = parseDcapQuote(vector(VECTORS.sgx.quote));
    const certs = chainCertificates(q.certification.certData, 'chain');
    const crl = new Uint8Array(
      Buffer.from(JSON.parse(Buffer.from(vector(VECTORS.sgx.collateral)).toString()).pck_crl, 'hex'),
    );
    for (const base of [...certs, crl]) {
      for (let i = 0; i < 300; i++) {
        const b = base.slice();
        b[r() % b.length] = r() & 0xff;
        typedOnly(() => (base === crl ? parseCrl(b) : parsePckExtensions(parseCertificate(b))));
      }
    }
  });
});
