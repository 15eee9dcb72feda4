import {
  answerChallenge,
  ChainRevertedError,
  claimNodeReward,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  firnRewardsAbi,
  getChallenge,
  getIssuedChallenges,
  getNodeEpochReward,
  getResumeFee,
  type LivenessChallenge,
  resumeChallenges,
  resumeFeeAt,
  rewardsAddress,
  withdrawAllCredits,
} from '@firn/chain';
import { errorLogText, FirnError, type Hex, isFirnError } from '@firn/core';
import { parseEventLogs } from 'viem';
import type { Logger } from './logger.ts';
import type { NodeDaemon } from './nodeDaemon.ts';

export interface LivenessServiceOptions {
  rpcUrl: string;
  operatorKey: Hex;
  deployment: FirnDeployment;
  logger: Logger;
  /** Chain poll period, ms (default 1000). */
  pollIntervalMs?: number;
  /** Claim the node's epoch rewards and withdraw every credit (rewards, job payouts, refunds); default true. */
  claimRewards?: boolean;
  /**
   * Least time between two withdrawals of the operator's credits, ms (default 60 000). Job
   * payouts are credited at every finalize: checking the three balances on every poll and
   * withdrawing after every job cost 3 reads per poll and a transaction per job; batched, one
   * withdrawal takes every payout credited meanwhile (a credit stays the operator's until then).
   * A reward claim withdraws at once. 0: check on every poll.
   */
  withdrawIntervalMs?: number;
  /**
   * Blocks before the cursor scanned again on each scan (default 32): an RPC whose log index lags
   * the head it reports returns no error, only fewer logs, and a challenge in those blocks would
   * otherwise never be seen (the challenges already handled are skipped).
   */
  rescanBlocks?: number;
  /**
   * Most wei the service pays for one `resumeChallenges` (decision 1592): when the pool marks this
   * node unresponsive (MAX_MISSED_EPOCHS challenged epochs without an answer) while the service
   * runs and its enclave answers, it pays the node's resume fee (credited to governance's
   * treasury, decision 1646) so verifiers challenge it again, if the fee is at most this. Default DEFAULT_MAX_RESUME_FEE_WEI (0.05 ether, five times the
   * production deploy's registration fee); 0 never resumes (a warning names the option).
   */
  maxResumeFeeWei?: bigint;
  /**
   * Least time between two reads of the node's missed-epoch count on chain, ms (default 60 000):
   * a node becomes unresponsive only at an epoch's first challenge, so a read per minute finds it
   * early at one call's cost. 0: read on every poll.
   */
  resumeCheckIntervalMs?: number;
}

/** Default cap of one automatic resume, wei: 0.05 ether (decision 1592). */
export const DEFAULT_MAX_RESUME_FEE_WEI = 50_000_000_000_000_000n;

/** The CLI flag that sets `maxResumeFeeWei` (named in the warnings). */
export const MAX_RESUME_FEE_FLAG = '--max-resume-fee';

/**
 * Head-room on the latest block's base fee for the block the resume lands in (EIP-1559 raises it
 * by at most 1/8 per block: 5/4 covers the next two); the excess stays in the pool.
 */
const BASE_FEE_HEADROOM_NUM = 5n;
const BASE_FEE_HEADROOM_DEN = 4n;

/** What the service did so far (for /metrics, tests and the demo). */
export interface LivenessStats {
  answered: number;
  /** Automatic `resumeChallenges` this service paid for (decision 1592). */
  resumed: number;
  /** Wei those resumes paid (credited to governance's treasury, decision 1646). */
  resumeFeesPaid: bigint;
  /** Challenges seen too late (deadline passed) or refused by the contract. */
  missed: number;
  /**
   * Challenges left unanswered because the node had already counted `livenessTarget` answers in
   * their epoch: more earn nothing, and the pool refuses further challenges then (decision 1576).
   */
  beyondTarget: number;
  /** Wei of epoch rewards credited to the operator by this service's claims. */
  rewardsClaimed: bigint;
  /** Wei withdrawn from the contracts' pull balances. */
  withdrawn: bigint;
  lastReward?: { epoch: bigint; amount: bigint; txHash: Hex };
}

