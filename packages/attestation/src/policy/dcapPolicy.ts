import { FirnError } from '@firn/core';
import { INTEL_TCB_STATUSES } from '../dcap/collateralJson.ts';
import type { TcbStatus, Verdict, VerifiedEvidence } from '../types.ts';
import type { DcapPolicyRules, MaskedValue } from './dcapRules.ts';
import {
  type AttestationPolicy,
  type EvaluateContext,
  evaluateEvidence,
  PRODUCTION_GPU_POLICY,
  parsePolicy,
} from './policy.ts';

export type { DcapPolicyRules, MaskedValue } from './dcapRules.ts';

/** Class ids of Intel's appraisal policy types (SampleCode/QuoteAppraisalSample). */
export const INTEL_POLICY_CLASS = {
  sgxPlatform: '3123ec35-8d38-4ea5-87a5-d6c48b567570',
  tdxPlatform: 'f708b97f-0fb2-4e6b-8b03-8a5bcd1221d3',
  tdQeIdentity: '3769258c-75e6-4bc7-8d72-d2b0e224cad2',
  sgxEnclave: 'bef7cb8c-31aa-42c1-854c-10db005d5c41',
  tdxTd: '45b734fc-aa4e-4c3d-ad28-e43d08880e68',
} as const;

export interface DcapPolicy {
  policy: AttestationPolicy;
  dcap: DcapPolicyRules;
}

const bad = (m: string) => new FirnError('E_INVALID_INPUT', `appraisal policy: ${m}`);

function statuses(v: unknown): TcbStatus[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw bad('accepted_tcb_status must be a list of strings');
  // TDRelaunchAdvised is a per-TD hint of Intel's appraisal engine, not a TCB status; it is dropped.
  return (v as string[]).filter((s): s is TcbStatus => INTEL_TCB_STATUSES.includes(s as TcbStatus));
}
function num(v: unknown, k: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw bad(`${k} must be a non-negative integer`);
  return v;
}
function hexStr(v: unknown, k: string): string {
  if (typeof v !== 'string' || !/^([0-9a-fA-F]{2}){1,64}$/.test(v)) throw bad(`${k} must be hex`);
  return v.toLowerCase();
}

/**
 * Convert one of Intel's appraisal-policy JSON files ({policy_array: [{environment: {class_id},
 * reference: {...}}]}) into our policy. Keys starting with '#' are Intel's commented-out lines.
 * Platform policies give the TCB rules; enclave and TD policies give measurement rules; debug is
 * never allowed (Intel's tenant policies mask DEBUG to zero).
 */
