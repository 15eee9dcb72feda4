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
  type LivenessChallenge,
  rewardsAddress,
  withdrawAllCredits,
} from '@firn/chain';
import { FirnError, type Hex, isFirnError } from '@firn/core';
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
}

/** What the service did so far (for /metrics, tests and the demo). */
export interface LivenessStats {
  answered: number;
  /** Challenges seen too late (deadline passed) or refused by the contract. */
  missed: number;
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
 * payouts and claim bonds, registration refunds). Chain writes go through the job service's
 * serial queue so the operator's nonces never collide.
 */
export class LivenessService {
  readonly stats: LivenessStats = { answered: 0, missed: 0, rewardsClaimed: 0n, withdrawn: 0n };
  readonly clients: FirnClients;
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

  constructor(node: NodeDaemon, opts: LivenessServiceOptions) {
    this.node = node;
    this.opts = opts;
    this.clients = createFirnClients(opts.rpcUrl, opts.operatorKey, opts.deployment, {
      pollingIntervalMs: Math.min(opts.pollIntervalMs ?? 1000, 200),
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
              message: (e as Error).message,
            });
          }
        }
      }
      if (this.opts.claimRewards !== false) await this.claim(id.enclaveId);
      else this.epochBlocks.clear();
      this.saveCursor();
    } finally {
      this.busy = false;
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
              message: (e as Error).message,
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

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
