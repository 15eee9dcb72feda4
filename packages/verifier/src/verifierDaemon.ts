import type { AttestationPolicy } from '@firn/attestation';
import {
  approveNode,
  ChainRevertedError,
  concludeRound,
  createFirnClients,
  expireRound,
  type FirnClients,
  firnRegistryAbi,
  getLogsPaged,
  getRoundClaim,
  requireWallet,
  type FirnDeployment,
  NodeStatus,
  type RegistrationEvent,
  refuseNode,
  type RegistrationWatcher,
  type RoundClaim,
  watchRegistrations,
} from '@firn/chain';
import {
  bytesToHex,
  computePlatformIdHash,
  errorLogText,
  type Hex,
  isFirnError,
  refusalCodeOf,
  refusalNameOf,
  teeTypeName,
} from '@firn/core';
import { join } from 'node:path';
import { toEventSelector } from 'viem';
import { CursorStore } from './cursorStore.ts';
import { LivenessChallenger } from './livenessChallenger.ts';
import { checkMeasurementAllowed } from './measurementAllowList.ts';
import { ProofChecker, type ProofCheckerOptions } from './proofChecker.ts';
import { RoundSlots } from './roundSlots.ts';
import {
  type AppraiseRegistrationOptions,
  appraiseRegistration,
  type RegistrationClaim,
  type RegistrationVerdict,
} from '@firn/attestation';

/**
 * concludeRound refusals that are the expected answer for an open round this verifier voted in:
 * not decided yet, concluded meanwhile, or a registration whose measurement was revoked while
 * pending (verifiers that have not voted refuse it).
 */
const QUIET_CONCLUDE_REFUSALS = new Set([
  'RoundUndecided',
  'NoOpenRound',
  'RoundMismatch',
  'MeasurementRevokedWhilePending',
]);

/**
 * expireRound refusals that are the expected answer for a round past its deadline: the chain's
 * clock is behind ours, its votes decide it (concluded instead), or it closed or changed meanwhile
 * (another verifier expired it first).
 */
const QUIET_EXPIRE_REFUSALS = new Set(['RoundNotExpired', 'RoundDecidable', 'NoOpenRound', 'RoundMismatch']);

/**
 * Vote refusals that mean this verifier has nothing (more) to cast in the round it judged: voted
 * already (e.g. before a restart), the round closed, or another round opened meanwhile (the
 * registration was made again or the keys rotated: decision 1831), or joined after the snapshot.
 */
const SETTLED_VOTE_REFUSALS =
  /AlreadyVoted|NoOpenRound|RoundMismatch|UnexpectedStatus|RoundClosed|NotPending|NotEligibleVoter/i;

/** Rounds judged at once by default (evidence fetch and appraisal; decision 1831). */
export const DEFAULT_VOTE_CONCURRENCY = 8;

/** The key of one round in the daemon's sets and maps (Enclave IDs compared in lower case). */
function roundKey(enclaveId: string, round: number): string {
  return `${enclaveId.toLowerCase()}:${round}`;
}

