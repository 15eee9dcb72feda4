import { createHash, randomBytes } from 'node:crypto';
import {
  bytesToHex,
  type ErrorCode,
  FirnError,
  type Hex,
  hexBytes,
  parseWorkProofJson,
  sha256,
  utf8,
  type WorkProofJson,
} from '@firn/core';
import {
  type CreateGrantParams,
  createSessionEndpoint,
  deriveSessionKeys,
  MAX_SESSION_BODY_BYTES,
  openChannel,
  type RequesterChannel,
  SESSION_FORMAT,
  SESSION_KIND,
  SESSION_SALT_BYTES,
  SESSION_STATUS,
  type SessionEndpoint,
  SessionTranscript,
  sessionChannelInfo,
  sessionClosePlaintext,
  sessionMessageHeader,
} from '@firn/crypto';
import {
  decodeTensorsBinaryFrom,
  encodeTensorsBinary,
  encodeTensorsBinaryParts,
  parseTensorMap,
  type TensorLike,
  type TensorMap,
  tensorMapToFixedWidthJson,
} from '@firn/ml/formats';
import {
  connectToNode,
  type MarketOptions,
  postJobWithDeadline,
  reclaimIfPossible,
  uploadSealed,
} from './marketJob.ts';
import { assertStillEligible } from './attestNode.ts';
import { JobFailedError } from './runJob.ts';
import { createJobRequest, jobCommitments } from './buildJobRequest.ts';
import { type SealedInput, sealInput } from './sealInput.ts';
import { postSessionRequest } from './sessionPost.ts';
import {
  DEFAULT_SESSION_POLL_MS,
  DEFAULT_SESSION_REQUEST_TIMEOUT_MS,
  MAX_SESSION_POLL_MS,
  SessionStream,
} from './sessionStream.ts';
import { verifyWorkProof } from './verifyWorkProof.ts';

export type SessionFormat = 'binary' | 'json';

/**
 * The requester's side of an open session's wire format: seals tensor maps as session requests,
 * opens responses in order, and keeps the transcript whose commitment the closing proof must carry.
 */
export class SessionCodec {
  private readonly _transcript = new SessionTranscript();
  /**
   * Answered exchanges not yet folded into the transcript, in order. A response's SHA-256 is taken
   * while the NEXT request is in flight (`hashPending`), or when the transcript is read: never on
   * a request's latency path, and never in the caller's own time between requests.
   */
  private readonly unhashed: { requestDigest: Uint8Array; response: Uint8Array }[] = [];
  /**
   * Input elements of the requests the enclave answered, ok or error (the proof's workUnits): the
   * enclave counts every request that opened and decoded, whether the model ran it or refused its
   * values (docs/decisions/1774-work-units-from-decoded-inputs.md), and this codec's requests always
   * decode (its encoders refuse what the enclave's decoders refuse).
   */
  workUnits = 0n;
  private readonly endpoint: SessionEndpoint;
  private readonly pending: bigint[] = [];

  constructor(
    secret: Uint8Array,
    readonly salt: Uint8Array,
    readonly sessionId: Hex,
    readonly format: SessionFormat = 'binary',
  ) {
    this.endpoint = createSessionEndpoint('requester', deriveSessionKeys(secret, salt, sessionId), sessionId);
  }

  sealRequest(tensors: Record<string, TensorLike>): Uint8Array {
    return this.sealEncoded(this.encodeRequest(tensors));
  }

  /**
   * A request's plaintext (format byte, then the tensors in this session's format) and its work
   * units, in a buffer of its own: a copy of the tensors as they are now, so a caller that changes
   * its arrays afterwards changes nothing that is sent. `sealEncoded` seals it later, at its turn
   * (the POST fallback takes its inputs at `infer()`, like the stream). Throws like `sealRequest`.
   */
  encodeRequest(tensors: Record<string, TensorLike>): EncodedSessionRequest {
    let pt: Uint8Array;
    if (this.format === 'binary') pt = encodeTensorsBinary(tensors, 1);
    else {
      const body = jsonRequestBody(tensors);
      pt = new Uint8Array(body.length + 1);
      pt.set(body, 1);
    }
    pt[0] = SESSION_FORMAT[this.format];
    // The cap `seal` checks, checked now: a request refused later, at its turn, would close the session.
    if (pt.length > MAX_SESSION_BODY_BYTES)
      throw new FirnError('E_TOO_LARGE', 'session request over the session message cap');
    let units = 0n;
    for (const t of Object.values(tensors)) units += BigInt((t.data as ArrayLike<unknown>).length);
    return { plaintext: pt, units };
  }

