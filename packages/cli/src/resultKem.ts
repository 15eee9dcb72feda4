import { hkdfSync, randomBytes } from 'node:crypto';
import { bytesEqual, bytesToHex, FirnError, type Hex, hexBytes } from '@firn/core';
import { isLowOrderX25519PublicKey, type KemKeyPair, kemPublicKeyOf } from '@firn/crypto';

/**
 * The job result key of `firn infer|train|run` without `--kem-key` (decision 1630): an X25519 KEM
 * key pair derived from the requester's signing key and a per-job random salt, so that the key
 * the outputs are sealed to is recoverable from what the requester keeps anyway (the `--key-file`
 * or devnet key) plus the salt in the local job journal, which is not secret. A process that is
 * interrupted after posting loses nothing: `firn job result JOBID` derives the same key again.
 * A fresh salt per job keeps the jobs' KEM public keys unlinkable to each other and to the
 * requester's address (HKDF output is pseudorandom without the key).
 */

/** HKDF `info` of the derivation: the domain tag (one tag per use, ARCHITECTURE.md §3). */
export const RESULT_KEM_INFO = 'firn/cli/result-kem/v1';
/** Bytes of the per-job salt. */
export const RESULT_KEM_SALT_BYTES = 32;

/** A fresh random salt (32 bytes) for one job's result key. */
export function newResultKemSalt(): Uint8Array {
  return new Uint8Array(randomBytes(RESULT_KEM_SALT_BYTES));
}

/**
 * The job's result KEM key pair: privateKey = clamp(HKDF-SHA256(ikm = the requester's 32-byte
 * secp256k1 private key, salt, info = RESULT_KEM_INFO, L = 32)) (RFC 5869; clamping as RFC 7748
 * §5 decodes an X25519 scalar, so the stored bytes are the scalar used), publicKey = X25519(sk, 9).
 * `requesterKey` is the 0x-hex private key; `salt` 32 bytes. The intermediate key bytes are zeroed
 * here; the caller zeroes the returned privateKey once done (`wipe`).
 * Throws E_INVALID_INPUT for a key or salt of the wrong size, E_CRYPTO for a derived key whose
 * public key is low-order or zero (never for a clamped scalar; checked as every KEM key is).
 */
export function deriveResultKem(requesterKey: Hex, salt: Uint8Array): KemKeyPair {
  const ikm = hexBytes(requesterKey, 'requester private key', 32);
  if (!(salt instanceof Uint8Array) || salt.length !== RESULT_KEM_SALT_BYTES)
    throw new FirnError('E_INVALID_INPUT', `the result key salt must be ${RESULT_KEM_SALT_BYTES} bytes`);
  let privateKey: Uint8Array;
  try {
    privateKey = new Uint8Array(hkdfSync('sha256', ikm, salt, RESULT_KEM_INFO, 32));
  } finally {
    ikm.fill(0);
  }
  privateKey[0]! &= 248;
  privateKey[31]! &= 127;
  privateKey[31]! |= 64;
  const publicKey = kemPublicKeyOf(privateKey);
  if (publicKey.every((b) => b === 0) || isLowOrderX25519PublicKey(publicKey)) {
    privateKey.fill(0);
    throw new FirnError('E_CRYPTO', 'the derived result key is a low-order point');
  }
  return { privateKey, publicKey };
}

/** What the job journal keeps of a derived result key: the salt and the public key, never the secret. */
export interface ResultKemRecord {
  /** The HKDF salt, 0x + 64 hex digits. */
  resultKemSalt: Hex;
  /** The derived X25519 public key, 0x + 64 hex digits: tells a wrong --key-file from a tampered result. */
  resultKemPublicKey: Hex;
}

/** A fresh per-job result key and its journal record. */
export function newResultKem(requesterKey: Hex): { kem: KemKeyPair; record: ResultKemRecord } {
  const salt = newResultKemSalt();
  const kem = deriveResultKem(requesterKey, salt);
  return { kem, record: { resultKemSalt: bytesToHex(salt), resultKemPublicKey: bytesToHex(kem.publicKey) } };
}

/**
 * The result key of a journalled job again, from its record and the requester key. Throws
 * E_INVALID_INPUT naming `keyHint` (the flag that supplies the key) when the key derives another
 * public key than the job was posted with (another requester key), E_PARSE for a malformed record.
 */
export function recoverResultKem(
  requesterKey: Hex,
  rec: ResultKemRecord,
  jobId: Hex,
  keyHint: string,
): KemKeyPair {
  const salt = hexBytes(rec.resultKemSalt, `job ${jobId}'s journal resultKemSalt`, RESULT_KEM_SALT_BYTES);
  const expected = hexBytes(rec.resultKemPublicKey, `job ${jobId}'s journal resultKemPublicKey`, 32);
  const kem = deriveResultKem(requesterKey, salt);
  if (!bytesEqual(kem.publicKey, expected)) {
    wipe(kem);
    throw new FirnError(
      'E_INVALID_INPUT',
      `job ${jobId} was posted with another requester key than this one: pass the key it was posted with (${keyHint})`,
    );
  }
  return kem;
}

/** Zero a KEM key pair's private key in place (best effort: JS may hold copies elsewhere). */
export function wipe(kem: KemKeyPair | undefined): void {
  kem?.privateKey.fill(0);
}
