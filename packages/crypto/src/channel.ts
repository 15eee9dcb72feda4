import { randomBytes } from 'node:crypto';
import {
  assertBytes,
  bytesEqual,
  bytesToHex,
  concatBytes,
  encodeFields,
  FirnError,
  type FirnErrorOptions,
  hexToBytes,
  InvalidInputError,
  bitPad,
  bitPaddedBodyLength,
  paddedLength,
  TAGS,
  u64be,
  utf8,
} from '@firn/core';
import { aesGcmDecrypt, aesGcmEncrypt } from './aesGcm.ts';
import { hkdfSha256 } from './hkdf.ts';
import {
  createRecipientContext,
  createSenderContext,
  type HpkeRecipientContext,
  type HpkeSenderContext,
} from './hpke.ts';

/**
 * The attested channel (ARCHITECTURE §4): requests go requester -> enclave through one HPKE
 * context; responses and progress events come back under AES-256-GCM keys exported from it, one
 * key per stream. Every message carries its 64-bit sequence number in clear, in the nonce and in
 * the associated data; a receiver takes only the next number it expects.
 *
 * Every plaintext (request, response, event) is padded inside the AEAD
 * (docs/decisions/1850-job-channel-messages-padded.md): `body || 0x80 || 0x00…` (ISO/IEC 7816-4)
 * up to the Padmé length of max(len + 1, CHANNEL_MIN_PADDED_BYTES), so the host that relays a job's
 * request, its progress events, its failure and its summary learns a size bucket, never the
 * length of what the plaintext says. A receiver checks the tag first, then the padding; a message
 * whose padding is malformed under a valid tag is E_DECRYPT like a forgery.
 */

export const CHANNEL_VERSION = 1;
export const CHANNEL_HEADER_BYTES = 10;
/** Cap on one serialised channel message; bulk data travels as sealed artifacts. */
export const MAX_CHANNEL_MESSAGE_BYTES = 16 * 1024 * 1024;

export type ChannelMessageKind = 'request' | 'response' | 'event';
const KIND_CODE: Record<ChannelMessageKind, number> = { request: 1, response: 2, event: 3 };
const KIND_TAG = {
  request: TAGS.channelRequest,
  response: TAGS.channelResponse,
  event: TAGS.channelEvent,
} as const;

/** A decoded channel message; `ciphertext` includes the 16-byte tag. */
export interface ChannelMessage {
  kind: ChannelMessageKind;
  seq: bigint;
  /** Responses and events: the enclave's salt for this channel acceptance (16 bytes). */
  salt?: Uint8Array;
  ciphertext: Uint8Array;
}

export const CHANNEL_SALT_BYTES = 16;

/**
 * Every channel plaintext is padded to at least this many bytes (decision 1850): a job's failure
 * (its message cut to fit), its progress events and summary of ordinary size, and its request
 * all have one sealed length per kind.
 */
export const CHANNEL_MIN_PADDED_BYTES = 2048;
/** Largest request body: the HPKE ciphertext with its tag and the padding's 0x80 fit the cap. */
export const MAX_CHANNEL_REQUEST_BODY_BYTES = MAX_CHANNEL_MESSAGE_BYTES - CHANNEL_HEADER_BYTES - 16 - 1;
/** Largest response or event body (they carry the enclave's salt too). */
export const MAX_CHANNEL_STREAM_BODY_BYTES =
  MAX_CHANNEL_MESSAGE_BYTES - CHANNEL_HEADER_BYTES - CHANNEL_SALT_BYTES - 16 - 1;

/**
 * The padded plaintext length of a channel message whose body is `bodyLength` bytes: the Padmé
 * length of max(bodyLength + 1, CHANNEL_MIN_PADDED_BYTES), capped at `most` + 1 (what one message
 * carries for a body of at most `most` bytes).
 */
export function channelPaddedLength(bodyLength: number, most = MAX_CHANNEL_STREAM_BODY_BYTES): number {
  return Math.min(paddedLength(bodyLength, CHANNEL_MIN_PADDED_BYTES), most + 1);
}

