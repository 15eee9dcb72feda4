import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import {
  DEFAULT_SESSION_POLL_MS,
  type ErrorCode,
  FirnError,
  type Hex,
  LoopPoller,
  MAX_SESSION_POLL_MS,
  pollDelayMs,
  RecentDurations,
} from '@firn/core';

/**
 * The requester's side of a session stream (docs/decisions/1240-direct-session-endpoint.md): one
 * persistent binary connection to the node, opened with `GET /v1/sessions/{id}/stream` and
 * `Upgrade: firn-session/1`. Frames are `u32 BE length || u8 tag || body` both ways; the requester
 * sends tag 0 frames (one sealed session request each) and may send the next before the answer to
 * the last arrived; answers come in order, tag 0 (the sealed response) or tag 1 (JSON {code,
 * message} of a refusal). Answers are size-capped (E_TOO_LARGE) and an answer nobody asked for
 * ends the stream (E_PARSE).
 */

export const SESSION_STREAM_PROTOCOL = 'firn-session/1';
/** Answer buffers a direct stream keeps for reuse (`SessionStream.reuse`), and their total bytes. */
export const MAX_SPARE_ANSWERS = 4;
export const MAX_SPARE_ANSWER_BYTES = 16 * 1024 * 1024;
/**
 * How long one session request may wait for its answer by default, ms, counted from when it was
 * sent (a batch-256 inference answers in tens of ms; a cold or loaded node in seconds).
 */
export const DEFAULT_SESSION_REQUEST_TIMEOUT_MS = 60_000;
// The requester's poll window by default and at most, ms (decision 1800; one figure for both ends).
export { DEFAULT_SESSION_POLL_MS, MAX_SESSION_POLL_MS } from '@firn/core';
/** The longest delay a Node timer holds, ms (2^31 - 1; a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long the node may take to answer a stream's upgrade request by default, ms. */
export const DEFAULT_SESSION_STREAM_OPEN_TIMEOUT_MS = 10_000;
const TAG_MESSAGE = 0;
const TAG_ERROR = 1;
const TAG_TOKEN = 2;

export class SessionStream {
  private readonly pending: {
    resolve: (b: Uint8Array) => void;
    reject: (e: unknown) => void;
    /**
     * performance.now() by which the answer must be whole: `requestTimeoutMs` after the send, or
     * after the answer before it came if that is later (the peer runs requests one at a time).
     */
    at: number;
  }[] = [];
  /**
   * Milliseconds each request may wait for its whole answer, from when it was sent or, when
   * pipelined behind others, from when the answer before it came, whichever is later (default
   * DEFAULT_SESSION_REQUEST_TIMEOUT_MS; openInferenceSession's `requestTimeoutMs`). When the oldest
   * request waits longer (the peer accepted and went silent, or dribbles its answer), it and every
   * request sent after it reject with E_TIMEOUT and the stream ends: their sequence numbers are
   * spent, so the session cannot go on.
   */
  get requestTimeoutMs(): number {
    return this._requestTimeoutMs;
  }
  /** @throws FirnError E_INVALID_INPUT unless an integer from 1 to 2^31 - 1 (what a timer holds). */
  set requestTimeoutMs(ms: number) {
    const bad = timerMsError('requestTimeoutMs', ms);
    if (bad) throw bad;
    this._requestTimeoutMs = ms;
  }
  private _requestTimeoutMs = DEFAULT_SESSION_REQUEST_TIMEOUT_MS;
  /**
   * Milliseconds the event loop is kept polling (not sleeping) for each answer, while it is due
   * (LoopPoller; decision 1800): the answer is then read on the next turn of the loop, without a
   * wake-up of this process. Polling starts at the send, or, once three answers were timed,
   * POLL_LEAD_MS before the shortest of the latest eight answer times (a long inference leaves the
   * core to others until then). 0 turns it off. Default DEFAULT_SESSION_POLL_MS.
   */
  get pollMs(): number {
    return this._pollMs;
  }
  /** @throws FirnError E_INVALID_INPUT unless an integer from 0 to MAX_SESSION_POLL_MS. */
  set pollMs(ms: number) {
    if (!Number.isInteger(ms) || ms < 0 || ms > MAX_SESSION_POLL_MS)
      throw new FirnError(
        'E_INVALID_INPUT',
        `pollMs must be an integer number of ms, 0 to ${MAX_SESSION_POLL_MS} (got ${String(ms).slice(0, 32)})`,
      );
    this._pollMs = ms;
    // Off means off now: a window still open ends too.
    if (ms === 0) this.poller.stop();
  }
  private _pollMs = DEFAULT_SESSION_POLL_MS;
  private readonly poller = new LoopPoller(() => this.pending.length > 0 && this.gone === undefined);
  /**
   * How long the latest answers took from the start of their turn (the send, or the answer before
   * them when pipelined), ms: polling for an answer starts POLL_LEAD_MS before the shortest of
   * them, so a long inference leaves this core to others until shortly before its answer is due.
   */
  private readonly answerTimes = new RecentDurations();
  /** performance.now() at which the oldest waiting request's turn began. */
  private turnFrom = 0;
  /** The one timer of the oldest request's deadline; re-armed lazily, unref'd, cleared on close. */
  private deadline: ReturnType<typeof setTimeout> | undefined;
  /** performance.now() at which `deadline` fires. */
  private deadlineAt = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  private gone: FirnError | undefined;
  /**
   * Answer buffers handed back by `reuse` (direct connections only), each its own ArrayBuffer:
   * a warm session's answers are mostly one size, so the next answer of that size is read into one
   * of these instead of fresh memory (decision 1420).
   */
  private readonly spare: Buffer[] = [];
  /** The memory of every answer this stream read (`reuse` takes back only these). */
  private readonly mine = new WeakSet<ArrayBufferLike>();

