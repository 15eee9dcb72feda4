import { x25519 } from '@noble/curves/ed25519.js';
import { assertBytes, FirnError, InvalidInputError } from '@firn/core';

/**
 * Raw X25519 (RFC 7748) with one policy on top: an all-zero shared secret, which any low-order
 * public key produces, is refused (RFC 9180 §7.1.4). Non-canonical u-coordinates and twist points
 * are accepted and computed as RFC 7748 says (mask the top bit, reduce mod p).
 */
export function x25519SharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  assertBytes(privateKey, 'X25519 private key', 32);
  assertBytes(publicKey, 'X25519 public key', 32);
  let out: Uint8Array;
  try {
    out = x25519.getSharedSecret(privateKey, publicKey);
  } catch (e) {
    throw new FirnError('E_CRYPTO', 'X25519 public key is of low order', { cause: e });
  }
  let acc = 0;
  for (const b of out) acc |= b;
  // Defence in depth: noble already throws on zero, but the policy must not depend on it.
  if (acc === 0) throw new FirnError('E_CRYPTO', 'X25519 public key is of low order');
  return out;
}

/** The field prime of Curve25519, 2^255 - 19 (RFC 7748 §4.1). */
const P25519 = 2n ** 255n - 19n;
/**
 * The u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519 and its twist, reduced
 * mod p: 0, 1, p - 1 and the two points of order 8 (the list of the cr.yp.to "ecdh" page and
 * Wycheproof x25519 "LowOrderPublic" vectors). With the top bit masked and the value reduced,
 * every encoding of these (including u = p and p + 1) lands here.
 */
const LOW_ORDER_U: ReadonlySet<bigint> = new Set([
  0n,
  1n,
  P25519 - 1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
]);

/**
 * True when `publicKey` (32 bytes, RFC 7748 little-endian u-coordinate) is a point of small order
 * on Curve25519 or its twist: a Diffie-Hellman with it gives the all-zero output that RFC 9180
 * §7.1.4 requires a sender to refuse, for every private key. Decoded as RFC 7748 §5 says (top bit
 * masked, value taken mod p). Raises InvalidInputError (via assertBytes) when it is not 32 bytes.
 */
export function isLowOrderX25519PublicKey(publicKey: Uint8Array): boolean {
  assertBytes(publicKey, 'X25519 public key', 32);
  let u = 0n;
  for (let i = 31; i >= 0; i--) u = (u << 8n) | BigInt(i === 31 ? publicKey[i]! & 0x7f : publicKey[i]!);
  return LOW_ORDER_U.has(u % P25519);
}

/**
 * Check a list of recipient KEM public keys (X25519, RFC 9180 DHKEM(X25519, HKDF-SHA256)) before
 * anything is drawn or sealed to them: each must be 32 bytes and not of low order. Raises
 * InvalidInputError naming the first bad one by its index in `publicKeys` (and `what`, e.g.
 * "recipient").
 */
export function assertKemRecipientKeys(publicKeys: readonly Uint8Array[], what = 'recipient'): void {
  publicKeys.forEach((pk, i) => {
    if (!(pk instanceof Uint8Array) || pk.length !== 32)
      throw new InvalidInputError(`${what} ${i} is not a 32-byte X25519 KEM public key`);
    if (isLowOrderX25519PublicKey(pk))
      throw new InvalidInputError(
        `${what} ${i} is a low-order X25519 point (any shared secret with it is all zero, RFC 9180 §7.1.4): give the recipient's real KEM public key`,
      );
  });
}
