import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { S3ArtifactStore } from './storage/s3ArtifactStore.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { CollateralSource } from '@firn/attestation';
import type { FirnDeployment } from '@firn/chain';
import { getRequestListener, RequestError } from '@hono/node-server';
import {
  bytesToHex,
  type EvidenceBundle,
  FirnError,
  type Hex,
  hexBytes,
  InvalidInputError,
  assertNonce,
} from '@firn/core';
import { privateKeyToAccount } from 'viem/accounts';
import { attachCollateral } from './attachCollateral.ts';
import { type EnclaveLauncher, EnclaveSupervisor } from './enclaveSupervisor.ts';
import { DEFAULT_JOB_POLICY, type JobPolicy, JobService } from './jobs/jobApi.ts';
import {
  type ArtifactRetention,
  DEFAULT_ARTIFACT_RETENTION,
  MAX_RETENTION_SECONDS,
  MIN_OUTPUT_RETENTION_SECONDS,
  MIN_UPLOAD_RETENTION_SECONDS,
} from './storage/artifactRetention.ts';
import {
  applyHttpLimits,
  DEFAULT_HTTP_LIMITS,
  type HttpLimits,
  RequestRateLimiter,
  UploadSlots,
} from './http/limits.ts';
import { createNodeApi, sessionStreamUpgrade } from './http/nodeApi.ts';
import type { EnclaveIdentity } from './jobs/jobHost.ts';
import { NodeDb } from './storage/nodeDb.ts';
import { DEFAULT_STORAGE_QUOTAS, type StorageQuotas } from './storage/quota.ts';
import type { Logger } from './logger.ts';
import { NodeMetrics } from './metrics.ts';

export type { EnclaveIdentity } from './jobs/jobHost.ts';
export { ATTESTATION_BODY_LIMIT } from './http/nodeApi.ts';

export interface NodeDaemonOptions {
  dataDir: string;
  host?: string;
  port?: number;
  /** Public URL of this node; defaults to http://host:port. */
  endpoint?: string;
  bundlePath: string;
  /** Environment for the enclave process (FIRN_TEE, FIRN_SIM_PLATFORM, ...). */
  enclaveEnv: Record<string, string>;
  /** How the enclave is started (default: plain node; gramine-sgx on SGX). */
  enclaveLauncher?: EnclaveLauncher;
  logger: Logger;
  /** The chain this node registers on and takes jobs from (absent: serve only). */
  chain?: { rpcUrl: string; deployment: FirnDeployment; operatorKey: Hex };
  /**
   * The operator account the enclave is started for and binds into every quote (decision 1830):
   * verifiers approve a registration only when it is the account that registered the node. Default:
   * the address of `chain.operatorKey`; with no chain, none. When both are given they must agree
   * (E_INVALID_INPUT otherwise).
   */
  operator?: Hex;
  /** DCAP collateral to attach to SGX/TDX evidence (PCS/PCCS); absent: verifiers fetch it. */
  collateralSource?: CollateralSource;
  /** Connection, rate and upload-concurrency limits (defaults: DEFAULT_HTTP_LIMITS). */
  limits?: Partial<HttpLimits>;
  /**
   * Artifact store quotas (defaults: DEFAULT_STORAGE_QUOTAS): `perAddressBytes` is each requester's
   * (uploader's) share, its uploads, fetched inputs and its jobs' outputs (`firn node start
   * --quota-per-address`); `totalBytes` the store's (`--quota-total`).
   */
  quotas?: Partial<StorageQuotas>;
  /**
   * The operator's terms for taking jobs: minimum escrow and claim time (defaults:
   * DEFAULT_JOB_POLICY). `minEscrowWei` a bigint of at least 0, `minClaimSeconds` a whole number
   * from 0 to 2^31-1; E_INVALID_INPUT naming the option otherwise.
   */
  jobPolicy?: Partial<JobPolicy>;
  /**
   * How long stored artifacts are kept (defaults: DEFAULT_ARTIFACT_RETENTION, decision 1603):
   * `uploadSeconds`, an artifact no job names after its upload (`firn node start
   * --upload-retention`, at least 3600, the upload intent's longest lifetime); `outputSeconds`,
   * a job's inputs and outputs after the job is final (`--output-retention`, at least 3600).
   * Both whole seconds, at most 10 years.
   */
  retention?: Partial<ArtifactRetention>;
  /** Shared S3-compatible artifact store beside the local folder (`--artifact-store`); default none. */
  sharedArtifacts?: S3ArtifactStore;
  /** The scheduler: concurrency, queue, time limits (defaults in packages/node/src/jobs/jobApi.ts). */
  scheduler?: NodeSchedulerOptions;
}

