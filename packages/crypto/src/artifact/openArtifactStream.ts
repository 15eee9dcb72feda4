import { assertBytes, bytesEqual, concatBytes, FirnError, InvalidInputError } from '@firn/core';
import { hpkeOpen, kemPublicKeyOf } from '../hpke.ts';
import { ByteSource, type ByteStream } from './ByteSource.ts';
import {
  cipherPool,
  cipherPoolSettings,
  copyBytes,
  copyIn,
  type PoolSession,
  ringSlots,
} from './cipherPool.ts';
import { CIPHER_SLICE, decryptBlock, decryptChunk, splitTag } from './chunkCipher.ts';
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
 * subject to the view contract of sealArtifactStream: with the cipher threads on, a piece of chunk k
 * is valid until the first piece of chunk k + 2 is asked for; copy to keep), a chunk's pieces
 * only after that chunk's tag verified.
 * Proves every byte yielded was sealed under this header, in this order, and (at the end) that
 * nothing was cut off; it does not prove who sealed it (any holder of a recipient key or of the
 * data key can seal), and a consumer that acts on early chunks before the stream ends must accept
 * that a later error can still come. Raises ArtifactError: E_ARTIFACT_FORMAT (header),
 * E_ARTIFACT_WRONG_KEY, E_ARTIFACT_TAMPERED, E_ARTIFACT_REORDERED, E_ARTIFACT_TRUNCATED.
 */
export async function* openArtifactStream(source: ByteStream, key: ArtifactKey): AsyncIterable<Uint8Array> {
  const src = new ByteSource(source);
  let dataKey: Uint8Array | undefined;
  // Chunks read ahead, in order; each settles without rejecting (a failure lands in `err`).
  const q: OpenEntry[] = [];
  let session: PoolSession | undefined;
  let usedSlots = 0;
  // The chunk taken off the queue and not yet released (a failure keeps it here).
  let cur: OpenEntry | undefined;
  try {
    const header = await readArtifactHeaderFrom(src);
    const dk = await dataKeyFor(header, key);
    dataKey = dk;
    const blockSize = header.chunkSize + CHUNK_TAG_BYTES;
    const slots = ringSlots(blockSize);
    const usePool = cipherPoolSettings.enabled && header.chunkSize >= cipherPoolSettings.minChunkBytes;
    let counter = 0;
    let readAll = false;
    // Read and start chunks until `slots - 1` are queued (with the chunk whose views the consumer
    // may still hold, every slot); an error found while reading is queued in order, so every
    // chunk before it is still released and nothing after it.
    const fill = async () => {
      while (!readAll && q.length < slots - 1) {
        const at = counter++;
        // The chunk as the source's own pieces (no copy into a block-sized buffer; decision 1260).
        const pieces = await src.readPieces(blockSize);
        let n = 0;
        for (const p of pieces) n += p.length;
        if (n === 0) {
          readAll = true;
          q.push({
            last: true,
            pieces: [],
            err: new ArtifactError('E_ARTIFACT_TRUNCATED', 'artifact ends before its last chunk', {
              details: { chunks: at },
            }),
          });
          break;
        }
        const atEnd = n < blockSize || (await src.atEnd());
        if (atEnd) readAll = true;
        if (usePool && at >= cipherPoolSettings.fromChunk && n > CHUNK_TAG_BYTES)
          session ??= cipherPool.session(dk, header.aad, cipherPool.newRing(slots, blockSize));
        if (session?.available() && n > CHUNK_TAG_BYTES) {
          const s = session;
          const slot = at % slots;
          const off = slot * blockSize;
          usedSlots = Math.max(usedSlots, slot + 1);
          copyIn(s.ring, pieces, off);
          const e: OpenEntry = {
            last: atEnd,
            pieces: plaintextViews(s.ring.outs[slot]!, 0, n - CHUNK_TAG_BYTES),
            slot,
          };
          e.wait = s.run('open', slot, n, chunkNonce(header.noncePrefix, at, atEnd)).then(
            (ok) => {
              if (ok) return;
              e.pieces = [];
              // The thread zeroed what it decrypted; explain the failure from the block's copy.
              e.err = explainFailure(dk, header, s.ring.inp.slice(off, off + n), at, atEnd);
            },
            (x: unknown) => {
              e.pieces = [];
              e.err = x;
            },
          );
          q.push(e);
          continue;
        }
        try {
          q.push({ last: atEnd, pieces: openChunkInline(dk, header, pieces, n, at, atEnd) });
        } catch (x) {
          readAll = true;
          q.push({ last: true, pieces: [], err: x });
        }
      }
    };
    for (;;) {
      await fill();
      const e = q.shift();
      if (e === undefined) break;
      cur = e;
      if (e.wait !== undefined) await e.wait;
      if (e.err !== undefined) throw e.err;
      cur = undefined;
      yield* e.pieces;
      if (e.last) return;
    }
  } finally {
    // No thread may still write into the ring when it is wiped and reused.
    for (const e of q) if (e.wait !== undefined) await e.wait;
    // Chunks decrypted into the shared ring but never released (read ahead past a failure or a
    // consumer's break, or a thread that died mid-chunk) are wiped: only released slots stay.
    if (session !== undefined) {
      for (const e of cur === undefined ? q : [cur, ...q])
        if (e.slot !== undefined) Buffer.from(session.ring.outs[e.slot]!.buffer).fill(0);
    }
    session?.end(usedSlots);
    dataKey?.fill(0);
    await src.close();
  }
}

