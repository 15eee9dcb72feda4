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

/** A node's job record as GET /v1/jobs/{id} returns it. */
export interface NodeJobRecord {
  jobId: Hex;
  status: 'accepted' | 'claimed' | 'running' | 'proved' | 'failed';
  error?: { code: ErrorCode; message: string };
  outputs?: { role: string; artifactId: Hex; contentType: string; size: number }[];
  proof?: WorkProofJson;
}

export interface NodeJobResult {
  jobId: Hex;
  proof: WorkProofJson;
  response: string;
  outputs: { role: string; artifactId: Hex; contentType: string; size: number; sealed?: string }[];
}

const MAX_JSON_RESPONSE = 64 * 1024 * 1024;

const readCapped = (res: Response, cap: number) => readBodyCapped(res, cap, 'node response');

async function json<T>(res: Response): Promise<T> {
  const body = await readCapped(res, MAX_JSON_RESPONSE);
  let o: unknown;
  try {
    o = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    throw new FirnError('E_UNAVAILABLE', `node answered ${res.status} without JSON`);
  }
  if (!res.ok) {
    const e = (o as { error?: { code?: string; message?: string } }).error;
    throw new FirnError(
      (e?.code?.startsWith('E_') ? e.code : 'E_UNAVAILABLE') as ErrorCode,
      e?.message ?? `node answered ${res.status}`,
    );
  }
  return o as T;
}

/** A thin client of one node's HTTP API (docs/api.md). Nothing it returns is trusted unchecked. */
export class NodeApi {
  constructor(
    readonly endpoint: string,
    readonly timeoutMs = 120_000,
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
    body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[] },
  ): Record<string, string> {
    const key = this.key();
    if (!key || !this.signer) return {};
    return {
      'x-firn-signature': bytesToHex(signDigest(key, nodeSubmissionDigest(route, this.signer.scope, body))),
    };
  }

  /** PUT /v1/artifacts with a signed upload intent. */
  async uploadArtifact(sealed: Uint8Array): Promise<{ id: Hex; size: number }> {
    return json(
      await fetch(this.url('/v1/artifacts'), {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', ...this.uploadIntentHeaders(sealed) },
        body: sealed,
        signal: AbortSignal.timeout(this.timeoutMs),
      }),
    );
  }

  async getArtifact(id: Hex, maxBytes = 2 ** 31 - 1): Promise<Uint8Array> {
    const res = await fetch(this.url(`/v1/artifacts/${id}`), { signal: AbortSignal.timeout(this.timeoutMs) });
    if (!res.ok) await json(res);
    return readCapped(res, maxBytes);
  }

  async submitJob(body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[] }): Promise<NodeJobRecord> {
    return json(
      await fetch(this.url('/v1/jobs'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.submissionHeaders('POST /v1/jobs', body) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      }),
    );
  }

  /** POST /v1/sessions: claim the session job and open it in the enclave. */
  async openSession(body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[] }): Promise<{
    sessionId: Hex;
    salt: Hex;
    expiresAt: number;
    /** Base64 channel response: the model's tensor names, sealed to the requester. */
    response: string;
  }> {
    return json(
      await fetch(this.url('/v1/sessions'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.submissionHeaders('POST /v1/sessions', body) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      }),
    );
  }

  /** POST /v1/sessions/{id}/requests: one binary session message in, one out (both opaque to the host). */
  async sessionRequest(
    sessionId: Hex,
    message: Uint8Array,
    maxResponseBytes = 8 * 1024 * 1024,
  ): Promise<Uint8Array> {
    const res = await fetch(this.url(`/v1/sessions/${sessionId}/requests`), {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: message,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) await json(res);
    return readCapped(res, maxResponseBytes);
  }

  /**
   * DELETE /v1/sessions/{id}: close the session; the node submits and returns the Work Proof.
   * `closeMessage` is the session's sealed close message (SessionCodec.sealClose), which the
   * enclave checks under the session keys.
   */
  async closeSession(
    sessionId: Hex,
    closeMessage: Uint8Array,
  ): Promise<{ proof: WorkProofJson; requests: number; proofTx?: Hex }> {
    return json(
      await fetch(this.url(`/v1/sessions/${sessionId}`), {
        method: 'DELETE',
        headers: { 'x-firn-session-auth': Buffer.from(closeMessage).toString('base64') },
        signal: AbortSignal.timeout(this.timeoutMs),
      }),
    );
  }

  async getJob(jobId: Hex): Promise<NodeJobRecord> {
    return json(await fetch(this.url(`/v1/jobs/${jobId}`), { signal: AbortSignal.timeout(this.timeoutMs) }));
  }

  async getResult(jobId: Hex): Promise<NodeJobResult> {
    return json(
      await fetch(this.url(`/v1/jobs/${jobId}/result`), { signal: AbortSignal.timeout(this.timeoutMs) }),
    );
  }

  /**
   * Follow GET /v1/jobs/{id}/events until the `end` event; each progress message (base64 channel
   * ciphertext) goes to onMessage in order. Returns the end event's data.
   */
  async followEvents(
    jobId: Hex,
    onMessage: (message: string) => Promise<void> | void,
    timeoutMs = 600_000,
  ): Promise<{ status: string; error?: { code: ErrorCode; message: string } }> {
    const res = await fetch(this.url(`/v1/jobs/${jobId}/events`), { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok || !res.body) await json(res);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      if (buf.length > 4 * 1024 * 1024) throw new FirnError('E_TOO_LARGE', 'event stream message too large');
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
        let d: {
          message?: string;
          status?: string;
          error?: { code: ErrorCode; message: string };
        };
        try {
          d = JSON.parse(data) as typeof d;
        } catch {
          throw new FirnError('E_PARSE', 'event stream data is not JSON');
        }
        if (event === 'progress' && typeof d.message === 'string') await onMessage(d.message);
        if (event === 'end') {
          await reader.cancel().catch(() => undefined);
          return d as { status: string; error?: { code: ErrorCode; message: string } };
        }
      }
    }
    throw new FirnError('E_UNAVAILABLE', 'event stream ended without an end event');
  }
}
