import { bytesEqual, bytesToHex, FirnError } from '@firn/core';
import { type GpuPolicy, parseGpuPolicy } from '../nvidia/evaluateGpu.ts';
import { type NitroPolicy, nitroRefusals, parseNitroPolicy } from '../nitro/nitroPolicy.ts';
import {
  parseSevSnpPolicy,
  type SevSnpPolicy,
  sevSnpRefusals,
  sevSnpTcbStatus,
} from '../sev-snp/evaluateSevSnp.ts';
import { parseTdAttributes } from '../tdx/tdAttributes.ts';
import { type DcapPolicyRules, dcapRuleRefusals, parseDcapRules } from './dcapRules.ts';
import { markVerified, type Refusal, type TcbStatus, type Verdict, type VerifiedEvidence } from '../types.ts';

/**
 * TDX rules beyond debug (allowDebug). The defaults (no tdx section) are dcap-qvl's and Intel's:
 * SEPT_VE_DISABLE must be set, reserved TD attribute bits must be zero (PKS, KL and PERFMON are
 * allowed), and MRSERVICETD must be zero (no service TD bound). A policy opts in per field.
 */
export interface TdxPolicy {
  /** Accept TDs with SEPT_VE_DISABLE clear (a #VE-handling guest). Default false. */
  allowSeptVeEnabled?: boolean;
  /** Accept TDs bound to a service TD (non-zero MRSERVICETD). Default false. */
  allowServiceTd?: boolean;
  /** With allowServiceTd: only these MRSERVICETD values (48-byte hex). Absent: any. */
  mrServiceTdAllowList?: string[];
}

/**
 * What a requester or verifier accepts. Verification establishes facts; this decides. Every
 * field is explicit so a policy file reads as a complete statement of trust.
 */
export interface AttestationPolicy {
  name: string;
  /** Only a dev policy sets this; production policies reject the simulated TEE by construction. */
  allowSimulated: boolean;
  acceptedTcbStatuses: TcbStatus[];
  allowDebug: boolean;
  /** Hex 32-byte measurement digests; absent means any (the on-chain allow-list still applies). */
  measurementAllowList?: string[];
  /** Accept collateral up to this long past its nextUpdate. */
  collateralGraceSeconds: number;
  minTcbEvaluationDataNumber?: number;
  rejectedAdvisoryIds: string[];
  /** Maximum age of the collateral's issue date, when set. */
  maxEvidenceAgeSeconds?: number;
  /** GPU rules; when absent, presented GPU evidence must still verify (see appraiseEvidence). */
  gpu?: GpuPolicy;
  /** TDX TD attribute and service-TD rules; absent means the strict defaults (see TdxPolicy). */
  tdx?: TdxPolicy;
  /** DCAP rules from Intel's appraisal policies (platform grace, QE status, tenant registers). */
  dcap?: DcapPolicyRules;
  /** AWS Nitro rules (document freshness); absent means the defaults (see NitroPolicy). */
  nitro?: NitroPolicy;
  /** AMD SEV-SNP guest policy, VMPL and TCB rules; absent means the strict defaults (see SevSnpPolicy). */
  sevSnp?: SevSnpPolicy;
}

/**
 * The GPU section of the production policy (decision 0921): GPUs are optional (a CPU-only node
 * passes), but every GPU or NVSwitch presented must verify, match its RIMs (which also proves CC
 * mode, decision 0402), and have its revocation checked by OCSP, or an authenticated answer at
 * most a day past its nextUpdate. Simulated GPUs are refused.
 */
export const PRODUCTION_GPU_POLICY: GpuPolicy = Object.freeze({
  required: 0,
  requiredSwitches: 0,
  requireCcMode: true,
  requireMeasurementsMatch: true,
  allowRevocationUnchecked: false,
  revocationGraceSeconds: 86400,
  allowSimulated: false,
}) as GpuPolicy;

/**
 * The SEV-SNP section of the production policy (decision 1765): the product's CRL must have been
 * checked (as DCAP collateral always carries the PCK and root CRLs and GPUs need OCSP), and a
 * platform is 'OutOfDate' under AMD-SB-3019's (EntrySign, CVE-2024-56161) published microcode
 * minimums per silicon line (SPL = the patch id's low byte: Milan 0x0A0011DB, Milan-X 0x0A001244,
 * Genoa 0x0A101154, Genoa-X 0x0A10124F, Bergamo/Siena 0x0AA00219), with the PSP firmware floors
 * of the firmware that shipped with them. Turin has no minimum here, so production refuses Turin
 * reports until a policy file names one (requireMinTcb). The rest are the strict defaults.
 */
