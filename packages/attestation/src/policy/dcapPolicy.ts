import { FirnError } from '@firn/core';
import { INTEL_TCB_STATUSES } from '../dcap/collateralJson.ts';
import type { TcbStatus, Verdict, VerifiedEvidence } from '../types.ts';
import type { DcapPolicyRules, IntelClassRules, MaskedValue } from './dcapRules.ts';
import {
  type AttestationPolicy,
  type EvaluateContext,
  evaluateEvidence,
  PRODUCTION_GPU_POLICY,
  parsePolicy,
} from './policy.ts';

export type { DcapPolicyRules, IntelClassRules, MaskedValue } from './dcapRules.ts';

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

/**
 * Intel's status names (accepted_tcb_status, compared without case as Intel's engine does) and the
 * firn statuses they stand for. Intel's engine splits a status into its parts (OutOfDate and
 * ConfigurationNeeded for OutOfDateConfigurationNeeded) and accepts it when every part is listed;
 * firn's combined statuses are accepted the same way (see acceptedStatuses).
 */
const INTEL_STATUS_PARTS: Record<TcbStatus, string[]> = {
  UpToDate: ['UPTODATE'],
  SWHardeningNeeded: ['SWHARDENINGNEEDED'],
  ConfigurationNeeded: ['CONFIGURATIONNEEDED'],
  ConfigurationAndSWHardeningNeeded: ['CONFIGURATIONNEEDED', 'SWHARDENINGNEEDED'],
  OutOfDate: ['OUTOFDATE'],
  OutOfDateConfigurationNeeded: ['OUTOFDATE', 'CONFIGURATIONNEEDED'],
  Revoked: ['REVOKED'],
  Simulated: ['SIMULATED'],
};
/** Status names Intel's files may list: its parts, TDRelaunchAdvised, and the combined names. */
const INTEL_STATUS_NAMES = new Set([
  'UPTODATE',
  'SWHARDENINGNEEDED',
  'CONFIGURATIONNEEDED',
  'OUTOFDATE',
  'REVOKED',
  // A per-TD hint of Intel's TDX platform report; firn's facts never carry it, so it accepts nothing.
  'TDRELAUNCHADVISED',
  ...INTEL_TCB_STATUSES.map((x) => x.toUpperCase()),
]);

/** Keys of the platform and TD QE classes that firn enforces (decision 1766). */
const CLASS_KEYS = new Set([
  'accepted_tcb_status',
  'collateral_grace_period',
  'platform_grace_period',
  'min_eval_num',
  'rejected_advisory_ids',
]);
/**
 * Platform flags that only loosen when true (Intel's engine refuses only on `false` with the
 * platform's flag set): accepted when true, refused when false, since firn does not read the PCK
 * certificate's platform-instance configuration. `allow_dynamic_plaform` is the spelling in
 * Intel's own sample files.
 */
const PERMISSIVE_FLAGS = new Set([
  'allow_dynamic_platform',
  'allow_dynamic_plaform',
  'allow_cached_keys',
  'allow_smt_enabled',
]);

/**
 * Convert one of Intel's appraisal-policy JSON files ({policy_array: [{environment: {class_id},
 * reference: {...}}]}) into our policy. Keys starting with '#' are Intel's commented-out lines.
 *
 * Each class keeps its own rules (decision 1766): the platform class (SGX or TDX) judges the
 * platform TCB and its collateral, the TD QE identity class judges the QE and the QE identity,
 * enclave and TD classes give register rules; debug is never allowed (Intel's tenant policies
 * mask DEBUG to zero). The top-level acceptedTcbStatuses is the platform class's list (judged on
 * the combined status); collateralGraceSeconds is the largest class grace (each class's own is
 * judged in dcap.platformClass / dcap.qeClass).
 *
 * Throws FirnError E_INVALID_INPUT naming `name` and the entry at fault for: no platform class
 * (Intel's engine refuses every quote without one), two entries of one class, a key firn does not
 * enforce (misspelt, or a restriction firn cannot check), an unknown status name, and rule
 * combinations under which Intel's engine refuses every quote (a list without UpToDate;
 * platform_grace_period without collateral_grace_period 0 and OutOfDate; min_eval_num with a
 * grace period).
 */
