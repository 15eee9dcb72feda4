import { x25519 } from '@noble/curves/ed25519.js';
import { assertBytes, FirnError } from '@firn/core';

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
