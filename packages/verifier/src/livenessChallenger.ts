import {
  ChainRevertedError,
  claimVerifierReward,
  dropRevokedPoints,
  type FirnClients,
  firnRegistryAbi,
  firnRewardsAbi,
  getChallenge,
  getIneligibility,
  isGovernanceRestriction,
  getRestriction,
  getVerifierEpochReward,
  getWithdrawable,
  issueChallenge,
  listEnclaveIdsByStatus,
  NodeStatus,
  requireWallet,
  rewardsAddress,
  wasEnclaveAddress,
  withdrawCredits,
} from '@firn/chain';
import { errorLogText, type Hex, hexBytes, isFirnError, livenessAnswerDigest } from '@firn/core';
import { recoverAddress } from '@firn/crypto';
import { decodeFunctionData, parseEventLogs } from 'viem';

export interface LivenessChallengerOptions {
  pollIntervalMs?: number;
  /**
   * Seconds, beyond the answer window, a challenge must leave before the epoch ends to be sent
   * (decision 1590: the pool refuses one whose deadline is not before the epoch's end,
   * ChallengeTooLate). They cover the time between the head this daemon read and the block its
   * transaction lands in. Default: a tenth of the epoch, at least 1 s and at most 30 s.
   */
  issueMarginSeconds?: number;
  logger?: {
    info(m: string, f?: Record<string, unknown>): void;
    warn(m: string, f?: Record<string, unknown>): void;
    error(m: string, f?: Record<string, unknown>): void;
  };
}

/** What the challenger did so far. */
export interface LivenessChallengerStats {
  issued: number;
  /** Answered, and the answer's signature re-checked off chain against the enclave key. */
  answered: number;
  /** Deadline passed without an answer: the node earns nothing for it. */
  missed: number;
  /**
   * Challenges not sent because the pool says the node is unresponsive, on probation, or has
   * reached its liveness target this epoch (`isUnresponsive`, decision 1576): a silent node, or
   * one that owes no more answers, costs this verifier a free read, not gas.
   */
  skippedUnresponsive: number;
  /**
   * Epochs in which this daemon held challenges back because less than the answer window (plus
   * `issueMarginSeconds`) was left before the epoch's end (counted once per epoch), plus challenges
   * the pool refused as ChallengeTooLate (decision 1590; a warning each).
   */
  skippedLate: number;
  /** Accepted on chain but not by this verifier's own check (should never happen; logged as an error). */
  mismatched: number;
  /**
   * Nodes whose points of the epoch this daemon dropped after governance made them ineligible
   * (measurement revoked, TEE type withdrawn; decision 1708).
   */
  droppedRevoked: number;
  /** Wei of this verifier's rewards credited by its claims. */
  rewardsClaimed: bigint;
}

interface Open {
  challengeId: Hex;
  enclaveId: Hex;
  epoch: bigint;
  nonce: Hex;
  deadline: bigint;
  /** Block of the transaction that issued it: its answer can only come later. */
  issuedBlock: bigint;
  /** Re-checks that found no ChallengeAnswered log yet (an RPC whose log index lags its head). */
  unseen?: number;
}

/** Chain seconds between two scans of the registry's logs for governance restrictions (1708). */
const RESTRICTION_SCAN_SECONDS = 60n;

/** Polls an answered challenge's log may lag behind the head before it counts as a mismatch. */
const ANSWER_LOG_LAG_POLLS = 10;

/** Blocks before a challenge's issue block that its answer scan also reads (a reorg may move it). */
const ANSWER_SCAN_OVERLAP = 32n;

/**
 * A verifier's liveness duty (issue 9): once per epoch, challenge every eligible Active node (the
 * contract picks the nonce and the deadline); follow each challenge until it is answered or
 * expires, and re-check an accepted answer off chain (the relayed signature over the EIP-712
 * LivenessAnswer recovers an address that was the node's enclave key at the answer's block). Only
 * challenges that leave a full answer window inside the epoch are issued, so an honest node can
 * always answer in time. A node the pool marks unresponsive or on probation (`isUnresponsive`,
 * decision 1576) is skipped: a silent node costs this verifier a read, not a transaction. After
 * each epoch it claims this verifier's reward share and withdraws it.
 */
