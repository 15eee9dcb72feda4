import { type CipherGCM, createCipheriv, createDecipheriv, type DecipherGCM } from 'node:crypto';
import {
  assertBytes,
  bytesToHex,
  encodeFields,
  type Hex,
  hexBytes,
  sha256,
  TAGS,
  taggedSha256,
  u64be,
  utf8,
} from '@firn/core';
import { AES_GCM_TAG_BYTES } from './aesGcm.ts';
import { CHANNEL_HEADER_BYTES, CHANNEL_VERSION, ChannelError } from './channel.ts';
import { hkdfSha256 } from './hkdf.ts';

/**
 * The warm inference session channel (docs/decisions/0602-inference-sessions.md). The requester
 * puts a fresh 32-byte session secret inside the HPKE-sealed open request; the enclave answers
 * with a fresh 32-byte salt in clear. Both derive one AES-256-GCM key per direction with HKDF
 * (secret, salt, tag || sessionId), and every message uses the channel wire form with its
 * sequence number as the nonce. The enclave's fresh salt makes the keys unique per open even if
 * the host replays the open request, so a counter nonce is never reused under one key.
 */

/** The job kind a session is posted under on chain (it enters the workload hash). */
export const SESSION_KIND = 'inference-session';
/** Payload formats inside a session request (first plaintext byte): binary tensors or tensor JSON. */
export const SESSION_FORMAT = { binary: 1, json: 2 } as const;
/** First plaintext byte of a response: ok (then the format byte and the outputs) or error (then JSON {code, message}). */
export const SESSION_STATUS = { ok: 0, error: 1 } as const;
export const SESSION_SECRET_BYTES = 32;
export const SESSION_SALT_BYTES = 32;
/** Cap on one serialised session message (request or response). */
export const MAX_SESSION_MESSAGE_BYTES = 8 * 1024 * 1024;
/**
 * Every session plaintext is padded inside the AEAD to at least this many bytes
 * (docs/decisions/1735-session-messages-padded.md): the close, small answers and every error
 * answer whose text fits in it have one sealed length.
 */
export const SESSION_MIN_PADDED_BYTES = 512;
/** The largest plaintext body one session message can carry (its padding needs at least one byte). */
export const MAX_SESSION_BODY_BYTES =
  MAX_SESSION_MESSAGE_BYTES - CHANNEL_HEADER_BYTES - AES_GCM_TAG_BYTES - 1;

/**
 * The padded plaintext length of a session message whose body is `bodyLength` bytes and whose
 * sender asks for at least `padTo` bytes: max(bodyLength + 1, SESSION_MIN_PADDED_BYTES, padTo),
 * capped at what one message carries. The padding is ISO/IEC 7816-4 (0x80 then zeros), inside the
 * AEAD (docs/decisions/1735-session-messages-padded.md).
 */
export function sessionPaddedLength(bodyLength: number, padTo = 0): number {
  const most = MAX_SESSION_BODY_BYTES + 1;
  return Math.min(Math.max(bodyLength + 1, SESSION_MIN_PADDED_BYTES, padTo), most);
}

/** 0x80 then zeros: padding up to this long is a view of it (the cipher only reads it). */
const PAD = new Uint8Array(64 * 1024);
PAD[0] = 0x80;
const padding = (n: number): Uint8Array => {
  if (n <= PAD.length) return PAD.subarray(0, n);
  const p = new Uint8Array(n);
  p[0] = 0x80;
  return p;
};

/**
 * The body length of a padded session plaintext (ISO/IEC 7816-4: the last non-zero byte is 0x80),
 * or -1 when the padding is malformed. Reads only the padding, from the end.
 */
function unpaddedLength(pt: Uint8Array): number {
  let i = pt.length - 1;
  while (i >= 0 && pt[i] === 0) i--;
  return i >= 0 && pt[i] === 0x80 ? i : -1;
}

/** HPKE info of a session's open request: binds the session tag and the jobId. */
export function sessionChannelInfo(jobId: Hex): Uint8Array {
  return encodeFields([utf8(TAGS.sessionOpen), hexBytes(jobId, 'jobId', 32)]);
}

export interface SessionKeys {
  request: Uint8Array;
  response: Uint8Array;
}

