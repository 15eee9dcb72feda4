import { hashTypedData } from 'viem';
import { type Hex, hexBytes } from './bytes.ts';
import { InvalidInputError, ParseError } from './errors.ts';

/**
 * The Work Proof of ARCHITECTURE §6 as EIP-712 typed data. It lives in core so that the enclave
 * (which signs it) and the requester and verifiers (which check it) share one definition without
 * importing host chain code; the field order must match FirnJobMarket.WORK_PROOF_TYPEHASH.
 */

export interface WorkProofDomain {
  chainId: number;
  /** The job market contract (EIP-712 verifyingContract). */
  jobMarket: Hex;
}

export interface WorkProofFields {
  jobId: Hex;
  enclaveId: Hex;
  measurement: Hex;
  workloadHash: Hex;
  inputCommitment: Hex;
  outputCommitment: Hex;
  /** Unix seconds. */
  startedAt: bigint;
  finishedAt: bigint;
  workUnits: bigint;
}

export const WORK_PROOF_TYPES = {
  WorkProof: [
    { name: 'jobId', type: 'bytes32' },
    { name: 'enclaveId', type: 'bytes32' },
    { name: 'measurement', type: 'bytes32' },
    { name: 'workloadHash', type: 'bytes32' },
    { name: 'inputCommitment', type: 'bytes32' },
    { name: 'outputCommitment', type: 'bytes32' },
    { name: 'startedAt', type: 'uint64' },
    { name: 'finishedAt', type: 'uint64' },
    { name: 'workUnits', type: 'uint64' },
  ],
} as const;

/** The EIP-712 digest of a Work Proof under domain {name "firn", version "1", chainId, jobMarket}. */
export function workProofDigest(domain: WorkProofDomain, proof: WorkProofFields): Hex {
  return hashTypedData({
    domain: { name: 'firn', version: '1', chainId: domain.chainId, verifyingContract: domain.jobMarket },
    types: WORK_PROOF_TYPES,
    primaryType: 'WorkProof',
    message: proof,
  });
}

/** PROOF.json: a signed Work Proof with its domain, as the CLI writes and `firn proof verify` reads. */
export interface WorkProofJson {
  proof: {
    jobId: Hex;
    enclaveId: Hex;
    measurement: Hex;
    workloadHash: Hex;
    inputCommitment: Hex;
    outputCommitment: Hex;
    startedAt: string;
    finishedAt: string;
    workUnits: string;
  };
  /** 65-byte r || s || v by the enclave key over workProofDigest. */
  signature: Hex;
  chainId: number;
  jobMarket: Hex;
  /** The address the enclave claims to sign with (checked against the registry, never trusted). */
  enclaveAddress: Hex;
}

export const MAX_WORK_PROOF_JSON_BYTES = 8192;
const U64_MAX = (1n << 64n) - 1n;

export function workProofToJson(
  proof: WorkProofFields,
  signature: Hex,
  domain: WorkProofDomain,
  enclaveAddress: Hex,
): WorkProofJson {
  return {
    proof: {
      jobId: proof.jobId,
      enclaveId: proof.enclaveId,
      measurement: proof.measurement,
      workloadHash: proof.workloadHash,
      inputCommitment: proof.inputCommitment,
      outputCommitment: proof.outputCommitment,
      startedAt: proof.startedAt.toString(),
      finishedAt: proof.finishedAt.toString(),
      workUnits: proof.workUnits.toString(),
    },
    signature,
    chainId: domain.chainId,
    jobMarket: domain.jobMarket,
    enclaveAddress,
  };
}

const hex32 = (v: unknown, what: string): Hex => {
  hexBytes(v, what, 32);
  return (v as string).toLowerCase() as Hex;
};

function u64(v: unknown, what: string): bigint {
  if (typeof v !== 'string' || !/^\d{1,20}$/.test(v))
    throw new ParseError(`${what} must be a decimal string`);
  const b = BigInt(v);
  if (b > U64_MAX) throw new ParseError(`${what} is over uint64`);
  return b;
}

/** Parse PROOF.json (text or object): size-capped, every field checked; no signature check. */
export function parseWorkProofJson(input: unknown): {
  proof: WorkProofFields;
  signature: Hex;
  domain: WorkProofDomain;
  enclaveAddress: Hex;
} {
  let o: unknown = input;
  if (typeof input === 'string') {
    if (input.length > MAX_WORK_PROOF_JSON_BYTES) throw new ParseError('proof JSON too large');
    try {
      o = JSON.parse(input);
    } catch {
      throw new ParseError('proof is not JSON');
    }
  }
  if (typeof o !== 'object' || o === null) throw new ParseError('proof must be an object');
  const r = o as Record<string, unknown>;
  const p = r.proof as Record<string, unknown> | undefined;
  if (typeof p !== 'object' || p === null) throw new ParseError('proof.proof must be an object');
  if (typeof r.chainId !== 'number' || !Number.isSafeInteger(r.chainId) || r.chainId <= 0)
    throw new InvalidInputError('chainId must be a positive integer');
  hexBytes(r.jobMarket, 'jobMarket', 20);
  hexBytes(r.enclaveAddress, 'enclaveAddress', 20);
  hexBytes(r.signature, 'signature', 65);
  return {
    proof: {
      jobId: hex32(p.jobId, 'jobId'),
      enclaveId: hex32(p.enclaveId, 'enclaveId'),
      measurement: hex32(p.measurement, 'measurement'),
      workloadHash: hex32(p.workloadHash, 'workloadHash'),
      inputCommitment: hex32(p.inputCommitment, 'inputCommitment'),
      outputCommitment: hex32(p.outputCommitment, 'outputCommitment'),
      startedAt: u64(p.startedAt, 'startedAt'),
      finishedAt: u64(p.finishedAt, 'finishedAt'),
      workUnits: u64(p.workUnits, 'workUnits'),
    },
    signature: (r.signature as string).toLowerCase() as Hex,
    domain: { chainId: r.chainId, jobMarket: (r.jobMarket as string).toLowerCase() as Hex },
    enclaveAddress: (r.enclaveAddress as string).toLowerCase() as Hex,
  };
}
