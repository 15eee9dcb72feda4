import { randomBytes, randomFillSync } from 'node:crypto';
import { assertBytes, FirnError, InvalidInputError, TAGS, utf8 } from '@firn/core';
import { hpkeSeal } from '../hpke.ts';
import { assertKemRecipientKeys } from '../x25519.ts';
import { ByteSource, type ByteStream } from './ByteSource.ts';
import { encryptChunk } from './chunkCipher.ts';
import {
  type ArtifactRecipient,
  checkChunkSize,
  CHUNK_TAG_BYTES,
  checkContentType,
  chunkNonce,
  DATA_KEY_BYTES,
  DEFAULT_CHUNK_SIZE,
  encodeArtifactHeader,
  keyCommitmentOf,
  kemKeyId,
  MAX_RECIPIENTS,
  NONCE_PREFIX_BYTES,
} from './artifactHeader.ts';

export interface SealArtifactOptions {
  /** X25519 KEM public keys (32 bytes each) that may open the artifact; at most 16. */
  recipients: readonly Uint8Array[];
  /** Printable ASCII, at most 128 bytes (e.g. 'application/onnx'). */
  contentType: string;
  /** Plaintext bytes per chunk, 4 KiB..4 MiB; default 1 MiB. */
  chunkSize?: number;
  /** A caller-held data key (32 bytes); random when absent. Needed when there are no recipients. */
  dataKey?: Uint8Array;
  /**
   * A data key already wrapped to exactly `recipients` (`prepareArtifactKey`), used instead of a
   * fresh one; exclusive with `dataKey`. It serves one artifact: it is zeroed here and refused
   * (E_ARTIFACT_FORMAT) if given again.
   */
  prepared?: PreparedArtifactKey;
}

/**
 * A fresh random data key and its HPKE wraps to a recipient list, made before the bytes to seal
 * exist (the wraps depend only on the key and the recipients), for one `sealArtifact` call.
 * The artifact sealed with it is the one sealing would make with a key drawn at that moment.
 */
export interface PreparedArtifactKey {
  /** The recipients' KEM public keys, copied. */
  readonly recipients: readonly Uint8Array[];
  /** @internal the data key (zeroed once used) and its wraps, in `recipients` order. */
  readonly dataKey: Uint8Array;
  readonly wrapped: readonly ArtifactRecipient[];
  /** True once an artifact was sealed with it (or it was discarded). */
  used: boolean;
}

/**
 * Draw a data key and wrap it to `recipients` (X25519 KEM public keys, 1..16) now, to seal one
 * artifact later (`sealArtifact(bytes, {recipients, contentType, prepared})`): the HPKE work of
 * sealing moves ahead of the bytes, e.g. while a workload runs. Raises InvalidInputError for a
 * bad recipient list, naming the index of a recipient key that is not 32 bytes or is a low-order
 * X25519 point (refused before any key is drawn), and what HPKE raises otherwise.
 */
export async function prepareArtifactKey(recipients: readonly Uint8Array[]): Promise<PreparedArtifactKey> {
  if (!Array.isArray(recipients) || recipients.length === 0 || recipients.length > MAX_RECIPIENTS)
    throw new InvalidInputError(`a prepared data key needs 1..${MAX_RECIPIENTS} recipients`);
  const copies = recipients.map((pk) => assertBytes(pk, 'KEM public key').slice());
  // A low-order or malformed recipient is refused before a key is drawn (RFC 9180 §7.1.4).
  assertKemRecipientKeys(copies);
  const dataKey = freshDataKey();
  try {
    return { recipients: copies, dataKey, wrapped: await wrapFor(copies, dataKey), used: false };
  } catch (e) {
    // A recipient HPKE refuses (e.g. a low-order point): the key drawn for it is zeroed too.
    dataKey.fill(0);
    throw e;
  }
}

/** Zero a prepared data key that will not be used. */
export function discardArtifactKey(prepared: PreparedArtifactKey): void {
  prepared.dataKey.fill(0);
  prepared.used = true;
  spentPreparedKeys.add(prepared.dataKey);
}

