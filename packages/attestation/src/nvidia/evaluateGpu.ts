import { type ErrorCode, InvalidInputError } from '@firn/core';
import { fwidLayout } from './certChain.ts';
import type { GpuFacts } from './verifyGpuEvidence.ts';

/** What a requester or verifier accepts from a node's GPUs. */
export interface GpuPolicy {
  /** Minimum number of GPUs (NVSwitches not counted) that must pass every check. 0: GPUs optional. */
  required: number;
  /**
   * Require evidence that the GPU runs in CC mode. The CC configuration is part of the measured
   * state that RIMs describe, so this demands measurements === 'match' (see decision 0402).
   */
  requireCcMode?: boolean;
  acceptedDriverVersions?: string[];
  acceptedVbiosVersions?: string[];
  requireMeasurementsMatch: boolean;
  allowRevocationUnchecked: boolean;
  /**
   * Without allowRevocationUnchecked: an authenticated OCSP answer up to this many seconds past
   * its nextUpdate still counts as checked (a responder outage inside the grace does not stop
   * work; a revoked answer is always refused). Absent or 0: the answer must be current.
   */
  revocationGraceSeconds?: number;
  /** Minimum number of NVSwitches that must pass every check (default 0). */
  requiredSwitches?: number;
  /** Dev only: accept GPUs chained to an explicitly passed simulated root. */
  allowSimulated: boolean;
}

export interface GpuRefusal {
  code: ErrorCode;
  message: string;
}

/**
 * NVSwitch architectures are named LS10 and later LSxx; they have no driver version. A name test
 * only: whether a device IS a switch is GpuFacts.kind, read from its certified chain.
 */
export function isNvSwitch(arch: string): boolean {
  return /^LS\d+$/i.test(arch);
}

const norm = (v: string): string => v.trim().toUpperCase();

/** Apply a GpuPolicy to verified facts; returns every reason for a no, never throws on facts. */
export function evaluateGpu(
  facts: readonly GpuFacts[],
  policy: GpuPolicy,
): { ok: true } | { ok: false; reasons: GpuRefusal[] } {
  const reasons: GpuRefusal[] = [];
  const no = (code: ErrorCode, message: string): void => {
    reasons.push({ code, message });
  };
  facts.forEach((f, i) => {
    const who = `device ${i} (${f.arch})`;
    // The device's kind and architecture are the certified chain's; a host label that says
    // otherwise (or a nonce/driver/VBIOS label that differs from the signed report) is refused.
    for (const p of f.labelProblems) no('E_EVIDENCE_MALFORMED', `${who}: ${p}`);
    if (f.kind === 'unknown')
      no(
        'E_UNSUPPORTED',
        `${who}: its certificate chain names device model ${f.hwmodel === null ? '(none)' : JSON.stringify(f.hwmodel)}, not a GPU or NVSwitch model known here (GH100, GB100, LS_10)`,
      );
    if (!f.signatureValid) no('E_EVIDENCE_SIGNATURE', `${who}: SPDM signature does not verify`);
    if (!f.chainValid)
      no('E_EVIDENCE_CHAIN', `${who}: certificate chain invalid: ${f.chainProblems.join('; ')}`);
    if (f.fwidMatches === false)
      no(
        'E_EVIDENCE_CHAIN',
        fwidLayout(f.arch) === undefined
          ? `${who}: no FWID layout is known for architecture ${f.arch}`
          : `${who}: report FWID differs from the leaf certificate FWID`,
      );
    if (!f.nonceMatches) no('E_EVIDENCE_NONCE', `${who}: signed nonce is not the expected nonce`);
    if (f.simulated && !policy.allowSimulated) no('E_POLICY_REJECTED', `${who}: simulated GPU not allowed`);
    if (f.revoked) {
      const rim = (['driver', 'vbios'] as const).filter((k) => f.rims?.[k]?.revoked === true);
      no(
        'E_EVIDENCE_REVOKED',
        rim.length > 0
          ? `${who}: the signing certificate chain of its ${rim.join(' and ')} RIM is revoked`
          : `${who}: a certificate is revoked`,
      );
    }
    if (f.revocation === 'not-checked' && !policy.allowRevocationUnchecked) {
      const stale = f.revocationStaleSeconds;
      const grace = policy.revocationGraceSeconds ?? 0;
      if (stale === null || stale === undefined)
        no('E_EVIDENCE_REVOKED', `${who}: revocation not checked (no authenticated OCSP answer)`);
      else if (stale > grace)
        no(
          'E_EVIDENCE_REVOKED',
          `${who}: OCSP answer is ${stale} s past its nextUpdate, over the policy's grace of ${grace} s`,
        );
    }
    const needMatch =
      policy.requireMeasurementsMatch || (policy.requireCcMode === true && f.kind !== 'nvswitch');
    if (needMatch && f.measurements !== 'match')
      no(
        'E_EVIDENCE_TCB',
        f.measurements === 'mismatch'
          ? `${who}: measurements differ from the RIM at indexes ${f.mismatchingIndexes.join(',')}`
          : `${who}: no verified RIM for its driver/VBIOS`,
      );
    if (f.kind !== 'nvswitch' && policy.acceptedDriverVersions !== undefined) {
      const ok =
        f.driverVersion !== null && policy.acceptedDriverVersions.map(norm).includes(norm(f.driverVersion));
      if (!ok) no('E_POLICY_REJECTED', `${who}: driver version ${f.driverVersion ?? 'unknown'} not accepted`);
    }
    if (policy.acceptedVbiosVersions !== undefined) {
      const ok =
        f.vbiosVersion !== null && policy.acceptedVbiosVersions.map(norm).includes(norm(f.vbiosVersion));
      if (!ok) no('E_POLICY_REJECTED', `${who}: VBIOS version ${f.vbiosVersion ?? 'unknown'} not accepted`);
    }
  });
  // GPUs and switches are counted apart: switch-only evidence verifies on its own and the policy
  // says how many of each it needs.
  // Distinct devices only: one device's signed answer copied into several entries is one device.
  // Kinds are the certified chain's (an 'unknown' device counts as neither).
  const distinct = (kind: 'gpu' | 'nvswitch') =>
    new Set(facts.filter((f) => f.kind === kind).map((f) => f.deviceId)).size;
  const gpus = distinct('gpu');
  const switches = distinct('nvswitch');
  if (gpus < policy.required)
    no('E_POLICY_REJECTED', `${gpus} GPU(s) presented, ${policy.required} required`);
  if (switches < (policy.requiredSwitches ?? 0))
    no('E_POLICY_REJECTED', `${switches} NVSwitch(es) presented, ${policy.requiredSwitches} required`);
  return reasons.length === 0 ? { ok: true } : { ok: false, reasons };
}

