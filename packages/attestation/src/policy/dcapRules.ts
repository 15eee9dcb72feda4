import { FirnError } from '@firn/core';
import { INTEL_TCB_STATUSES } from '../dcap/collateralJson.ts';
import type { Refusal, TcbStatus, VerifiedEvidence } from '../types.ts';

/** A register value with an optional mask; all hex, compared on the bytes the mask keeps. */
export interface MaskedValue {
  value: string;
  mask?: string;
}

/**
 * The rules of one class of Intel's appraisal policy (the platform TCB, or the TD QE identity),
 * each judged against that class's own facts only (decision 1766), as Intel's appraisal engine
 * (QAL/QAE dcap.quote.appraisal) does.
 */
export interface IntelClassRules {
  /** Statuses this class's TCB may have (Intel's accepted_tcb_status, as firn statuses). */
  acceptedTcbStatuses: TcbStatus[];
  /** Seconds this class's collateral may be past its nextUpdate (collateral_grace_period). */
  collateralGraceSeconds: number;
  /** Minimum tcbEvaluationDataNumber of this class's collateral (min_eval_num). */
  minEvalNum?: number;
  /**
   * Seconds an OutOfDate TCB is accepted after the tcbDate of the level it matched
   * (platform_grace_period; Intel's tcb_level_date_tag).
   */
  platformGraceSeconds?: number;
  /** Advisory ids that refuse this class's TCB (rejected_advisory_ids). */
  rejectedAdvisoryIds: string[];
}

