import {
  bytesToHex,
  FirnError,
  type ErrorCode,
  type Hex,
  hexBytes,
  readBodyCapped,
  type WorkProofJson,
} from '@firn/core';
import {
  addressOf,
  artifactId,
  type NodeRequestScope,
  nodeSubmissionDigest,
  signDigest,
  uploadIntentDigest,
} from '@firn/crypto';
import type { z } from 'zod';
import {
  endEventSchema,
  nodeErrorBodySchema,
  nodeJobRecordSchema,
  nodeJobResultSchema,
  parseNodeAnswer,
  progressEventSchema,
  sessionCloseAnswerSchema,
  sessionOpenAnswerSchema,
  uploadAnswerSchema,
} from './nodeAnswers.ts';

/** How a requester signs its calls to one node (docs/api.md, "Who may call"). */
export interface NodeApiSigner {
  /** The requester's secp256k1 key (the job's on-chain requester; funded, for uploads). */
  requesterKey: Hex;
  /** Chain, job market and the node's Enclave ID the signatures are bound to. */
  scope: NodeRequestScope;
  /** Upload intents last this long, seconds (default 600; the node accepts at most 3600). */
  intentLifetimeSeconds?: number;
  /** Unix seconds for intent expiry; default the local clock. */
  now?: () => number;
}

/**
 * A node's job record as GET /v1/jobs/{id} (and POST /v1/jobs) returns it, shape-checked
 * (nodeJobRecordSchema): ids lower-case hex, at most MAX_RESULT_OUTPUTS outputs. Nothing in it is
 * verified: the record is the host's word.
 */
export type NodeJobRecord = z.output<typeof nodeJobRecordSchema>;

/**
 * A proved job's result as GET /v1/jobs/{id}/result returns it, shape-checked
 * (nodeJobResultSchema): at most MAX_RESULT_OUTPUTS outputs, each with a role name, a 32-byte
 * artifact id, a sealed size within the enclave's bound and optionally the sealed bytes inline
 * (base64). Not verified: the caller checks the proof commits to these outputs
 * (checkResultAgainstProof) before fetching any of them.
 */
export type NodeJobResult = z.output<typeof nodeJobResultSchema>;

const MAX_JSON_RESPONSE = 64 * 1024 * 1024;
/** Most bytes of a refused download's body read (an error body: a code and a message ≤ 2000 chars). */
const MAX_REFUSAL_BODY = 16 * 1024;

/** Default time for one control call to a node (attestation, job status, submission), ms. */
export const DEFAULT_NODE_TIMEOUT_MS = 30_000;
/** Uploads and downloads get this much extra time per MiB, ms (a slow 1 MiB/s link). */
const MS_PER_MIB = 1_000;

/**
 * Turn a network failure into a typed error naming the node: a timeout is E_TIMEOUT, a refused,
 * reset or dropped connection E_UNAVAILABLE (undici's `fetch failed` / `terminated`). FirnErrors
 * pass through unchanged.
 */
export function nodeNetworkError(e: unknown, endpoint: string, what: string): FirnError {
  if (e instanceof FirnError) return e;
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError')
    return new FirnError('E_TIMEOUT', `node ${endpoint} did not answer ${what} in time`, { cause: e });
  const why = err?.cause?.code ?? err?.cause?.message ?? err?.message ?? 'connection failed';
  return new FirnError('E_UNAVAILABLE', `cannot reach node ${endpoint} for ${what} (${why})`, {
    cause: e,
    details: { endpoint },
  });
}

/**
 * The typed refusal `e` of an HTTP answer `res` with the answer's status (details.httpStatus) and
 * a numeric Retry-After (details.retryAfterSeconds, RFC 9110 §10.2.3; an HTTP-date is left out).
 */
function withHttpAnswer(e: unknown, res: Response): unknown {
  if (!(e instanceof FirnError)) return e;
  const retryAfter = Number(res.headers.get('retry-after') ?? Number.NaN);
  return new FirnError(e.code, e.message, {
    cause: e.cause,
    details: {
      ...e.details,
      httpStatus: res.status,
      ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterSeconds: retryAfter } : {}),
    },
  });
}

