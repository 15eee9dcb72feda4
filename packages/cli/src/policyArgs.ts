import {
  type AttestationPolicy,
  certificateDer,
  DEV_POLICY,
  loadAttestationPolicy,
  PRODUCTION_POLICY,
} from '@firn/attestation';
import { FirnError } from '@firn/core';
import { readUserFileSync } from './readUserFile.ts';

const MAX_POLICY_FILE = 256 << 10;
const MAX_ROOT_FILE = 64 << 10;

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
  let text: string;
  try {
    text = readUserFileSync(s, 'policy', MAX_POLICY_FILE).toString('utf8');
  } catch (e) {
    // A missing file is most often a mistyped policy name: say both.
    if (e instanceof FirnError && e.code === 'E_NOT_FOUND')
      throw new FirnError('E_INVALID_INPUT', `--policy ${s}: not dev, production or an existing file`, {
        cause: e,
      });
    throw e;
  }
  try {
    return loadAttestationPolicy(JSON.parse(text), s);
  } catch (e) {
    throw new FirnError('E_INVALID_INPUT', `cannot read policy ${s}: ${(e as Error).message}`, { cause: e });
  }
}

/** Pinned simulated roots from `--sim-root FILE` (PEM). */
export function loadSimRoots(file: string | undefined): { simulated?: Uint8Array[] } {
  if (!file) return {};
  const pem = readUserFileSync(file, 'root', MAX_ROOT_FILE).toString('utf8');
  try {
    return { simulated: [certificateDer(pem)] };
  } catch (e) {
    throw new FirnError('E_INVALID_INPUT', `--sim-root ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Pinned simulated GPU device roots from `--sim-gpu-root FILE` (PEM). */
export function loadSimGpuRoots(file: string | undefined): { simulated?: Uint8Array[] } {
  if (!file) return {};
  const pem = readUserFileSync(file, 'root', MAX_ROOT_FILE).toString('utf8');
  try {
    return { simulated: [certificateDer(pem)] };
  } catch (e) {
    throw new FirnError('E_INVALID_INPUT', `--sim-root ${file}: ${(e as Error).message}`, { cause: e });
  }
}
