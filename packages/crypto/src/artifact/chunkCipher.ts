import { createCipheriv, createDecipheriv, webcrypto } from 'node:crypto';
import { CHUNK_TAG_BYTES } from './artifactHeader.ts';

/**
 * AES-256-GCM of sealed-artifact chunks (the cipher loop of seal and open). Every chunk is
 * independent (its own nonce: prefix || counter || last flag), so large chunks are encrypted and
 * decrypted on libuv's thread pool through WebCrypto, several at once, while the caller reads the
 * next ones: node:crypto's Cipher object runs on the JS thread and copies each output once more,
 * which held sealing to about a third of `openssl speed` (decision 1161). Small chunks take the
 * synchronous path, where a thread-pool round trip would cost more than it saves. Both paths
 * produce the same bytes: ciphertext || 16-byte tag, AES-256-GCM as NIST SP 800-38D.
 */

/** Chunks at least this long (plaintext bytes) go to the thread pool; shorter ones stay inline. */
export const POOL_MIN_CHUNK = 64 * 1024;
/** Chunks in flight at once (seal and open each); memory is about this many chunks. */
export const PIPELINE_DEPTH = 2;

/** One artifact's chunk key, usable by both paths. */
export interface ChunkKey {
  raw: Uint8Array;
  web: webcrypto.CryptoKey;
}

/** Import a 32-byte data key for chunk encryption or decryption. */
export async function chunkKey(dataKey: Uint8Array, usage: 'encrypt' | 'decrypt'): Promise<ChunkKey> {
  const web = await webcrypto.subtle.importKey('raw', dataKey, { name: 'AES-GCM' }, false, [usage]);
  return { raw: dataKey, web };
}

/** Encrypt one chunk inline: ciphertext || tag as one buffer. */
export function encryptChunkSync(
  key: ChunkKey,
  nonce: Uint8Array,
  aad: Uint8Array,
  pt: Uint8Array,
): Uint8Array {
  const c = createCipheriv('aes-256-gcm', key.raw, nonce, { authTagLength: CHUNK_TAG_BYTES });
  c.setAAD(aad);
  const body = c.update(pt);
  const fin = c.final();
  const tag = c.getAuthTag();
  const out = new Uint8Array(body.length + fin.length + tag.length);
  out.set(body, 0);
  out.set(fin, body.length);
  out.set(tag, body.length + fin.length);
  return out;
}

/**
 * Encrypt one chunk: ciphertext || tag. The plaintext is copied before this returns (WebCrypto
 * takes a copy of its input synchronously), so a source may reuse its buffer afterwards.
 */
export function encryptChunk(
  key: ChunkKey,
  nonce: Uint8Array,
  aad: Uint8Array,
  pt: Uint8Array,
): Promise<Uint8Array> | Uint8Array {
  if (pt.length < POOL_MIN_CHUNK) return encryptChunkSync(key, nonce, aad, pt);
  return webcrypto.subtle
    .encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, key.web, pt)
    .then((ab) => new Uint8Array(ab));
}

/** Decrypt one chunk inline; undefined when the tag does not verify (no plaintext is released). */
export function decryptChunkSync(
  key: ChunkKey | Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  block: Uint8Array,
): Uint8Array | undefined {
  if (block.length < CHUNK_TAG_BYTES) return undefined;
  const ctLen = block.length - CHUNK_TAG_BYTES;
  const raw = key instanceof Uint8Array ? key : key.raw;
  const d = createDecipheriv('aes-256-gcm', raw, nonce, { authTagLength: CHUNK_TAG_BYTES });
  d.setAAD(aad);
  d.setAuthTag(block.subarray(ctLen));
  const out = d.update(block.subarray(0, ctLen));
  try {
    // GCM emits everything in update(); final() only checks the tag.
    d.final();
  } catch {
    out.fill(0);
    return undefined;
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/**
 * Decrypt one chunk (ciphertext || tag) for open; undefined when the tag does not verify. Inline
 * for every size: WebCrypto decryption on the pool measured slower than inline in interleaved
 * runs here (median 209 vs 308 MiB/s at 1 MiB chunks, load ~16 on 2 cores; decision 1161), unlike
 * encryption. Kept as its own entry point so open's read-ahead loop need not change if it moves.
 */
export function decryptChunk(
  key: ChunkKey,
  nonce: Uint8Array,
  aad: Uint8Array,
  block: Uint8Array,
): Uint8Array | undefined {
  return decryptChunkSync(key, nonce, aad, block);
}
