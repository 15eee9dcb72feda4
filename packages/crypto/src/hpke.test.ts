import { readFileSync } from 'node:fs';
import { bytesToHex, hexToBytes, isFirnError, sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import {
  createRecipientContext,
  createRecipientContextWith,
  createSenderContext,
  createSenderContextWith,
  deriveKemKeyPair,
  generateKemKeyPair,
  type HpkeAead,
  hpkeOpen,
  hpkeSeal,
  hpkeSuite,
  kemPublicKeyOf,
} from './hpke.ts';

interface HpkeVector {
  mode: number;
  kem_id: number;
  kdf_id: number;
  aead_id: number;
  info: string;
  ikmR: string;
  ikmE: string;
  ikmS?: string;
  skRm: string;
  pkRm: string;
  skEm: string;
  pkEm: string;
  skSm?: string;
  pkSm?: string;
  psk?: string;
  psk_id?: string;
  enc: string;
  encryptions: { aad: string; ct: string; nonce: string; pt: string }[];
  exports: { exporter_context: string; L: number; exported_value: string }[];
}

const h = (s: string) => hexToBytes(s);
const all = JSON.parse(
  readFileSync(sharedPath('vectors', 'hpke', 'test-vectors.json'), 'utf8'),
) as HpkeVector[];

// Driven: DHKEM(X25519, HKDF-SHA256) with KDF HKDF-SHA256, every mode (base, psk, auth, auth_psk),
// AEAD AES-128-GCM, AES-256-GCM (our suite) and export-only.
// Skipped: other KEMs (P-256, P-521, X448) and KDF HKDF-SHA512 are not our suite; ChaCha20-Poly1305
// would need @hpke/chacha20poly1305, which is not a dependency.
const AEADS: Record<number, HpkeAead> = { 1: 'aes-128-gcm', 2: 'aes-256-gcm', 65535: 'export-only' };
const driven = all.filter((v) => v.kem_id === 32 && v.kdf_id === 1 && AEADS[v.aead_id] !== undefined);

describe('RFC 9180 vectors (kem 32, kdf 1)', () => {
  it('selects the expected 12 groups out of 128', () => {
    expect(all.length).toBe(128);
    expect(driven.length).toBe(12);
    expect(driven.filter((v) => v.mode === 0 && v.aead_id === 2).length).toBe(1);
  });

  let encryptions = 0;
  let exportsRun = 0;
  for (const v of driven) {
    it(`mode ${v.mode} aead ${v.aead_id}: keys, enc, every encryption and export`, async () => {
      const suite = hpkeSuite(AEADS[v.aead_id]);
      const r = await deriveKemKeyPair(h(v.ikmR));
      expect(bytesToHex(r.privateKey)).toBe(`0x${v.skRm}`);
      expect(bytesToHex(r.publicKey)).toBe(`0x${v.pkRm}`);
      expect(bytesToHex(kemPublicKeyOf(r.privateKey))).toBe(`0x${v.pkRm}`);
      const e = await deriveKemKeyPair(h(v.ikmE));
      expect(bytesToHex(e.privateKey)).toBe(`0x${v.skEm}`);
      expect(bytesToHex(e.publicKey)).toBe(`0x${v.pkEm}`);
      const psk =
        v.psk !== undefined && v.psk_id !== undefined ? { key: h(v.psk), id: h(v.psk_id) } : undefined;
      let skS: Uint8Array | undefined;
      if (v.ikmS !== undefined && v.skSm !== undefined && v.pkSm !== undefined) {
        const s = await deriveKemKeyPair(h(v.ikmS));
        expect(bytesToHex(s.privateKey)).toBe(`0x${v.skSm}`);
        expect(bytesToHex(s.publicKey)).toBe(`0x${v.pkSm}`);
        skS = s.privateKey;
      }
      const sender = await createSenderContextWith(suite, r.publicKey, {
        info: h(v.info),
        ephemeralIkm: h(v.ikmE),
        ...(psk ? { psk } : {}),
        ...(skS ? { senderPrivateKey: skS } : {}),
      });
      expect(bytesToHex(sender.enc)).toBe(`0x${v.enc}`);
      const recipient = await createRecipientContextWith(suite, r.privateKey, h(v.enc), {
        info: h(v.info),
        ...(psk ? { psk } : {}),
        ...(skS ? { senderPublicKey: kemPublicKeyOf(skS) } : {}),
      });
      // Sequence numbers 0..256 in order: the library's counter must match the vector's nonce.
      for (const x of v.encryptions) {
        expect(bytesToHex(await sender.seal(h(x.pt), h(x.aad)))).toBe(`0x${x.ct}`);
        expect(bytesToHex(await recipient.open(h(x.ct), h(x.aad)))).toBe(`0x${x.pt}`);
        encryptions++;
      }
      for (const x of v.exports) {
        expect(bytesToHex(await sender.export(h(x.exporter_context), x.L))).toBe(`0x${x.exported_value}`);
        expect(bytesToHex(await recipient.export(h(x.exporter_context), x.L))).toBe(`0x${x.exported_value}`);
        exportsRun++;
      }
    });
  }

  it('ran every encryption and export of the driven groups', () => {
    const wantEnc = driven.reduce((n, v) => n + v.encryptions.length, 0);
    const wantExp = driven.reduce((n, v) => n + v.exports.length, 0);
    expect(wantEnc).toBe(8 * 257); // export-only groups carry no encryptions
    expect(encryptions).toBe(wantEnc);
    expect(exportsRun).toBe(wantExp);
  });
});

// Low-order X25519 points (RFC 7748 §6.1 / cr.yp.to/ecdh.html): the DH output is all zero.
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

describe('hpke API', () => {
  const code = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
      return 'ok';
    } catch (e) {
      return isFirnError(e) ? e.code : `foreign:${String(e)}`;
    }
  };

  it('seals and opens, and binds info and aad', async () => {
    const r = await generateKemKeyPair();
    expect(r.privateKey.length).toBe(32);
    expect(bytesToHex(kemPublicKeyOf(r.privateKey))).toBe(bytesToHex(r.publicKey));
    const info = new TextEncoder().encode('ctx');
    const aad = Uint8Array.of(1, 2, 3);
    const pt = new TextEncoder().encode('hello enclave');
    const { enc, ciphertext } = await hpkeSeal(r.publicKey, pt, { info, aad });
    expect(await hpkeOpen(r.privateKey, enc, ciphertext, { info, aad })).toEqual(pt);
    expect(await code(hpkeOpen(r.privateKey, enc, ciphertext, { info }))).toBe('E_DECRYPT');
    expect(await code(hpkeOpen(r.privateKey, enc, ciphertext, { aad }))).toBe('E_DECRYPT');
    const other = await generateKemKeyPair();
    expect(await code(hpkeOpen(other.privateKey, enc, ciphertext, { info, aad }))).toBe('E_DECRYPT');
    for (let i = 0; i < ciphertext.length; i += 7) {
      const bad = ciphertext.slice();
      bad[i]! ^= 1;
      expect(await code(hpkeOpen(r.privateKey, enc, bad, { info, aad }))).toBe('E_DECRYPT');
    }
    const badEnc = enc.slice();
    badEnc[3]! ^= 0x10;
    expect(await code(hpkeOpen(r.privateKey, badEnc, ciphertext, { info, aad }))).toBe('E_DECRYPT');
    expect(await code(hpkeOpen(r.privateKey, enc.subarray(0, 31), ciphertext, { info, aad }))).toBe(
      'E_DECRYPT',
    );
  });

  it('refuses low-order points as recipient key and as enc', async () => {
    const r = await generateKemKeyPair();
    const { ciphertext } = await hpkeSeal(r.publicKey, Uint8Array.of(1));
    for (const p of LOW_ORDER) {
      expect(await code(hpkeSeal(h(p), Uint8Array.of(1)))).toBe('E_CRYPTO');
      expect(await code(hpkeOpen(r.privateKey, h(p), ciphertext))).toBe('E_DECRYPT');
    }
  });

  it('contexts keep order and export equal secrets on both sides', async () => {
    const r = await generateKemKeyPair();
    const s = await createSenderContext(r.publicKey, { info: Uint8Array.of(9) });
    const rc = await createRecipientContext(r.privateKey, s.enc, { info: Uint8Array.of(9) });
    const c0 = await s.seal(Uint8Array.of(0));
    const c1 = await s.seal(Uint8Array.of(1));
    // Out of order: the recipient expects sequence 0 and must refuse c1 without advancing.
    expect(await code(rc.open(c1))).toBe('E_DECRYPT');
    expect(await rc.open(c0)).toEqual(Uint8Array.of(0));
    expect(await rc.open(c1)).toEqual(Uint8Array.of(1));
    const label = new TextEncoder().encode('x');
    expect(await s.export(label, 32)).toEqual(await rc.export(label, 32));
    expect(await code(s.export(label, 8161))).toBe('E_INVALID_INPUT');
  });

  it('rejects keys of the wrong size with a typed error', async () => {
    expect(await code(hpkeSeal(new Uint8Array(31), Uint8Array.of(1)))).toBe('E_INVALID_INPUT');
    expect(() => kemPublicKeyOf(new Uint8Array(33))).toThrow(/32 bytes/);
  });
});
