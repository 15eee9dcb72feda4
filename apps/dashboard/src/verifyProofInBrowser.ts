import {
  type Address,
  compactSignatureToSignature,
  decodeFunctionData,
  type Hex,
  hexToBigInt,
  type PublicClient,
  recoverTypedDataAddress,
} from 'viem';
import { computeProofFactsHash } from '@firn/chain/jobHashes';
import { firnJobMarketAbi, firnRegistryAbi } from '../../../packages/chain/src/abi/generated.ts';
import { WORK_PROOF_TYPES } from '../../../packages/core/src/workProof.ts';
import type { JobView, PageConfig } from './network.ts';

/** The page's own check of a job's Work Proof, from the chain alone. */
export interface BrowserProofCheck {
  ok: boolean;
  /** The address recovered from the EIP-712 signature. */
  signer?: Address;
  reasons: string[];
}

/**
 * Verify a proved job's Work Proof in the browser against the chain: take the proof and its EIP-2098
 * compact signature (r, vs) from the calldata of the transaction that emitted ProofSubmitted
 * (`submitProof(WorkProof proof, bytes32 r, bytes32 vs)`, decision 1141), recover the EIP-712 signer
 * with viem (domain name "firn", version "1", the chain id, the job market; types WORK_PROOF_TYPES of
 * packages/core/src/workProof.ts), and require that:
 * - it is the enclave address the registry held for the proof's Enclave ID at that block
 *   (wasEnclaveAddress, so a later key rotation does not void it);
 * - the ProofFacts built from the signed proof (recovered signer, signed times and work units, the
 *   proof's block, that block's time plus the job's challenge window, the claim's snapshot) hash to
 *   the factsHash the market stored for the job (decision 1142), and the signer is the one the
 *   ProofSubmitted event carries;
 * - the signed fields are the job's: job id, the claimed Enclave ID and measurement, and the workload
 *   and input commitments of the terms (checked against the stored termsHash when the job was read),
 *   and the output commitment of ProofSubmitted.
 *
 * Proves the enclave registered under that Enclave ID signed these facts about this job. Does not
 * re-verify the attestation evidence behind the registration (the verifiers' quorum did) and cannot
 * read a proof submitted through another contract's call (reported as a reason, never as ok). A job
 * whose events did not match the stored hashes (`JobView.mismatch`) is never ok.
 */
export async function verifyProofInBrowser(
  client: PublicClient,
  config: PageConfig,
  job: JobView,
): Promise<BrowserProofCheck> {
  if (!job.proofTx) return { ok: false, reasons: ['no proof submitted yet'] };
  const tx = await client.getTransaction({ hash: job.proofTx.hash });
  if (tx.to?.toLowerCase() !== config.jobMarket.toLowerCase())
    return {
      ok: false,
      reasons: ['the proof was submitted through another contract; its calldata is not readable here'],
    };
  let args: readonly unknown[];
  try {
    const d = decodeFunctionData({ abi: firnJobMarketAbi, data: tx.input });
    if (d.functionName !== 'submitProof')
      return { ok: false, reasons: [`transaction calls ${d.functionName}, not submitProof`] };
    args = d.args ?? [];
  } catch {
    return { ok: false, reasons: ['the proof transaction’s calldata does not decode as submitProof'] };
  }
  const [proof, r, vs] = args as [
    {
      jobId: Hex;
      enclaveId: Hex;
      measurement: Hex;
      workloadHash: Hex;
      inputCommitment: Hex;
      outputCommitment: Hex;
      startedAt: bigint;
      finishedAt: bigint;
      workUnits: bigint;
    },
    Hex,
    Hex,
  ];
  const reasons: string[] = [];
  if (job.mismatch) reasons.push(`the chain's events for this job are inconsistent: ${job.mismatch}`);
  const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  if (!eq(proof.jobId, job.jobId)) reasons.push('the proof is for another job');
  let signer: Address;
  try {
    const signature = compactSignatureToSignature({ r, yParityAndS: vs });
    // The market refuses high-s signatures (OpenZeppelin tryRecover); so does the page.
    if (hexToBigInt(signature.s) > SECP256K1_HALF_N) throw new Error('high s');
    signer = await recoverTypedDataAddress({
      domain: { name: 'firn', version: '1', chainId: config.chainId, verifyingContract: config.jobMarket },
      types: WORK_PROOF_TYPES,
      primaryType: 'WorkProof',
      message: proof,
      signature,
    });
  } catch {
    return { ok: false, reasons: [...reasons, 'the signature does not recover'] };
  }
  const [wasEnclave, provedBlock] = await Promise.all([
    client.readContract({
      address: config.registry,
      abi: firnRegistryAbi,
      functionName: 'wasEnclaveAddress',
      args: [proof.enclaveId, signer, job.proofTx.blockNumber],
    }),
    client.getBlock({ blockNumber: job.proofTx.blockNumber }),
  ]);
  if (!wasEnclave)
    reasons.push('the signer was not the registered enclave key of that Enclave ID at the proof’s block');
  const factsHash = computeProofFactsHash({
    signer,
    startedAt: proof.startedAt,
    finishedAt: proof.finishedAt,
    provedBlock: job.proofTx.blockNumber,
    challengeEndsAt: provedBlock.timestamp + job.challengeWindow,
    workUnits: proof.workUnits,
    snapshotId: job.snapshotId,
  });
  if (!eq(factsHash, job.factsHash))
    reasons.push('the signed proof does not hash to the facts the market recorded for this job');
  if (!eq(signer, job.signer)) reasons.push('the signer differs from the one the market recorded');
  if (!eq(proof.enclaveId, job.enclaveId)) reasons.push('signed Enclave ID differs from the job’s node');
  if (!eq(proof.measurement, job.measurement)) reasons.push('signed measurement differs from the job’s');
  if (!eq(proof.workloadHash, job.workloadHash)) reasons.push('signed workload differs from the job’s');
  if (!eq(proof.inputCommitment, job.inputCommitment))
    reasons.push('signed input commitment differs from the job’s');
  if (!eq(proof.outputCommitment, job.outputCommitment))
    reasons.push('signed output commitment differs from the job’s');
  return { ok: reasons.length === 0, signer, reasons };
}

/** secp256k1 n / 2: the largest s the market (OpenZeppelin ECDSA) accepts. */
const SECP256K1_HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