/** A chunk between reading and handing on (see openArtifactStream). */
interface OpenEntry {
  last: boolean;
  /** Its plaintext: own buffers (inline) or views of its output slot (valid once `wait` settled). */
  pieces: Uint8Array[];
  wait?: Promise<void>;
  err?: unknown;
  /** Its slot in the ring when on the cipher threads. */
  slot?: number;
}

/** Views of `buf[off, off + n)` of at most CIPHER_SLICE bytes each (the inline cipher's shape). */
function plaintextViews(buf: Uint8Array, off: number, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < n; o += CIPHER_SLICE)
    out.push(buf.subarray(off + o, off + Math.min(n, o + CIPHER_SLICE)));
  return out;
}

/** Open one chunk on the calling thread: its plaintext pieces, or the explained failure thrown. */
function openChunkInline(
  dataKey: Uint8Array,
  header: ArtifactHeader,
  pieces: Uint8Array[],
  n: number,
  counter: number,
  atEnd: boolean,
): Uint8Array[] {
  if (n >= CHUNK_TAG_BYTES) {
    const { ct, tag } = splitTag(pieces, n);
    const pt = decryptChunk(dataKey, chunkNonce(header.noncePrefix, counter, atEnd), header.aad, ct, tag);
    if (pt !== undefined) return pt;
  }
  // Failed: explain it from the whole block (a rare path, so the copy does not matter).
  throw explainFailure(
    dataKey,
    header,
    pieces.length === 1 ? pieces[0]! : concatBytes(...pieces),
    counter,
    atEnd,
  );
}

/** Why a chunk that did not open at its position failed: truncated, extra bytes, reordered or tampered. */
function explainFailure(
  dataKey: Uint8Array,
  header: ArtifactHeader,
  block: Uint8Array,
  counter: number,
  atEnd: boolean,
): ArtifactError {
  // The same position with the other last-flag tells a cut at a chunk boundary (a non-last
  // chunk at the end) from a final chunk followed by extra bytes.
  if (
    block.length >= CHUNK_TAG_BYTES &&
    opensWith(dataKey, chunkNonce(header.noncePrefix, counter, !atEnd), header.aad, block)
  ) {
    if (atEnd)
      return new ArtifactError('E_ARTIFACT_TRUNCATED', 'artifact ends before its last chunk', {
        details: { chunks: counter + 1 },
      });
    return new ArtifactError('E_ARTIFACT_TAMPERED', 'bytes follow the last chunk', {
      details: { position: counter },
    });
  }
  if (block.length < CHUNK_TAG_BYTES)
    return new ArtifactError('E_ARTIFACT_TRUNCATED', 'artifact ends inside a chunk', {
      details: { position: counter },
    });
  return diagnose(dataKey, header, block, counter);
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
  const outBuf = out === undefined ? undefined : Buffer.from(out.buffer, out.byteOffset, out.length);
  const parts: Uint8Array[] = [];
  let o = 0;
  try {
    for await (const p of openArtifactStream(one(), key)) {
      // Copied at once: the pieces are views valid only until the stream moves on.
      if (outBuf === undefined) parts.push(p.slice());
      else {
        if (o + p.length > outBuf.length)
          throw new FirnError('E_INTERNAL', 'artifact opened longer than its size');
        copyBytes(outBuf, p, o);
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