/** Derive the two directional keys of a session. */
export function deriveSessionKeys(secret: Uint8Array, salt: Uint8Array, sessionId: Hex): SessionKeys {
  assertBytes(secret, 'session secret', SESSION_SECRET_BYTES);
  assertBytes(salt, 'session salt', SESSION_SALT_BYTES);
  const id = hexBytes(sessionId, 'sessionId', 32);
  return {
    request: hkdfSha256(secret, salt, encodeFields([utf8(TAGS.sessionRequest), id]), 32),
    response: hkdfSha256(secret, salt, encodeFields([utf8(TAGS.sessionResponse), id]), 32),
  };
}

const nonceOf = (seq: bigint) => {
  const n = new Uint8Array(12);
  n.set(u64be(seq), 4);
  return n;
};
const aadOf = (kind: 'request' | 'response', id: Uint8Array, seq: bigint) =>
  encodeFields([utf8(kind === 'request' ? TAGS.sessionRequest : TAGS.sessionResponse), id, u64be(seq)]);

/** Session message kinds on the wire (distinct from the job channel's kinds). */
const SESSION_KIND_CODE = { request: 0x11, response: 0x12 } as const;

/**
 * Wire form of a session message: version (1) || kind (1) || seq (8, big-endian) ||
 * ciphertext-with-tag. Returns the header filled and `sealedLength` bytes left for the ciphertext.
 */
function encodeSessionMessage(kind: 'request' | 'response', seq: bigint, sealedLength: number): Uint8Array {
  const out = new Uint8Array(CHANNEL_HEADER_BYTES + sealedLength);
  out[0] = CHANNEL_VERSION;
  out[1] = SESSION_KIND_CODE[kind];
  out.set(u64be(seq), 2);
  return out;
}

function decodeSessionMessage(b: Uint8Array): {
  kind: 'request' | 'response';
  seq: bigint;
  ciphertext: Uint8Array;
} {
  assertBytes(b, 'session message');
  if (b.length < CHANNEL_HEADER_BYTES + 16) throw new ChannelError('E_PARSE', 'session message too short');
  if (b[0] !== CHANNEL_VERSION) throw new ChannelError('E_PARSE', 'unsupported session message version');
  const kind =
    b[1] === SESSION_KIND_CODE.request
      ? 'request'
      : b[1] === SESSION_KIND_CODE.response
        ? 'response'
        : undefined;
  if (kind === undefined) throw new ChannelError('E_PARSE', 'not a session message');
  const seq = new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(2, false);
  return { kind, seq, ciphertext: b.subarray(CHANNEL_HEADER_BYTES) };
}

/** Bytes of a session message a relay needs to read its clear header (header and tag). */
export const SESSION_MESSAGE_MIN_BYTES = CHANNEL_HEADER_BYTES + 16;

/**
 * The clear header of a session message (version, kind, sequence number), read without any key:
 * a relay (the node's host) uses it to refuse a message that is not the session's next request
 * before queueing it for the enclave. `b` may be just the message's first
 * SESSION_MESSAGE_MIN_BYTES bytes. It authenticates nothing (the enclave still opens the
 * message). Throws ChannelError E_PARSE when `b` is not a session message.
 */
export function sessionMessageHeader(b: Uint8Array): { kind: 'request' | 'response'; seq: bigint } {
  const { kind, seq } = decodeSessionMessage(b);
  return { kind, seq };
}