  /** Seal a request `encodeRequest` made as the session's next request message. */
  sealEncoded(request: EncodedSessionRequest): Uint8Array {
    const message = this.endpoint.seal(request.plaintext);
    this.pending.push(request.units);
    return message;
  }

  /**
   * `sealRequest` as the wire form's parts (concatenated: the very message `sealRequest` would
   * give at this sequence number): the tensors' elements are sealed where they lie and the parts
   * go out in one writev, so neither the plaintext nor the ciphertext is gathered in JS
   * (docs/decisions/1360-session-hot-path-without-copies.md). `openResponse` takes the parts as
   * the request. Throws like `sealRequest`.
   */
  sealRequestParts(tensors: Record<string, TensorLike>): Uint8Array[] {
    let pt: Uint8Array[];
    if (this.format === 'binary') pt = encodeTensorsBinaryParts(tensors, 1);
    else {
      const body = jsonRequestBody(tensors);
      const one = new Uint8Array(body.length + 1);
      one.set(body, 1);
      pt = [one];
    }
    pt[0]![0] = SESSION_FORMAT[this.format];
    let units = 0n;
    for (const t of Object.values(tensors)) units += BigInt((t.data as ArrayLike<unknown>).length);
    const message = this.endpoint.sealParts(pt);
    this.pending.push(units);
    return message;
  }

  /**
   * Make the AES-256-GCM contexts of the next request and of the next answer now
   * (`SessionEndpoint.prepare`, decision 1772): called while a request is in flight, so the next
   * seal and open do not build them on the latency path. Changes no byte sent or accepted.
   */
  prepare(): void {
    this.endpoint.prepare();
  }

  /** The session transcript of the answered exchanges so far (every pending hash folded in). */
  get transcript(): SessionTranscript {
    this.hashPending();
    return this._transcript;
  }

  /**
   * Fold the answered exchanges not hashed yet into the transcript (call while a request is in
   * flight). `done`, when given, gets each answer's bytes once they are hashed: nothing here reads
   * them again (the direct stream reuses their memory for a later answer, decision 1420).
   */
  hashPending(done?: (response: Uint8Array) => void): void {
    for (const u of this.unhashed.splice(0)) {
      this._transcript.addDigests(u.requestDigest, sha256(u.response));
      done?.(u.response);
    }
  }

  /**
   * Open the response to `request` (the message sealRequest returned, or the parts
   * sealRequestParts returned); typed enclave errors are rethrown. `requestDigest`: SHA-256 of
   * `request` when the caller already took it (while the request was in flight); computed here otherwise.
   */
  openResponse(
    request: Uint8Array | readonly Uint8Array[],
    response: Uint8Array,
    requestDigest?: Uint8Array,
  ): TensorMap {
    // The answer to a request carries the request's own sequence number (the enclave answers every
    // request it opens, in order): an answer to another request (a host that kept one back, or
    // faked a refusal) never passes for this one's. The number is authenticated (nonce and AAD).
    if (sessionMessageHeader(response).seq !== requestSeq(request))
      throw new FirnError('E_CHANNEL_SEQUENCE', 'the session answer is not to this request');
    // Authenticated, then decoded (decision 1715): outputs' elements are views of the answer's
    // plaintext buffer where aligned. Throws unless it opens; after an answer that does not
    // authenticate this side of the session opens nothing more (E_DECRYPT).
    let status: number | undefined;
    const opened = this.endpoint.openReading(response, (r) => {
      status = r.left > 0 ? r.take(1)[0] : undefined;
      if (status !== SESSION_STATUS.ok) return r.take(r.left);
      const format = r.left > 0 ? r.take(1)[0] : undefined;
      return format === SESSION_FORMAT.binary ? decodeTensorsBinaryFrom(r) : parseTensorMap(r.take(r.left));
    });
    this.unhashed.push({ requestDigest: requestDigest ?? requestSha256(request), response });
    // Counted for every authentic answer, ok or error, as the enclave counts them (decision 1774).
    this.workUnits += this.pending.shift() ?? 0n;
    if (status === SESSION_STATUS.error) {
      let e: { code?: string; message?: string } = {};
      try {
        if (opened.ok) e = JSON.parse(new TextDecoder().decode(opened.value as Uint8Array)) as typeof e;
      } catch {}
      throw new FirnError(
        (e.code?.startsWith('E_') ? e.code : 'E_JOB_FAILED') as ErrorCode,
        e.message ?? 'inference failed',
      );
    }
    if (status !== SESSION_STATUS.ok) throw new FirnError('E_PARSE', 'unknown session response status');
    if (!opened.ok) throw opened.error;
    return opened.value as TensorMap;
  }

