import type { Hex } from 'viem';
import { firnJobMarketAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { getProofFacts } from './jobRecord.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/**
 * Anyone: after the challenge window without a slashing quorum, credit escrow minus the protocol
 * fee, and the claim bond, to the claimant (pull with withdrawCredits); the fee goes to the reward
 * pool. Works while paused. The fee is the one in force at the job's claim (decision 1700); a pool that cannot take it never blocks this: the market holds the fee for its
 * `sweepFees` (ProtocolFeeHeld, decision 1701).
 */
export async function finalizeJob(clients: FirnClients, jobId: Hex): Promise<WriteResult> {
  // The market keeps the proof facts as a hash; finalize passes them back (decision 1142).
  const facts = await getProofFacts(clients, assertBytes32(jobId, 'jobId'));
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'finalize',
    args: [jobId, facts],
  });
}
