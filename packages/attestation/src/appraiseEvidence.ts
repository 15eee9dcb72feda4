import {
  bytesEqual,
  computeReportData,
  FirnError,
  gpuEvidenceDigest,
  hexToBytes,
  isFirnError,
  parseEvidenceBundle,
  type EvidenceBundle,
  type TeeTypeName,
} from '@firn/core';
import { type AttestationPolicy, evaluateEvidence } from './policy/policy.ts';
import type { Refusal, VerifiedEvidence } from './types.ts';
import { verifierFor } from './verifiers.ts';

export interface AppraiseOptions {
  now: number;
  policy: AttestationPolicy;
  /** The nonce this appraiser sent; the evidence must be for exactly this nonce. */
  expectedNonce: Uint8Array;
  /** Pinned roots per TEE type (the simulated root must be given explicitly). */
  roots?: Partial<Record<TeeTypeName, readonly Uint8Array[]>>;
  /** Collateral to use when the bundle carries none (DCAP). */
  collateral?: unknown;
}

export type Appraisal =
  | { ok: true; facts: VerifiedEvidence; bundle: EvidenceBundle }
  | { ok: false; reasons: Refusal[]; facts?: VerifiedEvidence; bundle?: EvidenceBundle };

/**
 * Parse, verify and evaluate an evidence bundle for a nonce the caller chose. It proves the quote
 * is genuine for its TEE, that its report data binds the bundle's enclave address, KEM key, the
 * caller's nonce (and GPU evidence digest), and that the policy accepts the facts; it does not
 * check the on-chain registration (the caller compares identity with the registry).
 */
export async function appraiseEvidence(input: unknown, opts: AppraiseOptions): Promise<Appraisal> {
  let bundle: EvidenceBundle;
  try {
    bundle = parseEvidenceBundle(input);
  } catch (e) {
    return { ok: false, reasons: [refusalOf(e)] };
  }
  const nonce = hexToBytes(bundle.nonce);
  if (!bytesEqual(nonce, opts.expectedNonce))
    return {
      ok: false,
      bundle,
      reasons: [{ code: 'E_EVIDENCE_NONCE', message: 'evidence is for another nonce' }],
    };
  let facts: VerifiedEvidence;
  try {
    const verifier = verifierFor(bundle.teeType);
    const parsed = verifier.parse(hexToBytes(bundle.quote));
    const collateral = bundle.collateral ?? opts.collateral;
    const roots = opts.roots?.[bundle.teeType];
    facts = await verifier.verify(parsed, {
      now: opts.now,
      ...(collateral === undefined ? {} : { collateral }),
      ...(roots === undefined ? {} : { roots }),
    });
  } catch (e) {
    return { ok: false, bundle, reasons: [refusalOf(e)] };
  }
  const expectedReportData = computeReportData({
    enclaveAddress: hexToBytes(bundle.enclaveAddress),
    kemPublicKey: hexToBytes(bundle.kemPublicKey),
    nonce,
    ...(bundle.gpu === undefined ? {} : { gpuEvidenceDigest: gpuEvidenceDigest(bundle.gpu) }),
  });
  const verdict = evaluateEvidence(facts, opts.policy, { now: opts.now, expectedReportData });
  if (!verdict.ok) return { ok: false, bundle, facts, reasons: verdict.reasons };
  if (
    opts.policy.gpu !== undefined &&
    opts.policy.gpu.required > 0 &&
    (bundle.gpu?.length ?? 0) < opts.policy.gpu.required
  )
    return {
      ok: false,
      bundle,
      facts,
      reasons: [{ code: 'E_POLICY_REJECTED', message: `policy requires ${opts.policy.gpu.required} GPUs` }],
    };
  return { ok: true, facts, bundle };
}

export function refusalOf(e: unknown): Refusal {
  if (isFirnError(e)) return { code: e.code, message: e.message };
  return { code: 'E_EVIDENCE_MALFORMED', message: e instanceof Error ? e.message : 'invalid evidence' };
}

export { FirnError };