  /**
   * The session's close request: the close tag sealed as the next request message, so only a
   * holder of the session keys can close it (DELETE /v1/sessions/{id}, header x-firn-session-auth).
   */
  sealClose(): Uint8Array {
    return this.endpoint.seal(sessionClosePlaintext());
  }

  /** The outputCommitment the closing proof must carry. */
  commitment(): Hex {
    return this.transcript.commitment(this.sessionId, this.salt);
  }
}

/**
 * Tensor JSON of a request, refused here (E_INPUT_INVALID) when the enclave's parser would refuse
 * it: a request it refuses would be sent, take a sequence number, and its answer close the session.
 * Numbers are written at a fixed width, so the request's length depends on its tensors' names,
 * types and dims, never on their values (docs/decisions/1735-session-messages-padded.md).
 */
function jsonRequestBody(tensors: Record<string, TensorLike>): Uint8Array {
  const body = utf8(tensorMapToFixedWidthJson(tensors));
  if (Object.keys(parseTensorMap(body)).length === 0)
    throw new FirnError('E_INPUT_INVALID', 'a session request needs at least one tensor');
  return body;
}

/** A session request encoded but not sealed yet (`SessionCodec.encodeRequest`). */
export interface EncodedSessionRequest {
  /** Format byte, then the tensors: a buffer of its own, not a view of the caller's arrays. */
  plaintext: Uint8Array;
  /** The request's work units: the element count of its tensors. */
  units: bigint;
}

/** The sequence number of one of our own sealed requests (whole, or as its wire parts). */
function requestSeq(request: Uint8Array | readonly Uint8Array[]): bigint {
  if (request instanceof Uint8Array) return sessionMessageHeader(request).seq;
  // sealParts' first part is exactly the 10-byte header: version, kind, u64 BE sequence number.
  const head = request[0];
  if (head === undefined || head.length < 10) throw new FirnError('E_PARSE', 'not a sealed session request');
  return new DataView(head.buffer, head.byteOffset, head.byteLength).getBigUint64(2, false);
}

/** SHA-256 of a sealed request, whole or as its wire parts (the same digest). */
export function requestSha256(request: Uint8Array | readonly Uint8Array[]): Uint8Array {
  if (request instanceof Uint8Array) return sha256(request);
  const h = createHash('sha256');
  for (const p of request) h.update(p);
  return new Uint8Array(h.digest());
}

/**
 * Why a session's Work Proof does not cover the exchange the requester saw (empty: it does): its
 * outputCommitment must be the commitment of the requester's own transcript and its workUnits the
 * requester's own count (every answered request's input elements, errors included: decision 1774).
 * This is what makes a misreported transcript (a node, or a session child subverted by its model,
 * that claims more or other requests, or more work) worthless: the requester refuses it.
 * Throws E_PARSE on a malformed proof.
 */
export function sessionProofMismatches(proof: WorkProofJson, codec: SessionCodec): string[] {
  const p = parseWorkProofJson(proof).proof;
  const reasons: string[] = [];
  if (p.outputCommitment.toLowerCase() !== codec.commitment().toLowerCase())
    reasons.push('outputCommitment differs from the requester’s own transcript');
  if (p.workUnits !== codec.workUnits) reasons.push('workUnits differ from the requester’s own count');
  return reasons;
}

export interface BuildSessionOpenParams {
  jobId: Hex;
  model: { artifactId: Hex; dataKey: Uint8Array };
  params?: Record<string, unknown>;
  requesterKey: Hex;
  enclave: { enclaveId: Hex; kemPublicKey: Hex };
  resultRecipient: Uint8Array;
  domain: { chainId: number; jobMarket: Hex };
  grantExpiresAt: number;
  /** Unix seconds: the latest block timestamp (the grant's issuedAt); default the local clock. */
  grantIssuedAt?: number;
  /** Fault tests only. */
  mutateGrant?: (p: CreateGrantParams) => CreateGrantParams;
}

