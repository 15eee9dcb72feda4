import {
  disputeJob,
  type FirnClients,
  firnJobMarketAbi,
  getJob,
  getNode,
  isMeasurementAllowed,
  JobStatus,
  NodeStatus,
} from '@firn/chain';
import { type Hex, hexBytes, workProofDigest } from '@firn/core';
import { recoverAddress } from '@firn/crypto';
import { decodeFunctionData } from 'viem';

/** Reason codes a verifier puts in `dispute(jobId, reasonCode)` for a proof it refuses. */
export const PROOF_DISPUTE_REASONS = {
  1: 'signature does not recover the registered enclave address',
  2: 'node is not Active',
  3: 'measurement is not allow-listed or not the registered one',
  4: 'proof differs from the on-chain job',
  5: 'implausible times or work units',
} as const;

export interface ProofVerdict {
  jobId: Hex;
  ok: boolean;
  reasonCode?: keyof typeof PROOF_DISPUTE_REASONS;
  reasons: string[];
  disputed: boolean;
}

export interface ProofCheckerOptions {
  /** Largest plausible workUnits per second of enclave time (default 2^32). */
  maxWorkUnitsPerSecond?: bigint;
  /** Seconds of clock skew allowed between the enclave and the chain (default 300). */
  clockSkewSeconds?: number;
  pollIntervalMs?: number;
  fromBlock?: bigint;
  logger?: {
    info(m: string, f?: Record<string, unknown>): void;
    warn(m: string, f?: Record<string, unknown>): void;
  };
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Re-check one submitted Work Proof from the submitProof transaction's calldata (the event does
 * not carry the signature): the signature recovers the node's registered enclave address, the
 * node is Active, the measurement is still allow-listed and is the node's and the job's, the
 * proof equals the on-chain job, and its times and work units are plausible. It cannot check
 * that the outputs are right (only the requester can open them) nor that the enclave really ran
 * that long; it disputes only what it can show from chain data.
 */
export async function checkSubmittedProof(
  clients: FirnClients,
  jobId: Hex,
  txHash: Hex,
  opts: ProofCheckerOptions = {},
): Promise<Omit<ProofVerdict, 'disputed'>> {
  const reasons: { code: keyof typeof PROOF_DISPUTE_REASONS; text: string }[] = [];
  const tx = await clients.public.getTransaction({ hash: txHash });
  const call = decodeFunctionData({ abi: firnJobMarketAbi, data: tx.input });
  if (call.functionName !== 'submitProof')
    return { jobId, ok: false, reasons: ['transaction is not submitProof'], reasonCode: 4 };
  const [, proof, signature] = call.args as unknown as [Hex, Parameters<typeof workProofDigest>[1], Hex];
  const job = await getJob(clients, jobId);
  const node = await getNode(clients, proof.enclaveId);
  let signer: string | undefined;
  try {
    signer = recoverAddress(
      hexBytes(
        workProofDigest(
          { chainId: clients.addresses.chainId, jobMarket: clients.addresses.jobMarket },
          proof,
        ),
        'digest',
        32,
      ),
      hexBytes(signature, 'signature', 65),
    );
  } catch {
    signer = undefined;
  }
  if (signer === undefined || !same(signer, node.enclaveAddress))
    reasons.push({ code: 1, text: 'signer is not the registered enclave address' });
  if (node.status !== NodeStatus.Active)
    reasons.push({ code: 2, text: `node is ${NodeStatus[node.status]}` });
  if (!same(node.measurement, proof.measurement))
    reasons.push({ code: 3, text: 'measurement is not the registered one' });
  else if (!(await isMeasurementAllowed(clients, { teeType: node.teeType, measurement: proof.measurement })))
    reasons.push({ code: 3, text: 'measurement is no longer allow-listed' });
  if (job.allowedMeasurements.length > 0 && !job.allowedMeasurements.some((m) => same(m, proof.measurement)))
    reasons.push({ code: 3, text: 'measurement is not in the job list' });
  if (
    !same(job.enclaveId, proof.enclaveId) ||
    !same(job.workloadHash, proof.workloadHash) ||
    !same(job.inputCommitment, proof.inputCommitment) ||
    !same(job.outputCommitment, proof.outputCommitment) ||
    job.workUnits !== proof.workUnits
  )
    reasons.push({ code: 4, text: 'proof differs from the on-chain job' });
  const skew = BigInt(opts.clockSkewSeconds ?? 300);
  const seconds = proof.finishedAt - proof.startedAt + 1n;
  if (proof.startedAt + skew < job.claimedAt || proof.finishedAt > job.provedAt + skew)
    reasons.push({ code: 5, text: 'proof times fall outside the claim' });
  if (proof.workUnits > seconds * (opts.maxWorkUnitsPerSecond ?? 1n << 32n))
    reasons.push({ code: 5, text: 'work units implausibly high' });
  return {
    jobId,
    ok: reasons.length === 0,
    reasons: reasons.map((r) => r.text),
    ...(reasons[0] ? { reasonCode: reasons[0].code } : {}),
  };
}

/**
 * Watches ProofSubmitted events, re-checks each proof and disputes the invalid ones while their
 * challenge window is open. One vote per verifier; the contract slashes at the quorum.
 */
export class ProofChecker {
  private timer: NodeJS.Timeout | undefined;
  private next: bigint;
  private busy = false;
  readonly verdicts: ProofVerdict[] = [];

  constructor(
    readonly clients: FirnClients,
    readonly opts: ProofCheckerOptions = {},
  ) {
    this.next = opts.fromBlock ?? clients.addresses.deployBlock;
  }

  /** Check, and dispute when invalid and still disputable. */
  async handle(jobId: Hex, txHash: Hex): Promise<ProofVerdict> {
    const v = await checkSubmittedProof(this.clients, jobId, txHash, this.opts);
    let disputed = false;
    if (!v.ok && v.reasonCode !== undefined) {
      const job = await getJob(this.clients, jobId);
      const block = await this.clients.public.getBlock();
      if (job.status === JobStatus.Proved && block.timestamp < job.challengeEndsAt) {
        try {
          await disputeJob(this.clients, { jobId, reasonCode: v.reasonCode });
          disputed = true;
        } catch (e) {
          this.opts.logger?.warn('dispute failed', { jobId, message: (e as Error).message });
        }
      }
      this.opts.logger?.warn('invalid work proof', { jobId, reasons: v.reasons, disputed });
    } else this.opts.logger?.info('work proof re-checked', { jobId });
    const verdict = { ...v, disputed };
    this.verdicts.push(verdict);
    return verdict;
  }

  /** Scan new ProofSubmitted events once. */
  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const head = await this.clients.public.getBlockNumber();
      if (head < this.next) return;
      const logs = await this.clients.public.getContractEvents({
        address: this.clients.addresses.jobMarket,
        abi: firnJobMarketAbi,
        eventName: 'ProofSubmitted',
        fromBlock: this.next,
        toBlock: head,
      });
      for (const l of logs) {
        const jobId = (l.args as { jobId?: Hex }).jobId;
        if (jobId && l.transactionHash)
          await this.handle(jobId, l.transactionHash).catch((e: unknown) =>
            this.opts.logger?.warn('proof check failed', { jobId, message: (e as Error).message }),
          );
      }
      this.next = head + 1n;
    } finally {
      this.busy = false;
    }
  }

  start(): void {
    const tick = () => {
      this.poll()
        .catch((e: unknown) =>
          this.opts.logger?.warn('proof watch failed; retrying', { message: (e as Error).message }),
        )
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(tick, this.opts.pollIntervalMs ?? 1000);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
