import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, isIP, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import {
  DEFAULT_SESSION_POLL_MS,
  FirnError,
  type Hex,
  isFirnError,
  LoopPoller,
  MAX_SESSION_POLL_MS,
  pollDelayMs,
  RecentDurations,
  RecentGaps,
  toErrorBody,
  utf8,
} from '@firn/core';
import {
  createSessionEndpoint,
  MAX_SESSION_MESSAGE_BYTES,
  SESSION_FORMAT,
  SESSION_MIN_PADDED_BYTES,
  SESSION_STATUS,
  type SessionEndpoint,
  type SessionKeys,
  type SessionPlaintextReader,
  SessionTranscript,
  sessionClosePlaintext,
} from '@firn/crypto';
import { MAX_STREAM_FRAME_BYTES, SESSION_TOKEN_BYTES, STREAM_TAG, writeStreamFrame } from '../protocol.ts';
import {
  decodeTensorsBinaryFrom,
  encodeTensorsBinaryParts,
  fixedWidthJsonLength,
  parseTensorMap,
  type TensorMap,
  tensorMapToFixedWidthJson,
  tensorsBinaryLength,
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
  /**
   * IP address (the one the requester reached the host on) to listen on for the requester's own
   * connection, TCP, port chosen by the system (docs/decisions/1310). Absent: the host relays all.
   */
  directHost?: string;
  /**
   * Milliseconds the child's event loop is kept polling (not sleeping) after each answer and after
   * a connection is kept, so the next request is read without a wake-up (LoopPoller;
   * docs/decisions/1800-session-ends-poll-while-an-answer-is-due.md): at most
   * MAX_SESSION_POLL_MS, 0 turns it off; not after an answer once the requester's recent gaps
   * are longer than the window (RecentGaps); once three gaps are known, the window after an answer
   * starts POLL_LEAD_MS before the shortest of them (pollDelayMs), the core left to others until
   * then. Default DEFAULT_SESSION_POLL_MS. The host chooses it
   * (SessionBounds.pollMs): it is the CPU of one core the node spends per request at most twice over (during the run and after the answer).
   */
  pollMs?: number;
}

// The child's poll window by default and at most, ms (decision 1800; one figure for both ends).
export { DEFAULT_SESSION_POLL_MS, MAX_SESSION_POLL_MS } from '@firn/core';

/** Where the host connects: the socket path and the token its first frame must carry (hex). */
export interface SessionEndpointAddress {
  path: string;
  token: Hex;
  /**
   * Where the requester connects directly (with `directHost`): the TCP port on that address and
   * the 32-byte token (hex) its first frame must carry; the host passes both to the requester only.
   */
  direct?: { port: number; token: Hex };
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
  /**
   * The outputs' types and dims the model declares for these inputs, or undefined when unknown
   * before the run (onnxruntime's `OnnxModel.declaredOutputs`). Optional: an error answer is padded
   * to the length of the ok answer they give (docs/decisions/1735-session-messages-padded.md).
   */
  declaredOutputs?(inputs: TensorMap): Record<string, { type: string; dims: readonly number[] }> | undefined;
}

/**
 * A request payload (format byte, then binary tensors or tensor JSON), read only once the message
 * has authenticated (`openReading`, decision 1715): binary tensors' elements are views of the
 * message's plaintext buffer where aligned for their type, copied otherwise.
 */
function readRequestPayload(r: SessionPlaintextReader): { format: number; tensors: TensorMap } {
  const format = r.left > 0 ? r.take(1)[0] : undefined;
  if (format === SESSION_FORMAT.binary) return { format, tensors: decodeTensorsBinaryFrom(r) };
  if (format === SESSION_FORMAT.json) return { format, tensors: parseTensorMap(r.take(r.left)) };
  throw new FirnError('E_INPUT_INVALID', 'unknown session payload format');
}

/** Response plaintext: status ok, format, outputs. */
export function encodeResponsePayload(
  format: number,
  outputs: Record<string, { type: string; dims: readonly number[]; data: unknown }>,
): Uint8Array {
  return Buffer.concat(encodeResponsePayloadParts(format, outputs));
}

/**
 * `encodeResponsePayload` as consecutive parts (same bytes when concatenated): binary outputs
 * keep their elements as views of onnxruntime's output arrays, so the answer is sealed and written
 * without a copy of them in JS (docs/decisions/1360-session-hot-path-without-copies.md).
 */
