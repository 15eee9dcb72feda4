import { FirnError } from '@firn/core';
import type { Refusal, VerifiedEvidence } from '../types.ts';
import type { SevSnpGuestPolicy, SevSnpTcb } from './sevSnpReport.ts';

/** Minimum TCB component versions (security patch levels) a policy requires. */
export interface SevSnpMinTcb {
  bootloader?: number;
  tee?: number;
  snp?: number;
  microcode?: number;
  /** Turin and later. */
  fmc?: number;
}

/**
 * SEV-SNP rules beyond debug (the policy's allowDebug judges the guest policy's DEBUG bit). The
 * defaults (no sevSnp section) refuse a guest that allows a migration agent, a report from a VMPL
 * other than 0, and a report whose chip id is masked (it cannot be tied to one platform); SMT and
 * VLEK-signed reports are allowed. A policy opts in or out per field.
 */
export interface SevSnpPolicy {
  /** Accept guests whose policy allows SMT on the host (bit 16). Default true. */
  allowSmt?: boolean;
  /** Accept guests whose policy allows a migration agent (MIGRATE_MA, bit 18). Default false. */
  allowMigrationAgent?: boolean;
  /** Highest VMPL a report may come from. Default 0. */
  maxVmpl?: number;
  /**
   * Accept reports whose chip id is masked or all zero (VLEK-signed reports carry zeros): such a
   * report names no platform, so one-registration-per-platform cannot hold. Default false.
   */
  allowMaskedChipId?: boolean;
  /** Accept reports signed by a VLEK (a cloud provider's key). Default true. */
  allowVlek?: boolean;
  /** Minimum REPORTED_TCB components. Default: none. */
  minTcb?: SevSnpMinTcb;
  /** Minimum guest SVN. Default: none. */
  minGuestSvn?: number;
  /** Require the CRL to have been checked. Default false. */
  requireCrl?: boolean;
}

const no = (message: string): Refusal => ({ code: 'E_POLICY_REJECTED', message });

/**
 * The SevSnpPolicy rules over verified SEV-SNP facts (the extra fields sevSnpFacts writes); every
 * reason for a no. Missing facts fail closed.
 */
export function sevSnpRefusals(facts: VerifiedEvidence, p: SevSnpPolicy): Refusal[] {
  const x = facts.extra as {
    guestPolicy?: SevSnpGuestPolicy;
    vmpl?: number;
    chipIdMasked?: boolean;
    signingKey?: string;
    reportedTcb?: SevSnpTcb;
    crlChecked?: boolean;
  };
  const gp = x.guestPolicy;
  if (gp === undefined || x.vmpl === undefined || x.reportedTcb === undefined)
    return [no('SEV-SNP facts are incomplete (guest policy, VMPL or TCB missing)')];
  const out: Refusal[] = [];
  if (gp.smtAllowed && p.allowSmt === false)
    out.push(no('the guest policy allows SMT, which this policy refuses'));
  if (gp.migrateMaAllowed && p.allowMigrationAgent !== true)
    out.push(no('the guest policy allows a migration agent (MIGRATE_MA)'));
  if (x.vmpl > (p.maxVmpl ?? 0)) out.push(no(`the report comes from VMPL ${x.vmpl}, over ${p.maxVmpl ?? 0}`));
  if (x.chipIdMasked === true && p.allowMaskedChipId !== true)
    out.push(no('the report masks its chip id (or it is zero), so it cannot be tied to one platform'));
  if (x.signingKey === 'vlek' && p.allowVlek === false) out.push(no('the report is signed by a VLEK'));
  for (const [k, min] of Object.entries(p.minTcb ?? {}) as [keyof SevSnpMinTcb, number][]) {
    const have = x.reportedTcb[k];
    if (have === undefined || have < min) out.push(no(`reported TCB ${k} ${have ?? 'none'} is under ${min}`));
  }
  if (p.minGuestSvn !== undefined) {
    const svn = Number(facts.measurements.guestSvn ?? Number.NaN);
    if (!(svn >= p.minGuestSvn))
      out.push(no(`guest SVN ${facts.measurements.guestSvn} is under ${p.minGuestSvn}`));
  }
  if (p.requireCrl === true && x.crlChecked !== true) out.push(no("the product's CRL was not checked"));
  return out;
}

/** Parse a SevSnpPolicy from untrusted JSON; unknown keys are refused. Errors: E_INVALID_INPUT. */
export function parseSevSnpPolicy(value: unknown): SevSnpPolicy {
  const bad = (m: string) => new FirnError('E_INVALID_INPUT', `policy: sevSnp ${m}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('must be an object');
  const out: SevSnpPolicy = {};
  const small = (v: unknown, k: string, max: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
      throw bad(`${k} must be an integer 0..${max}`);
    return v;
  };
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (
      k === 'allowSmt' ||
      k === 'allowMigrationAgent' ||
      k === 'allowMaskedChipId' ||
      k === 'allowVlek' ||
      k === 'requireCrl'
    ) {
      if (typeof v !== 'boolean') throw bad(`${k} must be a boolean`);
      out[k] = v;
    } else if (k === 'maxVmpl') out.maxVmpl = small(v, k, 3);
    else if (k === 'minGuestSvn') out.minGuestSvn = small(v, k, 0xffffffff);
    else if (k === 'minTcb') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('minTcb must be an object');
      const t: SevSnpMinTcb = {};
      for (const [tk, tv] of Object.entries(v as Record<string, unknown>)) {
        if (tk !== 'bootloader' && tk !== 'tee' && tk !== 'snp' && tk !== 'microcode' && tk !== 'fmc')
          throw bad(`minTcb has unknown key ${tk}`);
        t[tk] = small(tv, `minTcb.${tk}`, 255);
      }
      out.minTcb = t;
    } else throw bad(`has unknown key ${k}`);
  }
  return out;
}