export class LivenessChallenger {
  readonly stats: LivenessChallengerStats = {
    issued: 0,
    answered: 0,
    missed: 0,
    skippedUnresponsive: 0,
    skippedLate: 0,
    mismatched: 0,
    droppedRevoked: 0,
    rewardsClaimed: 0n,
  };
  private readonly open = new Map<Hex, Open>();
  private readonly challengedIn = new Map<bigint, Set<Hex>>();
  /** First epoch not yet checked for a verifier reward (votes and challenges both earn points). */
  private nextClaimEpoch: bigint | undefined;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private stopped = false;
  /** The pool's immutable epoch clock (read once). */
  private clock: { genesis: bigint; epochLength: bigint } | undefined;
  /** The answer window (governance may change it: re-read once per epoch). */
  private window: { epoch: bigint; seconds: bigint } | undefined;
  /** The last read of the Active index: its epoch and the head block it was read at. */
  private listed: { epoch: bigint; head: bigint } | undefined;
  /** Last epoch in which challenges were held back for lack of time (counted once). */
  private lateEpoch: bigint | undefined;
  /** Last epoch whose end the reward claim and the withdrawal check ran for. */
  private claimedThrough: bigint | undefined;
  /** Last block scanned for MeasurementRevoked and AllowedTeeTypesSet, and its time (decision 1708). */
  private restrictionsScanned: { block: bigint; at: bigint } | undefined;

  constructor(
    readonly clients: FirnClients,
    readonly opts: LivenessChallengerOptions = {},
  ) {}