  private constructor(
    private readonly socket: Socket,
    private readonly maxResponseBytes: number,
    /** Frames come from a DirectFrameReader (the socket's `onread`), not from 'data' events. */
    private readonly direct = false,
  ) {
    socket.setNoDelay(true);
    if (!direct) socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('error', () => undefined);
    socket.on('close', () => this.fail(new FirnError('E_UNAVAILABLE', 'the session stream closed')));
  }

  /**
   * Open the stream of session `sessionId` at the node `endpoint` (http or https URL), with the
   * session's transport token from its open answer (`accessToken`). Rejects with
   * the node's typed refusal (e.g. E_NOT_FOUND), E_UNSUPPORTED when the node does not upgrade, or
   * E_TIMEOUT when it gives no answer within `timeoutMs`.
   */
  static open(
    endpoint: string,
    sessionId: Hex,
    maxResponseBytes = 8 * 1024 * 1024 + 1,
    accessToken?: string,
    timeoutMs = DEFAULT_SESSION_STREAM_OPEN_TIMEOUT_MS,
  ): Promise<SessionStream> {
    const badTimeout = timerMsError('timeoutMs', timeoutMs);
    if (badTimeout) return Promise.reject(badTimeout);
    const url = new URL(`/v1/sessions/${sessionId}/stream`, endpoint);
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: 'GET',
      headers: {
        connection: 'Upgrade',
        upgrade: SESSION_STREAM_PROTOCOL,
        ...(accessToken === undefined ? {} : { 'x-firn-session-token': accessToken }),
      },
    });
    return new Promise<SessionStream>((resolve, reject) => {
      // A node that takes the connection and never answers the upgrade: E_TIMEOUT, connection ended.
      const timer = setTimeout(() => {
        reject(
          new FirnError(
            'E_TIMEOUT',
            `the node did not answer the session stream upgrade within ${timeoutMs} ms`,
          ),
        );
        req.destroy();
      }, timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('upgrade', (res, socket, head) => {
        clearTimeout(timer);
        if (String(res.headers.upgrade ?? '').toLowerCase() !== SESSION_STREAM_PROTOCOL) {
          socket.destroy();
          reject(new FirnError('E_UNSUPPORTED', 'the node answered with another protocol'));
          return;
        }
        const s = new SessionStream(socket, maxResponseBytes);
        if (head.length > 0) s.onData(head);
        resolve(s);
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (text.length < 4096) text += d;
        });
        res.on('end', () => {
          let e: FirnError = new FirnError(
            'E_UNSUPPORTED',
            `the node does not offer session streams (${res.statusCode})`,
          );
          try {
            const o = JSON.parse(text) as {
              error?: { code?: string; message?: string };
              code?: string;
              message?: string;
            };
            const b = o.error ?? o;
            // The node's typed refusal only when it fits {code: E_…, message?: string} (decision 1560).
            if (
              typeof b.code === 'string' &&
              /^E_[A-Z0-9_]{1,48}$/.test(b.code) &&
              (b.message === undefined || (typeof b.message === 'string' && b.message.length <= 2000))
            )
              e = new FirnError(b.code as ErrorCode, b.message ?? '');
          } catch {}
          reject(e);
        });
      });
      req.on('error', (err) => reject(new FirnError('E_UNAVAILABLE', `session stream: ${err.message}`)));
      req.end();
    });
  }

  /**
   * Connect straight to a session's child (docs/decisions/1310-requester-connects-to-session-child.md):
   * TCP to `host`:`port` (the node's host name and the port of the open answer's `direct`), first
   * frame the open answer's 32-byte direct token (tag 2). The child answers a kept connection with
   * one empty tag-2 frame; the stream is resolved only then, so a connection the child refused
   * (another took the slot, the port is not reachable) rejects with E_UNAVAILABLE within
   * `timeoutMs` and the caller falls back to the node's relayed stream. Frames after it are those
   * of the relayed stream.
   */
  static connectDirect(
    host: string,
    port: number,
    token: Uint8Array,
    maxResponseBytes = 8 * 1024 * 1024 + 1,
    timeoutMs = 5_000,
  ): Promise<SessionStream> {
    const badTimeout = timerMsError('timeoutMs', timeoutMs);
    if (badTimeout) return Promise.reject(badTimeout);
    return new Promise<SessionStream>((resolve, reject) => {
      if (token.length !== 32 || !Number.isInteger(port) || port <= 0 || port > 65535) {
        reject(
          new FirnError('E_INVALID_INPUT', 'a direct session connection needs a port and a 32-byte token'),
        );
        return;
      }
      let settled = false;
      let stream: SessionStream | undefined;
      const refused = () =>
        give(new FirnError('E_UNAVAILABLE', 'the session runtime did not accept the direct connection'));
      // The kernel reads each frame straight into its own buffer (docs/decisions/1420): the first
      // frame must be the child's empty tag-2 acknowledgement, every later one goes to the stream.
      const reader = new DirectFrameReader(
        maxResponseBytes,
        (tag, body) => {
          if (stream !== undefined) {
            stream.deliver(tag, body);
            return;
          }
          if (tag !== TAG_TOKEN || body.length !== 0) {
            refused();
            return;
          }
          settled = true;
          clearTimeout(timer);
          stream = new SessionStream(socket, maxResponseBytes, true);
          resolve(stream);
        },
        (e) => (stream !== undefined ? stream.fail(e) : refused()),
        (n) => (stream !== undefined ? stream.answerBuffer(n) : Buffer.allocUnsafeSlow(n)),
      );
      const socket = connect({
        host: host.replace(/^\[|\]$/g, ''),
        port,
        noDelay: true,
        onread: {
          buffer: () => reader.nextBuffer(),
          callback: (n: number) => {
            reader.filled(n);
            return true;
          },
        },
      });
      const give = (e: FirnError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(e);
      };
      const timer = setTimeout(refused, timeoutMs);
      socket.on('connect', () => {
        const head = Buffer.allocUnsafe(5);
        head.writeUInt32BE(token.length + 1, 0);
        head[4] = TAG_TOKEN;
        socket.cork();
        socket.write(head);
        socket.write(token);
        socket.uncork();
      });
      socket.on('error', (err) =>
        give(new FirnError('E_UNAVAILABLE', `direct session connection: ${err.message}`)),
      );
      socket.on('close', refused);
    });
  }

  /** Send one sealed session request; resolves with its sealed response, in order. */
  send(message: Uint8Array): Promise<Uint8Array> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<Uint8Array>((resolve, reject) => {
      this.enqueue(resolve, reject);
      const head = Buffer.allocUnsafe(5);
      head.writeUInt32BE(message.length + 1, 0);
      head[4] = TAG_MESSAGE;
      // One writev now: header and message without a concat, and without waiting for a later tick.
      this.socket.cork();
      this.socket.write(head);
      this.socket.write(message);
      this.socket.uncork();
    });
  }

  /**
   * `send` of the message whose wire parts are `parts` (SessionEndpoint.sealParts): the frame
   * header and every part leave in one writev now, nothing gathered into one buffer.
   */
  sendParts(parts: readonly Uint8Array[]): Promise<Uint8Array> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<Uint8Array>((resolve, reject) => {
      this.enqueue(resolve, reject);
      let size = 1;
      for (const p of parts) size += p.length;
      const head = Buffer.allocUnsafe(5);
      head.writeUInt32BE(size, 0);
      head[4] = TAG_MESSAGE;
      this.socket.cork();
      this.socket.write(head);
      for (const p of parts) if (p.length > 0) this.socket.write(p);
      this.socket.uncork();
    });
  }

  close(): void {
    this.fail(new FirnError('E_UNAVAILABLE', 'the session stream was closed'));
  }

  /** A request waits for its answer from now, until `requestTimeoutMs` from now. */
  private enqueue(resolve: (b: Uint8Array) => void, reject: (e: unknown) => void): void {
    const now = performance.now();
    const opensTurn = this.pending.length === 0;
    this.pending.push({ resolve, reject, at: now + this._requestTimeoutMs });
    // A request sent behind others (pipelined) gets its window when the answer before it comes
    // (deliver): its turn has not begun, and a window per send would let a peer that stalls one
    // answer keep this core spinning for as long as the application keeps sending.
    if (opensTurn) {
      this.turnFrom = now;
      this.poller.pollFor(this.pollMs, pollDelayMs(this.answerTimes.shortest()));
    }
    // One timer for the whole queue, not one per request: when it fires it checks the oldest
    // request's own deadline and re-arms for it.
    this.ensureDeadline(this.pending[0]!.at);
  }

  /**
   * The queue's one deadline timer fires by `at` (performance.now()) at the latest: a timer armed
   * for later (before `requestTimeoutMs` was lowered) is re-armed, so every request's deadline is
   * looked at when it comes, whatever the timeout was when the timer was set.
   */
  private ensureDeadline(at: number): void {
    if (this.deadline !== undefined) {
      if (this.deadlineAt <= at) return;
      clearTimeout(this.deadline);
    }
    this.armDeadline(at - performance.now());
  }

  private armDeadline(ms: number): void {
    // Within what a timer holds: a longer delay would fire after 1 ms and re-arm without end.
    const delay = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(ms)));
    this.deadlineAt = performance.now() + delay;
    this.deadline = setTimeout(() => this.onDeadline(), delay);
    // It never keeps a process alive by itself (an idle stream's timer may still be pending).
    this.deadline.unref();
  }

  private onDeadline(): void {
    this.deadline = undefined;
    const oldest = this.pending[0];
    if (oldest === undefined || this.gone) return;
    const left = oldest.at - performance.now();
    if (left > 0) {
      this.armDeadline(left);
      return;
    }
    this.fail(
      new FirnError(
        'E_TIMEOUT',
        `the session gave no answer to a request within ${this.requestTimeoutMs} ms (openInferenceSession option requestTimeoutMs); that request and those sent after it failed and the session stream is closed`,
        { details: { timeoutMs: this.requestTimeoutMs } },
      ),
    );
  }

  /**
   * Hand back an answer this stream returned once its holder is done with it (opened and hashed:
   * it holds ciphertext only, and no view of it may be kept): a later answer of the same size is
   * read into its memory. Anything this stream did not allocate is left to the GC, and so are the
   * oldest spares beyond MAX_SPARE_ANSWERS or MAX_SPARE_ANSWER_BYTES in all.
   */
  reuse(answer: Uint8Array): void {
    if (
      !this.direct ||
      answer.byteLength > MAX_SPARE_ANSWER_BYTES ||
      !(answer instanceof Buffer) ||
      !this.mine.has(answer.buffer) ||
      answer.byteOffset !== 0 ||
      answer.byteLength !== answer.buffer.byteLength ||
      answer.byteLength === 0 ||
      this.spare.includes(answer)
    )
      return;
    this.spare.push(answer);
    // The most recent are kept: at most MAX_SPARE_ANSWERS, at most MAX_SPARE_ANSWER_BYTES in all.
    let bytes = 0;
    for (const b of this.spare) bytes += b.length;
    while (this.spare.length > MAX_SPARE_ANSWERS || bytes > MAX_SPARE_ANSWER_BYTES)
      bytes -= this.spare.shift()!.length;
  }

  /** A buffer of exactly `n` bytes for the next answer: a spare one of that size, or fresh memory. */
  private answerBuffer(n: number): Buffer {
    const i = this.spare.findIndex((b) => b.length === n);
    if (i < 0) {
      const fresh = Buffer.allocUnsafeSlow(n);
      this.mine.add(fresh.buffer);
      return fresh;
    }
    const [b] = this.spare.splice(i, 1);
    return b!;
  }

  /** Turns of the event loop this stream kept polling so far (`pollMs`; diagnostics and tests). */
  get pollTurns(): number {
    return this.poller.turns;
  }

  /** True once the stream ended (closed by either side, or failed). */
  get closed(): boolean {
    return this.gone !== undefined;
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size >= 4) {
      let buf = this.chunks[0]!;
      if (buf.length < 4) buf = this.flatten();
      const len = buf.readUInt32BE(0);
      if (len === 0 || len > this.maxResponseBytes) {
        this.fail(new FirnError('E_TOO_LARGE', 'session stream answer over the size limit'));
        return;
      }
      if (this.size < 4 + len) return;
      if (buf.length < 4 + len) buf = this.flatten();
      const tag = buf[4]!;
      const body = buf.subarray(5, 4 + len);
      const rest = buf.subarray(4 + len);
      this.chunks = rest.length > 0 ? [rest, ...this.chunks.slice(1)] : this.chunks.slice(1);
      this.size -= 4 + len;
      if (!this.deliver(tag, body)) return;
    }
  }

  /** One whole answer frame, to the oldest request waiting; false once the stream failed. */
  private deliver(tag: number, body: Uint8Array): boolean {
    if (this.gone) return false;
    const p = this.pending.shift();
    if (p === undefined) {
      this.fail(new FirnError('E_PARSE', 'a session stream answer nobody asked for'));
      return false;
    }
    // The session answers one request at a time: the next one's turn starts now, so an honest
    // peer that keeps answering a pipelined batch is not cut; a silent or dribbling one still is.
    const next = this.pending[0];
    const now = performance.now();
    if (tag === TAG_MESSAGE) this.answerTimes.add(now - this.turnFrom);
    if (next !== undefined) {
      next.at = Math.max(next.at, now + this.requestTimeoutMs);
      this.turnFrom = now;
      this.ensureDeadline(next.at);
    }
    // The window for this answer ends here; the next answer due (pipelined) gets its own.
    this.poller.stop();
    if (next !== undefined) this.poller.pollFor(this.pollMs, pollDelayMs(this.answerTimes.shortest()));
    if (tag === TAG_MESSAGE) p.resolve(body);
    else if (tag === TAG_ERROR) p.reject(refusalOf(body));
    else p.reject(new FirnError('E_PARSE', 'unknown session stream frame'));
    return true;
  }

  private flatten(): Buffer {
    const b = Buffer.concat(this.chunks);
    this.chunks = [b];
    return b;
  }

  private fail(e: FirnError): void {
    this.gone ??= e;
    clearTimeout(this.deadline);
    this.deadline = undefined;
    for (const p of this.pending.splice(0)) p.reject(this.gone);
    this.socket.destroy();
  }
}

