import { InvalidInputError } from './errors.ts';
import { assertBytes, utf8 } from './bytes.ts';
import { taggedKeccak256, taggedSha256, taggedSha512 } from './hash.ts';
import { TAGS } from './tags.ts';

/**
 * TEE types as named on the wire and numbered on chain (0 is never valid). 4 is AWS Nitro
 * Enclaves, 5 is AMD SEV-SNP.
 */
export const TEE_TYPES = { simulated: 1, sgx: 2, tdx: 3, nitro: 4, 'sev-snp': 5 } as const;
export type TeeTypeName = keyof typeof TEE_TYPES;
export type TeeTypeCode = (typeof TEE_TYPES)[TeeTypeName];

export function teeTypeCode(name: TeeTypeName): TeeTypeCode {
  const c = TEE_TYPES[name];
  if (c === undefined) throw new InvalidInputError(`unknown TEE type ${String(name)}`);
  return c;
}

export function teeTypeName(code: number): TeeTypeName {
  for (const [k, v] of Object.entries(TEE_TYPES)) if (v === code) return k as TeeTypeName;
  throw new InvalidInputError(`unknown TEE type code ${code}`);
}

export function isTeeTypeName(v: unknown): v is TeeTypeName {
  return typeof v === 'string' && Object.hasOwn(TEE_TYPES, v);
}

/**
 * Reduce a TEE's measurement registers to one 32-byte digest. Each TEE passes its registers in a
 * fixed order (SGX: MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN; TDX: MRTD, RTMR0..3, TD ATTRIBUTES,
 * XFAM and a non-zero MRSERVICETD, see attestation's dcapMeasurementRegisters and decision 0920;
 * simulated: the SHA-256 of the enclave bundle), so equal code gives an equal digest.
 */
export function measurementDigest(teeType: TeeTypeName, registers: readonly Uint8Array[]): Uint8Array {
  return taggedSha256(TAGS.measurement, utf8(teeType), ...registers);
}

/** Enclave ID = keccak256 over the tagged (teeType, platformId, measurement digest). */
export function computeEnclaveId(
  teeType: TeeTypeName,
  platformId: Uint8Array,
  measurement: Uint8Array,
): Uint8Array {
  assertBytes(measurement, 'measurement', 32);
  if (platformId.length === 0 || platformId.length > 64)
    throw new InvalidInputError('platformId must be 1..64 bytes');
  return taggedKeccak256(TAGS.enclaveId, Uint8Array.of(teeTypeCode(teeType)), platformId, measurement);
}

export interface ReportDataInput {
  /** 20-byte Ethereum address of the enclave signing key. */
  enclaveAddress: Uint8Array;
  /** 32-byte X25519 public key of the enclave's HPKE KEM key. */
  kemPublicKey: Uint8Array;
  /** The verifier's or requester's nonce, 16..64 bytes. */
  nonce: Uint8Array;
  /** 32-byte digest of the GPU evidence list (gpuEvidenceDigest); absent when there is none. */
  gpuEvidenceDigest?: Uint8Array;
  /**
   * 20-byte address of the operator account the enclave serves, fixed when its process started
   * (decision 1830); absent for evidence that speaks for no operator (the key broker's own quote,
   * an enclave's key request to the broker, a serve-only node).
   */
  operator?: Uint8Array;
}

/**
 * The 64 bytes every quote carries: SHA-512 over the tag `firn/report-data/v2` and always five
 * length-prefixed fields (encodeFields): enclave address (20), KEM public key (32), nonce
 * (16..64), GPU evidence digest (32, or empty when there is no GPU evidence) and operator
 * address (20, or empty when there is none). The field count is fixed and each length is one of
 * two values, so an absent GPU list or operator never encodes like a present one, and no field
 * can be shifted into its neighbour. Throws InvalidInputError on any other length or a non-byte
 * field.
 */
export function computeReportData(input: ReportDataInput): Uint8Array {
  assertBytes(input.enclaveAddress, 'enclaveAddress', 20);
  assertBytes(input.kemPublicKey, 'kemPublicKey', 32);
  assertNonce(input.nonce);
  if (input.gpuEvidenceDigest !== undefined) assertBytes(input.gpuEvidenceDigest, 'gpuEvidenceDigest', 32);
  if (input.operator !== undefined) assertBytes(input.operator, 'operator', 20);
  return taggedSha512(
    TAGS.reportData,
    input.enclaveAddress,
    input.kemPublicKey,
    input.nonce,
    input.gpuEvidenceDigest ?? new Uint8Array(0),
    input.operator ?? new Uint8Array(0),
  );
}

export const NONCE_MIN = 16;
export const NONCE_MAX = 64;

export function assertNonce(nonce: unknown): Uint8Array {
  const n = assertBytes(nonce, 'nonce');
  if (n.length < NONCE_MIN || n.length > NONCE_MAX)
    throw new InvalidInputError(`nonce must be ${NONCE_MIN}..${NONCE_MAX} bytes, got ${n.length}`);
  return n;
}

/** The 32-byte nonce a GPU is asked to sign, derived from the CPU nonce (binds GPU to CPU TEE). */
export function deriveGpuNonce(nonce: Uint8Array): Uint8Array {
  return taggedSha256(TAGS.gpuNonce, assertNonce(nonce));
}
