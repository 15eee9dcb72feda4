import { FirnError, type TeeTypeName } from '@firn/core';
import { sgxVerifier, tdxVerifier } from './dcap/index.ts';
import { nitroVerifier } from './nitro/nitroVerifier.ts';
import { sevSnpVerifier } from './sev-snp/sevSnpVerifier.ts';
import { simulatedVerifier } from './simulated/simulatedVerifier.ts';
import type { EvidenceVerifier } from './types.ts';

/**
 * One verifier per TEE type. Adding a TEE means adding its folder and one line here; unknown
 * types fail closed.
 */
const VERIFIERS: Partial<Record<TeeTypeName, EvidenceVerifier>> = {
  simulated: simulatedVerifier as EvidenceVerifier,
  sgx: sgxVerifier as EvidenceVerifier,
  tdx: tdxVerifier as EvidenceVerifier,
  nitro: nitroVerifier as EvidenceVerifier,
  'sev-snp': sevSnpVerifier as EvidenceVerifier,
};

export function registerVerifier(v: EvidenceVerifier): void {
  VERIFIERS[v.teeType] = v;
}

export function verifierFor(teeType: TeeTypeName): EvidenceVerifier {
  const v = VERIFIERS[teeType];
  if (v === undefined) throw new FirnError('E_UNSUPPORTED', `no verifier for TEE type ${teeType}`);
  return v;
}
