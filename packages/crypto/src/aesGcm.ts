import { createCipheriv, createDecipheriv } from 'node:crypto';
import { assertBytes, FirnError, InvalidInputError } from '@firn/core';

/** AES-GCM through node:crypto with the only parameters firn uses: 96-bit IV, 128-bit tag. */

export const AES_GCM_IV_BYTES = 12;
export const AES_GCM_TAG_BYTES = 16;

type GcmAlg = 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';

function algFor(key: Uint8Array): GcmAlg {
  assertBytes(key, 'AES key');
  if (key.length === 16) return 'aes-128-gcm';
  if (key.length === 24) return 'aes-192-gcm';
  if (key.length === 32) return 'aes-256-gcm';
  throw new InvalidInputError('AES key must be 16, 24 or 32 bytes');
}

function checkIv(iv: Uint8Array): void {
  // Other IV sizes go through GHASH and weaken the nonce-uniqueness argument; never used here.
  assertBytes(iv, 'AES-GCM IV', AES_GCM_IV_BYTES);
}

/** Encrypt; returns ciphertext || 16-byte tag. */
export function aesGcmEncrypt(
  key: Uint8Array,
  iv: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  const alg = algFor(key);
  checkIv(iv);
  assertBytes(plaintext, 'plaintext');
  const c = createCipheriv(alg, key, iv, { authTagLength: AES_GCM_TAG_BYTES });
  if (aad !== undefined) c.setAAD(assertBytes(aad, 'aad'));
  const head = c.update(plaintext);
  const tail = c.final();
  const out = new Uint8Array(head.length + tail.length + AES_GCM_TAG_BYTES);
  out.set(head, 0);
  out.set(tail, head.length);
  out.set(c.getAuthTag(), head.length + tail.length);
  return out;
}

/**
 * Decrypt ciphertext || tag. Proves the bytes were produced under this key, IV and aad and not
 * altered; it says nothing about freshness (replay is the caller's concern, via the IV).
 */
export function aesGcmDecrypt(
  key: Uint8Array,
  iv: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  const alg = algFor(key);
  checkIv(iv);
  assertBytes(sealed, 'ciphertext');
  if (sealed.length < AES_GCM_TAG_BYTES) throw new FirnError('E_DECRYPT', 'decryption failed');
  const ctLen = sealed.length - AES_GCM_TAG_BYTES;
  const d = createDecipheriv(alg, key, iv, { authTagLength: AES_GCM_TAG_BYTES });
  d.setAuthTag(sealed.subarray(ctLen));
  if (aad !== undefined) d.setAAD(assertBytes(aad, 'aad'));
  const head = d.update(sealed.subarray(0, ctLen));
  try {
    const tail = d.final();
    const out = new Uint8Array(head.length + tail.length);
    out.set(head, 0);
    out.set(tail, head.length);
    return out;
  } catch {
    // The unauthenticated plaintext in `head` is dropped, never returned.
    head.fill(0);
    throw new FirnError('E_DECRYPT', 'decryption failed');
  }
}
