import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FirnError, type Hex, isFirnError, sha256, toErrorBody, utf8 } from '@firn/core';
import {
  createSessionEndpoint,
  MAX_SESSION_MESSAGE_BYTES,
  SESSION_FORMAT,
  SESSION_STATUS,
  type SessionEndpoint,
  type SessionKeys,
  SessionTranscript,
  sessionClosePlaintext,
} from '@firn/crypto';
import {
  MAX_STREAM_FRAME_BYTES,
  SESSION_TOKEN_BYTES,
  STREAM_TAG,
  StreamFrameReader,
  writeStreamFrame,
} from '../protocol.ts';
import {
  decodeTensorsBinary,
  encodeTensorsBinary,
  parseTensorMap,
  type TensorMap,
  tensorMapToJson,
} from '@firn/ml';

/**
 * The direct session endpoint (docs/decisions/1240-direct-session-endpoint.md). A warm session's
 * keyless ML child is the session's endpoint: the enclave process (which checked the grant,
 * decrypted the model and derived the per-direction keys) hands it ONLY that session's two
 * direction keys. The child listens on a Unix socket in a fresh 0700 directory, accepts the one
 * connection that presents the open's random token (the host's), and for each length-prefixed
 * frame opens the session message, checks its sequence number, runs the model (async, so the next
 * pipelined frame is read meanwhile), seals the reply and keeps the transcript (count, R, S,
 * workUnits) that the enclave process signs at close. The enclave process is not on the
 * per-request path.
 *
 * Stream framing (both directions): u32 big-endian length L, then L bytes = u8 tag || body.
 * Host to child: tag 0 = a session request message (as the requester sealed it), tag 2 = the
 * connection token (first frame only). Child to host: tag 0 = the sealed response message, tag 1 =
 * JSON {code, message} of a message the child refused without touching the session (not a request,
 * replayed, reordered, altered, too large, session expired or finished). The message bytes are
 * relayed as they are; nothing is re-encoded.
 */

/** Connections without the token the endpoint accepts before it stops listening for good. */
export const MAX_TOKENLESS_CONNECTIONS = 16;

/** What the enclave process hands the child for one session. */
export interface ServeSessionParams {
  /** 32-byte session id (the jobId), hex. */
  sessionId: Hex;
  /** The session's two direction keys (32 bytes each); nothing else of the enclave's. */
  keys: SessionKeys;
  /** Milliseconds from now until the grant expires; requests after it are refused (E_GRANT_EXPIRED). */
  expiresInMs: number;
  /** Cap on one request message, bytes (at most MAX_SESSION_MESSAGE_BYTES). */
  maxRequestBytes: number;
  /** Directory the socket's private folder is made in; default the OS temp dir. */
  socketDir?: string;
}

/** Where the host connects: the socket path and the token its first frame must carry (hex). */
export interface SessionEndpointAddress {
  path: string;
  token: Hex;
}

/** The transcript a child reports at close; the enclave process signs the proof over it. */
export interface SessionEndpointTranscript {
  count: bigint;
  requestsHash: Uint8Array;
  responsesHash: Uint8Array;
  workUnits: bigint;
}

/** A loaded model as the endpoint uses it. */
export interface EndpointModel {
  run(inputs: TensorMap): Promise<Record<string, { type: string; dims: readonly number[]; data: unknown }>>;
}

function decodeRequestPayload(pt: Uint8Array): { format: number; tensors: TensorMap } {
  const format = pt[0];
  const body = pt.subarray(1);
  if (format === SESSION_FORMAT.binary) return { format, tensors: decodeTensorsBinary(body) };
  if (format === SESSION_FORMAT.json) return { format, tensors: parseTensorMap(body) };
  throw new FirnError('E_INPUT_INVALID', 'unknown session payload format');
}

/** Response plaintext: status ok, format, outputs. */
export function encodeResponsePayload(
  format: number,
  outputs: Record<string, { type: string; dims: readonly number[]; data: unknown }>,
): Uint8Array {
  let out: Uint8Array;
  if (format === SESSION_FORMAT.binary) out = encodeTensorsBinary(outputs, 2);
  else {
    const body = utf8(tensorMapToJson(outputs));
    out = new Uint8Array(body.length + 2);
    out.set(body, 2);
  }
  out[0] = SESSION_STATUS.ok;
  out[1] = format;
  return out;
}