export function encodeResponsePayloadParts(
  format: number,
  outputs: Record<string, { type: string; dims: readonly number[]; data: unknown }>,
): Uint8Array[] {
  let parts: Uint8Array[];
  if (format === SESSION_FORMAT.binary) parts = encodeTensorsBinaryParts(outputs, 2);
  else {
    // Fixed-width numbers: the text's length depends on the outputs' shapes, not their values (1735).
    const body = utf8(tensorMapToFixedWidthJson(outputs));
    const out = new Uint8Array(body.length + 2);
    out.set(body, 2);
    parts = [out];
  }
  parts[0]![0] = SESSION_STATUS.ok;
  parts[0]![1] = format;
  return parts;
}

/**
 * The length of `encodeResponsePayload(format, outputs)` for outputs of these names, types and
 * dims, whatever their values (binary tensors, and fixed-width tensor JSON, have lengths that
 * depend on nothing else), computed without encoding anything; undefined for an element type the
 * encoders refuse; MAX_SESSION_MESSAGE_BYTES for outputs over it. For an error answer padded to the
 * length its ok answer would have had (docs/decisions/1735-session-messages-padded.md).
 */
export function responsePayloadLength(
  format: number,
  outputs: Record<string, { type: string; dims: readonly number[] }>,
): number | undefined {
  // Status and format bytes, then the encoding itself; past the cap the ok answer is itself
  // refused (an E_TOO_LARGE error padded to the cap).
  const cap = MAX_SESSION_MESSAGE_BYTES;
  const body =
    format === SESSION_FORMAT.binary
      ? tensorsBinaryLength(outputs, 2, cap)
      : fixedWidthJsonLength(outputs, cap);
  if (body === undefined) return undefined;
  return Math.min(format === SESSION_FORMAT.binary ? body : body + 2, cap);
}