/** The node's job scheduler settings (`firn node start --max-jobs … --job-timeout …`). */
export interface NodeSchedulerOptions {
  /** Jobs run in the enclave at once (default 4). */
  maxConcurrentJobs?: number;
  /** Jobs admitted to wait beyond the running ones; more get 429 + Retry-After (default 16). */
  maxQueuedJobs?: number;
  /** How long one job may run in the enclave, ms (default 10 minutes). */
  jobTimeoutMs?: number;
  /** Idle warm sessions are closed after this long, ms (default 5 minutes). */
  sessionIdleMs?: number;
  /** How often the chain head is read, ms (default 2000). */
  chainCheckIntervalMs?: number;
  /** How often proved jobs are checked for finalization, ms (default 5000). */
  finalizeIntervalMs?: number;
  /** Checks in a row a proved job may be missing on chain before it is marked failed (default 60). */
  lostProofChecks?: number;
  /**
   * Jobs one requester (the job's requester on chain) may have running or queued at once; more get
   * 429 E_RATE_LIMITED with Retry-After (default 8; jobs/admission.ts, decision 1550). At least 1.
   */
  maxJobsPerRequester?: number;
  /**
   * Sessions one requester may have open or opening at once; one more is refused 429 before any
   * claim (default 4; SessionBounds.maxSessionsPerRequester, decision 1550). At least 1.
   */
  maxSessionsPerRequester?: number;
  /**
   * How long a session's child keeps its event loop polling after each answer, ms, 0 to 1 000
   * (default 20; SessionBounds.pollMs, decision 1800). 0 turns it off.
   */
  sessionPollMs?: number;
}

/** Most jobs run in the enclave at once (each is an ML child; the slots are allocated up front). */
export const MAX_CONCURRENT_JOBS = 1024;

/** Most ms a Node timer holds: past it setTimeout fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Check the scheduler and quota options at the entry (decision 1550): each given value must be a
 * whole number in its range (NaN, Infinity or a negative count would compare as no limit, a timer
 * past 2^31-1 ms fires at once); E_INVALID_INPUT naming the option otherwise. Returns the quotas
 * in force (a key present as undefined keeps its default).
 */
/**
 * The operator account the enclave serves (decision 1830): `opts.operator`, else the address of
 * `chain.operatorKey`, lower-case; undefined for a serve-only node without one. E_INVALID_INPUT
 * when the option is not a 20-byte address, the key is not a private key, or the two name
 * different accounts.
 */
function operatorOf(opts: NodeDaemonOptions): Hex | undefined {
  let fromKey: Hex | undefined;
  if (opts.chain !== undefined)
    try {
      fromKey = privateKeyToAccount(opts.chain.operatorKey).address.toLowerCase() as Hex;
    } catch {
      throw new InvalidInputError('chain.operatorKey is not a secp256k1 private key (32 bytes of hex)');
    }
  if (opts.operator === undefined) return fromKey;
  const named = bytesToHex(hexBytes(opts.operator, 'operator', 20));
  if (fromKey !== undefined && named !== fromKey)
    throw new InvalidInputError(
      `operator ${named} is not the account of the chain operator key (${fromKey}): the enclave must serve the account that registers it`,
    );
  return named;
}

