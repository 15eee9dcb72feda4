import { randomBytes } from 'node:crypto';
import { assertBytes, concatBytes, InvalidInputError, TAGS, utf8 } from '@firn/core';
import { hpkeSeal } from '../hpke.ts';
import { ByteSource, type ByteStream } from './ByteSource.ts';
import { chunkKey, encryptChunk, PIPELINE_DEPTH } from './chunkCipher.ts';
import {
  type ArtifactRecipient,
  checkChunkSize,
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
 * Seal a byte stream into the sealed-artifact format, yielding the header first and then one
 * encrypted chunk at a time, so memory stays at about one chunk whatever the input size.
 */
export async function* sealArtifactStream(
  source: ByteStream,
  opts: SealArtifactOptions,
): AsyncIterable<Uint8Array> {
  const chunkSize = checkChunkSize(opts.chunkSize ?? DEFAULT_CHUNK_SIZE);
  checkContentType(opts.contentType);
  if (!Array.isArray(opts.recipients))
    throw new InvalidInputError('recipients must be a list of KEM public keys');
  if (opts.recipients.length > MAX_RECIPIENTS)
    throw new InvalidInputError(`at most ${MAX_RECIPIENTS} recipients`);
  if (opts.recipients.length === 0 && opts.dataKey === undefined)
    throw new InvalidInputError('an artifact with no recipients needs a caller-held dataKey');
  const dataKey =
    opts.dataKey === undefined
      ? new Uint8Array(randomBytes(DATA_KEY_BYTES))
      : assertBytes(opts.dataKey, 'data key', DATA_KEY_BYTES).slice();
  const header = encodeArtifactHeader({
    chunkSize,
    // A fresh random prefix per artifact: with a caller-supplied data key reused across artifacts,
    // nonces still differ (7 random bytes; reuse of one data key should stay rare regardless).
    noncePrefix: new Uint8Array(randomBytes(NONCE_PREFIX_BYTES)),
    keyCommitment: keyCommitmentOf(dataKey),
    contentType: opts.contentType,
    recipients: await wrapFor(opts.recipients, dataKey),
  });
  const src = new ByteSource(source);
  // Up to PIPELINE_DEPTH chunks are encrypted at once (thread pool) while the next are read;
  // they are yielded in order, so memory stays at a few chunks whatever the input size.
  const inFlight: (Promise<Uint8Array> | Uint8Array)[] = [];
  try {
    const key = await chunkKey(dataKey, 'encrypt');
    yield header.bytes;
    for (let counter = 0; ; counter++) {
      if (counter >= MAX_CHUNKS)
        throw new InvalidInputError('artifact has too many chunks for its chunk size');
      const pt = await src.read(chunkSize);
      // The last chunk is the first one short of chunkSize, or a full one the stream ends after.
      const last = pt.length < chunkSize || (await src.atEnd());
      inFlight.push(encryptChunk(key, chunkNonce(header.noncePrefix, counter, last), header.aad, pt));
      if (last) break;
      if (inFlight.length >= PIPELINE_DEPTH) yield await inFlight.shift()!;
    }
    while (inFlight.length > 0) yield await inFlight.shift()!;
  } finally {
    // Chunks still in flight (the consumer stopped early or the source failed) are dropped;
    // their promises never reject unhandled.
    for (const p of inFlight) if (p instanceof Promise) p.catch(() => {});
    dataKey.fill(0);
    await src.close();
  }
}

/** Seal a buffer in one call (convenience over sealArtifactStream). */
export async function sealArtifact(bytes: Uint8Array, opts: SealArtifactOptions): Promise<Uint8Array> {
  assertBytes(bytes, 'plaintext');
  async function* one() {
    yield bytes;
  }
  const parts: Uint8Array[] = [];
  for await (const p of sealArtifactStream(one(), opts)) parts.push(p);
  return concatBytes(...parts);
}