/**
 * Build the encrypted open request of a session: the model grant (scoped to this jobId and the
 * session's workload hash) and a fresh session secret, sealed to the enclave's KEM key through an
 * HPKE channel bound to the jobId. Returns the POST /v1/sessions body and the secret.
 */
export async function buildSessionOpen(p: BuildSessionOpenParams): Promise<{
  body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[] };
  secret: Uint8Array;
  /** Opens the enclave's sealed open response (`openSessionInfo`). */
  channel: RequesterChannel;
}> {
  const job = await createJobRequest({
    jobId: p.jobId,
    kind: SESSION_KIND,
    inputs: [{ role: 'model', artifactId: p.model.artifactId, dataKey: p.model.dataKey }],
    params: p.params ?? {},
    requesterKey: p.requesterKey,
    enclave: p.enclave,
    resultRecipient: p.resultRecipient,
    domain: p.domain,
    grantExpiresAt: p.grantExpiresAt,
    ...(p.grantIssuedAt === undefined ? {} : { grantIssuedAt: p.grantIssuedAt }),
    ...(p.mutateGrant ? { mutateGrant: p.mutateGrant } : {}),
  });
  const secret = new Uint8Array(randomBytes(32));
  const channel = await openChannel(hexBytes(p.enclave.kemPublicKey, 'enclave KEM key', 32), {
    info: sessionChannelInfo(p.jobId),
  });
  const message = await channel.sealRequest(
    utf8(JSON.stringify({ v: 1, job, sessionSecret: bytesToHex(secret) })),
  );
  return {
    body: {
      jobId: p.jobId,
      enc: bytesToHex(channel.enc),
      ciphertext: Buffer.from(message).toString('base64'),
      inputs: [p.model.artifactId],
    },
    secret,
    channel,
  };
}

/**
 * Open the enclave's sealed answer to a session open (base64 channel response): the model's
 * input and output tensor names, which the host relays only encrypted. Throws E_DECRYPT on a
 * response not sealed on this channel, E_JOB_INVALID when it names another session.
 */
export async function openSessionInfo(
  channel: RequesterChannel,
  response: string,
  sessionId: Hex,
): Promise<{ inputNames: string[]; outputNames: string[] }> {
  const pt = await channel.openResponse(response);
  if (pt.length > 1024 * 1024) throw new FirnError('E_TOO_LARGE', 'session open response too large');
  let o: { v?: unknown; sessionId?: unknown; inputNames?: unknown; outputNames?: unknown };
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(pt)) as typeof o;
  } catch {
    throw new FirnError('E_PARSE', 'session open response is not JSON');
  }
  const names = (v: unknown) =>
    Array.isArray(v) && v.length <= 1024 && v.every((n) => typeof n === 'string') ? (v as string[]) : null;
  const inputNames = names(o.inputNames);
  const outputNames = names(o.outputNames);
  if (o.v !== 1 || inputNames === null || outputNames === null)
    throw new FirnError('E_PARSE', 'session open response is malformed');
  if (typeof o.sessionId !== 'string' || o.sessionId.toLowerCase() !== sessionId.toLowerCase())
    throw new FirnError('E_JOB_INVALID', 'the enclave opened another session than this job');
  return { inputNames, outputNames };
}

/** The session workload hash and input commitment (what the session job is posted with). */
export function sessionCommitments(modelArtifactId: Hex, params: Record<string, unknown> = {}) {
  return jobCommitments(SESSION_KIND, params, [{ role: 'model', artifactId: modelArtifactId }]);
}

