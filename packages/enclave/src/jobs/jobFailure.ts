import {
  bytesToHex,
  type ErrorCode,
  type Hex,
  hexBytes,
  InvalidInputError,
  isFirnError,
  keccak256,
  utf8,
  type WorkProofDomain,
} from '@firn/core';
import { domainSeparator } from './workProofDigest.ts';

/**
 * Attested job failures (docs/decisions/1595-attested-job-failure.md). When a job fails for a
 * reason that is a deterministic function of what the requester committed on chain (the workload
 * hash and the input commitment), the enclave signs a `JobFailure` (EIP-712, the Work Proof's
 * domain and key) and the node presents it with `FirnJobMarket.failJobAttested`, which refunds the
 * whole claim bond: a requester can no longer collect 1571's time-held share with a workload built
 * to fail late. Never signed for anything the host can cause: a timeout (the host sets the
 * enclave's clock), a memory or disk limit, a killed or crashed runtime, a missing or tampered
 * input, a refused grant, a refused `signData`.
 */

/**
 * The error codes whose failure of a workload the enclave signs, with their on-chain reason codes
 * (uint16, stable: never renumbered). They are the codes a workload (the first-party ML engines or
 * an app through the app SDK's typed errors) raises for a model, an input or params it rejects.
 * The ML engines type only failures whose cause is the committed work (decision 1597):
 * onnxruntime's graph, input and kernel checks (E_MODEL_INVALID, E_INPUT_INVALID; its allocation
 * failures stay E_JOB_FAILED) and training divergence under the job's pinned TF.js backend
 * (E_DATA_INVALID, reason 3).
 * Absent on purpose: E_TIMEOUT (host clock), E_TOO_LARGE (limits), E_NOT_FOUND (host storage),
 * E_UNSUPPORTED (also what a refused signData raises), E_JOB_FAILED (every untyped throw, a
 * RangeError of a failed allocation included), E_RUNTIME_CRASHED (a killed child), E_INTERNAL,
 * E_UNAVAILABLE (a training backend that cannot start on this node, 1597).
 */
export const JOB_FAILURE_REASONS: Readonly<Partial<Record<ErrorCode, number>>> = Object.freeze({
  E_MODEL_INVALID: 1,
  E_INPUT_INVALID: 2,
  E_DATA_INVALID: 3,
  E_INVALID_INPUT: 4,
  E_PARSE: 5,
  E_JOB_INVALID: 6,
});

/** The error code of an on-chain reason code (`JOB_FAILURE_REASONS` inverted), or undefined. */
export function jobFailureCodeOf(reasonCode: number): ErrorCode | undefined {
  for (const [code, n] of Object.entries(JOB_FAILURE_REASONS)) if (n === reasonCode) return code as ErrorCode;
  return undefined;
}

/** The typed data of FirnJobMarket.JOB_FAILURE_TYPEHASH (field order matters). */
export interface JobFailureFields {
  jobId: Hex;
  enclaveId: Hex;
  measurement: Hex;
  workloadHash: Hex;
  inputCommitment: Hex;
  /** uint16 > 0, from JOB_FAILURE_REASONS. */
  reasonCode: number;
  /** The enclave's clock when the workload failed, unix seconds (uint64). */
  failedAt: bigint;
}

/** What the enclave hands the host for `failJobAttested`: the fields and the 65-byte r || s || v signature. */
export interface SignedJobFailure {
  failure: JobFailureFields;
  signature: Hex;
}

/** EIP-712 type string of JobFailure, as FirnJobMarket.JOB_FAILURE_TYPEHASH hashes it. */
export const JOB_FAILURE_TYPE =
  'JobFailure(bytes32 jobId,bytes32 enclaveId,bytes32 measurement,bytes32 workloadHash,bytes32 inputCommitment,uint16 reasonCode,uint64 failedAt)';
const JOB_FAILURE_TYPEHASH = keccak256(utf8(JOB_FAILURE_TYPE));
const U64_MAX = (1n << 64n) - 1n;

/**
 * The EIP-712 digest of a JobFailure: keccak256(0x19 0x01 || domainSeparator || hashStruct), with
 * the Work Proof's domain {name "firn", version "1", chainId, verifyingContract: jobMarket}
 * (EIP-712 §"Specification"). Equals viem's hashTypedData and FirnJobMarket.hashFailure.
 * Shapes: bytes32 fields as 0x-hex of 32 bytes, `reasonCode` an integer in 1..65535, `failedAt` a
 * bigint in [0, 2^64). Raises InvalidInputError otherwise.
 */