/** A 3xx answer is E_UNAVAILABLE naming the node; its target is never contacted. */
function refuseRedirect(res: Response, endpoint: string, what: string): void {
  if (res.status < 300 || res.status > 399) return;
  void res.body?.cancel().catch(() => undefined);
  throw new FirnError('E_UNAVAILABLE', `node ${endpoint} answered ${what} with a redirect (${res.status})`, {
    details: { endpoint, httpStatus: res.status },
  });
}

const readCapped = (res: Response, cap: number) => readBodyCapped(res, cap, 'node response');

/**
 * Read a node's JSON answer (at most MAX_JSON_RESPONSE bytes). A refusal (non-2xx) becomes the
 * node's typed error when its body is `{error: {code, message}}` (nodeErrorBodySchema), else
 * E_UNAVAILABLE naming the status; a 2xx that is not JSON is E_PARSE naming the node. The value
 * returned is not yet shape-checked: pass it to parseNodeAnswer.
 */
/** The deepest a node's JSON answer nests (the answers' schemas need under 10). */
const MAX_JSON_DEPTH = 64;

/** The most arrays and objects a node's JSON answer holds (the answers' schemas need under 200; a few MiB of heap at most). */
const MAX_JSON_CONTAINERS = 65_536;

/**
 * Throws when `text` nests arrays or objects deeper than MAX_JSON_DEPTH, or holds more than
 * MAX_JSON_CONTAINERS of them (outside strings): each is a heap object, so a capped body of
 * brackets, or of empty objects side by side, would parse into ~30 times its size.
 */
function checkJsonDepth(text: string): void {
  let depth = 0;
  let containers = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      // A backslash: skip the escaped character.
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > MAX_JSON_DEPTH) throw new SyntaxError('nested too deep');
      if (++containers > MAX_JSON_CONTAINERS) throw new SyntaxError('too many arrays and objects');
    } else if (c === 93 || c === 125) depth--;
  }
}

/**
 * A node's own text (an error body's message, a reason it gave), fit to quote in an error the
 * requester reads: control characters (C0, DEL, C1) and bidirectional overrides become spaces,
 * and it is cut at `max` characters (default 400, room for a node's actionable refusal) with an ellipsis. The caller says whose words
 * they are ("node X answered ...").
 */
export function hostText(raw: string, max = 400): string {
  const clean = raw.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, ' ');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

async function json(
  res: Response,
  endpoint: string,
  route: string,
  cap = MAX_JSON_RESPONSE,
): Promise<unknown> {
  const body = await readCapped(res, cap);
  let o: unknown;
  try {
    const text = Buffer.from(body).toString('utf8');
    checkJsonDepth(text);
    o = JSON.parse(text);
  } catch {
    if (!res.ok)
      throw new FirnError('E_UNAVAILABLE', `node ${endpoint} answered ${route} with ${res.status}`);
    throw new FirnError('E_PARSE', `node ${endpoint} answered ${route} with ${res.status} without JSON`, {
      details: { endpoint, route, field: '(body)' },
    });
  }
  if (!res.ok) {
    const e = nodeErrorBodySchema.safeParse(o);
    if (!e.success)
      throw new FirnError('E_UNAVAILABLE', `node ${endpoint} answered ${route} with ${res.status}`);
    // The code is the node's, typed (a refusal the user can act on); the text is quoted as its.
    const said = e.data.error.message === undefined ? '' : `: ${hostText(e.data.error.message)}`;
    throw new FirnError(
      e.data.error.code as ErrorCode,
      `node ${endpoint} answered ${route} with ${res.status} ${e.data.error.code}${said}`,
      { details: { endpoint, route, status: res.status } },
    );
  }
  return o;
}

/** A thin client of one node's HTTP API (docs/api.md). Nothing it returns is trusted unchecked. */
export class NodeApi {
  constructor(
    readonly endpoint: string,
    readonly timeoutMs = DEFAULT_NODE_TIMEOUT_MS,
    /** Signs uploads, job and session submissions; without it those calls are sent unsigned (and refused). */
    readonly signer?: NodeApiSigner,
  ) {}

  private url(path: string): URL {
    return new URL(path, this.endpoint);
  }

  private key(): Uint8Array | undefined {
    return this.signer ? hexBytes(this.signer.requesterKey, 'requester key', 32) : undefined;
  }