/**
 * The data-key buffers of prepared keys already taken or discarded. `used` is a plain field a
 * caller can reset (or lose in a copy of the object); the key buffer is zeroed by then, and a
 * second artifact would be sealed under 32 zero bytes, readable by anyone.
 */
const spentPreparedKeys = new WeakSet<Uint8Array>();

/** The prepared key's wraps when it was made for exactly `recipients` and is unused, else an error. */
function takePrepared(prepared: PreparedArtifactKey, recipients: readonly Uint8Array[]): ArtifactRecipient[] {
  if (
    prepared.used ||
    !(prepared.dataKey instanceof Uint8Array) ||
    spentPreparedKeys.has(prepared.dataKey) ||
    prepared.dataKey.every((b) => b === 0)
  )
    throw new FirnError('E_ARTIFACT_FORMAT', 'a prepared data key serves one artifact');
  const sameKeys =
    prepared.recipients.length === recipients.length &&
    prepared.recipients.every((pk, i) => Buffer.from(pk).equals(Buffer.from(recipients[i]!)));
  if (!sameKeys) throw new InvalidInputError('the prepared data key was wrapped to other recipients');
  prepared.used = true;
  spentPreparedKeys.add(prepared.dataKey);
  return [...prepared.wrapped];
}

const MAX_CHUNKS = 2 ** 32; // the counter is 4 bytes

/** HPKE info of every data-key wrap; the key commitment binds the wrapped key to the header. */
export const ARTIFACT_KEY_WRAP_INFO = utf8(TAGS.artifactKeyWrap);

async function wrapFor(recipients: readonly Uint8Array[], dataKey: Uint8Array): Promise<ArtifactRecipient[]> {
  const out: ArtifactRecipient[] = [];
  for (const pk of recipients) {
    const { enc, ciphertext } = await hpkeSeal(pk, dataKey, { info: ARTIFACT_KEY_WRAP_INFO });
    out.push({ keyId: kemKeyId(pk), enc, wrappedKey: ciphertext });
  }
  return out;
}

/**
 * Seal a byte stream into the sealed-artifact format (docs/sealed-artifacts.md). Yields the
 * header first, then the body as pieces of at most CIPHER_SLICE (256 KiB) + 16 bytes, a chunk's
 * tag joined to the end of its ciphertext; concatenated they are the sealed bytes. Each yielded buffer is new and the caller's to keep.
 * Memory stays at about one chunk (plus what the consumer holds) whatever the input size. Raises
 * InvalidInputError / ArtifactError('E_ARTIFACT_FORMAT') for bad options, and whatever the source
 * raises; bytes already yielded before an error are not a valid artifact.
 */
export function sealArtifactStream(
  source: ByteStream,
  opts: SealArtifactOptions,
): AsyncIterableIterator<Uint8Array> {
  // A consumer that stops (return(), as `for await` break and a destroyed Readable.from do, or
  // throw()) while a next() still waits on a stalled source: a generator runs its finally only
  // once that next() settles, maybe never. The key is zeroed here at once, and the generator
  // ends without using it again.
  const state: SealState = { stopped: false };
  const gen = sealChunks(source, opts, state);
  const stop = () => {
    state.stopped = true;
    state.key?.fill(0);
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next: () => gen.next(),
    return: (value?: unknown) => {
      stop();
      return gen.return(value as undefined);
    },
    throw: (e?: unknown) => {
      stop();
      return gen.throw(e);
    },
  };
}

interface SealState {
  stopped: boolean;
  key?: Uint8Array;
}