export function jobFailureDigestBytes(domain: WorkProofDomain, f: JobFailureFields): Uint8Array {
  const msg = new Uint8Array(32 * 8);
  msg.set(JOB_FAILURE_TYPEHASH, 0);
  const words: [keyof JobFailureFields, number][] = [
    ['jobId', 1],
    ['enclaveId', 2],
    ['measurement', 3],
    ['workloadHash', 4],
    ['inputCommitment', 5],
  ];
  for (const [name, i] of words) msg.set(hexBytes(f[name] as Hex, name, 32), 32 * i);
  if (!Number.isInteger(f.reasonCode) || f.reasonCode < 1 || f.reasonCode > 0xffff)
    throw new InvalidInputError('job failure reasonCode must be a uint16 above 0');
  new DataView(msg.buffer).setUint16(32 * 6 + 30, f.reasonCode);
  if (typeof f.failedAt !== 'bigint' || f.failedAt < 0n || f.failedAt > U64_MAX)
    throw new InvalidInputError('job failure failedAt must be a uint64');
  new DataView(msg.buffer).setBigUint64(32 * 7 + 24, f.failedAt);
  const out = new Uint8Array(66);
  out[0] = 0x19;
  out[1] = 0x01;
  out.set(domainSeparator(domain), 2);
  out.set(keccak256(msg), 34);
  return keccak256(out);
}

/**
 * The reason code to sign for a workload's failure `e`, or undefined when it must not be signed.
 * `run` says what the enclave saw of the run: `fromWorkload` only for the rejection of the
 * runtime's `runWorkload` itself (not the input opening, grants or sealing around it);
 * `timedOut` when the enclave's deadline fired; `crashed` when the runtime child died (killed,
 * out of memory); `hostRefused` when the enclave refused the workload something the host
 * controls (a `signData` without a ledger), which the app may have turned into a typed error.
 * Any of those, an untyped error or a code outside JOB_FAILURE_REASONS gives undefined.
 */
export function attestableFailureReason(
  e: unknown,
  run: { fromWorkload: boolean; timedOut: boolean; crashed: boolean; hostRefused: boolean },
): number | undefined {
  if (!run.fromWorkload || run.timedOut || run.crashed || run.hostRefused) return undefined;
  if (!isFirnError(e)) return undefined;
  return Object.hasOwn(JOB_FAILURE_REASONS, e.code) ? JOB_FAILURE_REASONS[e.code] : undefined;
}

/** JSON shape of a SignedJobFailure on the host-enclave pipe (bigint as a decimal string). */
export interface SignedJobFailureJson {
  jobId: Hex;
  enclaveId: Hex;
  measurement: Hex;
  workloadHash: Hex;
  inputCommitment: Hex;
  reasonCode: number;
  failedAt: string;
  signature: Hex;
}

export function signedJobFailureToJson(s: SignedJobFailure): SignedJobFailureJson {
  return { ...s.failure, failedAt: s.failure.failedAt.toString(), signature: s.signature };
}

/** Largest JSON text of a signed job failure the host accepts from the enclave pipe. */
export const MAX_SIGNED_JOB_FAILURE_JSON_BYTES = 1024;

/**
 * Parse a signed job failure as the enclave emits it (`jobFailure` event data). Untrusted in the
 * host's eyes only as to shape (the contract checks the signature); size-capped. Raises
 * InvalidInputError naming the bad field.
 */
export function parseSignedJobFailure(o: unknown): SignedJobFailure {
  if (typeof o !== 'object' || o === null) throw new InvalidInputError('job failure must be an object');
  if (JSON.stringify(o).length > MAX_SIGNED_JOB_FAILURE_JSON_BYTES)
    throw new InvalidInputError(`job failure is over ${MAX_SIGNED_JOB_FAILURE_JSON_BYTES} bytes`);
  const j = o as Record<string, unknown>;
  const b32 = (k: string) => bytesToHex(hexBytes(j[k], k, 32));
  if (
    typeof j.reasonCode !== 'number' ||
    !Number.isInteger(j.reasonCode) ||
    j.reasonCode < 1 ||
    j.reasonCode > 0xffff
  )
    throw new InvalidInputError('job failure reasonCode must be a uint16 above 0');
  if (typeof j.failedAt !== 'string' || !/^[0-9]{1,20}$/.test(j.failedAt) || BigInt(j.failedAt) > U64_MAX)
    throw new InvalidInputError('job failure failedAt must be a uint64 in decimal');
  return {
    failure: {
      jobId: b32('jobId'),
      enclaveId: b32('enclaveId'),
      measurement: b32('measurement'),
      workloadHash: b32('workloadHash'),
      inputCommitment: b32('inputCommitment'),
      reasonCode: j.reasonCode,
      failedAt: BigInt(j.failedAt),
    },
    signature: bytesToHex(hexBytes(j.signature, 'signature', 65)),
  };
}