export interface OpenInferenceSessionOptions extends MarketOptions {
  /** The ONNX model, plaintext (sealed here) or already sealed with its data key. */
  model: { bytes: Uint8Array } | { sealed: SealedInput };
  /** Tensor encoding inside the encrypted requests; default binary. */
  format?: SessionFormat;
  /**
   * How requests reach the session: `direct` (default) connects to the session's child itself
   * when the node offers it (one TCP connection the node's kernel carries, the node's process off
   * the path; docs/decisions/1310); `stream` sends them over one persistent binary connection to
   * the node (GET /v1/sessions/{id}/stream, HTTP Upgrade; docs/decisions/1240), which relays them.
   * Both pipeline: `infer` sends at once, and answers are opened in call order. Each falls back to
   * the next: direct to stream, stream to `http` (one POST /v1/sessions/{id}/requests each, one
   * at a time).
   */
  transport?: 'direct' | 'stream' | 'http';
  /**
   * How long one `infer` may wait for its answer, ms, counted from when it is sent (default
   * 60 000, DEFAULT_SESSION_REQUEST_TIMEOUT_MS: far above a batch-256 run). On every transport a
   * request that waits longer rejects with E_TIMEOUT, and so does every request queued behind it;
   * the session is then closed (its sequence numbers are spent), like after any failed request.
   * An integer from 1 to 2^31 - 1; anything else is E_INVALID_INPUT.
   */
  requestTimeoutMs?: number;
  /**
   * On the `direct` and `stream` transports, how long after sending a request this process keeps
   * its event loop polling instead of sleeping while the answer is due, ms (default 20,
   * DEFAULT_SESSION_POLL_MS): the answer is read on the next turn of the loop without a wake-up,
   * which on a virtual machine saves 0.1-0.6 ms a request, for the CPU of one core while it waits
   * (docs/decisions/1800-session-ends-poll-while-an-answer-is-due.md). 0 turns it off. An integer
   * from 0 to 1 000 (MAX_SESSION_POLL_MS); anything else is E_INVALID_INPUT.
   */
  pollMs?: number;
  mutateGrant?: (p: CreateGrantParams) => CreateGrantParams;
}

export interface InferenceSession {
  jobId: Hex;
  sessionId: Hex;
  /**
   * The session's transport token from the node's open answer (base64url): the node takes
   * requests and streams of this session only with it (x-firn-session-token). Keep it private.
   */
  accessToken?: string;
  node: { endpoint: string; enclaveId: Hex; enclaveAddress: Hex; measurement: Hex };
  /** Unix seconds after which the enclave refuses requests (the grant's expiry). */
  expiresAt: number;
  inputNames: string[];
  outputNames: string[];
  /**
   * How requests travel: straight to the session's child (`direct`, decision 1310), the node's
   * relayed pipelined binary stream, or one HTTP POST each (fallback).
   */
  transport: 'direct' | 'stream' | 'http';
  /** Milliseconds spent attesting and opening (post, claim, grant check, model load). */
  timings: { attestMs: number; openMs: number };
  /**
   * Run one tensor map in the enclave. Over a stream the request is sent at once (calls may
   * overlap; answers come in call order); over http one at a time, in call order. On every
   * transport the inputs are taken at the call: changing the arrays after `infer()` returns its
   * promise does not change the request. Invalid tensors reject at once (E_INPUT_INVALID,
   * E_UNSUPPORTED) and leave the session open.
   */
  infer(tensors: Record<string, TensorLike>): Promise<TensorMap>;
  /**
   * Close the session: the node submits the enclave's Work Proof, which is verified here. A
   * session that answered no request has nothing to prove: rejects with JobFailedError
   * E_SESSION_EMPTY after reclaiming the escrow (`reclaimed` says whether that succeeded). A
   * failed `infer` closes the session itself; close() then returns that result.
   */
  close(): Promise<SessionCloseResult>;
}

/** What closing a session returns: the verified Work Proof and the requester's own counts. */
export interface SessionCloseResult {
  proof: WorkProofJson;
  proofCheck: { ok: boolean; reasons: string[] };
  requests: number;
  workUnits: bigint;
}

/**
 * Open a warm inference session through the market: attest a node, seal and upload the model,
 * post one job (kind inference-session) with escrow, grant the model to that enclave for that
 * job, and open the session. Each `infer` is one encrypted round trip with no chain, grant or
 * disk work; `close` returns the session's Work Proof, checked against the requester's own
 * transcript. An open the enclave refuses rejects with its typed error after the escrow is reclaimed.
 */
