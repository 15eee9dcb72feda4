import { assertBytes, FirnError, type FirnErrorOptions, TAGS, taggedSha256, u32be, utf8 } from '@firn/core';
import type { ByteSource } from './ByteSource.ts';

/**
 * Byte layout of a sealed artifact header (docs/sealed-artifacts.md has the full table). Every
 * field is size-capped; anything out of range is E_ARTIFACT_FORMAT before any key is used.
 */

export const ARTIFACT_MAGIC = Uint8Array.from([0x46, 0x49, 0x52, 0x4e, 0x53, 0x41]); // "FIRNSA"
export const ARTIFACT_VERSION = 1;
/** Suite 1: HPKE X25519/HKDF-SHA256/AES-256-GCM key wrap, AES-256-GCM chunks. */
export const ARTIFACT_SUITE = 1;
export const MIN_CHUNK_SIZE = 4 * 1024;
export const MAX_CHUNK_SIZE = 4 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
export const MAX_RECIPIENTS = 16;
export const MAX_CONTENT_TYPE_BYTES = 128;
export const NONCE_PREFIX_BYTES = 7;
export const KEY_ID_BYTES = 32;
export const ENC_BYTES = 32;
export const WRAPPED_KEY_BYTES = 48; // 32-byte data key + 16-byte tag
export const RECIPIENT_BYTES = KEY_ID_BYTES + ENC_BYTES + WRAPPED_KEY_BYTES;
export const DATA_KEY_BYTES = 32;
export const CHUNK_TAG_BYTES = 16;
/** Offsets of the fixed part. */
export const FIXED_HEADER_BYTES = 54; // up to and including the content-type length byte
export const MAX_HEADER_BYTES =
  FIXED_HEADER_BYTES + MAX_CONTENT_TYPE_BYTES + 1 + MAX_RECIPIENTS * RECIPIENT_BYTES;

export interface ArtifactRecipient {
  /** taggedSha256(TAGS.kemKeyId, KEM public key): a lookup hint, not trusted. */
  keyId: Uint8Array;
  /** HPKE encapsulated key. */
  enc: Uint8Array;
  /** HPKE ciphertext of the 32-byte data key. */
  wrappedKey: Uint8Array;
}

export interface ArtifactHeader {
  version: number;
  suite: number;
  chunkSize: number;
  noncePrefix: Uint8Array;
  /** taggedSha256(TAGS.sealedArtifact, 'key', dataKey): commits the artifact to one key. */
  keyCommitment: Uint8Array;
  contentType: string;
  recipients: ArtifactRecipient[];
  /** The exact header bytes as read or written. */
  bytes: Uint8Array;
  /** Associated data of every chunk: taggedSha256(TAGS.sealedArtifact, 'header', bytes). */
  aad: Uint8Array;
}

export type ArtifactErrorCode =
  | 'E_ARTIFACT_FORMAT'
  | 'E_ARTIFACT_TRUNCATED'
  | 'E_ARTIFACT_REORDERED'
  | 'E_ARTIFACT_TAMPERED'
  | 'E_ARTIFACT_WRONG_KEY';

export class ArtifactError extends FirnError {
  override readonly name = 'ArtifactError';
  constructor(code: ArtifactErrorCode, message: string, options: FirnErrorOptions = {}) {
    super(code, message, options);
  }
}

const CONTENT_TYPE_RE = /^[\x21-\x7e][\x20-\x7e]*$/;

export function kemKeyId(kemPublicKey: Uint8Array): Uint8Array {
  return taggedSha256(TAGS.kemKeyId, assertBytes(kemPublicKey, 'KEM public key', 32));
}

export function keyCommitmentOf(dataKey: Uint8Array): Uint8Array {
  return taggedSha256(TAGS.sealedArtifact, utf8('key'), assertBytes(dataKey, 'data key', DATA_KEY_BYTES));
}

function headerAad(bytes: Uint8Array): Uint8Array {
  return taggedSha256(TAGS.sealedArtifact, utf8('header'), bytes);
}

/** Chunk nonce: prefix (7) || counter (4, big-endian) || last-chunk flag (1). */
export function chunkNonce(prefix: Uint8Array, counter: number, last: boolean): Uint8Array {
  const n = new Uint8Array(12);
  n.set(prefix, 0);
  n.set(u32be(counter), NONCE_PREFIX_BYTES);
  n[11] = last ? 1 : 0;
  return n;
}

export function checkContentType(contentType: string): Uint8Array {
  if (typeof contentType !== 'string' || !CONTENT_TYPE_RE.test(contentType))
    throw new ArtifactError('E_ARTIFACT_FORMAT', 'content type must be printable ASCII');
  const b = utf8(contentType);
  if (b.length > MAX_CONTENT_TYPE_BYTES)
    throw new ArtifactError('E_ARTIFACT_FORMAT', `content type over ${MAX_CONTENT_TYPE_BYTES} bytes`);
  return b;
}

export function checkChunkSize(chunkSize: number): number {
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE)
    throw new ArtifactError('E_ARTIFACT_FORMAT', `chunk size must be ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE}`);
  return chunkSize;
}

