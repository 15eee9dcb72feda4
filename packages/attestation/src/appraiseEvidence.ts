import {
  bytesEqual,
  computeReportData,
  deriveGpuNonce,
  gpuEvidenceDigest,
  hexToBytes,
  isFirnError,
  parseEvidenceBundle,
  type EvidenceBundle,
  type TeeTypeName,
} from '@firn/core';
import { type CollateralSource, offlineCollateralSource } from './collateral/collateralSource.ts';
import type { DcapQuote } from './dcap/quote.ts';
import { evaluateGpu, type GpuPolicy } from './nvidia/evaluateGpu.ts';
import type { RimStore } from './nvidia/index.ts';
import type { OcspClient } from './nvidia/ocspClient.ts';
import type { RimServiceClient } from './nvidia/rimService.ts';
import { type GpuFacts, type GpuVerifyContext, verifyGpuEvidenceList } from './nvidia/verifyGpuEvidence.ts';
import { type AttestationPolicy, appraiseTcbStatus, evaluateEvidence } from './policy/policy.ts';
import { sevSnpCollateralFor } from './sev-snp/sevSnpCollateralSource.ts';
import type { SevSnpReport } from './sev-snp/sevSnpReport.ts';
import type { SevSnpCollateralProvider } from './sev-snp/sevSnpVerifier.ts';
import type { Refusal, VerifiedEvidence } from './types.ts';
import { verifierFor } from './verifiers.ts';

export interface AppraiseOptions {
  now: number;
  policy: AttestationPolicy;
  /** The nonce this appraiser sent; the evidence must be for exactly this nonce. */
  expectedNonce: Uint8Array;
  /** Pinned roots per TEE type (the simulated root must be given explicitly). */
  roots?: Partial<Record<TeeTypeName, readonly Uint8Array[]>>;
  /**
   * The verifier's own collateral: for DCAP a dcap-qvl QuoteCollateralV3 file, used as an offline
   * source when collateralSource is not given; for SEV-SNP a SevSnpCollateral (VEK, chain, CRL).
   * Attached pieces replace its pieces only when newer (CRLs, TCB info), piece by piece, or where it
   * has none for the evidence; an SEV-SNP VEK or chain of its own is never replaced.
   */
  collateral?: unknown;
  /**
   * Where DCAP collateral comes from (PCS/PCCS, offline file): the bundle's current attached pieces
   * fill what this source has no copy of, and where both exist the newest wins, piece by piece.
   */
  collateralSource?: CollateralSource;
  /**
   * Where SEV-SNP collateral comes from (createKdsClient: AMD's KDS or a mirror, with cache): its
   * VEK, chain and CRL are authoritative; attached pieces only fill what it cannot serve (decision 1220).
   */
  sevSnpCollateral?: SevSnpCollateralProvider;
  /** GPU trust anchors (device, RIM, and explicitly pinned simulated GPU roots). */
  gpuRoots?: GpuVerifyContext['roots'];
  gpuRims?: RimStore;
  /** Fetch the RIMs the GPU evidence names (NVIDIA's RIM service, offline folder), when gpuRims is not given. */
  gpuRimSource?: Pick<RimServiceClient, 'rimStoreFor'>;
  /** Check GPU certificate revocation with this OCSP client; without it revocation is "not checked". */
  gpuOcsp?: OcspClient;
}

/** Rules applied to presented GPU evidence when the policy has no GPU section. */
function defaultGpuPolicy(policy: AttestationPolicy): GpuPolicy {
  return {
    required: 0,
    requireMeasurementsMatch: false,
    allowRevocationUnchecked: true,
    allowSimulated: policy.allowSimulated,
  };
}

export type Appraisal =
  | { ok: true; facts: VerifiedEvidence; bundle: EvidenceBundle; gpus: GpuFacts[] }
  | { ok: false; reasons: Refusal[]; facts?: VerifiedEvidence; bundle?: EvidenceBundle; gpus?: GpuFacts[] };