/** SHA-256 of the concatenation of `parts` (a message kept as its wire parts), 32 bytes. */
export function sha256Parts(parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/**
 * Most bytes of an error answer's plaintext: it fits in the padding minimum
 * (SESSION_MIN_PADDED_BYTES, with the padding's 0x80), so an error answer is never longer than
 * the shortest ok answer (docs/decisions/1735-session-messages-padded.md).
 */
export const MAX_ERROR_PAYLOAD_BYTES = SESSION_MIN_PADDED_BYTES - 1;

/**
 * Response plaintext of a request that opened but could not run: status error, JSON {code,
 * message}, at most MAX_ERROR_PAYLOAD_BYTES (a longer message is cut, marked with "...").
 */
export function errorPayload(e: unknown): Uint8Array {
  // Typed errors (bad tensors, wrong shapes) are the requester's to see; anything else stays vague.
  const body = isFirnError(e)
    ? { code: e.code, message: e.message }
    : { code: 'E_JOB_FAILED', message: 'inference failed' };
  let text = utf8(JSON.stringify(body));
  if (text.length + 1 > MAX_ERROR_PAYLOAD_BYTES) {
    // Cut by code points until it fits: the JSON stays valid and its UTF-8 whole.
    const chars = [...body.message];
    const over = text.length + 1 - MAX_ERROR_PAYLOAD_BYTES;
    let keep = Math.max(0, chars.length - over - 3);
    do text = utf8(JSON.stringify({ code: body.code, message: `${chars.slice(0, keep).join('')}...` }));
    while (text.length + 1 > MAX_ERROR_PAYLOAD_BYTES && keep-- > 0);
  }
  const out = new Uint8Array(text.length + 1);
  out[0] = SESSION_STATUS.error;
  out.set(text, 1);
  return out;
}

/**
 * What an endpoint's answers were padded to, by the sealed length of the request they answered
 * (the length the host sees): an answer to a request of a length seen before, ok or error, is
 * padded to at least the longest answer to such a request, so the host cannot tell an error from
 * an ok answer of that shape (docs/decisions/1735-session-messages-padded.md). At most
 * MAX_REMEMBERED_ANSWER_LENGTHS lengths per endpoint, the oldest forgotten first.
 */
const answerLengths = new WeakMap<SessionEndpoint, Map<number, number>>();
/** Request lengths an endpoint remembers its answers' padded lengths for. */
export const MAX_REMEMBERED_ANSWER_LENGTHS = 64;

/**
 * The plaintext length an answer of `parts` to a request of `requestLength` bytes is padded to:
 * at least its own length plus the padding's 0x80, SESSION_MIN_PADDED_BYTES, `okLength` + 1 (the
 * length of the ok answer an error answer stands for, when known) and what answers to requests of
 * that length were padded to before.
 */
function answerPadTo(
  endpoint: SessionEndpoint,
  requestLength: number,
  parts: readonly Uint8Array[],
  okLength = 0,
): number {
  let own = 0;
  for (const p of parts) own += p.length;
  const size = Math.max(okLength, own);
  let lengths = answerLengths.get(endpoint);
  if (lengths === undefined) {
    lengths = new Map();
    answerLengths.set(endpoint, lengths);
  }
  const padTo = Math.max(size + 1, SESSION_MIN_PADDED_BYTES, lengths.get(requestLength) ?? 0);
  lengths.delete(requestLength);
  lengths.set(requestLength, padTo);
  if (lengths.size > MAX_REMEMBERED_ANSWER_LENGTHS) lengths.delete(lengths.keys().next().value!);
  return padTo;
}

/**
 * One session request, in order: open (E_CHANNEL_SEQUENCE / E_DECRYPT / E_PARSE consume no
 * sequence number and are thrown; after an E_DECRYPT the session opens no further request), run, seal, record in the transcript.
 * The answer, ok or error, is padded inside the AEAD (docs/decisions/1735-session-messages-padded.md):
 * an error answer to the length the ok answer would have had (the model's declared outputs for
 * these inputs, `responsePayloadLength`), and every answer to at least what earlier answers to
 * requests of the same sealed length were padded to. Shared by the enclave
 * process's pipe path and the direct endpoint, so both answer alike. The sealed answer is the wire
 * form's parts (`SessionEndpoint.sealParts`: header, ciphertext parts, tag; concatenated, the
 * message): onnxruntime's output elements are sealed where they lie and nothing is gathered
 * (docs/decisions/1360-session-hot-path-without-copies.md). `deliver`, when given, is called with
 * them before the exchange is recorded (the endpoint writes them out first, so the transcript's two
 * SHA-256 passes are not on the request's latency path: onnxruntime-node runs the model on this
 * same thread, so nothing overlaps with the run itself). `units`, the request's share of the
 * proof's workUnits, is the element count of its input tensors once it opened and decoded, whether
 * the model answered or refused it (an error answer counts like the ok answer it mimics,
 * docs/decisions/1774-work-units-from-decoded-inputs.md); 0 only for a payload that does not decode.
 */
export async function answerSessionRequest(
  endpoint: SessionEndpoint,
  model: EndpointModel,
  transcript: SessionTranscript,
  message: Uint8Array,
  deliver?: (sealed: readonly Uint8Array[]) => void,
): Promise<{ sealed: Uint8Array[]; units: bigint }> {
  // Authenticated first, then decoded (decision 1715): nothing here runs on plaintext that does not
  // authenticate. Thrown only when the message does not open (the session opens no request after a
  // forgery), so no sequence number is used then.
  const opened = endpoint.openReading(message, readRequestPayload);
  let response: Uint8Array[];
  let units = 0n;
  // For an error answer: the length the ok answer would have had, when the model declares it.
  let okLength = 0;
  try {
    if (!opened.ok) throw opened.error;
    const { format, tensors } = opened.value;
    for (const t of Object.values(tensors)) units += BigInt(t.data.length);
    try {
      response = encodeResponsePayloadParts(format, await model.run(tensors));
    } catch (e) {
      const declared = model.declaredOutputs?.(tensors);
      okLength = (declared && responsePayloadLength(format, declared)) ?? 0;
      throw e;
    }
  } catch (e) {
    // The units stay: a request that opened and decoded counts whether the model ran it or
    // refused its values, so the proof's workUnits never tell an error from an ok answer (1774).
    response = [errorPayload(e)];
  }
  let sealed: Uint8Array[];
  try {
    sealed = endpoint.sealParts(response, answerPadTo(endpoint, message.length, response, okLength));
  } catch {
    // The request was opened: it must get an answer at this sequence number, never a refusal.
    // Its units stay too (decision 1774).
    const e = [errorPayload(new FirnError('E_TOO_LARGE', 'the response is over the session cap'))];
    sealed = endpoint.sealParts(e, answerPadTo(endpoint, message.length, e));
  }
  deliver?.(sealed);
  transcript.addDigests(sha256Parts([message]), sha256Parts(sealed));
  return { sealed, units };
}

/**
 * Write one stream frame whose body is `parts` (concatenated): the 5-byte frame header and every
 * part leave corked in one writev now, nothing copied in JS.
 */
function writeStreamFrameParts(socket: Socket, tag: number, parts: readonly Uint8Array[]): void {
  let size = 1;
  for (const p of parts) size += p.length;
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(size, 0);
  head[4] = tag;
  socket.cork();
  socket.write(head);
  for (const p of parts) if (p.length > 0) socket.write(p);
  socket.uncork();
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
   * close is checked under the session keys first, before it waits for the requests already read:
   * one that does not open, or is not the close tag, fails with E_UNAUTHENTICATED at once, and the
   * session keeps serving, its state (sequence numbers, prepared contexts) untouched (decision 1773).
   */
  finish(auth?: Uint8Array): Promise<SessionEndpointTranscript>;
  /** Stop at once (drop, crash of the session): no transcript. */
  stop(): void;
  /**
   * Turns of the event loop this endpoint has polled so far (ServeSessionParams.pollMs, decision
   * 1800): a diagnostic, and how tests see that the loop did not sleep after an answer.
   */
  pollTurns(): number;
}

/**
 * Keep the first connection to `server` whose first frame is `token` (tag 2) and stop listening
 * then (`unlisten`); every other connection is closed without a byte: one without the token,
 * one that sends no token within TOKEN_WAIT_MS, the oldest waiting one when a new connection
 * would make more than MAX_PENDING_CONNECTIONS wait at once (so silent strangers cannot keep the
 * token holder out without spending their tries), and any after the kept one. After MAX_TOKENLESS_CONNECTIONS such strangers the server stops
 * listening for good. Frames after the token go to `onFrame`; a frame the reader refuses (size)
 * is answered with `refuse` and ends the connection. With `ack`, the kept connection is told so
 * with one empty tag-2 frame (the requester's direct connection waits for it before it relies on
 * the connection, and falls back to the host's relay otherwise). A token that arrives once
 * `isOver()` is a stranger's. Returns what closes every connection still waiting for its token
 * (the endpoint's stop calls it).
 */
function acceptOne(
  server: Server,
  token: Buffer,
  ack: boolean,
  unlisten: () => void,
  isOver: () => boolean,
  onAuthed: (socket: Socket) => void,
  onFrame: (socket: Socket, f: EndpointFrame) => void,
  refuse: (socket: Socket, e: unknown) => void,
): () => void {
  let kept: Socket | undefined;
  let tokenless = 0;
  // Connections that have not presented their token yet, oldest first.
  const waiting = new Set<Socket>();
  const stranger = (socket: Socket) => {
    if (!waiting.delete(socket)) return;
    socket.destroy();
    if (++tokenless >= MAX_TOKENLESS_CONNECTIONS) unlisten();
  };
  server.on('connection', (socket: Socket) => {
    if (kept !== undefined || isOver()) {
      socket.destroy();
      return;
    }
    if (waiting.size >= MAX_PENDING_CONNECTIONS) stranger(waiting.values().next().value!);
    if (tokenless >= MAX_TOKENLESS_CONNECTIONS) {
      socket.destroy();
      return;
    }
    waiting.add(socket);
    socket.setNoDelay(true);
    // The first frame must be the token (tag + 32 bytes): a stranger cannot make the endpoint
    // gather more than that before it is refused.
    const reader = new EndpointFrameReader(MAX_STREAM_FRAME_BYTES, 1 + SESSION_TOKEN_BYTES);
    let authed = false;
    const wait = setTimeout(() => stranger(socket), TOKEN_WAIT_MS);
    socket.once('close', () => {
      clearTimeout(wait);
      waiting.delete(socket);
    });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      let frames: EndpointFrame[];
      try {
        frames = reader.push(chunk);
      } catch (e) {
        if (!authed) {
          stranger(socket);
          return;
        }
        refuse(socket, e);
        socket.destroy();
        return;
      }
      for (const f of frames) {
        if (!authed) {
          clearTimeout(wait);
          if (
            kept === undefined &&
            !isOver() &&
            f.tag === STREAM_TAG.token &&
            f.body.length === SESSION_TOKEN_BYTES &&
            timingSafeEqual(f.body, token)
          ) {
            authed = true;
            waiting.delete(socket);
            kept = socket;
            unlisten();
            for (const w of waiting) w.destroy();
            waiting.clear();
            onAuthed(socket);
            if (ack) writeStreamFrame(socket, STREAM_TAG.token, new Uint8Array(0));
            continue;
          }
          // A stranger: no answer at all, and a bounded number of tries.
          stranger(socket);
          return;
        }
        onFrame(socket, f);
      }
    });
  });
  // At the endpoint's stop: every connection still short of its token is closed now (its wait
  // timer with it), not left until TOKEN_WAIT_MS.
  return () => {
    for (const w of waiting) w.destroy();
    waiting.clear();
  };
}