export const PRODUCTION_SEV_SNP_POLICY: SevSnpPolicy = Object.freeze({
  requireCrl: true,
  requireMinTcb: true,
  minTcbByLine: Object.freeze({
    Milan: Object.freeze({ bootloader: 4, tee: 0, snp: 22, microcode: 219 }),
    'Milan-X': Object.freeze({ bootloader: 4, tee: 0, snp: 22, microcode: 68 }),
    Genoa: Object.freeze({ bootloader: 9, tee: 0, snp: 21, microcode: 84 }),
    'Genoa-X': Object.freeze({ bootloader: 9, tee: 0, snp: 21, microcode: 79 }),
    'Genoa-Zen4c': Object.freeze({ bootloader: 9, tee: 0, snp: 21, microcode: 25 }),
  }),
}) as SevSnpPolicy;

/**
 * Production: real TEEs only, up-to-date TCB, no debug, collateral must be current, revocation
 * checked for every TEE (DCAP CRLs, GPU OCSP, the SEV-SNP CRL), strict GPU and SEV-SNP rules.
 */
export const PRODUCTION_POLICY: AttestationPolicy = Object.freeze({
  name: 'production',
  allowSimulated: false,
  acceptedTcbStatuses: ['UpToDate', 'SWHardeningNeeded'],
  allowDebug: false,
  collateralGraceSeconds: 0,
  rejectedAdvisoryIds: [],
  gpu: PRODUCTION_GPU_POLICY,
  sevSnp: PRODUCTION_SEV_SNP_POLICY,
}) as AttestationPolicy;

/** Development: also accepts the simulated TEE. Never use outside a devnet. */
export const DEV_POLICY: AttestationPolicy = Object.freeze({
  name: 'dev',
  allowSimulated: true,
  acceptedTcbStatuses: ['UpToDate', 'SWHardeningNeeded', 'Simulated'],
  allowDebug: false,
  collateralGraceSeconds: 0,
  rejectedAdvisoryIds: [],
  // Simulated GPUs publish no RIMs and have no OCSP responder: signatures, chain and nonce only.
  gpu: { required: 0, requireMeasurementsMatch: false, allowRevocationUnchecked: true, allowSimulated: true },
}) as AttestationPolicy;

export interface EvaluateContext {
  now: number;
  /** When given, the quote's report data must equal it (binds keys and nonce). */
  expectedReportData?: Uint8Array;
}

/**
 * The facts with the TCB status the policy gives them: for SEV-SNP, 'OutOfDate' or 'UpToDate'
 * against the policy's minimum for the report's silicon line (sevSnp.minTcbByLine; AMD publishes
 * no status, so the verifier's 'UpToDate' only means "certified by a VEK for this TCB"). Other
 * TEEs' statuses come from their vendor's collateral and are returned as they are.
 */
export function appraiseTcbStatus(facts: VerifiedEvidence, policy: AttestationPolicy): VerifiedEvidence {
  if (facts.teeType !== 'sev-snp') return facts;
  const t = sevSnpTcbStatus(facts, policy.sevSnp ?? {});
  if (t?.status === undefined) return facts;
  return markVerified({
    ...facts,
    tcbStatus: t.status,
    extra: { ...facts.extra, siliconLine: t.line, ...(t.below.length > 0 ? { tcbBelow: t.below } : {}) },
  });
}

/**
 * Apply a policy to verified facts and return every reason for a refusal. It trusts the facts
 * (they come only from verify*) and checks nothing cryptographic itself. SEV-SNP facts get their
 * TCB status from the policy's minimums first (appraiseTcbStatus); an accepted verdict carries it.
 */