export function encodeArtifactHeader(
  h: Omit<ArtifactHeader, 'bytes' | 'aad' | 'version' | 'suite'>,
): ArtifactHeader {
  const ct = checkContentType(h.contentType);
  checkChunkSize(h.chunkSize);
  assertBytes(h.noncePrefix, 'nonce prefix', NONCE_PREFIX_BYTES);
  assertBytes(h.keyCommitment, 'key commitment', 32);
  if (h.recipients.length > MAX_RECIPIENTS)
    throw new ArtifactError('E_ARTIFACT_FORMAT', `at most ${MAX_RECIPIENTS} recipients`);
  const len = FIXED_HEADER_BYTES + ct.length + 1 + h.recipients.length * RECIPIENT_BYTES;
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  b.set(ARTIFACT_MAGIC, 0);
  b[6] = ARTIFACT_VERSION;
  b[7] = ARTIFACT_SUITE;
  dv.setUint16(8, len, false);
  dv.setUint32(10, h.chunkSize, false);
  b.set(h.noncePrefix, 14);
  b.set(h.keyCommitment, 21);
  b[53] = ct.length;
  b.set(ct, 54);
  let o = 54 + ct.length;
  b[o++] = h.recipients.length;
  for (const r of h.recipients) {
    b.set(assertBytes(r.keyId, 'key id', KEY_ID_BYTES), o);
    b.set(assertBytes(r.enc, 'enc', ENC_BYTES), o + KEY_ID_BYTES);
    b.set(assertBytes(r.wrappedKey, 'wrapped key', WRAPPED_KEY_BYTES), o + KEY_ID_BYTES + ENC_BYTES);
    o += RECIPIENT_BYTES;
  }
  return parseArtifactHeader(b);
}

function formatError(message: string, details?: Record<string, number>): ArtifactError {
  return new ArtifactError('E_ARTIFACT_FORMAT', message, details === undefined ? {} : { details });
}

/** Check the first 10 bytes and return the declared header length. */
function headerLengthOf(prefix: Uint8Array): number {
  for (let i = 0; i < ARTIFACT_MAGIC.length; i++)
    if (prefix[i] !== ARTIFACT_MAGIC[i]) throw formatError('not a sealed artifact (bad magic)');
  if (prefix[6] !== ARTIFACT_VERSION)
    throw formatError('unsupported artifact version', { version: prefix[6]! });
  if (prefix[7] !== ARTIFACT_SUITE) throw formatError('unsupported artifact suite', { suite: prefix[7]! });
  const len = (prefix[8]! << 8) | prefix[9]!;
  if (len < FIXED_HEADER_BYTES + 1 || len > MAX_HEADER_BYTES)
    throw formatError('header length out of range', { len });
  return len;
}

/** Parse exactly one header from the start of `bytes` (extra bytes after it are ignored). */
export function parseArtifactHeader(bytes: Uint8Array): ArtifactHeader {
  assertBytes(bytes, 'artifact');
  if (bytes.length < 10) {
    // Too short to hold the fixed prefix: a cut-off artifact if what is there matches the magic.
    for (let i = 0; i < Math.min(bytes.length, ARTIFACT_MAGIC.length); i++)
      if (bytes[i] !== ARTIFACT_MAGIC[i]) throw formatError('not a sealed artifact (bad magic)');
    if (bytes.length === 0) throw formatError('empty input is not a sealed artifact');
    throw new ArtifactError('E_ARTIFACT_TRUNCATED', 'artifact ends inside the header');
  }
  const len = headerLengthOf(bytes);
  if (bytes.length < len) throw new ArtifactError('E_ARTIFACT_TRUNCATED', 'artifact ends inside the header');
  const b = bytes.slice(0, len);
  const dv = new DataView(b.buffer);
  const chunkSize = dv.getUint32(10, false);
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) throw formatError('chunk size out of range');
  const ctLen = b[53]!;
  if (ctLen === 0 || ctLen > MAX_CONTENT_TYPE_BYTES) throw formatError('content type length out of range');
  if (54 + ctLen + 1 > len) throw formatError('header length inconsistent');
  const ctBytes = b.subarray(54, 54 + ctLen);
  const contentType = Buffer.from(ctBytes).toString('latin1');
  if (!CONTENT_TYPE_RE.test(contentType)) throw formatError('content type not printable ASCII');
  const count = b[54 + ctLen]!;
  if (count > MAX_RECIPIENTS) throw formatError('too many recipients', { count });
  if (len !== FIXED_HEADER_BYTES + ctLen + 1 + count * RECIPIENT_BYTES)
    throw formatError('header length inconsistent');
  const recipients: ArtifactRecipient[] = [];
  let o = 55 + ctLen;
  for (let i = 0; i < count; i++) {
    recipients.push({
      keyId: b.subarray(o, o + KEY_ID_BYTES),
      enc: b.subarray(o + KEY_ID_BYTES, o + KEY_ID_BYTES + ENC_BYTES),
      wrappedKey: b.subarray(o + KEY_ID_BYTES + ENC_BYTES, o + RECIPIENT_BYTES),
    });
    o += RECIPIENT_BYTES;
  }
  return {
    version: b[6]!,
    suite: b[7]!,
    chunkSize,
    noncePrefix: b.subarray(14, 21),
    keyCommitment: b.subarray(21, 53),
    contentType,
    recipients,
    bytes: b,
    aad: headerAad(b),
  };
}

/** Read exactly the header from a byte source, leaving the body unread. */
export async function readArtifactHeaderFrom(src: ByteSource): Promise<ArtifactHeader> {
  const prefix = await src.read(10);
  if (prefix.length < 10) return parseArtifactHeader(prefix);
  const len = headerLengthOf(prefix);
  const rest = await src.read(len - 10);
  const all = new Uint8Array(len - 10 + 10);
  all.set(prefix, 0);
  all.set(rest, 10);
  return parseArtifactHeader(all.subarray(0, 10 + rest.length));
}
