import {
  disputeJob,
  type FirnClients,
  type FirnJob,
  firnJobMarketAbi,
  getJob,
  JobStatus,
  wasEnclaveAddress,
} from '@firn/chain';
import { errorLogText, type Hex, hexBytes, workProofDigest } from '@firn/core';
import { recoverAddress } from '@firn/crypto';
import { compactSignatureToSignature, decodeFunctionData, serializeSignature } from 'viem';
import { checkResultAvailable, type ResultCheckOptions } from './resultAvailability.ts';
import { ResultCheckSlots } from './resultCheckSlots.ts';

/**
 * Reason codes a verifier puts in `dispute(jobId, reasonCode)` (FirnJobMarket, docs/decisions/0800):
 * 1 and 2 are facts the contract judges at once against what it recorded at submitProof, exactly
 * as checked here (a wrong one costs this verifier `falseDisputeSlash`); 18 is a finding only
 * verifiers can make (slashes the node once disputers hold > 2/3 of the snapshot stake); 19
 * (E_RESULT_UNAVAILABLE) is the finding that the node did not serve the sealed outputs the proof
 * commits to (docs/decisions/0830-result-availability.md).
 */
export const PROOF_DISPUTE_REASONS = {
  1: 'signer was not the enclave key of the Enclave ID at the proof block',
  2: 'proof times invalid (started after finished, or finished past the deadline + clock skew)',
  18: 'verifier finding: proof differs from the job, or implausible work units',
  19: 'verifier finding (E_RESULT_UNAVAILABLE): the sealed result was not served or does not match the proof',
} as const;

/** The dispute reason code of a result the node does not serve (E_RESULT_UNAVAILABLE). */
export const DISPUTE_RESULT_UNAVAILABLE = 19;

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
  /**
   * Check that the node serves the sealed result the proof commits to (default true). Retried
   * every `resultRetryMs` until it is served; still unavailable once `resultGraceFraction` of the
   * challenge window (chain time since submission) has passed, the proof is disputed with 19.
   */
  checkResults?: boolean;
  /** Default 2000 ms. */
  resultRetryMs?: number;
  /** Share of the challenge window the node has to serve its result, in (0, 1); default 0.5. */
  resultGraceFraction?: number;
  result?: ResultCheckOptions;
  /** Result checks running at once, over all nodes (default DEFAULT_RESULT_CHECKS). */
  maxConcurrentResultChecks?: number;
  /** Result checks running at once for one node (default DEFAULT_RESULT_CHECKS_PER_NODE). */
  maxConcurrentResultChecksPerNode?: number;
  pollIntervalMs?: number;
  /** Longest wait between polls while they fail, ms (doubling from pollIntervalMs). Default 30 000. */
  maxBackoffMs?: number;
  fromBlock?: bigint;
  /** Called with the block a restart must resume from (persist it; see CursorStore). */
  onProgress?: (cursor: bigint) => void;
  logger?: {
    info(m: string, f?: Record<string, unknown>): void;
    warn(m: string, f?: Record<string, unknown>): void;
  };
}

/**
 * Result checks one verifier runs at once by default, in all and per node: each holds at most
 * the result JSON (MAX_RESULT_JSON_BYTES) and a chunk of the output it is hashing.
 */
