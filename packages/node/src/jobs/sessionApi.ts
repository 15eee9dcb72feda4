import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { claimJob, type FirnClients, type FirnDeployment, type FirnJob, failJob } from '@firn/chain';
import {
  DEFAULT_SESSION_POLL_MS,
  FirnError,
  type Hex,
  isFirnError,
  MAX_SESSION_POLL_MS,
  parseWorkProofJson,
  toErrorBody,
} from '@firn/core';
import { MAX_SESSION_MESSAGE_BYTES, SESSION_MESSAGE_MIN_BYTES, sessionMessageHeader } from '@firn/crypto';
import {
  type CloseSessionResult,
  MAX_STREAM_FRAME_BYTES,
  type OpenSessionResult,
  STREAM_TAG,
  StreamFrameReader,
  writeStreamFrame,
} from '@firn/enclave';
import { SessionRelay } from './sessionRelay.ts';
import { sessionAuthOf } from '../http/auth.ts';
import { endUpgradedSocket, holdWhileServing, rateLimited, remoteClient } from '../http/limits.ts';
import { readBody, readJson, requireMediaType } from '../http/router.ts';
import type { ChainMonitor } from '../chainMonitor.ts';
import type { Logger } from '../logger.ts';
import type { ArtifactStore } from '../storage/artifactStore.ts';
import type { JobStore } from '../storage/jobStore.ts';
import type { NodeDb } from '../storage/nodeDb.ts';
import type { JobHost } from './jobHost.ts';
import { parseArtifactId } from '../storage/artifactStore.ts';
import { failureReason, MAX_JOB_BODY_BYTES, parseSubmitBody, type SubmitBody } from './submission.ts';

/** Largest session request body the host relays (the enclave enforces the same cap). */
export const MAX_SESSION_REQUEST_BYTES = MAX_SESSION_MESSAGE_BYTES;
/** The host closes (and proves) a session idle this long, before the enclave's own idle limit. */
export const DEFAULT_HOST_SESSION_IDLE_MS = 5 * 60_000;
/**
 * Requests of one session relayed to the enclave at once; more get 429. The requester's client
 * sends one at a time; the second slot lets a requester's message pass one a stranger guessed
 * the header of.
 */
export const MAX_SESSION_REQUESTS_IN_FLIGHT = 2;
/** How far ahead of the next expected sequence number a request's header may be (pipelining). */
export const SESSION_SEQUENCE_WINDOW = 2n;
/**
 * A session message refused by its header is answered after about this delay, ms (jittered
 * between half and one and a half times it, so refusals do not come back in bursts), with its
 * body left unread (the socket backs up): a sender of junk gets at most one refusal per
 * connection per delay, so a flood cannot turn over fast enough to crowd out the requester's
 * messages. Shorter than the body-rate grace, so a held connection is not cut as a slow body.
 */
export const SESSION_REFUSAL_DELAY_MS = 2_000;
/** The protocol name of a session stream (HTTP Upgrade on GET /v1/sessions/{id}/stream). */
export const SESSION_STREAM_PROTOCOL = 'firn-session/1';
/** Requests one session stream may have at the enclave at once (pipelining depth); more: E_RATE_LIMITED. */
export const MAX_STREAM_REQUESTS_IN_FLIGHT = 16;
/** Open session streams per session; more are refused (409). */
export const MAX_STREAMS_PER_SESSION = 4;

/**
 * The host's bounds on a session's lifetime and on what one requester may hold open
 * (docs/decisions/1550-node-host-resource-bounds.md). Each is configurable
 * (JobApiOptions.sessionBounds) and each refusal or close names itself.
 */
export interface SessionBounds {
  /**
   * A session stream (GET .../stream) with no request in progress, no frame begun and nothing
   * answered for this long is ended with an E_TIMEOUT refusal frame, ms. Default
   * DEFAULT_HOST_SESSION_IDLE_MS (5 minutes: a requester's stream is not cut before its session
   * would be closed as idle; its client then sends by POST).
   */
  streamIdleMs: number;
  /**
   * A frame whose first byte arrived must be whole within this long, ms, or the stream is ended
   * with an E_TIMEOUT refusal frame: a sender dribbling a frame cannot hold the stream and its
   * buffer (up to the 8 MiB frame cap). Default 30 000.
   */
  frameMs: number;
  /**
   * Longest a session stays open on this host, ms; then it is closed and proved like an idle
   * one. It is also closed this margin before its claim on chain lapses (a session proved after
   * its claim cannot be paid): whichever comes first. Default 24 h.
   */
  maxSessionMs: number;
  /**
   * Sessions one requester (the job's requester on chain) may have open or opening on this node
   * at once; one more is refused E_RATE_LIMITED (429) before anything is claimed. Default 4.
   */
  maxSessionsPerRequester: number;
  /**
   * How long a session's child keeps its event loop polling after each answer, ms, so that the
   * requester's next request is read without waking a sleeping process
   * (docs/decisions/1800-session-ends-poll-while-an-answer-is-due.md). It is the CPU of one core
   * this node spends per answer at most; 0 turns it off. The enclave caps it at 1 000. Default 20.
   */
  pollMs: number;
}

