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

/** Sign a 32-byte digest as is (no further hashing): 65 bytes r || s || v, low-s, v = 27 + parity. */
export function signDigest(privateKey: Uint8Array, digest: Uint8Array): Uint8Array {
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
