import type { Hex } from 'viem';
import { FirnError } from '@firn/core';
import { firnJobMarketAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { type FirnJob, JobStatus } from '../types.ts';
import { assertBytes32 } from '../validate.ts';
import type { WorkProof } from '../workProof.ts';
import {
  computeProofFactsHash,
  computeTermsHash,
  getBlockTime,
  getJobEvents,
  proofFactsOf,
} from './jobRecord.ts';

/**
 * Read one job; an unknown jobId comes back with status None. The market stores a packed record
 * with hashes in place of the terms and the proof facts: this reads the record and the job's events
 * in one log query, checks the events against the stored hashes (FirnError E_CHAIN when an endpoint
 * serves events that do not match) and returns every field (docs/decisions/1142-facts-as-calldata.md).
 */
export async function getJob(clients: FirnClients, jobId: Hex): Promise<FirnJob> {
  assertBytes32(jobId, 'jobId');
  let j: Awaited<ReturnType<typeof readRecord>>;
  try {
    j = await readRecord(clients, jobId);
  } catch (e) {
    throw toChainError(e, 'getJob');
  }
  const status = j.status as JobStatus;
  const zero32 = `0x${'0'.repeat(64)}` as Hex;
  const job: FirnJob = {
    jobId,
    requester: j.requester,
    teeTypeMask: j.teeTypeMask,
    status,
    postedAt: 0n,
    deadline: BigInt(j.deadline),
    claimTimeout: BigInt(j.claimTimeout),
    claimExpiresAt: BigInt(j.claimExpiresAt),
    claimedAt: j.claimExpiresAt === 0 ? 0n : BigInt(j.claimExpiresAt) - BigInt(j.claimTimeout),
    provedAt: 0n,
    workloadHash: zero32,
    inputCommitment: zero32,
    allowedMeasurements: [],
    enclaveIds: [],
    escrow: j.escrow,
    bond: j.bond,
    enclaveId: j.enclaveId,
    claimant: j.claimant,
    challengeWindow: BigInt(j.challengeWindow),
    challengeEndsAt: 0n,
    measurement: zero32,
    outputCommitment: zero32,
    signer: `0x${'0'.repeat(40)}`,
    workUnits: 0n,
    startedAt: 0n,
    finishedAt: 0n,
    provedBlock: 0n,
    snapshotId: BigInt(j.snapshotId),
    disputeStake: j.disputeStake,
    maxWorkUnits: j.maxWorkUnits,
    termsHash: j.termsHash,
    factsHash: j.factsHash,
  };
  if (status === JobStatus.None) return job;
  const ev = await getJobEvents(clients, jobId);
  if (ev.posted) {
    if (computeTermsHash(ev.posted.terms) !== j.termsHash) {
      throw new FirnError(
        'E_CHAIN',
        `the JobPosted event of job ${jobId} does not match its stored terms hash`,
      );
    }
    Object.assign(job, ev.posted.terms);
    job.postedAt = await getBlockTime(clients, ev.posted.blockNumber);
  }
  if (ev.claimed && j.claimExpiresAt !== 0) job.measurement = ev.claimed.measurement;
  // A proof ends the claims of a job: once ProofSubmitted exists, `factsHash` stays its hash whether
  // the job is then Proved, Paid, Slashed or Reclaimed after a slash.
  if (ev.proved && status !== JobStatus.Open && status !== JobStatus.Claimed) {
    const facts = await proofFactsOf(clients, ev.proved, job.challengeWindow, job.snapshotId);
    if (computeProofFactsHash(facts) !== j.factsHash) {
      throw new FirnError(
        'E_CHAIN',
        `the ProofSubmitted event of job ${jobId} does not match its stored facts hash`,
      );
    }
    if (ev.claimed) job.measurement = ev.claimed.measurement;
    job.outputCommitment = ev.proved.outputCommitment;
    job.signer = facts.signer;
    job.workUnits = facts.workUnits;
    job.startedAt = facts.startedAt;
    job.finishedAt = facts.finishedAt;
    job.provedBlock = facts.provedBlock;
    job.challengeEndsAt = facts.challengeEndsAt;
    job.provedAt = facts.challengeEndsAt - job.challengeWindow;
  }
  return job;
}

/**
 * A job's status alone (None for an unknown jobId): one `eth_call` of the market's stored record,
 * no event read, for a caller that polls only the status. Throws as getJob does (E_CHAIN mapped).
 */
export async function getJobStatus(clients: FirnClients, jobId: Hex): Promise<JobStatus> {
  assertBytes32(jobId, 'jobId');
  try {
    return (await readRecord(clients, jobId)).status as JobStatus;
  } catch (e) {
    throw toChainError(e, 'getJob');
  }
}

async function readRecord(clients: FirnClients, jobId: Hex) {
  return clients.public.readContract({
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'getJob',
    args: [jobId],
  });
}

/** The contract's own EIP-712 digest of a Work Proof (for cross-checks against hashWorkProof). */
export async function getWorkProofDigest(clients: FirnClients, proof: WorkProof): Promise<Hex> {
  try {
    return await clients.public.readContract({
      address: clients.addresses.jobMarket,
      abi: firnJobMarketAbi,
      functionName: 'hashWorkProof',
      args: [proof],
    });
  } catch (e) {
    throw toChainError(e, 'hashWorkProof');
  }
}