function checkedLimits(opts: NodeDaemonOptions): {
  quotas: StorageQuotas;
  jobPolicy: JobPolicy;
  retention: ArtifactRetention;
} {
  const check = (v: number | undefined, name: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= min && v <= max))
      throw new InvalidInputError(
        `NodeDaemonOptions.${name} must be a whole number from ${min} to ${max} (got ${String(v).slice(0, 32)})`,
      );
  };
  const s = opts.scheduler ?? {};
  check(s.maxConcurrentJobs, 'scheduler.maxConcurrentJobs', 1, MAX_CONCURRENT_JOBS);
  check(s.maxQueuedJobs, 'scheduler.maxQueuedJobs', 0);
  check(s.maxJobsPerRequester, 'scheduler.maxJobsPerRequester', 1);
  check(s.maxSessionsPerRequester, 'scheduler.maxSessionsPerRequester', 1);
  check(s.sessionPollMs, 'scheduler.sessionPollMs', 0, 1_000);
  check(s.lostProofChecks, 'scheduler.lostProofChecks', 1);
  for (const k of ['jobTimeoutMs', 'sessionIdleMs', 'chainCheckIntervalMs', 'finalizeIntervalMs'] as const)
    check(s[k], `scheduler.${k}`, 1, MAX_TIMER_MS);
  const quotas: StorageQuotas = {
    perAddressBytes: opts.quotas?.perAddressBytes ?? DEFAULT_STORAGE_QUOTAS.perAddressBytes,
    totalBytes: opts.quotas?.totalBytes ?? DEFAULT_STORAGE_QUOTAS.totalBytes,
  };
  check(quotas.perAddressBytes, 'quotas.perAddressBytes', 1);
  check(quotas.totalBytes, 'quotas.totalBytes', 1);
  // The operator's terms: a NaN minimum compares false against every job (no minimum at all).
  const p = opts.jobPolicy ?? {};
  const jobPolicy: JobPolicy = {
    minEscrowWei: p.minEscrowWei ?? DEFAULT_JOB_POLICY.minEscrowWei,
    minClaimSeconds: p.minClaimSeconds ?? DEFAULT_JOB_POLICY.minClaimSeconds,
  };
  if (typeof jobPolicy.minEscrowWei !== 'bigint' || jobPolicy.minEscrowWei < 0n)
    throw new InvalidInputError(
      `NodeDaemonOptions.jobPolicy.minEscrowWei must be a bigint of at least 0 wei (got ${String(jobPolicy.minEscrowWei).slice(0, 32)})`,
    );
  check(jobPolicy.minClaimSeconds, 'jobPolicy.minClaimSeconds', 0, Math.floor(MAX_TIMER_MS / 1000));
  for (const k of Object.keys(p))
    if (!(k in DEFAULT_JOB_POLICY))
      throw new InvalidInputError(`NodeDaemonOptions.jobPolicy.${k.slice(0, 32)} is not a job policy option`);
  const r = opts.retention ?? {};
  const retention: ArtifactRetention = {
    uploadSeconds: r.uploadSeconds ?? DEFAULT_ARTIFACT_RETENTION.uploadSeconds,
    outputSeconds: r.outputSeconds ?? DEFAULT_ARTIFACT_RETENTION.outputSeconds,
  };
  check(
    retention.uploadSeconds,
    'retention.uploadSeconds',
    MIN_UPLOAD_RETENTION_SECONDS,
    MAX_RETENTION_SECONDS,
  );
  check(
    retention.outputSeconds,
    'retention.outputSeconds',
    MIN_OUTPUT_RETENTION_SECONDS,
    MAX_RETENTION_SECONDS,
  );
  return { quotas, jobPolicy, retention };
}

/**
 * The HTTP limits in force (DEFAULT_HTTP_LIMITS under `given`; a key present as undefined keeps
 * its default), each a whole number of at least 0, the timers at most 2^31-1 ms and the upload
 * slots (allocated at start) at most MAX_CONCURRENT_JOBS; E_INVALID_INPUT naming the option otherwise.
 */
function checkedHttpLimits(given: Partial<HttpLimits> | undefined): HttpLimits {
  const limits = { ...DEFAULT_HTTP_LIMITS };
  for (const [k, v] of Object.entries(given ?? {}) as [keyof HttpLimits, number | undefined][]) {
    if (v === undefined || !(k in DEFAULT_HTTP_LIMITS)) continue;
    const max = k.endsWith('Ms')
      ? MAX_TIMER_MS
      : k === 'maxConcurrentUploads' || k === 'maxConcurrentUploadsPerAddress'
        ? MAX_CONCURRENT_JOBS
        : Number.MAX_SAFE_INTEGER;
    if (!(Number.isSafeInteger(v) && v >= 0 && v <= max))
      throw new InvalidInputError(
        `NodeDaemonOptions.limits.${k} must be a whole number from 0 to ${max} (got ${String(v).slice(0, 32)})`,
      );
    limits[k] = v;
  }
  return limits;
}

/**
 * The host daemon: supervises the enclave, persists only its sealed key blob, and serves the
 * node API. It relays public keys, quotes and ciphertext; it never holds enclave secrets.
 */