/** One end of a session: seals its own direction and opens the other, strictly in order. */
export interface SessionEndpoint {
  readonly sessionId: Hex;
  /** Sequence number the next sealed message gets. */
  readonly sent: bigint;
  /** Sequence number the next opened message must carry. */
  readonly received: bigint;
  /**
   * Seal `plaintext` as the next message, padded inside the AEAD to `sessionPaddedLength(length,
   * padTo)` (docs/decisions/1735-session-messages-padded.md). Throws E_PARSE over
   * MAX_SESSION_BODY_BYTES.
   */
  seal(plaintext: Uint8Array, padTo?: number): Uint8Array;
  /**
   * `seal` of the concatenation of `parts`, returned as the wire form's consecutive parts (the
   * 10-byte header, the ciphertext of each non-empty part, the 16-byte tag): the same bytes as
   * `seal(concat(parts))` under the same sequence number, with neither the plaintext nor the
   * ciphertext gathered into one buffer. For a sender that writes the parts with one writev
   * (docs/decisions/1360-session-hot-path-without-copies.md). Throws like `seal`.
   */
  sealParts(parts: readonly Uint8Array[], padTo?: number): Uint8Array[];
  /**
   * Throws E_CHANNEL_SEQUENCE (replayed, reordered or dropped) or E_DECRYPT (altered); the sequence
   * number is not consumed then. With `accept`, a message that opens but whose plaintext `accept`
   * refuses throws E_PARSE and does not consume its sequence number either: a caller that takes only
   * one kind of message (a close) never swallows a request, which would shift every later answer by
   * one. With `ahead`, a message whose sequence number is past the next one is opened too (and moves
   * the next one past it): only for a close, whose sender sealed it after requests that never
   * arrived (dropped on the way); no answer follows it, so none can shift.
   * A message that does not authenticate ends the endpoint's receiving side (`ended`): every later
   * `openReading`, and `open` without `accept`, throws E_DECRYPT before any decryption, so whoever
   * forges messages gets one try, not a stream of probes
   * (docs/decisions/1715-authenticate-before-parsing.md). `open` with `accept` (the requester's
   * close) still opens: its plaintext is only compared once it authenticates, and the requester
   * can then still end the session and get its proof. The plaintext returned is the body, without
   * its padding; malformed padding on a message that authenticates is treated as a forgery
   * (E_DECRYPT, the receiving side ends; docs/decisions/1735-session-messages-padded.md).
   * A close (`open` with `accept`) that does not authenticate, or whose padding is malformed, is
   * refused E_DECRYPT and changes nothing: it neither ends the receiving side nor uses or drops
   * the context `prepare` made for the next request, which the requester's next message still
   * gets (docs/decisions/1773-close-auth-never-ends-a-session.md).
   */
  open(message: Uint8Array, accept?: (plaintext: Uint8Array) => boolean, ahead?: boolean): Uint8Array;
  /**
   * `open` for a reader that decodes the plaintext (docs/decisions/1715-authenticate-before-parsing.md):
   * the whole message is decrypted into one fresh buffer and its tag checked FIRST; only an
   * authentic message reaches `read`, which then takes consecutive pieces with `take(n)`: views of
   * that buffer, which nothing else references (a decoder may make its typed arrays over them, no
   * copy, where they are aligned). A message that does not authenticate throws E_DECRYPT, its
   * plaintext is zeroed, `read` never runs (no work, and so no time, depends on unauthenticated
   * plaintext), the sequence number is not consumed and the endpoint's receiving side ends (as
   * `open`). Sequence checks and errors as `open` (E_PARSE, E_CHANNEL_SEQUENCE, nothing consumed).
   * Once it authenticates the sequence number is consumed and the result is `{ok: true, value}`, or
   * `{ok: false, error}` with what `read` threw (a request that opened but whose payload is
   * malformed: it is answered, with an error). The reader sees the body only: its padding is
   * checked after the tag and before `read` runs, and malformed padding is a forgery as above
   * (docs/decisions/1735-session-messages-padded.md).
   */
  openReading<T>(message: Uint8Array, read: (plaintext: SessionPlaintextReader) => T): OpenedReading<T>;
  /**
   * Set up, ahead of its message, the AES-256-GCM context of the next message this end seals
   * (sequence number `sent`) and of the next one it opens (`received`): key, nonce and AAD depend
   * only on the session's keys and id and the sequence number, so both can be made before the
   * message exists. Call it where the end would otherwise wait (a requester after writing a
   * request, the enclave after writing an answer): the next `seal`/`sealParts`, and the next
   * `open`/`openReading`, of exactly those numbers then start at their first byte instead of
   * building a context on the latency path with caches the model run left cold (decision 1772).
   * Each prepared context serves one message, of its own number, and is dropped once taken (used
   * or not); nothing is sealed or opened here, and results are byte-identical with or without it.
   * Idempotent; no decryption context is prepared once the receiving side has ended.
   */
  prepare(): void;
  /**
   * True once a message failed to authenticate: the endpoint opens no more requests or responses
   * (E_DECRYPT), only a close (`open` with `accept`); the session must be closed and a new one
   * opened. Sealing is unaffected. A close that fails to authenticate does not set it (decision 1773).
   */
  readonly ended: boolean;
}

