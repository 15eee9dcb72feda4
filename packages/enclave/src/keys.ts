import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, concatBytes, encodeFields, FirnError, hexToBytes, TAGS, utf8 } from '@firn/core';

/** The enclave's identity keys. They exist in plaintext only inside the enclave process. */
export interface EnclaveKeys {
  signingKey: Uint8Array; // secp256k1 private key
  kemPrivateKey: Uint8Array; // X25519 private key
  enclaveAddress: Uint8Array; // 20 bytes
  kemPublicKey: Uint8Array; // 32 bytes
}

/** Sealed key blob as the host stores it (version 1): AES-256-GCM under the sealing key. */
export interface SealedKeys {
  v: 1;
  iv: string;
  ct: string;
}

export function addressOfPrivateKey(priv: Uint8Array): Uint8Array {
  const pub = secp256k1.getPublicKey(priv, false);
  return keccak_256(pub.subarray(1)).subarray(12);
}

function keysFrom(signingKey: Uint8Array, kemPrivateKey: Uint8Array): EnclaveKeys {
  return {
    signingKey,
    kemPrivateKey,
    enclaveAddress: addressOfPrivateKey(signingKey),
    kemPublicKey: x25519.getPublicKey(kemPrivateKey),
  };
}

export function generateEnclaveKeys(): EnclaveKeys {
  return keysFrom(secp256k1.utils.randomSecretKey(), x25519.utils.randomSecretKey());
}

function aad(measurement: Uint8Array): Uint8Array {
  return encodeFields([utf8(TAGS.seal), measurement]);
}

export function sealKeys(keys: EnclaveKeys, sealingKey: Uint8Array, measurement: Uint8Array): SealedKeys {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', sealingKey, iv);
  c.setAAD(aad(measurement));
  const ct = concatBytes(
    c.update(concatBytes(keys.signingKey, keys.kemPrivateKey)),
    c.final(),
    c.getAuthTag(),
  );
  return { v: 1, iv: bytesToHex(iv), ct: bytesToHex(ct) };
}

/** Unseal: fails with E_SEAL if the blob was made by another enclave, platform, or was altered. */
export function unsealKeys(blob: unknown, sealingKey: Uint8Array, measurement: Uint8Array): EnclaveKeys {
  const b = blob as Partial<SealedKeys> | null;
  if (b?.v !== 1 || typeof b.iv !== 'string' || typeof b.ct !== 'string' || b.ct.length > 512)
    throw new FirnError('E_SEAL', 'sealed key blob is malformed');
  try {
    const ct = hexToBytes(b.ct);
    const iv = hexToBytes(b.iv);
    // Host-supplied: a 12-byte IV and a whole 16-byte tag only (as trustedTime.ts).
    if (iv.length !== 12 || ct.length !== 64 + 16) throw new Error('iv or length');
    const d = createDecipheriv('aes-256-gcm', sealingKey, iv, { authTagLength: 16 });
    d.setAAD(aad(measurement));
    d.setAuthTag(ct.subarray(ct.length - 16));
    const pt = concatBytes(d.update(ct.subarray(0, ct.length - 16)), d.final());
    if (pt.length !== 64) throw new Error('length');
    return keysFrom(pt.slice(0, 32), pt.slice(32, 64));
  } catch (e) {
    throw new FirnError('E_SEAL', 'sealed key blob does not open with this enclave sealing key', {
      cause: e,
    });
  }
}
