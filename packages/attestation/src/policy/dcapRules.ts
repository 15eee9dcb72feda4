import { FirnError } from '@firn/core';
import { INTEL_TCB_STATUSES } from '../dcap/collateralJson.ts';
import type { Refusal, TcbStatus, VerifiedEvidence } from '../types.ts';

/** A register value with an optional mask; all hex, compared on the bytes the mask keeps. */
export interface MaskedValue {
  value: string;
  mask?: string;
}

/** DCAP rules beyond the generic AttestationPolicy, taken from Intel's appraisal policies. */
export interface DcapPolicyRules {
  /** Which TEE the platform part was written for, when the file says. */
  teeType?: 'sgx' | 'tdx';
  /** OutOfDate platforms are accepted only this long after the latest TCB recovery (newest tcbDate). */
  platformGraceSeconds?: number;
  /** Statuses accepted for the quoting enclave alone (Intel's "Verified TDQE" policy). */
  qeAcceptedTcbStatuses?: TcbStatus[];
  /** Tenant rules: exact or masked register values, by measurement name (mrenclave, mrtd, rtmr0, ...). */
  measurements?: Record<string, MaskedValue>;
  /** SGX: minimum ISVSVN of the enclave. */
  minIsvSvn?: number;
}

function maskedMatch(actual: string, rule: MaskedValue): boolean {
  if (rule.mask === undefined) return actual.toLowerCase() === rule.value;
  const a = Buffer.from(actual, 'hex');
  const v = Buffer.from(rule.value, 'hex');
  const m = Buffer.from(rule.mask, 'hex');
  if (a.length !== v.length || m.length !== v.length) return false;
  for (let i = 0; i < m.length; i++) if ((a[i]! & m[i]!) !== (v[i]! & m[i]!)) return false;
  return true;
}

/**
 * The refusals the DCAP rules give for verified facts at `now` (platform grace period, QE status,
 * tenant register rules, minimum ISVSVN, TEE type). Rules for another TEE than the facts' are
 * refused only through teeType. Checks nothing cryptographic (the facts come only from verify).
 */
export function dcapRuleRefusals(facts: VerifiedEvidence, d: DcapPolicyRules, now: number): Refusal[] {
  const reasons: Refusal[] = [];
  const no = (code: string, message: string) => reasons.push({ code, message });
  if (d.teeType !== undefined && facts.teeType !== d.teeType)
    no('E_POLICY_REJECTED', `policy is for ${d.teeType}, evidence is ${facts.teeType}`);
  if (
    d.platformGraceSeconds !== undefined &&
    (facts.tcbStatus === 'OutOfDate' || facts.tcbStatus === 'OutOfDateConfigurationNeeded')
  ) {
    const latest =
      typeof facts.extra.latestTcbDate === 'string'
        ? Date.parse(facts.extra.latestTcbDate) / 1000
        : Number.NaN;
    if (!(now <= latest + d.platformGraceSeconds))
      no('E_EVIDENCE_TCB', 'platform has been out of date for longer than the platform grace period');
  }
  if (
    d.qeAcceptedTcbStatuses !== undefined &&
    !d.qeAcceptedTcbStatuses.includes(facts.extra.qeTcbStatus as TcbStatus)
  )
    no('E_EVIDENCE_TCB', `quoting enclave TCB status ${String(facts.extra.qeTcbStatus)} is not accepted`);
  for (const [name, rule] of Object.entries(d.measurements ?? {})) {
    const actual = facts.measurements[name];
    if (actual === undefined || !maskedMatch(actual, rule))
      no('E_POLICY_REJECTED', `${name} does not match the policy`);
  }
  if (d.minIsvSvn !== undefined && Number(facts.measurements.isvSvn ?? -1) < d.minIsvSvn)
    no('E_POLICY_REJECTED', `ISVSVN is under ${d.minIsvSvn}`);
  return reasons;
}

/** Parse firn's own JSON form of DcapPolicyRules (the `dcap` section of a policy file). */
export function parseDcapRules(value: unknown): DcapPolicyRules {
  const bad = (m: string) => new FirnError('E_INVALID_INPUT', `policy: dcap ${m}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('must be an object');
  const o = value as Record<string, unknown>;
  const out: DcapPolicyRules = {};
  const nonNeg = (v: unknown, k: string) => {
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw bad(`${k} must be a non-negative integer`);
    return v as number;
  };
  for (const [k, v] of Object.entries(o)) {
    if (k === 'teeType') {
      if (v !== 'sgx' && v !== 'tdx') throw bad('teeType must be sgx or tdx');
      out.teeType = v;
    } else if (k === 'platformGraceSeconds') out.platformGraceSeconds = nonNeg(v, k);
    else if (k === 'minIsvSvn') out.minIsvSvn = nonNeg(v, k);
    else if (k === 'qeAcceptedTcbStatuses') {
      if (!Array.isArray(v) || !v.every((x) => INTEL_TCB_STATUSES.includes(x as TcbStatus)))
        throw bad('qeAcceptedTcbStatuses must list Intel TCB statuses');
      out.qeAcceptedTcbStatuses = v as TcbStatus[];
    } else if (k === 'measurements') {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw bad('measurements must be an object');
      const m: Record<string, MaskedValue> = {};
      for (const [name, rule] of Object.entries(v as Record<string, unknown>)) {
        const r = rule as { value?: unknown; mask?: unknown } | null;
        const hex = (x: unknown) => typeof x === 'string' && /^([0-9a-fA-F]{2}){1,64}$/.test(x);
        if (typeof r !== 'object' || r === null || !hex(r.value) || (r.mask !== undefined && !hex(r.mask)))
          throw bad(`measurements.${name} must be {value, mask?} in hex`);
        m[name] = {
          value: (r.value as string).toLowerCase(),
          ...(r.mask === undefined ? {} : { mask: (r.mask as string).toLowerCase() }),
        };
      }
      out.measurements = m;
    } else throw bad(`has unknown key ${k}`);
  }
  return out;
}