export function fromIntelAppraisalPolicy(json: unknown, name = 'intel-appraisal'): DcapPolicy {
  if (typeof json !== 'object' || json === null) throw bad('must be an object');
  const arr = (json as { policy_array?: unknown }).policy_array;
  if (!Array.isArray(arr) || arr.length === 0 || arr.length > 16)
    throw bad('policy_array must list 1..16 policies');
  const policy: AttestationPolicy = {
    name,
    allowSimulated: false,
    acceptedTcbStatuses: [...INTEL_TCB_STATUSES.filter((s) => s !== 'Revoked')],
    allowDebug: false,
    collateralGraceSeconds: 0,
    rejectedAdvisoryIds: [],
  };
  const dcap: DcapPolicyRules = {};
  for (const [i, item] of arr.entries()) {
    const env = (item as { environment?: { class_id?: unknown } }).environment;
    const ref = (item as { reference?: unknown }).reference;
    if (typeof ref !== 'object' || ref === null || typeof env?.class_id !== 'string')
      throw bad(`policy_array[${i}] needs environment.class_id and reference`);
    const r = Object.fromEntries(
      Object.entries(ref as Record<string, unknown>).filter(([k]) => !k.startsWith('#')),
    );
    const cls = env.class_id.toLowerCase();
    if (cls === INTEL_POLICY_CLASS.sgxPlatform || cls === INTEL_POLICY_CLASS.tdxPlatform) {
      dcap.teeType = cls === INTEL_POLICY_CLASS.sgxPlatform ? 'sgx' : 'tdx';
      if (r.accepted_tcb_status !== undefined) policy.acceptedTcbStatuses = statuses(r.accepted_tcb_status);
      if (r.collateral_grace_period !== undefined)
        policy.collateralGraceSeconds = num(r.collateral_grace_period, 'collateral_grace_period');
      if (r.min_eval_num !== undefined)
        policy.minTcbEvaluationDataNumber = num(r.min_eval_num, 'min_eval_num');
      if (r.platform_grace_period !== undefined)
        dcap.platformGraceSeconds = num(r.platform_grace_period, 'platform_grace_period');
      if (r.rejected_advisory_ids !== undefined) {
        if (
          !Array.isArray(r.rejected_advisory_ids) ||
          !r.rejected_advisory_ids.every((x) => typeof x === 'string')
        )
          throw bad('rejected_advisory_ids must be strings');
        policy.rejectedAdvisoryIds = [...(r.rejected_advisory_ids as string[])];
      }
    } else if (cls === INTEL_POLICY_CLASS.tdQeIdentity) {
      if (r.accepted_tcb_status !== undefined) dcap.qeAcceptedTcbStatuses = statuses(r.accepted_tcb_status);
      if (r.collateral_grace_period !== undefined)
        policy.collateralGraceSeconds = Math.min(
          policy.collateralGraceSeconds || Number.MAX_SAFE_INTEGER,
          num(r.collateral_grace_period, 'collateral_grace_period'),
        );
      if (r.min_eval_num !== undefined)
        policy.minTcbEvaluationDataNumber = Math.max(
          policy.minTcbEvaluationDataNumber ?? 0,
          num(r.min_eval_num, 'min_eval_num'),
        );
      if (Array.isArray(r.rejected_advisory_ids))
        for (const a of r.rejected_advisory_ids)
          if (typeof a === 'string' && !policy.rejectedAdvisoryIds.includes(a))
            policy.rejectedAdvisoryIds.push(a);
    } else if (cls === INTEL_POLICY_CLASS.sgxEnclave || cls === INTEL_POLICY_CLASS.tdxTd) {
      const prefix = cls === INTEL_POLICY_CLASS.sgxEnclave ? 'sgx_' : 'tdx_';
      const m: Record<string, MaskedValue> = dcap.measurements ?? {};
      // Intel's names → our measurement names (VerifiedEvidence.measurements keys).
      const names: Record<string, string> = {
        sgx_miscselect: 'miscselect',
        sgx_attributes: 'attributes',
        sgx_isvfamilyid: 'isvFamilyId',
        sgx_isvextprodid: 'isvExtProdId',
        sgx_mrenclave: 'mrenclave',
        sgx_mrsigner: 'mrsigner',
        tdx_attributes: 'tdAttributes',
        tdx_xfam: 'xfam',
        tdx_mrtd: 'mrtd',
        tdx_mrconfigid: 'mrconfigid',
        tdx_mrowner: 'mrowner',
        tdx_mrownerconfig: 'mrownerconfig',
        tdx_rtmr0: 'rtmr0',
        tdx_rtmr1: 'rtmr1',
        tdx_rtmr2: 'rtmr2',
        tdx_rtmr3: 'rtmr3',
      };
      for (const [k, v] of Object.entries(r)) {
        if (!k.startsWith(prefix) || k.endsWith('_mask')) continue;
        if (k === 'sgx_isvprodid') m.isvProdId = { value: String(num(v, k)) };
        else if (k === 'sgx_isvsvn_min') dcap.minIsvSvn = num(v, k);
        else if (names[k] !== undefined) {
          // Intel writes register-valued fields (attributes, xfam, miscselect) as big-endian
          // numbers; the quote holds them little-endian, as our measurements do.
          const numeric = /attributes|xfam|miscselect/.test(k);
          const norm = (h: string) => (numeric ? Buffer.from(h, 'hex').reverse().toString('hex') : h);
          const mv: MaskedValue = { value: norm(hexStr(v, k)) };
          if (r[`${k}_mask`] !== undefined) mv.mask = norm(hexStr(r[`${k}_mask`], `${k}_mask`));
          m[names[k]] = mv;
        } else throw bad(`unknown key ${k}`);
      }
      dcap.measurements = m;
    } else throw bad(`unknown class_id ${env.class_id}`);
  }
  return { policy, dcap };
}

/**
 * Evaluate verified DCAP facts under a DcapPolicy: evaluateEvidence with the DCAP rules merged
 * into the policy (the same as evaluateEvidence(facts, toAttestationPolicy(p), ctx)). Returns every
 * reason for a refusal; it checks nothing cryptographic (the facts come only from verify).
 */
export function evaluateDcapEvidence(facts: VerifiedEvidence, p: DcapPolicy, ctx: EvaluateContext): Verdict {
  return evaluateEvidence(facts, toAttestationPolicy(p), ctx);
}

/** One AttestationPolicy carrying the DCAP rules (what the daemon, SDK and CLI evaluate). */
export function toAttestationPolicy(p: DcapPolicy): AttestationPolicy {
  return { ...p.policy, dcap: { ...(p.policy.dcap ?? {}), ...p.dcap } };
}

/**
 * The one policy loader for every path (CLI, verifier daemon, requester SDK): a parsed JSON
 * document that is either firn's policy (see parsePolicy; it may carry `dcap`, `tdx` and `gpu`
 * sections) or one of Intel's appraisal-policy files ({policy_array: [...]}, decision 0303).
 * Without a `gpu` section a non-development policy gets PRODUCTION_GPU_POLICY.
 * Throws E_INVALID_INPUT naming the field at fault.
 */
export function loadAttestationPolicy(json: unknown, name?: string): AttestationPolicy {
  if (typeof json === 'object' && json !== null && 'policy_array' in json)
    // Intel's files say nothing about GPUs: firn's production GPU rules apply to presented GPUs.
    return { ...toAttestationPolicy(fromIntelAppraisalPolicy(json, name)), gpu: PRODUCTION_GPU_POLICY };
  const p = parsePolicy(json);
  // A policy file that says nothing about GPUs gets the production GPU rules, unless it is a
  // development policy (simulated TEE allowed): presented GPUs are never judged more loosely by
  // omission (decision 0921).
  const withGpu = p.gpu === undefined && !p.allowSimulated ? { ...p, gpu: PRODUCTION_GPU_POLICY } : p;
  return name !== undefined && (json as { name?: unknown }).name === undefined
    ? { ...withGpu, name }
    : withGpu;
}
