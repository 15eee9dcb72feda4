import { bytesToHex, hexToBytes, sha256, TAGS, utf8 } from '@firn/core';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { privateKeyToAddress } from 'viem/accounts';
import { recoverAddress as viemRecoverAddress } from 'viem';
import { describe, expect, it } from 'vitest';
import {
  addressOf,
  generateSigningKey,
  recoverAddress,
  signDigest,
  signDigestNoble,
  signTagged,
  taggedDigest,
  verifyDigest,
  verifyTagged,
} from './signatures.ts';
import { loadWycheproof } from './wycheproof.ts';

const h = (s: unknown) => hexToBytes(String(s));
const file = loadWycheproof<{ publicKey: { uncompressed: string }; sha: string }>(
  'ecdsa_secp256k1_sha256_bitcoin_test.json',
);

/** DER to 64-byte r || s; a parse failure counts as a rejection (what our verifier would see). */
function derToCompact(der: Uint8Array): Uint8Array | undefined {
  try {
    return secp256k1.Signature.fromBytes(der, 'der').toBytes('compact');
  } catch {
    return undefined;
  }
}

describe('Wycheproof ecdsa_secp256k1_sha256_bitcoin_test.json (low-s enforced) through verifyDigest', () => {
  let executed = 0;
  for (const [i, g] of file.testGroups.entries()) {
    it(`group ${i} (${g.tests.length} tests)`, () => {
      expect(g.sha).toBe('SHA-256');
      const pub = h(g.publicKey.uncompressed);
      for (const t of g.tests) {
        const compact = derToCompact(h(t.sig));
        const ok = compact !== undefined && verifyDigest(pub, sha256(h(t.msg)), compact);
        expect(ok, `tc ${t.tcId} ${t.comment}`).toBe(t.result === 'valid');
        executed++;
      }
    });
  }
  it('executed every test', () => {
    expect(executed).toBe(file.numberOfTests);
  });
});

describe('signatures', () => {
  it('addresses match viem for private and public keys', () => {
    for (let i = 0; i < 5; i++) {
      const k = generateSigningKey();
      const want = privateKeyToAddress(bytesToHex(k.privateKey)).toLowerCase();
      expect(k.address).toBe(want);
      expect(addressOf(k.privateKey)).toBe(want);
      expect(addressOf(secp256k1.getPublicKey(k.privateKey, true))).toBe(want);
    }
  });

  it('signDigest gives low-s r||s||v that recovers to the signer (and viem agrees)', async () => {
    const k = generateSigningKey();
    for (let i = 0; i < 8; i++) {
      const digest = sha256(Uint8Array.of(i));
      const sig = signDigest(k.privateKey, digest);
      expect(sig.length).toBe(65);
      expect([27, 28]).toContain(sig[64]);
      expect(secp256k1.Signature.fromBytes(sig.subarray(0, 64), 'compact').hasHighS()).toBe(false);
      expect(recoverAddress(digest, sig)).toBe(k.address);
      expect(
        (await viemRecoverAddress({ hash: bytesToHex(digest), signature: bytesToHex(sig) })).toLowerCase(),
      ).toBe(k.address);
      expect(verifyDigest(k.publicKey, digest, sig)).toBe(true);
    }
  });

  it('signDigest (OpenSSL k·G, RFC 6979 k) gives the bytes @noble/curves gives, edge keys and digests included', () => {
    const n = secp256k1.Point.CURVE().n;
    const be = (x: bigint) => hexToBytes(`0x${x.toString(16).padStart(64, '0')}`);
    const keys = [
      be(1n),
      be(2n),
      be(n - 1n),
      be(n / 2n),
      ...Array.from({ length: 40 }, () => generateSigningKey().privateKey),
    ];
    const digests = [new Uint8Array(32), new Uint8Array(32).fill(0xff), be(n), be(n - 1n), be(n + 5n)];
    for (const key of keys) {
      for (const digest of [
        ...digests,
        ...Array.from({ length: 10 }, () => crypto.getRandomValues(new Uint8Array(32))),
      ]) {
        const sig = signDigest(key, digest);
        expect(bytesToHex(sig)).toBe(bytesToHex(signDigestNoble(key, digest)));
        expect(recoverAddress(digest, sig)).toBe(addressOf(key));
      }
    }
  });

  it('signDigest refuses keys outside [1, n-1] and wrong sizes', () => {
    const n = secp256k1.Point.CURVE().n;
    const be = (x: bigint) => hexToBytes(`0x${x.toString(16).padStart(64, '0')}`);
    const digest = sha256(utf8('d'));
    for (const bad of [new Uint8Array(32), be(n), be(n + 1n), new Uint8Array(32).fill(0xff)])
      expect(() => signDigest(bad, digest)).toThrow(/invalid secp256k1 private key/);
    expect(() => signDigest(new Uint8Array(31).fill(1), digest)).toThrow();
    expect(() => signDigest(be(7n), new Uint8Array(31))).toThrow();
  });

  it('the recovery id signDigest picks is the one that recovers the signer: the other names another address', () => {
    for (let i = 0; i < 16; i++) {
      const k = generateSigningKey();
      const digest = sha256(Uint8Array.of(i, 1));
      const sig = signDigest(k.privateKey, digest);
      const flipped = Uint8Array.from(sig);
      flipped[64] = sig[64] === 27 ? 28 : 27;
      let other: string | undefined;
      try {
        other = recoverAddress(digest, flipped);
      } catch {
        other = undefined;
      }
      expect(other).not.toBe(k.address);
      expect(recoverAddress(digest, sig)).toBe(k.address);
    }
  });

  it('refuses the high-s twin of a valid signature', () => {
    const k = generateSigningKey();
    const digest = sha256(utf8('x'));
    const sig = signDigest(k.privateKey, digest);
    const s = secp256k1.Signature.fromBytes(sig.subarray(0, 64), 'compact');
    const high = new secp256k1.Signature(s.r, secp256k1.Point.CURVE().n - s.s).toBytes('compact');
    const twin = new Uint8Array(65);
    twin.set(high);
    twin[64] = sig[64] === 27 ? 28 : 27;
    expect(() => recoverAddress(digest, twin)).toThrow(/recover/);
    expect(verifyDigest(k.publicKey, digest, high)).toBe(false);
  });

  it('signTagged binds the tag and every field', () => {
    const k = generateSigningKey();
    const fields = [utf8('a'), utf8('bc')];
    const sig = signTagged(k.privateKey, TAGS.signedData, fields);
    expect(verifyTagged(k.address, TAGS.signedData, fields, sig)).toBe(true);
    expect(verifyTagged(k.address, TAGS.workProof, fields, sig)).toBe(false);
    expect(verifyTagged(k.address, TAGS.signedData, [utf8('ab'), utf8('c')], sig)).toBe(false);
    expect(verifyTagged(generateSigningKey().address, TAGS.signedData, fields, sig)).toBe(false);
    const bad = sig.slice();
    bad[10]! ^= 1;
    expect(verifyTagged(k.address, TAGS.signedData, fields, bad)).toBe(false);
    expect(taggedDigest(TAGS.signedData, fields).length).toBe(32);
  });
});
