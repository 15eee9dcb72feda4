import { describe, expect, it } from 'vitest';
import { isoUtcSeconds, isoUtcSecondsByPattern, JsonFields } from './collateralJson.ts';

/** The collateral time reader read character by character (decision 1520) against the pattern it replaces. */
describe('isoUtcSeconds (collateral times without a regular expression)', () => {
  const bases = [
    '2025-07-19T10:00:00Z',
    '2024-02-29T23:59:59.999Z',
    '2023-02-29T00:00:00Z',
    '2100-02-29T00:00:00Z',
    '2000-02-29T12:30:45.5Z',
    '0050-01-01T00:00:00Z',
    '0100-03-01T00:00:00Z',
    '2025-12-31T24:00:00Z',
    '2025-06-31T00:00:60Z',
    '2025-04-30T23:59:59.123456789012345678901234567890Z',
    '9999-12-31T23:59:59Z',
    '0000-01-01T00:00:00Z',
  ];
  const alphabet = [
    '0',
    '1',
    '2',
    '3',
    '9',
    '-',
    ':',
    'T',
    'Z',
    'z',
    '.',
    ' ',
    '+',
    '\u0660',
    '\uff10',
    't',
    '\u0000',
  ];

  it('gives the same seconds, the same refusals and the same invalid times on mutated times', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (const b of bases) expect(Object.is(isoUtcSeconds(b), isoUtcSecondsByPattern(b)), b).toBe(true);
    for (let k = 0; k < 20000; k++) {
      let t = bases[rnd(bases.length)]!;
      for (let m = 0; m < 1 + rnd(3); m++) {
        const i = rnd(t.length + 1);
        const ch = alphabet[rnd(alphabet.length)]!;
        const op = rnd(3);
        t =
          op === 0
            ? t.slice(0, i) + ch + t.slice(i)
            : op === 1
              ? t.slice(0, i) + ch + t.slice(i + 1)
              : t.slice(0, i) + t.slice(i + 1);
      }
      const got = isoUtcSeconds(t);
      const want = isoUtcSecondsByPattern(t);
      expect(Object.is(got, want), `${JSON.stringify(t)}: ${got} vs ${want}`).toBe(true);
    }
  });

  it('every day of four years, leap days and the day after the last of each month', () => {
    for (const y of [1999, 2000, 2024, 2100]) {
      for (let mo = 1; mo <= 12; mo++)
        for (let d = 0; d <= 32; d++) {
          const s = `${y}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T01:02:03Z`;
          expect(Object.is(isoUtcSeconds(s), isoUtcSecondsByPattern(s)), s).toBe(true);
        }
    }
  });

  it('JsonFields.date refuses an impossible date and a time not in UTC form, naming the field', () => {
    const f = JsonFields.of(
      { a: '2023-02-29T00:00:00Z', b: '2023-02-28T00:00:00+01:00', c: '2023-02-28T00:00:00Z' },
      'tcbInfo',
    );
    expect(() => f.date('a')).toThrow(/tcbInfo\.a is not a valid time/);
    expect(() => f.date('b')).toThrow(/tcbInfo\.b must be an ISO-8601 UTC time/);
    expect(f.date('c')).toBe(Date.UTC(2023, 1, 28) / 1000);
  });

  it('JsonFields.hex refuses a short field holding a character whose low byte is a hex digit', () => {
    // U+0141 and U+FF41 end in the byte of 'A'; U+0130 in '0': a decoder reading low bytes would take them.
    for (const bad of [
      '00906ED5000\u0141',
      '00906ED5000\uff41',
      '\u013000906ED50000'.slice(0, 12),
      '00906ED5000G',
    ])
      expect(() => JsonFields.of({ fmspc: bad }, 'tcbInfo').hex('fmspc', 6), bad).toThrow(
        /tcbInfo\.fmspc must be 6 bytes of hex/,
      );
    expect(
      Buffer.from(JsonFields.of({ fmspc: '00906eD50000' }, 'tcbInfo').hex('fmspc', 6)).toString('hex'),
    ).toBe('00906ed50000');
  });
});