/** The authenticated plaintext of a session message, read in consecutive pieces (`openReading`). */
export interface SessionPlaintextReader {
  /** Plaintext bytes not taken yet. */
  readonly left: number;
  /** The next `n` plaintext bytes: a view of the message's own plaintext buffer (E_PARSE past the end). */
  take(n: number): Uint8Array;
  /** Always true: the pieces are views of a buffer that holds this plaintext alone, referenced by nothing else. */
  readonly fresh: true;
}

/** What `openReading` returns for an authenticated message: the reader's value, or what it threw. */
export type OpenedReading<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Create the requester's ('requester') or the enclave's ('enclave') end of a session. */
export function createSessionEndpoint(
  side: 'requester' | 'enclave',
  keys: SessionKeys,
  sessionId: Hex,
): SessionEndpoint {
  const id = hexBytes(sessionId, 'sessionId', 32);
  const out = side === 'requester' ? 'request' : 'response';
  const inn = side === 'requester' ? 'response' : 'request';
  const sendKey = Uint8Array.from(keys[out]);
  const recvKey = Uint8Array.from(keys[inn]);
  let sent = 0n;
  let received = 0n;
  let ended = false;
  // The contexts `prepare` made for the next sealed and the next opened message (decision 1772).
  let nextCipher: { seq: bigint; c: CipherGCM } | undefined;
  let nextDecipher: { seq: bigint; d: DecipherGCM } | undefined;
  const newCipher = (seq: bigint): CipherGCM => {
    const c = createCipheriv('aes-256-gcm', sendKey, nonceOf(seq), { authTagLength: AES_GCM_TAG_BYTES });
    c.setAAD(aadOf(out, id, seq));
    return c;
  };
  const newDecipher = (seq: bigint): DecipherGCM => {
    const d = createDecipheriv('aes-256-gcm', recvKey, nonceOf(seq), { authTagLength: AES_GCM_TAG_BYTES });
    d.setAAD(aadOf(inn, id, seq));
    return d;
  };
  /** The context for sealing `seq`: the prepared one when it is for `seq`; a prepared one is taken either way. */
  const cipherFor = (seq: bigint): CipherGCM => {
    const p = nextCipher;
    nextCipher = undefined;
    return p !== undefined && p.seq === seq ? p.c : newCipher(seq);
  };
  /** The context for opening `seq`: the prepared one when it is for `seq` (then taken), else a new one. */
  const decipherFor = (seq: bigint): DecipherGCM => {
    const p = nextDecipher;
    if (p === undefined || p.seq !== seq) return newDecipher(seq);
    nextDecipher = undefined;
    return p.d;
  };
  /**
   * The refusal of a message that does not authenticate. A request's (or a response's) ends the
   * receiving side with it; a close's (`closing`) changes nothing: a close comes by a route anyone
   * may reach with any bytes, and one that does not authenticate must not end the session for its
   * requester (decision 1773).
   */
  const forged = (plaintext: Uint8Array, closing = false): ChannelError => {
    // The unauthenticated plaintext is dropped, never returned.
    plaintext.fill(0);
    if (!closing) ended = true;
    return new ChannelError('E_DECRYPT', 'decryption failed');
  };
  /**
   * Checks an inbound `message` before any decryption (an ended endpoint, unless `closing`:
   * E_DECRYPT; size cap and decoding: E_PARSE; kind and sequence number: E_CHANNEL_SEQUENCE, a
   * later number only when `ahead`) and returns it with its
   * ciphertext length (tag excluded) and a decipher keyed, tagged and bound to its AAD. A close
   * (`closing`) always gets a context of its own: the one `prepare` made for the next number is
   * left for the requester's next request, whatever the close turns out to be (decision 1773).
   */
  const inbound = (message: Uint8Array, ahead: boolean, closing = false) => {
    if (ended && !closing)
      throw new ChannelError(
        'E_DECRYPT',
        'the session ended: an earlier message did not authenticate; close it and open a new session',
      );
    if (message.length > MAX_SESSION_MESSAGE_BYTES)
      throw new ChannelError('E_PARSE', 'session message too large');
    const m = decodeSessionMessage(message);
    if (m.kind !== inn)
      throw new ChannelError('E_CHANNEL_SEQUENCE', `expected a ${inn} message, got ${m.kind}`);
    if (m.seq !== received && !(ahead && m.seq > received))
      throw new ChannelError(
        'E_CHANNEL_SEQUENCE',
        m.seq < received ? 'replayed session message' : 'session message out of order',
        { details: { expected: received.toString(), got: m.seq.toString() } },
      );
    const ctLen = m.ciphertext.length - AES_GCM_TAG_BYTES;
    // Keyed, with its nonce and AAD, for this sequence number only (GCM takes the tag before final()).
    const d = closing ? newDecipher(m.seq) : decipherFor(m.seq);
    d.setAuthTag(m.ciphertext.subarray(ctLen));
    return { m, ctLen, d };
  };
  return {
    sessionId: bytesToHex(id),
    get sent() {
      return sent;
    },
    get received() {
      return received;
    },
    get ended() {
      return ended;
    },
    seal(plaintext, padTo) {
      assertBytes(plaintext, 'plaintext');
      if (plaintext.length > MAX_SESSION_BODY_BYTES)
        throw new ChannelError('E_PARSE', 'session message too large');
      const seq = sent;
      const padded = sessionPaddedLength(plaintext.length, padTo);
      // AES-256-GCM straight into the wire form: one pass over the plaintext and its padding, one copy.
      const c = cipherFor(seq);
      const message = encodeSessionMessage(out, seq, padded + AES_GCM_TAG_BYTES);
      let at = CHANNEL_HEADER_BYTES;
      for (const p of [plaintext, padding(padded - plaintext.length)]) {
        const ct = c.update(p);
        message.set(ct, at);
        at += ct.length;
      }
      const tail = c.final();
      message.set(tail, at);
      message.set(c.getAuthTag(), CHANNEL_HEADER_BYTES + padded);
      sent++;
      return message;
    },
    sealParts(parts, padTo) {
      let size = 0;
      for (const p of parts) size += assertBytes(p, 'plaintext').length;
      if (size > MAX_SESSION_BODY_BYTES) throw new ChannelError('E_PARSE', 'session message too large');
      const seq = sent;
      const c = cipherFor(seq);
      const wire: Uint8Array[] = [encodeSessionMessage(out, seq, 0)];
      for (const p of parts) if (p.length > 0) wire.push(c.update(p));
      // The padding is sealed as one more part: the parts themselves are not copied.
      wire.push(c.update(padding(sessionPaddedLength(size, padTo) - size)));
      const tail = c.final();
      if (tail.length > 0) wire.push(tail);
      wire.push(c.getAuthTag());
      sent++;
      return wire;
    },
    prepare() {
      if (nextCipher?.seq !== sent) nextCipher = { seq: sent, c: newCipher(sent) };
      if (!ended && nextDecipher?.seq !== received)
        nextDecipher = { seq: received, d: newDecipher(received) };
    },
    openReading(message, read) {
      const { m, ctLen, d } = inbound(message, false);
      // Decrypted whole into one fresh buffer and authenticated before `read` sees a byte of it:
      // nothing data-dependent runs on plaintext the sender did not seal (decision 1715).
      const head = d.update(m.ciphertext.subarray(0, ctLen));
      try {
        // GCM's final() yields no bytes; it checks the tag.
        d.final();
      } catch {
        throw forged(head);
      }
      // The padding, checked once the tag is: malformed padding under a valid tag is a forgery.
      const bodyLen = unpaddedLength(head);
      if (bodyLen < 0) throw forged(head);
      received = m.seq + 1n;
      // A plain Uint8Array over the buffer's own memory (Buffer's slice() would not copy).
      const pt = new Uint8Array(head.buffer, head.byteOffset, bodyLen);
      let at = 0;
      const reader: SessionPlaintextReader = {
        get left() {
          return bodyLen - at;
        },
        take(n) {
          if (!Number.isInteger(n) || n < 0 || n > bodyLen - at)
            throw new ChannelError('E_PARSE', 'read past the end of the session message');
          at += n;
          return pt.subarray(at - n, at);
        },
        fresh: true,
      };
      try {
        return { ok: true, value: read(reader) };
      } catch (error) {
        return { ok: false, error };
      }
    },
    open(message, accept, ahead) {
      const closing = accept !== undefined;
      const { m, ctLen, d } = inbound(message, ahead === true && closing, closing);
      const head = d.update(m.ciphertext.subarray(0, ctLen));
      let tail: Buffer;
      try {
        tail = d.final();
      } catch {
        throw forged(head, closing);
      }
      // GCM's final() yields no bytes: the plaintext is `head` itself, not copied again.
      // A plain Uint8Array view (Buffer's slice() would not copy, which decoders must not meet).
      const pt = tail.length === 0 ? head : Buffer.concat([head, tail]);
      const bodyLen = unpaddedLength(pt);
      if (bodyLen < 0) throw forged(pt, closing);
      const out = new Uint8Array(pt.buffer, pt.byteOffset, bodyLen);
      if (accept !== undefined && !accept(out)) {
        out.fill(0);
        throw new ChannelError('E_PARSE', 'not the expected session message');
      }
      received = m.seq + 1n;
      return out;
    },
  };
}

