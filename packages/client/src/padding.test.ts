import { generateKemKeyPair, readArtifactHeader, sealArtifact } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import {
  MIN_PADDED_BYTES,
  padmeLength,
  paddedContentType,
  paddedLength,
  padPlaintext,
  parsePaddedContentType,
  unpadPlaintext,
} from './padding.ts';
import { openOutput } from './sealInput.ts';

const seal = async (bytes: Uint8Array, contentType: string, pub: Uint8Array) =>
  sealArtifact(bytes, { recipients: [pub], contentType });

describe('size-bucket padding of sealed artifacts', () => {
  it('follows Padmé: known values, at most 12 % overhead, few distinct sizes', () => {
    // Values from the PURBs paper's definition (E = ⌊log2 L⌋, S = ⌊log2 E⌋ + 1, round to 2^(E-S)).
    expect(padmeLength(9)).toBe(10);
    expect(padmeLength(1000)).toBe(1024);
    expect(padmeLength(5000)).toBe(5120);
    expect(padmeLength(1_000_000)).toBe(1_015_808);
    const sizes = new Set<number>();
    for (let n = 0; n < 300_000; n += 61) {
      const p = paddedLength(n);
      expect(p).toBeGreaterThan(n);
      expect(p).toBeGreaterThanOrEqual(MIN_PADDED_BYTES);
      if (n > MIN_PADDED_BYTES) expect(p / (n + 1)).toBeLessThanOrEqual(1.12);
      sizes.add(p);
    }
    expect(sizes.size).toBeLessThan(200);
  });

  it('hides the plaintext size inside a bucket and opens back to the exact bytes and type', async () => {
    const k = await generateKemKeyPair();
    const a = new Uint8Array(5000).fill(7);
    const b = new Uint8Array(5100).fill(9);
    const sa = await seal(padPlaintext(a), paddedContentType('text/csv'), k.publicKey);
    const sb = await seal(padPlaintext(b), paddedContentType('text/csv'), k.publicKey);
    expect(sa.length).toBe(sb.length);
    const unpadded = await seal(a, 'text/csv', k.publicKey);
    expect(sa.length).toBeGreaterThan(unpadded.length);
    const oa = await openOutput(sa, k.privateKey);
    expect(oa.contentType).toBe('text/csv');
    expect(Buffer.from(oa.bytes).equals(Buffer.from(a))).toBe(true);
    // An empty body and a body ending in zeros and 0x80 bytes come back exactly.
    for (const body of [new Uint8Array(0), Uint8Array.from([1, 0x80, 0, 0, 0x80, 0])]) {
      const s = await seal(padPlaintext(body), paddedContentType('x/y'), k.publicKey);
      expect(Array.from((await openOutput(s, k.privateKey)).bytes)).toEqual(Array.from(body));
    }
  });

  it('the padding is authenticated: altering it or dropping the marker from the header fails the open', async () => {
    const k = await generateKemKeyPair();
    const sealed = await seal(
      padPlaintext(new Uint8Array(100).fill(1)),
      paddedContentType('a/b'),
      k.publicKey,
    );
    const tail = Uint8Array.from(sealed);
    tail[tail.length - 20]! ^= 1; // inside the last chunk, where the padding zeros are
    await expect(openOutput(tail, k.privateKey)).rejects.toMatchObject({ code: 'E_ARTIFACT_TAMPERED' });
    // Rewrite the header's content type so the opener would keep the padding: the header is the AAD.
    const h = readArtifactHeader(sealed);
    const text = Buffer.from(sealed);
    const at = text.indexOf(Buffer.from(h.contentType));
    expect(at).toBeGreaterThan(0);
    const swapped = Uint8Array.from(sealed);
    swapped.set(Buffer.from('a/b; firn-pad=padmX'), at);
    await expect(openOutput(swapped, k.privateKey)).rejects.toBeDefined();
    expect(() => unpadPlaintext(new Uint8Array(16))).toThrow(/padding marker/);
  });

  it('parses the content-type parameter and leaves other types alone', () => {
    expect(parsePaddedContentType('text/csv; firn-pad=padme')).toEqual({
      padded: true,
      contentType: 'text/csv',
    });
    expect(parsePaddedContentType('text/csv; charset=utf-8')).toEqual({
      padded: false,
      contentType: 'text/csv; charset=utf-8',
    });
  });
});