export function evaluateEvidence(
  verified: VerifiedEvidence,
  policy: AttestationPolicy,
  ctx: EvaluateContext,
): Verdict {
  const facts = appraiseTcbStatus(verified, policy);
  const reasons: Refusal[] = [];
  const no = (code: string, message: string) => reasons.push({ code, message });

  if (facts.teeType === 'simulated' || facts.tcbStatus === 'Simulated') {
    if (!policy.allowSimulated)
      no('E_POLICY_REJECTED', `policy ${policy.name} does not accept the simulated TEE`);
  }
  if (!policy.acceptedTcbStatuses.includes(facts.tcbStatus)) {
    const below = facts.extra.tcbBelow as string[] | undefined;
    no(
      'E_EVIDENCE_TCB',
      `TCB status ${facts.tcbStatus} is not accepted by policy ${policy.name}${below === undefined ? '' : ` (${facts.extra.siliconLine} minimum: ${below.join(', ')})`}`,
    );
  }
  if (facts.debug && !policy.allowDebug) no('E_POLICY_REJECTED', 'debug enclaves are not accepted');
  if (policy.measurementAllowList !== undefined) {
    // Digests compare as hex, with or without 0x, in any case.
    const norm = (x: string) => x.toLowerCase().replace(/^0x/, '');
    const m = norm(bytesToHex(facts.measurement));
    if (!policy.measurementAllowList.map(norm).includes(m))
      no('E_POLICY_REJECTED', `measurement ${m} is not on the policy's allow-list`);
  }
  for (const id of facts.advisoryIds)
    if (policy.rejectedAdvisoryIds.includes(id))
      no('E_POLICY_REJECTED', `advisory ${id} is rejected by policy`);
  if (policy.minTcbEvaluationDataNumber !== undefined) {
    const n = facts.tcbEvaluationDataNumber;
    if (n === undefined || n < policy.minTcbEvaluationDataNumber)
      no(
        'E_EVIDENCE_COLLATERAL',
        `TCB evaluation data number ${n ?? 'none'} is under ${policy.minTcbEvaluationDataNumber}`,
      );
  }
  if (
    facts.collateralNextUpdate !== undefined &&
    ctx.now > facts.collateralNextUpdate + policy.collateralGraceSeconds
  )
    no('E_EVIDENCE_EXPIRED', 'collateral is past its nextUpdate and the grace period');
  if (policy.maxEvidenceAgeSeconds !== undefined && facts.collateralIssuedAt !== undefined) {
    if (ctx.now - facts.collateralIssuedAt > policy.maxEvidenceAgeSeconds)
      no('E_EVIDENCE_EXPIRED', 'collateral is older than the policy allows');
  }
  if (facts.teeType === 'tdx') for (const r of tdxRefusals(facts, policy.tdx ?? {})) reasons.push(r);
  if (facts.teeType === 'nitro') reasons.push(...nitroRefusals(facts, policy.nitro ?? {}, ctx.now));
  if (facts.teeType === 'sev-snp') reasons.push(...sevSnpRefusals(facts, policy.sevSnp ?? {}));
  if (policy.dcap !== undefined)
    for (const r of dcapRuleRefusals(facts, policy.dcap, ctx.now)) reasons.push(r);
  if (ctx.expectedReportData !== undefined && !bytesEqual(ctx.expectedReportData, facts.reportData))
    no('E_EVIDENCE_BINDING', 'report data does not bind the expected keys and nonce');

  return reasons.length === 0 ? { ok: true, facts } : { ok: false, reasons };
}

/**
 * The TD attribute and MRSERVICETD rules of a TdxPolicy over verified TDX facts (dcap-qvl's
 * validate_attrs, as policy). Missing attributes fail closed.
 */
function tdxRefusals(facts: VerifiedEvidence, p: TdxPolicy): Refusal[] {
  const out: Refusal[] = [];
  const raw = facts.measurements.tdAttributes;
  let attrs: ReturnType<typeof parseTdAttributes> | undefined;
  try {
    attrs = raw === undefined ? undefined : parseTdAttributes(raw);
  } catch {
    attrs = undefined;
  }
  if (attrs === undefined) return [{ code: 'E_POLICY_REJECTED', message: 'TD attributes are missing' }];
  if (attrs.reservedBits.length > 0)
    out.push({
      code: 'E_POLICY_REJECTED',
      message: `reserved TD attribute bits are set (bits ${attrs.reservedBits.join(',')})`,
    });
  if (!attrs.septVeDisable && p.allowSeptVeEnabled !== true)
    out.push({ code: 'E_POLICY_REJECTED', message: 'TD attribute SEPT_VE_DISABLE is not set' });
  const svc = facts.measurements.mrservicetd;
  if (svc !== undefined && /[^0]/.test(svc)) {
    if (p.allowServiceTd !== true)
      out.push({
        code: 'E_POLICY_REJECTED',
        message: 'the TD is bound to a service TD (MRSERVICETD is not zero)',
      });
    else if (
      p.mrServiceTdAllowList !== undefined &&
      !p.mrServiceTdAllowList.map((x) => x.toLowerCase()).includes(svc.toLowerCase())
    )
      out.push({
        code: 'E_POLICY_REJECTED',
        message: `MRSERVICETD ${svc} is not on the policy's allow-list`,
      });
  }
  return out;
}