export interface VerifierLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface VerifierDaemonOptions {
  rpcUrl: string;
  verifierKey: Hex;
  deployment: FirnDeployment;
  policy: AttestationPolicy;
  roots?: AppraiseRegistrationOptions['roots'];
  gpuRoots?: AppraiseRegistrationOptions['gpuRoots'];
  /** DCAP collateral for evidence that carries none or expired collateral (PCS/PCCS or offline). */
  collateralSource?: AppraiseRegistrationOptions['collateralSource'];
  /** SEV-SNP collateral (AMD's KDS or a mirror, with cache): authoritative over what a node attaches. */
  sevSnpCollateral?: AppraiseRegistrationOptions['sevSnpCollateral'];
  /** GPU RIMs (NVIDIA's RIM service or an offline folder) and OCSP client for GPU evidence. */
  gpuRimSource?: AppraiseRegistrationOptions['gpuRimSource'];
  gpuOcsp?: AppraiseRegistrationOptions['gpuOcsp'];
  logger: VerifierLogger;
  pollIntervalMs?: number;
  /** Clock for verification; injectable for tests. */
  now?: () => number;
  /**
   * Quick attempts to fetch a node's evidence within one vote (500 ms * i apart, or the node's
   * Retry-After when longer, within about 10 s) before the round is left for a later sweep. A
   * node that gives no evidence (down, timed out, busy, rate limited) is never refused for it
   * (decision 1742). Default 5.
   */
  fetchAttempts?: number;
  /**
   * Longest wait between later tries of a round whose node gave no evidence, ms: the wait starts
   * at the sweep interval and doubles per failed vote, or is the node's Retry-After when longer
   * (clamped to this). Default 300 000.
   */
  maxRetryIntervalMs?: number;
  fetchEvidence?: AppraiseRegistrationOptions['fetchEvidence'];
  /**
   * Let nodes' endpoints be loopback, private, link-local or other forbidden addresses (default
   * false; `firn verifier start --allow-private-endpoints`): for a devnet or a test whose nodes
   * listen on 127.0.0.1. Otherwise such an endpoint gets no request from this verifier
   * (docs/decisions/1832): a registration that names one in its URL is refused
   * (E_ENDPOINT_FORBIDDEN), and a proved job's result there is unavailable.
   */
  allowPrivateEndpoints?: boolean;
  /** Also re-check every submitted Work Proof and dispute invalid ones (default true). */
  checkProofs?: boolean;
  /**
   * The result-availability check of each proof (docs/decisions/0830-result-availability.md):
   * `checkResults` (default true), `resultRetryMs` (2000), `resultGraceFraction` (0.5 of the window).
   */
  proofChecks?: Pick<
    ProofCheckerOptions,
    | 'checkResults'
    | 'resultRetryMs'
    | 'resultGraceFraction'
    | 'result'
    | 'maxConcurrentResultChecks'
    | 'maxConcurrentResultChecksPerNode'
  >;
  /** Also challenge Active nodes' liveness each epoch and claim this verifier's rewards (default true). */
  challengeLiveness?: boolean;
  /**
   * The liveness challenger's poll period, ms (default: pollIntervalMs, at least 2000). Its duty
   * is once an epoch per node (minutes on a real chain, 15 s on the devnet) and the answer window
   * is the node's, not the verifier's: a sub-second poll only added chain reads.
   */
  livenessPollIntervalMs?: number;
  /** How often to vote in open rounds this verifier missed (e.g. a vote lost to an RPC error), ms (default 5000). */
  sweepIntervalMs?: number;
  /**
   * Rounds judged at the same time (reading the claim, fetching and appraising evidence), default 8.
   * Rounds never wait for one another's votes; a round waiting between tries holds no slot, and a
   * round's first try goes before the retries of rounds whose node did not answer (decision 1831).
   */
  voteConcurrency?: number;
  /**
   * Where the verifier keeps its chain cursors (`verifier-cursors-<address>.json`), so a restart after a
   * crash or an RPC/anvil outage resumes from the last handled block. Absent: in memory only.
   */
  stateDir?: string;
  /** Longest wait between chain polls while the RPC fails, ms (the wait doubles). Default 30 000. */
  maxBackoffMs?: number;
}

const NODE_REGISTERED = toEventSelector(
  firnRegistryAbi.find((x) => x.type === 'event' && x.name === 'NodeRegistered') as Parameters<
    typeof toEventSelector
  >[0],
);

/** Longest the quick retries within one vote may wait in all, ms; beyond it the sweep tries again. */
const QUICK_RETRY_BUDGET_MS = 10_000;

/**
 * True when the node gave no evidence (unreachable, timed out, busy, rate limited): no fact about
 * its enclave, so the daemon votes later instead of refusing (decision 1742).
 */
export function nodeGaveNoEvidence(v: RegistrationVerdict): boolean {
  return !v.approve && v.unavailable !== undefined;
}

/**
 * True when a refusal comes from a service of the verifier itself (PCS/PCCS, RIM service, OCSP
 * responder: E_UNAVAILABLE), which is no fact about the node; the daemon abstains instead of voting.
 */
export function ownServiceUnavailable(v: RegistrationVerdict): boolean {
  return !v.approve && v.reasons.some((r) => r.code === 'E_UNAVAILABLE');
}