export const DEFAULT_RESULT_CHECKS = 8;
export const DEFAULT_RESULT_CHECKS_PER_NODE = 2;

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Re-check one submitted Work Proof from the submitProof transaction's calldata (the event does
 * not carry the signature) against the facts as they were at submission: the signature recovers
 * an address that was the Enclave ID's enclave key at the proof's block (the registry's key
 * history), its times are consistent (the contract's rule, with its clock skew), the proof equals
 * the job's recorded commitments, and its work units are plausible. It deliberately ignores what changed after
 * submission (a revoked measurement, a node that exited or rotated its key): those never make a
 * proof that was valid when submitted disputable. It cannot check that the outputs are right
 * (only the requester can open them) nor that the enclave really ran that long.
 */
export async function checkSubmittedProof(
  clients: FirnClients,
  jobId: Hex,
  txHash: Hex,
  opts: ProofCheckerOptions = {},
): Promise<Omit<ProofVerdict, 'disputed'>> {
  return checkProofAgainst(clients, await getJob(clients, jobId), txHash, opts);
}

/**
 * The market's MAX_CLOCK_SKEW by market (chainId:address). It is a Solidity `constant`: read
 * once per market, not once per proof.
 */
const maxClockSkew = new Map<string, Promise<bigint>>();

function readMaxClockSkew(clients: FirnClients): Promise<bigint> {
  const key = `${clients.addresses.chainId}:${clients.addresses.jobMarket.toLowerCase()}`;
  let p = maxClockSkew.get(key);
  if (p === undefined) {
    p = clients.public
      .readContract({
        address: clients.addresses.jobMarket,
        abi: firnJobMarketAbi,
        functionName: 'MAX_CLOCK_SKEW',
      })
      .then(BigInt);
    maxClockSkew.set(key, p);
    // A failed read is not kept: the next proof reads it again.
    p.catch(() => maxClockSkew.delete(key));
  }
  return p;
}

/** checkSubmittedProof on a job record already read (getJob) at or after the proof's block. */
async function checkProofAgainst(
  clients: FirnClients,
  job: FirnJob,
  txHash: Hex,
  opts: ProofCheckerOptions,
): Promise<Omit<ProofVerdict, 'disputed'>> {
  const jobId = job.jobId;
  const reasons: { code: keyof typeof PROOF_DISPUTE_REASONS; text: string }[] = [];
  // Fact reasons are judged on the facts the market recorded at submitProof, exactly as the
  // contract will judge them: never on a transaction's calldata, which a relaying contract (an
  // operator that is a contract) can fill with anything while it forwards a valid proof.
  if (
    !(await wasEnclaveAddress(clients, {
      enclaveId: job.enclaveId,
      account: job.signer,
      blockNumber: job.provedBlock,
    }))
  )
    reasons.push({ code: 1, text: 'signer was not the enclave key at the proof block' });
  // The contract's own rule (FirnJobMarket._timesInvalid): the enclave's clock is not chain time,
  // so only an inverted interval or a finish past the deadline plus MAX_CLOCK_SKEW is a fact.
  const skew = await readMaxClockSkew(clients);
  if (job.startedAt > job.finishedAt || job.finishedAt > job.deadline + skew)
    reasons.push({ code: 2, text: 'proof times invalid' });
  const seconds = job.finishedAt >= job.startedAt ? job.finishedAt - job.startedAt + 1n : 1n;
  if (job.workUnits > seconds * (opts.maxWorkUnitsPerSecond ?? 1n << 32n))
    reasons.push({ code: 18, text: 'work units implausibly high' });
  // The calldata is compared with the job only for a direct call to the market (what it decodes
  // is then what the market checked); a relayed call says nothing this checker can judge.
  const tx = await clients.public.getTransaction({ hash: txHash });
  if (tx.to && same(tx.to, clients.addresses.jobMarket)) {
    const call = decodeFunctionData({ abi: firnJobMarketAbi, data: tx.input });
    if (call.functionName === 'submitProof') {
      // submitProof(proof, r, vs): the signature travels in EIP-2098's 64-byte form (decision 1141).
      const [proof, r, vs] = call.args as unknown as [Parameters<typeof workProofDigest>[1], Hex, Hex];
      const signature = serializeSignature(compactSignatureToSignature({ r, yParityAndS: vs }));
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
      if (
        signer === undefined ||
        !same(signer, job.signer) ||
        !same(job.enclaveId, proof.enclaveId) ||
        !same(job.measurement, proof.measurement) ||
        !same(job.workloadHash, proof.workloadHash) ||
        !same(job.inputCommitment, proof.inputCommitment) ||
        !same(job.outputCommitment, proof.outputCommitment) ||
        job.workUnits !== proof.workUnits
      )
        reasons.push({ code: 18, text: 'proof differs from the on-chain job' });
    }
  }
  return {
    jobId,
    ok: reasons.length === 0,
    reasons: reasons.map((r) => r.text),
    ...(reasons[0] ? { reasonCode: reasons[0].code } : {}),
  };
}

/**
 * Watches ProofSubmitted events, re-checks each proof against the facts at submission and
 * disputes the invalid ones while their challenge window is open. One vote per verifier; the
 * contract judges fact reasons at once and slashes on findings at > 2/3 of the snapshot stake.
 */
export class ProofChecker {
  private timer: NodeJS.Timeout | undefined;
  private next: bigint;
  private failures = 0;
  /** Block of each proof being checked now: the saved cursor never moves past an unfinished one. */
  private readonly pendingBlocks = new Map<string, bigint>();
  private busy = false;
  readonly verdicts: ProofVerdict[] = [];

  constructor(
    readonly clients: FirnClients,
    readonly opts: ProofCheckerOptions = {},
  ) {
    this.next = opts.fromBlock ?? clients.addresses.deployBlock;
    this.resultSlots = new ResultCheckSlots(
      opts.maxConcurrentResultChecks ?? DEFAULT_RESULT_CHECKS,
      opts.maxConcurrentResultChecksPerNode ?? DEFAULT_RESULT_CHECKS_PER_NODE,
    );
  }

  private readonly handling = new Set<string>();
  private stopped = false;
  /** Places for result checks running at once, in all and per node. */
  readonly resultSlots: ResultCheckSlots;

  /**
   * Wait until the node serves the result the proof commits to, the job leaves Proved (disputed,
   * finalized), or the grace share of its challenge window passes with the result still unavailable
   * (then the reason to dispute). Chain reads that fail are retried and never count against the node.
   * Each check first waits for its place (resultSlots); the wait never counts against the node
   * either: only a check that ran and failed once the grace has passed gives a reason to dispute.
   */
  private async awaitResult(jobId: Hex, first?: FirnJob): Promise<string | undefined> {
    const fraction = this.opts.resultGraceFraction ?? 0.5;
    // The first pass uses the record the proof check just read (the same chain state, one read fewer).
    let known = first;
    // Elapsed time on this verifier's own clock since its first look, added to the chain time it
    // saw then: a host clock set apart from the chain (ahead by 30 minutes, say) cannot make an
    // honest node's result look overdue at once (tests/e2e/faults-chain.test.ts).
    let origin: { chain: number; local: number } | undefined;
    for (let last: string | undefined; ; ) {
      if (this.stopped) return undefined;
      try {
        const job = known ?? (await getJob(this.clients, jobId));
        known = undefined;
        if (job.status !== JobStatus.Proved) return undefined;
        const release = await this.resultSlots.acquire(job.enclaveId);
        let r: Awaited<ReturnType<typeof checkResultAvailable>>;
        try {
          if (this.stopped) return undefined;
          r = await checkResultAvailable(this.clients, job, this.opts.result ?? {});
        } finally {
          release();
        }
        if (r.available) return undefined;
        last = r.reason ?? 'result unavailable';
        const window = Number(job.challengeEndsAt - job.provedAt);
        const giveUpAt = Number(job.provedAt) + Math.floor(window * Math.min(Math.max(fraction, 0), 0.95));
        // Blocks are mined only on transactions on some chains (anvil): the latest block's time may
        // lag, so the time this verifier has waited since its first look counts when it is later.
        const chainNow = Number((await this.clients.public.getBlock()).timestamp);
        origin ??= { chain: chainNow, local: Date.now() / 1000 };
        const now = Math.max(chainNow, origin.chain + (Date.now() / 1000 - origin.local));
        if (now >= giveUpAt) return last;
        this.opts.logger?.info('result not available yet; retrying', { jobId, reason: last });
      } catch (e) {
        this.opts.logger?.warn('result check failed; retrying', { jobId, message: errorLogText(e) });
      }
      await new Promise((res) => setTimeout(res, this.opts.resultRetryMs ?? 2000));
    }
  }

  /** Check, and dispute when invalid and still disputable. */
  async handle(jobId: Hex, txHash: Hex): Promise<ProofVerdict> {
    const job = await getJob(this.clients, jobId);
    let v = await checkProofAgainst(this.clients, job, txHash, this.opts);
    if (v.ok && this.opts.checkResults !== false) {
      const missing = await this.awaitResult(jobId, job);
      if (missing !== undefined)
        v = { jobId, ok: false, reasonCode: DISPUTE_RESULT_UNAVAILABLE, reasons: [missing] };
    }
    let disputed = false;
    if (!v.ok && v.reasonCode !== undefined) {
      const job = await getJob(this.clients, jobId);
      const block = await this.clients.public.getBlock();
      if (job.status === JobStatus.Proved && block.timestamp < job.challengeEndsAt) {
        try {
          await disputeJob(this.clients, { jobId, reasonCode: v.reasonCode });
          disputed = true;
        } catch (e) {
          this.opts.logger?.warn('dispute failed', { jobId, message: errorLogText(e) });
        }
      }
      this.opts.logger?.warn('invalid work proof', { jobId, reasons: v.reasons, disputed });
    } else this.opts.logger?.info('work proof re-checked', { jobId });
    const verdict = { ...v, disputed };
    this.verdicts.push(verdict);
    return verdict;
  }

  /** The block a restarted checker must resume from: the next one, or an unfinished proof's. */
  get cursor(): bigint {
    let c = this.next;
    for (const b of this.pendingBlocks.values()) if (b < c) c = b;
    return c;
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
        const tx = l.transactionHash;
        // Each proof is judged on its own (a result check may wait for a slow node): never awaited here.
        if (jobId && tx && !this.handling.has(jobId)) {
          this.handling.add(jobId);
          this.pendingBlocks.set(jobId, l.blockNumber ?? this.next);
          void this.handle(jobId, tx)
            .catch((e: unknown) =>
              this.opts.logger?.warn('proof check failed', { jobId, message: errorLogText(e) }),
            )
            .finally(() => {
              this.handling.delete(jobId);
              this.pendingBlocks.delete(jobId);
              this.opts.onProgress?.(this.cursor);
            });
        }
      }
      this.next = head + 1n;
      this.opts.onProgress?.(this.cursor);
    } finally {
      this.busy = false;
    }
  }

  start(): void {
    this.stopped = false;
    const tick = () => {
      this.poll()
        .then(
          () => {
            this.failures = 0;
          },
          (e: unknown) => {
            this.failures++;
            this.opts.logger?.warn('proof watch failed; retrying', { message: errorLogText(e) });
          },
        )
        .finally(() => {
          // Back off while the RPC fails (doubling, capped), back to the normal pace on success.
          const base = this.opts.pollIntervalMs ?? 1000;
          const wait =
            this.failures === 0
              ? base
              : Math.min(this.opts.maxBackoffMs ?? 30_000, base * 2 ** Math.min(this.failures, 20));
          if (this.timer !== undefined) this.timer = setTimeout(tick, wait);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
