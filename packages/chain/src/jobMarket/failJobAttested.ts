import { type Hex, parseSignature, signatureToCompactSignature } from 'viem';
import { firnJobMarketAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/**
 * A JobFailure as the enclave signs it (FirnJobMarket.JOB_FAILURE_TYPEHASH): the claim's facts,
 * the enclave's reason code (uint16 > 0) and its clock when the workload failed (unix seconds).
 */
export interface JobFailure {
  jobId: Hex;
  enclaveId: Hex;
  measurement: Hex;
  workloadHash: Hex;
  inputCommitment: Hex;
  reasonCode: number;
  failedAt: bigint;
}

export interface FailJobAttestedParams {
  failure: JobFailure;
  /** 65-byte EIP-712 signature (r || s || v) by the node's enclave key over the JobFailure. */
  signature: Hex;
}

/**
 * Claimant operator: fail a claimed job with the enclave's signed JobFailure, a failure that is
 * a deterministic function of the committed workload and inputs (docs/decisions/1595). The
 * contract checks it as it checks a Work Proof (claim facts, registry signer, low s, claim not
 * lapsed) and credits the whole claim bond back; the requester may reclaim its escrow at once.
 * Reverts (ChainRevertedError) with WrongSigner, InvalidSignature, ProofMismatch, NotClaimant,
 * ClaimExpired, DeadlinePassed, InvalidFailureReason or InvalidFailureTime; the caller then falls
 * back to `failJob`. Raises E_INVALID_INPUT for a malformed field or signature.
 */
export async function failJobAttested(clients: FirnClients, p: FailJobAttestedParams): Promise<WriteResult> {
  const f = p.failure;
  const compact = signatureToCompactSignature(parseSignature(p.signature));
  const failure = {
    jobId: assertBytes32(f.jobId, 'failure.jobId'),
    enclaveId: assertBytes32(f.enclaveId, 'failure.enclaveId'),
    measurement: assertBytes32(f.measurement, 'failure.measurement'),
    workloadHash: assertBytes32(f.workloadHash, 'failure.workloadHash'),
    inputCommitment: assertBytes32(f.inputCommitment, 'failure.inputCommitment'),
    reasonCode: Number(assertUint(f.reasonCode, 16, 'failure.reasonCode')),
    failedAt: assertUint(f.failedAt, 64, 'failure.failedAt'),
  };
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'failJobAttested',
    // EIP-2098's 64-byte form, as submitProof (decision 1141).
    args: [failure, compact.r, compact.yParityAndS],
  });
}
