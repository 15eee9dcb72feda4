import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { assertBytes, FirnError, InvalidInputError } from '@firn/core';

/**
 * RFC 9180 HPKE for firn's one suite in base mode, on node:crypto's synchronous primitives:
 * DHKEM(X25519, HKDF-SHA256) (kem 0x0020), HKDF-SHA256 (kdf 0x0001), AES-256-GCM (aead 0x0002).
 * The same bytes as @hpke/core's implementation of that suite (hpkeNative.test.ts checks the RFC
 * 9180 vector and both directions against the library), without its WebCrypto round trips: an
 * encapsulation is one X25519 key generation and one DH in OpenSSL, the key schedule a handful of
 * HMACs. Keys enter OpenSSL as JWK (raw key bytes; OpenSSL's PKCS#8/SPKI decoders cost ~0.5 ms a
 * key), and the X25519 key objects of recently used private keys are kept, under a digest of the
 * key, so a long-lived key (the enclave's KEM key) is imported once.
 * Internal to @firn/crypto: hpke.ts's product API (createSenderContext, createRecipientContext,
 * hpkeSeal, hpkeOpen) runs on it; the `...With` entry points keep the library for the other modes
 * and AEADs the vector tests drive.
 */

const NK = 32; // AES-256 key
const NN = 12; // AES-GCM nonce
const NT = 16; // AES-GCM tag
const NH = 32; // HKDF-SHA256 output
const NPK = 32; // X25519 public key / enc
const EMPTY = new Uint8Array(0);
const VERSION_LABEL = Buffer.from('HPKE-v1');
const KEM_SUITE_ID = Buffer.from([0x4b, 0x45, 0x4d, 0x00, 0x20]); // "KEM" || I2OSP(0x0020, 2)
// "HPKE" || I2OSP(kem 0x0020, 2) || I2OSP(kdf 0x0001, 2) || I2OSP(aead 0x0002, 2)
const HPKE_SUITE_ID = Buffer.from([0x48, 0x50, 0x4b, 0x45, 0x00, 0x20, 0x00, 0x01, 0x00, 0x02]);
const ZERO_SALT = Buffer.alloc(NH);

function i2osp2(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

// RFC 9180 §4: LabeledExtract(salt, label, ikm) = HKDF-Extract(salt, "HPKE-v1" || suite_id || label || ikm).
function labeledExtract(suiteId: Buffer, salt: Uint8Array, label: string, ikm: Uint8Array): Buffer {
  // HMAC pads a short key with zeros: an empty salt is HashLen zero bytes (RFC 5869 §2.2).
  return createHmac('sha256', salt.length === 0 ? ZERO_SALT : salt)
    .update(VERSION_LABEL)
    .update(suiteId)
    .update(label)
    .update(ikm)
    .digest();
}

// LabeledExpand(prk, label, info, L) =
//   HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L).
function labeledExpand(suiteId: Buffer, prk: Uint8Array, label: string, info: Uint8Array, L: number): Buffer {
  const labeled = Buffer.concat([i2osp2(L), VERSION_LABEL, suiteId, Buffer.from(label), info]);
  const out = Buffer.alloc(L);
  let t: Buffer = Buffer.alloc(0);
  for (let i = 1, o = 0; o < L; i++) {
    t = createHmac('sha256', prk)
      .update(t)
      .update(labeled)
      .update(Buffer.from([i]))
      .digest();
    o += t.copy(out, o);
  }
  return out;
}

/** An X25519 public key object from its 32 raw bytes (RFC 8037 OKP JWK). */
function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') },
    format: 'jwk',
  });
}

/** Private key objects and public keys of recently used private keys, by SHA-256 of the key. */
const privateKeys = new Map<string, { key: KeyObject; publicKey: Uint8Array }>();
const MAX_CACHED_KEYS = 16;

/**
 * The X25519 key object and raw public key of a raw 32-byte private key (RFC 7748 §6.1: OpenSSL
 * clamps the scalar). Throws InvalidInputError for a key that is not 32 bytes.
 */
