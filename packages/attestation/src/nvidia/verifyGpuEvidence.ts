import { createHash, verify as cryptoVerify } from 'node:crypto';
import {
  bytesEqual,
  bytesToHex,
  FirnError,
  type GpuEvidenceEntry,
  isFirnError,
  type Hex,
  MAX_GPU_ENTRIES,
} from '@firn/core';
import {
  CertificateFormatError,
  certificateFwid,
  fwidLayout,
  parseCert,
  pemToDerList,
  publicKeyOf,
  verifyCertChain,
} from './certChain.ts';
import { compareMeasurements } from './compareMeasurements.ts';
import { deviceModelOf, type NvDeviceKind } from './deviceModel.ts';
import { checkOcsp, type OcspOptions } from './checkOcsp.ts';
import { NVIDIA_DEVICE_ROOT_PEM } from './nvidiaRoots.ts';
import { MAX_SPDM_REPORT_BYTES, parseSpdmReport } from './parseSpdmReport.ts';
import { type RimFacts, type RimStore, verifyRim } from './verifyRim.ts';

export interface GpuVerifyContext {
  /** Verification time, unix seconds. */
  now: number;
  /** The 32-byte nonce the device must have signed (deriveGpuNonce of the CPU nonce). */
  expectedNonce: Uint8Array;
  roots?: {
    /** Device roots (DER or PEM); NVIDIA's Device Identity CA when absent. */
    device?: Uint8Array[];
    /** RIM signing roots; NVIDIA's CoRIM signing root when absent. */
    rim?: Uint8Array[];
    /** Roots of simulated GPUs: evidence chained to one is valid but marked simulated. */
    simulated?: Uint8Array[];
  };
  rims?: RimStore;
  /** OCSP responder; without it revocation is reported as not checked. */
  ocsp?: OcspOptions;
}

export interface RimSummary {
  source: string;
  tagId: string;
  version: string;
  signatureValid: boolean;
  chainValid: boolean;
  notAfter: number;
  /**
   * OCSP status of the RIM's signer chain (present only when an OCSP responder was configured
   * and the RIM verified): 'checked' when every certificate got a current authenticated answer.
   */
  revocation?: 'checked' | 'not-checked';
  /** An authenticated OCSP answer said a certificate of the RIM's signer chain is revoked. */
  revoked?: boolean;
}

/** What verifyGpuEvidence established about one GPU or NVSwitch. Policy decisions are not made here. */
export interface GpuFacts {
  /**
   * The architecture the device's certificate chain names (HOPPER, BLACKWELL, LS10; 'UNKNOWN'
   * when it names no model firn knows), never the host's label (decision 1767).
   */
  arch: string;
  /** GPU or NVSwitch, from the certificate chain (see deviceModelOf); 'unknown' is refused. */
  kind: NvDeviceKind;
  /** The device identity certificate's common name (NVIDIA's `hwmodel`), e.g. "GH100 A01 GSP BROM". */
  hwmodel: string | null;
  /** The `arch` label the host put on the entry (reported, never used to decide). */
  labelledArch: string;
  /**
   * Host-supplied labels of the entry (arch, nonce, driver_version, vbios_version) that disagree
   * with the certified chain or the signed report, one sentence each; evaluateGpu refuses any.
   * Absent or empty nonce and version labels are not checked.
   */
  labelProblems: string[];
  /** The SPDM signature verifies with the leaf certificate's P-384 key. */
  signatureValid: boolean;
  /** The device chain verifies to a trusted (or explicitly simulated) root at `now`. */
  chainValid: boolean;
  chainProblems: string[];
  /**
   * The report's FWID equals the FWID the leaf certificate carries for this architecture (Hopper:
   * the tail of the DICE extension; Blackwell: DiceTcbInfo fwids[0] under 2.23.133.5.4.1.1); null
   * when the report has none (NVSwitch). False too for an architecture whose layout is unknown.
   */
  fwidMatches: boolean | null;
  nonceMatches: boolean;
  /** The requester nonce the device signed. */
  nonce: Hex;
  driverVersion: string | null;
  vbiosVersion: string | null;
  measurements: 'match' | 'mismatch' | 'no-rim';
  /** 0-based RIM indexes that did not match (empty unless measurements is 'mismatch'). */
  mismatchingIndexes: number[];
  rims: { driver?: RimSummary; vbios?: RimSummary };
  /**
   * 'checked' only when the device chain and the signer chain of every verified RIM all got
   * current, authenticated OCSP answers.
   */
  revocation: 'checked' | 'not-checked';
  /**
   * With revocation 'not-checked': how many seconds past its nextUpdate the authenticated but
   * stale OCSP answer was (the policy's revocation grace applies to it); null when there was no
   * authenticated answer at all, 0 when revocation is 'checked'.
   */
  revocationStaleSeconds: number | null;
  /** True only when an OCSP responder said a certificate (device chain or RIM signer chain) is revoked. */
  revoked: boolean;
  simulated: boolean;
  /** Device identity: the subject serial number of the device identity (BROM) certificate. */
  deviceId: string;
  /** Project / SKU / chip SKU from the report (GPUs only). */
  platform: { project: string | null; projectSku: string | null; chipSku: string | null };
  chainNotBefore: number;
  chainNotAfter: number;
  featureFlag: Hex | null;
  measurementCount: number;
}

