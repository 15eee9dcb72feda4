import { FirnError } from '@firn/core';
import type { Refusal, TcbStatus, VerifiedEvidence } from '../types.ts';
import type { SevSnpGuestPolicy, SevSnpProduct, SevSnpTcb } from './sevSnpReport.ts';

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
 * The silicon lines whose TCB SPLs are comparable: each has its own microcode patch sequence, so a
 * microcode minimum holds for one line only (AMD-SB-3019 publishes one minimum per line). Milan-X
 * and Genoa-X are stepping 2 of the Milan and Genoa models; Genoa-Zen4c is Bergamo and Siena
 * (family 19h models A0h-AFh), which attest under the Genoa ARK.
 */
export type SevSnpSiliconLine = 'Milan' | 'Milan-X' | 'Genoa' | 'Genoa-X' | 'Genoa-Zen4c' | 'Turin';
export const SEV_SNP_SILICON_LINES: readonly SevSnpSiliconLine[] = [
  'Milan',
  'Milan-X',
  'Genoa',
  'Genoa-X',
  'Genoa-Zen4c',
  'Turin',
];

/**
 * The silicon line of a report from its verified product and (version 3+) CPUID family, model and
 * stepping. A report without CPUID (version 2) gets the product's classic line, whose minimums are
 * the strictest of the product.
 */
export function sevSnpSiliconLine(
  product: SevSnpProduct,
  cpuid?: { family: number; model: number; stepping: number },
): SevSnpSiliconLine {
  if (product === 'Turin' || cpuid === undefined || cpuid.family !== 0x19) return product;
  if (product === 'Genoa' && cpuid.model >= 0xa0 && cpuid.model <= 0xaf) return 'Genoa-Zen4c';
  if (cpuid.stepping === 2) return product === 'Milan' ? 'Milan-X' : 'Genoa-X';
  return product;
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
  /** Minimum REPORTED_TCB components, whatever the product (a refusal, not a status). Default: none. */
  minTcb?: SevSnpMinTcb;
  /**
   * Per silicon line, the TCB below which a platform is out of date (AMD publishes no TCB status;
   * these minimums play the part of Intel's TCB info). A report whose REPORTED_TCB (what its VEK
   * certifies) or LAUNCH_TCB (the TCB its guest was launched on) is under the minimum in any
   * component gets tcbStatus 'OutOfDate', else 'UpToDate'; acceptedTcbStatuses then decides.
   * SPLs are security patch levels (0..255); fmc is compared only where the minimum names it.
   * Default: none (the VEK-certified TCB is reported 'UpToDate').
   */
  minTcbByLine?: Partial<Record<SevSnpSiliconLine, SevSnpMinTcb>>;
  /** Refuse a report of a silicon line that minTcbByLine has no minimum for. Default false. */
  requireMinTcb?: boolean;
  /** Minimum guest SVN. Default: none. */
  minGuestSvn?: number;
  /**
   * Require the product's CRL to have been checked (attached, or the verifier's own: KDS or
   * offline collateral). Default false; the production policy sets it.
   */
  requireCrl?: boolean;
}

