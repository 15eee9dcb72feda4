import { createCipheriv, createDecipheriv } from 'node:crypto';
import { CHUNK_TAG_BYTES } from './artifactHeader.ts';

/**
 * AES-256-GCM of sealed-artifact chunks (the cipher loop of seal and open), NIST SP 800-38D with a
 * 12-byte nonce and a 16-byte tag: a chunk is ciphertext (as long as its plaintext) || tag.
 *
 * Where the time goes (decision 1260): node:crypto's `Cipher.update(x)` allocates a fresh output
 * of `x.length + 1` bytes, then a second one of `x.length` and copies into it. At 1 MiB per call
 * those are fresh pages from the allocator each time (glibc trims its heap top and unmaps large
 * blocks after every collection), and page faults cost more than the AES itself: one thread did
 * about a quarter of `openssl speed -evp aes-256-gcm`. So a chunk is fed to the cipher in slices
 * of CIPHER_SLICE bytes, taken straight from the source's own pieces (GCM streams: a chunk spread
 * over several pieces is never joined), and the slices' outputs are handed on as they are: small
 * blocks the allocator recycles from its free lists while they are still mapped and warm. No
 * output is ever copied into a chunk-sized buffer.
 */

/**
 * Most bytes fed to one `update` call, so most bytes of one output piece. In interleaved runs
 * here 32-256 KiB all kept page faults low (a 1 MiB `update` did not); 256 KiB keeps the pieces
 * few for the consumer (a 1 MiB chunk is 4 writes, not 32) (decision 1260).
 */
export const CIPHER_SLICE = 256 * 1024;

/**
 * The last TAG_TAIL bytes of a chunk's ciphertext are emitted together with its tag, so the
 * 16-byte tag never travels as a piece of its own (one more write for the consumer per chunk);
 * copying at most this many bytes costs nothing measurable.
 */
const TAG_TAIL = 4096;

/**
 * Encrypt one chunk whose plaintext is `pieces` (in order; any sizes, possibly none), returning
 * output pieces of at most CIPHER_SLICE + 16 bytes whose concatenation is exactly
 * `AES-256-GCM(key, nonce, aad, concat(pieces))` = ciphertext || 16-byte tag (the tag is in the
 * last piece). The plaintext is only read, and before this returns, so a source may reuse its
 * buffers afterwards. Raises whatever node:crypto raises for a key or nonce of the wrong size.
 *
 * @param key 32-byte AES-256 key
 * @param nonce 12-byte GCM nonce
 * @param aad associated data (the header hash for sealed artifacts)
 */
export function encryptChunk(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  pieces: readonly Uint8Array[],
): Uint8Array[] {
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: CHUNK_TAG_BYTES });
  c.setAAD(aad);
  let total = 0;
  for (const p of pieces) total += p.length;
  // Bytes before the tail go out in slices as they are; the tail is joined with the tag.
  const tailAt = Math.max(0, total - TAG_TAIL);
  const out: Uint8Array[] = [];
  let tail: Uint8Array | undefined;
  let at = 0;
  for (const p of pieces) {
    for (let o = 0; o < p.length; ) {
      const end = at < tailAt ? Math.min(p.length, o + CIPHER_SLICE, o + (tailAt - at)) : p.length;
      const ct = c.update(p.subarray(o, end));
      if (at >= tailAt) tail = tail === undefined ? ct : concat2(tail, ct);
      else if (ct.length > 0) out.push(ct);
      at += end - o;
      o = end;
    }
  }
  // GCM emits everything in update(); final() emits nothing and computes the tag.
  const fin = c.final();
  const tag = c.getAuthTag();
  out.push(concat2(tail === undefined ? fin : concat2(tail, fin), tag));
  return out;
}

function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const r = new Uint8Array(a.length + b.length);
  r.set(a, 0);
  r.set(b, a.length);
  return r;
}

/**
 * Decrypt one chunk given as ciphertext pieces and its 16-byte tag. Returns the plaintext pieces
 * (concatenation = the chunk's plaintext) only when the tag verifies; otherwise undefined, with
 * every piece already decrypted zeroed first, so no unauthenticated plaintext leaves this function.
 *
 * @param key 32-byte AES-256 key
 * @param nonce 12-byte GCM nonce
 * @param aad associated data (the header hash for sealed artifacts)
 * @param ct ciphertext pieces, in order
 * @param tag the chunk's 16-byte GCM tag
 */
export function decryptChunk(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ct: readonly Uint8Array[],
  tag: Uint8Array,
): Uint8Array[] | undefined {
  if (tag.length !== CHUNK_TAG_BYTES) return undefined;
  const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: CHUNK_TAG_BYTES });
  d.setAAD(aad);
  d.setAuthTag(tag);
  const out: Uint8Array[] = [];
  for (const p of ct)
    for (let o = 0; o < p.length; o += CIPHER_SLICE) {
      const pt = d.update(p.subarray(o, o + CIPHER_SLICE));
      if (pt.length > 0) out.push(pt);
    }
  try {
    // final() only checks the tag (GCM emits all plaintext in update()).
    d.final();
  } catch {
    for (const p of out) p.fill(0);
    return undefined;
  }
  return out;
}

/**
 * Split a chunk read as pieces (ciphertext || tag, total length >= 16) into its ciphertext pieces
 * (subarrays, no copy) and its tag (a copy of the last 16 bytes, which may straddle pieces).
 */
export function splitTag(
  pieces: readonly Uint8Array[],
  total: number,
): { ct: Uint8Array[]; tag: Uint8Array } {
  const ctLen = total - CHUNK_TAG_BYTES;
  const ct: Uint8Array[] = [];
  const tag = new Uint8Array(CHUNK_TAG_BYTES);
  let o = 0;
  for (const p of pieces) {
    const end = o + p.length;
    if (o < ctLen) ct.push(end <= ctLen ? p : p.subarray(0, ctLen - o));
    if (end > ctLen) {
      const from = Math.max(0, ctLen - o);
      tag.set(p.subarray(from), o + from - ctLen);
    }
    o = end;
  }
  return { ct, tag };
}

/** Decrypt one contiguous chunk (ciphertext || tag); undefined when it does not authenticate. */
export function decryptBlock(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  block: Uint8Array,
): Uint8Array[] | undefined {
  if (block.length < CHUNK_TAG_BYTES) return undefined;
  const ctLen = block.length - CHUNK_TAG_BYTES;
  return decryptChunk(key, nonce, aad, [block.subarray(0, ctLen)], block.subarray(ctLen));
}