/** Response plaintext of a request that opened but could not run: status error, JSON {code, message}. */
export function errorPayload(e: unknown): Uint8Array {
  // Typed errors (bad tensors, wrong shapes) are the requester's to see; anything else stays vague.
  const body = isFirnError(e)
    ? { code: e.code, message: e.message }
    : { code: 'E_JOB_FAILED', message: 'inference failed' };
  const text = utf8(JSON.stringify(body));
  const out = new Uint8Array(text.length + 1);
  out[0] = SESSION_STATUS.error;
  out.set(text, 1);
  return out;
}

/**
 * One session request, in order: open (E_CHANNEL_SEQUENCE / E_DECRYPT / E_PARSE leave the
 * session unchanged and are thrown), run, seal, record in the transcript. Shared by the enclave
 * process's pipe path and the direct endpoint, so both answer alike. `deliver`, when given, is
 * called with the sealed answer before it is recorded (the endpoint writes it out first, so the
 * transcript's hashing is not on the request's latency path); the request's own SHA-256 is taken
 * while the model runs on onnxruntime's thread.
 */
export async function answerSessionRequest(
  endpoint: SessionEndpoint,
  model: EndpointModel,
  transcript: SessionTranscript,
  message: Uint8Array,
  deliver?: (sealed: Uint8Array) => void,
): Promise<{ sealed: Uint8Array; units: bigint }> {
  const pt = endpoint.open(message);
  let response: Uint8Array;
  let units = 0n;
  let requestDigest: Uint8Array | undefined;
  try {
    const { format, tensors } = decodeRequestPayload(pt);
    for (const t of Object.values(tensors)) units += BigInt(t.data.length);
    const running = model.run(tensors);
    requestDigest = sha256(message);
    response = encodeResponsePayload(format, await running);
  } catch (e) {
    units = 0n;
    response = errorPayload(e);
  }
  let sealed: Uint8Array;
  try {
    sealed = endpoint.seal(response);
  } catch {
    // The request was opened: it must get an answer at this sequence number, never a refusal.
    units = 0n;
    sealed = endpoint.seal(
      errorPayload(new FirnError('E_TOO_LARGE', 'the response is over the session cap')),
    );
  }
  deliver?.(sealed);
  transcript.addDigests(requestDigest ?? sha256(message), sha256(sealed));
  return { sealed, units };
}

/** Whether a session plaintext is the requester's close message. */
export function isCloseMessage(pt: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(pt), Buffer.from(sessionClosePlaintext())) === 0;
}

/** A served session in the child: its address, and the calls the enclave process makes on it. */
export interface ServedSessionEndpoint {
  address: SessionEndpointAddress;
  /** Milliseconds since the last answered request (or the start). */
  idleMs(): number;
  /**
   * End serving and report the transcript. With `auth` (the requester's sealed close message) the
   * close is checked under the session keys first: one that does not open, or is not the close
   * tag, fails with E_UNAUTHENTICATED and the session keeps serving.
   */
  finish(auth?: Uint8Array): Promise<SessionEndpointTranscript>;
  /** Stop at once (drop, crash of the session): no transcript. */
  stop(): void;
}

/**
 * Serve one session on a Unix socket in a fresh 0700 directory. Exactly one connection is kept:
 * the first whose first frame is the token; others are closed without an answer, and after
 * MAX_TOKENLESS_CONNECTIONS of them the endpoint stops listening (the host can reconnect only
 * until it has connected). Requests are answered strictly in arrival order.
 */