/** E_INVALID_INPUT naming `name` unless `ms` is an integer from 1 to what a timer holds. */
function timerMsError(name: string, ms: number): FirnError | undefined {
  return Number.isInteger(ms) && ms >= 1 && ms <= MAX_TIMER_MS
    ? undefined
    : new FirnError(
        'E_INVALID_INPUT',
        `${name} must be an integer number of ms, 1 to ${MAX_TIMER_MS} (got ${String(ms).slice(0, 32)})`,
      );
}

/** The largest refusal frame parsed: {code, message} with the message cut at 500 characters. */
const MAX_REFUSAL_BYTES = 4096;

function refusalOf(body: Uint8Array): FirnError {
  // A larger frame is no refusal; parsing megabytes of nested JSON would take the heap.
  if (body.length > MAX_REFUSAL_BYTES) return new FirnError('E_PARSE', 'malformed session stream refusal');
  try {
    const o = JSON.parse(Buffer.from(body).toString('utf8')) as { code?: unknown; message?: unknown };
    if (typeof o.code === 'string' && /^E_[A-Z_]{1,40}$/.test(o.code))
      return new FirnError(o.code as ErrorCode, typeof o.message === 'string' ? o.message.slice(0, 500) : '');
  } catch {}
  return new FirnError('E_PARSE', 'malformed session stream refusal');
}

