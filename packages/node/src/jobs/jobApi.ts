import type { IncomingMessage, ServerResponse } from 'node:http';
import { open, rm, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ChainRevertedError,
  claimJob,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  failJob,
  failJobAttested,
  finalizeJob,
  firnJobMarketAbi,
  type FirnJob,
  getJob,
  JobStatus,
  submitProof,
} from '@firn/chain';
import {
  computeInputCommitment,
  DEFAULT_OUTPUT_BOUND_BYTES,
  FirnError,
  type Hex,
  isFirnError,
  parseWorkProofJson,
  TEE_TYPES,
  type TeeTypeName,
  toErrorBody,
} from '@firn/core';
import { parseSignedJobFailure, type RunJobResult, type SignedJobFailure } from '@firn/enclave';
import { submissionSigner, uploadIntentOf } from '../http/auth.ts';
import { holdWhileServing, ipPrefix, rateLimited, remoteClient, remoteIp } from '../http/limits.ts';
import { closeIfBodyUnread, readJson, requireMediaType, sendJson } from '../http/router.ts';
import type { Logger } from '../logger.ts';
import type { S3ArtifactStore } from '../storage/s3ArtifactStore.ts';
import { ArtifactStore, DEFAULT_MAX_ARTIFACT_BYTES, parseArtifactId } from '../storage/artifactStore.ts';
import { ChainMonitor, isTransientChainError, retryChain } from '../chainMonitor.ts';
import { type JobRecord, JobStore } from '../storage/jobStore.ts';
import { type PublicJobView, publicJobOutput, publicJobView } from './publicJobView.ts';
import { NodeDb } from '../storage/nodeDb.ts';
import { type OutputReservation, QuotaLedger } from '../storage/quota.ts';
import {
  type ArtifactRetention,
  ArtifactSweeper,
  DEFAULT_ARTIFACT_RETENTION,
  MIN_UPLOAD_RETENTION_SECONDS,
  type SweepResult,
} from '../storage/artifactRetention.ts';
import { fetchSharedInputs } from '../storage/sharedInputs.ts';
import { Sema } from 'async-sema';
import type { JobHost } from './jobHost.ts';
import { postSignedDataRecords } from './postSignedData.ts';
import { type StrangerReadLimits, StrangerChainReads } from './strangerChainReads.ts';
import { DEFAULT_MAX_JOBS_PER_REQUESTER, JobAdmission } from './admission.ts';
import { type SessionBounds, SessionService } from './sessionApi.ts';
import {
  failureReason,
  MAX_JOB_BODY_BYTES,
  parseSubmitBody,
  type SubmitBody,
  submissionDigest,
} from './submission.ts';

export interface JobApiOptions {
  rpcUrl: string;
  /** The operator's key: claims jobs, submits proofs, fails jobs. */
  operatorKey: Hex;
  deployment: FirnDeployment;
  logger: Logger;
  maxArtifactBytes?: number;
  pollingIntervalMs?: number;
  /** Cache and budget of chain reads for unauthenticated requests (DEFAULT_STRANGER_READ_LIMITS; decision 1741). */
  strangerReads?: Partial<StrangerReadLimits>;
  /** How long one job may run in the enclave, ms (default DEFAULT_JOB_TIME_LIMIT_MS). */
  enclaveTimeoutMs?: number;
  /**
   * Clock for the host's pre-checks, unix seconds (default: chain time from the ChainMonitor, so
   * a skewed host clock neither refuses good jobs nor claims dead ones).
   */
  now?: () => number;
  /** Jobs run in the enclave at once; more wait, unclaimed, as `accepted` (default 4). */
  maxConcurrentJobs?: number;
  /** Jobs admitted to wait for a slot beyond the running ones; more get 429 (default 16). */
  maxQueuedJobs?: number;
  /**
   * Jobs one requester may have admitted (running or queued) at once; more get 429 with
   * Retry-After (default DEFAULT_MAX_JOBS_PER_REQUESTER; jobs/admission.ts).
   */
  maxJobsPerRequester?: number;
  /** Idle warm sessions are closed (and proved) after this long, ms (default DEFAULT_HOST_SESSION_IDLE_MS). */
  sessionIdleMs?: number;
  /** Session lifetime and per-requester bounds (defaults: DEFAULT_SESSION_BOUNDS, decision 1550). */
  sessionBounds?: Partial<SessionBounds>;
  /** How often the chain head is read (health, chain clock), ms (default 2000). */
  chainCheckIntervalMs?: number;
  /** How often proved jobs are checked for finalization, ms (default 5000). */
  finalizeIntervalMs?: number;
  /**
   * Finalization checks in a row that may find a `proved` job not Proved, Paid or Slashed on chain
   * (a reorg or a chain reset lost the proof) before the record is marked failed with E_CHAIN
   * (default DEFAULT_LOST_PROOF_CHECKS).
   */
  lostProofChecks?: number;
  /** Which jobs this operator takes at all (defaults: DEFAULT_JOB_POLICY). */
  jobPolicy?: Partial<JobPolicy>;
  /**
   * A shared S3-compatible store (`--artifact-store s3://...`): inputs missing here are fetched
   * from it and checked against their id; uploads and outputs are copied to it.
   */
  sharedArtifacts?: S3ArtifactStore;
  /** How long stored artifacts are kept (defaults: DEFAULT_ARTIFACT_RETENTION, decision 1603). */
  retention?: Partial<ArtifactRetention>;
  /** How often expired artifacts are swept (on the finalizer's tick), ms (default 60,000). */
  artifactSweepIntervalMs?: number;
}

/** How often the artifact sweeper runs unless configured, ms. */
export const DEFAULT_ARTIFACT_SWEEP_INTERVAL_MS = 60_000;

/**
 * How long a submission holds the inputs it checked from the sweeper, seconds: its job record
 * names them once written (admission, the chain reads, the enclave's pre-flight come first).
 */
const SUBMISSION_HOLD_SECONDS = 3600;

/**
 * Bytes of the requester's and the node's storage quotas a job that declares no output bound
 * reserves before it is claimed, so a node that cannot store even one output block refuses the job
 * at once (E_QUOTA_EXCEEDED) instead of claiming, running and failing it: one STORAGE_BLOCK_BYTES
 * block (what the smallest output is charged, chargedBytes; decision 1675). Such a job's outputs
 * larger than it are still checked when stored; a job that declares `maxOutputBytes` reserves that
 * instead, and the enclave holds its outputs to it (decision 1690).
 */
export const MIN_OUTPUT_ALLOWANCE_BYTES = DEFAULT_OUTPUT_BOUND_BYTES;

/**
 * The bytes a job submission reserves for its outputs before the claim: its declared bound, else
 * MIN_OUTPUT_ALLOWANCE_BYTES (decision 1690).
 */
export function outputBoundOf(body: Pick<SubmitBody, 'maxOutputBytes'>): number {
  return body.maxOutputBytes ?? MIN_OUTPUT_ALLOWANCE_BYTES;
}

/** How quota refusals name a job's output reservation. */
function outputsWhat(body: Pick<SubmitBody, 'maxOutputBytes'>): string {
  return body.maxOutputBytes === undefined
    ? "the job's outputs (at least one storage block, reserved before the claim)"
    : "the job's outputs (its declared maxOutputBytes, reserved before the claim)";
}

/**
 * The operator's terms for taking a job (docs/api.md, "Job policy"). A job outside them is
 * refused at submission (E_POLICY_REJECTED, 403) before anything is recorded or claimed.
 */
export interface JobPolicy {
  /** Smallest escrow the node claims a job for, wei. Default 1 (any paid job; raise it in production). */
  minEscrowWei: bigint;
  /**
   * Smallest time the node must have to run a job once claimed, seconds: the job's claim timeout
   * and the time left to its deadline must both be at least this. Default 60.
   */
  minClaimSeconds: number;
}

export const DEFAULT_JOB_POLICY: JobPolicy = Object.freeze({ minEscrowWei: 1n, minClaimSeconds: 60 });

/** How long one job may run in the enclave unless configured (JobApiOptions.enclaveTimeoutMs), ms. */
export const DEFAULT_JOB_TIME_LIMIT_MS = 10 * 60_000;
/**
 * Finalization checks in a row (finalizeIntervalMs apart: 5 minutes at the default 5 s) in which
 * the chain may not show a job this node proved before the node stops waiting for it.
 */
export const DEFAULT_LOST_PROOF_CHECKS = 60;
/** Jobs waiting for an enclave slot beyond the running ones, unless configured. */
export const DEFAULT_MAX_QUEUED_JOBS = 16;

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** How long the enclave's pre-flight of one request may take, ms (no input is read). */
export const PREFLIGHT_TIMEOUT_MS = 30_000;