const MAX_CERT_B64 = 64 * 1024;
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function b64(value: unknown, what: string, max: number): Uint8Array {
  if (typeof value !== 'string')
    throw new FirnError('E_EVIDENCE_MALFORMED', `${what} must be a base64 string`);
  const s = value.replace(/\s+/g, '');
  if (s.length > max)
    throw new FirnError('E_TOO_LARGE', `${what} is over its size cap`, { details: { limit: max } });
  if (!B64_RE.test(s) || s.length % 4 !== 0)
    throw new FirnError('E_EVIDENCE_MALFORMED', `${what} is not base64`);
  return new Uint8Array(Buffer.from(s, 'base64'));
}

function subjectSerial(subject: string): string | undefined {
  const m = /(?:^|\n)serialNumber=([0-9A-Fa-f]+)/.exec(subject);
  return m?.[1]?.toUpperCase();
}

function summary(source: string, f: RimFacts): RimSummary {
  return {
    source,
    tagId: f.tagId,
    version: f.version,
    signatureValid: f.signatureValid,
    chainValid: f.chainValid,
    notAfter: f.notAfter,
  };
}

const norm = (v: string): string => v.trim().toUpperCase();
const quote = (v: unknown): string => JSON.stringify(String(v).slice(0, 64));

/**
 * The host's labels that disagree with what the chain certifies and the device signed: `arch`
 * against the chain's model; `nonce`, `driver_version`, `vbios_version` (as NVIDIA's SDK writes
 * them) when present and not empty, against the signed report. NVIDIA's verifiers likewise refuse a driver or
 * VBIOS version from the host that differs from the report's.
 */
function labelProblems(
  entry: GpuEvidenceEntry,
  model: ReturnType<typeof deviceModelOf>,
  report: ReturnType<typeof parseSpdmReport>,
): string[] {
  const out: string[] = [];
  if (model.kind !== 'unknown' && norm(entry.arch) !== model.arch)
    out.push(
      `labelled arch ${quote(entry.arch)} but its certificate chain is ${model.kind === 'gpu' ? 'a' : 'an'} ${model.arch} ${model.kind === 'gpu' ? 'GPU' : 'NVSwitch'} (${model.hwmodel})`,
    );
  const signed: [string, string | undefined][] = [
    ['nonce', bytesToHex(report.requestNonce).slice(2)],
    ['driver_version', report.driverVersion],
    ['vbios_version', report.vbiosVersion],
  ];
  for (const [field, value] of signed) {
    const label = entry[field];
    // An absent or empty label says nothing (NVIDIA's SDK leaves some empty).
    if (label === undefined || label === '') continue;
    const agrees =
      typeof label === 'string' &&
      value !== undefined &&
      norm(field === 'nonce' ? label.replace(/^0x/i, '') : label) === norm(value);
    if (!agrees)
      out.push(
        `labelled ${field} ${quote(label)} but the signed report says ${value === undefined ? 'none' : quote(value)}`,
      );
  }
  return out;
}