/**
 * The session transcript both ends keep: running hashes over the SHA-256 of every request and
 * every response message (ciphertext, as it crossed the host). Its commitment is the session's
 * Work Proof outputCommitment, so the requester can check the proof covers exactly the exchange
 * it saw.
 */
const REQUEST_LABEL = utf8('request');
const RESPONSE_LABEL = utf8('response');

export class SessionTranscript {
  private requests: Uint8Array = new Uint8Array(32);
  private responses: Uint8Array = new Uint8Array(32);
  count = 0n;

  add(request: Uint8Array, response: Uint8Array): void {
    this.addDigests(sha256(request), sha256(response));
  }

  /**
   * `add` with the SHA-256 of the request and response messages (32 bytes each) computed by the
   * caller, e.g. the request's while it is in flight, so the hashing stays off a request's
   * latency path. Throws E_INVALID_INPUT on wrong sizes.
   */
  addDigests(requestDigest: Uint8Array, responseDigest: Uint8Array): void {
    assertBytes(requestDigest, 'request digest', 32);
    assertBytes(responseDigest, 'response digest', 32);
    this.requests = taggedSha256(TAGS.sessionTranscript, REQUEST_LABEL, this.requests, requestDigest);
    this.responses = taggedSha256(TAGS.sessionTranscript, RESPONSE_LABEL, this.responses, responseDigest);
    this.count++;
  }

