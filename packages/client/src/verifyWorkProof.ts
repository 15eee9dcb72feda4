import {
  type FirnClients,
  firnRegistryAbi,
  getJob,
  isMeasurementAllowed,
  JobStatus,
  NodeStatus,
  toChainError,
} from '@firn/chain';
import { type Hex, hexBytes, parseWorkProofJson, workProofDigest } from '@firn/core';
import { recoverAddress } from '@firn/crypto';

export interface ProofExpectations {
  jobId?: Hex;
  workloadHash?: Hex;
  inputCommitment?: Hex;
  /** The commitment of the output artifacts the requester received. */
  outputCommitment?: Hex;
}

export interface ProofCheck {
  ok: boolean;
  reasons: string[];
  signer?: Hex;
  jobStatus?: string;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Verify a Work Proof off chain: the EIP-712 signature recovers the enclave address registered
 * for its Enclave ID, the node is Active, its measurement is allow-listed and is the one the
 * proof and the job name, the domain is this chain's job market, and the job's on-chain
 * commitments (and the caller's own) equal the proof's. It does not prove the computation itself
 * was correct beyond what the attested enclave code guarantees.
 */
export async function verifyWorkProof(
  clients: FirnClients,
  proofJson: unknown,
  expected: ProofExpectations = {},
): Promise<ProofCheck> {
  const reasons: string[] = [];
  let parsed: ReturnType<typeof parseWorkProofJson>;
  try {
    parsed = parseWorkProofJson(proofJson);
  } catch (e) {
    return { ok: false, reasons: [`proof does not parse: ${(e as Error).message}`] };
  }
  const { proof, signature, domain } = parsed;
  if (domain.chainId !== clients.addresses.chainId)
    reasons.push(`proof is for chain ${domain.chainId}, not ${clients.addresses.chainId}`);
  if (!same(domain.jobMarket, clients.addresses.jobMarket)) reasons.push('proof is for another job market');
  let signer: Hex | undefined;
  try {
    signer = recoverAddress(
      hexBytes(workProofDigest(domain, proof), 'digest', 32),
      hexBytes(signature, 'signature', 65),
    );
  } catch {
    reasons.push('signature does not recover');
  }
  // The registry's stored record: status, enclave address, measurement and TEE type are all the
  // checks below need (getNode would also scan the registry's events since deployment for the
  // node's published KEM key and endpoint, which play no part in a proof).
  const node = await clients.public
    .readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'getNode',
      args: [proof.enclaveId],
    })
    .catch((e: unknown) => {
      throw toChainError(e, 'getNode');
    });
  if (node.status !== NodeStatus.Active)
    reasons.push(`node is ${NodeStatus[node.status as NodeStatus]}, not Active`);
  if (signer !== undefined && !same(signer, node.enclaveAddress))
    reasons.push('signer is not the registered enclave address');
  if (!same(node.measurement, proof.measurement)) reasons.push('measurement differs from the registered one');
  if (!(await isMeasurementAllowed(clients, { teeType: node.teeType, measurement: proof.measurement })))
    reasons.push('measurement is not allow-listed');
  const job = await getJob(clients, proof.jobId);
  if (job.status !== JobStatus.Proved && job.status !== JobStatus.Paid)
    reasons.push(`job is ${JobStatus[job.status]}, not Proved or Paid`);
  if (!same(job.enclaveId, proof.enclaveId)) reasons.push('job was claimed by another enclave');
  if (!same(job.workloadHash, proof.workloadHash)) reasons.push('workloadHash differs from the on-chain job');
  if (!same(job.inputCommitment, proof.inputCommitment))
    reasons.push('inputCommitment differs from the on-chain job');
  if (job.status === JobStatus.Proved || job.status === JobStatus.Paid) {
    if (!same(job.outputCommitment, proof.outputCommitment))
      reasons.push('outputCommitment differs from the on-chain proof');
    if (job.workUnits !== proof.workUnits) reasons.push('workUnits differ from the on-chain proof');
  }
  if (job.allowedMeasurements.length > 0 && !job.allowedMeasurements.some((m) => same(m, proof.measurement)))
    reasons.push('measurement is not in the job list');
  if (proof.startedAt > proof.finishedAt) reasons.push('startedAt is after finishedAt');
  for (const k of ['jobId', 'workloadHash', 'inputCommitment', 'outputCommitment'] as const) {
    const v = expected[k];
    if (v !== undefined && !same(v, proof[k])) reasons.push(`${k} differs from the requester's own`);
  }
  return {
    ok: reasons.length === 0,
    reasons,
    ...(signer ? { signer } : {}),
    jobStatus: JobStatus[job.status],
  };
}
