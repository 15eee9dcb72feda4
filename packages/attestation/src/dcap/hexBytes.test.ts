import { describe, expect, it } from 'vitest';
import { hexBytes } from './collateralJson.ts';

/** The check it replaces: a regular expression, then Node's decoder. */
function reference(s: string): string | undefined {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined;
  return Buffer.from(s, 'hex').toString('hex');
}

describe('hexBytes (collateral hex without a regular expression)', () => {
  it('agrees with the regular expression on mutated hex, including characters that alias digits', () => {
    // U+0141 and U+FF41 end in the bytes of 'A' and 'A'; U+0130 in '0'; 0xE9 is latin1 but not hex.
    const alphabet = [
      '0',
      '9',
      'a',
      'f',
      'A',
      'F',
      'g',
      'G',
      'x',
      ' ',
      '\n',
      '\u0141',
      '\uff41',
      '\u0130',
      '\u00e9',
      '\u0000',
      '-',
    ];
    let seed = 11;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    // Short strings take the table decoder, long ones (over 256 characters) Node's: both mutated.
    const short = 'c0ffee0123456789abcdefABCDEF00';
    const long = short.repeat(10);
    for (let k = 0; k < 10000; k++) {
      const base = k % 2 === 0 ? short : long;
      let t = k % 4 === 1 ? base : base.slice(0, rnd(base.length + 1));
      for (let m = 0; m < rnd(3); m++) {
        const i = rnd(t.length + 1);
        const ch = alphabet[rnd(alphabet.length)]!;
        t = rnd(2) === 0 ? t.slice(0, i) + ch + t.slice(i) : t.slice(0, i) + ch + t.slice(i + 1);
      }
      const got = hexBytes(t);
      expect(got === undefined ? undefined : Buffer.from(got).toString('hex'), JSON.stringify(t)).toBe(
        reference(t),
      );
    }
  });

  it('refuses odd lengths and the empty string decodes to no bytes', () => {
    expect(hexBytes('abc')).toBeUndefined();
    expect(hexBytes('')?.length).toBe(0);
    expect(hexBytes('\u0141\u0141')).toBeUndefined();
  });
});
