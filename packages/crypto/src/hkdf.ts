import { hkdfSync } from 'node:crypto';
import { assertBytes, InvalidInputError } from '@firn/core';

/** RFC 5869 output cap for SHA-256: 255 blocks of 32 bytes. */
export const HKDF_SHA256_MAX_LENGTH = 255 * 32;

/** HKDF-SHA256 (RFC 5869) through node:crypto; lengths over 255*32 are refused. */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  assertBytes(ikm, 'ikm');
  assertBytes(salt, 'salt');
  assertBytes(info, 'info');
  if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA256_MAX_LENGTH)
    throw new InvalidInputError(`HKDF length must be 1..${HKDF_SHA256_MAX_LENGTH}`);
  // node:crypto caps info at 1024 bytes; firn's infos are short tags.
  if (info.length > 1024) throw new InvalidInputError('HKDF info must be at most 1024 bytes');
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
}