export function fromIntelAppraisalPolicy(json: unknown, name = 'intel-appraisal'): DcapPolicy {
  const bad = (m: string) => new FirnError('E_INVALID_INPUT', `appraisal policy ${name}: ${m}`);
  if (typeof json !== 'object' || json === null) throw bad('must be an object');
  const arr = (json as { policy_array?: unknown }).policy_array;
  if (!Array.isArray(arr) || arr.length === 0 || arr.length > 16)
    throw bad('policy_array must list 1..16 policies');
  const dcap: DcapPolicyRules = {};
  let platform: IntelClassRules | undefined;
  let qe: IntelClassRules | undefined;
  let tenant = false;
  for (const [i, item] of arr.entries()) {
    const env = (item as { environment?: { class_id?: unknown } } | null)?.environment;
    const ref = (item as { reference?: unknown } | null)?.reference;
    if (typeof ref !== 'object' || ref === null || typeof env?.class_id !== 'string')
      throw bad(`policy_array[${i}] needs environment.class_id and reference`);
    const r = Object.fromEntries(
      Object.entries(ref as Record<string, unknown>).filter(([k]) => !k.startsWith('#')),
    );
    const cls = env.class_id.toLowerCase();
    const at = `policy_array[${i}].reference`;
    if (cls === INTEL_POLICY_CLASS.sgxPlatform || cls === INTEL_POLICY_CLASS.tdxPlatform) {
      if (platform !== undefined) throw bad(`policy_array[${i}]: a second platform class`);
      dcap.teeType = cls === INTEL_POLICY_CLASS.sgxPlatform ? 'sgx' : 'tdx';
      platform = classRules(r, at, bad, true);
    } else if (cls === INTEL_POLICY_CLASS.tdQeIdentity) {
      if (qe !== undefined) throw bad(`policy_array[${i}]: a second TD QE identity class`);
      qe = classRules(r, at, bad, false);
    } else if (cls === INTEL_POLICY_CLASS.sgxEnclave || cls === INTEL_POLICY_CLASS.tdxTd) {
      if (tenant) throw bad(`policy_array[${i}]: a second enclave or TD class`);
      tenant = true;
      tenantRules(cls === INTEL_POLICY_CLASS.sgxEnclave ? 'sgx_' : 'tdx_', r, at, bad, dcap);
    } else throw bad(`policy_array[${i}]: unknown class_id ${env.class_id}`);
  }
  if (platform === undefined)
    throw bad(
      `has no platform class (class_id ${INTEL_POLICY_CLASS.sgxPlatform} for SGX or ` +
        `${INTEL_POLICY_CLASS.tdxPlatform} for TDX): Intel's appraisal refuses every quote without ` +
        'one; add a platform policy (e.g. tdx_platform_policy_strict.json) to policy_array',
    );
  if (qe !== undefined && dcap.teeType !== 'tdx')
    throw bad('the TD QE identity class goes with a TDX platform class, not an SGX one');
  dcap.platformClass = platform;
  if (qe !== undefined) dcap.qeClass = qe;
  const policy: AttestationPolicy = {
    name,
    allowSimulated: false,
    acceptedTcbStatuses: [...platform.acceptedTcbStatuses],
    allowDebug: false,
    // The generic check is the loosest class's; each class's own grace is judged in its class.
    collateralGraceSeconds: Math.max(platform.collateralGraceSeconds, qe?.collateralGraceSeconds ?? 0),
    rejectedAdvisoryIds: [],
  };
  return { policy, dcap };
}

/** The firn statuses an Intel accepted_tcb_status list accepts (every part listed). */
function acceptedStatuses(v: unknown, at: string, bad: (m: string) => FirnError): TcbStatus[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string'))
    throw bad(`${at}.accepted_tcb_status must be a status name or a list of them`);
  const upper = (list as string[]).map((x) => x.toUpperCase());
  for (const [j, x] of upper.entries())
    if (!INTEL_STATUS_NAMES.has(x))
      throw bad(`${at}.accepted_tcb_status: unknown TCB status ${JSON.stringify((list as string[])[j])}`);
  // Intel's engine refuses every quote under a list without UpToDate (tcb_uptodate_check).
  if (!upper.includes('UPTODATE'))
    throw bad(
      `${at}.accepted_tcb_status must include UpToDate (Intel's appraisal refuses every quote otherwise)`,
    );
  return INTEL_TCB_STATUSES.filter(
    (s) => upper.includes(s.toUpperCase()) || INTEL_STATUS_PARTS[s].every((p) => upper.includes(p)),
  );
}

