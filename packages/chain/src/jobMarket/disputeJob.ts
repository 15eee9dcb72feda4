import type { Hex } from 'viem';
import { firnJobMarketAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { getProofFacts, type ProofFacts } from './jobRecord.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/**
 * Dispute reasons of FirnJobMarket.dispute. 1 (DISPUTE_SIGNER_NOT_ENCLAVE_KEY) and 2
 * (DISPUTE_TIMES_INVALID) are facts the contract judges at once against what it recorded at
 * submitProof; a wrong one costs the disputing verifier `falseDisputeSlash`. 3..15 revert
 * InvalidDisputeReason. 16 and above are findings only verifiers can check; they slash the node at
 * > 2/3 of the snapshot stake.
 */
export const DISPUTE_REASONS = {
  1: 'signer was not the enclave key of the Enclave ID at the proof block',
  2: 'proof times invalid (started after finished, or finished past deadline + MAX_CLOCK_SKEW)',
  16: 'evidence invalid',
  17: 'output wrong',
  18: 'other finding',
} as const;
export type DisputeReason = keyof typeof DISPUTE_REASONS;

/**
 * Verifier: dispute a proved job within its challenge window (see DISPUTE_REASONS), passing the
 * proof facts the market recorded as a hash (default: read from ProofSubmitted and checked).
 */
export async function disputeJob(
  clients: FirnClients,
  p: { jobId: Hex; reasonCode: number; facts?: ProofFacts },
): Promise<WriteResult> {
  const jobId = assertBytes32(p.jobId, 'jobId');
  const facts = p.facts ?? (await getProofFacts(clients, jobId));
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'dispute',
    args: [jobId, Number(assertUint(p.reasonCode, 16, 'reasonCode')), facts],
  });
}