  /** taggedSha256(sessionTranscript, "commit", sessionId, salt, count, requestsHash, responsesHash). */
  commitment(sessionId: Hex, salt: Uint8Array): Hex {
    return sessionTranscriptCommitment(sessionId, salt, this.opening());
  }

  /**
   * The transcript's running hashes and count: with the session id and salt, the preimage of
   * `commitment` (what a node publishes so verifiers can tell a session's outputCommitment from a
   * batch job's; it reveals the request count and hashes of ciphertexts the host relayed, nothing else).
   */
  opening(): SessionTranscriptOpening {
    return { count: this.count, requestsHash: this.requests, responsesHash: this.responses };
  }
}

/** The preimage parts of a session transcript commitment besides the session id and salt. */
export interface SessionTranscriptOpening {
  count: bigint;
  /** 32 bytes. */
  requestsHash: Uint8Array;
  /** 32 bytes. */
  responsesHash: Uint8Array;
}

/**
 * taggedSha256(sessionTranscript, "commit", sessionId, salt, u64be(count), requestsHash,
 * responsesHash): a session's Work Proof outputCommitment. Throws E_INVALID_INPUT on wrong sizes.
 */
export function sessionTranscriptCommitment(
  sessionId: Hex,
  salt: Uint8Array,
  o: SessionTranscriptOpening,
): Hex {
  return bytesToHex(
    taggedSha256(
      TAGS.sessionTranscript,
      utf8('commit'),
      hexBytes(sessionId, 'sessionId', 32),
      assertBytes(salt, 'session salt', SESSION_SALT_BYTES),
      u64be(o.count),
      assertBytes(o.requestsHash, 'requestsHash', 32),
      assertBytes(o.responsesHash, 'responsesHash', 32),
    ),
  );
}
