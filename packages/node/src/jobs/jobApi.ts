import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import {
  claimJob,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  failJob,
  type FirnJob,
  getJob,
  JobStatus,
  submitProof,
} from '@firn/chain';
import {
  computeInputCommitment,
  FirnError,
  type Hex,
  hexBytes,
  isFirnError,
  MAX_JOB_INPUTS,
  parseWorkProofJson,
  TEE_TYPES,
  type TeeTypeName,
  toErrorBody,
} from '@firn/core';
import type { RunJobResult } from '@firn/enclave';
import { submissionSigner, uploadIntentOf } from '../http/auth.ts';
import { holdWhileServing, ipPrefix, rateLimited, remoteIp } from '../http/limits.ts';
import { readJson, requireMediaType, type Router, sendJson } from '../http/router.ts';
import type { Logger } from '../logger.ts';
import type { NodeDaemon } from '../nodeDaemon.ts';
import { OPENAPI_DOCUMENT } from '../openapi.ts';
import type { S3ArtifactStore } from '../storage/s3ArtifactStore.ts';
import { ArtifactStore, DEFAULT_MAX_ARTIFACT_BYTES, parseArtifactId } from '../storage/artifactStore.ts';
import { type JobRecord, JobStore } from '../storage/jobStore.ts';
import { QuotaLedger } from '../storage/quota.ts';
import { Sema } from 'async-sema';
import { postSignedDataRecords } from './postSignedData.ts';
import { SessionService } from './sessionApi.ts';