/**
 * True when the verifier's own machinery failed while judging (E_INTERNAL: a bug or an unexpected
 * error in its code or libraries, which `refusalOf` no longer passes off as malformed evidence):
 * no fact about the node, so the daemon abstains and tries again later instead of refusing.
 */
export function ownMachineryFailed(v: RegistrationVerdict): boolean {
  return !v.approve && v.reasons.some((r) => r.code === 'E_INTERNAL');
}

/** The verdict of a judgement that threw instead of returning one: the verifier's own failure. */
export function internalFailureVerdict(err: unknown): RegistrationVerdict {
  return {
    approve: false,
    reasonCode: refusalCodeOf('E_INTERNAL'),
    reasons: [{ code: 'E_INTERNAL', message: errorLogText(err) }],
  };
}

export interface VerifierStats {
  approved: number;
  refused: number;
  skipped: number;
}

/**
 * Watches registrations and key rotations, re-verifies each with its own nonce, and votes on
 * chain: approve, or refuse with a reason code. It never trusts the node's own evidence digest,
 * and it checks the registered platform id hash against the attested platform (one machine, one
 * capacity share). Votes are stake-weighted by the contract: approval needs > 2/3 and refusal
 * > 1/3 of the verifier stake snapshotted when the round opened; a verifier that joined after
 * the snapshot cannot vote in it (NotEligibleVoter) and skips.
 */
export class VerifierDaemon {
  /** The daemon's chain clients; closed for writes by stop(), made anew by a later start(). */
  clients: FirnClients;
  /** Aborted by stop(): a write still waiting (an outage) stops, so it holds no account queue. */
  private closing = new AbortController();
  readonly stats: VerifierStats = { approved: 0, refused: 0, skipped: 0 };
  private watcher: RegistrationWatcher | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** A sweep is scanning the registry (the rounds it found are judged beside later sweeps). */
  private sweeping = false;
  /** Rounds this verifier is voting on now (event and sweep never vote twice at once). */
  private readonly inFlight = new Set<string>();
  /** Rounds a sweep is handling now (voting, or concluding one it voted in). */
  private readonly sweepingRounds = new Set<string>();
  /** Slots for judging rounds: bounded, and never held while a round waits (decision 1831). */
  private readonly slots: RoundSlots;
  /** Enclave IDs registered up to block `sweptTo - 1` whose record may still hold an open round. */
  private readonly registered = new Set<Hex>();
  /** Next block the sweep scans for NodeRegistered. */
  private sweptTo: bigint;
  /** Rounds this verifier cannot vote in (joined after the snapshot, round closed): the sweep skips them. */
  private readonly settled = new Set<string>();
  /**
   * Rounds judged without a vote cast (no evidence, the verifier's own service or code failed, a
   * failed read or write): failed tries and the time before which no new try is made (ms since
   * the epoch). Cleared only by a vote cast; pruned by the sweep to the rounds still open.
   */
  private readonly deferred = new Map<string, { failures: number; notBefore: number }>();
  /** The Work Proof re-checker, when enabled. */
  proofs: ProofChecker | undefined;
  /** The liveness challenger and reward claimer, when enabled and the deployment has a reward pool. */
  liveness: LivenessChallenger | undefined;
  private readonly opts: VerifierDaemonOptions;

  constructor(opts: VerifierDaemonOptions) {
    this.opts = opts;
    this.sweptTo = opts.deployment.deployBlock;
    this.clients = this.makeClients();
    this.slots = new RoundSlots(opts.voteConcurrency ?? DEFAULT_VOTE_CONCURRENCY);
  }

  private makeClients(): FirnClients {
    return createFirnClients(this.opts.rpcUrl, this.opts.verifierKey, this.opts.deployment, {
      pollingIntervalMs: this.opts.pollIntervalMs ?? 200,
      signal: this.closing.signal,
    });
  }

  /** The next block the registration watch scans (resumed from the saved cursor after a restart). */
  get nextRegistrationBlock(): bigint | undefined {
    return this.watcher?.nextBlock;
  }

  /** The persisted cursors, when `stateDir` was given. */
  cursors: CursorStore | undefined;

