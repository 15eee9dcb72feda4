import { readFileSync } from 'node:fs';
import { bytesToHex, hexToBytes, sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import {
  createRecipientContextWith,
  createSenderContextWith,
  generateKemKeyPair,
  hpkeSuite,
} from './hpke.ts';
import { nativeRecipientContext, nativeSenderContext, x25519PrivateKey } from './hpkeNative.ts';

interface BaseVector {
  mode: number;
  kem_id: number;
  kdf_id: number;
  aead_id: number;
  info: string;
  skRm: string;
  pkRm: string;
  skEm: string;
  pkEm: string;
  enc: string;
  encryptions: { aad: string; ct: string; pt: string }[];
  exports: { exporter_context: string; L: number; exported_value: string }[];
}

const h = (s: string) => hexToBytes(s);
const vector = (
  JSON.parse(readFileSync(sharedPath('vectors', 'hpke', 'test-vectors.json'), 'utf8')) as BaseVector[]
).find((v) => v.mode === 0 && v.kem_id === 32 && v.kdf_id === 1 && v.aead_id === 2);

describe('native HPKE (base mode, X25519 / HKDF-SHA256 / AES-256-GCM)', () => {
  it('reproduces the RFC 9180 vector: keys, enc, all 257 encryptions, every export', async () => {
    if (vector === undefined) throw new Error('the RFC 9180 base-mode AES-256-GCM vector is missing');
    expect(bytesToHex(x25519PrivateKey(h(vector.skRm)).publicKey)).toBe(`0x${vector.pkRm}`);
    const s = nativeSenderContext(h(vector.pkRm), h(vector.info), h(vector.skEm));
    expect(bytesToHex(s.enc)).toBe(`0x${vector.enc}`);
    const r = nativeRecipientContext(h(vector.skRm), h(vector.enc), h(vector.info));
    expect(vector.encryptions.length).toBe(257);
    for (const x of vector.encryptions) {
      expect(bytesToHex(await s.seal(h(x.pt), h(x.aad)))).toBe(`0x${x.ct}`);
      expect(bytesToHex(await r.open(h(x.ct), h(x.aad)))).toBe(`0x${x.pt}`);
    }
    for (const x of vector.exports) {
      expect(bytesToHex(await s.export(h(x.exporter_context), x.L))).toBe(`0x${x.exported_value}`);
      expect(bytesToHex(await r.export(h(x.exporter_context), x.L))).toBe(`0x${x.exported_value}`);
    }
  });

  it('interoperates with @hpke/core in both directions (random keys, info, aad, lengths)', async () => {
    const suite = hpkeSuite('aes-256-gcm');
    for (let i = 0; i < 8; i++) {
      const k = await generateKemKeyPair();
      const info = crypto.getRandomValues(new Uint8Array(i * 5));
      const aad = crypto.getRandomValues(new Uint8Array(i * 3));
      const pt = crypto.getRandomValues(new Uint8Array(i * 97));
      // native -> library
      const ns = nativeSenderContext(k.publicKey, info);
      const lr = await createRecipientContextWith(suite, k.privateKey, ns.enc, { info });
      expect(await lr.open(await ns.seal(pt, aad), aad)).toEqual(pt);
      expect(await lr.open(await ns.seal(pt), new Uint8Array(0))).toEqual(pt);
      // library -> native
      const ls = await createSenderContextWith(suite, k.publicKey, { info });
      const nr = nativeRecipientContext(k.privateKey, ls.enc, info);
      expect(await nr.open(await ls.seal(pt, aad), aad)).toEqual(pt);
      const label = Uint8Array.of(i);
      expect(await nr.export(label, 32)).toEqual(await ls.export(label, 32));
    }
  });

  it('keeps one cached key object per private key: distinct keys give their own public keys', async () => {
    const keys = await Promise.all(Array.from({ length: 20 }, () => generateKemKeyPair()));
    // 20 keys overflow the 16-entry cache; every lookup must still give that key's own public key.
    for (let round = 0; round < 2; round++)
      for (const k of keys) expect(x25519PrivateKey(k.privateKey).publicKey).toEqual(k.publicKey);
    // A caller that later changes its array does not change what was cached for the old bytes.
    const k = await generateKemKeyPair();
    const mutable = k.privateKey.slice();
    expect(x25519PrivateKey(mutable).publicKey).toEqual(k.publicKey);
    mutable[0]! ^= 0xff;
    expect(x25519PrivateKey(mutable).publicKey).not.toEqual(k.publicKey);
  });
});