/**
 * Verify one GPU/NVSwitch evidence entry: the SPDM GET_MEASUREMENTS signature (P-384, SHA-384 over
 * request and response) with the leaf of the entry's chain, that chain to NVIDIA's pinned Device
 * Identity root (or an explicitly passed simulated root) at ctx.now, the device model (GPU or
 * NVSwitch, architecture) from the chain's device identity certificate (deviceModelOf; the entry's
 * labels are only compared with it and with the signed report, see labelProblems), the report FWID
 * against the leaf's DICE FWID in that model's layout, the signed nonce against ctx.expectedNonce, and the measurements against
 * verified RIMs of the reported driver and VBIOS versions; with ctx.ocsp, the revocation of the
 * device chain and of each verified RIM's signer chain (root included). It proves nothing about which CPU TEE
 * asked (see verifyCompositeBinding) and reports facts only; a malformed entry throws a typed error.
 */
export async function verifyGpuEvidence(entry: GpuEvidenceEntry, ctx: GpuVerifyContext): Promise<GpuFacts> {
  try {
    return await verifyEntry(entry, ctx);
  } catch (e) {
    if (isFirnError(e)) throw e;
    // Every decoder below is typed; this is the net for one that is not (never E_INTERNAL).
    throw new FirnError('E_EVIDENCE_MALFORMED', `GPU evidence does not decode: ${(e as Error)?.message}`, {
      cause: e,
    });
  }
}

