import { randomBytes } from 'node:crypto';
import {
  bytesToHex,
  FirnError,
  type Hex,
  hexBytes,
  isFirnError,
  type JobRequest,
  MAX_JOB_REQUEST_BYTES,
  parseJobRequest,
  utf8,
  type WorkProofFields,
  type WorkProofJson,
  workProofDigest,
  workProofToJson,
} from '@firn/core';
import {
  createSessionEndpoint,
  deriveSessionKeys,
  MAX_SESSION_MESSAGE_BYTES,
  parseGrant,
  SESSION_KIND,
  SESSION_SECRET_BYTES,
  type SessionEndpoint,
  type SessionKeys,
  SessionTranscript,
  sessionChannelInfo,
  sessionTranscriptCommitment,
  signDigest,
} from '@firn/crypto';
import type { EnclaveContext, Handler } from '../enclaveProgram.ts';
import {
  inProcessRuntime,
  type MlRuntime,
  type RuntimeModel,
  type ServedSession,
} from '../runtime/mlRuntime.ts';
import {
  answerSessionRequest,
  isCloseMessage,
  MAX_SESSION_POLL_MS,
  type SessionEndpointAddress,
  type SessionEndpointTranscript,
} from '../runtime/sessionEndpoint.ts';
import { ArtifactCache } from './artifactCache.ts';
import {
  acceptRequest,
  checkRequestAgainstChain,
  openGrantedInputs,
  parseRunJobParams,
  verifyRequestGrants,
} from './runJob.ts';
import type { EnclaveChannel } from '@firn/crypto';

/**
 * Warm inference sessions (docs/decisions/0602-inference-sessions.md): `openSession` verifies the
 * model grant exactly like `runJob` and loads the model once; `sessionRequest` runs one tensor
 * map sealed under the session keys, strictly in sequence, with no proof and no disk; and
 * `closeSession` signs one Work Proof for the whole session.
 */

export const DEFAULT_MAX_SESSIONS = 8;
export const DEFAULT_SESSION_IDLE_SECONDS = 600;
/** How long a slot reserved by `preflightSession` waits for the host's claim and `openSession`, ms. */
export const SESSION_RESERVATION_TTL_MS = 5 * 60_000;
/**
 * How long a close waits for a directly served session's child to finish the requests it holds,
 * ms: under the node's 30 s call timeout. A child still busy then (a model that never ends a
 * request) is stopped and the session ends without a proof (the node fails the job; the escrow returns).
 */
export const DEFAULT_SESSION_FINISH_TIMEOUT_MS = 15_000;

/** A session open request `preflightSession` opened and checked, holding a session slot. */
interface SessionReservation {
  enc: Hex;
  request: string;
  channel: EnclaveChannel;
  open: SessionOpenRequest;
  /** Date.now() when reserved, ms. */
  at: number;
}

export interface OpenSessionParams {
  jobId: Hex;
  enc: Hex;
  /** Base64 channel request: the sealed SessionOpenRequest. */
  request: string;
  inputPaths: Record<string, string>;
  onChain: { workloadHash: Hex; inputCommitment: Hex };
  domain: { chainId: number; jobMarket: Hex };
  /**
   * Ask for the direct endpoint (docs/decisions/1240-direct-session-endpoint.md): the session's
   * keyless ML child serves the requests on a Unix socket and the result carries `endpoint`. Where
   * the runtime cannot serve (in-process runtimes), the session is served over this pipe as before.
   */
  direct?: boolean;
  /**
   * With `direct`: the IP address the requester reached the host on. The child then also listens
   * on a TCP port of it for the requester's own connection, and `endpoint.direct` names the port
   * and the token (docs/decisions/1310-requester-connects-to-session-child.md).
   */
  directHost?: string;
  /**
   * With `direct`: how long the child polls after each answer, ms (ServeSessionParams.pollMs;
   * decision 1800). An integer 0 to MAX_SESSION_POLL_MS; anything else is E_INVALID_INPUT.
   * Default DEFAULT_SESSION_POLL_MS.
   */
  pollMs?: number;
}