/**
 * The node's side of the capacity rewards (issue 9): watches the rewards contract for liveness
 * challenges addressed to this node's Enclave ID, has the enclave sign each one
 * (`livenessAnswer`: EIP-712 LivenessAnswer by the enclave key; the host holds no key that could
 * make it) and relays the signature before the challenge's deadline; after each epoch it claims
 * the node's reward share and withdraws what the contracts credited to the operator (rewards, job
 * payouts and claim bonds, registration refunds). When the pool marked the node unresponsive
 * (an outage of MAX_MISSED_EPOCHS challenged epochs) and it is healthy again, it pays the pool's
 * resume fee within `maxResumeFeeWei`, once per spell (decision 1592). Chain writes go through the
 * job service's serial queue so the operator's nonces never collide.
 */
export class LivenessService {
  readonly stats: LivenessStats = {
    answered: 0,
    beyondTarget: 0,
    resumed: 0,
    resumeFeesPaid: 0n,
    missed: 0,
    rewardsClaimed: 0n,
    withdrawn: 0n,
  };
  readonly clients: FirnClients;
  /** Aborted by stop(): an answer or claim still waiting for its receipt ends (decision 1762). */
  private readonly closing = new AbortController();
  private readonly node: NodeDaemon;
  private readonly opts: LivenessServiceOptions;
  private next: bigint;
  private readonly handled = new Set<Hex>();
  /** Epochs in which this node was challenged: the ones that may hold a reward to claim. */
  private readonly epochs = new Set<bigint>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private failures = 0;
  /** First block a challenge of each unclaimed epoch was seen in: the saved cursor stays before it. */
  private readonly epochBlocks = new Map<bigint, bigint>();
  /** performance.now() of the last credit withdrawal check (undefined: never, so the first poll checks). */
  private lastWithdrawAt: number | undefined;
  /** Automatic resume (decision 1592): the pool's MAX_MISSED_EPOCHS, read once. */
  private maxMissed: number | undefined;
  /** performance.now() of the last missed-epoch read (undefined: never). */
  private lastResumeCheckAt: number | undefined;
  /** No resume attempt before this performance.now() (back-off after a failed one). */
  private resumeNotBefore = 0;
  private resumeFailures = 0;
  /** `stats.answered` when this service last resumed the node (undefined: it never did). */
  private answeredAtResume: number | undefined;
  /** Reasons already warned about in this unresponsive spell (cleared once it is not unresponsive). */
  private readonly spellWarnings = new Set<string>();

  constructor(node: NodeDaemon, opts: LivenessServiceOptions) {
    this.node = node;
    this.opts = opts;
    this.clients = createFirnClients(opts.rpcUrl, opts.operatorKey, opts.deployment, {
      pollingIntervalMs: Math.min(opts.pollIntervalMs ?? 1000, 200),
      signal: this.closing.signal,
    });
    // Resume from the cursor a previous run saved (node.db), never before the deployment block.
    const saved = node.db?.cursor(this.cursorName());
    this.next =
      saved !== undefined && saved > opts.deployment.deployBlock ? saved : opts.deployment.deployBlock;
    if (opts.deployment.rewards === undefined)
      throw new FirnError('E_INVALID_INPUT', 'the deployment has no rewards contract: no liveness to prove');
  }

  private cursorName(): string {
    return `liveness:${this.opts.deployment.rewards?.toLowerCase() ?? 'none'}`;
  }

  /** Persist where a restart must resume: the next block, or an unclaimed epoch's first challenge. */
  private saveCursor(): void {
    let c = this.next;
    for (const b of this.epochBlocks.values()) if (b < c) c = b;
    try {
      this.node.db?.setCursor(this.cursorName(), c);
    } catch {
      // A full disk: the cursor stays behind (a rescan after a restart is safe, only slower).
    }
  }

  /** The next block the challenge watch scans (resumed from the saved cursor after a restart). */
  get nextBlock(): bigint {
    return this.next;
  }

  private write<T>(f: () => Promise<T>): Promise<T> {
    return this.node.jobs ? this.node.jobs.chainWrite(f) : f();
  }

