import { bytesToHex, type Hex, hexBytes } from './bytes.ts';
import { FirnError, TooLargeError } from './errors.ts';
import { taggedSha256 } from './hash.ts';
import { assertNonce, isTeeTypeName, type TeeTypeName } from './identity.ts';
import { TAGS } from './tags.ts';
import { utf8 } from './bytes.ts';

/** One GPU or NVSwitch entry in the shape NVIDIA's attestation SDK produces. */
export interface GpuEvidenceEntry {
  arch: string;
  nonce: string;
  /** base64 SPDM GET_MEASUREMENTS request+response. */
  evidence: string;
  /** base64 PEM certificate chain, leaf first. */
  certificate: string;
  [k: string]: unknown;
}

/** The evidence bundle a node returns for POST /v1/attestation (wire format v1). */
export interface EvidenceBundle {
  version: 1;
  teeType: TeeTypeName;
  /** The CPU TEE quote. */
  quote: Hex;
  /** Optional collateral (DCAP: QuoteCollateralV3 JSON shape). */
  collateral?: unknown;
  /** Optional GPU evidence list, bound through the report data. */
  gpu?: GpuEvidenceEntry[];
  nonce: Hex;
  /** Identity the quote's report data binds. */
  enclaveAddress: Hex;
  kemPublicKey: Hex;
  /**
   * The operator account (20 bytes) the enclave was started for, also bound by the report data
   * (decision 1830); absent when the enclave serves no operator. A verifier compares it with the
   * operator the registry records.
   */
  operator?: Hex;
}

export const MAX_EVIDENCE_BUNDLE_BYTES = 1 << 20;
export const MAX_QUOTE_BYTES = 64 * 1024;
export const MAX_GPU_ENTRIES = 16;

export class EvidenceMalformedError extends FirnError {
  override readonly name = 'EvidenceMalformedError';
  constructor(message: string) {
    super('E_EVIDENCE_MALFORMED', message);
  }
}

/**
 * Parse an evidence bundle from untrusted JSON text or bytes; size-capped, shape-checked, no
 * signature checked. Hex fields come back lower-case with 0x. Throws TooLargeError over
 * MAX_EVIDENCE_BUNDLE_BYTES (or a quote over MAX_QUOTE_BYTES), EvidenceMalformedError
 * (E_EVIDENCE_MALFORMED) for anything else: not JSON, an unknown version or TEE type, a field of
 * the wrong type or length (`operator`, when present, must be 20 bytes of hex).
 */
export function parseEvidenceBundle(input: string | Uint8Array | unknown): EvidenceBundle {
  let obj: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
    if (size > MAX_EVIDENCE_BUNDLE_BYTES)
      throw new TooLargeError('evidence bundle', size, MAX_EVIDENCE_BUNDLE_BYTES);
    try {
      obj = JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
    } catch {
      throw new EvidenceMalformedError('evidence bundle is not JSON');
    }
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    throw new EvidenceMalformedError('evidence bundle must be an object');
  const o = obj as Record<string, unknown>;
  if (o.version !== 1) throw new EvidenceMalformedError('unsupported evidence bundle version');
  if (!isTeeTypeName(o.teeType)) throw new EvidenceMalformedError('unknown teeType');
  const wrap = <T>(f: () => T, what: string): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof TooLargeError) throw e;
      throw new EvidenceMalformedError(`${what}: ${(e as Error).message}`);
    }
  };
  const quote = wrap(() => hexBytes(o.quote, 'quote', undefined, MAX_QUOTE_BYTES), 'quote');
  const nonce = wrap(() => assertNonce(hexBytes(o.nonce, 'nonce', undefined, 64)), 'nonce');
  const enclaveAddress = wrap(() => hexBytes(o.enclaveAddress, 'enclaveAddress', 20), 'enclaveAddress');
  const kemPublicKey = wrap(() => hexBytes(o.kemPublicKey, 'kemPublicKey', 32), 'kemPublicKey');
  const operator =
    o.operator === undefined ? undefined : wrap(() => hexBytes(o.operator, 'operator', 20), 'operator');
  const bundle: EvidenceBundle = {
    version: 1,
    teeType: o.teeType,
    quote: bytesToHex(quote),
    nonce: bytesToHex(nonce),
    enclaveAddress: bytesToHex(enclaveAddress),
    kemPublicKey: bytesToHex(kemPublicKey),
  };
  if (operator !== undefined) bundle.operator = bytesToHex(operator);
  if (o.collateral !== undefined) bundle.collateral = o.collateral;
  if (o.gpu !== undefined) {
    if (!Array.isArray(o.gpu) || o.gpu.length > MAX_GPU_ENTRIES)
      throw new EvidenceMalformedError(`gpu must be a list of at most ${MAX_GPU_ENTRIES} entries`);
    for (const g of o.gpu) {
      if (typeof g !== 'object' || g === null)
        throw new EvidenceMalformedError('gpu entry must be an object');
      const e = g as Record<string, unknown>;
      for (const k of ['arch', 'nonce', 'evidence', 'certificate'])
        if (typeof e[k] !== 'string')
          throw new EvidenceMalformedError(`gpu entry field ${k} must be a string`);
    }
    bundle.gpu = o.gpu as GpuEvidenceEntry[];
  }
  return bundle;
}

/** Digest of a GPU evidence list as bound into the CPU report data (order-sensitive). */
export function gpuEvidenceDigest(entries: readonly GpuEvidenceEntry[]): Uint8Array {
  const fields: Uint8Array[] = [];
  for (const e of entries) fields.push(utf8(e.arch), utf8(e.nonce), utf8(e.evidence), utf8(e.certificate));
  return taggedSha256(TAGS.gpuEvidence, ...fields);
}

/** Digest of a whole bundle, as stored on chain with a registration. */
export function evidenceBundleDigest(bundle: EvidenceBundle): Uint8Array {
  return taggedSha256(TAGS.evidenceDigest, utf8(JSON.stringify(canonicalize(bundle))));
}

/** JSON with sorted keys, so equal values serialise to equal bytes. */
export function canonicalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonicalize);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = Object.create(null);
    for (const k of Object.keys(v as object).sort()) out[k] = canonicalize((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}