export function x25519PrivateKey(raw: Uint8Array): { key: KeyObject; publicKey: Uint8Array } {
  assertBytes(raw, 'KEM private key', NPK);
  const id = createHash('sha256').update(raw).digest('base64');
  const hit = privateKeys.get(id);
  if (hit !== undefined) return hit;
  const key = importPrivateKey(raw);
  const x = createPublicKey(key).export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new FirnError('E_CRYPTO', 'X25519 public key derivation failed');
  const entry = { key, publicKey: new Uint8Array(Buffer.from(x, 'base64url')) };
  if (entry.publicKey.length !== NPK) throw new FirnError('E_CRYPTO', 'X25519 public key derivation failed');
  if (privateKeys.size >= MAX_CACHED_KEYS) privateKeys.delete(privateKeys.keys().next().value as string);
  privateKeys.set(id, entry);
  return entry;
}

/** PKCS#8 prefix of an X25519 private key (RFC 8410 §7): the 32 raw bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * Import a raw X25519 private key. As a JWK (no ASN.1 decoder): Node does not check `x` against
 * `d` there, and the public key is derived from `d` afterwards, so a placeholder stands in for `x`.
 * A runtime that checks it gets the PKCS#8 import instead (the same key, ~0.5 ms slower).
 */
function importPrivateKey(raw: Uint8Array): KeyObject {
  const d = Buffer.from(raw).toString('base64url');
  try {
    return createPrivateKey({
      key: { kty: 'OKP', crv: 'X25519', d, x: ZERO_SALT.toString('base64url') },
      format: 'jwk',
    });
  } catch {
    return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  }
}

/** X25519(sk, pk); refuses the all-zero output of a low-order point (RFC 9180 §7.1.4). */
function dh(privateKey: KeyObject, publicKey: Uint8Array): Buffer {
  let z: Buffer;
  try {
    z = diffieHellman({ privateKey, publicKey: publicKeyObject(publicKey) });
  } catch (e) {
    throw new FirnError('E_CRYPTO', 'X25519 failed (low-order or invalid public key)', { cause: e });
  }
  let acc = 0;
  for (const b of z) acc |= b;
  if (acc === 0) throw new FirnError('E_CRYPTO', 'X25519 public key is of low order');
  return z;
}

// DHKEM ExtractAndExpand(dh, kem_context) -> shared_secret (RFC 9180 §4.1).
function extractAndExpand(z: Uint8Array, kemContext: Uint8Array): Buffer {
  const eaePrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', z);
  return labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, NH);
}

/** A base-mode key schedule's outputs (RFC 9180 §5.1). */
interface Schedule {
  key: Buffer;
  baseNonce: Buffer;
  exporterSecret: Buffer;
}