/** Interval of the SSE keep-alive comment on GET /v1/jobs/{id}/events, ms. */
export const SSE_HEARTBEAT_MS = 15_000;
/**
 * Sealed output bytes one GET /v1/jobs/{id}/result answer inlines (base64), at most, over all its
 * outputs: outputs are inlined in order while they fit, and every other one is listed without
 * `sealed` for GET /v1/artifacts/{id}, which streams it with backpressure. The job-status and
 * result routes are public (job ids are on chain), so an answer's work (read, base64, JSON) must
 * stay small whatever the output sizes: a training job's model is megabytes (decision 1744).
 */
export const MAX_INLINE_RESULT_BYTES = 64 * 1024;
/** Largest single output inlined in a result answer, bytes (the whole answer's budget). */
export const MAX_INLINE_OUTPUT_BYTES = MAX_INLINE_RESULT_BYTES;

/**
 * Output bytes inlined in result answers not yet sent, at most (all clients together): beyond it,
 * outputs are listed without `sealed` and fetched by GET /v1/artifacts/{id}, which streams with
 * backpressure, so readers that do not read cannot make the node hold many whole answers.
 */
export const MAX_INLINE_BYTES_IN_FLIGHT = 24 * 1024 * 1024;

/** Most enclave-signed failures kept at once (one per running job in practice). */
const MAX_KEPT_ATTESTED_FAILURES = 1024;

/**
 * The node's job API (docs/api.md): artifact upload and download, encrypted job submission, job
 * status, encrypted progress events and results. The host checks the job on chain, claims it,
 * runs it in the enclave, stores the sealed outputs and submits the enclave's proof, or fails
 * the job on chain with the enclave's error code. It never sees a key or a plaintext.
 */
export class JobService {
  readonly artifacts: ArtifactStore;
  readonly jobs: JobStore;
  readonly quota: QuotaLedger;
  /** Deletes expired artifacts and releases their charge (storage/artifactRetention.ts). */
  readonly sweeper: ArtifactSweeper;
  private lastSweepAt = 0;
  /** Whether the last sweep stopped at its time budget with work left. */
  private sweepBacklog = false;
  readonly clients: FirnClients;
  /** Aborted by stop(): a chain write still waiting (an outage) ends instead of outliving the service (decision 1762). */
  private readonly closing = new AbortController();
  readonly db: NodeDb;
  /** Chain reachability and chain time (health, proof times, pre-checks). */
  readonly chainMonitor: ChainMonitor;
  /** Cache and budget of the chain reads made for unauthenticated requests (decision 1741). */
  readonly strangerReads: StrangerChainReads;
  private readonly listeners = new Map<Hex, Set<() => void>>();
  private chainQueue: Promise<unknown> = Promise.resolve();
  private readonly running = new Set<Promise<void>>();
  /** Open event streams by remote IP (HttpLimits.maxEventStreamsPerIp). */
  private readonly streamsPerIp = new Map<string, number>();
  /** Bounded concurrency: a job is claimed only once it has an enclave slot. */
  private readonly jobSlots: Sema;
  /** Jobs admitted and not over (waiting for a slot or running). */
  /** Jobs admitted in all and per requester (jobs/admission.ts). */
  readonly admission: JobAdmission;
  private finalizer: NodeJS.Timeout | undefined;
  /** Proved jobs the chain did not show as proved, with the checks in a row that found so. */
  private readonly proofMissing = new Map<Hex, number>();
  /**
   * Failures the enclave signed for running jobs (decision 1595), taken by `failOnChain`. Bounded
   * by the running jobs (an entry is kept only for a job in `running`), capped against a flood.
   */
  private readonly attestedFailures = new Map<Hex, SignedJobFailure>();
  private stopped = false;
  readonly sessions: SessionService;
  /** The terms in force (options over DEFAULT_JOB_POLICY). */
  readonly policy: JobPolicy;

  constructor(
    readonly node: JobHost,
    readonly opts: JobApiOptions,
  ) {
    this.artifacts = new ArtifactStore(node.opts.dataDir);
    this.db = node.db ?? new NodeDb(node.opts.dataDir);
    this.jobs = new JobStore(this.db);
    this.clients = createFirnClients(opts.rpcUrl, opts.operatorKey, opts.deployment, {
      pollingIntervalMs: opts.pollingIntervalMs ?? 200,
      signal: this.closing.signal,
    });
    this.strangerReads = new StrangerChainReads(opts.strangerReads);
    this.chainMonitor = new ChainMonitor(this.clients.public, {
      logger: opts.logger,
      intervalMs: opts.chainCheckIntervalMs ?? 2000,
    });
    // Each stored artifact's charge is recorded in the database, so retention can release it.
    this.quota = new QuotaLedger(node.opts.dataDir, this.artifacts.dir, node.quotas, {
      book: this.db,
      now: () => this.now(),
    });
    this.sweeper = new ArtifactSweeper(this.artifacts, this.quota, this.db, {
      ...DEFAULT_ARTIFACT_RETENTION,
      ...definedOnly(opts.retention),
    });
    this.policy = { ...DEFAULT_JOB_POLICY, ...opts.jobPolicy };
    this.admission = new JobAdmission(
      Math.max(1, opts.maxConcurrentJobs ?? 4) + (opts.maxQueuedJobs ?? DEFAULT_MAX_QUEUED_JOBS),
      Math.max(1, opts.maxJobsPerRequester ?? DEFAULT_MAX_JOBS_PER_REQUESTER),
    );
    this.sessions = new SessionService(this, opts.sessionIdleMs, opts.sessionBounds);
    this.jobSlots = new Sema(Math.max(1, opts.maxConcurrentJobs ?? 4));
    // The enclave keeps chain time too (proof times): every head read is passed in.
    this.chainMonitor.onTime((t) => {
      void this.node.supervisor.call('setChainTime', { chainTime: t }, 2000).catch(() => undefined);
    });
    node.supervisor.on('event', (name: string, data: unknown) => {
      if (name === 'jobFailure') {
        this.keepAttestedFailure(data);
        return;
      }
      if (name !== 'jobEvent') return;
      const d = data as { jobId?: unknown; message?: unknown } | null;
      if (typeof d?.jobId !== 'string' || typeof d.message !== 'string') return;
      const id = d.jobId.toLowerCase() as Hex;
      // A listener must never throw (it would be an uncaught exception in the host).
      try {
        // `accepted`: the pre-flight's refusal, sealed to the requester, is its only signed word
        // that the job failed (the host's `end` is not final to it, decision 1581).
        const status = this.jobs.get(id)?.status;
        if (!/^0x[0-9a-f]{64}$/.test(id) || (status !== 'running' && status !== 'accepted')) return;
        if (this.db.appendEvent(id, d.message) !== undefined) this.notify(id);
      } catch (e) {
        // A full disk loses the event (the requester sees the gap in seq and in its channel).
        opts.logger.warn('progress event not stored', { jobId: id, code: (e as FirnError).code });
      }
    });
  }

  /**
   * Start the background work: the chain monitor, the recovery of jobs a previous run left
   * unfinished, and the finalizer of proved jobs. Never throws (failures are logged and retried).
   */
  async start(): Promise<void> {
    await this.chainMonitor.start();
    this.recover();
    const every = this.opts.finalizeIntervalMs ?? 5000;
    const tick = () => {
      if (this.stopped) return;
      this.finalizer = setTimeout(() => {
        void this.finalizeDue()
          .catch(() => undefined)
          .then(() => this.sweepIfDue())
          .finally(tick);
      }, every);
      this.finalizer.unref();
    };
    tick();
  }

  /**
   * Stop the background work (chain monitor, finalizer, session sweeper) and close the chain
   * clients: a write still waiting for its receipt ends E_UNAVAILABLE (the job's record keeps its
   * state; a restarted node reconciles it from the chain). A stopped service is not started again.
   */
  stop(): void {
    this.stopped = true;
    this.closing.abort();
    clearTimeout(this.finalizer);
    this.chainMonitor.stop();
    this.sessions.stopSweeper();
  }

  private now(): number {
    return (this.opts.now ?? (() => this.chainMonitor.now()))();
  }

  /**
   * The sweeper's pass, once per artifactSweepIntervalMs (on the finalizer's tick), and at every
   * tick while the last one stopped at its time budget with work left: a backlog of expired
   * records drains at one budget (50 ms) per tick (5 s), not per minute (decision 1640).
   */
  private sweepIfDue(): void {
    const every = this.opts.artifactSweepIntervalMs ?? DEFAULT_ARTIFACT_SWEEP_INTERVAL_MS;
    if (this.stopped || (!this.sweepBacklog && Date.now() - this.lastSweepAt < every)) return;
    this.lastSweepAt = Date.now();
    this.sweepBacklog = this.sweepArtifacts().more === true;
  }