/** A stream frame as the endpoint reads it; `done` hands its memory back once nothing reads it. */
interface EndpointFrame {
  tag: number;
  body: Buffer;
  done: () => void;
}

/** `done` of a frame whose memory is not the reader's to reuse (a view of one read, or empty). */
const keepNothing = (): void => {};

/** Gathered frame buffers a connection keeps for reuse, and their total bytes. */
const MAX_SPARE_FRAMES = 4;
const MAX_SPARE_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * The stream framing of `StreamFrameReader` (`u32 BE length || u8 tag || body`; a zero length is
 * E_PARSE and a length over `maxBody` E_TOO_LARGE, both from the prefix before anything more is
 * kept), for the endpoint's connections: a frame inside one read is a view of it, as before, and
 * a frame that spans reads (every batch-64 request: Node reads 64 KiB at a time) is gathered
 * into a buffer of exactly its size that the endpoint hands back (`done`) once the request is
 * answered and hashed, so the next frame of that size is gathered into the same memory instead
 * of fresh memory (docs/decisions/1420-session-reads-into-frame-buffers.md). Gathered memory
 * holds ciphertext only and every byte of it is overwritten before a frame is handed out.
 */
export class EndpointFrameReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private readonly head = Buffer.alloc(5);
  private readonly spare: Buffer[] = [];
  private readonly mine = new WeakSet<ArrayBufferLike>();
  private framesRead = 0;

  /**
   * `maxBody`: the cap on every frame's length (tag + body, bytes). `firstMaxBody`: the cap on the
   * first frame only, so a connection that has not presented its token (the first frame, 1 + 32
   * bytes) cannot make the endpoint gather a full-size frame from a stranger.
   */
  constructor(
    private readonly maxBody = MAX_STREAM_FRAME_BYTES,
    private readonly firstMaxBody = maxBody,
  ) {}

  /** Take `chunk`; returns the frames it completed, in order. Throws E_PARSE / E_TOO_LARGE. */
  push(chunk: Buffer): EndpointFrame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    const out: EndpointFrame[] = [];
    while (this.size >= 4) {
      this.peek(Math.min(5, this.size));
      const len = this.head.readUInt32BE(0);
      const cap = this.framesRead === 0 ? this.firstMaxBody : this.maxBody;
      if (len === 0) throw new FirnError('E_PARSE', 'empty session stream frame');
      if (len > cap)
        throw new FirnError(
          'E_TOO_LARGE',
          this.framesRead === 0
            ? `the first session stream frame (the connection token) is at most ${cap} bytes`
            : `a session stream frame is at most ${cap} bytes`,
        );
      if (this.size < 4 + len) break;
      const tag = this.head[4]!;
      this.skip(5);
      const first = this.chunks[0];
      let body: Buffer;
      let done: () => void = keepNothing;
      if (len === 1) body = Buffer.alloc(0);
      else if (first !== undefined && first.length >= len - 1) {
        body = first.subarray(0, len - 1);
        this.skip(len - 1);
      } else {
        const gathered = this.gather(len - 1);
        body = gathered;
        done = () => this.reuse(gathered);
      }
      this.framesRead++;
      out.push({ tag, body, done });
    }
    return out;
  }

  /** Copy the first `n` (at most 5) buffered bytes into `head`, keeping them buffered. */
  private peek(n: number): void {
    let at = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.length, n - at);
      c.copy(this.head, at, 0, k);
      at += k;
      if (at === n) return;
    }
  }

  /** Drop the first `n` buffered bytes. */
  private skip(n: number): void {
    this.size -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      if (c.length <= n) {
        n -= c.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }

  /** Move the first `n` buffered bytes into a buffer of exactly `n` bytes (a spare one if any). */
  private gather(n: number): Buffer {
    const i = this.spare.findIndex((b) => b.length === n);
    let into: Buffer;
    if (i >= 0) into = this.spare.splice(i, 1)[0]!;
    else {
      into = Buffer.allocUnsafeSlow(n);
      this.mine.add(into.buffer);
    }
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(into, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.size -= n;
    return into;
  }

  private reuse(b: Buffer): void {
    if (b.length > MAX_SPARE_FRAME_BYTES || !this.mine.has(b.buffer) || this.spare.includes(b)) return;
    this.spare.push(b);
    // The most recent are kept: at most MAX_SPARE_FRAMES, at most MAX_SPARE_FRAME_BYTES in all.
    let bytes = 0;
    for (const s of this.spare) bytes += s.length;
    while (this.spare.length > MAX_SPARE_FRAMES || bytes > MAX_SPARE_FRAME_BYTES)
      bytes -= this.spare.shift()!.length;
  }
}

/**
 * Request and answer bytes an endpoint handles between two collections it runs itself while no
 * request is waiting (`IdleCollector`). Each byte of a message costs the child about two bytes of
 * fresh external memory (the socket's read chunks and the decrypted input for a request;
 * onnxruntime's output and the sealed answer for an answer), and V8 starts a mark-compact on its
 * own once external memory has grown by 64 MiB since the last one, on whichever allocation crosses
 * the line: a request's decryption, run or sealing. At 8 MiB of messages (about 16-32 MiB of
 * external memory) the endpoint's own collection comes first, between requests.
 * docs/decisions/1500-session-child-collects-between-requests.md.
 */
export const IDLE_GC_MESSAGE_BYTES = 8 * 1024 * 1024;

/**
 * Runs the child's collections between requests instead of inside them
 * (docs/decisions/1500-session-child-collects-between-requests.md). `handled(bytes)` counts a
 * request's and its answer's bytes; `idle()` (call once nothing is waiting) schedules, for the next
 * turn of the event loop and only if nothing arrived meanwhile (`busy()` false): a mark-compact once
 * IDLE_GC_MESSAGE_BYTES have been handled since the last, else a scavenge once the young generation
 * is at least three quarters full (so the next request's allocations do not fill it). The collector is V8's
 * own `gc`, exposed to a fresh context only, the flag set at run time (the child is started with no
 * Node options); where that is unavailable it does nothing and V8 collects as before. Collecting
 * changes no result, only when memory is freed.
 */
export class IdleCollector {
  private bytes = 0;
  private scheduled = false;
  /** Collections run so far, by kind (for tests and diagnostics). */
  readonly runs = { major: 0, minor: 0 };

  constructor(
    private readonly busy: () => boolean,
    private readonly threshold = IDLE_GC_MESSAGE_BYTES,
    private readonly gc: ((type: 'major' | 'minor') => void) | null = exposedCollector(),
    private readonly youngMostlyFull: () => boolean = youngGenerationMostlyFull,
  ) {}

  /** Count `n` bytes of a request or answer message. */
  handled(n: number): void {
    this.bytes += n;
  }

  /** Nothing is waiting now: collect on the next turn if there is something to collect and still idle then. */
  idle(): void {
    if (this.gc === null || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.busy()) return;
      if (this.bytes >= this.threshold) {
        this.bytes = 0;
        this.runs.major++;
        this.gc?.('major');
      } else if (this.youngMostlyFull()) {
        this.runs.minor++;
        this.gc?.('minor');
      }
    });
  }
}