export async function serveSessionEndpoint(
  model: EndpointModel,
  p: ServeSessionParams,
): Promise<ServedSessionEndpoint> {
  const endpoint = createSessionEndpoint('enclave', p.keys, p.sessionId);
  const transcript = new SessionTranscript();
  const maxRequest = Math.min(p.maxRequestBytes, MAX_SESSION_MESSAGE_BYTES);
  const token = randomBytes(SESSION_TOKEN_BYTES);
  const started = performance.now();
  const expiresAt = started + Math.max(0, p.expiresInMs);
  let workUnits = 0n;
  let lastUsed = started;
  let finished = false;
  let tail: Promise<unknown> = Promise.resolve();
  let host: Socket | undefined;
  let tokenless = 0;
  // mkdtemp makes the folder 0700: only the enclave's user can reach the socket at all.
  const dir = mkdtempSync(join(p.socketDir ?? tmpdir(), 'firn-s-'));
  const path = join(dir, 's');
  const server: Server = createServer({ noDelay: true } as Parameters<typeof createServer>[0]);
  const unlisten = () => {
    if (server.listening) server.close();
    rmSync(dir, { recursive: true, force: true });
  };

  const refuse = (socket: Socket, e: unknown) => {
    if (!socket.destroyed) writeStreamFrame(socket, STREAM_TAG.error, utf8(JSON.stringify(toErrorBody(e))));
  };
  const onMessage = (socket: Socket, message: Buffer) => {
    const run = tail.then(async () => {
      if (finished) throw new FirnError('E_NOT_FOUND', 'session closed');
      if (message.length > maxRequest)
        throw new FirnError('E_TOO_LARGE', `a session request is at most ${maxRequest} bytes`);
      // Monotonic time from the open: nothing outside the child can move it back.
      if (performance.now() >= expiresAt)
        throw new FirnError('E_GRANT_EXPIRED', 'the session grant has expired');
      const { units } = await answerSessionRequest(endpoint, model, transcript, message, (sealed) => {
        if (!socket.destroyed) writeStreamFrame(socket, STREAM_TAG.message, sealed);
      });
      workUnits += units;
      lastUsed = performance.now();
    });
    tail = run.catch((e: unknown) => refuse(socket, e));
  };

  server.on('connection', (socket: Socket) => {
    if (host !== undefined || finished) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const reader = new StreamFrameReader(MAX_STREAM_FRAME_BYTES);
    let authed = false;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      let frames: { tag: number; body: Buffer }[];
      try {
        frames = reader.push(chunk);
      } catch (e) {
        if (authed) refuse(socket, e);
        socket.destroy();
        return;
      }
      for (const f of frames) {
        if (!authed) {
          if (
            host === undefined &&
            f.tag === STREAM_TAG.token &&
            f.body.length === SESSION_TOKEN_BYTES &&
            timingSafeEqual(f.body, token)
          ) {
            authed = true;
            host = socket;
            unlisten();
            continue;
          }
          // A stranger: no answer at all, and a bounded number of tries.
          socket.destroy();
          if (++tokenless >= MAX_TOKENLESS_CONNECTIONS) unlisten();
          return;
        }
        if (f.tag !== STREAM_TAG.message) {
          refuse(socket, new FirnError('E_PARSE', 'unknown session stream frame'));
          continue;
        }
        onMessage(socket, f.body);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const stop = () => {
    finished = true;
    unlisten();
    host?.destroy();
  };
  return {
    address: { path, token: `0x${token.toString('hex')}` as Hex },
    idleMs: () => performance.now() - lastUsed,
    async finish(auth) {
      // After every request already read: the transcript covers exactly what was answered.
      const done = tail.then(() => {
        if (finished) throw new FirnError('E_NOT_FOUND', 'session closed');
        if (auth !== undefined) {
          // Only a close is taken: a request handed in as the close is not consumed (its sequence
          // number stays the next request's, so no later answer shifts onto another request).
          try {
            endpoint.open(auth, isCloseMessage);
          } catch {
            throw new FirnError(
              'E_UNAUTHENTICATED',
              'the close request is not a close under the session keys',
            );
          }
        }
        stop();
        const o = transcript.opening();
        return { count: o.count, requestsHash: o.requestsHash, responsesHash: o.responsesHash, workUnits };
      });
      tail = done.catch(() => undefined);
      return done;
    },
    stop,
  };
}