export async function openInferenceSession(opts: OpenInferenceSessionOptions): Promise<InferenceSession> {
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_SESSION_REQUEST_TIMEOUT_MS;
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 1 || requestTimeoutMs > 2 ** 31 - 1)
    throw new FirnError('E_INVALID_INPUT', 'requestTimeoutMs must be an integer number of ms, 1 to 2^31 - 1');
  const pollMs = opts.pollMs ?? DEFAULT_SESSION_POLL_MS;
  if (!Number.isInteger(pollMs) || pollMs < 0 || pollMs > MAX_SESSION_POLL_MS)
    throw new FirnError(
      'E_INVALID_INPUT',
      `pollMs must be an integer number of ms, 0 to ${MAX_SESSION_POLL_MS}`,
    );
  const t0 = performance.now();
  const m = await connectToNode(opts);
  const { clients, node, api, kem } = m;
  const attestMs = performance.now() - t0;
  const t1 = performance.now();
  const model =
    'sealed' in opts.model
      ? opts.model.sealed
      : await sealInput(opts.model.bytes, 'application/onnx', kem.publicKey);
  await uploadSealed(api, model, 'model');
  const { workloadHash, inputCommitment } = sessionCommitments(model.artifactId);
  // The grant expires with the job: at the deadline computed before the post and posted with it,
  // never at a clock read after it, which can be a second later (decision 1653).
  const { jobId, deadline } = await postJobWithDeadline(m, opts, { workloadHash, inputCommitment });
  const chainTime = Number((await clients.public.getBlock()).timestamp);
  const built = await buildSessionOpen({
    jobId,
    model,
    requesterKey: opts.requesterKey,
    enclave: node,
    resultRecipient: kem.publicKey,
    domain: { chainId: opts.deployment.chainId, jobMarket: opts.deployment.jobMarket },
    grantExpiresAt: Number(deadline),
    // The chain time the grant is made at: the enclave's clock never goes below it.
    grantIssuedAt: chainTime,
    ...(opts.mutateGrant ? { mutateGrant: opts.mutateGrant } : {}),
  });
  let opened: Awaited<ReturnType<typeof api.openSession>>;
  try {
    // The model grant leaves with this request: re-check the node at a fresh block first.
    await assertStillEligible(m.view, node, opts.policy);
    opened = await api.openSession(built.body, (opts.transport ?? 'direct') === 'direct');
  } catch (e) {
    await reclaimIfPossible(clients, jobId).catch(() => false);
    throw e;
  }
  if (opened.sessionId.toLowerCase() !== jobId.toLowerCase())
    throw new FirnError('E_JOB_INVALID', 'node opened another session than this job');
  const codec = new SessionCodec(
    built.secret,
    hexBytes(opened.salt, 'salt', SESSION_SALT_BYTES),
    jobId,
    opts.format ?? 'binary',
  );
  codec.prepare();
  let names: Awaited<ReturnType<typeof openSessionInfo>>;
  try {
    names = await openSessionInfo(built.channel, opened.response, jobId);
  } catch (e) {
    // Never leave an opened session holding one of the enclave's slots: close it (no request was
    // answered, so the node fails the job) and take the escrow back.
    await api.closeSession(opened.sessionId, codec.sealClose(), opened.accessToken).catch(() => undefined);
    await reclaimIfPossible(clients, jobId).catch(() => false);
    throw e;
  }
  // Direct to the session's child when the node offers it (decision 1310), else the node's relayed
  // stream, else one POST per request.
  let direct: SessionStream | undefined;
  if ((opts.transport ?? 'direct') === 'direct' && opened.direct !== undefined) {
    const d = opened.direct;
    direct = await Promise.resolve()
      .then(() =>
        SessionStream.connectDirect(
          new URL(node.endpoint).hostname,
          d.port,
          hexBytes(d.token, 'direct token', 32),
        ),
      )
      .catch(() => undefined);
  }
  const stream =
    direct ??
    (opts.transport === 'http'
      ? undefined
      : await SessionStream.open(node.endpoint, opened.sessionId, undefined, opened.accessToken).catch(
          () => undefined,
        ));
  if (stream !== undefined) {
    stream.requestTimeoutMs = requestTimeoutMs;
    stream.pollMs = pollMs;
  }
  const openMs = performance.now() - t1;
  let tail: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const run = tail.then(f, f);
    tail = run.catch(() => undefined);
    return run;
  };
  let closing: Promise<SessionCloseResult> | undefined;
  /** The E_TIMEOUT a POST request failed with, if one did (what requests queued behind it get). */
  let timedOut: FirnError | undefined;
  const close = (): Promise<SessionCloseResult> => {
    closing ??= serial(async () => {
      stream?.close();
      const r = await api
        .closeSession(opened.sessionId, codec.sealClose(), opened.accessToken)
        .catch(async (e: unknown) => {
          // Nothing was asked: the enclave signs no proof, the node fails the job, the escrow returns.
          if ((e as FirnError).code !== 'E_SESSION_EMPTY') throw e;
          const reclaimed = await reclaimIfPossible(clients, jobId).catch(() => false);
          throw new JobFailedError('E_SESSION_EMPTY', (e as Error).message, jobId, reclaimed);
        });
      const check = await verifyWorkProof(clients, r.proof, {
        jobId,
        workloadHash,
        inputCommitment,
        outputCommitment: codec.commitment(),
      });
      for (const why of sessionProofMismatches(r.proof, codec))
        if (!check.reasons.includes(why)) check.reasons.push(why);
      return {
        proof: r.proof,
        proofCheck: { ok: check.reasons.length === 0, reasons: check.reasons },
        requests: r.requests,
        workUnits: codec.workUnits,
      };
    });
    return closing;
  };
  return {
    jobId,
    sessionId: opened.sessionId,
    ...(opened.accessToken === undefined ? {} : { accessToken: opened.accessToken }),
    node: {
      endpoint: node.endpoint,
      enclaveId: node.enclaveId,
      enclaveAddress: node.enclaveAddress,
      measurement: node.measurement,
    },
    expiresAt: opened.expiresAt,
    inputNames: names.inputNames,
    outputNames: names.outputNames,
    transport: direct ? 'direct' : stream ? 'stream' : 'http',
    timings: { attestMs, openMs },
    infer: (tensors) => {
      // A stream the node ended (its idle close, a restart) is not reopened: the request goes by
      // POST, whose answer says what happened to the session (e.g. 404 E_NOT_FOUND).
      if (stream !== undefined && !stream.closed && !closing) {
        // Sealed and sent now, in call order; opened in the same order as the answers arrive.
        let request: Uint8Array[];
        try {
          request = codec.sealRequestParts(tensors);
        } catch (e) {
          return Promise.reject(e);
        }
        const answer = stream.sendParts(request);
        answer.catch(() => undefined);
        // Hashed for the transcript while the request is in flight (it is written out already),
        // with the earlier answers not hashed yet; their frame buffers go back to the stream.
        const requestDigest = requestSha256(request);
        codec.hashPending((r) => stream.reuse(r));
        // The contexts of this request's answer and of the next request, made while the enclave runs.
        codec.prepare();
        return serial(async () => {
          try {
            return codec.openResponse(request, await answer, requestDigest);
          } catch (e) {
            void close().catch(() => undefined);
            throw e;
          }
        });
      }
      // The inputs are taken now, at infer(), as the stream takes them: encoded into a buffer of
      // their own, sealed at their turn. A caller that changes its arrays after infer() changes
      // nothing that is sent.
      let encoded: EncodedSessionRequest;
      try {
        encoded = codec.encodeRequest(tensors);
      } catch (e) {
        return Promise.reject(e);
      }
      return serial(async () => {
        if (closing) {
          // Requests queued behind one that timed out fail as it did (their turn never comes).
          if (timedOut !== undefined)
            throw new FirnError('E_TIMEOUT', `${timedOut.message}; this request was queued behind it`, {
              details: { ...timedOut.details },
            });
          throw new FirnError('E_CONFLICT', 'the session was closed after a failed request; open a new one');
        }
        try {
          const request = codec.sealEncoded(encoded);
          // Refusals that prove the enclave never saw it are re-sent (the same sealed bytes, never
          // a new seal of the same inputs), a dropped connection once (decision 1530).
          const sent = postSessionRequest(api, opened.sessionId, request, {
            ...(opened.accessToken === undefined ? {} : { accessToken: opened.accessToken }),
            timeoutMs: requestTimeoutMs,
          });
          codec.hashPending();
          const response = await sent;
          return codec.openResponse(request, response);
        } catch (e) {
          // A failed request closes the session (its slot is freed at once); the proof covers
          // the requests answered before it, and close() returns it.
          if (e instanceof FirnError && e.code === 'E_TIMEOUT') timedOut ??= e;
          void close().catch(() => undefined);
          throw e;
        }
      });
    },
    close: () => close(),
  };
}