export const DEFAULT_SESSION_BOUNDS: SessionBounds = Object.freeze({
  streamIdleMs: DEFAULT_HOST_SESSION_IDLE_MS,
  frameMs: 30_000,
  maxSessionMs: 24 * 3600_000,
  maxSessionsPerRequester: 4,
  pollMs: DEFAULT_SESSION_POLL_MS,
});

/** The longest SessionBounds.pollMs, ms: the enclave's and the SDK's MAX_SESSION_POLL_MS (@firn/core). */
export const MAX_HOST_SESSION_POLL_MS = MAX_SESSION_POLL_MS;

/** Why `v` is no SessionBounds.pollMs (an integer 0 to MAX_HOST_SESSION_POLL_MS), or undefined. */
function badPollMs(v: unknown): string | undefined {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_HOST_SESSION_POLL_MS
    ? undefined
    : `SessionBounds.pollMs must be an integer number of ms, 0 to ${MAX_HOST_SESSION_POLL_MS} (got ${String(v).slice(0, 32)})`;
}

/** A session is closed this long before its claim lapses (or a tenth of the claim, if shorter), ms. */
export const SESSION_CLAIM_MARGIN_MS = 60_000;

interface HostSession {
  jobId: Hex;
  /** The job's requester on chain, lowercase (SessionBounds.maxSessionsPerRequester). */
  requester?: string;
  /** Host time after which the sweeper closes the session (SessionBounds.maxSessionMs, claim end), ms. */
  expiresAt?: number;
  /** The timer that closes it at expiresAt. */
  expiry?: NodeJS.Timeout;
  /** Host time the session opened, ms. */
  openedAt?: number;
  lastUsed: number;
  /** Sequence number of the next request the enclave expects (it accepted this many). */
  nextSeq: bigint;
  /** Requests of this session relayed to the enclave now. */
  inFlight: number;
  /** Set once the enclave accepted a close: no more requests or closes. */
  closed?: boolean;
  /** Close attempts run one after another, so a refused one never blocks or races the real one. */
  closeQueue?: Promise<unknown>;
  /** The accepted close (its proof submission), for the host's idle sweeper. */
  closing?: Promise<CloseSessionResult & { proofTx: Hex }>;
  /** The one connection to the session's direct endpoint (absent: requests go over the enclave pipe). */
  relay?: SessionRelay;
  /**
   * The requester may connect to the session's child itself (decision 1310): its requests then
   * pass only this host's kernel, so `lastUsed` is learnt from the enclave before an idle close.
   */
  direct?: boolean;
  /** The requester's open session streams (ended when the session closes). */
  streams: Set<Duplex>;
  /**
   * The session's transport token (32 random bytes), given only to the requester in the open
   * answer and required on every request and stream (`x-firn-session-token`, base64url): without
   * it nobody can take one of the session's in-flight or stream slots. Memory only.
   */
  token?: Buffer;
}

/**
 * The IP address a request reached this host on, as the session child can listen on it (an
 * IPv4-mapped IPv6 address as plain IPv4); undefined when the socket has none (not TCP).
 */