/**
 * Frames of a direct session connection read by the kernel straight into their own buffers
 * (the socket's `onread`; docs/decisions/1420-session-reads-into-frame-buffers.md): the 5-byte
 * header (`u32 BE length || u8 tag`) is read into a fixed scratch buffer, then the body into a
 * fresh buffer of exactly its size, so a 128 KiB answer is one or two `read` calls and one
 * allocation, never a list of 64 KiB chunks concatenated afterwards. The length is checked
 * against `maxFrameBytes` before anything is allocated: a length of 0 or over the cap is
 * E_TOO_LARGE and ends the connection (`onError`). Each body is handed to `onFrame` once whole,
 * owned by the receiver (never reused by the reader).
 */
export class DirectFrameReader {
  private readonly head = Buffer.alloc(5);
  private headFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private failed = false;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (tag: number, body: Buffer) => void,
    private readonly onError: (e: FirnError) => void,
    /** Memory for a body of `n` bytes (exactly n long); default fresh. */
    private readonly alloc: (n: number) => Buffer = (n) => Buffer.allocUnsafeSlow(n),
  ) {}

  /** Where the next read lands: the rest of the header, or the rest of the current body. */
  nextBuffer(): Buffer {
    return this.body !== undefined ? this.body.subarray(this.bodyFill) : this.head.subarray(this.headFill);
  }

  /** `n` bytes were read into the buffer `nextBuffer` gave last. */
  filled(n: number): void {
    if (this.failed) return;
    if (this.body !== undefined) {
      this.bodyFill += n;
      if (this.bodyFill === this.body.length) this.complete(this.body);
      return;
    }
    this.headFill += n;
    if (this.headFill < 5) return;
    const len = this.head.readUInt32BE(0);
    if (len === 0 || len > this.maxFrameBytes) {
      this.failed = true;
      this.onError(new FirnError('E_TOO_LARGE', 'session stream answer over the size limit'));
      return;
    }
    // The body is len - 1 bytes (the tag is the header's fifth byte); an empty body is whole now.
    if (len === 1) this.complete(Buffer.alloc(0));
    else {
      this.body = this.alloc(len - 1);
      this.bodyFill = 0;
    }
  }

  private complete(body: Buffer): void {
    const tag = this.head[4]!;
    this.body = undefined;
    this.bodyFill = 0;
    this.headFill = 0;
    this.onFrame(tag, body);
  }
}
