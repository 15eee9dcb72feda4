import { FirnError, hexBytes } from '@firn/core';
import { readUserFileSync } from './readUserFile.ts';

/** Largest KEM key file read, bytes (a `firn artifact keygen` file is about 150). */
const MAX_KEM_KEY_FILE_BYTES = 4096;

/**
 * The JSON object of a `firn artifact keygen` file, read through readUserFileSync (a folder, a
 * missing file or one over 4 KiB is E_INVALID_INPUT, E_NOT_FOUND or E_TOO_LARGE naming `flag` and
 * the path); E_INVALID_INPUT when it is not a JSON object. Never quotes its text: it holds a
 * private key.
 */
function readKemKeyJson(file: string, flag: string): { privateKey?: unknown; publicKey?: unknown } {
  const text = readUserFileSync(file, flag, MAX_KEM_KEY_FILE_BYTES).toString('utf8');
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    o = undefined;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new FirnError('E_INVALID_INPUT', `${flag} ${file} is not JSON`);
  return o as { privateKey?: unknown; publicKey?: unknown };
}

/**
 * A KEM key pair from a `firn artifact keygen` file, named in errors by `flag` (`--kem-key`,
 * `--kem-key-file`): E_NOT_FOUND / E_INVALID_INPUT / E_TOO_LARGE naming the flag and path when it
 * is missing, a folder, unreadable, too large or not JSON, or a key is not 32 bytes of hex.
 */
export function readKemKeyPair(
  file: string,
  flag = '--kem-key',
): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const o = readKemKeyJson(file, flag);
  return {
    privateKey: hexBytes(o.privateKey, `${flag} ${file} privateKey`, 32),
    publicKey: hexBytes(o.publicKey, `${flag} ${file} publicKey`, 32),
  };
}

/** The private key of a `firn artifact keygen` file (its public key is not needed); errors as readKemKeyPair. */
export function readKemPrivateKeyFile(file: string, flag: string): Uint8Array {
  return hexBytes(readKemKeyJson(file, flag).privateKey, `${flag} ${file} privateKey`, 32);
}
