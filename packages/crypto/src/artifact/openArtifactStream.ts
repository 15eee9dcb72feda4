import { assertBytes, bytesEqual, concatBytes, FirnError, InvalidInputError } from '@firn/core';
import { hpkeOpen, kemPublicKeyOf } from '../hpke.ts';
import { ByteSource, type ByteStream } from './ByteSource.ts';
import { decryptBlock, decryptChunk, splitTag } from './chunkCipher.ts';
import {
  ArtifactError,
  type ArtifactHeader,
  CHUNK_TAG_BYTES,
  chunkNonce,
  DATA_KEY_BYTES,
  keyCommitmentOf,
  kemKeyId,
  parseArtifactHeader,
  readArtifactHeaderFrom,
} from './artifactHeader.ts';
import { ARTIFACT_KEY_WRAP_INFO } from './sealArtifactStream.ts';

/** How to open an artifact: as a recipient (KEM private key) or with the data key itself. */
export type ArtifactKey = { kemPrivateKey: Uint8Array } | { dataKey: Uint8Array };

/** On a failed chunk, how far either side of its position to look for where it came from. */
const REORDER_WINDOW = 16;

/**
 * Recover the data key from a header with a recipient's KEM private key. Proves the key was
 * wrapped to this KEM key and matches the header's key commitment; it does not authenticate the
 * rest of the header or the body (opening the chunks does that).
 */
export async function unwrapDataKey(header: ArtifactHeader, kemPrivateKey: Uint8Array): Promise<Uint8Array> {
  assertBytes(kemPrivateKey, 'KEM private key', 32);
  const myId = kemKeyId(kemPublicKeyOf(kemPrivateKey));
  // The key id is an untrusted hint: try matching entries first, then every other entry, so a
  // damaged id still ends as 'tampered' (the header hash check) rather than 'wrong key'.
  const entries = [...header.recipients].sort(
    (a, b) => Number(bytesEqual(b.keyId, myId)) - Number(bytesEqual(a.keyId, myId)),
  );
  let addressedToMe = false;
  for (const r of entries) {
    const mine = bytesEqual(r.keyId, myId);
    addressedToMe ||= mine;
    let key: Uint8Array;
    try {
      key = await hpkeOpen(kemPrivateKey, r.enc, r.wrappedKey, { info: ARTIFACT_KEY_WRAP_INFO });
    } catch (e) {
      if (e instanceof FirnError && e.code === 'E_DECRYPT') continue;
      throw e;
    }
    if (key.length !== DATA_KEY_BYTES || !bytesEqual(keyCommitmentOf(key), header.keyCommitment)) {
      // It opened, so it is addressed to us, but it is not the key the artifact commits to.
      key.fill(0);
      throw new ArtifactError('E_ARTIFACT_TAMPERED', 'wrapped data key does not match the key commitment');
    }
    return key;
  }
  if (addressedToMe)
    throw new ArtifactError('E_ARTIFACT_TAMPERED', 'recipient entry for this key does not open');
  throw new ArtifactError('E_ARTIFACT_WRONG_KEY', 'no recipient entry opens with this key');
}

async function dataKeyFor(header: ArtifactHeader, key: ArtifactKey): Promise<Uint8Array> {
  if (typeof key !== 'object' || key === null)
    throw new InvalidInputError('key must be { kemPrivateKey } or { dataKey }');
  if ('dataKey' in key) {
    const dk = assertBytes(key.dataKey, 'data key', DATA_KEY_BYTES);
    if (!bytesEqual(keyCommitmentOf(dk), header.keyCommitment))
      throw new ArtifactError(
        'E_ARTIFACT_WRONG_KEY',
        'data key is not the key this artifact was sealed with',
      );
    return dk.slice();
  }
  return unwrapDataKey(header, key.kemPrivateKey);
}

/** Whether a whole block authenticates under this nonce (for diagnosis; the plaintext is wiped). */
function opensWith(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, block: Uint8Array): boolean {
  const pt = decryptBlock(key, nonce, aad, block);
  if (pt === undefined) return false;
  for (const p of pt) p.fill(0);
  return true;
}

/** Explain a chunk that failed at its expected position: came from elsewhere, or altered. */
function diagnose(
  key: Uint8Array,
  header: ArtifactHeader,
  block: Uint8Array,
  counter: number,
): ArtifactError {
  const lo = Math.max(0, counter - REORDER_WINDOW);
  const hi = Math.min(2 ** 32 - 1, counter + REORDER_WINDOW);
  for (let j = lo; j <= hi; j++) {
    if (j === counter) continue;
    for (const last of [false, true]) {
      if (opensWith(key, chunkNonce(header.noncePrefix, j, last), header.aad, block))
        return new ArtifactError('E_ARTIFACT_REORDERED', 'chunk is out of order', {
          details: { position: counter, sealedAt: j },
        });
    }
  }
  return new ArtifactError('E_ARTIFACT_TAMPERED', 'chunk failed authentication', {
    details: { position: counter },
  });
}