/** The TCB components a minimum may name, in report order. */
const TCB_PARTS = ['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const;

/** What sevSnpTcbStatus found: the line, the status (undefined: no minimum for the line) and why. */
export interface SevSnpTcbAppraisal {
  line: SevSnpSiliconLine;
  status: Extract<TcbStatus, 'UpToDate' | 'OutOfDate'> | undefined;
  /** Each component under its minimum, e.g. "REPORTED_TCB microcode 217 < 219". */
  below: string[];
}

/**
 * Compare verified SEV-SNP facts' REPORTED_TCB and LAUNCH_TCB with the policy's minimum for their
 * silicon line (go-sev-guest's MinimumTCB and MinimumLaunchTCB, one value for both). Undefined
 * when the facts lack the product or TCBs (sevSnpRefusals then refuses them).
 */
export function sevSnpTcbStatus(facts: VerifiedEvidence, p: SevSnpPolicy): SevSnpTcbAppraisal | undefined {
  const x = facts.extra as {
    product?: SevSnpProduct;
    cpuid?: { family: number; model: number; stepping: number };
    reportedTcb?: SevSnpTcb;
    launchTcb?: SevSnpTcb;
  };
  if (x.product === undefined || x.reportedTcb === undefined || x.launchTcb === undefined) return undefined;
  const line = sevSnpSiliconLine(x.product, x.cpuid);
  const min = p.minTcbByLine?.[line];
  if (min === undefined) return { line, status: undefined, below: [] };
  const below: string[] = [];
  for (const [name, tcb] of [
    ['REPORTED_TCB', x.reportedTcb],
    ['LAUNCH_TCB', x.launchTcb],
  ] as const)
    for (const k of TCB_PARTS) {
      const want = min[k];
      if (want === undefined) continue;
      const have = tcb[k];
      if (have === undefined || have < want) below.push(`${name} ${k} ${have ?? 'none'} < ${want}`);
    }
  return { line, status: below.length > 0 ? 'OutOfDate' : 'UpToDate', below };
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
  if (p.requireMinTcb === true) {
    const t = sevSnpTcbStatus(facts, p);
    if (t !== undefined && t.status === undefined)
      out.push({
        code: 'E_EVIDENCE_TCB',
        message: `the policy has no minimum TCB for ${t.line} parts, so their TCB cannot be judged: set sevSnp.minTcbByLine.${t.line} (bootloader, tee, snp, microcode${t.line === 'Turin' ? ', fmc' : ''}) from AMD's security bulletins`,
      });
  }
  if (p.requireCrl === true && x.crlChecked !== true)
    out.push({
      code: 'E_EVIDENCE_COLLATERAL',
      message:
        "the product's CRL was not checked, so a revoked VCEK or ASK would pass: attach it as collateral.crl (base64 of the DER from the AMD KDS, /vcek/v1/{product}/crl), or give the verifier its own (firn verifier start --kds URL; firn attest verify --crl FILE or --kds URL; the sevSnpCollateral or collateral option of appraiseEvidence and attestNode)",
    });
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
  const parseMinTcb = (v: unknown, where: string): SevSnpMinTcb => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${where} must be an object`);
    const t: SevSnpMinTcb = {};
    for (const [tk, tv] of Object.entries(v as Record<string, unknown>)) {
      if (tk !== 'bootloader' && tk !== 'tee' && tk !== 'snp' && tk !== 'microcode' && tk !== 'fmc')
        throw bad(`${where} has unknown key ${tk}`);
      t[tk] = small(tv, `${where}.${tk}`, 255);
    }
    return t;
  };
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (
      k === 'allowSmt' ||
      k === 'allowMigrationAgent' ||
      k === 'allowMaskedChipId' ||
      k === 'allowVlek' ||
      k === 'requireCrl' ||
      k === 'requireMinTcb'
    ) {
      if (typeof v !== 'boolean') throw bad(`${k} must be a boolean`);
      out[k] = v;
    } else if (k === 'maxVmpl') out.maxVmpl = small(v, k, 3);
    else if (k === 'minGuestSvn') out.minGuestSvn = small(v, k, 0xffffffff);
    else if (k === 'minTcb') out.minTcb = parseMinTcb(v, 'minTcb');
    else if (k === 'minTcbByLine') {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw bad('minTcbByLine must be an object keyed by silicon line');
      const byLine: Partial<Record<SevSnpSiliconLine, SevSnpMinTcb>> = {};
      for (const [line, m] of Object.entries(v as Record<string, unknown>)) {
        if (!(SEV_SNP_SILICON_LINES as readonly string[]).includes(line))
          throw bad(`minTcbByLine has unknown line ${line} (known: ${SEV_SNP_SILICON_LINES.join(', ')})`);
        byLine[line as SevSnpSiliconLine] = parseMinTcb(m, `minTcbByLine.${line}`);
      }
      out.minTcbByLine = byLine;
    } else throw bad(`has unknown key ${k}`);
  }
  return out;
}
