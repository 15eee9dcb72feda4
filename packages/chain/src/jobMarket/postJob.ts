import { type Hex, parseEventLogs } from 'viem';
import { FirnError } from '@firn/core';
import { firnJobMarketAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface PostJobParams {
  /** Bit (1 << teeType) for each accepted TEE type, e.g. 0b10 = simulated only. */
  teeTypeMask: number;
  /** Empty: any allow-listed measurement. At most 32. */
  allowedMeasurements: readonly Hex[];
  /**
   * The Enclave IDs the requester attested and binds the job to (at most 32); only they may claim.
   * Empty (the default): any eligible node.
   */
  enclaveIds?: readonly Hex[];
  workloadHash: Hex;
  inputCommitment: Hex;
  /** Absolute unix seconds by which a proof must be in. */
  deadline: bigint;
  /**
   * Seconds a claimant has to deliver before others may claim. At most MAX_CLAIM_TIMEOUT (7 days)
   * unless the deadline is within 7 days (decision 1570); else postJob reverts ClaimTimeoutTooLong.
   */
  claimTimeout: bigint;
  /** Wei held in escrow and paid to the node on success. */
  escrow: bigint;
  /**
   * Work units the escrow pays for (uint64). At finalize the node gets escrow * min(workUnits,
   * maxWorkUnits) / maxWorkUnits (minus the protocol fee on that part) and the rest is credited
   * back to the requester (pull). 0 or absent: the whole escrow for any accepted proof.
   */
  maxWorkUnits?: bigint;
}

/**
 * Post a job with its escrow; returns the jobId read from the JobPosted event. Reverts EnforcedPause
 * while the market is paused, TooManyEnclaveIds, TooManyMeasurements, DeadlineInPast, EmptyEscrow,
 * ClaimTimeoutTooLong (claim timeout and deadline both over 7 days away).
 */
export async function postJob(
  clients: FirnClients,
  p: PostJobParams,
  hooks: {
    /**
     * Each hash sent (see WriteRequest.onSent), with the job id the simulation returned: the id
     * the job gets unless another job is posted first in between (the id is a posting counter).
     */
    onSent?: (hash: Hex, expectedJobId: Hex) => void;
    /**
     * Each signed hash before it is handed to the RPC (see WriteRequest.onSigned, decision 1760),
     * with the job id the simulation returned; when it throws, that transaction is not sent.
     */
    onSigned?: (hash: Hex, expectedJobId: Hex) => void;
  } = {},
): Promise<WriteResult & { jobId: Hex }> {
  const request = {
    teeTypeMask: Number(assertUint(p.teeTypeMask, 8, 'teeTypeMask')),
    allowedMeasurements: p.allowedMeasurements.map((m, i) => assertBytes32(m, `allowedMeasurements[${i}]`)),
    enclaveIds: (p.enclaveIds ?? []).map((m, i) => assertBytes32(m, `enclaveIds[${i}]`)),
    workloadHash: assertBytes32(p.workloadHash, 'workloadHash'),
    inputCommitment: assertBytes32(p.inputCommitment, 'inputCommitment'),
    deadline: assertUint(p.deadline, 64, 'deadline'),
    claimTimeout: assertUint(p.claimTimeout, 64, 'claimTimeout'),
    maxWorkUnits: assertUint(p.maxWorkUnits ?? 0n, 64, 'maxWorkUnits'),
  };
  const res = await writeContractAndWait(clients, {
    address: clients.addresses.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'postJob',
    args: [request],
    value: p.escrow,
    ...(hooks.onSent
      ? { onSent: (hash: Hex, simulated: unknown) => hooks.onSent?.(hash, simulated as Hex) }
      : {}),
    ...(hooks.onSigned
      ? { onSigned: (hash: Hex, simulated: unknown) => hooks.onSigned?.(hash, simulated as Hex) }
      : {}),
  });
  const [posted] = parseEventLogs({ abi: firnJobMarketAbi, eventName: 'JobPosted', logs: res.receipt.logs });
  if (!posted) throw new FirnError('E_CHAIN', 'postJob: no JobPosted event in the receipt');
  return { ...res, jobId: posted.args.jobId };
}