/**
 * Parse, verify and evaluate an evidence bundle for a nonce the caller chose. It proves the quote
 * is genuine for its TEE, that its report data binds the bundle's enclave address, KEM key, the
 * caller's nonce, GPU evidence digest and operator (or no operator when the bundle names none),
 * and that the policy accepts the facts; it does not check the on-chain registration (the caller
 * compares identity and operator with the registry: appraiseRegistration, evidenceOperatorRefusal).
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
    // The verifier's own collateral (its source, else its fixed collateral) is never replaced
    // wholesale by the node's attachment: the newest piece wins, piece by piece, and attached
    // pieces only fill what the verifier has no copy of (decision 0940).
    let collateral: unknown = bundle.collateral;
    const dcap = bundle.teeType === 'sgx' || bundle.teeType === 'tdx';
    const own =
      opts.collateralSource ??
      (dcap && opts.collateral !== undefined ? offlineCollateralSource(opts.collateral) : undefined);
    if (own !== undefined && dcap)
      collateral = await own.collateralFor(parsed as DcapQuote, opts.now, {
        ...(bundle.collateral === undefined ? {} : { attached: bundle.collateral }),
        graceSeconds: opts.policy.collateralGraceSeconds,
      });
    else if (
      bundle.teeType === 'sev-snp' &&
      (opts.sevSnpCollateral !== undefined || opts.collateral !== undefined)
    )
      collateral = await sevSnpCollateralFor(parsed as SevSnpReport, opts.now, {
        ...(opts.collateral === undefined ? {} : { fixed: opts.collateral }),
        ...(opts.sevSnpCollateral === undefined ? {} : { provider: opts.sevSnpCollateral }),
        ...(bundle.collateral === undefined ? {} : { attached: bundle.collateral }),
      });
    else if (collateral === undefined) collateral = opts.collateral;
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
    ...(bundle.operator === undefined ? {} : { operator: hexToBytes(bundle.operator) }),
  });
  // The facts returned carry the TCB status this policy gives them (SEV-SNP: its minimums).
  facts = appraiseTcbStatus(facts, opts.policy);
  const verdict = evaluateEvidence(facts, opts.policy, { now: opts.now, expectedReportData });
  const reasons: Refusal[] = verdict.ok ? [] : [...verdict.reasons];
  // Composite evidence: the report data above binds the GPU list's digest; each GPU must have
  // signed the nonce derived from ours, under a pinned device root, and pass the GPU policy.
  let gpus: GpuFacts[] = [];
  const gpuPolicy = opts.policy.gpu ?? defaultGpuPolicy(opts.policy);
  if ((bundle.gpu?.length ?? 0) > 0 || gpuPolicy.required > 0) {
    try {
      const rims =
        opts.gpuRims ??
        (opts.gpuRimSource !== undefined && (bundle.gpu?.length ?? 0) > 0
          ? await opts.gpuRimSource.rimStoreFor(bundle.gpu ?? [])
          : undefined);
      gpus = await verifyGpuEvidenceList(bundle.gpu ?? [], {
        now: opts.now,
        expectedNonce: deriveGpuNonce(nonce),
        ...(opts.gpuRoots === undefined ? {} : { roots: opts.gpuRoots }),
        ...(rims === undefined ? {} : { rims }),
        ...(opts.gpuOcsp === undefined ? {} : { ocsp: opts.gpuOcsp.options(opts.now) }),
      });
      const g = evaluateGpu(gpus, gpuPolicy);
      if (!g.ok) reasons.push(...g.reasons);
    } catch (e) {
      reasons.push(refusalOf(e));
    }
  }
  if (reasons.length > 0) return { ok: false, bundle, facts, gpus, reasons };
  return { ok: true, facts, bundle, gpus };
}

/**
 * The refusal a failed step stands for. A FirnError keeps its code: the parsers and verifiers say
 * what is wrong with the evidence. Anything else (a TypeError, a library's own error) is a failure
 * of the appraiser's machinery, not a fact about the evidence: E_INTERNAL, which still fails closed
 * for a requester, and on which a verifier abstains instead of refusing (decision 1831).
 */
export function refusalOf(e: unknown): Refusal {
  if (isFirnError(e)) return { code: e.code, message: e.message };
  return {
    code: 'E_INTERNAL',
    message: `the appraisal failed: ${e instanceof Error ? e.message : String(e)}`,
  };
}