function keySchedule(sharedSecret: Uint8Array, info: Uint8Array): Schedule {
  const pskIdHash = labeledExtract(HPKE_SUITE_ID, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = labeledExtract(HPKE_SUITE_ID, EMPTY, 'info_hash', info);
  const context = Buffer.concat([Buffer.from([0x00]), pskIdHash, infoHash]); // mode_base
  const secret = labeledExtract(HPKE_SUITE_ID, sharedSecret, 'secret', EMPTY);
  return {
    key: labeledExpand(HPKE_SUITE_ID, secret, 'key', context, NK),
    baseNonce: labeledExpand(HPKE_SUITE_ID, secret, 'base_nonce', context, NN),
    exporterSecret: labeledExpand(HPKE_SUITE_ID, secret, 'exp', context, NH),
  };
}

/** A context's message sequence and exporter (RFC 9180 §5.2, §5.3). */
class NativeContext {
  protected seq = 0;
  constructor(protected readonly s: Schedule) {}

  // nonce = base_nonce XOR I2OSP(seq, Nn) for the current sequence number (2^53 messages at most).
  protected nonce(): Buffer {
    if (!Number.isSafeInteger(this.seq + 1)) throw new FirnError('E_CRYPTO', 'HPKE message limit reached');
    const nonce = Buffer.from(this.s.baseNonce);
    let q = this.seq;
    for (let i = NN - 1; i >= 0 && q > 0; i--) {
      nonce[i]! ^= q % 256;
      q = Math.floor(q / 256);
    }
    return nonce;
  }

  async export(exporterContext: Uint8Array, length: number): Promise<Uint8Array> {
    assertBytes(exporterContext, 'exporter context');
    if (!Number.isInteger(length) || length < 1 || length > 255 * NH)
      throw new InvalidInputError('export length must be 1..8160');
    return new Uint8Array(
      labeledExpand(HPKE_SUITE_ID, this.s.exporterSecret, 'sec', exporterContext, length),
    );
  }
}

/** A base-mode sender context: `enc` for the recipient, `seal` in sequence, `export`. */
class NativeSender extends NativeContext {
  constructor(
    s: Schedule,
    readonly enc: Uint8Array,
  ) {
    super(s);
  }

  async seal(plaintext: Uint8Array, aad: Uint8Array = EMPTY): Promise<Uint8Array> {
    const c = createCipheriv('aes-256-gcm', this.s.key, this.nonce());
    this.seq++;
    c.setAAD(aad);
    const head = c.update(plaintext);
    const tail = c.final();
    const out = new Uint8Array(head.length + tail.length + NT);
    out.set(head, 0);
    out.set(tail, head.length);
    out.set(c.getAuthTag(), head.length + tail.length);
    return out;
  }
}

/** A base-mode recipient context: `open` in the sender's sequence, `export`. */
class NativeRecipient extends NativeContext {
  async open(ciphertext: Uint8Array, aad: Uint8Array = EMPTY): Promise<Uint8Array> {
    if (ciphertext.length < NT) throw new FirnError('E_DECRYPT', 'decryption failed');
    const d = createDecipheriv('aes-256-gcm', this.s.key, this.nonce());
    d.setAAD(aad);
    d.setAuthTag(ciphertext.subarray(ciphertext.length - NT));
    const head = d.update(ciphertext.subarray(0, ciphertext.length - NT));
    let tail: Buffer;
    try {
      tail = d.final();
    } catch {
      head.fill(0);
      throw new FirnError('E_DECRYPT', 'decryption failed');
    }
    // Only an authentic message moves the sequence on (a failed open consumes no nonce).
    this.seq++;
    const out = new Uint8Array(head.length + tail.length);
    out.set(head, 0);
    out.set(tail, head.length);
    return out;
  }
}

/**
 * Encapsulate to `recipientPublicKey` and set up a base-mode sender context (RFC 9180 §5.1.1).
 * `ephemeralPrivateKey` replaces the fresh ephemeral key (vector tests only). Raises
 * InvalidInputError for a key that is not 32 bytes, FirnError E_CRYPTO for a low-order one.
 */
export function nativeSenderContext(
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  ephemeralPrivateKey?: Uint8Array,
): NativeSender {
  assertBytes(recipientPublicKey, 'KEM public key', NPK);
  let sk: KeyObject;
  let enc: Uint8Array;
  if (ephemeralPrivateKey === undefined) {
    const e = generateKeyPairSync('x25519');
    sk = e.privateKey;
    const x = e.publicKey.export({ format: 'jwk' }).x;
    enc = new Uint8Array(Buffer.from(x ?? '', 'base64url'));
    if (enc.length !== NPK) throw new FirnError('E_CRYPTO', 'X25519 key generation failed');
  } else {
    const e = x25519PrivateKey(ephemeralPrivateKey);
    sk = e.key;
    enc = e.publicKey;
  }
  const z = dh(sk, recipientPublicKey);
  const shared = extractAndExpand(z, Buffer.concat([enc, recipientPublicKey]));
  z.fill(0);
  return new NativeSender(keySchedule(shared, info), enc);
}

/**
 * Decapsulate `enc` with `recipientPrivateKey` and set up a base-mode recipient context (RFC 9180
 * §5.1.1). Raises InvalidInputError for a private key that is not 32 bytes; E_DECRYPT for a bad
 * `enc` (wrong length, low order), indistinguishable from a wrong key.
 */
export function nativeRecipientContext(
  recipientPrivateKey: Uint8Array,
  enc: Uint8Array,
  info: Uint8Array,
): NativeRecipient {
  const r = x25519PrivateKey(recipientPrivateKey);
  assertBytes(enc, 'enc');
  if (enc.length !== NPK) throw new FirnError('E_DECRYPT', 'decryption failed');
  let z: Buffer;
  try {
    z = dh(r.key, enc);
  } catch (e) {
    throw new FirnError('E_DECRYPT', 'decryption failed', { cause: e });
  }
  const shared = extractAndExpand(z, Buffer.concat([enc, r.publicKey]));
  z.fill(0);
  return new NativeRecipient(keySchedule(shared, info));
}