  /** One pass: issue this epoch's challenges, follow open ones, claim ended epochs. Public for tests. */
  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      // Per poll: the epoch number and the head. The epoch clock (genesis, length) is immutable
      // and read once; the answer window is re-read when the epoch changes (a governance change
      // counts from the next epoch here; the contract sets each challenge's deadline itself).
      const base = { address: rewardsAddress(this.clients), abi: firnRewardsAbi } as const;
      const read = this.clients.public;
      let clock = this.clock;
      if (clock === undefined) {
        const [genesis, epochLength] = await Promise.all([
          read.readContract({ ...base, functionName: 'genesis' }),
          read.readContract({ ...base, functionName: 'epochLength' }),
        ]);
        clock = { genesis: BigInt(genesis), epochLength: BigInt(epochLength) };
        this.clock = clock;
      }
      const epoch = await read.readContract({ ...base, functionName: 'currentEpoch' });
      const window =
        this.window?.epoch === epoch
          ? this.window
          : { epoch, seconds: BigInt(await read.readContract({ ...base, functionName: 'answerWindow' })) };
      this.window = window;
      const head = await read.getBlock({ blockTag: 'latest' });
      const readAt = performance.now();
      const epochEnds = clock.genesis + (epoch + 1n) * clock.epochLength;
      // The pool accepts a challenge only while now + answerWindow < the epoch's end (decision
      // 1590). Chain time is estimated as the head's plus the wall time since it was read (the
      // loop sends one transaction per node), and a margin covers the block the next one lands in.
      const lastIssueAt = epochEnds - window.seconds - this.margin(clock.epochLength);
      const chainNow = () => head.timestamp + BigInt(Math.ceil((performance.now() - readAt) / 1000));
      const inTime = () => {
        if (chainNow() <= lastIssueAt) return true;
        if (this.lateEpoch !== epoch) {
          this.lateEpoch = epoch;
          this.stats.skippedLate++;
        }
        return false;
      };
      if (inTime()) await this.challengeAll(epoch, head.number, inTime);
      await this.dropAfterRestrictions(epoch, head, clock.epochLength);
      await this.follow(head.timestamp);
      if (this.claimedThrough !== epoch) {
        await this.claim(epoch);
        this.claimedThrough = epoch;
      }
    } finally {
      this.busy = false;
    }
  }

  /** Seconds kept between the last challenge sent and the latest one the pool would accept. */
  private margin(epochLength: bigint): bigint {
    const set = this.opts.issueMarginSeconds;
    if (set !== undefined) return BigInt(Math.max(0, Math.ceil(set)));
    const tenth = epochLength / 10n;
    return tenth < 1n ? 1n : tenth > 30n ? 30n : tenth;
  }

  private async challengeAll(epoch: bigint, headNumber: bigint, inTime: () => boolean): Promise<void> {
    let done = this.challengedIn.get(epoch);
    if (!done) {
      done = new Set();
      this.challengedIn.set(epoch, done);
      for (const e of this.challengedIn.keys()) if (e < epoch) this.challengedIn.delete(e);
    }
    // The Active index only: the full records (and their event scans over the chain's whole
    // history) are not needed to challenge. It is listed again whenever a block was added since
    // the last listing this epoch: a node can only become Active in a new block, so none is missed
    // (a count or a timer would miss one that joined in the block another left). The listing is
    // read at that block.
    const last = this.listed;
    if (last !== undefined && last.epoch === epoch && last.head === headNumber) return;
    this.listed = { epoch, head: headNumber };
    for (const enclaveId of await listEnclaveIdsByStatus(this.clients, NodeStatus.Active, 200, headNumber)) {
      if (this.stopped) return;
      if (done.has(enclaveId)) continue;
      // Too little of the epoch left for a whole answer window: the rest wait for the next one.
      if (!inTime()) return;
      done.add(enclaveId);
      const reason = await getIneligibility(this.clients, enclaveId);
      if (reason !== 0) {
        // Made ineligible by governance during the epoch: its points of the epoch, and its
        // platform's share, go (decision 1708). Not Active (exit, slash): nothing to do.
        if (isGovernanceRestriction(reason)) await this.dropRevoked(epoch, enclaveId, headNumber, reason);
        continue;
      }
      // A node that missed its last challenged epoch takes one challenge per epoch, none after
      // MAX_MISSED_EPOCHS missed since its last resume, and none once its answers plus open
      // challenges reach livenessTarget in the epoch (decisions 1576, 1695): read first, so a
      // silent node, or one that owes no further answer, costs no gas.
      const unresponsive = await this.clients.public.readContract({
        address: rewardsAddress(this.clients),
        abi: firnRewardsAbi,
        functionName: 'isUnresponsive',
        args: [enclaveId],
        blockNumber: headNumber,
      });
      if (unresponsive) {
        this.stats.skippedUnresponsive++;
        this.opts.logger?.info(
          'liveness challenge skipped: node unresponsive or its liveness target reached',
          {
            enclaveId,
            epoch: epoch.toString(),
          },
        );
        continue;
      }
      // Stopped during the reads above: stop() promises that a pass in flight sends nothing more
      // (a challenge sent after it is one its owner no longer expects, and the node may miss it).
      if (this.stopped) return;
      try {
        const { challenge, receipt } = await issueChallenge(this.clients, enclaveId);
        this.open.set(challenge.challengeId, { ...challenge, issuedBlock: receipt.blockNumber });
        this.stats.issued++;
        this.opts.logger?.info('liveness challenge issued', {
          enclaveId,
          epoch: epoch.toString(),
          challengeId: challenge.challengeId,
        });
      } catch (e) {
        if (e instanceof ChainRevertedError && e.errorName === 'ChallengeTooLate') {
          // Landed later than the margin allowed for (decision 1590): none more this epoch.
          this.stats.skippedLate++;
          this.opts.logger?.warn('liveness challenge refused: too late in the epoch for an answer window', {
            enclaveId,
            epoch: epoch.toString(),
          });
          return;
        }
        if (e instanceof ChainRevertedError && e.errorName === 'PoolRetired') {
          // Governance moved the registry to another pool (decision 1707): this deployment file
          // names a pool that takes no new work. Nothing more to issue here.
          this.opts.logger?.error(
            "liveness challenges refused: the rewards contract is no longer the registry's pool; update the deployment file",
            { rewards: rewardsAddress(this.clients), registryPool: String(e.args?.[0]) },
          );
          return;
        }
        if (
          e instanceof ChainRevertedError &&
          (e.errorName === 'LivenessTargetReached' || e.errorName === 'NodeOnProbation')
        ) {
          // Another verifier's challenge landed first (decisions 1576, 1594): nothing owed.
          this.stats.skippedUnresponsive++;
          this.opts.logger?.info('liveness challenge refused: another verifier challenged the node first', {
            enclaveId,
            epoch: epoch.toString(),
            reason: e.errorName,
          });
          continue;
        }
        // AlreadyChallenged after a restart, or the node became ineligible meanwhile: not an error.
        this.opts.logger?.warn('liveness challenge not issued', {
          enclaveId,
          message: isFirnError(e) ? e.message : String(e),
        });
      }
    }
  }

  /**
   * After a MeasurementRevoked or AllowedTeeTypesSet since the last scan, drops this epoch's points
   * of every Active or Exiting node whose code governance restricted (decisions 1708, 1726): a node revoked after this
   * daemon challenged it this epoch is not looked at again by challengeAll. At most one log read
   * per RESTRICTION_SCAN_SECONDS of chain time (a tenth of a shorter epoch), over the blocks since
   * the last one.
   */
  private async dropAfterRestrictions(
    epoch: bigint,
    head: { number: bigint; timestamp: bigint },
    epochLength: bigint,
  ): Promise<void> {
    const headNumber = head.number;
    const last = this.restrictionsScanned;
    const tenth = epochLength / 10n > 0n ? epochLength / 10n : 1n;
    const every = tenth < RESTRICTION_SCAN_SECONDS ? tenth : RESTRICTION_SCAN_SECONDS;
    if (last !== undefined && (headNumber <= last.block || head.timestamp < last.at + every)) return;
    const logs = await this.clients.public.getContractEvents({
      address: this.clients.addresses.registry,
      abi: firnRegistryAbi,
      fromBlock: last === undefined ? headNumber : last.block + 1n,
      toBlock: headNumber,
    });
    this.restrictionsScanned = { block: headNumber, at: head.timestamp };
    if (!logs.some((l) => l.eventName === 'MeasurementRevoked' || l.eventName === 'AllowedTeeTypesSet'))
      return;
    // Exiting too: an operator that exits in the block of the revocation still loses the epoch's
    // points (decision 1726); the registry's restriction view ignores the status.
    for (const status of [NodeStatus.Active, NodeStatus.Exiting]) {
      for (const enclaveId of await listEnclaveIdsByStatus(this.clients, status, 200, headNumber)) {
        if (this.stopped) return;
        const reason = await getRestriction(this.clients, enclaveId);
        if (isGovernanceRestriction(reason)) await this.dropRevoked(epoch, enclaveId, headNumber, reason);
      }
    }
  }

  /**
   * Drops the epoch's points of a node governance made ineligible, when it has any (read at
   * `headNumber` first, so a node without points costs no gas). Another verifier dropping them
   * first (NothingToDrop) is not an error.
   */
  private async dropRevoked(
    epoch: bigint,
    enclaveId: Hex,
    headNumber: bigint,
    reason: number,
  ): Promise<void> {
    const points = await this.clients.public.readContract({
      address: rewardsAddress(this.clients),
      abi: firnRewardsAbi,
      functionName: 'nodePoints',
      args: [epoch, enclaveId],
      blockNumber: headNumber,
    });
    if (points === 0n) return;
    try {
      await dropRevokedPoints(this.clients, enclaveId);
      this.stats.droppedRevoked++;
      this.opts.logger?.info('revoked node: its points of the epoch dropped', {
        enclaveId,
        epoch: epoch.toString(),
        reason,
      });
    } catch (e) {
      if (e instanceof ChainRevertedError && e.errorName === 'NothingToDrop') return;
      this.opts.logger?.warn('revoked node: points not dropped', {
        enclaveId,
        message: isFirnError(e) ? e.message : String(e),
      });
    }
  }

  private async follow(now: bigint): Promise<void> {
    for (const c of [...this.open.values()]) {
      const onChain = await getChallenge(this.clients, c.challengeId);
      if (onChain.answered) {
        const ok = await this.recheckAnswer(c);
        // No log yet, though the head says answered: the RPC's log index lags; look again next poll.
        if (ok === undefined) {
          c.unseen = (c.unseen ?? 0) + 1;
          if (c.unseen < ANSWER_LOG_LAG_POLLS) continue;
        }
        this.open.delete(c.challengeId);
        if (ok) this.stats.answered++;
        else {
          this.stats.mismatched++;
          this.opts.logger?.error('accepted liveness answer fails the off-chain check', {
            challengeId: c.challengeId,
          });
        }
      } else if (now > c.deadline) {
        this.open.delete(c.challengeId);
        this.stats.missed++;
        this.opts.logger?.warn('liveness challenge expired unanswered', {
          enclaveId: c.enclaveId,
          challengeId: c.challengeId,
        });
      }
    }
  }

  /**
   * The relayed signature recovers an address that was the node's enclave key at that block. The
   * answer is looked for from the challenge's issue block (less ANSWER_SCAN_OVERLAP), not from the
   * deployment: nothing before the challenge can answer it, and a scan from the deployment grew
   * with the chain (and exceeds the block range public RPCs accept).
   */
  private async recheckAnswer(c: Open): Promise<boolean | undefined> {
    const floor = this.clients.addresses.deployBlock;
    const back = c.issuedBlock - ANSWER_SCAN_OVERLAP;
    const logs = await this.clients.public.getContractEvents({
      address: rewardsAddress(this.clients),
      abi: firnRewardsAbi,
      eventName: 'ChallengeAnswered',
      args: { challengeId: c.challengeId },
      fromBlock: back > floor ? back : floor,
      strict: true,
    });
    const log = logs[0];
    if (!log) return undefined;
    const tx = await this.clients.public.getTransaction({ hash: log.transactionHash });
    let signature: Hex;
    try {
      const call = decodeFunctionData({ abi: firnRewardsAbi, data: tx.input });
      if (call.functionName !== 'answerChallenge') return true; // relayed by a contract: the chain's check stands
      signature = call.args[1] as Hex;
    } catch {
      return true;
    }
    const digest = livenessAnswerDigest(
      { chainId: this.clients.addresses.chainId, rewards: rewardsAddress(this.clients) },
      { challengeId: c.challengeId, nonce: c.nonce, enclaveId: c.enclaveId, epoch: c.epoch },
    );
    let signer: Hex;
    try {
      signer = recoverAddress(hexBytes(digest, 'digest', 32), hexBytes(signature, 'signature', 65)) as Hex;
    } catch {
      return false;
    }
    return wasEnclaveAddress(this.clients, {
      enclaveId: c.enclaveId,
      account: signer,
      blockNumber: log.blockNumber,
    });
  }

  private async claim(current: bigint): Promise<void> {
    const me = requireWallet(this.clients).account.address;
    // At most 64 epochs back on a first start: older shares stay claimable by hand (firn rewards claim).
    this.nextClaimEpoch ??= current > 64n ? current - 64n : 0n;
    for (; this.nextClaimEpoch < current; this.nextClaimEpoch++) {
      const epoch = this.nextClaimEpoch;
      const r = await getVerifierEpochReward(this.clients, { epoch, verifier: me });
      // Points decide, not the pending estimate; a claimed epoch refuses in simulation (no gas).
      if (r.points === 0n) continue;
      const res = await claimVerifierReward(this.clients, { epoch, verifier: me }).catch((e: unknown) => {
        if (e instanceof ChainRevertedError && e.errorName === 'NothingToClaim') return undefined;
        throw e;
      });
      if (!res) continue;
      const [ev] = parseEventLogs({
        abi: firnRewardsAbi,
        eventName: 'VerifierRewardClaimed',
        logs: res.receipt.logs,
      });
      const amount = ev?.args.amount ?? r.pending;
      this.stats.rewardsClaimed += amount;
      this.opts.logger?.info('verifier reward claimed', { epoch: epoch.toString(), wei: amount.toString() });
    }
    if ((await getWithdrawable(this.clients, 'rewards', me)) > 0n)
      await withdrawCredits(this.clients, 'rewards');
  }

  start(): void {
    this.stopped = false;
    const tick = () => {
      this.poll()
        .catch((e: unknown) =>
          this.opts.logger?.warn('liveness poll failed; retrying', { message: errorLogText(e) }),
        )
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(tick, this.opts.pollIntervalMs ?? 1000);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Stop polling; a pass in flight issues no further challenge. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
