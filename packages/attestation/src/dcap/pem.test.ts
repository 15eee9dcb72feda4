import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { VECTORS, vectorJson } from '../../test/dcap/testVectors.ts';
import { MAX_CERT_BYTES, MAX_CHAIN_CERTS, pemCertificates } from './x509.ts';

/**
 * The PEM splitter as it was first written (one regular expression): the scanner that replaced
 * it must split every text the same way, skip the same malformed blocks and fail the same way.
 */
function referenceSplit(text: string, what: string): Uint8Array[] | string {
  if (text.length > MAX_CHAIN_CERTS * MAX_CERT_BYTES * 2) return `${what}: PEM text too large`;
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(
    /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g,
  )) {
    if (out.length >= MAX_CHAIN_CERTS) return `${what}: more than ${MAX_CHAIN_CERTS} certificates`;
    out.push(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
  }
  if (out.length === 0) return `${what}: no certificate found`;
  return out;
}

function split(text: string): Uint8Array[] | string {
  try {
    return pemCertificates(text, 'chain');
  } catch (e) {
    if (!isFirnError(e) || e.code !== 'E_EVIDENCE_MALFORMED') throw e;
    return e.message;
  }
}

const hexOf = (r: Uint8Array[] | string) =>
  typeof r === 'string' ? r : r.map((d) => Buffer.from(d).toString('hex'));

describe('pemCertificates', () => {
  const chain = vectorJson(VECTORS.sgx.collateral).tcb_info_issuer_chain as string;
  // Characters that matter to the grammar: markers, base64, padding, ASCII and Unicode spaces.
  const alphabet = ['-', 'A', 'z', '0', '+', '/', '=', ' ', '\n', '\r', '\t', '\u00a0', '\u2028', '!', 'é'];

  it('splits Intel chains as the reference does', () => {
    const r = split(chain);
    expect(typeof r).not.toBe('string');
    expect(hexOf(r)).toEqual(hexOf(referenceSplit(chain, 'chain')));
    expect((r as Uint8Array[]).length).toBe(2);
  });

  it('agrees with the reference on every mutated chain (insertions, deletions, replacements)', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let k = 0; k < 3000; k++) {
      let t = k % 3 === 0 ? chain + chain : chain;
      for (let m = 0; m < 1 + rnd(4); m++) {
        const i = rnd(t.length + 1);
        const op = rnd(3);
        const ch = alphabet[rnd(alphabet.length)]!;
        if (op === 0) t = t.slice(0, i) + ch + t.slice(i);
        else if (op === 1) t = t.slice(0, i) + t.slice(i + 1 + rnd(40));
        else t = t.slice(0, i) + ch + t.slice(i + 1);
      }
      expect(hexOf(split(t)), `case ${k}`).toEqual(hexOf(referenceSplit(t, 'chain')));
    }
  });

  it('agrees on marker edge cases', () => {
    const b = '-----BEGIN CERTIFICATE-----';
    const e = '-----END CERTIFICATE-----';
    for (const t of [
      '',
      b + e,
      `${b}${b}QUJD${e}`,
      `${b}QUJD`,
      `${b}QU!JD${e}${b}QUJD${e}`,
      `${b}QUJD${e}${e}`,
      `${b} \n ${e}`,
      `${b}QU\u00a0JD\u2028${e}`,
      `x${b}QUJD${e}y${b}QQ==${e}`,
      `${b}QUJD${e}`.repeat(MAX_CHAIN_CERTS),
      `${b}QUJD${e}`.repeat(MAX_CHAIN_CERTS + 1),
    ])
      expect(hexOf(split(t)), JSON.stringify(t)).toEqual(hexOf(referenceSplit(t, 'chain')));
  });

  it('stays linear on hostile text at the size cap (many BEGIN markers, one END far away)', () => {
    const b = '-----BEGIN CERTIFICATE-----';
    const cap = MAX_CHAIN_CERTS * MAX_CERT_BYTES * 2;
    const manyBegins = b.repeat(Math.floor(cap / b.length) - 1);
    const farEnd = `${b}${'A'.repeat(cap - 100)}-----END CERTIFICATE-----`.slice(0, cap);
    const t0 = performance.now();
    expect(split(manyBegins)).toBe('chain: no certificate found');
    expect(split(`${manyBegins.slice(0, cap - 30)}-----END CERTIFICATE-----`.slice(0, cap))).toBe(
      'chain: no certificate found',
    );
    split(farEnd);
    // Quadratic scanning of these inputs takes minutes; linear takes milliseconds.
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
