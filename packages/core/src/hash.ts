import { createHash } from 'node:crypto';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { concatBytes, u32be, utf8 } from './bytes.ts';
import type { Tag } from './tags.ts';

/**
 * Canonical encoding used under every tagged hash: each field is a 4-byte big-endian length
 * followed by its bytes, so no two field lists encode to the same bytes.
 */
export function encodeFields(fields: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fields) parts.push(u32be(f.length), f);
  return concatBytes(...parts);
}

function tagged(tag: Tag, fields: readonly Uint8Array[]): Uint8Array {
  return encodeFields([utf8(tag), ...fields]);
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}
export function sha384(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha384').update(data).digest());
}
export function sha512(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha512').update(data).digest());
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