  /**
   * One pass of the artifact sweeper at `now` (unix s, default the node's clock): deletes the
   * artifacts whose retention ended (decision 1603) and releases their charge. Never throws
   * (a failure is logged; the next pass goes on).
   */
  sweepArtifacts(now = this.now()): SweepResult {
    try {
      const r = this.sweeper.sweep(now);
      if (r.deleted > 0)
        this.opts.logger.info('expired artifacts deleted', { deleted: r.deleted, freedBytes: r.freedBytes });
      return r;
    } catch (e) {
      this.opts.logger.warn('artifact sweep failed; will retry', {
        code: isFirnError(e) ? e.code : 'E_INTERNAL',
      });
      return { checked: 0, deleted: 0, freedBytes: 0 };
    }
  }

  private safeUpdate(jobId: Hex, patch: Partial<JobRecord>): void {
    const { status } = patch;
    if (status === 'proved' || status === 'finalized' || status === 'failed') {
      const createdAt = this.jobs.get(jobId)?.createdAt;
      this.node.metrics?.jobOutcome(status, createdAt === undefined ? undefined : this.now() - createdAt);
    }
    try {
      this.jobs.update(jobId, patch, this.now());
    } catch (e) {
      this.opts.logger.error('job record not updated', {
        jobId,
        status: patch.status,
        code: isFirnError(e) ? e.code : 'E_INTERNAL',
      });
    }
  }

  /** Jobs admitted and not yet over (waiting or running). */
  get activeJobs(): number {
    return this.admission.active;
  }

  /**
   * Admission control: a job (or session) is admitted only while fewer than maxConcurrentJobs +
   * maxQueuedJobs are active and, with `requester`, fewer than maxJobsPerRequester of them are
   * that requester's. Raises E_RATE_LIMITED (429, Retry-After) otherwise.
   */
  admit(requester?: string): void {
    this.admission.check(requester);
  }

  private notify(id: Hex): void {
    for (const f of this.listeners.get(id) ?? []) f();
  }

  /** Chain writes from one operator account go one at a time, so nonces never collide. */
  private chain<T>(f: () => Promise<T>): Promise<T> {
    const run = this.chainQueue.then(f, f);
    this.chainQueue = run.catch(() => undefined);
    return run;
  }

  /**
   * The host's pre-checks before claiming a job (checkAndHold), its hold left to lapse after
   * SUBMISSION_HOLD_SECONDS. Returns the on-chain job; raises as checkAndHold.
   */
  async checkOpenJob(body: Pick<SubmitBody, 'jobId' | 'inputs'>, onChain?: FirnJob): Promise<FirnJob> {
    return (await this.checkAndHold(body, onChain)).job;
  }

  /**
   * The host's pre-checks before claiming a job (for jobs and sessions): inputs stored here, the
   * job Open on chain, for this TEE type and measurement, before its deadline, and with this input
   * commitment, within the operator's terms. Once all passed the inputs are held from the sweep
   * (at most SUBMISSION_HOLD_SECONDS) until the caller's job record names them: the caller calls
   * `releaseHold` in a `finally` once that record is written or the request is refused, so no
   * request the node refuses extends any artifact's life. Returns the on-chain job and that
   * release; raises E_NOT_FOUND, E_CONFLICT, E_JOB_INVALID, E_POLICY_REJECTED (nothing held then).
   */
  async checkAndHold(
    body: Pick<SubmitBody, 'jobId' | 'inputs'>,
    onChain?: FirnJob,
  ): Promise<{ job: FirnJob; releaseHold: () => void }> {
    const job = onChain ?? (await getJob(this.clients, body.jobId));
    await this.requireInputs(body.inputs, job.requester);
    this.checkJobTerms(job, body.inputs);
    // The inputs stay until the job record names them (then for as long as the job lives). Held
    // only once every check passed, with no await since the inputs were found stored: a refused
    // submission (a job not Open, other inputs than its commitment) must hold nothing, or
    // re-sending it every hour would keep any stored artifact, and its owner's quota, for good.
    const releaseHold = this.sweeper.hold(body.inputs, this.now() + SUBMISSION_HOLD_SECONDS);
    return { job, releaseHold };
  }

  /**
   * The inputs `ids` are stored here: those missing are first fetched from the shared artifact
   * store when there is one (charged to `requester`). The check is the last step (no await after
   * it), so a caller that writes the record naming them with no await in between needs no hold.
   * Raises E_NOT_FOUND naming the first input missing, or what fetchSharedInputs raises.
   */
  async requireInputs(ids: readonly Hex[], requester: string): Promise<void> {
    await this.fetchShared(ids, requester);
    for (const id of ids)
      if (!this.artifacts.has(id))
        throw new FirnError('E_NOT_FOUND', `input artifact ${id} is not stored here`);
  }

  /**
   * The chain-side checks of a job this node would claim, no I/O: Open, for this TEE type and
   * measurement, before its deadline (host clock), committing to exactly `inputs`, and within the
   * operator's terms (checkPolicy). Raises E_CONFLICT (not Open), E_JOB_INVALID, E_POLICY_REJECTED.
   */
  checkJobTerms(job: FirnJob, inputs: readonly Hex[]): void {
    const identity = this.node.identity!;
    if (job.status !== JobStatus.Open)
      throw new FirnError('E_CONFLICT', `job is ${JobStatus[job.status]}, not Open`);
    const tee = TEE_TYPES[identity.teeType as TeeTypeName];
    if ((job.teeTypeMask & (1 << tee)) === 0)
      throw new FirnError('E_JOB_INVALID', 'job does not accept this TEE type');
    if (
      job.allowedMeasurements.length > 0 &&
      !job.allowedMeasurements.some((m) => same(m, identity.measurement))
    )
      throw new FirnError('E_JOB_INVALID', 'job does not accept this measurement');
    if (BigInt(this.now()) >= job.deadline) throw new FirnError('E_JOB_INVALID', 'job deadline has passed');
    if (!same(computeInputCommitment([...inputs]), job.inputCommitment))
      throw new FirnError('E_JOB_INVALID', 'inputs do not match the on-chain input commitment');
    this.checkPolicy(job);
  }

  /**
   * The operator's terms (JobPolicy): escrow at least `minEscrowWei`, and at least
   * `minClaimSeconds` both in the job's claim timeout and before its deadline (host clock), so
   * the node never claims a job it has no time to run. Raises E_POLICY_REJECTED (403).
   */
  checkPolicy(job: Pick<FirnJob, 'escrow' | 'claimTimeout' | 'deadline'> & { maxWorkUnits?: bigint }): void {
    const { minEscrowWei, minClaimSeconds } = this.policy;
    if (job.escrow < minEscrowWei)
      throw new FirnError(
        'E_POLICY_REJECTED',
        `this node takes jobs with an escrow of at least ${minEscrowWei} wei (job has ${job.escrow})`,
        { details: { minEscrowWei: minEscrowWei.toString() } },
      );
    // With a work budget the node earns escrow * workUnits / maxWorkUnits (decision 0830), and
    // it knows the work units only after running: each unit of the budget must pay the minimum,
    // or a requester posts a large escrow with a huge budget and gets the work for nothing.
    const budget = job.maxWorkUnits ?? 0n;
    if (budget > 0n && job.escrow < minEscrowWei * budget)
      throw new FirnError(
        'E_POLICY_REJECTED',
        `this node takes budgeted jobs paying at least ${minEscrowWei} wei per work unit (job pays ${job.escrow} wei for ${budget} units)`,
        { details: { minEscrowWei: minEscrowWei.toString() } },
      );
    const min = BigInt(minClaimSeconds);
    if (job.claimTimeout < min)
      throw new FirnError(
        'E_POLICY_REJECTED',
        `the job's claim timeout (${job.claimTimeout} s) is under this node's minimum of ${minClaimSeconds} s; post it with a longer one`,
        { details: { minClaimSeconds } },
      );
    if (job.deadline - BigInt(this.now()) < min)
      throw new FirnError(
        'E_POLICY_REJECTED',
        `the job's deadline leaves under this node's minimum of ${minClaimSeconds} s to run it`,
        { details: { minClaimSeconds } },
      );
  }