  /** Ask the enclave to sign the challenge and relay the answer; public for tests. */
  async answer(c: LivenessChallenge): Promise<Hex> {
    const id = this.node.identity!;
    const signed = await this.node.supervisor.call<{ enclaveId: Hex; signature: Hex }>('livenessAnswer', {
      chainId: this.opts.deployment.chainId,
      rewards: this.opts.deployment.rewards,
      challengeId: c.challengeId,
      nonce: c.nonce,
      epoch: c.epoch.toString(),
    });
    if (signed.enclaveId.toLowerCase() !== id.enclaveId.toLowerCase())
      throw new FirnError('E_ENCLAVE_PROTOCOL', 'the enclave answered for another Enclave ID');
    const res = await this.write(() =>
      answerChallenge(this.clients, { challengeId: c.challengeId, signature: signed.signature }),
    );
    return res.hash;
  }

  /** One pass: answer new challenges, then claim and withdraw what ended epochs owe. */
  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    const log = this.opts.logger;
    try {
      const id = this.node.identity!;
      // The head's number only (eth_blockNumber): the block itself, for its time, is read only
      // when a challenge came in. No new block, no new challenge: the log scan is skipped.
      const headNumber = await this.clients.public.getBlockNumber({ cacheTime: 0 });
      if (headNumber >= this.next) {
        const back = this.next - BigInt(this.opts.rescanBlocks ?? 32);
        const floor = this.opts.deployment.deployBlock;
        const issued = await getIssuedChallenges(this.clients, {
          fromBlock: back > floor ? back : floor,
          toBlock: headNumber,
          enclaveId: id.enclaveId,
        });
        this.next = headNumber + 1n;
        const head =
          issued.length === 0 ? undefined : await this.clients.public.getBlock({ blockNumber: headNumber });
        // Answers past the pool's livenessTarget earn nothing (decision 1576), and the pool accepts
        // no challenge past it (1695) unless governance lowered it during the epoch: read it once
        // per batch, and the node's counted answers once per epoch seen, instead of paying for them.
        const target =
          issued.length === 0
            ? 0
            : await this.clients.public.readContract({
                address: rewardsAddress(this.clients),
                abi: firnRewardsAbi,
                functionName: 'livenessTarget',
              });
        for (const c of issued) {
          if (this.handled.has(c.challengeId)) continue;
          this.handled.add(c.challengeId);
          this.epochs.add(c.epoch);
          if (!this.epochBlocks.has(c.epoch)) this.epochBlocks.set(c.epoch, c.blockNumber);
          const now = await getChallenge(this.clients, c.challengeId);
          if (now.answered) continue;
          if (head !== undefined && head.timestamp > now.deadline) {
            this.stats.missed++;
            log.warn('liveness challenge seen after its deadline', { challengeId: c.challengeId });
            continue;
          }
          const counted = await this.clients.public.readContract({
            address: rewardsAddress(this.clients),
            abi: firnRewardsAbi,
            functionName: 'nodeAnswers',
            args: [c.epoch, id.enclaveId],
          });
          if (counted >= target) {
            this.stats.beyondTarget++;
            log.info('liveness challenge left unanswered: the liveness target of its epoch is reached', {
              challengeId: c.challengeId,
              epoch: c.epoch.toString(),
            });
            continue;
          }
          try {
            const tx = await this.answer(now);
            this.stats.answered++;
            log.info('liveness challenge answered by the enclave', {
              challengeId: c.challengeId,
              epoch: c.epoch.toString(),
              tx,
            });
          } catch (e) {
            this.stats.missed++;
            log.warn('liveness answer refused', {
              challengeId: c.challengeId,
              code: isFirnError(e) ? e.code : 'E_INTERNAL',
              message: errorLogText(e),
            });
          }
        }
      }
      await this.resumeIfUnresponsive(id.enclaveId);
      if (this.opts.claimRewards !== false) await this.claim(id.enclaveId);
      else this.epochBlocks.clear();
      this.saveCursor();
    } finally {
      this.busy = false;
    }
  }

  /**
   * Decision 1592: the pool stops challenging a node after MAX_MISSED_EPOCHS missed epochs since
   * its registration or last resume (an epoch with a challenge left to expire; answers in between
   * give none back, decisions 1695, 1696), until its operator pays `resumeFee(enclaveId)`. Reached only on a poll whose chain
   * reads succeeded; it pays when this node is unresponsive, its enclave answers now, the fee is at
   * most `maxResumeFeeWei`, and the node answered a challenge since the last resume this service
   * paid (a node that went silent again right after a resume is not paid for in a loop). One
   * resume per unresponsive spell: the payment clears the count on chain. A failed payment is
   * retried after a back-off (1 min, doubling, at most 1 h). Each refusal is logged once per spell.
   */
  private async resumeIfUnresponsive(enclaveId: Hex): Promise<void> {
    const t = performance.now();
    if (t < this.resumeNotBefore) return;
    const every = this.opts.resumeCheckIntervalMs ?? 60_000;
    if (this.lastResumeCheckAt !== undefined && t - this.lastResumeCheckAt < every) return;
    this.lastResumeCheckAt = t;
    const base = { address: rewardsAddress(this.clients), abi: firnRewardsAbi } as const;
    const read = this.clients.public;
    this.maxMissed ??= Number(await read.readContract({ ...base, functionName: 'MAX_MISSED_EPOCHS' }));
    const missed = await read.readContract({ ...base, functionName: 'missedEpochs', args: [enclaveId] });
    if (missed < this.maxMissed) {
      this.spellWarnings.clear();
      return;
    }
    const log = this.opts.logger;
    const warnOnce = (message: string, fields: Record<string, unknown>) => {
      if (this.spellWarnings.has(message)) return;
      this.spellWarnings.add(message);
      log.warn(message, { enclaveId, missedEpochs: missed, ...fields });
    };
    if (this.answeredAtResume !== undefined && this.stats.answered === this.answeredAtResume) {
      warnOnce(
        'node unresponsive on chain again without answering a challenge since its last automatic resume: not paying again; check the enclave and the RPC, then restart the node',
        {},
      );
      return;
    }
    // Healthy again: the enclave that signs the answers must answer now.
    try {
      await this.node.supervisor.call('hello', {}, 5000);
    } catch (e) {
      warnOnce('node unresponsive on chain and its enclave does not answer: not resuming challenges yet', {
        code: isFirnError(e) ? e.code : 'E_INTERNAL',
      });
      return;
    }
    const cap = this.opts.maxResumeFeeWei ?? DEFAULT_MAX_RESUME_FEE_WEI;
    if (cap === 0n) {
      warnOnce(
        `node unresponsive on chain: verifiers no longer challenge it and it earns no capacity reward; automatic resume is off (${MAX_RESUME_FEE_FLAG} 0): run 'firn rewards resume' or set ${MAX_RESUME_FEE_FLAG}`,
        {},
      );
      return;
    }
    const quote = await getResumeFee(this.clients, enclaveId);
    // Priced for a base fee above the latest block's, so the payment still covers the fee when
    // the block it lands in costs more (the excess is credited to the owner's treasury with the
    // rest: decision 1646).
    const value = resumeFeeAt(quote, (quote.baseFee * BASE_FEE_HEADROOM_NUM) / BASE_FEE_HEADROOM_DEN + 1n);
    if (value > cap) {
      warnOnce(
        `node unresponsive on chain: verifiers no longer challenge it and it earns no capacity reward; its resume fee is above ${MAX_RESUME_FEE_FLAG} (maxResumeFeeWei): raise ${MAX_RESUME_FEE_FLAG} or run 'firn rewards resume'`,
        { resumeFeeWei: value.toString(), maxResumeFeeWei: cap.toString() },
      );
      return;
    }
    try {
      const res = await this.write(() => resumeChallenges(this.clients, { enclaveId, value }));
      this.stats.resumed++;
      this.stats.resumeFeesPaid += value;
      this.answeredAtResume = this.stats.answered;
      this.resumeFailures = 0;
      this.spellWarnings.clear();
      log.info("node was unresponsive on chain; challenges resumed (fee credited to governance's treasury)", {
        enclaveId,
        missedEpochs: missed,
        wei: value.toString(),
        tx: res.hash,
      });
    } catch (e) {
      this.resumeFailures++;
      const wait = Math.min(3_600_000, 60_000 * 2 ** Math.min(this.resumeFailures - 1, 10));
      this.resumeNotBefore = performance.now() + wait;
      log.warn('resuming challenges failed; retrying later', {
        enclaveId,
        code: isFirnError(e) ? e.code : 'E_INTERNAL',
        error: e instanceof ChainRevertedError ? e.errorName : undefined,
        retryInMs: wait,
      });
    }
  }

  private async claim(enclaveId: Hex): Promise<void> {
    const log = this.opts.logger;
    // Only the epoch number is needed, and only while a challenged epoch waits to be claimed: this
    // runs on every poll of every node, so the 10 reads of getRewardsState were the bulk of a
    // devnet's idle chain traffic (bench/scale.ts, docs/decisions/1290).
    const currentEpoch =
      this.epochs.size === 0
        ? 0n
        : await this.clients.public.readContract({
            address: rewardsAddress(this.clients),
            abi: firnRewardsAbi,
            functionName: 'currentEpoch',
          });
    let claimed = false;
    for (const epoch of [...this.epochs].sort((a, b) => (a < b ? -1 : 1))) {
      if (epoch >= currentEpoch) continue;
      this.epochs.delete(epoch);
      this.epochBlocks.delete(epoch);
      const r = await getNodeEpochReward(this.clients, { epoch, enclaveId });
      // Points decide, not the pending view (an estimate from the pool's state now): a claimed
      // epoch refuses with NothingToClaim in simulation, before any transaction is sent.
      if (r.points === 0n) continue;
      const res = await this.write(() => claimNodeReward(this.clients, { epoch, enclaveId })).catch(
        (e: unknown) => {
          if (e instanceof ChainRevertedError && e.errorName === 'NothingToClaim') return undefined;
          throw e;
        },
      );
      if (!res) continue;
      claimed = true;
      // The credited amount is the event's: a budget is fixed when the epoch closes, so the view's
      // estimate before the claim may differ.
      const [ev] = parseEventLogs({
        abi: firnRewardsAbi,
        eventName: 'NodeRewardClaimed',
        logs: res.receipt.logs,
      });
      const amount = ev?.args.amount ?? r.pending;
      this.stats.rewardsClaimed += amount;
      this.stats.lastReward = { epoch, amount, txHash: res.hash };
      log.info('epoch reward claimed', {
        epoch: epoch.toString(),
        wei: amount.toString(),
        answers: r.answers,
      });
    }
    // Withdraw at most every withdrawIntervalMs, and at once after a reward claim (see the option).
    const every = this.opts.withdrawIntervalMs ?? 60_000;
    const t = performance.now();
    if (!claimed && this.lastWithdrawAt !== undefined && t - this.lastWithdrawAt < every) return;
    this.lastWithdrawAt = t;
    const got = await this.write(() => withdrawAllCredits(this.clients));
    const total = got.registry + got.jobMarket + got.rewards;
    if (total > 0n) {
      this.stats.withdrawn += total;
      log.info('credits withdrawn', {
        rewards: got.rewards.toString(),
        jobMarket: got.jobMarket.toString(),
        registry: got.registry.toString(),
      });
    }
  }

  start(): void {
    const tick = () => {
      this.poll()
        .then(
          () => {
            this.failures = 0;
          },
          (e: unknown) => {
            this.failures++;
            this.opts.logger.warn('liveness poll failed; retrying', {
              code: isFirnError(e) ? e.code : 'E_INTERNAL',
              message: errorLogText(e),
            });
          },
        )
        .finally(() => {
          // Back off while the chain fails (doubling, at most 30 s); the normal pace on success.
          const base = this.opts.pollIntervalMs ?? 1000;
          const wait = this.failures === 0 ? base : Math.min(30_000, base * 2 ** Math.min(this.failures, 20));
          if (this.timer !== undefined) this.timer = setTimeout(tick, wait);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Stop polling and close the chain clients (a write still waiting ends); not started again. */
  stop(): void {
    this.closing.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
