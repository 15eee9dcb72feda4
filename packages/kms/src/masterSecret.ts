import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { bytesToHex, encodeFields, FirnError, hexBytes, TAGS, utf8 } from '@firn/core';
import { aesGcmDecrypt, aesGcmEncrypt } from '@firn/crypto';

/** The sealed master secret as the broker's host stores it (version 1). */
export interface SealedMasterSecret {
  v: 1;
  /** 12-byte AES-GCM IV, hex. */
  iv: string;
  /** AES-256-GCM ciphertext || tag of the 32-byte master secret, hex. */
  ct: string;
}

function aad(measurement: Uint8Array): Uint8Array {
  return encodeFields([utf8(TAGS.kmsMaster), measurement]);
}

/** Seal a 32-byte master secret under the broker TEE's sealing key, bound to its measurement. */
export function sealMasterSecret(
  secret: Uint8Array,
  sealingKey: Uint8Array,
  measurement: Uint8Array,
): SealedMasterSecret {
  const iv = randomBytes(12);
  return {
    v: 1,
    iv: bytesToHex(iv),
    ct: bytesToHex(aesGcmEncrypt(sealingKey, iv, secret, aad(measurement))),
  };
}

/** Open a sealed master secret; E_SEAL if another broker build, another machine, or altered. */
export function openMasterSecret(blob: unknown, sealingKey: Uint8Array, measurement: Uint8Array): Uint8Array {
  const b = blob as Partial<SealedMasterSecret> | null;
  if (b?.v !== 1 || typeof b.iv !== 'string' || typeof b.ct !== 'string' || b.ct.length > 200)
    throw new FirnError('E_SEAL', 'sealed master secret is malformed');
  try {
    const out = aesGcmDecrypt(
      sealingKey,
      hexBytes(b.iv, 'iv', 12),
      hexBytes(b.ct, 'ct', 48),
      aad(measurement),
    );
    if (out.length !== 32) throw new Error('length');
    return out;
  } catch (e) {
    throw new FirnError(
      'E_SEAL',
      'the master secret was sealed by another broker build or machine, or was altered',
      { cause: e },
    );
  }
}

/**
 * Load the broker's master secret from `path` (sealed), or create and seal a fresh one on first
 * start. The secret never touches the disk in clear; the file is written atomically, mode 0600.
 */
export function loadOrCreateMasterSecret(
  path: string,
  sealingKey: Uint8Array,
  measurement: Uint8Array,
): { secret: Uint8Array; created: boolean } {
  if (existsSync(path)) {
    let blob: unknown;
    try {
      blob = JSON.parse(readFileSync(path, 'utf8').slice(0, 4096));
    } catch (e) {
      throw new FirnError('E_SEAL', `sealed master secret ${path} is not JSON`, { cause: e });
    }
    return { secret: openMasterSecret(blob, sealingKey, measurement), created: false };
  }
  const secret = new Uint8Array(randomBytes(32));
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(sealMasterSecret(secret, sealingKey, measurement)), { mode: 0o600 });
  renameSync(tmp, path);
  return { secret, created: true };
}