  /**
   * Ask the enclave to open and check a request before anything is claimed (`preflightJob` or
   * `preflightSession` in packages/enclave/src/jobs): a request that does not decrypt, does not
   * match the chain, or whose grants fail is refused here, for no gas. Raises the enclave's code.
   */
  preflight(
    method: 'preflightJob' | 'preflightSession',
    body: SubmitBody,
    onChain: { workloadHash: Hex; inputCommitment: Hex },
  ): Promise<unknown> {
    return this.node.supervisor.call(
      method,
      {
        jobId: body.jobId,
        enc: body.enc,
        request: body.ciphertext,
        inputPaths: Object.fromEntries(body.inputs.map((id) => [id, this.artifacts.path(id)])),
        onChain,
        domain: { chainId: this.opts.deployment.chainId, jobMarket: this.opts.deployment.jobMarket },
        // The bound the node reserved: the enclave refuses a request that declares another.
        ...(body.maxOutputBytes === undefined ? {} : { maxOutputBytes: body.maxOutputBytes }),
      },
      PREFLIGHT_TIMEOUT_MS,
    );
  }

  /** Give back what a pre-flight kept in the enclave (the claim failed); best effort. */
  releasePreflight(jobId: Hex): Promise<void> {
    return this.node.supervisor
      .call('releasePreflight', { jobId })
      .then(() => undefined)
      .catch(() => undefined);
  }

  /** A chain write in the operator's serial queue (shared with the session API). */
  chainWrite<T>(f: () => Promise<T>): Promise<T> {
    return this.chain(f);
  }

  /** What a requester's signatures to this node are scoped to (packages/crypto/src/nodeAuth.ts). */
  requestScope() {
    return {
      chainId: this.opts.deployment.chainId,
      jobMarket: this.opts.deployment.jobMarket,
      enclaveId: this.node.identity!.enclaveId,
    };
  }

  /**
   * Check that a job or session submission is signed by the job's on-chain requester: 401
   * without a valid signature, 403 for a signer that never sent a transaction (it posted no job),
   * 404 for a job the chain does not know, 403 for any other signer, 429 when the chain reads made
   * for strangers are over budget. Those reads are cached ("nothing there" for 2 s; decision
   * 1741); the job read of a signer known to have sent a transaction spends that signer's budget
   * only; the requester's own job is read fresh. Runs before anything is recorded, so a
   * stranger's submission changes nothing. Returns the job.
   */
  async authorizeSubmission(
    req: IncomingMessage,
    route: 'POST /v1/jobs' | 'POST /v1/sessions',
    body: SubmitBody,
  ): Promise<FirnJob> {
    const signer = submissionSigner(req, route, this.requestScope(), body);
    // A node that cannot reach its chain cannot claim or prove: refuse at once (503), not after
    // the RPC's own timeouts.
    await this.chainMonitor.requireUp(route === 'POST /v1/jobs' ? 'take jobs' : 'open sessions');
    const unreachable = (e: unknown): never => {
      if (!isTransientChainError(e)) throw e;
      throw new FirnError(
        'E_UNAVAILABLE',
        'the node cannot reach its chain RPC to check this job; retry later or use another node',
        { cause: e, details: { retryAfterSeconds: 5 } },
      );
    };
    // Until the signer is known to be the job's requester, every chain read is a stranger's: cached
    // and budgeted (decision 1741). A job's requester posted it, so it has sent a transaction.
    // A signer once seen to have sent one stays known (nonces only grow; decision 1741, second
    // amendment): a returning requester is never a stranger again, whatever junk spends the
    // node's stranger budget meanwhile.
    const ip = remoteIp(req);
    const sent =
      this.strangerReads.isKnownSender(signer) ||
      (await this.strangerReads
        .read(
          `sent:${signer.toLowerCase()}`,
          ip,
          async () =>
            (await this.clients.public.getTransactionCount({ address: signer, blockTag: 'latest' })) > 0,
          (v) => v,
        )
        .catch(unreachable));
    if (sent) this.strangerReads.rememberSender(signer);
    if (!sent)
      throw new FirnError(
        'E_FORBIDDEN',
        `the signer ${signer} has sent no transaction on chain, so it posted no job: only the requester of a job on chain may submit it`,
      );
    const jobKey = `job:${body.jobId.toLowerCase()}`;
    const known = this.strangerReads.peek<string | null>(jobKey);
    const refuse = (requester: string | null): void => {
      if (requester === null) throw new FirnError('E_NOT_FOUND', 'no such job on chain');
      if (!same(signer, requester))
        throw new FirnError('E_FORBIDDEN', 'only the requester of this job on chain may submit it');
    };
    if (known !== undefined) refuse(known);
    let fresh: FirnJob | undefined;
    if (known === undefined)
      await this.strangerReads
        .read(
          jobKey,
          // The signer has sent a transaction (any: a key costs its owner at least one, and each
          // of a requester's jobs a postJob): its job reads spend its own budget, never the
          // client's or the node's stranger budget, so junk from fresh keys cannot starve it and a
          // gateway serving many requesters is not capped (decision 1741, amended). Many keys
          // with one transaction each get that budget each: one transaction per key is the cost.
          { signer },
          async () => {
            fresh = await getJob(this.clients, body.jobId);
            return fresh.status === JobStatus.None ? null : (fresh.requester as string);
          },
          (requester) => requester !== null,
        )
        .then(refuse)
        .catch(unreachable);
    // The requester itself: its job's state is read fresh (a cached answer says only who posted it).
    const job = fresh ?? (await getJob(this.clients, body.jobId).catch(unreachable));
    refuse(job.status === JobStatus.None ? null : job.requester);
    return job;
  }

  /** Host clock, unix seconds. */
  clock(): number {
    return this.now();
  }

  /**
   * PUT /v1/artifacts: 415 unless application/octet-stream; 413 over the size cap; 401 without a
   * valid signed upload intent; 403 when the uploader holds no balance at the latest block (read
   * cached and budgeted, decision 1741: 429 over budget); 429 when the uploader or the node has
   * too many uploads in flight; 413 (E_QUOTA_EXCEEDED) over the
   * uploader's or the node's disk quota. Only then is the body streamed to disk, and it must hash
   * to the artifact id of the intent.
   */
  async upload(req: IncomingMessage, res: ServerResponse): Promise<undefined> {
    await this.node.rateLimiter.take(remoteClient(req));
    requireMediaType(req, 'application/octet-stream');
    const limit = this.opts.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT_BYTES;
    const lengthText = req.headers['content-length'];
    if (lengthText === undefined || !/^\d{1,16}$/.test(lengthText))
      throw new FirnError('E_INVALID_INPUT', 'an upload needs its Content-Length (no chunked bodies)');
    const declared = Number(lengthText);
    if (declared > limit)
      throw new FirnError('E_TOO_LARGE', `artifact is ${declared} bytes, over the limit of ${limit}`, {
        details: { size: declared, limit },
      });
    const intent = uploadIntentOf(req, this.requestScope(), this.now());
    // Any key signs an intent: the balance read is a stranger's, cached and budgeted (decision
    // 1741); for an uploader known to have sent a transaction it spends that uploader's own
    // budget, as its job reads do (second amendment).
    const funded = await this.strangerReads
      .read(
        `funded:${intent.uploader.toLowerCase()}`,
        this.strangerReads.isKnownSender(intent.uploader) ? { signer: intent.uploader } : remoteIp(req),
        async () =>
          (await this.clients.public.getBalance({ address: intent.uploader, blockTag: 'latest' })) > 0n,
        (v) => v,
      )
      .catch((e: unknown) => {
        if (isFirnError(e) && e.code === 'E_RATE_LIMITED') throw e;
        throw new FirnError(
          'E_UNAVAILABLE',
          'the node cannot reach its chain RPC to check the uploader; retry later or use another node',
          { cause: e, details: { retryAfterSeconds: 5 } },
        );
      });
    if (!funded)
      throw new FirnError(
        'E_FORBIDDEN',
        'uploads are taken only from an address that holds a balance on chain',
      );
    if (this.artifacts.has(intent.artifactId)) {
      // Already stored (by anyone): nothing is written or charged; the body is discarded. Its
      // retention is not restarted (decision 1603): a signed intent costs nothing to send, so a
      // re-upload that kept an artifact would keep its owner's quota taken for good. The body is
      // never read: the answer closes the connection (a kept-alive one would have Node read and
      // discard up to the declared size, 1 GiB, outside every upload slot), and the request is
      // destroyed once the answer is out.
      const headers = closeIfBodyUnread(req, res, {});
      if (!req.complete)
        res.once('close', () => {
          if (!req.complete) req.destroy();
        });
      sendJson(res, 200, { id: intent.artifactId, size: this.artifacts.size(intent.artifactId) }, headers);
      return undefined;
    }
    // Evictable (decision 1660): a newcomer finding every slot held takes this one back if it is
    // the slowest of its network and under the kept rate; it is answered 429 and closed then.
    const start = req.socket.bytesRead ?? 0;
    let evicted: FirnError | undefined;
    const releaseSlot = this.node.uploadSlots.tryAcquire(intent.uploader, ipPrefix(remoteIp(req)), {
      received: () => (req.socket.bytesRead ?? 0) - start,
      evict: (reason) => {
        if (req.complete || res.headersSent) return false;
        evicted = rateLimited(reason, 5);
        // Answered now, before the rest of the body; once the answer is out the body stream is
        // destroyed, which ends the read below (the server, done with this request, would
        // close the socket without ending it: the temp file and the reservation would stay).
        answerEvicted(res, evicted);
        res.once('close', () => {
          if (!req.complete) req.destroy();
        });
        return true;
      },
    });
    try {
      const reservation = this.quota.reserve(intent.uploader, declared);
      try {
        const r = await this.artifacts.put(req as AsyncIterable<Uint8Array>, declared, intent.artifactId);
        if (evicted) throw evicted;
        reservation.commit(r.created, r.size, r.id);
        this.opts.logger.info('artifact stored', { artifactId: r.id, size: r.size, created: r.created });
        await this.copyToShared(r.id);
        sendJson(res, r.created ? 201 : 200, { id: r.id, size: r.size });
      } catch (e) {
        reservation.release();
        throw evicted ?? e;
      }
    } finally {
      releaseSlot();
    }
    return undefined;
  }