/** Whether V8's young generation (new space) is at least three quarters used. */
function youngGenerationMostlyFull(): boolean {
  for (const s of getHeapSpaceStatistics())
    if (s.space_name === 'new_space')
      return s.space_used_size * 4 >= (s.space_used_size + s.space_available_size) * 3;
  return false;
}

let exposedGc: ((o: { type: 'major' | 'minor' }) => void) | null | undefined;
/** V8's collection of the given kind, or null where it cannot be reached. */
function exposedCollector(): ((type: 'major' | 'minor') => void) | null {
  if (exposedGc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as unknown;
      exposedGc = typeof gc === 'function' ? (gc as (o: { type: 'major' | 'minor' }) => void) : null;
    } catch {
      exposedGc = null;
    }
  }
  const gc = exposedGc;
  return gc === null ? null : (type) => gc({ type });
}

/** How long a connection may take to present its token before it counts as a stranger, ms. */
export const TOKEN_WAIT_MS = 5_000;
/** Connections waiting to present their token at once; more count as strangers. */
export const MAX_PENDING_CONNECTIONS = 4;
/**
 * Requests read from one connection and not answered yet; at this many the endpoint stops reading
 * that connection until one is answered (TCP back-pressure on the sender, no refusal).
 */
export const MAX_QUEUED_PER_CONNECTION = 16;

