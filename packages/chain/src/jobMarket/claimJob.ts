import type { Hex } from 'viem';
import { firnJobMarketAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { getJobTerms, type JobTerms } from './jobRecord.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/**
 * Operator: claim a job for one of its eligible nodes, posting the claim bond (default: read from
 * the market). The bond comes back on finalize or failJob (by the claim time left) and goes to the
 * governance treasury (the market's owner) when the claim lapses or is released (decision 1625). Reverts EnforcedPause, WrongClaimBond, NodeNotEligible(jobId, id, reason),
 * AlreadyClaimed, DeadlinePassed, NotNodeOperator, TermsMismatch. A node (or operator) whose claim
 * on the job lapsed or was released never claims it again: NodeNotEligible reason 7 (decision 1768). `terms` default: read from the
 * job's JobPosted event and checked against its stored hash.
 */
export async function claimJob(
  clients: FirnClients,
  p: { jobId: Hex; enclaveId: Hex; bond?: bigint; terms?: JobTerms },
): Promise<WriteResult> {
  const bond = p.bond ?? (await getClaimBond(clients));
  // The market keeps only the hash of the job's terms; the claim passes them back (decision 1142).
  const terms = p.terms ?? (await getJobTerms(clients, assertBytes32(p.jobId, 'jobId')));
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'claimJob',
    args: [
      assertBytes32(p.jobId, 'jobId'),
      assertBytes32(p.enclaveId, 'enclaveId'),
      {
        workloadHash: terms.workloadHash,
        inputCommitment: terms.inputCommitment,
        allowedMeasurements: [...terms.allowedMeasurements],
        enclaveIds: [...terms.enclaveIds],
      },
    ],
    value: bond,
  });
}

/** The market's claim bond, wei. */
export async function getClaimBond(clients: FirnClients): Promise<bigint> {
  try {
    return await clients.public.readContract({
      address: clients.addresses.jobMarket,
      abi: firnJobMarketAbi,
      functionName: 'claimBond',
    });
  } catch (e) {
    throw toChainError(e, 'claimBond');
  }
}

/**
 * Claimant: give a claimed job back so another node can take it; the bond goes to the governance
 * treasury. Neither this node nor its operator can claim the job again (decision 1768).
 */
export async function releaseJob(clients: FirnClients, jobId: Hex): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'releaseJob',
    args: [assertBytes32(jobId, 'jobId')],
  });
}