function directHostOf(req: IncomingMessage): string | undefined {
  const a = req.socket?.localAddress;
  if (typeof a !== 'string' || a === '') return undefined;
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** Header by which a requester asks, on POST /v1/sessions, to connect to the session's child itself. */
export const SESSION_DIRECT_HEADER = 'x-firn-session-direct';

/** Header carrying a session's transport token on POST .../requests and GET .../stream. */
export const SESSION_TOKEN_HEADER = 'x-firn-session-token';

/**
 * Check a request's session transport token before anything of its body is read or any slot is
 * taken: a stranger who knows the session id (the public jobId) cannot hold the session's slots.
 * Throws E_UNAUTHENTICATED (401) when it is missing or wrong. Sessions opened without a token
 * (none today) accept any request, as before.
 */
function requireSessionToken(h: HostSession, req: IncomingMessage): void {
  if (h.token === undefined) return;
  const given = req.headers[SESSION_TOKEN_HEADER];
  const bytes = typeof given === 'string' ? Buffer.from(given, 'base64url') : Buffer.alloc(0);
  if (bytes.length !== h.token.length || !timingSafeEqual(bytes, h.token))
    throw new FirnError(
      'E_UNAUTHENTICATED',
      `this session needs the ${SESSION_TOKEN_HEADER} header from its open answer`,
    );
}

/**
 * What the session service uses of the job service (JobService implements it): the shared
 * pre-checks, the operator's chain queue and the stores. An interface, so that the job service
 * can own the session service without an import circle.
 */
export interface SessionJobs {
  readonly node: JobHost;
  readonly opts: {
    readonly deployment: FirnDeployment;
    readonly enclaveTimeoutMs?: number;
    readonly logger: Logger;
  };
  readonly clients: FirnClients;
  readonly jobs: JobStore;
  readonly db: NodeDb;
  readonly artifacts: ArtifactStore;
  readonly chainMonitor: ChainMonitor;
  admit(): void;
  authorizeSubmission(
    req: IncomingMessage,
    route: 'POST /v1/jobs' | 'POST /v1/sessions',
    body: SubmitBody,
  ): Promise<FirnJob>;
  checkJobTerms(job: FirnJob, inputs: readonly Hex[]): void;
  requireInputs(ids: readonly Hex[], requester: string): Promise<void>;
  preflight(
    method: 'preflightJob' | 'preflightSession',
    body: SubmitBody,
    onChain: { workloadHash: Hex; inputCommitment: Hex },
  ): Promise<unknown>;
  releasePreflight(jobId: Hex): Promise<void>;
  chainWrite<T>(f: () => Promise<T>): Promise<T>;
  clock(): number;
  setEnclaveChainTime(): Promise<void>;
  /** When a claim made at `claimedAt` (unix s) lapses: the claim timeout or the deadline. */
  claimEnd(job: Pick<FirnJob, 'claimTimeout' | 'deadline'>, claimedAt: number): number;
  /** Send a kept (`proving`) proof, retried with back-off until the claim lapses (decision 1041). */
  submitKeptProof(jobId: Hex): Promise<void>;
}

/**
 * Warm inference sessions on the node (docs/decisions/0602-inference-sessions.md). Opening claims
 * the session's job on chain and opens it in the enclave; each request is relayed as opaque bytes
 * (no JSON, no disk); closing submits the enclave's Work Proof for the whole session. The host
 * never sees the session keys, tensors or outputs.
 */
export class SessionService {
  private readonly open = new Map<Hex, HostSession>();
  private sweeper: NodeJS.Timeout | undefined;

  readonly idleMs: number;
  /**
   * The bounds in force (options over DEFAULT_SESSION_BOUNDS); each open reads them once, so tests
   * may narrow them between opens and a change during an open never reaches it half-way.
   */
  readonly bounds: SessionBounds;
  /** Sessions being opened, by requester (counted with the open ones against maxSessionsPerRequester). */
  private readonly opening = new Map<string, number>();

  constructor(
    readonly service: SessionJobs,
    idleMs?: number,
    bounds?: Partial<SessionBounds>,
  ) {
    this.idleMs = Math.max(100, idleMs ?? DEFAULT_HOST_SESSION_IDLE_MS);
    this.bounds = { ...DEFAULT_SESSION_BOUNDS, ...bounds };
    const bad = badPollMs(this.bounds.pollMs);
    if (bad !== undefined) throw new FirnError('E_INVALID_INPUT', bad);
  }

  /**
   * Close (and prove) `h` at its expiresAt, ending its streams with an E_TIMEOUT frame that says
   * why. A session closed before then is left alone.
   */
  private expireAt(h: HostSession): void {
    if (h.expiresAt === undefined) return;
    h.expiry = setTimeout(
      () => {
        if (h.closed || h.closing || this.open.get(h.jobId) !== h) return;
        this.service.opts.logger.info('session closed at the end of its lifetime', { jobId: h.jobId });
        endStreams(
          h,
          new FirnError(
            'E_TIMEOUT',
            "the session reached the end of its lifetime on this node (its claim ends, or the node's longest session); open a new session to go on",
          ),
        );
        void this.close(h.jobId).catch(() => undefined);
      },
      Math.min(2 ** 31 - 1, Math.max(0, h.expiresAt - Date.now())),
    );
    h.expiry.unref();
  }

  /** Sessions `requester` has open or opening here. */
  sessionsOf(requester: string): number {
    const key = requester.toLowerCase();
    let n = this.opening.get(key) ?? 0;
    for (const h of this.open.values()) if (!h.closed && h.requester === key) n++;
    return n;
  }

  /**
   * Count a session being opened against its requester's cap; throws E_RATE_LIMITED (429) over
   * SessionBounds.maxSessionsPerRequester. Returns the release (call it once the open ended).
   */
  private reserveOpening(requester: string): () => void {
    const key = requester.toLowerCase();
    const max = this.bounds.maxSessionsPerRequester;
    if (this.sessionsOf(key) >= max)
      throw rateLimited(
        `this requester already has ${max} sessions open on this node (the node's limit); close one (DELETE /v1/sessions/{id}) or retry when one has ended`,
        30,
      );
    this.opening.set(key, (this.opening.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.opening.get(key) ?? 1) - 1;
      if (left <= 0) this.opening.delete(key);
      else this.opening.set(key, left);
    };
  }

  /** Record the session's public metadata (best effort: a full disk does not stop the session). */
  private persist(h: HostSession, state: 'open' | 'closing' | 'closed'): void {
    try {
      this.service.db.putSession({
        jobId: h.jobId,
        openedAt: h.openedAt ?? h.lastUsed,
        lastUsed: h.lastUsed,
        requests: Number(h.nextSeq),
        state,
      });
    } catch {}
  }

  /**
   * DELETE /v1/sessions/{id}: close with the requester's sealed close message
   * (x-firn-session-auth). Like every other route of a session it needs the session's transport
   * token first (`x-firn-session-token`, 401 E_UNAUTHENTICATED without it): a stranger who knows
   * the session id (the public jobId) gets nothing relayed to the enclave
   * (docs/decisions/1773-close-auth-never-ends-a-session.md).
   */
  closeRequest(idText: string, req: IncomingMessage): Promise<unknown> {
    const h = this.session(idText);
    requireSessionToken(h, req);
    const auth = sessionAuthOf(req);
    holdWhileServing(req); // the proof transaction may outlast the idle timeout
    return this.close(h.jobId, auth);
  }

  /**
   * Stop the idle sweeper and end every session stream and endpoint connection (shutdown, tests):
   * upgraded connections are not the HTTP server's any more, so it would wait for them forever.
   */
  stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const h of this.open.values()) {
      clearTimeout(h.expiry);
      for (const st of h.streams) st.destroy();
      h.relay?.close();
    }
  }

  private startSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(
      () => {
        const now = Date.now();
        for (const s of this.open.values()) {
          if (s.closed || s.closing) continue;
          if (now - s.lastUsed >= this.idleMs) void this.closeIfIdle(s).catch(() => undefined);
        }
      },
      // Checked at a fraction of the idle time, so an idle session never holds its slot much longer.
      Math.max(50, Math.min(Math.floor(this.idleMs / 4), 30_000)),
    );
    this.sweeper.unref();
  }

  /**
   * The sweeper's close of a session idle by the host's view. A session the requester reaches
   * directly (decision 1310) is used without the host seeing it: the enclave is asked how long
   * its child has been idle first, and a session still in use is left open.
   */
  private async closeIfIdle(h: HostSession): Promise<void> {
    if (h.direct) {
      const r = await this.service.node.supervisor
        .call<{ idleMs: number }>('sessionIdle', { sessionId: h.jobId })
        .catch(() => undefined);
      if (r !== undefined && Number.isFinite(r.idleMs) && r.idleMs < this.idleMs) {
        h.lastUsed = Math.max(h.lastUsed, Date.now() - Math.max(0, r.idleMs));
        return;
      }
    }
    if (!h.closed && !h.closing) await this.close(h.jobId);
  }

  /** POST /v1/sessions. `json`: the body already read by the HTTP layer (absent: read here). */
  async openSession(
    req: IncomingMessage,
    json?: unknown,
  ): Promise<
    Omit<OpenSessionResult, 'endpoint'> & { accessToken: string; direct?: { port: number; token: Hex } }
  > {
    const s = this.service;
    if (json === undefined) await s.node.rateLimiter.take(remoteClient(req));
    const body = parseSubmitBody(json ?? (await readJson(req, MAX_JOB_BODY_BYTES)));
    if (body.inputs.length !== 1)
      throw new FirnError('E_INVALID_INPUT', 'a session takes one input (the model)');
    // A session's answers go to the requester in-band and nothing is stored for it: a bound on
    // stored outputs would be a promise the node never checks (decision 1690).
    if (body.maxOutputBytes !== undefined)
      throw new FirnError(
        'E_INVALID_INPUT',
        'maxOutputBytes applies to jobs only: a session stores no outputs (its answers come back in-band); leave it out',
      );
    const onChain = await s.authorizeSubmission(req, 'POST /v1/sessions', body);
    holdWhileServing(req); // the claim and the model load may outlast the idle timeout
    if (s.jobs.get(body.jobId)) throw new FirnError('E_CONFLICT', 'this job was already submitted here');
    const releaseOpening = this.reserveOpening(onChain.requester);
    try {
      return await this.openCounted(req, body, onChain);
    } finally {
      releaseOpening();
    }
  }

  /** The rest of openSession, counted against the requester's session cap. */
  private async openCounted(
    req: IncomingMessage,
    body: SubmitBody,
    onChain: FirnJob,
  ): Promise<
    Omit<OpenSessionResult, 'endpoint'> & { accessToken: string; direct?: { port: number; token: Hex } }
  > {
    const s = this.service;
    s.admit();
    await s.chainMonitor.requireUp('open sessions');
    const job = onChain;
    s.checkJobTerms(job, body.inputs);
    await s.setEnclaveChainTime();
    const log = s.opts.logger.child({ jobId: body.jobId });
    // The bounds are read once per open (tests narrow them between opens): the values checked here
    // are the values used after the awaits below. A poll window this node cannot serve is the
    // operator's error, refused before anything is reserved or claimed, and said to be the node's.
    const { pollMs, maxSessionMs } = this.bounds;
    const badPoll = badPollMs(pollMs);
    if (badPoll !== undefined)
      throw new FirnError('E_UNAVAILABLE', `this node's session settings are invalid: ${badPoll}`);
    // Before any claim: the enclave reserves a session slot (E_UNAVAILABLE when full), opens the
    // channel and checks the request and its grant. A refusal here records nothing and costs no gas.
    await s.preflight('preflightSession', body, {
      workloadHash: job.workloadHash,
      inputCommitment: job.inputCommitment,
    });
    try {
      // The inputs are looked at last, and the record naming them written with no await after the
      // check: the sweep cannot delete them in between, so nothing is held from it. A request
      // refused anywhere before (the checks, the enclave's pre-flight) extends no artifact's life.
      await s.requireInputs(body.inputs, job.requester);
      const now = s.clock();
      s.jobs.put({
        jobId: body.jobId,
        status: 'accepted',
        inputs: body.inputs,
        createdAt: now,
        updatedAt: now,
      });
    } catch (e) {
      await s.releasePreflight(body.jobId);
      throw e;
    }
    let claimed = false;
    try {
      const claim = await s
        .chainWrite(() => claimJob(s.clients, { jobId: body.jobId, enclaveId: s.node.identity!.enclaveId }))
        .catch(async (e: unknown) => {
          await s.releasePreflight(body.jobId);
          throw e;
        });
      claimed = true;
      const claimExpiresAt = s.claimEnd(job, s.clock());
      s.jobs.update(body.jobId, { status: 'running', txs: { claim: claim.hash }, claimExpiresAt }, s.clock());
      // Closed (and proved) before the claim lapses, and after the node's longest session at most.
      const claimLeftMs = Math.max(0, (claimExpiresAt - s.clock()) * 1000);
      const lifetimeMs = Math.min(
        maxSessionMs,
        claimLeftMs - Math.min(SESSION_CLAIM_MARGIN_MS, claimLeftMs / 10),
      );
      const r = await s.node.supervisor.call<OpenSessionResult>(
        'openSession',
        {
          jobId: body.jobId,
          enc: body.enc,
          request: body.ciphertext,
          inputPaths: { [body.inputs[0]!]: s.artifacts.path(body.inputs[0]!) },
          onChain: { workloadHash: job.workloadHash, inputCommitment: job.inputCommitment },
          domain: { chainId: s.opts.deployment.chainId, jobMarket: s.opts.deployment.jobMarket },
          direct: true,
          pollMs,
          // Asked for (decision 1310): the session's child listens for the requester on the address
          // the requester reached us on. Otherwise every request passes the host's checks.
          ...(req.headers[SESSION_DIRECT_HEADER] === '1' && directHostOf(req) !== undefined
            ? { directHost: directHostOf(req) }
            : {}),
        },
        s.opts.enclaveTimeoutMs ?? 600_000,
      );
      const { endpoint, ...answer } = r;
      const h: HostSession = {
        jobId: body.jobId,
        requester: onChain.requester.toLowerCase(),
        expiresAt: Date.now() + Math.max(0, lifetimeMs),
        openedAt: Date.now(),
        lastUsed: Date.now(),
        nextSeq: 0n,
        inFlight: 0,
        streams: new Set(),
        token: randomBytes(32),
        ...(endpoint?.direct === undefined ? {} : { direct: true }),
      };
      // The session's child serves it: the host keeps one connection to it for all requests.
      if (endpoint !== undefined) h.relay = await SessionRelay.connect(endpoint.path, endpoint.token);
      this.open.set(body.jobId, h);
      this.persist(h, 'open');
      this.startSweeper();
      this.expireAt(h);
      log.info('session open', { direct: h.relay !== undefined });
      // The endpoint's path and token are the host's: the requester gets the public answer and
      // the session's transport token.
      return {
        ...answer,
        accessToken: h.token!.toString('base64url'),
        ...(endpoint?.direct === undefined ? {} : { direct: endpoint.direct }),
      };
    } catch (e) {
      const error = toErrorBody(e);
      log.warn('session open failed', { code: error.code });
      if (claimed)
        await s
          .chainWrite(() => failJob(s.clients, { jobId: body.jobId, reason: failureReason(error.code) }))
          .catch((e2) => log.error('failJob failed', { code: isFirnError(e2) ? e2.code : 'E_INTERNAL' }));
      s.jobs.update(body.jobId, { status: 'failed', error }, s.clock());
      throw e;
    }
  }

  private session(idText: string): HostSession {
    const id = parseArtifactId(idText) as Hex;
    const h = this.open.get(id);
    if (!h || h.closed) throw new FirnError('E_NOT_FOUND', 'no open session with this id');
    return h;
  }

  /**
   * Admit a session request by its clear header, before its body is read or queued: it must be a
   * request message whose sequence number is the session's next (or within
   * SESSION_SEQUENCE_WINDOW of it; E_PARSE 400, E_CHANNEL_SEQUENCE 422 otherwise), and the
   * session must have fewer than MAX_SESSION_REQUESTS_IN_FLIGHT requests at the enclave (429,
   * Retry-After). The per-IP session rate was counted when the request arrived (the route's
   * limiter in nodeApi.ts, decision 1761). Returns the header's seq.
   */
  private admit(h: HostSession, prefix: Buffer): bigint {
    const { kind, seq } = sessionMessageHeader(prefix);
    if (kind !== 'request') throw new FirnError('E_CHANNEL_SEQUENCE', 'not a session request message');
    // A session the requester also reaches directly (decision 1310) moves on without the host
    // seeing it: only what the host itself relayed counts as replayed; the child checks the rest.
    if (seq < h.nextSeq || (!h.direct && seq >= h.nextSeq + SESSION_SEQUENCE_WINDOW))
      throw new FirnError(
        'E_CHANNEL_SEQUENCE',
        seq < h.nextSeq ? 'replayed session message' : 'session message out of order',
      );
    if (h.inFlight >= MAX_SESSION_REQUESTS_IN_FLIGHT)
      throw rateLimited(`this session already has ${MAX_SESSION_REQUESTS_IN_FLIGHT} requests in progress`);
    return seq;
  }

  /** The hot path: bytes in, bytes out; the only transformation is base64 over the enclave pipe. */
  async request(idText: string, req: IncomingMessage, res: ServerResponse): Promise<undefined> {
    const h = this.session(idText);
    try {
      requireSessionToken(h, req);
    } catch (e) {
      // Refused before its body: the connection goes with the answer, the body is never read.
      res.shouldKeepAlive = false;
      const socket = req.socket;
      res.once('finish', () => socket?.destroy());
      throw e;
    }
    // Exactly octet-stream, never absent: a body without Content-Type is a CORS "simple" request.
    requireMediaType(req, 'application/octet-stream');
    let seq: bigint | undefined;
    let body: Buffer;
    try {
      body = await readBody(req, MAX_SESSION_REQUEST_BYTES, {
        bytes: SESSION_MESSAGE_MIN_BYTES,
        check: async (prefix) => {
          try {
            seq = this.admit(h, prefix);
          } catch (e) {
            if (isFirnError(e) && (e.code === 'E_PARSE' || e.code === 'E_CHANNEL_SEQUENCE'))
              await new Promise((r) => setTimeout(r, SESSION_REFUSAL_DELAY_MS * (0.5 + Math.random())));
            throw e;
          }
          h.inFlight++;
        },
      });
    } catch (e) {
      if (seq !== undefined) h.inFlight--;
      // Refused by its header: the rest of the body is not read; the connection is dropped as
      // soon as the answer is out, so the sender cannot make the node read (and discard) it.
      res.shouldKeepAlive = false;
      const socket = req.socket;
      res.once('finish', () => socket?.destroy());
      throw e;
    }
    let out: Buffer;
    try {
      out = await this.forward(h, body);
    } finally {
      h.inFlight--;
    }
    // Only a request the enclave accepted (it opened under the session keys) keeps the session
    // warm and moves the expected sequence number on.
    h.lastUsed = Date.now();
    if (seq! + 1n > h.nextSeq) h.nextSeq = seq! + 1n;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.length });
    res.end(out);
    return undefined;
  }

  /** Relay one session message: to the session's direct endpoint, or over the enclave pipe. */
  private async forward(h: HostSession, message: Uint8Array): Promise<Buffer> {
    if (h.relay) return h.relay.send(message);
    const r = await this.service.node.supervisor.call<{ message: string }>('sessionRequest', {
      sessionId: h.jobId,
      message: Buffer.from(message).toString('base64'),
    });
    return Buffer.from(r.message, 'base64');
  }

  /**
   * GET /v1/sessions/{id}/stream with `Upgrade: firn-session/1`: one persistent binary connection
   * for a session's requests (docs/decisions/1240-direct-session-endpoint.md). After the 101
   * answer, each direction carries frames `u32 BE length || u8 tag || body`: the requester sends
   * tag 0 frames holding one session request message each and may send the next before the answer
   * to the last arrived (up to MAX_STREAM_REQUESTS_IN_FLIGHT); answers come in order, tag 0 the
   * sealed response message, tag 1 JSON {code, message} of a refusal. The message bytes are
   * relayed as they are. Same checks as POST .../requests: the clear header must be a request with
   * the next sequence numbers, the per-IP session rate applies, and a frame over the 8 MiB cap is
   * refused; a frame refused by its header or size ends the connection (the sender reconnects
   * through the per-IP request rate). Both routes need the session's transport token from the
   * open answer (`x-firn-session-token`, 401 E_UNAUTHENTICATED without it), so only the requester
   * can hold the session's slots; and only messages sealed under the session keys are answered
   * with anything but a refusal.
   */
  async stream(idText: string, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const refuse = (status: number, e: FirnError) => {
      const body = JSON.stringify(toErrorBody(e));
      endUpgradedSocket(
        socket,
        `HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 401 ? 'Unauthorized' : status === 429 ? 'Too Many Requests' : status === 409 ? 'Conflict' : 'Bad Request'}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    let h: HostSession;
    try {
      if (String(req.headers.upgrade ?? '').toLowerCase() !== SESSION_STREAM_PROTOCOL)
        throw new FirnError('E_UNSUPPORTED', `upgrade to ${SESSION_STREAM_PROTOCOL}`);
      await this.service.node.rateLimiter.take(remoteClient(req));
      h = this.session(idText);
      requireSessionToken(h, req);
      if (h.streams.size >= MAX_STREAMS_PER_SESSION)
        throw new FirnError('E_CONFLICT', `a session has at most ${MAX_STREAMS_PER_SESSION} streams`);
    } catch (e) {
      const f = isFirnError(e) ? e : new FirnError('E_INVALID_INPUT', 'bad session stream request');
      refuse(
        f.code === 'E_NOT_FOUND'
          ? 404
          : f.code === 'E_UNAUTHENTICATED'
            ? 401
            : f.code === 'E_RATE_LIMITED'
              ? 429
              : f.code === 'E_CONFLICT'
                ? 409
                : 400,
        f,
      );
      return;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: ${SESSION_STREAM_PROTOCOL}\r\nconnection: Upgrade\r\n\r\n`,
    );
    const s = socket as Duplex & { setNoDelay?: (v: boolean) => void; setTimeout?: (ms: number) => void };
    s.setNoDelay?.(true);
    s.setTimeout?.(0);
    h.streams.add(socket);
    socket.on('close', () => h.streams.delete(socket));
    socket.on('error', () => undefined);
    const ip = remoteClient(req);
    const reader = new StreamFrameReader(MAX_STREAM_FRAME_BYTES);
    let inFlight = 0;
    // SessionBounds: a stream with nothing going on is ended after streamIdleMs, and a frame
    // begun must be whole within frameMs (a dribbled frame holds the stream and its buffer).
    let active = Date.now();
    let pending = 0; // bytes received that are not part of a whole frame yet
    let partialSince = 0;
    const { streamIdleMs: idleMs, frameMs } = this.bounds;
    const idleCheck = setInterval(
      () => {
        if (socket.destroyed) return clearInterval(idleCheck);
        const now = Date.now();
        let why: string | undefined;
        if (pending > 0 && now - partialSince >= frameMs)
          why = `a session request frame must arrive whole within ${frameMs} ms (the node's frame limit); this one did not`;
        else if (pending === 0 && inFlight === 0 && now - active >= idleMs)
          why = `nothing was sent on this session stream for ${idleMs} ms (the node's stream idle limit); reconnect to go on`;
        if (why === undefined) return;
        clearInterval(idleCheck);
        socket.off('data', onData);
        const e = new FirnError('E_TIMEOUT', why);
        tail = tail.then(() => endStream(socket, e));
      },
      Math.max(20, Math.min(Math.floor(Math.min(idleMs, frameMs) / 4), 5_000)),
    );
    idleCheck.unref();
    socket.on('close', () => clearInterval(idleCheck));
    // Sequence number the next frame on this stream must carry (the session's next, plus what this
    // stream already has in flight).
    let expect: bigint | undefined;
    const answer = (tag: number, body: Uint8Array) => {
      active = Date.now();
      if (!socket.destroyed) writeStreamFrame(socket as never, tag, body);
    };
    const refuseFrame = (e: unknown) => {
      answer(STREAM_TAG.error, Buffer.from(JSON.stringify(toErrorBody(e))));
      socket.end();
      // The socket has no timeout and the server keeps it half-open: destroyed whether or not
      // the peer closes its side (decision 1550), as endStream does.
      setTimeout(() => socket.destroy(), 1_000).unref();
    };
    // Answers leave in the order the requests came, whatever order the relay settles them in.
    let tail: Promise<unknown> = Promise.resolve();
    const onFrame = (tag: number, body: Buffer) => {
      active = Date.now();
      if (tag !== STREAM_TAG.message) throw new FirnError('E_PARSE', 'unknown session stream frame');
      if (body.length > MAX_SESSION_REQUEST_BYTES)
        throw new FirnError('E_TOO_LARGE', `a session request is at most ${MAX_SESSION_REQUEST_BYTES} bytes`);
      if (h.closed) throw new FirnError('E_NOT_FOUND', 'no open session with this id');
      const { kind, seq } = sessionMessageHeader(body.subarray(0, SESSION_MESSAGE_MIN_BYTES));
      if (kind !== 'request') throw new FirnError('E_CHANNEL_SEQUENCE', 'not a session request message');
      const next = expect !== undefined && expect > h.nextSeq ? expect : h.nextSeq;
      // Direct sessions (decision 1310): the host does not see every request, so it refuses only
      // what is behind what it saw; the child refuses the rest by its own sequence check.
      if (h.direct ? seq < next : seq !== next)
        throw new FirnError(
          'E_CHANNEL_SEQUENCE',
          seq < next ? 'replayed session message' : 'session message out of order',
        );
      if (inFlight >= MAX_STREAM_REQUESTS_IN_FLIGHT)
        throw rateLimited(
          `a session stream has at most ${MAX_STREAM_REQUESTS_IN_FLIGHT} requests in progress`,
        );
      expect = seq + 1n;
      inFlight++;
      h.inFlight++;
      const sent = this.service.node.sessionRateLimiter
        .take(ip)
        .then(() => this.forward(h, body))
        .finally(() => {
          inFlight--;
          h.inFlight--;
        });
      tail = tail.then(() =>
        sent.then(
          (out) => {
            h.lastUsed = Date.now();
            if (seq + 1n > h.nextSeq) h.nextSeq = seq + 1n;
            answer(STREAM_TAG.message, out);
          },
          (e: unknown) => {
            // Refused (not sealed under the session keys, rate, ...): the next expected stays.
            expect = undefined;
            answer(STREAM_TAG.error, Buffer.from(JSON.stringify(toErrorBody(e))));
          },
        ),
      );
    };
    const onData = (chunk: Buffer) => {
      if (pending === 0) partialSince = Date.now();
      pending += chunk.length;
      try {
        for (const f of reader.push(chunk)) {
          pending -= 5 + f.body.length;
          partialSince = Date.now();
          onFrame(f.tag, f.body);
        }
      } catch (e) {
        socket.off('data', onData);
        // After the answers already owed on this stream, in order.
        tail = tail.then(() => refuseFrame(e));
      }
    };
    socket.on('data', onData);
    if (head.length > 0) onData(head);
  }

  /**
   * Close in the enclave, submit the session's proof, and record the job as proved. `auth` is the
   * requester's sealed close message (DELETE /v1/sessions/{id}); the enclave checks it under the
   * session keys, and a close it refuses (E_UNAUTHENTICATED, 401) leaves the session open and the
   * job untouched. Without `auth` it is the host's own idle close.
   */
  async close(id: Hex, auth?: string): Promise<CloseSessionResult & { proofTx: Hex }> {
    const h = this.open.get(id);
    if (!h || h.closed) throw new FirnError('E_NOT_FOUND', 'no open session with this id');
    const attempt = (h.closeQueue ?? Promise.resolve()).then(() => this.closeNow(h, auth));
    h.closeQueue = attempt.catch(() => undefined);
    return attempt;
  }

  /**
   * Whether the enclave still serves session `id` (its `sessionIdle` answers): after a requester's
   * close failed without an answer the node can trust, this tells a session the enclave ended from
   * one it still holds. False when the enclave says it has none, or does not answer.
   */
  private async enclaveStillServes(id: Hex): Promise<boolean> {
    try {
      await this.service.node.supervisor.call('sessionIdle', { sessionId: id });
      return true;
    } catch {
      return false;
    }
  }

  /** One close attempt, after the earlier ones finished. */
  private async closeNow(h: HostSession, auth?: string): Promise<CloseSessionResult & { proofTx: Hex }> {
    if (h.closed) {
      if (auth === undefined && h.closing) return h.closing;
      throw new FirnError('E_NOT_FOUND', 'no open session with this id');
    }
    const id = h.jobId;
    const s = this.service;
    this.persist(h, 'closing');
    await s.setEnclaveChainTime();
    const fail = async (e: unknown) => {
      const error = toErrorBody(e);
      s.jobs.update(id, { status: 'failed', error }, s.clock());
      await s
        .chainWrite(() => failJob(s.clients, { jobId: id, reason: failureReason(error.code) }))
        .catch(() => undefined);
    };
    let r: CloseSessionResult;
    try {
      r = await s.node.supervisor.call<CloseSessionResult>('closeSession', {
        sessionId: id,
        ...(auth === undefined ? {} : { auth }),
      });
    } catch (e) {
      // A close the enclave did not authenticate changes nothing: the session stays open.
      if (isFirnError(e) && e.code === 'E_UNAUTHENTICATED') throw e;
      // A requester's close that failed otherwise (a timeout on the way, the enclave busy) ends
      // the session here only when the enclave no longer has it: one whose close it did not take
      // keeps serving (decision 1773).
      if (auth !== undefined && (await this.enclaveStillServes(id))) {
        this.persist(h, 'open');
        throw e;
      }
      h.closed = true;
      h.relay?.close();
      for (const st of h.streams) st.destroy();
      this.open.delete(id);
      await fail(e);
      throw e;
    }
    h.closed = true;
    h.relay?.close();
    for (const st of h.streams) st.destroy();
    // Direct requests did not pass the host: the enclave's count is the record's.
    if (BigInt(r.requests) > h.nextSeq) h.nextSeq = BigInt(r.requests);
    const run = (async () => {
      try {
        const p = parseWorkProofJson(r.proof);
        // Kept before it is sent (like a job's proof): a chain outage or a restart never loses it;
        // it is sent with back-off until the claim lapses, and failed on chain only on a revert.
        s.jobs.update(id, { status: 'proving', proof: r.proof, sessionOpening: r.opening }, s.clock());
        await s.submitKeptProof(id);
        const rec = s.jobs.get(id);
        const proofTx = rec?.txs?.proof;
        if (rec?.status !== 'proved' || proofTx === undefined)
          throw new FirnError(
            rec?.error?.code ?? 'E_CHAIN',
            rec?.error?.message ?? 'session proof not accepted',
          );
        s.opts.logger.info('session closed; proof submitted', {
          jobId: id,
          requests: r.requests,
          workUnits: p.proof.workUnits,
        });
        return { ...r, proofTx };
      } catch (e) {
        if (s.jobs.get(id)?.status !== 'failed') await fail(e);
        throw e;
      } finally {
        this.open.delete(id);
        this.persist(h, 'closed');
      }
    })();
    h.closing = run;
    return run;
  }
}

/**
 * End a session stream with a refusal frame naming why (tag 1, JSON {code, message}); the socket
 * is destroyed shortly after, whether or not the peer closes its side.
 */
function endStream(socket: Duplex, e: FirnError): void {
  if (socket.destroyed) return;
  writeStreamFrame(socket as never, STREAM_TAG.error, Buffer.from(JSON.stringify(toErrorBody(e))));
  socket.end();
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/** End every stream of a session with the reason it ends. */
function endStreams(h: HostSession, e: FirnError): void {
  for (const st of h.streams) endStream(st, e);
}
