import { X509Certificate } from 'node:crypto';
import { FirnError } from '@firn/core';

/**
 * A simulated machine: what real hardware keeps in fuses and its quoting enclave. platformId is
 * random per machine; the sealing secret never leaves the platform file.
 */
export interface SimulatedPlatform {
  version: 1;
  platformId: string; // hex, 16 bytes
  sealingSecret: string; // hex, 32 bytes
  attestationKeyPkcs8: string; // hex
  attestationKeyCertPem: string;
  rootCertPem: string;
}

/** DER bytes of a PEM certificate, for pinning as a root. */
export function certificateDer(pem: string): Uint8Array {
  try {
    return new Uint8Array(new X509Certificate(pem).raw);
  } catch (e) {
    throw new FirnError('E_INVALID_INPUT', 'not a PEM certificate', { cause: e });
  }
}

/**
 * Parse a simulated platform file (what the simulated enclave loads at start). Throws
 * E_INVALID_INPUT when a field is missing or of the wrong type. The platform itself is made by
 * `createSimulatedPlatform` in `@firn/sim` (the devnet and tests only).
 */
export function parseSimulatedPlatform(json: unknown): SimulatedPlatform {
  const o = json as Partial<SimulatedPlatform> | null;
  if (
    o?.version !== 1 ||
    typeof o.platformId !== 'string' ||
    typeof o.sealingSecret !== 'string' ||
    typeof o.attestationKeyPkcs8 !== 'string' ||
    typeof o.attestationKeyCertPem !== 'string' ||
    typeof o.rootCertPem !== 'string'
  )
    throw new FirnError('E_INVALID_INPUT', 'not a simulated platform file');
  return o as SimulatedPlatform;
}