/** DCAP rules beyond the generic AttestationPolicy, taken from Intel's appraisal policies. */
export interface DcapPolicyRules {
  /** Which TEE the platform part was written for, when the file says. */
  teeType?: 'sgx' | 'tdx';
  /**
   * OutOfDate platforms are accepted only this long after the tcbDate of the TCB level the
   * platform matched (Intel's tcb_level_date_tag), in seconds.
   */
  platformGraceSeconds?: number;
  /**
   * Intel's platform class (platform TCB and its collateral: TCB info, PCK CRL, root CA CRL).
   * Without qeClass the platform class also covers the QE (Intel's SGX platform class does).
   */
  platformClass?: IntelClassRules;
  /** Intel's TD QE identity class (the QE's TCB and its QE identity collateral). */
  qeClass?: IntelClassRules;
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
 * Intel's platform_grace_period rule (earliest_accepted_tcb_level_date_tag): a TCB whose status
 * is UpToDate, SWHardeningNeeded or ConfigurationNeeded (or both) passes; any other (OutOfDate,
 * OutOfDateConfigurationNeeded, Revoked) passes only while `now` (Unix seconds) is at most
 * `graceSeconds` after the matched level's tcbDate (ISO 8601). A missing or bad date fails.
 */
export function withinPlatformGrace(
  status: unknown,
  tcbDate: unknown,
  graceSeconds: number,
  now: number,
): boolean {
  if (
    status === 'UpToDate' ||
    status === 'SWHardeningNeeded' ||
    status === 'ConfigurationNeeded' ||
    status === 'ConfigurationAndSWHardeningNeeded'
  )
    return true;
  const date = typeof tcbDate === 'string' ? Date.parse(tcbDate) / 1000 : Number.NaN;
  return now <= date + graceSeconds;
}

/** The earlier of two ISO 8601 dates; `a` alone when `b` is absent (a bad date stays bad). */
function earlier(a: unknown, b: unknown): unknown {
  if (typeof b !== 'string') return a;
  if (typeof a !== 'string') return a;
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  if (Number.isNaN(ta) || Number.isNaN(tb)) return Number.NaN;
  return tb < ta ? b : a;
}

/** The facts one Intel class is judged on (unknown-typed: they come from VerifiedEvidence.extra). */
interface ClassFacts {
  /** The class's TCB status, when the class judges one. */
  status: unknown;
  advisoryIds: unknown;
  evalNum: unknown;
  /** Unix seconds. */
  nextUpdate: unknown;
  tcbStatusForGrace: unknown;
  tcbDate: unknown;
}

/** Refusals of one Intel class's rules over its own facts; facts missing fail closed. */
function classRefusals(what: string, r: IntelClassRules, now: number, f: ClassFacts): Refusal[] {
  const out: Refusal[] = [];
  const no = (code: string, message: string) => out.push({ code, message });
  if (f.status !== undefined && !r.acceptedTcbStatuses.includes(f.status as TcbStatus))
    no('E_EVIDENCE_TCB', `${what} TCB status ${String(f.status)} is not accepted`);
  if (typeof f.nextUpdate !== 'number' || now > f.nextUpdate + r.collateralGraceSeconds)
    no('E_EVIDENCE_EXPIRED', `${what} collateral is past its nextUpdate and the ${what} grace period`);
  if (r.minEvalNum !== undefined && !(typeof f.evalNum === 'number' && f.evalNum >= r.minEvalNum))
    no(
      'E_EVIDENCE_COLLATERAL',
      `${what} TCB evaluation data number ${String(f.evalNum ?? 'none')} is under ${r.minEvalNum}`,
    );
  if (
    r.platformGraceSeconds !== undefined &&
    !withinPlatformGrace(f.tcbStatusForGrace, f.tcbDate, r.platformGraceSeconds, now)
  )
    no('E_EVIDENCE_TCB', `${what} has been out of date for longer than its platform grace period`);
  const ids = Array.isArray(f.advisoryIds) ? (f.advisoryIds as unknown[]) : undefined;
  if (r.rejectedAdvisoryIds.length > 0) {
    if (ids === undefined) no('E_POLICY_REJECTED', `${what} advisory ids are missing`);
    else
      for (const id of ids)
        if (typeof id === 'string' && r.rejectedAdvisoryIds.some((a) => a.toUpperCase() === id.toUpperCase()))
          no('E_POLICY_REJECTED', `${what} advisory ${id} is rejected by policy`);
  }
  return out;
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
  // The combined status is judged from the earlier of the platform's and the QE's level dates
  // (QVL's supplemental tcb_level_date_tag).
  const combinedDate = earlier(facts.extra.tcbDate, facts.extra.qeTcbDate);
  if (
    d.platformGraceSeconds !== undefined &&
    !withinPlatformGrace(facts.tcbStatus, combinedDate, d.platformGraceSeconds, now)
  )
    no('E_EVIDENCE_TCB', 'platform has been out of date for longer than the platform grace period');
  if (d.platformClass !== undefined) {
    // With a QE class the platform class judges the platform's own collateral; without one it
    // covers the QE as well (Intel's SGX platform class), so the combined facts apply.
    const own = d.qeClass !== undefined;
    const x = facts.extra;
    reasons.push(
      ...classRefusals('platform', d.platformClass, now, {
        // The platform's status (with the TDX module) is judged by acceptedTcbStatuses on the
        // combined status; the class repeats no status check of its own.
        status: undefined,
        advisoryIds: own ? x.platformAdvisoryIds : facts.advisoryIds,
        evalNum: own ? x.platformTcbEvaluationDataNumber : facts.tcbEvaluationDataNumber,
        nextUpdate: own ? x.platformCollateralNextUpdate : facts.collateralNextUpdate,
        tcbStatusForGrace: own ? x.platformClassTcbStatus : facts.tcbStatus,
        tcbDate: own ? x.tcbDate : combinedDate,
      }),
    );
  }
  if (d.qeClass !== undefined) {
    const x = facts.extra;
    reasons.push(
      ...classRefusals('TD QE identity', d.qeClass, now, {
        status: x.qeTcbStatus,
        advisoryIds: x.qeAdvisoryIds,
        evalNum: x.qeTcbEvaluationDataNumber,
        nextUpdate: x.qeCollateralNextUpdate,
        tcbStatusForGrace: x.qeTcbStatus,
        tcbDate: x.qeTcbDate,
      }),
    );
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
