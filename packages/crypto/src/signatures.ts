import { createECDH, createHmac, type ECDH } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import {
  assertBytes,
  bytesToHex,
  FirnError,
  type Hex,
  hexBytes,
  InvalidInputError,
  keccak256,
  type Tag,
  taggedKeccak256,
} from '@firn/core';

/**
 * secp256k1 signatures the way the EVM checks them: recoverable 65-byte r || s || v with v in
 * {27, 28}, low-s only (EIP-2), signers named by their Ethereum address (lowercase hex).
 */

export const SIGNATURE_BYTES = 65;

export interface SigningKeyPair {
  /** 32-byte secp256k1 private key. */
  privateKey: Uint8Array;
  /** 65-byte uncompressed public key (0x04 || x || y). */
  publicKey: Uint8Array;
  address: Hex;
}

export function generateSigningKey(): SigningKeyPair {
  const privateKey = secp256k1.utils.randomSecretKey();
  const publicKey = secp256k1.getPublicKey(privateKey, false);
  return { privateKey, publicKey, address: addressOf(publicKey) };
}

/** The uncompressed 65-byte public key of a private key. */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  assertBytes(privateKey, 'secp256k1 private key', 32);
  try {
    return secp256k1.getPublicKey(privateKey, false);
  } catch {
    throw new InvalidInputError('invalid secp256k1 private key');
  }
}

/**
 * Ethereum address of a key: 32 bytes is read as a private key, 33 or 65 as a public key
 * (compressed or uncompressed). keccak256 of the 64-byte x || y, last 20 bytes.
 */
export function addressOf(key: Uint8Array): Hex {
  assertBytes(key, 'key');
  let pub: Uint8Array;
  if (key.length === 32) pub = publicKeyOf(key);
  else if (key.length === 33 || key.length === 65) {
    try {
      pub = secp256k1.Point.fromBytes(key).toBytes(false);
    } catch {
      throw new InvalidInputError('invalid secp256k1 public key');
    }
  } else throw new InvalidInputError('key must be a 32-byte private key or a 33/65-byte public key');
  return bytesToHex(keccak256(pub.subarray(1)).subarray(12));
}

/** Order n of secp256k1's base point (SEC 2, §2.4.1). */
const CURVE_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = CURVE_N >> 1n;

const toBigInt = (b: Uint8Array): bigint =>
  BigInt(`0x${Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex')}`);
const to32 = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');

/** a^-1 mod n (extended Euclid; a in [1, n-1], n prime). */
function invertModN(a: bigint): bigint {
  let [x0, x1, r0, r1] = [1n, 0n, a, CURVE_N];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [x0, x1] = [x1, x0 - q * x1];
  }
  return ((x0 % CURVE_N) + CURVE_N) % CURVE_N;
}

const ZERO_BYTE = new Uint8Array([0]);
const ONE_BYTE = new Uint8Array([1]);
/** One ECDH object whose `setPrivateKey(k)` computes k·G in OpenSSL (synchronous, per process). */
let baseMul: ECDH | undefined;

/**
 * Sign a 32-byte digest as is (no further hashing): 65 bytes r || s || v, low-s (EIP-2),
 * v = 27 + recovery id. Deterministic: k is RFC 6979 §3.2's HMAC-SHA256 DRBG over the key and
 * the digest (int mod n), so the bytes equal @noble/curves' `sign(digest, key, {prehash: false,
 * lowS: true})` (tested). k·G runs in OpenSSL (node:crypto's secp256k1 ECDH: the public key of
 * k); r = x(k·G) mod n, s = k^-1 (z + r·d) mod n, negated when above n/2 (the recovery id's
 * parity bit flips with it); the recovery id is y(k·G)'s parity, plus 2 when x(k·G) >= n (as
 * noble's). The scalar arithmetic is JavaScript BigInt, as noble's is. Raises InvalidInputError
 * for a key outside [1, n-1] or wrong sizes.
 */
export function signDigest(privateKey: Uint8Array, digest: Uint8Array): Uint8Array {
  assertBytes(privateKey, 'secp256k1 private key', 32);
  assertBytes(digest, 'digest', 32);
  const d = toBigInt(privateKey);
  if (d === 0n || d >= CURVE_N) throw new InvalidInputError('invalid secp256k1 private key');
  // bits2int of a 256-bit digest is the digest itself; bits2octets reduces it mod n (RFC 6979 §2.3.4).
  const z = toBigInt(digest) % CURVE_N;
  const x = to32(d);
  const h1 = to32(z);
  const hmac = (key: Buffer, ...parts: Uint8Array[]) => {
    const m = createHmac('sha256', key);
    for (const part of parts) m.update(part);
    return m.digest();
  };
  // RFC 6979 §3.2 steps b-g.
  let v = Buffer.alloc(32, 1);
  let k = Buffer.alloc(32, 0);
  k = hmac(k, v, ZERO_BYTE, x, h1);
  v = hmac(k, v);
  k = hmac(k, v, ONE_BYTE, x, h1);
  v = hmac(k, v);
  baseMul ??= createECDH('secp256k1');
  for (;;) {
    // Step h: one 32-byte block is enough for a 256-bit n.
    v = hmac(k, v);
    const kn = toBigInt(v);
    if (kn > 0n && kn < CURVE_N) {
      baseMul.setPrivateKey(v);
      const point = baseMul.getPublicKey(null, 'uncompressed');
      const rx = toBigInt(point.subarray(1, 33));
      const r = rx % CURVE_N;
      if (r !== 0n) {
        let s = (invertModN(kn) * ((z + r * d) % CURVE_N)) % CURVE_N;
        if (s !== 0n) {
          let recovery = (point[64]! & 1) | (rx >= CURVE_N ? 2 : 0);
          if (s > HALF_N) {
            s = CURVE_N - s;
            recovery ^= 1;
          }
          const out = new Uint8Array(SIGNATURE_BYTES);
          out.set(to32(r), 0);
          out.set(to32(s), 32);
          out[64] = 27 + recovery;
          return out;
        }
      }
    }
    k = hmac(k, v, ZERO_BYTE);
    v = hmac(k, v);
  }
}

