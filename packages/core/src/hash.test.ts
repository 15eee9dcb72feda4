import { createHash, randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { concatBytes, u32be, utf8 } from './bytes.ts';
import { encodeFields, sha256, sha384, sha512, taggedSha256, taggedSha512 } from './hash.ts';
import { TAGS } from './tags.ts';

/** The encoding as the wire format states it: a u32be length before each field, concatenated. */
function reference(fields: readonly Uint8Array[]): Uint8Array {
  return concatBytes(...fields.flatMap((f) => [u32be(f.length), f]));
}

const randomFields = () =>
  Array.from({ length: randomInt(0, 9) }, () => new Uint8Array(randomBytes(randomInt(0, 300))));

describe('tagged encoding and digests', () => {
  it('encodes fields as length-prefixed bytes (known answer)', () => {
    const out = encodeFields([utf8('ab'), new Uint8Array(0), Uint8Array.of(1, 2, 3)]);
    expect(Buffer.from(out).toString('hex')).toBe('000000026162' + '00000000' + '00000003010203');
    expect(encodeFields([])).toEqual(new Uint8Array(0));
  });

  it('encodes exactly as the reference on random field lists, empty and large fields included', () => {
    for (let i = 0; i < 300; i++) {
      const fields = randomFields();
      expect(Buffer.from(encodeFields(fields)).equals(reference(fields))).toBe(true);
    }
    const big = [new Uint8Array(randomBytes(70_000)), new Uint8Array(0)];
    expect(Buffer.from(encodeFields(big)).equals(reference(big))).toBe(true);
  });

  it('tagged digests hash the tag as the first field, the same on every call', () => {
    for (let i = 0; i < 50; i++) {
      const fields = randomFields();
      const want = createHash('sha256')
        .update(reference([utf8(TAGS.measurement), ...fields]))
        .digest();
      expect(Buffer.from(taggedSha256(TAGS.measurement, ...fields)).equals(want)).toBe(true);
      const want512 = createHash('sha512')
        .update(reference([utf8(TAGS.reportData), ...fields]))
        .digest();
      expect(Buffer.from(taggedSha512(TAGS.reportData, ...fields)).equals(want512)).toBe(true);
    }
  });

  it('sha256/384/512 match node:crypto and return a plain Uint8Array of their own', () => {
    for (const n of [0, 1, 55, 56, 64, 1000, 100_000]) {
      const d = new Uint8Array(randomBytes(n));
      for (const [f, alg] of [
        [sha256, 'sha256'],
        [sha384, 'sha384'],
        [sha512, 'sha512'],
      ] as const) {
        const got = f(d);
        expect(Buffer.from(got).equals(createHash(alg).update(d).digest())).toBe(true);
        expect(Object.getPrototypeOf(got)).toBe(Uint8Array.prototype);
        const again = f(d);
        got.fill(0);
        expect(Buffer.from(again).equals(createHash(alg).update(d).digest())).toBe(true);
      }
    }
  });
});
