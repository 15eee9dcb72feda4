import { decodeEventLog, type Hex, toEventSelector } from 'viem';
import { FirnError } from '@firn/core';
import { firnJobMarketAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { getLogsBackTo } from '../getLogsPaged.ts';
import { assertBytes32 } from '../validate.ts';
import { computeProofFactsHash, computeTermsHash, type JobTerms, type ProofFacts } from './jobHashes.ts';

export { computeProofFactsHash, computeTermsHash, type JobTerms, type ProofFacts };

/** The job's events as read from the chain (the latest claim only). */
export interface JobEvents {
  posted?: { blockNumber: bigint; terms: JobTerms; claimTimeout: bigint };
  claimed?: { blockNumber: bigint; measurement: Hex; snapshotId: bigint };
  proved?: {
    blockNumber: bigint;
    outputCommitment: Hex;
    workUnits: bigint;
    signer: Hex;
    startedAt: bigint;
    finishedAt: bigint;
  };
}

const TOPICS = ['JobPosted', 'JobClaimed', 'ProofSubmitted'].map((name) => {
  const item = firnJobMarketAbi.find((x) => x.type === 'event' && x.name === name);
  if (!item) throw new Error(`ABI has no ${name} event`);
  return toEventSelector(item as Parameters<typeof toEventSelector>[0]);
});

/**
 * Read a job's JobPosted, latest JobClaimed and ProofSubmitted events (one log filter: topic0 in
 * the three, topic1 = jobId) up to `blockNumber` (default latest). JobPosted is a job's first
 * event, so the read walks back from the head (getLogsBackTo) and stops at the window holding
 * JobPosted, or at the deployment block: a recent job costs one or two `eth_getLogs` calls however
 * long the chain is, where a read from the deployment block grew with the chain (decision 1350).
 * Throws ChainRevertedError-mapped errors on RPC failure.
 */
export async function getJobEvents(
  clients: FirnClients,
  jobId: Hex,
  opts: { blockNumber?: bigint } = {},
): Promise<JobEvents> {
  assertBytes32(jobId, 'jobId');
  const logs = await getLogsBackTo(
    clients,
    {
      address: clients.addresses.jobMarket,
      topics: [TOPICS as Hex[], jobId],
      ...(opts.blockNumber === undefined ? {} : { toBlock: opts.blockNumber }),
    },
    (l) => l.topics[0] === TOPICS[0],
  );
  const out: JobEvents = {};
  for (const log of logs) {
    const ev = decodeEventLog({
      abi: firnJobMarketAbi,
      topics: log.topics as [Hex, ...Hex[]],
      data: log.data,
    });
    const blockNumber = BigInt(log.blockNumber);
    if (ev.eventName === 'JobPosted') {
      const a = ev.args;
      out.posted = {
        blockNumber,
        claimTimeout: a.claimTimeout,
        terms: {
          workloadHash: a.workloadHash,
          inputCommitment: a.inputCommitment,
          allowedMeasurements: a.allowedMeasurements,
          enclaveIds: a.enclaveIds,
        },
      };
    } else if (ev.eventName === 'JobClaimed') {
      out.claimed = { blockNumber, measurement: ev.args.measurement, snapshotId: ev.args.snapshotId };
    } else if (ev.eventName === 'ProofSubmitted') {
      const a = ev.args;
      out.proved = {
        blockNumber,
        outputCommitment: a.outputCommitment,
        workUnits: a.workUnits,
        signer: a.signer,
        startedAt: a.startedAt,
        finishedAt: a.finishedAt,
      };
    }
  }
  return out;
}

/** The timestamp of a block (cached per client: blocks do not change once mined). */
const blockTimes = new WeakMap<object, Map<bigint, bigint>>();
export async function getBlockTime(clients: FirnClients, blockNumber: bigint): Promise<bigint> {
  let cache = blockTimes.get(clients.public);
  if (!cache) {
    cache = new Map();
    blockTimes.set(clients.public, cache);
  }
  const hit = cache.get(blockNumber);
  if (hit !== undefined) return hit;
  try {
    const b = await clients.public.getBlock({ blockNumber });
    cache.set(blockNumber, b.timestamp);
    return b.timestamp;
  } catch (e) {
    throw toChainError(e, 'getBlock');
  }
}

/**
 * The job's terms from its JobPosted event, checked against the stored `termsHash` (an RPC that
 * serves other terms is caught here, before a claim spends gas). Throws FirnError E_CHAIN when the
 * event is missing or does not match.
 */
export async function getJobTerms(clients: FirnClients, jobId: Hex, termsHash?: Hex): Promise<JobTerms> {
  const ev = await getJobEvents(clients, jobId);
  if (!ev.posted) throw new FirnError('E_CHAIN', `no JobPosted event for job ${jobId}`);
  const expected = termsHash ?? (await readStoredHashes(clients, jobId)).termsHash;
  if (computeTermsHash(ev.posted.terms) !== expected) {
    throw new FirnError(
      'E_CHAIN',
      `the JobPosted event of job ${jobId} does not match its stored terms hash`,
    );
  }
  return ev.posted.terms;
}

/**
 * The ProofFacts of a Proved job: its ProofSubmitted event, that block's time plus the job's
 * challenge window, and the job's snapshot, checked against the stored `factsHash`. Throws
 * FirnError E_CHAIN when the job has no proof or the facts do not match.
 */
export async function getProofFacts(clients: FirnClients, jobId: Hex): Promise<ProofFacts> {
  const [ev, stored] = await Promise.all([getJobEvents(clients, jobId), readStoredHashes(clients, jobId)]);
  if (!ev.proved) throw new FirnError('E_CHAIN', `no ProofSubmitted event for job ${jobId}`);
  const facts = await proofFactsOf(clients, ev.proved, stored.challengeWindow, stored.snapshotId);
  if (computeProofFactsHash(facts) !== stored.factsHash) {
    throw new FirnError(
      'E_CHAIN',
      `the ProofSubmitted event of job ${jobId} does not match its stored facts hash`,
    );
  }
  return facts;
}

/** Builds the ProofFacts from a ProofSubmitted event and the job record's window and snapshot. */
export async function proofFactsOf(
  clients: FirnClients,
  proved: NonNullable<JobEvents['proved']>,
  challengeWindow: bigint,
  snapshotId: bigint,
): Promise<ProofFacts> {
  const provedAt = await getBlockTime(clients, proved.blockNumber);
  return {
    signer: proved.signer,
    startedAt: proved.startedAt,
    finishedAt: proved.finishedAt,
    provedBlock: proved.blockNumber,
    challengeEndsAt: provedAt + challengeWindow,
    workUnits: proved.workUnits,
    snapshotId,
  };
}

async function readStoredHashes(clients: FirnClients, jobId: Hex) {
  try {
    const j = await clients.public.readContract({
      address: clients.addresses.jobMarket,
      abi: firnJobMarketAbi,
      functionName: 'getJob',
      args: [jobId],
    });
    return {
      termsHash: j.termsHash,
      factsHash: j.factsHash,
      challengeWindow: BigInt(j.challengeWindow),
      snapshotId: BigInt(j.snapshotId),
    };
  } catch (e) {
    throw toChainError(e, 'getJob');
  }
}