  /**
   * Inputs not stored here are copied from the shared store, each checked against its id and
   * charged to the job's requester against the disk quotas (storage/sharedInputs.ts).
   */
  private async fetchShared(ids: readonly Hex[], requester: string): Promise<void> {
    const shared = this.opts.sharedArtifacts;
    if (!shared) return;
    await fetchSharedInputs(shared, this.artifacts, this.quota, ids, requester, this.opts.maxArtifactBytes);
  }

  /** Copy a stored artifact to the shared store; a failure is logged, the local copy stays. */
  private async copyToShared(id: Hex): Promise<void> {
    const shared = this.opts.sharedArtifacts;
    if (!shared) return;
    try {
      await shared.putFromLocal(this.artifacts, id);
    } catch (e) {
      this.opts.logger.warn('shared artifact store refused a copy', {
        artifactId: id,
        code: (e as { code?: string }).code,
      });
    }
  }

  /**
   * GET /v1/artifacts/{id}: the stored bytes, streamed from one open file descriptor (its size
   * from the same descriptor, so a sweep between the two cannot make them disagree) through
   * `stream.pipeline`, which destroys the file stream, closing its descriptor and freeing its
   * buffer, when the client hangs up or either side fails. HEAD (`head`) answers the headers
   * alone and reads nothing. Raises E_NOT_FOUND for an artifact not stored here.
   */
  async download(idText: string, res: ServerResponse, head = false): Promise<undefined> {
    const id = parseArtifactId(idText);
    if (head) {
      const size = this.artifacts.size(id);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      res.end();
      return undefined;
    }
    const { stream, size } = await this.artifacts.open(id);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    await serveStream(stream, res);
    return undefined;
  }

  /**
   * POST /v1/jobs. `json`: the body already read (rate limited, size-capped and parsed) by the
   * HTTP layer; absent, it is read here.
   */
  async submit(req: IncomingMessage, res: ServerResponse, json?: unknown): Promise<undefined> {
    if (json === undefined) await this.node.rateLimiter.take(remoteClient(req));
    const body = parseSubmitBody(json ?? (await readJson(req, MAX_JOB_BODY_BYTES)));
    const onChain = await this.authorizeSubmission(req, 'POST /v1/jobs', body);
    // A retried submission (its answer was lost) is the same job: same answer, never a second run.
    const digest = submissionDigest(body);
    const answerExisting = (): boolean => {
      const existing = this.jobs.get(body.jobId);
      if (!existing) return false;
      if (existing.requestDigest !== digest)
        throw new FirnError('E_CONFLICT', 'this job was already submitted here with another request');
      sendJson(res, 202, publicJobView(existing));
      return true;
    };
    if (answerExisting()) return undefined;
    // A job whose outputs cannot fit is refused on the request (413 E_QUOTA_EXCEEDED naming the
    // quota, what is used and what is needed), not accepted and failed later (decision 1690). The
    // reservation before the claim checks again: a race with other uploads and jobs meanwhile.
    this.quota.check(onChain.requester, outputBoundOf(body), outputsWhat(body));
    await this.fetchShared(body.inputs, onChain.requester);
    for (const id of body.inputs)
      if (!this.artifacts.has(id))
        throw new FirnError('E_NOT_FOUND', `input artifact ${id} is not stored here`);
    this.admit(onChain.requester);
    await this.chainMonitor.requireUp('take jobs');
    const { job, releaseHold } = await this.checkAndHold(body, onChain);
    // The hold ends here, whatever happens: the record below names the inputs from now on, and a
    // submission refused before it is written (E_CONFLICT, a database failure) must hold nothing.
    let record: JobRecord;
    let leave: () => void;
    try {
      // The same submission may have arrived again while this one awaited the chain: checked again
      // with no await before the record is written, so only one of them ever runs the job.
      if (answerExisting()) return undefined;
      const now = this.now();
      record = {
        jobId: body.jobId,
        status: 'accepted',
        inputs: body.inputs,
        createdAt: now,
        updatedAt: now,
        requestDigest: digest,
      };
      // Counted with no await since the check above, so concurrent submissions cannot overshoot.
      leave = this.admission.enter(onChain.requester);
      try {
        this.jobs.put(record);
      } catch (e) {
        leave();
        throw e;
      }
    } finally {
      releaseHold();
    }
    const run = this.process(
      body,
      { workloadHash: job.workloadHash, inputCommitment: job.inputCommitment },
      job,
    )
      .catch((e: unknown) =>
        this.opts.logger.error('job processing ended with an error', {
          jobId: body.jobId,
          code: isFirnError(e) ? e.code : 'E_INTERNAL',
        }),
      )
      .finally(() => {
        leave();
        this.running.delete(run);
      });
    this.running.add(run);
    sendJson(res, 202, publicJobView(record));
    return undefined;
  }

  /** Chain time after which a claim made now (or at `claimedAt`) lapses, unix seconds. */
  claimEnd(job: Pick<FirnJob, 'claimTimeout' | 'deadline'>, claimedAt: number): number {
    return Math.min(claimedAt + Number(job.claimTimeout), Number(job.deadline));
  }

  /**
   * Keep the enclave's signed failure of a running job (`jobFailure` event) for `failOnChain`.
   * Checked for shape only (the contract checks the signature); dropped for a job not running
   * here. Never throws (an event listener).
   */
  private keepAttestedFailure(data: unknown): void {
    try {
      const signed = parseSignedJobFailure(data);
      const id = signed.failure.jobId.toLowerCase() as Hex;
      if (this.jobs.get(id)?.status !== 'running') return;
      if (this.attestedFailures.size >= MAX_KEPT_ATTESTED_FAILURES)
        this.attestedFailures.delete(this.attestedFailures.keys().next().value as Hex);
      this.attestedFailures.set(id, signed);
    } catch (e) {
      this.opts.logger.warn('enclave job failure not kept', { code: isFirnError(e) ? e.code : 'E_INTERNAL' });
    }
  }

  /**
   * Fail a claimed job on chain while the claim is valid, so the requester can re-run it elsewhere
   * at once, retrying through a chain outage until the claim lapses. With a failure the enclave
   * signed for this job (decision 1595) it is `failJobAttested`, which returns the whole claim
   * bond; a revert of that (e.g. the node's key rotated since) falls back to `failJob`, which
   * returns the bond by the claim time left (1571), or whole when governance revoked the node's
   * measurement or TEE type since the claim (1702: a proof refused NodeNotEligible lands here at
   * once). Never throws.
   */
  private async failOnChain(
    jobId: Hex,
    code: string,
    claimExpiresAt: number | undefined,
  ): Promise<Hex | undefined> {
    const log = this.opts.logger.child({ jobId });
    const attested = this.attestedFailures.get(jobId.toLowerCase() as Hex);
    this.attestedFailures.delete(jobId.toLowerCase() as Hex);
    if (attested !== undefined) {
      try {
        const tx = await retryChain(() => this.chain(() => failJobAttested(this.clients, attested)), {
          until: () => this.stopped || (claimExpiresAt !== undefined && this.now() >= claimExpiresAt),
          onRetry: (e, n) =>
            n === 1 && log.warn('failJobAttested waits for the chain', { code: (e as FirnError).code }),
        });
        log.info('job failed on chain with the enclave-signed failure', {
          reasonCode: attested.failure.reasonCode,
        });
        return tx.hash;
      } catch (e) {
        log.warn('failJobAttested refused; failing without it', {
          code: isFirnError(e) ? e.code : 'E_INTERNAL',
          ...(e instanceof ChainRevertedError && e.errorName ? { revert: e.errorName } : {}),
        });
      }
    }
    try {
      const tx = await retryChain(
        () => this.chain(() => failJob(this.clients, { jobId, reason: failureReason(code) })),
        {
          until: () => this.stopped || (claimExpiresAt !== undefined && this.now() >= claimExpiresAt),
          onRetry: (e, n) =>
            n === 1 && log.warn('failJob waits for the chain', { code: (e as FirnError).code }),
        },
      );
      return tx.hash;
    } catch (e2) {
      log.error('failJob failed', { code: isFirnError(e2) ? e2.code : 'E_INTERNAL' });
      return undefined;
    }
  }