/** `pt || 0x80 || zeros` up to channelPaddedLength; InvalidInputError over `most` bytes. */
function padChannelPlaintext(pt: Uint8Array, most: number): Uint8Array {
  assertBytes(pt, 'plaintext');
  if (pt.length > most) throw new InvalidInputError('plaintext too large for one channel message');
  return bitPad(pt, channelPaddedLength(pt.length, most));
}

/**
 * The body of a padded plaintext that authenticated (the last non-zero byte must be 0x80). A
 * malformed padding under a valid tag only a key holder can make: it is E_DECRYPT, as a forgery,
 * and the plaintext is zeroed.
 */
function unpadChannelPlaintext(pt: Uint8Array): Uint8Array {
  const n = bitPaddedBodyLength(pt);
  if (n < 0) {
    pt.fill(0);
    throw new ChannelError('E_DECRYPT', 'decryption failed');
  }
  return pt.subarray(0, n);
}

export class ChannelError extends FirnError {
  override readonly name = 'ChannelError';
  constructor(
    code: 'E_CHANNEL_SEQUENCE' | 'E_DECRYPT' | 'E_PARSE',
    message: string,
    options: FirnErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/**
 * Wire form: version (1) || kind (1) || seq (8, big-endian) || [salt (16), responses and events
 * only] || ciphertext-with-tag.
 */
export function encodeChannelMessage(m: ChannelMessage): Uint8Array {
  const head = concatBytes(Uint8Array.of(CHANNEL_VERSION, KIND_CODE[m.kind]), u64be(m.seq));
  if (m.kind === 'request') return concatBytes(head, m.ciphertext);
  if (m.salt?.length !== CHANNEL_SALT_BYTES)
    throw new InvalidInputError('responses and events carry a 16-byte salt');
  return concatBytes(head, m.salt, m.ciphertext);
}

/** Parse a channel message from bytes, base64 or 0x-hex; size-capped, checks structure only. */
export function decodeChannelMessage(input: Uint8Array | string): ChannelMessage {
  let b: Uint8Array;
  if (typeof input === 'string') {
    if (input.length > ((MAX_CHANNEL_MESSAGE_BYTES + 2) / 3) * 4 + 4)
      throw new ChannelError('E_PARSE', 'channel message too large');
    b = input.startsWith('0x') ? hexToBytes(input, 'channel message') : fromBase64(input);
  } else b = assertBytes(input, 'channel message');
  if (b.length > MAX_CHANNEL_MESSAGE_BYTES) throw new ChannelError('E_PARSE', 'channel message too large');
  if (b.length < CHANNEL_HEADER_BYTES + 16) throw new ChannelError('E_PARSE', 'channel message too short');
  if (b[0] !== CHANNEL_VERSION) throw new ChannelError('E_PARSE', 'unsupported channel message version');
  const kind = (Object.keys(KIND_CODE) as ChannelMessageKind[]).find((k) => KIND_CODE[k] === b[1]);
  if (kind === undefined) throw new ChannelError('E_PARSE', 'unknown channel message kind');
  const seq = new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(2, false);
  if (kind === 'request') return { kind, seq, ciphertext: b.subarray(CHANNEL_HEADER_BYTES) };
  if (b.length < CHANNEL_HEADER_BYTES + CHANNEL_SALT_BYTES + 16)
    throw new ChannelError('E_PARSE', 'channel message too short');
  return {
    kind,
    seq,
    salt: b.subarray(CHANNEL_HEADER_BYTES, CHANNEL_HEADER_BYTES + CHANNEL_SALT_BYTES),
    ciphertext: b.subarray(CHANNEL_HEADER_BYTES + CHANNEL_SALT_BYTES),
  };
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
function fromBase64(s: string): Uint8Array {
  if (!B64_RE.test(s) || s.length % 4 !== 0)
    throw new ChannelError('E_PARSE', 'channel message is not base64');
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Base64 text of a serialised message, for JSON transport. */
export function channelMessageToBase64(message: Uint8Array): string {
  return Buffer.from(assertBytes(message, 'channel message')).toString('base64');
}

/** 0x-hex text of a serialised message. */
export function channelMessageToHex(message: Uint8Array): string {
  return bytesToHex(message);
}

function channelInfo(info: Uint8Array | undefined): Uint8Array {
  // The caller's info (e.g. the attestation nonce and job id) is bound under the channel tag.
  return encodeFields([
    utf8(TAGS.channel),
    info === undefined ? new Uint8Array(0) : assertBytes(info, 'info'),
  ]);
}

function aadFor(kind: ChannelMessageKind, seq: bigint, aad: Uint8Array | undefined): Uint8Array {
  return encodeFields([
    Uint8Array.of(CHANNEL_VERSION, KIND_CODE[kind]),
    u64be(seq),
    aad === undefined ? new Uint8Array(0) : assertBytes(aad, 'aad'),
  ]);
}

function streamNonce(seq: bigint): Uint8Array {
  // Each stream key is used by one channel acceptance only, so a counter is a unique nonce under it.
  return concatBytes(new Uint8Array(4), u64be(seq));
}

/**
 * A stream key: the HPKE export for the stream, salted by the enclave. The salt is fresh for each
 * acceptance, so a host that replays the same request (same enc) to the enclave gets answers under
 * a new key, never a second plaintext under a used key and nonce.
 */
async function exportedStreamSecret(
  ctx: HpkeSenderContext | HpkeRecipientContext,
  kind: 'response' | 'event',
) {
  return ctx.export(utf8(KIND_TAG[kind]), 32);
}

function streamKey(secret: Uint8Array, salt: Uint8Array, kind: 'response' | 'event'): Uint8Array {
  return hkdfSha256(secret, salt, utf8(KIND_TAG[kind]), 32);
}

function expectNext(m: ChannelMessage, kind: ChannelMessageKind, expected: bigint): void {
  if (m.kind !== kind)
    throw new ChannelError('E_CHANNEL_SEQUENCE', `expected a ${kind} message, got ${m.kind}`);
  if (m.seq !== expected)
    throw new ChannelError(
      'E_CHANNEL_SEQUENCE',
      m.seq < expected ? 'replayed message' : 'message missing before this one',
      {
        details: { expected: expected.toString(), got: m.seq.toString() },
      },
    );
}

/** A serial queue so that sequence numbers follow call order even across awaits. */
function serial() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(f: () => Promise<T>): Promise<T> => {
    const run = tail.then(f, f);
    tail = run.catch(() => undefined);
    return run;
  };
}

export interface ChannelOptions {
  /** Context bound into the HPKE key schedule (both sides must pass the same bytes). */
  info?: Uint8Array;
}

/** The requester's end of a channel. */
export interface RequesterChannel {
  /** HPKE encapsulated key: send it with the first request. */
  readonly enc: Uint8Array;
  sealRequest(plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array>;
  openResponse(message: Uint8Array | string, aad?: Uint8Array): Promise<Uint8Array>;
  openEvent(message: Uint8Array | string, aad?: Uint8Array): Promise<Uint8Array>;
}

/** The enclave's end of a channel. */
export interface EnclaveChannel {
  openRequest(message: Uint8Array | string, aad?: Uint8Array): Promise<Uint8Array>;
  sealResponse(plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
  sealEvent(plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
}

function sealStream(
  key: Uint8Array,
  salt: Uint8Array,
  kind: 'response' | 'event',
  seq: bigint,
  pt: Uint8Array,
  aad?: Uint8Array,
) {
  const padded = padChannelPlaintext(pt, MAX_CHANNEL_STREAM_BODY_BYTES);
  const ct = aesGcmEncrypt(key, streamNonce(seq), padded, aadFor(kind, seq, aad));
  padded.fill(0);
  return encodeChannelMessage({ kind, seq, salt, ciphertext: ct });
}

function openStream(key: Uint8Array, m: ChannelMessage, aad?: Uint8Array): Uint8Array {
  let pt: Uint8Array;
  try {
    pt = aesGcmDecrypt(key, streamNonce(m.seq), m.ciphertext, aadFor(m.kind, m.seq, aad));
  } catch (e) {
    if (e instanceof FirnError && e.code === 'E_DECRYPT')
      throw new ChannelError('E_DECRYPT', 'decryption failed');
    throw e;
  }
  return unpadChannelPlaintext(pt);
}

/**
 * Open a channel to an enclave's KEM public key. Use only a key that the caller has just verified
 * in fresh attestation evidence: the channel proves confidentiality to that key, not who holds it.
 */
export async function openChannel(
  enclaveKemPublicKey: Uint8Array,
  opts: ChannelOptions = {},
): Promise<RequesterChannel> {
  const ctx = await createSenderContext(enclaveKemPublicKey, { info: channelInfo(opts.info) });
  const secrets = {
    response: await exportedStreamSecret(ctx, 'response'),
    event: await exportedStreamSecret(ctx, 'event'),
  };
  const keys: {
    response?: { salt: Uint8Array; key: Uint8Array };
    event?: { salt: Uint8Array; key: Uint8Array };
  } = {};
  const next = { request: 0n, response: 0n, event: 0n };
  const queue = serial();
  const receive = (kind: 'response' | 'event') => async (message: Uint8Array | string, aad?: Uint8Array) => {
    const m = decodeChannelMessage(message);
    expectNext(m, kind, next[kind]);
    const salt = m.salt!;
    const fixed = keys[kind];
    if (fixed !== undefined && !bytesEqual(fixed.salt, salt))
      throw new ChannelError('E_CHANNEL_SEQUENCE', 'message from another acceptance of this channel');
    // The first message that authenticates fixes the enclave's salt for the stream.
    const k = fixed ?? { salt: new Uint8Array(salt), key: streamKey(secrets[kind], salt, kind) };
    const pt = openStream(k.key, m, aad);
    keys[kind] = k;
    next[kind]++;
    return pt;
  };
  return {
    enc: ctx.enc,
    sealRequest: (plaintext, aad) =>
      queue(async () => {
        const seq = next.request;
        const padded = padChannelPlaintext(plaintext, MAX_CHANNEL_REQUEST_BODY_BYTES);
        const ct = await ctx.seal(padded, aadFor('request', seq, aad));
        padded.fill(0);
        next.request++;
        return encodeChannelMessage({ kind: 'request', seq, ciphertext: ct });
      }),
    openResponse: receive('response'),
    openEvent: receive('event'),
  };
}

/**
 * Accept a channel inside the enclave from the requester's enc. Opening a request proves it was
 * sealed to this KEM key in this channel, in order and unaltered; it does not identify the
 * requester (HPKE base mode), so authorisation is the job layer's concern.
 */
export async function acceptChannel(
  kemPrivateKey: Uint8Array,
  enc: Uint8Array,
  opts: ChannelOptions = {},
): Promise<EnclaveChannel> {
  const ctx = await createRecipientContext(kemPrivateKey, enc, { info: channelInfo(opts.info) });
  const salt = new Uint8Array(randomBytes(CHANNEL_SALT_BYTES));
  const keys = {
    response: streamKey(await exportedStreamSecret(ctx, 'response'), salt, 'response'),
    event: streamKey(await exportedStreamSecret(ctx, 'event'), salt, 'event'),
  };
  const next = { request: 0n, response: 0n, event: 0n };
  const queue = serial();
  const send = (kind: 'response' | 'event') => (plaintext: Uint8Array, aad?: Uint8Array) => {
    const seq = next[kind];
    const out = sealStream(keys[kind], salt, kind, seq, plaintext, aad);
    next[kind]++;
    return out;
  };
  return {
    openRequest: (message, aad) =>
      queue(async () => {
        const m = decodeChannelMessage(message);
        expectNext(m, 'request', next.request);
        let pt: Uint8Array;
        try {
          pt = await ctx.open(m.ciphertext, aadFor('request', m.seq, aad));
        } catch {
          throw new ChannelError('E_DECRYPT', 'decryption failed');
        }
        // A malformed padding is a forgery: no sequence number is taken (the HPKE context's has
        // moved on, so this channel opens no further request).
        const body = unpadChannelPlaintext(pt);
        next.request++;
        return body;
      }),
    sealResponse: send('response'),
    sealEvent: send('event'),
  };
}