export class NodeDaemon {
  readonly opts: NodeDaemonOptions;
  readonly supervisor: EnclaveSupervisor;
  /** Prometheus metrics (GET /metrics). */
  readonly metrics: NodeMetrics;
  identity: EnclaveIdentity | undefined;
  chainStatus = 'unregistered';
  /**
   * Set while the node's registration round cannot pass with the verifier stake active now
   * (registration.ts, decision 1761): what is wrong and the way out. Shown by GET /v1/node.
   */
  registrationNotice: string | undefined;
  /** The job API, when the node was started with a chain. */
  jobs: JobService | undefined;
  private server: Server | undefined;
  url = '';
  /** The limits in force (options over defaults). */
  readonly limits: HttpLimits;
  readonly quotas: StorageQuotas;
  /** The operator's job terms in force (options over DEFAULT_JOB_POLICY), checked at the entry. */
  readonly jobPolicy: JobPolicy;
  /** The artifact retention in force (options over DEFAULT_ARTIFACT_RETENTION), checked at the entry. */
  readonly retention: ArtifactRetention;
  /** Mutating requests per remote IP (uploads, submissions, attestations). */
  readonly rateLimiter: RequestRateLimiter;
  /** Admitted session messages per remote IP (HttpLimits.sessionRequestsPerSecondPerIp). */
  readonly sessionRateLimiter: RequestRateLimiter;
  /** Upload concurrency, global, per uploader address and per network, with eviction (decision 1660). */
  readonly uploadSlots: UploadSlots;
  /** The node's persistent state (jobs, events, sessions, cursors); undefined while it cannot be opened. */
  db: NodeDb | undefined;
  /**
   * The operator account the enclave is started for (lower-case; undefined: none), fixed at
   * construction: every (re)start of the enclave names it, and its quotes bind it (decision 1830).
   */
  readonly operator: Hex | undefined;

  constructor(opts: NodeDaemonOptions) {
    this.opts = opts;
    this.operator = operatorOf(opts);
    ({ quotas: this.quotas, jobPolicy: this.jobPolicy, retention: this.retention } = checkedLimits(opts));
    this.limits = checkedHttpLimits(opts.limits);
    this.rateLimiter = new RequestRateLimiter(this.limits.mutatingRequestsPerSecondPerIp);
    this.sessionRateLimiter = new RequestRateLimiter(this.limits.sessionRequestsPerSecondPerIp);
    this.uploadSlots = new UploadSlots(
      this.limits.maxConcurrentUploads,
      this.limits.maxConcurrentUploadsPerAddress,
      this.limits.maxConcurrentUploadsPerPrefix,
      {
        minAgeMs: this.limits.uploadEvictionMinAgeMs,
        keepBytesPerSecond: this.limits.uploadKeepBytesPerSecond,
      },
    );
    mkdirSync(opts.dataDir, { recursive: true });
    this.supervisor = new EnclaveSupervisor({
      bundlePath: opts.bundlePath,
      env: opts.enclaveEnv,
      ...(opts.enclaveLauncher === undefined ? {} : { launcher: opts.enclaveLauncher }),
      logger: opts.logger,
    });
    this.metrics = new NodeMetrics(() => {
      const chain = this.jobs?.chainMonitor.health();
      return {
        enclaveUp: this.supervisor.pid !== undefined,
        ...(this.identity
          ? {
              identity: {
                enclaveId: this.identity.enclaveId,
                teeType: this.identity.teeType,
                status: this.chainStatus,
              },
            }
          : {}),
        ...(this.opts.chain
          ? {
              chain: {
                up: chain?.up === true,
                ...(chain?.clockSkewSeconds === undefined
                  ? {}
                  : { clockSkewSeconds: chain.clockSkewSeconds }),
                ...(chain?.lastSeenSecondsAgo === undefined
                  ? {}
                  : { headLagSeconds: chain.lastSeenSecondsAgo }),
                storageUp: this.db?.writable() === true,
                jobsActive: this.jobs?.activeJobs ?? 0,
              },
            }
          : {}),
      };
    });
  }

  private get sealedPath(): string {
    return join(this.opts.dataDir, 'sealed-keys.json');
  }

  /** The enclave's sealed time floor (docs/decisions/0852-enclave-time-floor.md); opaque here. */
  private get sealedStatePath(): string {
    return join(this.opts.dataDir, 'sealed-state.json');
  }