export interface OpenSessionResult {
  sessionId: Hex;
  /** Fresh per open; the requester derives the session keys with it. Public. */
  salt: Hex;
  /** Unix seconds: the earliest grant expiry; requests at or after it are refused. */
  expiresAt: number;
  /**
   * Base64 channel response sealed to the requester: JSON `SessionOpenInfo`. The model's tensor
   * names are the requester's secret, so the host relays them only encrypted.
   */
  response: string;
  /**
   * For the host only (never relayed to the requester): where the session's child listens and the
   * token its first frame must carry. Present when the open asked for `direct` and the runtime serves.
   */
  endpoint?: SessionEndpointAddress;
}

/** What the open response carries inside the channel. */
export interface SessionOpenInfo {
  v: 1;
  sessionId: Hex;
  inputNames: string[];
  outputNames: string[];
}

export interface CloseSessionResult {
  proof: WorkProofJson;
  requests: number;
  /**
   * The preimage of the proof's outputCommitment besides the session id: the session salt (already
   * public in the open answer), the request count (decimal string) and the transcript's running
   * hashes over ciphertexts the host relayed. The node publishes it with the result so verifiers
   * can tell a session's commitment from a batch job's (docs/decisions/0830-result-availability.md).
   */
  opening: { salt: Hex; count: string; requestsHash: Hex; responsesHash: Hex };
}

/** What the requester seals in the open request: the job request plus the session secret. */
export interface SessionOpenRequest {
  v: 1;
  job: JobRequest;
  /** 32 random bytes, hex; only the requester and this enclave know it. */
  sessionSecret: Hex;
}

export function parseSessionOpenRequest(bytes: Uint8Array): SessionOpenRequest {
  if (bytes.length > MAX_JOB_REQUEST_BYTES) throw new FirnError('E_JOB_INVALID', 'session request too large');
  let o: unknown;
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new FirnError('E_JOB_INVALID', 'session request is not JSON');
  }
  const r = o as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || Array.isArray(r))
    throw new FirnError('E_JOB_INVALID', 'session request must be an object');
  for (const k of Object.keys(r))
    if (k !== 'v' && k !== 'job' && k !== 'sessionSecret')
      throw new FirnError('E_JOB_INVALID', `unknown session request field ${k}`);
  if (r.v !== 1) throw new FirnError('E_JOB_INVALID', 'unsupported session request version');
  const job = parseJobRequest(utf8(JSON.stringify(r.job ?? null)));
  return {
    v: 1,
    job,
    sessionSecret: bytesToHex(hexBytes(r.sessionSecret, 'sessionSecret', SESSION_SECRET_BYTES)),
  };
}

export interface SessionHandlerOptions {
  /** Enclave clock, unix seconds. */
  now?: () => number;
  /** Shared with runJob so a model opened by either is not decrypted twice. */
  cache?: ArtifactCache;
  maxSessions?: number;
  /** A session unused this long is dropped (without a proof) to make room. */
  idleSeconds?: number;
  /** Cap on one request message (bytes, before base64). */
  maxRequestBytes?: number;
  /** Model loader (tests may count loads); default `runtime.loadModel`. */
  loadModel?: (bytes: Uint8Array) => Promise<RuntimeModel>;
  /** Where session models run; default in this process (the enclave's main passes a child-process runtime). */
  runtime?: MlRuntime;
  /** See DEFAULT_SESSION_FINISH_TIMEOUT_MS. */
  finishTimeoutMs?: number;
}

interface Session {
  jobId: Hex;
  /** The enclave process's end of the channel; absent when the child serves the session directly. */
  endpoint?: SessionEndpoint;
  /** The child that serves the session directly (it holds the direction keys and the transcript). */
  served?: ServedSession;
  /**
   * The session's direction keys, kept only to check a close's tag before anything waits on it
   * (`closeSession`, decision 1773): this process opens no request with them.
   */
  closeKeys: SessionKeys;
  salt: Uint8Array;
  model: RuntimeModel;
  transcript: SessionTranscript;
  workloadHash: Hex;
  inputCommitment: Hex;
  domain: { chainId: number; jobMarket: Hex };
  startedAt: number;
  lastUsed: number;
  expiresAt: number;
  workUnits: bigint;
  tail: Promise<unknown>;
  closed: boolean;
}