  /** Resume point of a watch: the saved cursor, never before the deployment block. */
  private resumeFrom(name: string): bigint {
    const saved = this.cursors?.get(`${this.opts.deployment.jobMarket.toLowerCase()}:${name}`);
    const deploy = this.opts.deployment.deployBlock;
    return saved !== undefined && saved > deploy ? saved : deploy;
  }

  private saveCursor(name: string, block: bigint): void {
    this.cursors?.set(`${this.opts.deployment.jobMarket.toLowerCase()}:${name}`, block);
  }

  start(): void {
    if (this.closing.signal.aborted) {
      this.closing = new AbortController();
      this.clients = this.makeClients();
    }
    if (this.opts.stateDir !== undefined && this.cursors === undefined)
      // One file per verifier account: verifiers sharing a state folder never read each other's cursor.
      this.cursors = new CursorStore(
        join(
          this.opts.stateDir,
          `verifier-cursors-${requireWallet(this.clients).account.address.toLowerCase()}.json`,
        ),
        (e) => this.opts.logger.warn('could not save the chain cursor', { message: errorLogText(e) }),
      );
    const fromBlock = this.resumeFrom('registrations');
    this.watcher = watchRegistrations(this.clients, {
      fromBlock,
      pollIntervalMs: this.opts.pollIntervalMs ?? 500,
      maxBackoffMs: this.opts.maxBackoffMs ?? 30_000,
      // Each round is judged on its own (decision 1831): the watcher moves on at once, so a node
      // that never answers delays no other round's vote. A vote lost with the process is found by
      // the sweep, which reads every open round from the registry.
      onEvent: (e) => {
        void this.onRegistration(e);
      },
      onProgress: (next) => this.saveCursor('registrations', next),
      onError: (e) =>
        this.opts.logger.warn('registration watch failed; retrying', { message: errorLogText(e) }),
    });
    this.sweepTimer = setInterval(() => void this.sweep(), this.opts.sweepIntervalMs ?? 5000);
    this.opts.logger.info('verifier watching registrations', { registry: this.opts.deployment.registry });
    if (this.opts.checkProofs !== false) {
      this.proofs = new ProofChecker(this.clients, {
        ...this.opts.proofChecks,
        result: {
          ...this.opts.proofChecks?.result,
          allowPrivateEndpoints: this.opts.allowPrivateEndpoints === true,
        },
        pollIntervalMs: this.opts.pollIntervalMs ?? 500,
        maxBackoffMs: this.opts.maxBackoffMs ?? 30_000,
        fromBlock: this.resumeFrom('proofs'),
        onProgress: (cursor) => this.saveCursor('proofs', cursor),
        logger: this.opts.logger,
      });
      this.proofs.start();
    }
    if (this.opts.challengeLiveness !== false && this.opts.deployment.rewards !== undefined) {
      this.liveness = new LivenessChallenger(this.clients, {
        pollIntervalMs: this.opts.livenessPollIntervalMs ?? Math.max(this.opts.pollIntervalMs ?? 500, 2000),
        logger: this.opts.logger,
      });
      this.liveness.start();
    }
  }

  stop(): void {
    // Writes in flight end (E_UNAVAILABLE) instead of waiting out an outage after the daemon is gone.
    this.closing.abort();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.watcher?.stop();
    this.proofs?.stop();
    this.liveness?.stop();
  }

