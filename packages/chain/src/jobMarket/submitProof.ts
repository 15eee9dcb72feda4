import { type Hex, parseSignature, signatureToCompactSignature } from 'viem';
import { FirnError } from '@firn/core';
import { firnJobMarketAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import type { WorkProof } from '../workProof.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface SubmitProofParams {
  jobId: Hex;
  proof: WorkProof;
  /** 65-byte EIP-712 signature by the node's enclave key over the WorkProof. */
  signature: Hex;
}

/** Claimant operator: submit the enclave-signed Work Proof; starts the challenge window. */
export async function submitProof(clients: FirnClients, p: SubmitProofParams): Promise<WriteResult> {
  const q = p.proof;
  if (q.jobId.toLowerCase() !== p.jobId.toLowerCase()) {
    throw new FirnError('E_INVALID_INPUT', `submitProof: proof.jobId ${q.jobId} is not job ${p.jobId}`);
  }
  const compact = signatureToCompactSignature(parseSignature(p.signature));
  const proof = {
    jobId: assertBytes32(q.jobId, 'proof.jobId'),
    enclaveId: assertBytes32(q.enclaveId, 'proof.enclaveId'),
    measurement: assertBytes32(q.measurement, 'proof.measurement'),
    workloadHash: assertBytes32(q.workloadHash, 'proof.workloadHash'),
    inputCommitment: assertBytes32(q.inputCommitment, 'proof.inputCommitment'),
    outputCommitment: assertBytes32(q.outputCommitment, 'proof.outputCommitment'),
    startedAt: assertUint(q.startedAt, 64, 'proof.startedAt'),
    finishedAt: assertUint(q.finishedAt, 64, 'proof.finishedAt'),
    workUnits: assertUint(q.workUnits, 64, 'proof.workUnits'),
  };
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'submitProof',
    // The job is the proof's signed jobId; the signature goes in EIP-2098's 64-byte form (decision 1141).
    args: [proof, compact.r, compact.yParityAndS],
  });
}