export interface JobApiOptions {
  rpcUrl: string;
  /** The operator's key: claims jobs, submits proofs, fails jobs. */
  operatorKey: Hex;
  deployment: FirnDeployment;
  logger: Logger;
  maxArtifactBytes?: number;
  pollingIntervalMs?: number;
  /** How long one job may run in the enclave, ms (default 10 minutes). */
  enclaveTimeoutMs?: number;
  /** Host clock, unix seconds (only for its own pre-checks; the chain and enclave keep their own). */
  now?: () => number;
  /** Jobs run in the enclave at once; more wait, unclaimed, as `accepted` (default 4). */
  maxConcurrentJobs?: number;
  /** Which jobs this operator takes at all (defaults: DEFAULT_JOB_POLICY). */
  jobPolicy?: Partial<JobPolicy>;
  /**
   * A shared S3-compatible store (`--artifact-store s3://...`): inputs missing here are fetched
   * from it and checked against their id; uploads and outputs are copied to it.
   */
  sharedArtifacts?: S3ArtifactStore;
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

/** How long the enclave's pre-flight of one request may take, ms (no input is read). */
export const PREFLIGHT_TIMEOUT_MS = 30_000;

export const MAX_JOB_BODY_BYTES = 2 * 1024 * 1024;
/** Interval of the SSE keep-alive comment on GET /v1/jobs/{id}/events, ms. */
export const SSE_HEARTBEAT_MS = 15_000;
/** Outputs up to this size are inlined (base64) in GET /v1/jobs/{id}/result. */
export const MAX_INLINE_OUTPUT_BYTES = 8 * 1024 * 1024;

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** bytes32 reason for failJob: the stable error code in ASCII, right-padded with zeros. */
export function failureReason(code: string): Hex {
  const b = Buffer.alloc(32);
  b.write(code.slice(0, 32), 'ascii');
  return `0x${b.toString('hex')}`;
}

/** Decode a failJob reason back to the error code. */
export function failureCodeOf(reason: Hex): string {
  return Buffer.from(reason.slice(2), 'hex').toString('ascii').replace(/\0+$/, '');
}

export interface SubmitBody {
  jobId: Hex;
  enc: Hex;
  ciphertext: string;
  inputs: Hex[];
}

export function parseSubmitBody(o: unknown): SubmitBody {
  const r = o as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null) throw new FirnError('E_INVALID_INPUT', 'body must be an object');
  const jobId = parseArtifactId(r.jobId) as Hex;
  hexBytes(r.enc, 'enc', 32);
  if (
    typeof r.ciphertext !== 'string' ||
    !B64_RE.test(r.ciphertext) ||
    r.ciphertext.length > MAX_JOB_BODY_BYTES
  )
    throw new FirnError('E_INVALID_INPUT', 'ciphertext must be base64');
  if (!Array.isArray(r.inputs) || r.inputs.length === 0 || r.inputs.length > MAX_JOB_INPUTS)
    throw new FirnError('E_INVALID_INPUT', `inputs must list 1..${MAX_JOB_INPUTS} artifact ids`);
  return {
    jobId,
    enc: (r.enc as string).toLowerCase() as Hex,
    ciphertext: r.ciphertext,
    inputs: r.inputs.map(parseArtifactId),
  };
}

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
  readonly clients: FirnClients;
  private readonly events = new Map<Hex, string[]>();
  private readonly listeners = new Map<Hex, Set<() => void>>();
  private chainQueue: Promise<unknown> = Promise.resolve();
  private readonly running = new Set<Promise<void>>();
  /** Open event streams by remote IP (HttpLimits.maxEventStreamsPerIp). */
  private readonly streamsPerIp = new Map<string, number>();
  /** Bounded concurrency: a job is claimed only once it has an enclave slot. */
  private readonly jobSlots: Sema;
  readonly sessions: SessionService;
  /** The terms in force (options over DEFAULT_JOB_POLICY). */
  readonly policy: JobPolicy;

  constructor(
    readonly node: NodeDaemon,
    readonly opts: JobApiOptions,
  ) {
    this.artifacts = new ArtifactStore(node.opts.dataDir);
    this.jobs = new JobStore(node.opts.dataDir);
    this.quota = new QuotaLedger(node.opts.dataDir, this.artifacts.dir, node.quotas);
    this.clients = createFirnClients(opts.rpcUrl, opts.operatorKey, opts.deployment, {
      pollingIntervalMs: opts.pollingIntervalMs ?? 200,
    });
    this.policy = { ...DEFAULT_JOB_POLICY, ...opts.jobPolicy };
    this.sessions = new SessionService(this);
    this.jobSlots = new Sema(Math.max(1, opts.maxConcurrentJobs ?? 4));
    node.supervisor.on('event', (name: string, data: unknown) => {
      if (name !== 'jobEvent') return;
      const d = data as { jobId?: unknown; message?: unknown } | null;
      if (typeof d?.jobId !== 'string' || typeof d.message !== 'string' || d.message.length > 1_000_000)
        return;
      const id = d.jobId.toLowerCase() as Hex;
      const list = this.events.get(id);
      if (!list || list.length >= 10_000) return;
      list.push(d.message);
      this.notify(id);
    });
  }

  private now(): number {
    return (this.opts.now ?? (() => Math.floor(Date.now() / 1000)))();
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
   * The host's pre-checks before claiming a job (for jobs and sessions): inputs stored here, the
   * job Open on chain, for this TEE type and measurement, before its deadline, and with this input
   * commitment. Returns the on-chain job.
   */
  async checkOpenJob(body: Pick<SubmitBody, 'jobId' | 'inputs'>, onChain?: FirnJob) {
    await this.fetchShared(body.inputs);
    for (const id of body.inputs)
      if (!this.artifacts.has(id))
        throw new FirnError('E_NOT_FOUND', `input artifact ${id} is not stored here`);
    const identity = this.node.identity!;
    const job = onChain ?? (await getJob(this.clients, body.jobId));
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
    if (!same(computeInputCommitment(body.inputs), job.inputCommitment))
      throw new FirnError('E_JOB_INVALID', 'inputs do not match the on-chain input commitment');
    this.checkPolicy(job);
    return job;
  }

  /**
   * The operator's terms (JobPolicy): escrow at least `minEscrowWei`, and at least
   * `minClaimSeconds` both in the job's claim timeout and before its deadline (host clock), so
   * the node never claims a job it has no time to run. Raises E_POLICY_REJECTED (403).
   */
  checkPolicy(job: Pick<FirnJob, 'escrow' | 'claimTimeout' | 'deadline'>): void {
    const { minEscrowWei, minClaimSeconds } = this.policy;
    if (job.escrow < minEscrowWei)
      throw new FirnError(
        'E_POLICY_REJECTED',
        `this node takes jobs with an escrow of at least ${minEscrowWei} wei (job has ${job.escrow})`,
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
   * without a valid signature, 404 for a job the chain does not know, 403 for any other signer.
   * Runs before anything is recorded, so a stranger's submission changes nothing. Returns the job.
   */
  async authorizeSubmission(
    req: IncomingMessage,
    route: 'POST /v1/jobs' | 'POST /v1/sessions',
    body: SubmitBody,
  ): Promise<FirnJob> {
    const signer = submissionSigner(req, route, this.requestScope(), body);
    const job = await getJob(this.clients, body.jobId);
    if (job.status === JobStatus.None) throw new FirnError('E_NOT_FOUND', 'no such job on chain');
    if (!same(signer, job.requester))
      throw new FirnError('E_FORBIDDEN', 'only the requester of this job on chain may submit it');
    return job;
  }

  /** Host clock, unix seconds. */
  clock(): number {
    return this.now();
  }

  mount(router: Router): void {
    router.add('GET', '/v1/openapi.json', () => OPENAPI_DOCUMENT);
    router.add('PUT', '/v1/artifacts', ({ req, res }) => this.upload(req, res));
    router.add('GET', '/v1/artifacts/:id', ({ params, res }) => this.download(params.id!, res));
    router.add('POST', '/v1/jobs', ({ req, res }) => this.submit(req, res));
    router.add('GET', '/v1/jobs/:id', ({ params }) => this.status(params.id!));
    router.add('GET', '/v1/jobs/:id/events', ({ params, req, res }) => this.stream(params.id!, req, res));
    router.add('GET', '/v1/jobs/:id/result', ({ params }) => this.result(params.id!));
    this.sessions.mount(router);
  }

  /**
   * PUT /v1/artifacts: 415 unless application/octet-stream; 413 over the size cap; 401 without a
   * valid signed upload intent; 403 when the uploader holds no balance at the latest block; 429
   * when the uploader or the node has too many uploads in flight; 413 (E_QUOTA_EXCEEDED) over the
   * uploader's or the node's disk quota. Only then is the body streamed to disk, and it must hash
   * to the artifact id of the intent.
   */
  private async upload(req: IncomingMessage, res: ServerResponse): Promise<undefined> {
    await this.node.rateLimiter.take(remoteIp(req));
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
    const balance = await this.clients.public.getBalance({ address: intent.uploader, blockTag: 'latest' });
    if (balance === 0n)
      throw new FirnError(
        'E_FORBIDDEN',
        'uploads are taken only from an address that holds a balance on chain',
      );
    if (this.artifacts.has(intent.artifactId)) {
      // Already stored (by anyone): nothing is written or charged; the body is discarded.
      sendJson(res, 200, { id: intent.artifactId, size: this.artifacts.size(intent.artifactId) });
      return undefined;
    }
    const releaseSlot = this.node.uploadSlots.tryAcquire(intent.uploader, ipPrefix(remoteIp(req)));
    try {
      const reservation = this.quota.reserve(intent.uploader, declared);
      try {
        const r = await this.artifacts.put(req as AsyncIterable<Uint8Array>, declared, intent.artifactId);
        reservation.commit(r.created);
        this.opts.logger.info('artifact stored', { artifactId: r.id, size: r.size, created: r.created });
        await this.copyToShared(r.id);
        sendJson(res, r.created ? 201 : 200, { id: r.id, size: r.size });
      } catch (e) {
        reservation.release();
        throw e;
      }
    } finally {
      releaseSlot();
    }
    return undefined;
  }

  /** Inputs not stored here are copied from the shared store, each checked against its id. */
  private async fetchShared(ids: readonly Hex[]): Promise<void> {
    const shared = this.opts.sharedArtifacts;
    if (!shared) return;
    for (const id of ids) {
      if (this.artifacts.has(id) || !(await shared.has(id))) continue;
      const r = await shared.copyToLocal(id, this.artifacts, this.opts.maxArtifactBytes);
      if (r.created) this.quota.addStored(r.size);
    }
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

  private download(idText: string, res: ServerResponse): Promise<undefined> {
    const id = parseArtifactId(idText);
    const size = this.artifacts.size(id);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    const s = this.artifacts.read(id);
    return new Promise((resolve) => {
      s.on('error', () => {
        res.destroy();
        resolve(undefined);
      });
      res.on('close', () => resolve(undefined));
      s.pipe(res);
    });
  }

  private async submit(req: IncomingMessage, res: ServerResponse): Promise<undefined> {
    await this.node.rateLimiter.take(remoteIp(req));
    const body = parseSubmitBody(await readJson(req, MAX_JOB_BODY_BYTES));
    const onChain = await this.authorizeSubmission(req, 'POST /v1/jobs', body);
    await this.fetchShared(body.inputs);
    for (const id of body.inputs)
      if (!this.artifacts.has(id))
        throw new FirnError('E_NOT_FOUND', `input artifact ${id} is not stored here`);
    if (this.jobs.get(body.jobId)) throw new FirnError('E_CONFLICT', 'this job was already submitted here');
    const job = await this.checkOpenJob(body, onChain);
    const now = this.now();
    const record: JobRecord = {
      jobId: body.jobId,
      status: 'accepted',
      inputs: body.inputs,
      createdAt: now,
      updatedAt: now,
    };
    this.jobs.put(record);
    this.events.set(body.jobId, []);
    const run = this.process(
      body,
      { workloadHash: job.workloadHash, inputCommitment: job.inputCommitment },
      job,
    ).finally(() => this.running.delete(run));
    this.running.add(run);
    sendJson(res, 202, record);
    return undefined;
  }

  private async process(
    body: SubmitBody,
    onChain: { workloadHash: Hex; inputCommitment: Hex },
    job: FirnJob,
  ): Promise<void> {
    const log = this.opts.logger.child({ jobId: body.jobId });
    const identity = this.node.identity!;
    let claimed = false;
    await this.jobSlots.acquire();
    const outDir = this.artifacts.tempDir('job');
    try {
      // The wait for a slot may have eaten the time to run it: the terms are checked again.
      this.checkPolicy(job);
      // The enclave opens and checks the request first: one that cannot run costs no gas.
      await this.preflight('preflightJob', body, onChain);
      const claim = await this.chain(() =>
        claimJob(this.clients, { jobId: body.jobId, enclaveId: identity.enclaveId }),
      ).catch(async (e: unknown) => {
        await this.releasePreflight(body.jobId);
        throw e;
      });
      claimed = true;
      this.jobs.update(body.jobId, { status: 'running', txs: { claim: claim.hash } }, this.now());
      log.info('job claimed; running in the enclave');
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
        },
        this.opts.enclaveTimeoutMs ?? 600_000,
      );
      const outputs = [];
      for (const o of r.outputs) {
        const stored = await this.artifacts.adopt(o.path, o.artifactId);
        if (stored.created) this.quota.addStored(stored.size);
        await this.copyToShared(stored.id);
        outputs.push({ role: o.role, artifactId: stored.id, contentType: o.contentType, size: stored.size });
      }
      const p = parseWorkProofJson(r.proof);
      const tx = await this.chain(() =>
        submitProof(this.clients, { jobId: body.jobId, proof: { ...p.proof }, signature: p.signature }),
      );
      this.jobs.update(
        body.jobId,
        {
          status: 'proved',
          outputs,
          proof: r.proof,
          response: r.response,
          txs: { ...this.jobs.get(body.jobId)?.txs, proof: tx.hash },
        },
        this.now(),
      );
      log.info('proof submitted', { outputs: outputs.length, workUnits: p.proof.workUnits });
      // Enclave-signed data records go to the data ledger after the proof (never failing the job).
      if (r.signedData !== undefined && r.signedData.length > 0)
        await postSignedDataRecords(this.clients, r.signedData, log);
    } catch (e) {
      const error = toErrorBody(e);
      log.warn('job failed', { code: error.code });
      let failTx: Hex | undefined;
      if (claimed) {
        try {
          failTx = (
            await this.chain(() =>
              failJob(this.clients, { jobId: body.jobId, reason: failureReason(error.code) }),
            )
          ).hash;
        } catch (e2) {
          log.error('failJob failed', { code: isFirnError(e2) ? e2.code : 'E_INTERNAL' });
        }
      }
      this.jobs.update(
        body.jobId,
        {
          status: 'failed',
          error,
          ...(failTx ? { txs: { ...this.jobs.get(body.jobId)?.txs, fail: failTx } } : {}),
        },
        this.now(),
      );
    } finally {
      this.jobSlots.release();
      await rm(outDir, { recursive: true, force: true }).catch(() => undefined);
      this.notify(body.jobId);
    }
  }

  private record(idText: string): JobRecord {
    const r = this.jobs.get(parseArtifactId(idText));
    if (!r) throw new FirnError('E_NOT_FOUND', 'no such job here');
    return r;
  }

  private status(idText: string): unknown {
    const { response: _r, ...rest } = this.record(idText);
    return rest;
  }

  private result(idText: string): unknown {
    const r = this.record(idText);
    if (r.status === 'failed')
      throw new FirnError('E_JOB_FAILED', `job failed: ${r.error?.code ?? 'E_INTERNAL'}`);
    // A session's answers went to the requester in-band; its result is the transcript opening
    // verifiers check the proof's outputCommitment against (docs/decisions/0830-result-availability.md).
    if (r.status === 'proved' && r.proof && r.sessionOpening)
      return { jobId: r.jobId, proof: r.proof, outputs: [], session: r.sessionOpening };
    if (r.status !== 'proved' || !r.outputs || !r.proof)
      throw new FirnError('E_CONFLICT', `job is ${r.status}, no result yet`);
    return {
      jobId: r.jobId,
      proof: r.proof,
      response: r.response,
      outputs: r.outputs.map((o) => ({
        ...o,
        ...(o.size <= MAX_INLINE_OUTPUT_BYTES
          ? { sealed: Buffer.from(readFileSync(this.artifacts.path(o.artifactId))).toString('base64') }
          : {}),
      })),
    };
  }

  private stream(idText: string, req: IncomingMessage, res: ServerResponse): Promise<undefined> {
    const id = parseArtifactId(idText);
    this.record(id);
    // Streams are held open for long: a few per IP, so they cannot take the connection slots.
    const ip = remoteIp(req);
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
    let sent = 0;
    return new Promise((resolve) => {
      const flush = () => {
        const list = this.events.get(id) ?? [];
        for (; sent < list.length; sent++)
          res.write(
            `id: ${sent}\nevent: progress\ndata: ${JSON.stringify({ seq: sent, message: list[sent] })}\n\n`,
          );
        const r = this.jobs.get(id);
        if (r && (r.status === 'proved' || r.status === 'failed')) {
          res.write(
            `event: end\ndata: ${JSON.stringify({ status: r.status, ...(r.error ? { error: r.error } : {}) })}\n\n`,
          );
          done();
        }
      };
      const set = this.listeners.get(id) ?? new Set();
      this.listeners.set(id, set);
      const done = () => {
        clearInterval(heartbeat);
        set.delete(flush);
        res.end();
        resolve(undefined);
      };
      set.add(flush);
      req.on('close', () => {
        clearInterval(heartbeat);
        set.delete(flush);
        resolve(undefined);
      });
      flush();
    });
  }

  /** Wait for jobs in flight (for shutdown and tests). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running]);
    this.sessions.stopSweeper();
  }
}

/** `extendRoutes` for NodeDaemon: mounts the job API on the node's router. */
export function jobApiRoutes(opts: JobApiOptions & { onService?: (s: JobService) => void }) {
  return (router: Router, node: NodeDaemon): void => {
    const service = new JobService(node, opts);
    service.mount(router);
    opts.onService?.(service);
  };
}