/** Parse a GpuPolicy from untrusted JSON (a policy file); unknown keys are refused. */
export function parseGpuPolicy(value: unknown): GpuPolicy {
  const bad = (m: string): never => {
    throw new InvalidInputError(m);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    bad('GPU policy must be an object');
  const o = value as Record<string, unknown>;
  const known = new Set([
    'required',
    'requireCcMode',
    'acceptedDriverVersions',
    'acceptedVbiosVersions',
    'requireMeasurementsMatch',
    'allowRevocationUnchecked',
    'allowSimulated',
    'revocationGraceSeconds',
    'requiredSwitches',
  ]);
  for (const k of Object.keys(o)) if (!known.has(k)) bad(`GPU policy has unknown key ${k}`);
  if (!Number.isInteger(o.required) || (o.required as number) < 0 || (o.required as number) > 64)
    bad('GPU policy required must be an integer 0..64');
  for (const k of ['requireMeasurementsMatch', 'allowRevocationUnchecked', 'allowSimulated'])
    if (typeof o[k] !== 'boolean') bad(`GPU policy ${k} must be a boolean`);
  if (o.requireCcMode !== undefined && typeof o.requireCcMode !== 'boolean')
    bad('requireCcMode must be a boolean');
  const list = (k: string): string[] | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length > 256 || !v.every((s) => typeof s === 'string' && s.length <= 64))
      bad(`GPU policy ${k} must be a list of version strings`);
    return v as string[];
  };
  const p: GpuPolicy = {
    required: o.required as number,
    requireMeasurementsMatch: o.requireMeasurementsMatch as boolean,
    allowRevocationUnchecked: o.allowRevocationUnchecked as boolean,
    allowSimulated: o.allowSimulated as boolean,
  };
  if (o.requireCcMode !== undefined) p.requireCcMode = o.requireCcMode as boolean;
  if (o.revocationGraceSeconds !== undefined) {
    const g = o.revocationGraceSeconds;
    if (!Number.isSafeInteger(g) || (g as number) < 0 || (g as number) > 30 * 86400)
      bad('GPU policy revocationGraceSeconds must be an integer 0..2592000');
    p.revocationGraceSeconds = g as number;
  }
  if (o.requiredSwitches !== undefined) {
    const n = o.requiredSwitches;
    if (!Number.isInteger(n) || (n as number) < 0 || (n as number) > 64)
      bad('GPU policy requiredSwitches must be an integer 0..64');
    p.requiredSwitches = n as number;
  }
  const d = list('acceptedDriverVersions');
  if (d) p.acceptedDriverVersions = d;
  const v = list('acceptedVbiosVersions');
  if (v) p.acceptedVbiosVersions = v;
  return p;
}