/** OpenSessionParams.pollMs: absent, or an integer 0 to MAX_SESSION_POLL_MS; else E_INVALID_INPUT. */
function checkPollMs(v: unknown): void {
  if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_SESSION_POLL_MS))
    throw fail(
      'E_INVALID_INPUT',
      `the host's session poll window (openSession pollMs) must be an integer number of ms, 0 to ${MAX_SESSION_POLL_MS}`,
    );
}

const fail = (code: ConstructorParameters<typeof FirnError>[0], message: string) =>
  new FirnError(code, message);

/** Run `f` after everything queued on the session, so requests are handled in arrival order. */
function onQueue<T>(s: Session, f: () => Promise<T>): Promise<T> {
  const run = s.tail.then(f, f);
  s.tail = run.catch(() => undefined);
  return run;
}

function sessionIdOf(raw: Record<string, unknown>): Hex {
  return bytesToHex(hexBytes(raw.sessionId, 'sessionId', 32));
}

/**
 * The session handlers. A session is keyed by its jobId (one session per posted job); at most
 * `maxSessions` are open, and when full, sessions idle for `idleSeconds` are dropped first.
 */
export function createSessionHandlers(opts: SessionHandlerOptions = {}): Record<string, Handler> {
  const cache = opts.cache ?? new ArtifactCache();
  const clock = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const maxSessions = opts.maxSessions ?? DEFAULT_MAX_SESSIONS;
  const idle = opts.idleSeconds ?? DEFAULT_SESSION_IDLE_SECONDS;
  const maxRequest = Math.min(opts.maxRequestBytes ?? MAX_SESSION_MESSAGE_BYTES, MAX_SESSION_MESSAGE_BYTES);
  const runtime = opts.runtime ?? inProcessRuntime({});
  const load = opts.loadModel ?? ((b: Uint8Array) => runtime.loadModel(b));
  const sessions = new Map<Hex, Session>();
  const opening = new Set<Hex>();
  const reserved = new Map<Hex, SessionReservation>();
  const sweepReserved = () => {
    const t = Date.now();
    for (const [k, r] of reserved) if (t - r.at >= SESSION_RESERVATION_TTL_MS) reserved.delete(k);
  };
  /** Slots in use: open sessions, opens in progress and reservations waiting for their claim. */
  const used = () => sessions.size + opening.size + reserved.size;
  /** The checks of an open request that need no key and no input: kind, inputs, chain facts. */
  const checkOpenRequest = (req: JobRequest, p: ReturnType<typeof parseRunJobParams>) => {
    if (req.kind !== SESSION_KIND) throw fail('E_UNSUPPORTED', `a session must be of kind ${SESSION_KIND}`);
    if (req.inputs.length !== 1 || req.inputs[0]!.role !== 'model')
      throw fail('E_JOB_INVALID', 'a session takes exactly one input, role "model"');
    return checkRequestAgainstChain(req, p);
  };

  const drop = (s: Session) => {
    s.closed = true;
    sessions.delete(s.jobId);
    void onQueue(s, () => s.model.release()).catch(() => undefined);
  };
  const sweep = async (now: number) => {
    for (const s of [...sessions.values()]) {
      if (now - s.lastUsed < idle) continue;
      // A directly served session's use is known only to its child: ask it before dropping.
      if (s.served) {
        const ms = await s.served.idleMs().catch(() => Number.POSITIVE_INFINITY);
        if (ms < idle * 1000) {
          s.lastUsed = now - Math.floor(ms / 1000);
          continue;
        }
      }
      if (!s.closed) drop(s);
    }
  };
  /**
   * Check that `auth` is a close sealed under the session's request key (any sequence number from
   * 0 on, as the child's `open` with `ahead` takes it), on an endpoint of its own: nothing of the
   * session's state is read or changed. Throws E_UNAUTHENTICATED when it is not.
   */
  const checkCloseAuth = (s: Session, auth: Uint8Array): void => {
    try {
      createSessionEndpoint('enclave', s.closeKeys, s.jobId).open(auth, isCloseMessage, true);
    } catch {
      throw fail('E_UNAUTHENTICATED', 'the close request is not a close under the session keys');
    }
  };
  const get = (id: Hex): Session => {
    const s = sessions.get(id);
    if (s === undefined || s.closed) throw fail('E_NOT_FOUND', 'no such session in this enclave');
    return s;
  };

  /**
   * `preflightSession`: what the host asks BEFORE it claims a session's job on chain. Reserves a
   * session slot (E_UNAVAILABLE when none is free, E_CONFLICT when this job already has one),
   * opens the channel (E_DECRYPT), parses the open request, checks kind, input and chain facts and
   * verifies the model grant without unwrapping its key. The slot stays reserved for
   * SESSION_RESERVATION_TTL_MS, for the `openSession` with the same `enc` and request, or until
   * `releaseSessionPreflight`. Params: those of `openSession`. Returns `{ok: true}`.
   */
  const preflightSession: Handler = async (raw, ctx: EnclaveContext) => {
    const p = parseRunJobParams({ ...raw, outputDir: '' });
    checkPollMs(raw.pollMs);
    const now = ctx.time.now(clock());
    await sweep(now);
    sweepReserved();
    if (sessions.has(p.jobId) || opening.has(p.jobId) || reserved.has(p.jobId))
      throw fail('E_CONFLICT', 'a session for this job is already open');
    if (used() >= maxSessions)
      throw fail('E_UNAVAILABLE', `session limit (${maxSessions}) reached; close a session first`);
    opening.add(p.jobId);
    try {
      const { channel, request: open } = await acceptRequest(
        ctx,
        p,
        sessionChannelInfo(p.jobId),
        parseSessionOpenRequest,
        'session',
      );
      const { workloadHash } = checkOpenRequest(open.job, p);
      verifyRequestGrants(open.job, p.jobId, ctx, now, workloadHash);
      reserved.set(p.jobId, { enc: p.enc, request: p.request, channel, open, at: Date.now() });
      return { ok: true };
    } finally {
      opening.delete(p.jobId);
    }
  };

  /** `releaseSessionPreflight`: the host gives back a reserved slot (its claim failed). */
  const releaseSessionPreflight: Handler = async (raw) => {
    reserved.delete(sessionIdOf({ sessionId: raw.jobId }));
    return { ok: true };
  };

  const openSession: Handler = async (raw, ctx: EnclaveContext): Promise<OpenSessionResult> => {
    const p = parseRunJobParams({ ...raw, outputDir: '' });
    const now = ctx.time.now(clock());
    await sweep(now);
    sweepReserved();
    // A slot reserved by `preflightSession` for this very request is taken over, channel included.
    const r = reserved.get(p.jobId);
    const pre = r !== undefined && r.enc === p.enc && r.request === p.request ? r : undefined;
    if (pre) reserved.delete(p.jobId);
    // After the reservation is taken: a refused open never keeps a slot reserved.
    checkPollMs(raw.pollMs);
    if (sessions.has(p.jobId) || opening.has(p.jobId) || reserved.has(p.jobId))
      throw fail('E_CONFLICT', 'a session for this job is already open');
    if (!pre && used() >= maxSessions)
      throw fail('E_UNAVAILABLE', `session limit (${maxSessions}) reached; close a session first`);
    opening.add(p.jobId);
    try {
      const { channel, request: open } = pre
        ? { channel: pre.channel, request: pre.open }
        : await acceptRequest(ctx, p, sessionChannelInfo(p.jobId), parseSessionOpenRequest, 'session');
      const req = open.job;
      const { workloadHash, inputCommitment } = checkOpenRequest(req, p);
      const [model] = await openGrantedInputs(req, p, ctx, cache, now, workloadHash);
      const expiresAt = Math.min(...req.grants.map((g) => parseGrant(g).expiresAt));
      const loaded = await load(model!.bytes);
      const salt = new Uint8Array(randomBytes(32));
      const keys = deriveSessionKeys(hexBytes(open.sessionSecret, 'sessionSecret', 32), salt, p.jobId);
      // Direct: the child gets this session's two direction keys and nothing else; from here on
      // this process holds no state of the channel (it could not open the next message anyway),
      // only the keys, to check a close's tag before it waits on the child (decision 1773).
      let served: ServedSession | undefined;
      if (raw.direct === true && loaded.serveSession !== undefined) {
        try {
          served = await loaded.serveSession({
            sessionId: p.jobId,
            keys,
            expiresInMs: Math.max(0, expiresAt - now) * 1000,
            maxRequestBytes: maxRequest,
            ...(typeof raw.directHost === 'string' && raw.directHost.length <= 64
              ? { directHost: raw.directHost }
              : {}),
            ...(raw.pollMs === undefined ? {} : { pollMs: raw.pollMs as number }),
          });
        } catch (e) {
          await loaded.release().catch(() => undefined);
          throw e;
        }
      }
      sessions.set(p.jobId, {
        jobId: p.jobId,
        ...(served ? { served } : { endpoint: createSessionEndpoint('enclave', keys, p.jobId) }),
        closeKeys: keys,
        salt,
        model: loaded,
        transcript: new SessionTranscript(),
        workloadHash,
        inputCommitment,
        domain: p.domain,
        startedAt: now,
        lastUsed: now,
        expiresAt,
        workUnits: 0n,
        tail: Promise.resolve(),
        closed: false,
      });
      const info: SessionOpenInfo = {
        v: 1,
        sessionId: p.jobId,
        inputNames: [...loaded.inputNames],
        outputNames: [...loaded.outputNames],
      };
      return {
        sessionId: p.jobId,
        salt: bytesToHex(salt),
        expiresAt,
        response: Buffer.from(channel.sealResponse(utf8(JSON.stringify(info)))).toString('base64'),
        ...(served ? { endpoint: served.address } : {}),
      };
    } finally {
      opening.delete(p.jobId);
    }
  };

  const sessionRequest: Handler = async (raw, ctx: EnclaveContext): Promise<{ message: string }> => {
    const s = get(sessionIdOf(raw));
    if (s.served) throw fail('E_CONFLICT', 'this session is served by its direct endpoint');
    if (typeof raw.message !== 'string' || raw.message.length > Math.ceil(maxRequest / 3) * 4)
      throw fail('E_TOO_LARGE', `a session request is at most ${maxRequest} bytes`);
    const message = new Uint8Array(Buffer.from(raw.message, 'base64'));
    return onQueue(s, async () => {
      if (s.closed) throw fail('E_NOT_FOUND', 'session closed');
      // Floored time: a host that rewinds its clock cannot extend an expired session.
      const now = ctx.time.now(clock());
      if (now >= s.expiresAt) throw fail('E_GRANT_EXPIRED', 'the session grant has expired');
      // Replayed, reordered or altered messages fail here and leave the session state unchanged.
      const { sealed, units } = await answerSessionRequest(s.endpoint!, s.model, s.transcript, message);
      s.workUnits += units;
      s.lastUsed = now;
      return { message: Buffer.concat(sealed).toString('base64') };
    });
  };

  const closeSession: Handler = async (raw, ctx: EnclaveContext): Promise<CloseSessionResult> => {
    const s = get(sessionIdOf(raw));
    // A requester's close is its next session message with the close tag as plaintext: only a
    // holder of the session keys can end the session through the node API. (The host may still
    // close without one, e.g. when idle: it can always stop relaying anyway.) Its tag is checked
    // here, at once, before it queues behind the session's requests or waits on its child: a close
    // that does not authenticate is refused E_UNAUTHENTICATED and changes nothing, however long
    // the session's requests take (decision 1773).
    if (raw.auth !== undefined && (typeof raw.auth !== 'string' || raw.auth.length > 1024))
      throw fail('E_UNAUTHENTICATED', 'the close request is not a session message');
    const auth = raw.auth === undefined ? undefined : new Uint8Array(Buffer.from(raw.auth, 'base64'));
    if (auth !== undefined) checkCloseAuth(s, auth);
    return onQueue(s, async () => {
      if (s.closed) throw fail('E_NOT_FOUND', 'session closed');
      let t: SessionEndpointTranscript;
      if (s.served) {
        // The child checks the close under the keys it holds (E_UNAUTHENTICATED keeps it serving)
        // and reports the transcript. A child subverted by its model can misreport only this
        // session's transcript, and the requester refuses a proof that differs from its own. A
        // close that gets here was the requester's (its tag was checked above) or the host's own,
        // so one the child does not finish in time ends the session.
        let timer: NodeJS.Timeout | undefined;
        try {
          const timeout = new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(fail('E_TIMEOUT', 'the session runtime did not finish its requests in time')),
              opts.finishTimeoutMs ?? DEFAULT_SESSION_FINISH_TIMEOUT_MS,
            );
          });
          t = await Promise.race([s.served.finish(auth), timeout]);
        } catch (e) {
          if (isFirnError(e) && e.code === 'E_UNAUTHENTICATED') throw e;
          s.closed = true;
          sessions.delete(s.jobId);
          await s.model.release().catch(() => undefined);
          throw e;
        } finally {
          clearTimeout(timer);
        }
      } else {
        if (auth !== undefined) {
          // Only a close is taken: a request handed in as the close keeps its sequence number.
          try {
            s.endpoint!.open(auth, isCloseMessage, true);
          } catch {
            throw fail('E_UNAUTHENTICATED', 'the close request is not a close under the session keys');
          }
        }
        t = { ...s.transcript.opening(), workUnits: s.workUnits };
      }
      s.closed = true;
      sessions.delete(s.jobId);
      await s.model.release().catch(() => undefined);
      // A session that answered nothing has no work to prove: no Work Proof is signed, so a host
      // that opens and closes at once cannot be paid (the node fails the job; the escrow returns).
      if (t.count === 0n)
        throw fail('E_SESSION_EMPTY', 'the session answered no request; there is no work to prove');
      const keys = ctx.keys();
      if (t.workUnits < 0n || t.workUnits >= 1n << 64n) throw fail('E_JOB_FAILED', 'workUnits out of range');
      if (t.count < 0n || t.count >= 1n << 64n) throw fail('E_JOB_FAILED', 'request count out of range');
      const proof: WorkProofFields = {
        jobId: s.jobId,
        enclaveId: bytesToHex(ctx.enclaveId()),
        measurement: bytesToHex(ctx.measurement),
        workloadHash: s.workloadHash,
        inputCommitment: s.inputCommitment,
        outputCommitment: sessionTranscriptCommitment(s.jobId, s.salt, t),
        startedAt: BigInt(s.startedAt),
        finishedAt: BigInt(Math.max(ctx.time.now(clock()), s.startedAt)),
        workUnits: t.workUnits,
      };
      const signature = bytesToHex(
        signDigest(keys.signingKey, hexBytes(workProofDigest(s.domain, proof), 'digest', 32)),
      );
      return {
        proof: workProofToJson(proof, signature, s.domain, bytesToHex(keys.enclaveAddress)),
        requests: Number(t.count),
        opening: {
          salt: bytesToHex(s.salt),
          count: t.count.toString(),
          requestsHash: bytesToHex(t.requestsHash),
          responsesHash: bytesToHex(t.responsesHash),
        },
      };
    });
  };

  /**
   * `sessionIdle` {sessionId}: milliseconds since the session last answered a request (a directly
   * served session's child is asked: its requests do not pass the host). Returns `{idleMs}`;
   * E_NOT_FOUND for no open session.
   */
  const sessionIdle: Handler = async (raw, ctx: EnclaveContext): Promise<{ idleMs: number }> => {
    const s = get(sessionIdOf(raw));
    if (s.served) return { idleMs: Math.max(0, Math.floor(await s.served.idleMs())) };
    return { idleMs: Math.max(0, ctx.time.now(clock()) - s.lastUsed) * 1000 };
  };

  return {
    preflightSession,
    releaseSessionPreflight,
    openSession,
    sessionRequest,
    closeSession,
    sessionIdle,
  };
}