  /** Headers of a signed upload intent for these sealed bytes (empty without a signer). */
  uploadIntentHeaders(sealed: Uint8Array): Record<string, string> {
    const key = this.key();
    if (!key || !this.signer) return {};
    const now = (this.signer.now ?? (() => Math.floor(Date.now() / 1000)))();
    const intent = {
      uploader: addressOf(key),
      artifactId: artifactId(sealed),
      size: sealed.length,
      expiresAt: now + (this.signer.intentLifetimeSeconds ?? 600),
    };
    return {
      'x-firn-uploader': intent.uploader,
      'x-firn-artifact-id': intent.artifactId,
      'x-firn-intent-expires': String(intent.expiresAt),
      'x-firn-signature': bytesToHex(signDigest(key, uploadIntentDigest(this.signer.scope, intent))),
    };
  }

  /** The signature header of a job or session submission (empty without a signer). */
  submissionHeaders(
    route: 'POST /v1/jobs' | 'POST /v1/sessions',
    body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[]; maxOutputBytes?: number },
  ): Record<string, string> {
    const key = this.key();
    if (!key || !this.signer) return {};
    return {
      'x-firn-signature': bytesToHex(signDigest(key, nodeSubmissionDigest(route, this.signer.scope, body))),
    };
  }

  /**
   * One HTTP call with a timeout; network failures become E_UNAVAILABLE / E_TIMEOUT naming the
   * node, and the JSON answer (or its typed error) is read inside the same guard.
   */
  private async call<T>(
    what: string,
    path: string,
    init: RequestInit,
    read: (res: Response) => Promise<T>,
    timeoutMs = this.timeoutMs,
  ): Promise<T> {
    try {
      // A node answers itself: a redirect (to another node, or to an address only the requester
      // reaches) is refused, never followed, as the verifier's evidence fetch does (decision 1220).
      const res = await fetch(this.url(path), {
        ...init,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      refuseRedirect(res, this.endpoint, what);
      return await read(res);
    } catch (e) {
      throw nodeNetworkError(e, this.endpoint, what);
    }
  }

  private sizedTimeout(bytes: number): number {
    return this.timeoutMs + Math.ceil(bytes / (1024 * 1024)) * MS_PER_MIB;
  }

  /** PUT /v1/artifacts with a signed upload intent. */
  async uploadArtifact(sealed: Uint8Array): Promise<{ id: Hex; size: number }> {
    return this.call(
      'PUT /v1/artifacts',
      '/v1/artifacts',
      {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', ...this.uploadIntentHeaders(sealed) },
        body: sealed,
      },
      async (r) =>
        parseNodeAnswer(
          uploadAnswerSchema,
          await json(r, this.endpoint, 'PUT /v1/artifacts'),
          this.endpoint,
          'PUT /v1/artifacts',
        ),
      this.sizedTimeout(sealed.length),
    );
  }

  /**
   * GET /v1/artifacts/{id}: the sealed bytes, at most `maxBytes` (else E_TOO_LARGE, the download
   * cut off there). A caller that knows the size (a result's listed output) passes it, so a node
   * cannot make it read more. The bytes are not checked against `id` here: the caller does.
   */
  async getArtifact(id: Hex, maxBytes = 2 ** 31 - 1): Promise<Uint8Array> {
    return this.call(
      `GET /v1/artifacts/${id}`,
      `/v1/artifacts/${id}`,
      {},
      async (res) => {
        if (!res.ok) {
          // A refusal's body is read only as far as an error body goes (never up to the JSON
          // cap: the caller bounded this download by the sealed size), and the error names the
          // node and the artifact whatever the host wrote.
          const why = await json(res, this.endpoint, `GET /v1/artifacts/${id}`, MAX_REFUSAL_BODY).then(
            () => undefined,
            (e: unknown) => e,
          );
          const code = why instanceof FirnError && why.code !== 'E_TOO_LARGE' ? why.code : 'E_UNAVAILABLE';
          throw new FirnError(
            code,
            `node ${this.endpoint} refused GET /v1/artifacts/${id} with ${res.status}${why instanceof FirnError && why.code !== 'E_TOO_LARGE' ? `: ${why.message}` : ''}`,
            { cause: why, details: { endpoint: this.endpoint, artifactId: id, httpStatus: res.status } },
          );
        }
        return readCapped(res, maxBytes);
      },
      // The size is not known before the answer: allow a 2 GiB artifact at 1 MiB/s at most.
      this.sizedTimeout(Math.min(maxBytes, 2 ** 31)),
    );
  }

  /**
   * POST /v1/jobs. A retried submission of the same body is idempotent on the node (decision
   * 1040): it answers the current record and never runs the job twice. `maxOutputBytes`: the bound
   * the sealed request declares (signed with the rest); a node whose quotas cannot hold it answers
   * 413 E_QUOTA_EXCEEDED at once (decision 1690).
   */
  async submitJob(body: {
    jobId: Hex;
    enc: Hex;
    ciphertext: string;
    inputs: Hex[];
    maxOutputBytes?: number;
  }): Promise<NodeJobRecord> {
    return this.call(
      'POST /v1/jobs',
      '/v1/jobs',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.submissionHeaders('POST /v1/jobs', body) },
        body: JSON.stringify(body),
      },
      async (r) =>
        parseNodeAnswer(
          nodeJobRecordSchema,
          await json(r, this.endpoint, 'POST /v1/jobs'),
          this.endpoint,
          'POST /v1/jobs',
        ),
    );
  }

  /**
   * POST /v1/sessions. With `direct`, asks the node for a direct connection to the session's child
   * (header `x-firn-session-direct: 1`, decision 1310); the answer's `direct` then names it.
   */
  async openSession(
    body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[] },
    direct = false,
  ): Promise<{
    sessionId: Hex;
    salt: Hex;
    expiresAt: number;
    /** Base64 channel response: the model's tensor names, sealed to the requester. */
    response: string;
    /** The session's transport token (base64url): sent with every request and stream of it. */
    accessToken?: string | undefined;
    /**
     * Where the requester may connect to the session's child itself (decision 1310): a TCP port
     * on the node's host and the 32-byte token (hex) the connection's first frame must carry.
     */
    direct?: { port: number; token: Hex } | undefined;
  }> {
    return this.call(
      'POST /v1/sessions',
      '/v1/sessions',
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(direct ? { 'x-firn-session-direct': '1' } : {}),
          ...this.submissionHeaders('POST /v1/sessions', body),
        },
        body: JSON.stringify(body),
      },
      async (r) =>
        parseNodeAnswer(
          sessionOpenAnswerSchema,
          await json(r, this.endpoint, 'POST /v1/sessions'),
          this.endpoint,
          'POST /v1/sessions',
        ),
    );
  }

  /**
   * POST /v1/sessions/{id}/requests: one binary session message in, one out (both opaque to the
   * host). `accessToken` is the open answer's transport token (x-firn-session-token); `timeoutMs`
   * bounds the whole exchange, body included (default this client's timeout). A refusal the node
   * answered carries `details.httpStatus` (and `details.retryAfterSeconds` from a numeric
   * Retry-After), so a caller can tell it from a connection that dropped (no httpStatus).
   */
  async sessionRequest(
    sessionId: Hex,
    message: Uint8Array,
    maxResponseBytes = 8 * 1024 * 1024,
    accessToken?: string,
    timeoutMs = this.timeoutMs,
  ): Promise<Uint8Array> {
    return this.call(
      `POST /v1/sessions/${sessionId}/requests`,
      `/v1/sessions/${sessionId}/requests`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          ...(accessToken === undefined ? {} : { 'x-firn-session-token': accessToken }),
        },
        body: message,
      },
      async (res) => {
        if (!res.ok)
          await json(res, this.endpoint, `POST /v1/sessions/${sessionId}/requests`).catch((e: unknown) =>
            Promise.reject(withHttpAnswer(e, res)),
          );
        return readCapped(res, maxResponseBytes);
      },
      timeoutMs,
    );
  }

  /**
   * DELETE /v1/sessions/{id}: close the session; the node submits and returns the Work Proof.
   * `closeMessage` is the session's sealed close message (SessionCodec.sealClose), which the
   * enclave checks under the session keys; `accessToken` is the open answer's transport token
   * (x-firn-session-token), which the node requires before it relays the close (decision 1773).
   */
  async closeSession(
    sessionId: Hex,
    closeMessage: Uint8Array,
    accessToken?: string,
  ): Promise<{ proof: WorkProofJson; requests: number; proofTx?: Hex | undefined }> {
    const route = `DELETE /v1/sessions/${sessionId}`;
    return this.call(
      route,
      `/v1/sessions/${sessionId}`,
      {
        method: 'DELETE',
        headers: {
          'x-firn-session-auth': Buffer.from(closeMessage).toString('base64'),
          ...(accessToken === undefined ? {} : { 'x-firn-session-token': accessToken }),
        },
      },
      async (r) =>
        parseNodeAnswer(sessionCloseAnswerSchema, await json(r, this.endpoint, route), this.endpoint, route),
    );
  }

  /** GET /v1/jobs/{id}: the node's record of a job, shape-checked (E_PARSE naming the field). */
  async getJob(jobId: Hex): Promise<NodeJobRecord> {
    const route = `GET /v1/jobs/${jobId}`;
    return this.call(route, `/v1/jobs/${jobId}`, {}, async (r) =>
      parseNodeAnswer(nodeJobRecordSchema, await json(r, this.endpoint, route), this.endpoint, route),
    );
  }

  /**
   * GET /v1/jobs/{id}/result: a proved job's result, shape-checked (nodeJobResultSchema; E_PARSE
   * naming the node and the field, E_TOO_LARGE over 64 MiB). A result for another job than
   * `jobId` is E_PARSE too. Nothing is downloaded here.
   */
  async getResult(jobId: Hex): Promise<NodeJobResult> {
    const route = `GET /v1/jobs/${jobId}/result`;
    return this.call(route, `/v1/jobs/${jobId}/result`, {}, async (r) => {
      const result = parseNodeAnswer(
        nodeJobResultSchema,
        await json(r, this.endpoint, route),
        this.endpoint,
        route,
      );
      if (result.jobId !== jobId.toLowerCase())
        throw new FirnError(
          'E_PARSE',
          `node ${this.endpoint} answered ${route} with the result of another job`,
          {
            details: { endpoint: this.endpoint, route, field: 'jobId' },
          },
        );
      return result;
    });
  }

  /**
   * Follow GET /v1/jobs/{id}/events until the `end` event (wire shape: docs/decisions/1040):
   * each progress message (base64 channel ciphertext) goes to onMessage in `seq` order, once.
   * A dropped connection is resumed from the last `seq` seen (`Last-Event-ID`) up to
   * `reconnects` times; a gap in `seq`, fewer events than `end` names, or a stream that stays
   * closed without `end` raises E_UNAVAILABLE (never a silent short stream). `idleMs` bounds the
   * wait for any byte (the node sends a keep-alive every 15 s), so it only detects a dead
   * connection: a host that stays up keeps it alive for ever whether or not the job progresses.
   * The bound on the whole wait is the caller's: `signal` (e.g. aborted once the job's claim
   * should have lapsed, see runJob's followUntilLapse) ends it at once, also between reconnects,
   * and the call rejects with the signal's reason (a FirnError as given, else E_TIMEOUT).
   * Returns the end event's data.
   */
  async followEvents(
    jobId: Hex,
    onMessage: (message: string) => Promise<void> | void,
    opts: {
      idleMs?: number;
      reconnects?: number;
      reconnectDelayMs?: number;
      /** Events already delivered (the seq to resume from): a follower that reconnects skips them. */
      from?: number;
      /** Ends the wait (the connection and any reconnect delay); the call rejects with its reason. */
      signal?: AbortSignal;
    } = {},
  ): Promise<{ status: string; events?: number; error?: { code: ErrorCode; message: string } }> {
    const idleMs = opts.idleMs ?? 60_000;
    const reconnects = opts.reconnects ?? 3;
    let next = opts.from ?? 0; // the seq expected next
    let lastError: FirnError | undefined;
    const signal = opts.signal;
    for (let attempt = 0; attempt <= reconnects; attempt++) {
      if (signal?.aborted) throw abortError(signal, jobId);
      if (attempt > 0)
        await delay((opts.reconnectDelayMs ?? 500) * 2 ** (attempt - 1), signal).catch(() => undefined);
      if (signal?.aborted) throw abortError(signal, jobId);
      try {
        const end = await this.followOnce(jobId, next, idleMs, signal, async (seq, message) => {
          if (seq !== undefined && seq < next) return; // replayed: already delivered
          if (seq !== undefined && seq !== next)
            throw new FirnError(
              'E_UNAVAILABLE',
              `the event stream of job ${jobId} skipped from event ${next} to ${seq}: the node dropped events`,
              { details: { expected: next, got: seq } },
            );
          next++;
          await onMessage(message);
        });
        if (typeof end.events === 'number' && end.events !== next)
          throw new FirnError(
            'E_UNAVAILABLE',
            `the event stream of job ${jobId} ended after ${next} of ${end.events} events: the node dropped events`,
            { details: { received: next, events: end.events } },
          );
        return end;
      } catch (e) {
        // The caller ended the wait: its reason, never a reconnect.
        if (signal?.aborted) throw abortError(signal, jobId);
        const err = nodeNetworkError(e, this.endpoint, `GET /v1/jobs/${jobId}/events`);
        // Only a lost connection is worth resuming; a node's typed refusal or a gap is final.
        if (
          !(err.code === 'E_UNAVAILABLE' || err.code === 'E_TIMEOUT') ||
          err.details?.['expected'] !== undefined
        )
          throw err;
        if (err.details?.['events'] !== undefined) throw err;
        lastError = err;
      }
    }
    throw lastError ?? new FirnError('E_UNAVAILABLE', `the event stream of job ${jobId} failed`);
  }

  /** One connection to the event stream, from `after` (the seq expected next). */
  private async followOnce(
    jobId: Hex,
    from: number,
    idleMs: number,
    signal: AbortSignal | undefined,
    onEvent: (seq: number | undefined, message: string) => Promise<void>,
  ): Promise<{ status: string; events?: number; error?: { code: ErrorCode; message: string } }> {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    let idle = setTimeout(() => ctl.abort(new DOMException('idle', 'TimeoutError')), idleMs);
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => ctl.abort(new DOMException('idle', 'TimeoutError')), idleMs);
    };
    const route = `GET /v1/jobs/${jobId}/events`;
    try {
      const res = await fetch(this.url(`/v1/jobs/${jobId}/events`), {
        signal: ctl.signal,
        redirect: 'manual',
        headers: from > 0 ? { 'last-event-id': String(from - 1) } : {},
      });
      refuseRedirect(res, this.endpoint, route);
      if (!res.ok || !res.body) await json(res, this.endpoint, route);
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        touch();
        buf += dec.decode(value, { stream: true });
        if (buf.length > 4 * 1024 * 1024)
          throw new FirnError('E_TOO_LARGE', 'event stream message too large');
        let i = buf.indexOf('\n\n');
        while (i >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          i = buf.indexOf('\n\n');
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data === '') continue; // a keep-alive comment (": …") or an empty block
          let d: unknown;
          try {
            checkJsonDepth(data);
            d = JSON.parse(data);
          } catch {
            throw new FirnError('E_PARSE', `node ${this.endpoint}: event stream data is not JSON`, {
              details: { endpoint: this.endpoint, route, field: '(body)' },
            });
          }
          if (event === 'progress') {
            const p = parseNodeAnswer(progressEventSchema, d, this.endpoint, `${route} progress`);
            await onEvent(p.seq, p.message);
          }
          if (event === 'end') {
            await reader.cancel().catch(() => undefined);
            const e = parseNodeAnswer(endEventSchema, d, this.endpoint, `${route} end`);
            return {
              status: e.status,
              ...(e.events === undefined ? {} : { events: e.events }),
              ...(e.error === undefined
                ? {}
                : { error: { code: e.error.code as ErrorCode, message: e.error.message ?? '' } }),
            };
          }
        }
      }
      throw new FirnError('E_UNAVAILABLE', `the event stream of job ${jobId} closed without an end event`);
    } finally {
      clearTimeout(idle);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** The error an aborted follow rejects with: the signal's FirnError reason, else E_TIMEOUT naming the job. */
function abortError(signal: AbortSignal, jobId: Hex): FirnError {
  const r: unknown = signal.reason;
  if (r instanceof FirnError) return r;
  return new FirnError('E_TIMEOUT', `the wait on the event stream of job ${jobId} was ended by its caller`, {
    cause: r,
    details: { jobId },
  });
}

/** Wait `ms`, or less when `signal` aborts (then rejects). */
function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', stop, { once: true });
  });
}