/**
 * Serve one session. The host's connection comes on a Unix socket in a fresh 0700 directory;
 * with `directHost` the requester's own comes on a TCP port of that address
 * (docs/decisions/1310-requester-connects-to-session-child.md). Each listener keeps exactly one
 * connection: the first whose first frame is its token (the host's and the requester's are
 * different); others are closed without an answer, and after MAX_TOKENLESS_CONNECTIONS of them
 * that listener stops (the host, or the requester, can reconnect only until it has connected).
 * Requests from both connections are answered strictly in arrival order, each on the connection
 * it came on; each sequence number is taken once whichever connection carried it.
 */
export async function serveSessionEndpoint(
  model: EndpointModel,
  p: ServeSessionParams,
): Promise<ServedSessionEndpoint> {
  const endpoint = createSessionEndpoint('enclave', p.keys, p.sessionId);
  endpoint.prepare();
  const transcript = new SessionTranscript();
  const maxRequest = Math.min(p.maxRequestBytes, MAX_SESSION_MESSAGE_BYTES);
  const token = randomBytes(SESSION_TOKEN_BYTES);
  const started = performance.now();
  const expiresAt = started + Math.max(0, p.expiresInMs);
  let workUnits = 0n;
  let lastUsed = started;
  let finished = false;
  let tail: Promise<unknown> = Promise.resolve();
  const sockets = new Set<Socket>();
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
  const queued = new WeakMap<Socket, number>();
  // Requests read and not answered yet, on every connection: the idle collection waits for none.
  let waiting = 0;
  const collector = new IdleCollector(() => waiting > 0);
  const pollMs =
    Math.min(MAX_SESSION_POLL_MS, Math.max(0, Math.floor(p.pollMs ?? DEFAULT_SESSION_POLL_MS))) || 0;
  const poller = new LoopPoller(() => !finished);
  // Polling after an answer only while the requester's recent messages came within the window:
  // a session used now and then costs no CPU between its requests.
  const gaps = new RecentGaps();
  // How long the latest requests took from the start of their run to their answer, ms: while one
  // runs (the model on onnxruntime's thread), the loop sleeps until shortly before the shortest of
  // them and polls from then, so the run's end is seen without a wake-up and the core is not spun
  // against the run itself.
  const runTimes = new RecentDurations();
  const onMessage = (socket: Socket, message: Buffer, done: () => void) => {
    gaps.arrived();
    waiting++;
    collector.handled(message.length);
    const n = (queued.get(socket) ?? 0) + 1;
    queued.set(socket, n);
    if (n >= MAX_QUEUED_PER_CONNECTION) socket.pause();
    const run = tail.then(async () => {
      if (finished) throw new FirnError('E_NOT_FOUND', 'session closed');
      if (message.length > maxRequest)
        throw new FirnError('E_TOO_LARGE', `a session request is at most ${maxRequest} bytes`);
      // Monotonic time from the open: nothing outside the child can move it back.
      const runFrom = performance.now();
      if (runFrom >= expiresAt) throw new FirnError('E_GRANT_EXPIRED', 'the session grant has expired');
      poller.stop();
      poller.pollFor(pollMs, pollDelayMs(runTimes.shortest()));
      const { units } = await answerSessionRequest(endpoint, model, transcript, message, (sealed) => {
        for (const part of sealed) collector.handled(part.length);
        if (!socket.destroyed) writeStreamFrameParts(socket, STREAM_TAG.message, sealed);
        // The requester's next message is read on a turn of a loop that did not sleep (decision 1800),
        // polled from shortly before the shortest recent gap: a requester that thinks for a while
        // between requests leaves the core to others meanwhile.
        const now = performance.now();
        runTimes.add(now - runFrom);
        gaps.answered(now);
        poller.stop();
        if (gaps.fits(pollMs)) poller.pollFor(pollMs, pollDelayMs(gaps.shortest()));
        // The next request's and the next answer's contexts, made now that this answer is out
        // (decision 1772), not when the next request arrives.
        endpoint.prepare();
      });
      workUnits += units;
      lastUsed = performance.now();
    });
    tail = run
      .catch((e: unknown) => refuse(socket, e))
      .finally(() => {
        // Answered (and hashed) or refused: nothing reads the request's bytes any more.
        done();
        const left = (queued.get(socket) ?? 1) - 1;
        queued.set(socket, left);
        if (left < MAX_QUEUED_PER_CONNECTION && socket.isPaused()) socket.resume();
        if (--waiting === 0) collector.idle();
      });
  };
  const onFrame = (socket: Socket, f: EndpointFrame) => {
    if (f.tag !== STREAM_TAG.message) {
      f.done();
      refuse(socket, new FirnError('E_PARSE', 'unknown session stream frame'));
    } else onMessage(socket, f.body, f.done);
  };
  const keep = (socket: Socket) => {
    poller.pollFor(pollMs);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const dropWaiting = [acceptOne(server, token, false, unlisten, () => finished, keep, onFrame, refuse)];
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });

  // The requester's direct connection: a TCP port on the address the host named.
  let direct: { server: Server; port: number; token: Buffer } | undefined;
  if (p.directHost !== undefined) {
    if (isIP(p.directHost) === 0) {
      unlisten();
      throw new FirnError('E_INVALID_INPUT', 'directHost must be an IP address');
    }
    const tcp: Server = createServer({ noDelay: true } as Parameters<typeof createServer>[0]);
    const directToken = randomBytes(SESSION_TOKEN_BYTES);
    const unlistenTcp = () => {
      if (tcp.listening) tcp.close();
    };
    dropWaiting.push(acceptOne(tcp, directToken, true, unlistenTcp, () => finished, keep, onFrame, refuse));
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: p.directHost, port: 0, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch {
      unlisten();
      throw new FirnError('E_UNAVAILABLE', 'the session runtime cannot listen for direct connections');
    }
    direct = { server: tcp, port: (tcp.address() as AddressInfo).port, token: directToken };
  }

  const stop = () => {
    finished = true;
    poller.stop();
    unlisten();
    if (direct?.server.listening) direct.server.close();
    for (const s of sockets) s.destroy();
    for (const drop of dropWaiting) drop();
  };
  return {
    address: {
      path,
      token: `0x${token.toString('hex')}` as Hex,
      ...(direct === undefined
        ? {}
        : { direct: { port: direct.port, token: `0x${direct.token.toString('hex')}` as Hex } }),
    },
    idleMs: () => performance.now() - lastUsed,
    async finish(auth) {
      // A close that does not authenticate is refused now, not after the requests already read
      // (which may take long): checked on an endpoint of its own, so the session's state is
      // untouched and it keeps serving (decision 1773).
      if (auth !== undefined) {
        try {
          createSessionEndpoint('enclave', p.keys, p.sessionId).open(auth, isCloseMessage, true);
        } catch {
          throw new FirnError('E_UNAUTHENTICATED', 'the close request is not a close under the session keys');
        }
      }
      // After every request already read: the transcript covers exactly what was answered.
      const done = tail.then(() => {
        if (finished) throw new FirnError('E_NOT_FOUND', 'session closed');
        if (auth !== undefined) {
          // Only a close is taken: a request handed in as the close is not consumed (its sequence
          // number stays the next request's, so no later answer shifts onto another request).
          try {
            endpoint.open(auth, isCloseMessage, true);
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
    pollTurns: () => poller.turns,
  };
}