  /**
   * Vote in every open round this verifier has not voted in yet: a vote lost to an RPC failure
   * (the watcher has moved past its event) would otherwise leave a node Pending for good, since
   * approval needs more than 2/3 of the stake. The rounds found are judged side by side within the
   * daemon's slots (decision 1831), each on its own: one that throws is logged and tried again at
   * the next sweep, and never ends the others. Resolves once every round this pass started is done;
   * the next pass may scan meanwhile (a round still being judged is not started twice).
   */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    let rounds: Promise<void>[] = [];
    try {
      const me = requireWallet(this.clients).account.address;
      // Every Enclave ID ever registered (NodeRegistered), scanned incrementally: only the blocks
      // since the last sweep, not the chain's whole history every 5 s. Each one's stored record
      // then says whether a round is open (Pending, or Active with a key rotation pending); the
      // vote needs its status, round and rotation flag, not its published key and endpoint.
      const head = await this.clients.public.getBlockNumber({ cacheTime: 0 });
      // The head's time decides which open rounds are past their deadline (decision 1833).
      const headTime = (await this.clients.public.getBlock({ blockNumber: head })).timestamp;
      if (head >= this.sweptTo) {
        // The last 32 blocks before the cursor again: an RPC whose log index lags the head it
        // reports returns fewer logs, not an error, and a registration there would be lost.
        const back = this.sweptTo - 32n;
        const floor = this.opts.deployment.deployBlock;
        const logs = await getLogsPaged(
          this.clients,
          {
            address: this.opts.deployment.registry,
            topics: [NODE_REGISTERED],
            fromBlock: back > floor ? back : floor,
            toBlock: head,
          },
          'NodeRegistered',
        );
        for (const l of logs)
          if (l.topics[1] !== undefined) this.registered.add(l.topics[1].toLowerCase() as Hex);
        this.sweptTo = head + 1n;
      }
      const open = (
        await Promise.all(
          [...this.registered].map(async (enclaveId) => {
            const r = await this.clients.public.readContract({
              address: this.opts.deployment.registry,
              abi: firnRegistryAbi,
              functionName: 'getNode',
              args: [enclaveId],
              // At the block the scan reached, never an earlier one: an RPC whose state lags would
              // otherwise read a re-registered ID as Exited, and the ID would be dropped after its
              // NodeRegistered was scanned (no later sweep would see it again).
              blockNumber: head,
            });
            const status = r.status as NodeStatus;
            // Refused, exited or slashed: no round can open again without a new NodeRegistered.
            if (
              status === NodeStatus.Rejected ||
              status === NodeStatus.Exited ||
              status === NodeStatus.Slashed
            )
              this.registered.delete(enclaveId);
            return {
              enclaveId,
              status,
              rotationPending: r.rotationPending,
              round: r.round,
              expired: headTime >= BigInt(r.roundEndsAt),
            };
          }),
        )
      ).filter(
        (n) => n.status === NodeStatus.Pending || (n.status === NodeStatus.Active && n.rotationPending),
      );
      // Forget the retry schedule of rounds that are no longer open.
      const stillOpen = new Set(open.map((n) => roundKey(n.enclaveId, n.round)));
      for (const k of this.deferred.keys()) if (!stillOpen.has(k)) this.deferred.delete(k);
      rounds = open.map((n) => this.sweepRound(n, me));
    } catch (err) {
      this.opts.logger.warn('vote sweep failed; retrying', { message: errorLogText(err) });
    } finally {
      this.sweeping = false;
    }
    await Promise.all(rounds);
  }

  /**
   * One open round found by the sweep: conclude it when this verifier has voted in it (it may have
   * passed on the stake that can still vote), else vote. Never throws: a failure is logged and the
   * next sweep tries again.
   */
  private async sweepRound(
    n: { enclaveId: Hex; status: NodeStatus; round: number; expired: boolean },
    me: Hex,
  ): Promise<void> {
    const key = roundKey(n.enclaveId, n.round);
    if (this.sweepingRounds.has(key)) return;
    this.sweepingRounds.add(key);
    try {
      // Past its deadline and undecided: anyone ends it (decision 1833), so a registration behind
      // a silent endpoint no longer holds its Enclave ID and enclave address.
      if (n.expired && (await this.expireIfDue(n.enclaveId, n.round))) return;
      const voted = await this.clients.public.readContract({
        address: this.opts.deployment.registry,
        abi: firnRegistryAbi,
        functionName: 'hasVoted',
        args: [n.enclaveId, n.round, me],
      });
      if (voted) {
        await this.concludeIfDecided(n.enclaveId, n.round);
        return;
      }
      if (this.settled.has(key)) return;
      await this.onRegistration({
        kind: n.status === NodeStatus.Active ? 'keyRotation' : 'registered',
        enclaveId: n.enclaveId,
        round: n.round,
      } as RegistrationEvent);
    } catch (err) {
      this.opts.logger.warn('vote sweep failed for a round; retrying at the next sweep', {
        enclaveId: n.enclaveId,
        round: n.round,
        message: errorLogText(err),
      });
    } finally {
      this.sweepingRounds.delete(key);
    }
  }

  /**
   * Conclude an open round this verifier has voted in when it passes on the stake that can still
   * vote (registry `concludeRound`, decision 1755): once the members that had not voted left or
   * were deactivated, no vote is left to conclude it. The write is simulated first, so a round
   * still undecided costs one eth_call per sweep and no transaction; other refusals are logged and
   * tried again at the next sweep.
   */
  private async concludeIfDecided(enclaveId: Hex, round: number): Promise<void> {
    try {
      const r = await concludeRound(this.clients, { enclaveId, round });
      this.opts.logger.info('concluded a round decided after its last vote', {
        enclaveId,
        round,
        tx: r.hash,
      });
    } catch (err) {
      if (err instanceof ChainRevertedError && QUIET_CONCLUDE_REFUSALS.has(err.errorName ?? '')) return;
      this.opts.logger.warn('concludeRound failed; retrying at the next sweep', {
        enclaveId,
        round,
        message: (err as Error).message,
      });
    }
  }

  /**
   * End a round past its deadline with no decision (registry `expireRound`, decision 1833). The
   * write is simulated first: a round another verifier expired, or whose votes decide it, costs one
   * eth_call and no transaction. True when this call ended the round.
   */
  private async expireIfDue(enclaveId: Hex, round: number): Promise<boolean> {
    try {
      const r = await expireRound(this.clients, { enclaveId, round });
      this.opts.logger.info('expired a round past its deadline', { enclaveId, round, tx: r.hash });
      return true;
    } catch (err) {
      if (err instanceof ChainRevertedError && QUIET_EXPIRE_REFUSALS.has(err.errorName ?? '')) return false;
      this.opts.logger.warn('expireRound failed; retrying at the next sweep', {
        enclaveId,
        round,
        message: (err as Error).message,
      });
      return false;
    }
  }

  /**
   * Judge one registration or rotation round and vote in it; public for tests. Resolves when the
   * vote is cast or left for later, and never rejects: a failure of the verifier's own reads or
   * code is logged, no vote is cast, and the sweep tries the round again.
   */
  async onRegistration(e: RegistrationEvent): Promise<void> {
    const key = roundKey(e.enclaveId, e.round);
    if (this.inFlight.has(key)) return;
    this.inFlight.add(key);
    try {
      await this.vote(e);
    } catch (err) {
      this.stats.skipped++;
      const { failures, retryInMs } = this.deferRound(key);
      this.opts.logger.warn('could not judge a round; trying again at a later sweep', {
        enclaveId: e.enclaveId,
        round: e.round,
        failures,
        retryInMs,
        message: errorLogText(err),
      });
    } finally {
      this.inFlight.delete(key);
    }
  }

  /**
   * Read the round's claim at one block, appraise the node's evidence against it, and vote naming
   * that round (decision 1831): if the registration was made again or the keys rotated meanwhile,
   * the vote reverts RoundMismatch and the new round is judged on its own (its own event, or the
   * sweep), never with this round's verdict.
   */
  private async vote(e: RegistrationEvent): Promise<void> {
    const log = this.opts.logger;
    // A round whose node gave no evidence waits for its next try (no chain read either).
    const key = roundKey(e.enclaveId, e.round);
    const later = this.deferred.get(key);
    if (later !== undefined && Date.now() < later.notBefore) {
      this.stats.skipped++;
      return;
    }
    // A round whose node already failed to answer waits behind every round's first try.
    const tier: 0 | 1 = later === undefined ? 0 : 1;
    // The record and the KEM key of this very round, at one block: what the evidence must bind.
    const claim = await this.slots.run(() => getRoundClaim(this.clients, e.enclaveId), tier);
    if (claim === undefined || claim.round !== e.round || claim.kind !== e.kind) {
      this.stats.skipped++;
      return;
    }
    const attempts = this.opts.fetchAttempts ?? 5;
    // A measurement not allow-listed at the block the claim was read (e.g. revoked while pending)
    // is refused before any evidence is fetched.
    const allow = await checkMeasurementAllowed(this.clients, claim, claim.blockNumber);
    let verdict: RegistrationVerdict = allow.allowed
      ? await this.judge(claim, tier)
      : {
          approve: false,
          reasonCode: allow.reasonCode,
          reasons: [{ code: 'E_MEASUREMENT_NOT_ALLOWED', message: allow.message }],
        };
    const retry = (v: typeof verdict) => nodeGaveNoEvidence(v) || ownServiceUnavailable(v);
    let waited = 0;
    for (let i = 1; i < attempts && allow.allowed && retry(verdict); i++) {
      // The node's Retry-After is honoured; one longer than the quick budget is left to the sweep.
      const wait = Math.max(500 * i, (!verdict.approve && verdict.unavailable?.retryAfterMs) || 0);
      if (waited + wait > QUICK_RETRY_BUDGET_MS) break;
      waited += wait;
      // No slot is held while waiting: other rounds are judged meanwhile.
      await new Promise((r) => setTimeout(r, wait));
      verdict = await this.judge(claim, 1);
    }
    if (
      !verdict.approve &&
      (verdict.unavailable !== undefined || ownServiceUnavailable(verdict) || ownMachineryFailed(verdict))
    ) {
      // No evidence is no fact about the enclave, and neither is a collateral/RIM/OCSP service of
      // the verifier being down nor a failure of its own code: no vote now, a later sweep tries
      // again, backing off (honouring Retry-After) and behind every round's first try (decision
      // 1834). The round stays open; a node that never answers stays Pending (it takes no job)
      // until it answers or its operator withdraws (decision 1742). A node is Active only with a
      // quorum of approvals, so abstaining never admits one.
      const { failures, retryInMs } = this.deferRound(key, verdict.unavailable?.retryAfterMs);
      this.stats.skipped++;
      const fields = {
        enclaveId: e.enclaveId,
        round: e.round,
        failures,
        retryInMs,
        reasons: verdict.reasons.map((r) => `${r.code}: ${r.message}`),
      };
      if (verdict.unavailable !== undefined) log.warn('not voting yet: the node gave no evidence', fields);
      else if (ownMachineryFailed(verdict))
        log.error('not voting: the verifier failed while judging the evidence', fields);
      else log.warn('not voting: a collateral service is unavailable', fields);
      return;
    }
    if (verdict.approve) {
      const f = verdict.appraisal.facts;
      const attested = f ? bytesToHex(computePlatformIdHash(f.teeType, f.platformId)) : undefined;
      if (attested === undefined || attested.toLowerCase() !== claim.platformIdHash.toLowerCase())
        verdict = {
          approve: false,
          reasonCode: refusalCodeOf('E_IDENTITY_MISMATCH'),
          reasons: [
            { code: 'E_IDENTITY_MISMATCH', message: 'platform id hash differs from the attested platform' },
          ],
        };
    }
    // The vote names the round judged: it counts for that round's keys or not at all.
    const ballot = { enclaveId: e.enclaveId, round: claim.round, evidenceDigest: claim.evidenceDigest };
    const rotation = claim.kind === 'keyRotation';
    try {
      if (verdict.approve) {
        try {
          await approveNode(this.clients, ballot);
        } catch (err) {
          // Revoked while Pending: approval is impossible, so refuse and let the round conclude.
          if (!(isFirnError(err) && /MeasurementRevokedWhilePending/.test(err.message))) throw err;
          await refuseNode(this.clients, { ...ballot, reasonCode: refusalCodeOf('E_POLICY_REJECTED') });
          this.deferred.delete(key);
          this.stats.refused++;
          log.warn('refused registration: measurement revoked while pending', {
            enclaveId: e.enclaveId,
            round: claim.round,
          });
          return;
        }
        this.deferred.delete(key);
        this.stats.approved++;
        log.info('approved registration', { enclaveId: e.enclaveId, round: claim.round, rotation });
      } else {
        await refuseNode(this.clients, { ...ballot, reasonCode: verdict.reasonCode });
        this.deferred.delete(key);
        this.stats.refused++;
        log.warn('refused registration', {
          enclaveId: e.enclaveId,
          round: claim.round,
          reason: refusalNameOf(verdict.reasonCode),
          reasons: verdict.reasons.map((r) => `${r.code}: ${r.message}`),
        });
      }
    } catch (err) {
      // A vote already cast (e.g. after a restart), a round that closed, or one replaced by a new
      // round meanwhile (RoundMismatch: the new round is judged on its own) is not an error.
      const msg = isFirnError(err) ? err.message : String(err);
      if (SETTLED_VOTE_REFUSALS.test(msg)) {
        this.settled.add(key);
        this.stats.skipped++;
        if (/RoundMismatch/.test(msg))
          log.info('not voting: the round judged was replaced by a new one', {
            enclaveId: e.enclaveId,
            round: claim.round,
          });
        return;
      }
      // No vote was cast: the round backs off like any abstention (decision 1834).
      const { failures, retryInMs } = this.deferRound(key);
      log.error('vote failed', {
        enclaveId: e.enclaveId,
        round: claim.round,
        failures,
        retryInMs,
        message: msg,
      });
    }
  }

  /**
   * Record that no vote was cast in a round: its next try waits (the sweep interval doubled per
   * failure, at most `maxRetryIntervalMs`, at least `retryAfterMs`) and goes behind every round's
   * first try. Only a vote cast clears the schedule (decision 1834), so no abstention, whatever
   * its reason, makes the round a first try again.
   */
  private deferRound(key: string, retryAfterMs?: number): { failures: number; retryInMs: number } {
    const failures = (this.deferred.get(key)?.failures ?? 0) + 1;
    const max = this.opts.maxRetryIntervalMs ?? 300_000;
    const backoff = (this.opts.sweepIntervalMs ?? 5000) * 2 ** Math.min(failures - 1, 20);
    const retryInMs = Math.min(max, Math.max(backoff, retryAfterMs ?? 0));
    this.deferred.set(key, { failures, notBefore: Date.now() + retryInMs });
    return { failures, retryInMs };
  }

  /**
   * Appraise the claim's evidence in one of the daemon's slots. A throw (the verifier's own code
   * failing, never the node's answer, which appraiseRegistration turns into a verdict) becomes an
   * E_INTERNAL verdict, on which the daemon abstains.
   */
  private async judge(claim: RoundClaim, tier: 0 | 1): Promise<RegistrationVerdict> {
    return this.slots.run(async () => {
      try {
        return await this.appraise({
          enclaveId: claim.enclaveId,
          teeType: teeTypeName(claim.teeType),
          measurement: claim.measurement,
          enclaveAddress: claim.enclaveAddress,
          kemPublicKey: claim.kemPublicKey,
          endpoint: claim.endpoint,
          // The evidence must be made for the operator that registered the Enclave ID (decision
          // 1830): another operator relaying this enclave's node cannot take it over, and a
          // rotation keeps the operator.
          operator: claim.operator,
        });
      } catch (err) {
        return internalFailureVerdict(err);
      }
    }, tier);
  }

  /** Fetch, verify and evaluate a claim's evidence the way a vote does (no vote is cast). */
  appraise(claim: RegistrationClaim) {
    return appraiseRegistration(claim, {
      now: (this.opts.now ?? (() => Math.floor(Date.now() / 1000)))(),
      policy: this.opts.policy,
      ...(this.opts.roots === undefined ? {} : { roots: this.opts.roots }),
      ...(this.opts.gpuRoots === undefined ? {} : { gpuRoots: this.opts.gpuRoots }),
      ...(this.opts.collateralSource === undefined ? {} : { collateralSource: this.opts.collateralSource }),
      ...(this.opts.sevSnpCollateral === undefined ? {} : { sevSnpCollateral: this.opts.sevSnpCollateral }),
      ...(this.opts.gpuRimSource === undefined ? {} : { gpuRimSource: this.opts.gpuRimSource }),
      ...(this.opts.gpuOcsp === undefined ? {} : { gpuOcsp: this.opts.gpuOcsp }),
      ...(this.opts.fetchEvidence === undefined ? {} : { fetchEvidence: this.opts.fetchEvidence }),
      allowPrivateEndpoints: this.opts.allowPrivateEndpoints === true,
    });
  }
}