/** signDigest through @noble/curves (the reference the native path is tested against). */
export function signDigestNoble(privateKey: Uint8Array, digest: Uint8Array): Uint8Array {
  assertBytes(privateKey, 'secp256k1 private key', 32);
  assertBytes(digest, 'digest', 32);
  let rec: Uint8Array;
  try {
    // 'recovered' is recovery byte || r || s; RFC 6979 deterministic k; lowS is the secp256k1 default.
    rec = secp256k1.sign(digest, privateKey, { prehash: false, lowS: true, format: 'recovered' });
  } catch {
    throw new InvalidInputError('invalid secp256k1 private key');
  }
  const out = new Uint8Array(SIGNATURE_BYTES);
  out.set(rec.subarray(1, 65), 0);
  out[64] = 27 + rec[0]!;
  return out;
}

function parseRecoverable(signature: Uint8Array): { compact: Uint8Array; recovery: number } {
  assertBytes(signature, 'signature', SIGNATURE_BYTES);
  const v = signature[64]!;
  const recovery = v >= 27 ? v - 27 : v;
  if (recovery !== 0 && recovery !== 1) throw new FirnError('E_CRYPTO', 'signature v must be 0, 1, 27 or 28');
  return { compact: signature.subarray(0, 64), recovery };
}

/**
 * Recover the signer's address from a digest and a 65-byte signature. Proves that the holder of
 * that address's key signed exactly this digest; it does not say what the digest means, so callers
 * must build digests with a domain tag (signTagged).
 */
export function recoverAddress(digest: Uint8Array, signature: Uint8Array): Hex {
  assertBytes(digest, 'digest', 32);
  const { compact, recovery } = parseRecoverable(signature);
  try {
    const sig = secp256k1.Signature.fromBytes(compact, 'compact');
    // EIP-2: a high-s twin of a valid signature is refused, so signatures are not malleable.
    if (sig.hasHighS()) throw new Error('high s');
    const point = sig.addRecoveryBit(recovery).recoverPublicKey(digest);
    return addressOf(point.toBytes(false));
  } catch (e) {
    throw new FirnError('E_CRYPTO', 'signature does not recover to a public key', { cause: e });
  }
}

/**
 * Verify a 64-byte r || s (or 65-byte r || s || v) signature over a digest against a public key,
 * low-s enforced. Proves the key holder signed this digest; it does not interpret the digest.
 */
export function verifyDigest(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
  assertBytes(publicKey, 'public key');
  assertBytes(digest, 'digest', 32);
  assertBytes(signature, 'signature');
  if (signature.length !== 64 && signature.length !== 65) return false;
  try {
    return secp256k1.verify(signature.subarray(0, 64), digest, publicKey, {
      prehash: false,
      lowS: true,
      format: 'compact',
    });
  } catch {
    return false;
  }
}

/** The digest signTagged signs: keccak256 over the tag and the length-prefixed fields. */
export function taggedDigest(tag: Tag, fields: readonly Uint8Array[]): Uint8Array {
  return taggedKeccak256(tag, ...fields);
}

/** Sign a domain-separated digest of fields; returns 65 bytes r || s || v. */
export function signTagged(privateKey: Uint8Array, tag: Tag, fields: readonly Uint8Array[]): Uint8Array {
  return signDigest(privateKey, taggedDigest(tag, fields));
}

/**
 * Check that `signature` over (tag, fields) recovers to `expectedAddress`. Proves that address
 * signed these fields in this context (tag); it does not check that the address is authorised.
 */
export function verifyTagged(
  expectedAddress: Hex | string,
  tag: Tag,
  fields: readonly Uint8Array[],
  signature: Uint8Array,
): boolean {
  const want = bytesToHex(hexBytes(expectedAddress, 'address', 20));
  try {
    return recoverAddress(taggedDigest(tag, fields), signature) === want;
  } catch (e) {
    if (e instanceof FirnError && e.code === 'E_CRYPTO') return false;
    throw e;
  }
}