async function verifyEntry(entry: GpuEvidenceEntry, ctx: GpuVerifyContext): Promise<GpuFacts> {
  if (typeof entry !== 'object' || entry === null)
    throw new FirnError('E_EVIDENCE_MALFORMED', 'GPU entry must be an object');
  if (typeof entry.arch !== 'string' || entry.arch.length === 0 || entry.arch.length > 32)
    throw new FirnError('E_EVIDENCE_MALFORMED', 'GPU entry arch must be a short string');
  if (!(ctx.expectedNonce instanceof Uint8Array) || ctx.expectedNonce.length !== 32)
    throw new FirnError('E_INVALID_INPUT', 'expectedNonce must be 32 bytes');
  const report = parseSpdmReport(
    b64(entry.evidence, 'evidence', Math.ceil((MAX_SPDM_REPORT_BYTES * 4) / 3) + 4),
  );
  const pem = Buffer.from(b64(entry.certificate, 'certificate', MAX_CERT_B64)).toString('latin1');
  const chainDer = pemToDerList(pem);
  const leaf = parseCert(chainDer[0]!);

  // Signature: ECDSA P-384 / SHA-384 over request || response-without-signature, raw r||s.
  const key = publicKeyOf(leaf);
  let signatureValid = false;
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1') {
    try {
      signatureValid = cryptoVerify(
        'sha384',
        report.signedBytes,
        { key, dsaEncoding: 'ieee-p1363' },
        report.signature,
      );
    } catch {
      signatureValid = false;
    }
  }

  const deviceRoots = ctx.roots?.device ?? [Buffer.from(NVIDIA_DEVICE_ROOT_PEM)];
  const simRoots = ctx.roots?.simulated ?? [];
  const chain = verifyCertChain(chainDer, [...deviceRoots, ...simRoots], ctx.now);
  const simulated = chain.anchorIndex !== undefined && chain.anchorIndex >= deviceRoots.length;

  // What the device is comes from its certified chain, never from the host's label.
  const model = deviceModelOf(chainDer);

  let fwidMatches: boolean | null = null;
  if (report.fwid !== undefined) {
    const layout = fwidLayout(model.arch);
    const certFwid = layout === undefined ? undefined : certificateFwid(chainDer[0]!, layout);
    fwidMatches = certFwid !== undefined && bytesEqual(certFwid, report.fwid);
  }

  const nonceMatches = bytesEqual(report.requestNonce, ctx.expectedNonce);

  // RIMs: the driver RIM (GPUs only) and the VBIOS RIM, selected by the signed versions.
  let measurements: GpuFacts['measurements'] = 'no-rim';
  let mismatchingIndexes: number[] = [];
  const rims: GpuFacts['rims'] = {};
  const verifiedRims: { driver?: RimFacts; vbios?: RimFacts } = {};
  if (ctx.rims) {
    const rimCtx = ctx.roots?.rim === undefined ? { now: ctx.now } : { now: ctx.now, roots: ctx.roots.rim };
    const wanted: ['driver' | 'vbios', string | undefined][] = [
      ['driver', report.driverVersion],
      ['vbios', report.vbiosVersion],
    ];
    const verified: RimFacts[] = [];
    let missing = false;
    for (const [kind, version] of wanted) {
      if (version === undefined) continue;
      const found = ctx.rims.find(kind, version);
      if (!found) {
        missing = true;
        continue;
      }
      const facts = verifyRim(found.xml, rimCtx);
      rims[kind] = summary(found.source, facts);
      if (facts.signatureValid && facts.chainValid && facts.chainToRoot.length > 0) {
        verified.push(facts);
        verifiedRims[kind] = facts;
      } else missing = true;
    }
    if (!missing && verified.length > 0) {
      const cmp = compareMeasurements(report, verified);
      mismatchingIndexes = cmp.mismatchingIndexes;
      measurements = mismatchingIndexes.length === 0 ? 'match' : 'mismatch';
    }
  }

  // Revocation: the device chain, and the signer chain (root included) of every verified RIM,
  // each with its own OCSP requests, as NVIDIA's verifiers do. The facts are the worst of them.
  let revocation: GpuFacts['revocation'] = 'not-checked';
  let revoked = false;
  let revocationStaleSeconds: number | null = null;
  if (ctx.ocsp && !simulated) {
    const results = [await checkOcsp(chainDer, ctx.ocsp, ctx.now)];
    for (const kind of ['driver', 'vbios'] as const) {
      const rim = verifiedRims[kind];
      const sum = rims[kind];
      if (rim === undefined || sum === undefined) continue;
      const r = await checkOcsp(rim.chainToRoot, ctx.ocsp, ctx.now);
      sum.revocation = r.checked ? 'checked' : 'not-checked';
      sum.revoked = r.revoked;
      results.push(r);
    }
    revoked = results.some((r) => r.revoked);
    if (results.every((r) => r.checked)) {
      revocation = 'checked';
      revocationStaleSeconds = 0;
    } else if (results.every((r) => r.checked || r.staleSeconds > 0))
      revocationStaleSeconds = Math.max(...results.map((r) => r.staleSeconds));
  }

  const identity = chainDer.length > 1 ? parseCert(chainDer[1]!) : leaf;
  const deviceId =
    subjectSerial(identity.subject) ??
    createHash('sha256')
      .update(publicKeyOf(identity).export({ type: 'spki', format: 'der' }))
      .digest('hex')
      .toUpperCase();

  return {
    arch: model.arch,
    kind: model.kind,
    hwmodel: model.hwmodel,
    labelledArch: entry.arch,
    labelProblems: labelProblems(entry, model, report),
    signatureValid,
    chainValid: chain.valid,
    chainProblems: chain.problems,
    fwidMatches,
    nonceMatches,
    nonce: bytesToHex(report.requestNonce),
    driverVersion: report.driverVersion ?? null,
    vbiosVersion: report.vbiosVersion ?? null,
    measurements,
    mismatchingIndexes,
    rims,
    revocation,
    revocationStaleSeconds,
    revoked,
    simulated,
    deviceId,
    platform: {
      project: report.project ?? null,
      projectSku: report.projectSku ?? null,
      chipSku: report.chipSku ?? null,
    },
    chainNotBefore: chain.notBefore,
    chainNotAfter: chain.notAfter,
    featureFlag: report.featureFlag ?? null,
    measurementCount: report.blocks.length,
  };
}

/** verifyGpuEvidence over a list (GPUs and NVSwitches), capped at MAX_GPU_ENTRIES; same guarantees. */
export async function verifyGpuEvidenceList(
  entries: readonly GpuEvidenceEntry[],
  ctx: GpuVerifyContext,
): Promise<GpuFacts[]> {
  if (!Array.isArray(entries)) throw new FirnError('E_EVIDENCE_MALFORMED', 'GPU evidence must be a list');
  if (entries.length > MAX_GPU_ENTRIES)
    throw new FirnError(
      'E_TOO_LARGE',
      `GPU evidence list has ${entries.length} entries, over ${MAX_GPU_ENTRIES}`,
    );
  const out: GpuFacts[] = [];
  for (const e of entries) out.push(await verifyGpuEvidence(e, ctx));
  return out;
}

export { CertificateFormatError };