/**
 * Open a sealed artifact stream, yielding plaintext as pieces (at most CIPHER_SLICE, 256 KiB, each;
 * every one new and the caller's to keep), a chunk's pieces only after that chunk's tag verified.
 * Proves every byte yielded was sealed under this header, in this order, and (at the end) that
 * nothing was cut off; it does not prove who sealed it (any holder of a recipient key or of the
 * data key can seal), and a consumer that acts on early chunks before the stream ends must accept
 * that a later error can still come. Raises ArtifactError: E_ARTIFACT_FORMAT (header),
 * E_ARTIFACT_WRONG_KEY, E_ARTIFACT_TAMPERED, E_ARTIFACT_REORDERED, E_ARTIFACT_TRUNCATED.
 */
export async function* openArtifactStream(source: ByteStream, key: ArtifactKey): AsyncIterable<Uint8Array> {
  const src = new ByteSource(source);
  let dataKey: Uint8Array | undefined;
  try {
    const header = await readArtifactHeaderFrom(src);
    dataKey = await dataKeyFor(header, key);
    const blockSize = header.chunkSize + CHUNK_TAG_BYTES;
    for (let counter = 0; ; counter++) {
      // The chunk as the source's own pieces (no copy into a block-sized buffer; decision 1260).
      const pieces = await src.readPieces(blockSize);
      let n = 0;
      for (const p of pieces) n += p.length;
      if (n === 0)
        throw new ArtifactError('E_ARTIFACT_TRUNCATED', 'artifact ends before its last chunk', {
          details: { chunks: counter },
        });
      const atEnd = n < blockSize || (await src.atEnd());
      if (n >= CHUNK_TAG_BYTES) {
        const { ct, tag } = splitTag(pieces, n);
        const pt = decryptChunk(dataKey, chunkNonce(header.noncePrefix, counter, atEnd), header.aad, ct, tag);
        if (pt !== undefined) {
          yield* pt;
          if (atEnd) return;
          continue;
        }
      }
      // Failed: explain it from the whole block (a rare path, so the copy does not matter).
      const block = pieces.length === 1 ? pieces[0]! : concatBytes(...pieces);
      // The same position with the other last-flag tells a cut at a chunk boundary (a non-last
      // chunk at the end) from a final chunk followed by extra bytes.
      if (opensWith(dataKey, chunkNonce(header.noncePrefix, counter, !atEnd), header.aad, block)) {
        if (atEnd)
          throw new ArtifactError('E_ARTIFACT_TRUNCATED', 'artifact ends before its last chunk', {
            details: { chunks: counter + 1 },
          });
        throw new ArtifactError('E_ARTIFACT_TAMPERED', 'bytes follow the last chunk', {
          details: { position: counter },
        });
      }
      if (block.length < CHUNK_TAG_BYTES)
        throw new ArtifactError('E_ARTIFACT_TRUNCATED', 'artifact ends inside a chunk', {
          details: { position: counter },
        });
      throw diagnose(dataKey, header, block, counter);
    }
  } finally {
    dataKey?.fill(0);
    await src.close();
  }
}

/** Plaintext bytes of a well-formed sealed artifact, from its length; undefined if it cannot be one. */
function plaintextSize(bytes: Uint8Array): number | undefined {
  let h: ArtifactHeader;
  try {
    h = parseArtifactHeader(bytes);
  } catch {
    return undefined; // openArtifactStream raises the precise error
  }
  const body = bytes.length - h.bytes.length;
  const block = h.chunkSize + CHUNK_TAG_BYTES;
  const chunks = Math.ceil(body / block);
  const size = body - chunks * CHUNK_TAG_BYTES;
  return chunks >= 1 && size >= 0 && body - (chunks - 1) * block >= CHUNK_TAG_BYTES ? size : undefined;
}

/**
 * Open a sealed artifact held in memory (convenience over openArtifactStream). Each verified
 * piece is copied into the result as it comes (the size follows from the artifact's length), so
 * nothing is held twice; on failure the partial result is wiped. Raises as openArtifactStream.
 */
export async function openArtifact(bytes: Uint8Array, key: ArtifactKey): Promise<Uint8Array> {
  assertBytes(bytes, 'artifact');
  async function* one() {
    yield bytes;
  }
  const size = plaintextSize(bytes);
  const out = size === undefined ? undefined : new Uint8Array(size);
  const parts: Uint8Array[] = [];
  let o = 0;
  try {
    for await (const p of openArtifactStream(one(), key)) {
      if (out === undefined) parts.push(p);
      else {
        if (o + p.length > out.length)
          throw new FirnError('E_INTERNAL', 'artifact opened longer than its size');
        out.set(p, o);
      }
      o += p.length;
    }
  } catch (e) {
    out?.fill(0);
    throw e;
  }
  if (out === undefined) return concatBytes(...parts);
  if (o !== out.length) throw new FirnError('E_INTERNAL', 'artifact opened shorter than its size');
  return out;
}