/** One platform or TD QE class's reference, checked key by key (unknown keys are refused). */
function classRules(
  r: Record<string, unknown>,
  at: string,
  bad: (m: string) => FirnError,
  platform: boolean,
): IntelClassRules {
  const num = (k: string): number => {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw bad(`${at}.${k} must be a non-negative integer`);
    return v;
  };
  for (const [k, v] of Object.entries(r)) {
    if (CLASS_KEYS.has(k)) continue;
    if (platform && PERMISSIVE_FLAGS.has(k)) {
      if (v === true) continue;
      throw bad(
        `${at}.${k}: ${JSON.stringify(v)} is not supported (firn does not check the PCK certificate's ` +
          'platform configuration); remove the key or set it to true',
      );
    }
    throw bad(
      `${at}: unknown or unsupported key ${JSON.stringify(k)} (supported: ${[...CLASS_KEYS].join(', ')}` +
        `${platform ? `, ${[...PERMISSIVE_FLAGS].join(', ')} (true only)` : ''})`,
    );
  }
  if (r.accepted_tcb_status === undefined)
    throw bad(`${at}.accepted_tcb_status is missing (Intel's appraisal refuses every quote without it)`);
  const out: IntelClassRules = {
    acceptedTcbStatuses: acceptedStatuses(r.accepted_tcb_status, at, bad),
    // Absent: collateral must be current (firn never accepts expired collateral by omission).
    collateralGraceSeconds: r.collateral_grace_period === undefined ? 0 : num('collateral_grace_period'),
    rejectedAdvisoryIds: [],
  };
  if (r.min_eval_num !== undefined) {
    if (r.collateral_grace_period !== undefined || r.platform_grace_period !== undefined)
      throw bad(
        `${at}: min_eval_num excludes collateral_grace_period and platform_grace_period ` +
          "(Intel's appraisal refuses every quote under both)",
      );
    out.minEvalNum = num('min_eval_num');
  }
  if (r.platform_grace_period !== undefined) {
    if (r.collateral_grace_period !== 0)
      throw bad(
        `${at}: platform_grace_period needs collateral_grace_period 0 ` +
          "(Intel's appraisal refuses every quote otherwise)",
      );
    if (!out.acceptedTcbStatuses.includes('OutOfDate'))
      throw bad(
        `${at}: platform_grace_period needs OutOfDate in accepted_tcb_status ` +
          "(Intel's appraisal refuses every quote otherwise)",
      );
    out.platformGraceSeconds = num('platform_grace_period');
  }
  if (r.rejected_advisory_ids !== undefined) {
    const ids = r.rejected_advisory_ids;
    if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string'))
      throw bad(`${at}.rejected_advisory_ids must be a list of strings`);
    out.rejectedAdvisoryIds = [...(ids as string[])];
  }
  return out;
}

/** An enclave or TD class's register rules, added to `dcap` (unknown keys are refused). */
function tenantRules(
  prefix: 'sgx_' | 'tdx_',
  r: Record<string, unknown>,
  at: string,
  bad: (m: string) => FirnError,
  dcap: DcapPolicyRules,
): void {
  const num = (v: unknown, k: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      throw bad(`${at}.${k} must be a non-negative integer`);
    return v;
  };
  const hexStr = (v: unknown, k: string): string => {
    if (typeof v !== 'string' || !/^([0-9a-fA-F]{2}){1,64}$/.test(v)) throw bad(`${at}.${k} must be hex`);
    return v.toLowerCase();
  };
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
    if (k.endsWith('_mask') && names[k.slice(0, -5)] !== undefined) continue;
    if (k === 'sgx_isvprodid' && prefix === 'sgx_') m.isvProdId = { value: String(num(v, k)) };
    else if (k === 'sgx_isvsvn_min' && prefix === 'sgx_') dcap.minIsvSvn = num(v, k);
    else if (k.startsWith(prefix) && names[k] !== undefined) {
      // Intel writes register-valued fields (attributes, xfam, miscselect) as big-endian
      // numbers; the quote holds them little-endian, as our measurements do.
      const numeric = /attributes|xfam|miscselect/.test(k);
      const norm = (h: string) => (numeric ? Buffer.from(h, 'hex').reverse().toString('hex') : h);
      const mv: MaskedValue = { value: norm(hexStr(v, k)) };
      if (r[`${k}_mask`] !== undefined) mv.mask = norm(hexStr(r[`${k}_mask`], `${k}_mask`));
      m[names[k]] = mv;
    } else throw bad(`${at}: unknown or unsupported key ${JSON.stringify(k)}`);
  }
  dcap.measurements = m;
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