  /** Best effort (a full disk keeps the previous floor; the enclave re-emits on its next advance). */
  private saveSealedState(state: unknown): void {
    if (state === undefined || state === null) return;
    const tmp = `${this.sealedStatePath}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(state), { mode: 0o600 });
      renameSync(tmp, this.sealedStatePath);
    } catch (e) {
      this.opts.logger.warn('could not store the enclave state', {
        code: (e as { code?: string }).code ?? 'E_INTERNAL',
      });
    }
  }

  /** Start (or restart) the enclave and open its sealed keys; first start creates them. */
  private async initEnclave(): Promise<EnclaveIdentity> {
    await this.supervisor.ready();
    let sealed: unknown;
    try {
      sealed = JSON.parse(readFileSync(this.sealedPath, 'utf8'));
    } catch {
      sealed = undefined;
    }
    let sealedState: unknown;
    try {
      sealedState = JSON.parse(readFileSync(this.sealedStatePath, 'utf8'));
    } catch {
      sealedState = undefined;
    }
    const out = await this.supervisor.call<EnclaveIdentity & { sealedKeys: unknown; sealedState?: unknown }>(
      'init',
      { sealedKeys: sealed ?? null, sealedState: sealedState ?? null, operator: this.operator ?? null },
    );
    this.saveSealedState(out.sealedState);
    if (sealed === undefined) {
      const tmp = `${this.sealedPath}.tmp`;
      writeFileSync(tmp, JSON.stringify(out.sealedKeys), { mode: 0o600 });
      renameSync(tmp, this.sealedPath);
    }
    const { sealedKeys: _s, sealedState: _t, ...identity } = out;
    return identity;
  }

  async start(): Promise<void> {
    const log = this.opts.logger;
    // The enclave hands out a new sealed time floor as it advances; the host only stores it.
    this.supervisor.on('event', (name: string, data: unknown) => {
      if (name !== 'enclaveState') return;
      try {
        this.saveSealedState((data as { sealedState?: unknown } | null)?.sealedState);
      } catch (e) {
        log.warn('could not store the enclave state', {
          code: (e as { code?: string }).code ?? 'E_INTERNAL',
        });
      }
    });
    this.supervisor.on('restarted', () => {
      this.metrics.enclaveRestarted();
      this.initEnclave()
        .then((id) => {
          if (this.identity && id.enclaveAddress !== this.identity.enclaveAddress)
            log.error('enclave identity changed after restart', { enclaveId: id.enclaveId });
          log.info('enclave restarted with the same identity', { enclaveId: id.enclaveId });
        })
        .catch((e: unknown) => log.error('enclave re-init failed', { code: (e as FirnError).code }));
    });
    this.supervisor.start();
    this.identity = await this.initEnclave();
    log.info('enclave ready', { ...this.identity });
    // The job API needs the chain (claim, proof, fail); a serve-only node has attestation alone.
    if (this.opts.chain) {
      // A full disk must not stop the node from starting: it serves attestation and reports
      // storage as down; jobs are refused with 507 until the database opens.
      try {
        this.db = new NodeDb(this.opts.dataDir);
      } catch (e) {
        log.error('the node database cannot be opened; jobs are refused', { code: (e as FirnError).code });
      }
      const sch = this.opts.scheduler ?? {};
      this.jobs = this.db
        ? new JobService(this, {
            ...this.opts.chain,
            logger: log,
            jobPolicy: this.jobPolicy,
            retention: this.retention,
            ...(this.opts.sharedArtifacts === undefined
              ? {}
              : { sharedArtifacts: this.opts.sharedArtifacts }),
            ...(sch.maxConcurrentJobs === undefined ? {} : { maxConcurrentJobs: sch.maxConcurrentJobs }),
            ...(sch.maxQueuedJobs === undefined ? {} : { maxQueuedJobs: sch.maxQueuedJobs }),
            ...(sch.jobTimeoutMs === undefined ? {} : { enclaveTimeoutMs: sch.jobTimeoutMs }),
            ...(sch.sessionIdleMs === undefined ? {} : { sessionIdleMs: sch.sessionIdleMs }),
            ...(sch.chainCheckIntervalMs === undefined
              ? {}
              : { chainCheckIntervalMs: sch.chainCheckIntervalMs }),
            ...(sch.finalizeIntervalMs === undefined ? {} : { finalizeIntervalMs: sch.finalizeIntervalMs }),
            ...(sch.lostProofChecks === undefined ? {} : { lostProofChecks: sch.lostProofChecks }),
            ...(sch.maxJobsPerRequester === undefined
              ? {}
              : { maxJobsPerRequester: sch.maxJobsPerRequester }),
            sessionBounds: {
              ...(sch.maxSessionsPerRequester === undefined
                ? {}
                : { maxSessionsPerRequester: Math.max(1, sch.maxSessionsPerRequester) }),
              ...(sch.sessionPollMs === undefined ? {} : { pollMs: sch.sessionPollMs }),
            },
          })
        : undefined;
      // Without a database the job routes answer 507 (nodeApi.ts).
      if (this.jobs) await this.jobs.start();
    }
    this.server = createServer(
      getRequestListener(createNodeApi(this).fetch, {
        // Handlers stream on the raw request: an unread body is not drained after a refusal (the
        // connection is closed instead, http/router.ts answerError), and the process's global
        // Request/Response stay Node's own.
        autoCleanupIncoming: false,
        overrideGlobalObjects: false,
        // A request the adapter cannot turn into a URL (a Host that is no host, a backslash in the
        // path) is the caller's mistake: the JSON error body naming it, not a bare 400.
        errorHandler: (e: unknown) => {
          const bad = e instanceof RequestError;
          const error = bad
            ? {
                code: 'E_INVALID_INPUT',
                message: `malformed Host header or request target: ${(e as Error).message}`,
              }
            : { code: 'E_INTERNAL', message: 'internal error' };
          return new Response(JSON.stringify({ error }), {
            status: bad ? 400 : 500,
            headers: { 'content-type': 'application/json; charset=utf-8' },
          });
        },
      }),
    );
    applyHttpLimits(this.server, this.limits);
    // Warm sessions' binary streams (HTTP Upgrade; docs/decisions/1240-direct-session-endpoint.md).
    this.server.on('upgrade', sessionStreamUpgrade(this));
    const where = `${this.opts.host ?? '127.0.0.1'}:${this.opts.port ?? 0}`;
    await new Promise<void>((resolve, reject) => {
      // A port already taken (or not ours to bind) is the operator's to fix, not a crash.
      this.server!.once('error', (e: NodeJS.ErrnoException) => {
        const code = e.code === 'EADDRINUSE' ? 'E_CONFLICT' : 'E_INVALID_INPUT';
        reject(
          new FirnError(
            code,
            `the node API cannot listen on ${where} (--host/--port): ${e.code ?? e.message}`,
          ),
        );
      });
      this.server!.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', resolve);
    }).catch(async (e: unknown) => {
      // Nothing keeps running: the enclave, the job service and the database are stopped.
      await this.stop().catch(() => undefined);
      throw e;
    });
    const addr = this.server.address() as AddressInfo;
    this.url = this.opts.endpoint ?? `http://${this.opts.host ?? '127.0.0.1'}:${addr.port}`;
    log.info('node API listening', { url: this.url });
  }

