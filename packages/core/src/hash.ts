import { hash } from 'node:crypto';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { utf8 } from './bytes.ts';
import { InvalidInputError } from './errors.ts';
import type { Tag } from './tags.ts';

/**
 * Canonical encoding used under every tagged hash: each field is a 4-byte big-endian length
 * followed by its bytes, so no two field lists encode to the same bytes.
 */
export function encodeFields(fields: readonly Uint8Array[]): Uint8Array {
  return encodeTagged(undefined, fields);
}

/**
 * encodeFields([tag, ...fields]) written into one buffer sized up front: no per-field length
 * array or intermediate list (every tagged hash, quote check and channel nonce goes through here).
 */
function encodeTagged(tag: Uint8Array | undefined, fields: readonly Uint8Array[]): Uint8Array {
  let n = tag === undefined ? 0 : 4 + tag.length;
  for (const f of fields) n += 4 + f.length;
  const out = new Uint8Array(n);
  let o = tag === undefined ? 0 : putField(out, 0, tag);
  for (const f of fields) o = putField(out, o, f);
  return out;
}

/** Write `f`'s 4-byte big-endian length and its bytes at `o`; returns the offset after them. */
function putField(out: Uint8Array, o: number, f: Uint8Array): number {
  const l = f.length;
  if (l > 0xffffffff) throw new InvalidInputError('u32 out of range');
  out[o] = l >>> 24;
  out[o + 1] = (l >>> 16) & 0xff;
  out[o + 2] = (l >>> 8) & 0xff;
  out[o + 3] = l & 0xff;
  out.set(f, o + 4);
  return o + 4 + l;
}

/** UTF-8 bytes of each tag, encoded once (tags are a fixed list; the bytes never leave this module). */
const tagBytes = new Map<string, Uint8Array>();
function tagged(tag: Tag, fields: readonly Uint8Array[]): Uint8Array {
  let t = tagBytes.get(tag);
  if (t === undefined) {
    t = utf8(tag);
    if (tagBytes.size < 256) tagBytes.set(tag, t);
  }
  return encodeTagged(t, fields);
}

// One-shot node:crypto hash(): no Hash object per call (the digests of small inputs are dominated
// by that object's set-up). Each result is a plain Uint8Array of its own.
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha256', data, 'buffer'));
}
export function sha384(data: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha384', data, 'buffer'));
}
export function sha512(data: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha512', data, 'buffer'));
}
export function keccak256(data: Uint8Array): Uint8Array {
  return keccak_256(data);
}

export function taggedSha256(tag: Tag, ...fields: Uint8Array[]): Uint8Array {
  return sha256(tagged(tag, fields));
}
export function taggedSha512(tag: Tag, ...fields: Uint8Array[]): Uint8Array {
  return sha512(tagged(tag, fields));
}
export function taggedKeccak256(tag: Tag, ...fields: Uint8Array[]): Uint8Array {
  return keccak256(tagged(tag, fields));
}