async function* sealChunks(
  source: ByteStream,
  opts: SealArtifactOptions,
  state: SealState,
): AsyncGenerator<Uint8Array, void, undefined> {
  const chunkSize = checkChunkSize(opts.chunkSize ?? DEFAULT_CHUNK_SIZE);
  checkContentType(opts.contentType);
  if (!Array.isArray(opts.recipients))
    throw new InvalidInputError('recipients must be a list of KEM public keys');
  if (opts.recipients.length > MAX_RECIPIENTS)
    throw new InvalidInputError(`at most ${MAX_RECIPIENTS} recipients`);
  if (opts.recipients.length === 0 && opts.dataKey === undefined)
    throw new InvalidInputError('an artifact with no recipients needs a caller-held dataKey');
  if (opts.prepared !== undefined && opts.dataKey !== undefined)
    throw new InvalidInputError('give a dataKey or a prepared data key, not both');
  // Every recipient is checked before a key is drawn or a prepared one is taken (RFC 9180 §7.1.4).
  assertKemRecipientKeys(opts.recipients);
  const preWrapped = opts.prepared === undefined ? undefined : takePrepared(opts.prepared, opts.recipients);
  // From the moment a key exists, every way out (a recipient HPKE refuses, a header error, a
  // source or a consumer that throws, a consumer that stops early) goes through the finally
  // below, which zeroes it.
  let dataKey: Uint8Array | undefined;
  let src: ByteSource | undefined;
  try {
    dataKey =
      opts.prepared !== undefined
        ? opts.prepared.dataKey.slice()
        : opts.dataKey === undefined
          ? freshDataKey()
          : assertBytes(opts.dataKey, 'data key', DATA_KEY_BYTES).slice();
    state.key = dataKey;
    opts.prepared?.dataKey.fill(0);
    const header = encodeArtifactHeader({
      chunkSize,
      // A fresh random prefix per artifact: with a caller-supplied data key reused across artifacts,
      // nonces still differ (7 random bytes; reuse of one data key should stay rare regardless).
      noncePrefix: new Uint8Array(randomBytes(NONCE_PREFIX_BYTES)),
      keyCommitment: keyCommitmentOf(dataKey),
      contentType: opts.contentType,
      recipients: preWrapped ?? (await wrapFor(opts.recipients, dataKey)),
    });
    src = new ByteSource(source);
    if (state.stopped) return;
    yield header.bytes;
    for (let counter = 0; ; counter++) {
      if (counter >= MAX_CHUNKS)
        throw new InvalidInputError('artifact has too many chunks for its chunk size');
      // The chunk as the source's own pieces: no copy into a chunk-sized buffer (decision 1260).
      const pt = await src.readPieces(chunkSize);
      let n = 0;
      for (const p of pt) n += p.length;
      // The last chunk is the first one short of chunkSize, or a full one the stream ends after.
      const last = n < chunkSize || (await src.atEnd());
      if (state.stopped) return;
      // Ciphertext slices (the last joined with the tag), handed on as they are, each its own buffer.
      yield* encryptChunk(dataKey, chunkNonce(header.noncePrefix, counter, last), header.aad, pt);
      if (last) break;
    }
  } finally {
    dataKey?.fill(0);
    opts.prepared?.dataKey.fill(0);
    await src?.close();
  }
}

/** 32 random bytes drawn straight into the key's own buffer (no other copy is left to zero). */
function freshDataKey(): Uint8Array {
  return randomFillSync(new Uint8Array(DATA_KEY_BYTES));
}

/**
 * Seal a buffer in one call (convenience over sealArtifactStream). The sealed size is known up
 * front (header + plaintext + 16 bytes per chunk), so each piece is copied into the result as it
 * comes, while still in cache, and nothing is held twice. Raises as sealArtifactStream.
 */
export async function sealArtifact(bytes: Uint8Array, opts: SealArtifactOptions): Promise<Uint8Array> {
  assertBytes(bytes, 'plaintext');
  async function* one() {
    yield bytes;
  }
  const chunkSize = opts?.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const chunks = Math.max(1, Math.ceil(bytes.length / chunkSize));
  let out: Uint8Array | undefined;
  let o = 0;
  for await (const p of sealArtifactStream(one(), opts)) {
    // The first piece is the header.
    out ??= new Uint8Array(p.length + bytes.length + chunks * CHUNK_TAG_BYTES);
    if (o + p.length > out.length) throw new FirnError('E_INTERNAL', 'sealed artifact longer than its size');
    out.set(p, o);
    o += p.length;
  }
  if (out === undefined || o !== out.length)
    throw new FirnError('E_INTERNAL', 'sealed artifact shorter than its size');
  return out;
}