  /**
   * Submit a kept proof (status `proving`), retrying through a chain outage until the claim lapses
   * or the deadline passes. On success the record is `proved` with the challenge window's end;
   * a revert (or the claim lapsing first) fails it. Never throws.
   */
  async submitKeptProof(jobId: Hex): Promise<void> {
    const log = this.opts.logger.child({ jobId });
    const r = this.jobs.get(jobId);
    if (!r?.proof) return;
    try {
      const p = parseWorkProofJson(r.proof);
      const tx = await retryChain(
        () =>
          this.chain(() =>
            submitProof(this.clients, { jobId, proof: { ...p.proof }, signature: p.signature }),
          ),
        {
          until: () => this.stopped || (r.claimExpiresAt !== undefined && this.now() >= r.claimExpiresAt),
          onRetry: (e, n) =>
            n === 1 &&
            log.warn('proof kept; submission waits for the chain', { code: (e as FirnError).code }),
        },
      );
      this.safeUpdate(jobId, { status: 'proved', txs: { ...this.jobs.get(jobId)?.txs, proof: tx.hash } });
      log.info('proof submitted', { workUnits: p.proof.workUnits });
      // The requester's stream ends now; the window's end is for the finalizer only (two chain
      // reads off the requester's path; without it the finalizer reads the job whole).
      this.notify(jobId);
      try {
        this.safeUpdate(jobId, { challengeEndsAt: await this.challengeEndOf(jobId, tx.receipt.blockNumber) });
      } catch {}
    } catch (e) {
      const error = toErrorBody(e);
      log.error('proof not accepted', { code: error.code });
      // Reverted while the claim holds (e.g. a bad proof): free the job for the requester now.
      if (
        !isTransientChainError(e) &&
        !(e instanceof ChainRevertedError && /Expired|DeadlinePassed/.test(e.errorName ?? ''))
      )
        await this.failOnChain(jobId, error.code, r.claimExpiresAt);
      this.safeUpdate(jobId, { status: 'failed', error });
    } finally {
      this.notify(jobId);
    }
  }

  private async process(
    body: SubmitBody,
    onChain: { workloadHash: Hex; inputCommitment: Hex },
    job: FirnJob,
  ): Promise<void> {
    const log = this.opts.logger.child({ jobId: body.jobId });
    const identity = this.node.identity!;
    let claimed = false;
    let claimExpiresAt: number | undefined;
    let proofKept = false;
    await this.jobSlots.acquire();
    let outDir: string | undefined;
    let allowance: OutputReservation | undefined;
    try {
      // The wait for a slot may have eaten the time to run it: the terms are checked again, and
      // a job the node could not prove (chain unreachable) is not started.
      this.checkPolicy(job);
      // Every resource the job will use is checked before the claim (decisions 1675, 1690): its
      // outputs' declared bound (else one block) of the requester's and the node's quotas, reserved
      // now (E_QUOTA_EXCEEDED, no chain write, no run) and taken by its outputs when stored.
      allowance = this.quota.reserveOutputs(
        job.requester,
        outputBoundOf(body),
        outputsWhat(body),
        body.maxOutputBytes !== undefined,
      );
      await this.chainMonitor.requireUp('start jobs');
      outDir = this.artifacts.tempDir('job');
      await this.setEnclaveChainTime();
      // The enclave opens and checks the request first: one that cannot run costs no gas.
      await this.preflight('preflightJob', body, onChain);
      const claim = await this.chain(() =>
        claimJob(this.clients, { jobId: body.jobId, enclaveId: identity.enclaveId }),
      ).catch(async (e: unknown) => {
        await this.releasePreflight(body.jobId);
        throw e;
      });
      claimed = true;
      claimExpiresAt = this.claimEnd(job, this.now());
      this.jobs.update(
        body.jobId,
        { status: 'running', txs: { claim: claim.hash }, claimExpiresAt },
        this.now(),
      );
      log.info('job claimed; running in the enclave');
      await this.setEnclaveChainTime();
      const r = await this.node.supervisor.call<RunJobResult>(
        'runJob',
        {
          jobId: body.jobId,
          enc: body.enc,
          request: body.ciphertext,
          inputPaths: Object.fromEntries(body.inputs.map((id) => [id, this.artifacts.path(id)])),
          onChain,
          domain: {
            chainId: this.opts.deployment.chainId,
            jobMarket: this.opts.deployment.jobMarket,
            // Apps sign data for this ledger (docs/decisions/1100); none on a deployment without one.
            ...(/^0x0{40}$/i.test(this.opts.deployment.dataLedger)
              ? {}
              : { dataLedger: this.opts.deployment.dataLedger }),
          },
          outputDir: outDir,
          // The enclave stops the workload when the claim lapses: a proof after it cannot be paid.
          ...(claimExpiresAt === undefined ? {} : { deadline: claimExpiresAt }),
          // The bound reserved above: the enclave fails the job (E_TOO_LARGE) before writing more.
          ...(body.maxOutputBytes === undefined ? {} : { maxOutputBytes: body.maxOutputBytes }),
        },
        this.opts.enclaveTimeoutMs ?? DEFAULT_JOB_TIME_LIMIT_MS,
      );
      // Each output's size first (an output already stored is charged nothing: 0), then every
      // reservation taken from the bound reserved before the claim with no await between, so a
      // job whose outputs do not fit fails before any of them is stored: over a declared bound
      // E_TOO_LARGE, past the one-block allowance of a job that declared none and over a quota
      // E_QUOTA_EXCEEDED (its output folder is removed below; nothing stored before is touched).
      const sizes: number[] = [];
      for (const o of r.outputs) {
        // An output already stored (an earlier upload's bytes) keeps that upload's charge and time:
        // held from the sweep until the record below names it (decision 1603, never a live job's).
        this.sweeper.hold([o.artifactId], this.now() + MIN_UPLOAD_RETENTION_SECONDS);
        sizes.push(this.artifacts.has(o.artifactId) ? 0 : await outputSize(o.path));
      }
      const taken: ReturnType<OutputReservation['output']>[] = [];
      try {
        for (const [i, o] of r.outputs.entries())
          taken.push(allowance.output(sizes[i]!, `the job output ${o.role}`));
      } catch (e) {
        for (const t of taken) t.release();
        throw e;
      }
      const outputs = [];
      for (const [i, o] of r.outputs.entries()) {
        // Charged to the job's requester and the node's total like its uploads.
        const reservation = taken[i]!;
        let stored: Awaited<ReturnType<ArtifactStore['adopt']>>;
        try {
          stored = await this.artifacts.adopt(o.path, o.artifactId);
        } catch (e) {
          for (const t of taken.slice(i)) t.release();
          throw e;
        }
        reservation.commit(stored.created, stored.size, stored.id);
        await this.copyToShared(stored.id);
        outputs.push({ role: o.role, artifactId: stored.id, contentType: o.contentType, size: stored.size });
      }
      // The proof is kept before it is sent: a chain outage or a restart never loses it.
      this.jobs.update(
        body.jobId,
        { status: 'proving', outputs, proof: r.proof, response: r.response },
        this.now(),
      );
      proofKept = true;
      // Enclave-signed data records go to the data ledger (docs/decisions/1100); posting never fails the job.
      if (r.signedData !== undefined && r.signedData.length > 0)
        await postSignedDataRecords(this.clients, r.signedData, log);
    } catch (e) {
      const error = toErrorBody(e);
      log.warn('job failed', { code: error.code });
      let failTx: Hex | undefined;
      if (claimed) failTx = await this.failOnChain(body.jobId, error.code, claimExpiresAt);
      this.safeUpdate(body.jobId, {
        status: 'failed',
        error,
        ...(failTx ? { txs: { ...this.jobs.get(body.jobId)?.txs, fail: failTx } } : {}),
      });
    } finally {
      allowance?.release();
      this.jobSlots.release();
      if (outDir !== undefined) await rm(outDir, { recursive: true, force: true }).catch(() => undefined);
      this.notify(body.jobId);
    }
    if (proofKept) await this.submitKeptProof(body.jobId);
  }

