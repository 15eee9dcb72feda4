import { readFileSync } from 'node:fs';
import {
  type AttestationPolicy,
  certificateDer,
  DEV_POLICY,
  loadAttestationPolicy,
  PRODUCTION_POLICY,
} from '@firn/attestation';
import { FirnError } from '@firn/core';

/**
 * `--policy dev|production|FILE`; FILE is firn's policy JSON or one of Intel's appraisal-policy
 * files (loadAttestationPolicy). The dev policy is refused unless a simulated root is pinned.
 */
export function loadPolicy(
  spec: string | undefined,
  fallback: 'dev' | 'production' = 'production',
): AttestationPolicy {
  const s = spec ?? fallback;
  if (s === 'dev') return DEV_POLICY;
  if (s === 'production') return PRODUCTION_POLICY;
  try {
    return loadAttestationPolicy(JSON.parse(readFileSync(s, 'utf8')), s);
  } catch (e) {
    throw new FirnError('E_INVALID_INPUT', `cannot read policy ${s}`, { cause: e });
  }
}

/** Pinned simulated roots from `--sim-root FILE` (PEM). */
export function loadSimRoots(file: string | undefined): { simulated?: Uint8Array[] } {
  if (!file) return {};
  return { simulated: [certificateDer(readFileSync(file, 'utf8'))] };
}

/** Pinned simulated GPU device roots from `--sim-gpu-root FILE` (PEM). */
export function loadSimGpuRoots(file: string | undefined): { simulated?: Uint8Array[] } {
  if (!file) return {};
  return { simulated: [certificateDer(readFileSync(file, 'utf8'))] };
}