  /**
   * The node's health: `enclave` (answers hello within 2 s), `storage` (the database takes a write),
   * `chain` (the RPC answered at its last read; block, host clock skew). `ok` only when all are up;
   * a serve-only node (no chain) reports the enclave alone.
   */
  async health(): Promise<{
    ok: boolean;
    enclave: 'up' | 'down';
    storage?: 'up' | 'down';
    chain?: ReturnType<NonNullable<NodeDaemon['jobs']>['chainMonitor']['health']>;
    jobs?: { active: number };
  }> {
    let enclave: 'up' | 'down' = 'up';
    try {
      await this.supervisor.call('hello', {}, 2000);
    } catch {
      enclave = 'down';
    }
    if (!this.opts.chain) return { ok: enclave === 'up', enclave };
    const storage: 'up' | 'down' = this.db?.writable() ? 'up' : 'down';
    const chain = this.jobs?.chainMonitor.health() ?? { up: false, error: 'job service not started' };
    return {
      ok: enclave === 'up' && storage === 'up' && chain.up,
      enclave,
      storage,
      chain,
      ...(this.jobs ? { jobs: { active: this.jobs.activeJobs } } : {}),
    };
  }

  /** Evidence for a caller-chosen nonce (the caller then verifies it itself). */
  async attest(nonce: Uint8Array): Promise<EvidenceBundle> {
    assertNonce(nonce);
    let bundle: EvidenceBundle;
    try {
      bundle = await this.supervisor.call<EvidenceBundle>('attest', {
        nonce: `0x${Buffer.from(nonce).toString('hex')}`,
      });
    } catch (e) {
      this.metrics.attestation('error');
      throw e;
    }
    this.metrics.attestation('ok');
    const source = this.opts.collateralSource;
    if (source === undefined) return bundle;
    return attachCollateral(bundle, source, Math.floor(Date.now() / 1000), this.opts.logger);
  }

  async stop(): Promise<void> {
    this.jobs?.stop();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
    await this.supervisor.stop();
    this.db?.close();
  }
}