  /** Pass the chain time to the enclave (its proof times and expiry checks use it); best effort. */
  async setEnclaveChainTime(): Promise<void> {
    if (!this.chainMonitor.up && this.opts.now === undefined) return;
    await this.node.supervisor.call('setChainTime', { chainTime: this.now() }, 5000).catch(() => undefined);
  }

  /**
   * After a restart: a job left `accepted` was never claimed (failed here; it is still Open on
   * chain for the requester); `running` lost its enclave run (failed on chain while the claim
   * holds); `proving` has a kept proof (submitted again). Sessions left open lost their enclave
   * state and are failed like running jobs. Runs in the background; never throws.
   */
  recover(): void {
    const log = this.opts.logger;
    for (const r of this.jobs.withStatus('accepted'))
      this.safeUpdate(r.jobId, {
        status: 'failed',
        error: {
          code: 'E_UNAVAILABLE',
          message: 'the node restarted before the job was claimed; submit it again',
        },
      });
    for (const r of this.jobs.withStatus('running')) {
      log.warn('job was running when the node stopped; failing it on chain', { jobId: r.jobId });
      const run = this.failOnChain(r.jobId, 'E_ENCLAVE_UNAVAILABLE', r.claimExpiresAt).then((tx) =>
        this.safeUpdate(r.jobId, {
          status: 'failed',
          error: { code: 'E_ENCLAVE_UNAVAILABLE', message: 'the node restarted while the job ran' },
          ...(tx ? { txs: { ...r.txs, fail: tx } } : {}),
        }),
      );
      this.track(run);
    }
    for (const r of this.jobs.withStatus('proving')) {
      log.info('resubmitting a kept proof', { jobId: r.jobId });
      this.track(this.submitKeptProof(r.jobId));
    }
    for (const m of this.db.sessions()) {
      if (m.state === 'closed') continue;
      try {
        this.db.putSession({ ...m, state: 'closed' });
      } catch {}
    }
  }

  private track(p: Promise<unknown>): void {
    const run: Promise<void> = p.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  /**
   * The end of a proved job's challenge window, unix seconds: the proof block's time plus the
   * job's challenge window, as the market computes it at submitProof (FirnJobMarket: provedAt =
   * block.timestamp, challengeEndsAt = provedAt + challengeWindow). Two reads (the stored record
   * and the block) where getJob also scans the job's events over the chain's history.
   */
  private async challengeEndOf(jobId: Hex, proofBlock: bigint): Promise<number> {
    const [record, block] = await Promise.all([
      this.readJobRecord(jobId),
      this.clients.public.getBlock({ blockNumber: proofBlock }),
    ]);
    return Number(block.timestamp) + Number(record.challengeWindow);
  }

  /** The market's stored job record (`getJob` view: status, window, no events). */
  private readJobRecord(jobId: Hex) {
    return this.clients.public.readContract({
      address: this.clients.addresses.jobMarket,
      abi: firnJobMarketAbi,
      functionName: 'getJob',
      args: [jobId],
    });
  }

  /**
   * Finalize this node's proved jobs whose challenge window is over (chain time), so the operator
   * is paid without anyone typing a command. A job the chain already settled (paid, slashed) is
   * recorded as such. A job whose window end the node recorded is checked by its stored status
   * alone (one call: the market's finalize checks the window and the status itself); only one
   * without it is read whole (getJob: events included). Never throws.
   */
  async finalizeDue(): Promise<void> {
    if (!this.chainMonitor.up) return;
    const now = this.now();
    for (const r of this.jobs.withStatus('proved')) {
      if (this.stopped) return;
      if (r.challengeEndsAt !== undefined && now <= r.challengeEndsAt) continue;
      const log = this.opts.logger.child({ jobId: r.jobId });
      try {
        const onChain =
          r.challengeEndsAt === undefined
            ? await getJob(this.clients, r.jobId)
            : {
                status: (await this.readJobRecord(r.jobId)).status as JobStatus,
                challengeEndsAt: BigInt(r.challengeEndsAt),
              };
        if (r.challengeEndsAt === undefined && onChain.challengeEndsAt > 0n)
          this.safeUpdate(r.jobId, { challengeEndsAt: Number(onChain.challengeEndsAt) });
        if (onChain.status === JobStatus.Paid) {
          this.safeUpdate(r.jobId, { status: 'finalized' });
          continue;
        }
        if (onChain.status === JobStatus.Slashed) {
          this.safeUpdate(r.jobId, {
            status: 'failed',
            error: { code: 'E_PROOF_INVALID', message: 'the proof was disputed and slashed' },
          });
          continue;
        }
        if (onChain.status !== JobStatus.Proved) {
          this.proofLost(r.jobId, onChain.status);
          continue;
        }
        this.proofMissing.delete(r.jobId);
        if (BigInt(now) <= onChain.challengeEndsAt) continue;
        const tx = await this.chain(() => finalizeJob(this.clients, r.jobId));
        this.safeUpdate(r.jobId, { status: 'finalized', txs: { ...r.txs, finalize: tx.hash } });
        log.info('job finalized; operator paid');
      } catch (e) {
        log.warn('finalize failed; will retry', { code: isFirnError(e) ? e.code : 'E_INTERNAL' });
      }
    }
  }

  /**
   * One more check that found a `proved` job in another chain status (None after a reset, Open or
   * Claimed after a reorg dropped the proof, Failed or Reclaimed): after `lostProofChecks` in a
   * row the record is marked failed with E_CHAIN, so it is not polled for ever and its state says
   * why it will not be paid.
   */
  private proofLost(jobId: Hex, status: JobStatus): void {
    const checks = (this.proofMissing.get(jobId) ?? 0) + 1;
    if (checks < (this.opts.lostProofChecks ?? DEFAULT_LOST_PROOF_CHECKS)) {
      this.proofMissing.set(jobId, checks);
      return;
    }
    this.proofMissing.delete(jobId);
    const seen = JobStatus[status] ?? String(status);
    this.safeUpdate(jobId, {
      status: 'failed',
      error: {
        code: 'E_CHAIN',
        message: `the chain no longer holds this job's proof (it reads the job as ${seen} after ${checks} checks): a reorg or a chain reset lost it, and the node stopped waiting to finalize it`,
      },
    });
    this.opts.logger.warn('proof lost on chain; job marked failed', { jobId, status: seen });
    this.notify(jobId);
  }

  record(idText: string): JobRecord {
    const r = this.jobs.get(parseArtifactId(idText));
    if (!r) throw new FirnError('E_NOT_FOUND', 'no such job here');
    return r;
  }

  /**
   * GET /v1/jobs/{id}: the job's public view (publicJobView: the documented fields only, never the
   * requester's input ids or the node's digest and clock times). Raises E_NOT_FOUND (no such job
   * here) and E_INVALID_INPUT (not a 32-byte hex id).
   */
  status(idText: string): PublicJobView {
    return publicJobView(this.record(idText));
  }

  /** Output bytes inlined in result answers still being sent (MAX_INLINE_BYTES_IN_FLIGHT). */
  private inlineBytesInFlight = 0;

  /**
   * GET /v1/jobs/{id}/result: the proof, the channel response and the outputs, each listed with its
   * role, artifact id, content type and sealed size; the first ones whose sealed bytes fit
   * MAX_INLINE_RESULT_BYTES together (and MAX_INLINE_BYTES_IN_FLIGHT over all answers being sent)
   * carry them inline as base64 `sealed`, read without blocking the thread; the others are fetched
   * with GET /v1/artifacts/{id} (decision 1744). Raises E_JOB_FAILED, E_CONFLICT (no result yet)
   * or E_NOT_FOUND (no such job, or an output swept). With `head` (a HEAD request) the same checks
   * run and only the headers are sent: no output is read.
   */
  async result(idText: string, res?: ServerResponse, head = false): Promise<unknown> {
    const r = this.record(idText);
    if (r.status === 'failed')
      throw new FirnError('E_JOB_FAILED', `job failed: ${r.error?.code ?? 'E_INTERNAL'}`);
    // A session's answers went to the requester in-band; its result is the transcript opening
    // verifiers check the proof's outputCommitment against (docs/decisions/0830-result-availability.md).
    const done = r.status === 'proved' || r.status === 'finalized';
    if (done && r.proof && r.sessionOpening && head && res)
      return answerHead(res, 'application/json; charset=utf-8');
    if (done && r.proof && r.sessionOpening)
      return { jobId: r.jobId, proof: r.proof, outputs: [], session: r.sessionOpening };
    if (!done || !r.outputs || !r.proof)
      throw new FirnError('E_CONFLICT', `job is ${r.status}, no result yet`);
    const outputs = r.outputs;
    const swept = (o: { artifactId: Hex }) =>
      new FirnError(
        'E_NOT_FOUND',
        `the job's output ${o.artifactId} is no longer stored here: outputs are kept ${this.sweeper.retention.outputSeconds} s after the job is final`,
      );
    // Kept for the output retention after the job is final (decision 1603), then deleted.
    for (const o of outputs) if (!(await isFile(this.artifacts.path(o.artifactId)))) throw swept(o);
    if (head && res) return answerHead(res, 'application/json; charset=utf-8');
    // The inline budget is taken before the first await, so concurrent answers cannot overshoot it.
    const inline = new Set<number>();
    let inlined = 0;
    for (const [i, o] of outputs.entries()) {
      if (inlined + o.size > MAX_INLINE_RESULT_BYTES) continue;
      if (this.inlineBytesInFlight + inlined + o.size > MAX_INLINE_BYTES_IN_FLIGHT) break;
      inline.add(i);
      inlined += o.size;
    }
    this.inlineBytesInFlight += inlined;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.inlineBytesInFlight -= inlined;
    };
    // Held until the answer is sent or its client gone (listened for now: it may go while we read).
    const untilSent = res !== undefined && !res.destroyed && res.socket?.destroyed !== true;
    if (untilSent) res.once('close', release);
    try {
      const listed = await Promise.all(
        outputs.map(async (o, i) => {
          const ref = publicJobOutput(o);
          if (!inline.has(i)) return ref;
          const bytes = await readExactly(this.artifacts.path(o.artifactId), o.size).catch((e: unknown) => {
            throw (e as NodeJS.ErrnoException).code === 'ENOENT' ? swept(o) : e;
          });
          // A file that is not its listed size is listed alone (the reader checks what it fetches).
          return bytes === undefined ? ref : { ...ref, sealed: bytes.toString('base64') };
        }),
      );
      if (!untilSent) release();
      return { jobId: r.jobId, proof: r.proof, response: r.response, outputs: listed };
    } catch (e) {
      release();
      throw e;
    }
  }

