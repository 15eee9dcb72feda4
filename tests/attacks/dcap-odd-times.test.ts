import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { derRead, derTime } from '../../packages/attestation/src/dcap/der.ts';

function read(tag: number, text: string): number | string {
  const content = Buffer.from(text, 'latin1');
  const b = Uint8Array.of(tag, content.length, ...content);
  try {
    return derTime(b, derRead(b, 0), 't');
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return e.code;
  }
}

// A certificate or CRL time that names no real instant (month 13, February 30, hour 24, ...) is
// refused by OpenSSL (Intel's QVL) and by the der crate (dcap-qvl in Rust); Date.UTC would roll it
// over into another, valid-looking instant instead.
describe('attack: DER times naming no real instant', () => {
  it('UTCTime and GeneralizedTime fields out of range are malformed, not rolled over', () => {
    const bad: [number, string][] = [
      [0x17, '251301000000Z'], // month 13 (would read as 2026-01-01)
      [0x17, '250001000000Z'], // month 0
      [0x17, '250100000000Z'], // day 0
      [0x17, '250230000000Z'], // February 30
      [0x17, '250431000000Z'], // April 31
      [0x17, '250101240000Z'], // hour 24
      [0x17, '250101006000Z'], // minute 60
      [0x17, '250101000099Z'], // second 99
      [0x18, '20991399999999Z'],
      [0x18, '20250229000000Z'], // 2025 is not a leap year
    ];
    for (const [tag, text] of bad) expect(read(tag, text), text).toBe('E_EVIDENCE_MALFORMED');
  });

  it('valid boundary times keep their meaning', () => {
    expect(read(0x17, '491231235959Z')).toBe(Date.UTC(2049, 11, 31, 23, 59, 59) / 1000);
    expect(read(0x17, '500101000000Z')).toBe(Date.UTC(1950, 0, 1) / 1000);
    expect(read(0x18, '20240229000000Z')).toBe(Date.UTC(2024, 1, 29) / 1000);
    expect(read(0x18, '99991231235959Z')).toBe(Date.UTC(9999, 11, 31, 23, 59, 59) / 1000);
    // A four-digit year below 100 is that year, not 19xx.
    const y49 = new Date(0);
    y49.setUTCFullYear(49, 0, 1);
    expect(read(0x18, '00490101000000Z')).toBe(y49.getTime() / 1000);
  });
});

describe('attack: collateral JSON times naming no real instant', () => {
  it('issueDate/nextUpdate out of range are refused, not rolled over', async () => {
    const { JsonFields } = await import('../../packages/attestation/src/dcap/collateralJson.ts');
    const code = (s: string) => {
      try {
        return new JsonFields({ t: s }, 'x').date('t');
      } catch (e) {
        if (!isFirnError(e)) throw e;
        return e.code;
      }
    };
    for (const s of [
      '2025-02-30T00:00:00Z',
      '2025-04-31T00:00:00Z',
      '2025-01-01T24:00:00Z',
      '2025-02-29T00:00:00Z',
    ])
      expect(code(s), s).toBe('E_EVIDENCE_COLLATERAL');
    expect(code('2024-02-29T23:59:59Z')).toBe(Date.UTC(2024, 1, 29, 23, 59, 59) / 1000);
    expect(code('2025-07-19T10:01:18.5Z')).toBe(Date.UTC(2025, 6, 19, 10, 1, 18) / 1000);
  });
});