/** Throwing form of evaluateEvidence: the first reason's code, all reasons in the message. */
export function assertAccepted(verdict: Verdict): VerifiedEvidence {
  if (verdict.ok) return verdict.facts;
  const first = verdict.reasons[0]!;
  throw new FirnError(
    (first.code.startsWith('E_') ? first.code : 'E_POLICY_REJECTED') as FirnError['code'],
    verdict.reasons.map((r) => r.message).join('; '),
  );
}

/** The top-level keys of a policy file. */
const POLICY_KEYS = new Set([
  'name',
  'allowSimulated',
  'acceptedTcbStatuses',
  'allowDebug',
  'collateralGraceSeconds',
  'rejectedAdvisoryIds',
  'measurementAllowList',
  'minTcbEvaluationDataNumber',
  'maxEvidenceAgeSeconds',
  'gpu',
  'tdx',
  'dcap',
  'nitro',
  'sevSnp',
]);

/** Parse a policy from untrusted JSON, checking every field's type; unknown keys are refused. */
export function parsePolicy(json: unknown): AttestationPolicy {
  const bad = (m: string) => new FirnError('E_INVALID_INPUT', `policy: ${m}`);
  if (typeof json !== 'object' || json === null) throw bad('must be an object');
  const o = json as Record<string, unknown>;
  // A mistyped key would otherwise drop its rule silently (the sections below refuse theirs too).
  for (const k of Object.keys(o))
    if (!POLICY_KEYS.has(k))
      throw bad(`unknown key ${JSON.stringify(k)} (known: ${[...POLICY_KEYS].join(', ')})`);
  const strs = (v: unknown, k: string): string[] => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
      throw bad(`${k} must be a list of strings`);
    return v as string[];
  };
  const p: AttestationPolicy = {
    name: typeof o.name === 'string' ? o.name : 'custom',
    allowSimulated: o.allowSimulated === true,
    acceptedTcbStatuses: strs(o.acceptedTcbStatuses ?? ['UpToDate'], 'acceptedTcbStatuses') as TcbStatus[],
    allowDebug: o.allowDebug === true,
    collateralGraceSeconds: typeof o.collateralGraceSeconds === 'number' ? o.collateralGraceSeconds : 0,
    rejectedAdvisoryIds: strs(o.rejectedAdvisoryIds ?? [], 'rejectedAdvisoryIds'),
  };
  if (o.measurementAllowList !== undefined)
    p.measurementAllowList = strs(o.measurementAllowList, 'measurementAllowList');
  if (typeof o.minTcbEvaluationDataNumber === 'number')
    p.minTcbEvaluationDataNumber = o.minTcbEvaluationDataNumber;
  if (typeof o.maxEvidenceAgeSeconds === 'number') p.maxEvidenceAgeSeconds = o.maxEvidenceAgeSeconds;
  if (o.gpu !== undefined) p.gpu = parseGpuPolicy(o.gpu);
  if (o.tdx !== undefined) p.tdx = parseTdxPolicy(o.tdx);
  if (o.dcap !== undefined) p.dcap = parseDcapRules(o.dcap);
  if (o.nitro !== undefined) p.nitro = parseNitroPolicy(o.nitro);
  if (o.sevSnp !== undefined) p.sevSnp = parseSevSnpPolicy(o.sevSnp);
  return p;
}

/** Parse a TdxPolicy from untrusted JSON; unknown keys are refused. */
export function parseTdxPolicy(value: unknown): TdxPolicy {
  const bad = (m: string) => new FirnError('E_INVALID_INPUT', `policy: tdx ${m}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('must be an object');
  const o = value as Record<string, unknown>;
  const out: TdxPolicy = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'allowSeptVeEnabled' || k === 'allowServiceTd') {
      if (typeof v !== 'boolean') throw bad(`${k} must be a boolean`);
      out[k] = v;
    } else if (k === 'mrServiceTdAllowList') {
      if (
        !Array.isArray(v) ||
        v.length > 256 ||
        !v.every((x) => typeof x === 'string' && /^[0-9a-fA-F]{96}$/.test(x))
      )
        throw bad('mrServiceTdAllowList must list 48-byte hex values');
      out.mrServiceTdAllowList = v as string[];
    } else throw bad(`has unknown key ${k}`);
  }
  return out;
}