  /**
   * GET /v1/jobs/{id}/events (SSE; the wire shape is docs/decisions/1040-job-events-wire-and-node-persistence.md):
   * `progress` events with `seq` from the database (replayed after a restart), resumable with
   * Last-Event-ID or `?after=`, then one `end` event naming the status and how many events the job
   * produced, so a client detects a dropped tail. A HEAD request (`head`) gets the headers after
   * the same checks, and neither takes a stream place nor reads an event.
   */
  stream(
    idText: string,
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    head = false,
  ): Promise<undefined> {
    const id = parseArtifactId(idText);
    this.record(id);
    const afterText = req.headers['last-event-id'] ?? url.searchParams.get('after') ?? '-1';
    if (typeof afterText !== 'string' || !/^-?\d{1,9}$/.test(afterText))
      throw new FirnError('E_INVALID_INPUT', 'Last-Event-ID (or ?after=) must be an event seq number');
    let after = Math.max(-1, Number(afterText));
    if (head) return Promise.resolve(answerHead(res, 'text/event-stream', { 'cache-control': 'no-cache' }));
    // Streams are held open for long: a few per client (an IPv6 /64 is one), so they cannot take
    // the connection slots.
    const ip = remoteClient(req);
    const streams = this.streamsPerIp.get(ip) ?? 0;
    const cap = this.node.limits.maxEventStreamsPerIp;
    if (streams >= cap) throw rateLimited(`this address already has ${cap} event streams open`);
    this.streamsPerIp.set(ip, streams + 1);
    req.once('close', () => {
      const left = (this.streamsPerIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.streamsPerIp.delete(ip);
      else this.streamsPerIp.set(ip, left);
    });
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    // A job may go quiet for longer than the idle timeout (a long epoch): no idle cut here, and
    // an SSE comment every 15 s so a vanished client is noticed.
    holdWhileServing(req);
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
    heartbeat.unref();
    return new Promise((resolve) => {
      let over = false;
      // Backpressure: a reader that does not read makes the replay wait for 'drain', so the node
      // holds about one socket buffer per stream, never a job's whole event history.
      let draining = false;
      const flush = () => {
        if (over || draining) return;
        for (;;) {
          const batch = this.db.eventsAfter(id, after, 64);
          for (const ev of batch) {
            after = ev.seq;
            const ok = res.write(
              `id: ${ev.seq}\nevent: progress\ndata: ${JSON.stringify({ seq: ev.seq, message: ev.message })}\n\n`,
            );
            if (!ok) {
              draining = true;
              res.once('drain', () => {
                draining = false;
                flush();
              });
              return;
            }
          }
          if (batch.length < 64) break;
        }
        const r = this.jobs.get(id);
        if (r && (r.status === 'proved' || r.status === 'finalized' || r.status === 'failed')) {
          const status = r.status === 'failed' ? 'failed' : 'proved';
          res.write(
            `event: end\ndata: ${JSON.stringify({ status, events: this.db.eventCount(id), ...(r.error ? { error: r.error } : {}) })}\n\n`,
          );
          done();
        }
      };
      const set = this.listeners.get(id) ?? new Set();
      this.listeners.set(id, set);
      // The job's listener set goes with its last listener (no empty set kept per streamed job).
      const unlisten = () => {
        set.delete(flush);
        if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
      };
      const done = () => {
        over = true;
        clearInterval(heartbeat);
        unlisten();
        res.end();
        resolve(undefined);
      };
      set.add(flush);
      req.on('close', () => {
        over = true;
        clearInterval(heartbeat);
        unlisten();
        resolve(undefined);
      });
      flush();
    });
  }

  /**
   * Wait for the jobs in flight to end, at most `timeoutMs` (ms); the service keeps running and
   * its chain clients stay open (for tests that go on using the node). Never throws.
   */
  async settle(timeoutMs = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /**
   * Wait for jobs in flight (for shutdown), at most `timeoutMs` (ms), then stop the background
   * work and close the chain clients (see `stop`): a drained service writes nothing more.
   */
  async drain(timeoutMs = 30_000): Promise<void> {
    await this.settle(timeoutMs);
    // Whatever still waits (a proof or failJob retried through an outage) stops retrying now;
    // a kept proof is submitted again at the next start.
    this.stop();
  }
}

/**
 * Answer a HEAD request with the headers of its GET (`contentType`, `extra`) and no body. The
 * length of the GET's body is left out: it is known only once the body is made (RFC 9110 9.3.2).
 */
function answerHead(res: ServerResponse, contentType: string, extra: Record<string, string> = {}): undefined {
  res.writeHead(200, { ...extra, 'content-type': contentType });
  res.end();
  return undefined;
}

/**
 * Answer an upload whose slot was taken back (decision 1660) with 429 and `e`, closing the
 * connection once written (its body is not read further).
 */
function answerEvicted(res: ServerResponse, e: FirnError): void {
  res.shouldKeepAlive = false;
  sendJson(
    res,
    429,
    { error: toErrorBody(e) },
    {
      connection: 'close',
      'retry-after': String(e.details?.retryAfterSeconds ?? 1),
    },
  );
}

/**
 * Send `source` as the body of `res` (headers written) through `stream.pipeline`: the source is
 * destroyed (a file's descriptor closed) when the client goes away or either side fails, and the
 * response is destroyed when the source fails. Never rejects: a failed or aborted send is over.
 */
export function serveStream(source: Readable, res: ServerResponse): Promise<void> {
  return pipeline(source, res).catch(() => {
    if (!res.destroyed) res.destroy();
  });
}

/**
 * The bytes of the file at `path` when it holds exactly `size` bytes, else undefined; never reads
 * more than `size` bytes (one open descriptor for the size check and the read). Raises the file
 * system's error (ENOENT for a file gone).
 */
async function readExactly(path: string, size: number): Promise<Buffer | undefined> {
  const fh = await open(path, 'r');
  try {
    if ((await fh.stat()).size !== size) return undefined;
    const buf = Buffer.alloc(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(buf, at, size - at, at);
      if (bytesRead === 0) return undefined;
      at += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

/** Whether `path` is a regular file now (an async stat: no blocking call on a request path). */
async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (st) => st.isFile(),
    () => false,
  );
}

/** Size of a job output the enclave wrote, bytes; 0 when it is missing (adopt then reports it). */
async function outputSize(path: string): Promise<number> {
  return stat(path).then(
    (st) => st.size,
    () => 0,
  );
}

/** `o` without its keys whose value is undefined (so they keep their defaults when spread). */
function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}
