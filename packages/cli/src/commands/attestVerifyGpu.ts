import { FirnError, type GpuEvidenceEntry, hexBytes, InvalidInputError } from '@firn/core';
import type { Command } from 'commander';
import {
  evaluateGpu,
  type GpuFacts,
  type GpuPolicy,
  loadRims,
  parseGpuPolicy,
  verifyGpuEvidenceList,
} from '@firn/attestation';
import { cliErrorBody, exitCodeOf } from '../output.ts';
import { readUserFile } from '../readUserFile.ts';
import { parseAtArg } from '../parseAtArg.ts';

export interface AttestVerifyGpuOptions {
  /** Path of the evidence JSON: the SDK's list, or an object with a `gpu` list (evidence bundle). */
  evidence: string;
  /** The 32-byte nonce the devices must have signed, hex. */
  nonce: string;
  /** Verification time, unix seconds. */
  at: string | number;
  rims?: string;
  policy?: string;
  /** OCSP responder URL; revocation is not checked without it. */
  ocsp?: string;
}

const MAX_EVIDENCE_FILE = 4 << 20;
const MAX_POLICY_FILE = 64 << 10;

/**
 * Used when no --policy is given: cryptographic checks must hold and simulated GPUs are refused,
 * but an offline run cannot check revocation and RIMs are optional, so those are reported only.
 * No number of GPUs is required, so evidence of NVSwitches alone is judged on its own; an empty
 * evidence list is refused before the policy (entriesOf).
 */
export const DEFAULT_CLI_GPU_POLICY: GpuPolicy = {
  required: 0,
  requireMeasurementsMatch: false,
  allowRevocationUnchecked: true,
  allowSimulated: false,
};

/** A user-named file through the one capped reader (no FIFOs or devices; at most cap + 1 bytes read). */
const readCapped = async (path: string, cap: number, what: string): Promise<string> =>
  (await readUserFile(path, what, cap)).toString('utf8');

function entriesOf(json: unknown): GpuEvidenceEntry[] {
  const list = Array.isArray(json) ? json : (json as { gpu?: unknown } | null)?.gpu;
  if (!Array.isArray(list))
    throw new FirnError('E_EVIDENCE_MALFORMED', 'evidence must be a list or have a gpu list');
  if (list.length === 0) throw new FirnError('E_EVIDENCE_MALFORMED', 'evidence lists no GPU or NVSwitch');
  for (const e of list) {
    if (typeof e !== 'object' || e === null)
      throw new FirnError('E_EVIDENCE_MALFORMED', 'evidence entry must be an object');
    for (const k of ['arch', 'evidence', 'certificate'])
      if (typeof (e as Record<string, unknown>)[k] !== 'string')
        throw new FirnError('E_EVIDENCE_MALFORMED', `evidence entry field ${k} must be a string`);
  }
  return list as GpuEvidenceEntry[];
}

function deviceResult(f: GpuFacts) {
  return {
    // arch and kind are read from the certified chain; labelledArch is what the host said.
    arch: f.arch,
    kind: f.kind,
    hwmodel: f.hwmodel,
    labelledArch: f.labelledArch,
    labelProblems: f.labelProblems,
    signatureValid: f.signatureValid,
    chainValid: f.chainValid,
    fwidMatches: f.fwidMatches,
    nonceMatches: f.nonceMatches,
    driverVersion: f.driverVersion,
    vbiosVersion: f.vbiosVersion,
    measurements: f.measurements,
    mismatchingIndexes: f.mismatchingIndexes,
    revocation: f.revocation,
    revoked: f.revoked,
    simulated: f.simulated,
    deviceId: f.deviceId,
    chainNotBefore: f.chainNotBefore,
    chainNotAfter: f.chainNotAfter,
    chainProblems: f.chainProblems,
    rims: f.rims,
  };
}

/** The testable core of `firn attest verify-gpu`: never exits, returns the exit code and the JSON text. */
export async function runAttestVerifyGpu(
  opts: AttestVerifyGpuOptions,
): Promise<{ exitCode: number; output: string }> {
  try {
    const nonce = hexBytes(opts.nonce, '--nonce', 32);
    const at = parseAtArg(opts.at);
    let json: unknown;
    try {
      json = JSON.parse(await readCapped(opts.evidence, MAX_EVIDENCE_FILE, 'evidence'));
    } catch (e) {
      if (e instanceof FirnError) throw e;
      throw new FirnError('E_EVIDENCE_MALFORMED', 'evidence file is not JSON');
    }
    let policy = DEFAULT_CLI_GPU_POLICY;
    if (opts.policy !== undefined) {
      let p: unknown;
      try {
        p = JSON.parse(await readCapped(opts.policy, MAX_POLICY_FILE, 'policy'));
      } catch (e) {
        if (e instanceof FirnError) throw e;
        throw new InvalidInputError('policy file is not JSON');
      }
      policy = parseGpuPolicy(p);
    }
    const ctx = {
      now: at,
      expectedNonce: nonce,
      ...(opts.rims !== undefined ? { rims: await loadRims(opts.rims) } : {}),
      ...(opts.ocsp !== undefined ? { ocsp: { url: opts.ocsp } } : {}),
    };
    const facts = await verifyGpuEvidenceList(entriesOf(json), ctx);
    const verdict = evaluateGpu(facts, policy);
    const body = {
      devices: facts.map(deviceResult),
      verdict: verdict.ok ? 'accepted' : 'rejected',
      ...(verdict.ok ? {} : { reasons: verdict.reasons }),
      policy,
    };
    if (!verdict.ok) {
      const error = {
        code: 'E_POLICY_REJECTED',
        message: `${verdict.reasons.length} reason(s) for refusal`,
        reasons: verdict.reasons,
      };
      return { exitCode: 1, output: JSON.stringify({ ...body, error }, null, 2) };
    }
    return { exitCode: 0, output: JSON.stringify(body, null, 2) };
  } catch (e) {
    // A mistake in the command (a missing file, a malformed flag) is exit 3, as for every command.
    return { exitCode: exitCodeOf(e) === 3 ? 3 : 2, output: JSON.stringify({ error: cliErrorBody(e) }) };
  }
}

/** Register `verify-gpu` under the `attest` command group. */
export function registerAttestVerifyGpu(attest: Command): Command {
  return attest
    .command('verify-gpu')
    .description('verify NVIDIA GPU / NVSwitch evidence (SDK JSON) and apply a GPU policy')
    .requiredOption('--evidence <file>', 'evidence JSON: a list of {arch, nonce, evidence, certificate}')
    .requiredOption('--nonce <hex>', 'the 32-byte nonce the devices must have signed')
    .requiredOption('--at <unixSeconds>', 'verification time')
    .option('--rims <dir>', 'directory of RIM files (*.swidtag)')
    .option('--policy <file>', 'GPU policy JSON')
    .option('--ocsp <url>', 'OCSP responder URL (revocation is reported as not checked without it)')
    .option('--json', 'print JSON (the only output format)')
    .action(async (o: AttestVerifyGpuOptions) => {
      const r = await runAttestVerifyGpu(o);
      process.stdout.write(`${r.output}\n`);
      process.exitCode = r.exitCode;
    });
}
