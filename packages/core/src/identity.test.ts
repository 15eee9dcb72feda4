import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesToHex } from './bytes.ts';
import { MAX_EVIDENCE_BUNDLE_BYTES, parseEvidenceBundle } from './evidence.ts';
import { computeReportData } from './identity.ts';

const base = {
  enclaveAddress: new Uint8Array(20).fill(0x11),
  kemPublicKey: new Uint8Array(32).fill(0x22),
  nonce: new Uint8Array(32).fill(0x33),
};
const OPERATOR = new Uint8Array(20).fill(0x44);
const GPU = new Uint8Array(32).fill(0x55);

describe('computeReportData (firn/report-data/v2, decision 1830)', () => {
  // Known answers, computed independently (Python hashlib) as
  // SHA-512(u32be(len) || field ...) over [tag, address, KEM key, nonce, GPU digest or empty,
  // operator or empty]. A change here changes every quote firn asks for: say so in the commit.
  it('matches the known answers: no operator, an operator, a GPU digest and an operator', () => {
    expect(bytesToHex(computeReportData(base))).toBe(
      '0xd073fb661d75393f97e4a4a7cf0f158abdb3e712f063eb8eb4c77a5efe7f31e7b7cf5524467dad2dd85e7c8b89d2cd7afec5859c901292560b197f7a0c7b14dc',
    );
    expect(bytesToHex(computeReportData({ ...base, operator: OPERATOR }))).toBe(
      '0x5d31a4fd00f099e19ec5d0f22b05415c2968cc610591fe63cf6c2bb69e987ea09b3a451068459750ad74508e30898f2c86f5007af1accc40fe01dccd8b9c4b04',
    );
    expect(bytesToHex(computeReportData({ ...base, gpuEvidenceDigest: GPU, operator: OPERATOR }))).toBe(
      '0x36cb18b743f1d72d54a0a88233ca48b0bef46f8ae624929c740f019c521940b313b29a5924a1d4554b22e277bcecb1f8fdb44c13e1f4380a7b9c08d070865d47',
    );
  });

  it('an absent operator hashes unlike any present one, the zero address included', () => {
    const none = bytesToHex(computeReportData(base));
    const seen = new Set([none]);
    for (const op of [new Uint8Array(20), OPERATOR, ...Array.from({ length: 20 }, () => randomBytes(20))]) {
      const h = bytesToHex(computeReportData({ ...base, operator: new Uint8Array(op) }));
      expect(seen.has(h)).toBe(false);
      seen.add(h);
    }
  });

  it('an operator never reads as a GPU digest or the other way round', () => {
    // Both are optional fields in fixed places: moving bytes between them changes the digest.
    const a = computeReportData({ ...base, operator: OPERATOR });
    const b = computeReportData({ ...base, gpuEvidenceDigest: GPU });
    const c = computeReportData({ ...base, gpuEvidenceDigest: GPU, operator: OPERATOR });
    expect(new Set([a, b, c, computeReportData(base)].map(bytesToHex)).size).toBe(4);
  });

  it('refuses an operator or GPU digest of another length (E_INVALID_INPUT)', () => {
    for (const operator of [new Uint8Array(0), new Uint8Array(19), new Uint8Array(21), new Uint8Array(32)])
      expect(() => computeReportData({ ...base, operator })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/operator/) }),
      );
    for (const gpuEvidenceDigest of [new Uint8Array(0), new Uint8Array(20), new Uint8Array(64)])
      expect(() => computeReportData({ ...base, gpuEvidenceDigest })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_INPUT' }),
      );
  });
});

describe('parseEvidenceBundle: the operator field', () => {
  const bundle = {
    version: 1,
    teeType: 'simulated',
    quote: '0x00',
    nonce: bytesToHex(base.nonce),
    enclaveAddress: bytesToHex(base.enclaveAddress),
    kemPublicKey: bytesToHex(base.kemPublicKey),
  };

  it('is optional, and read lower-case when present', () => {
    expect(parseEvidenceBundle(bundle).operator).toBeUndefined();
    expect('operator' in parseEvidenceBundle(bundle)).toBe(false);
    const upper = `0x${'AB'.repeat(20)}`;
    expect(parseEvidenceBundle(JSON.stringify({ ...bundle, operator: upper })).operator).toBe(
      `0x${'ab'.repeat(20)}`,
    );
  });

  it('anything but 20 bytes of hex is E_EVIDENCE_MALFORMED', () => {
    for (const operator of [
      null,
      7,
      '',
      '0x',
      `0x${'ab'.repeat(19)}`,
      `0x${'ab'.repeat(21)}`,
      'zz',
      ['0x00'],
    ])
      expect(() => parseEvidenceBundle({ ...bundle, operator })).toThrow(
        expect.objectContaining({
          code: 'E_EVIDENCE_MALFORMED',
          message: expect.stringMatching(/^operator/),
        }),
      );
  });

  it('an oversized bundle is still refused by size before it is read', () => {
    const huge = JSON.stringify({ ...bundle, operator: `0x${'ab'.repeat(MAX_EVIDENCE_BUNDLE_BYTES)}` });
    expect(() => parseEvidenceBundle(huge)).toThrow(expect.objectContaining({ code: 'E_TOO_LARGE' }));
  });
});
