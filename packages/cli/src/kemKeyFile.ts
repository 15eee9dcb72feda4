import { readFileSync } from 'node:fs';
import { FirnError, hexBytes } from '@firn/core';

/**
 * A KEM key pair from a `firn artifact keygen` file, named in errors by `flag` (`--kem-key`,
 * `--kem-key-file`): E_INVALID_INPUT naming the flag and path when it is missing, unreadable or
 * not JSON (never quoting its text: it holds a private key), or a key is not 32 bytes of hex.
 */
export function readKemKeyPair(
  file: string,
  flag = '--kem-key',
): { privateKey: Uint8Array; publicKey: Uint8Array } {
  let o: { privateKey?: unknown; publicKey?: unknown };
  try {
    o = JSON.parse(readFileSync(file, 'utf8')) as typeof o;
  } catch (e) {
    const why =
      e instanceof SyntaxError ? 'is not JSON' : ((e as { code?: string }).code ?? 'cannot be read');
    throw new FirnError('E_INVALID_INPUT', `${flag} ${file} ${why === 'ENOENT' ? 'does not exist' : why}`);
  }
  return {
    privateKey: hexBytes(o.privateKey, `${flag} ${file} privateKey`, 32),
    publicKey: hexBytes(o.publicKey, `${flag} ${file} publicKey`, 32),
  };
}
