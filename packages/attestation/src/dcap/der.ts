import { FirnError } from '@firn/core';

/** One DER element: its tag, where its content starts and ends, and the whole element's end. */
export interface DerNode {
  tag: number;
  /** Offset of the first byte of the element (the tag). */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset one past the last content byte (= one past the element). */
  end: number;
}

/** Lengths over 2^32 never occur in certificates or CRLs; refusing them keeps arithmetic exact. */
const MAX_LENGTH_OCTETS = 4;

function malformed(what: string, offset: number): FirnError {
  return new FirnError('E_EVIDENCE_MALFORMED', `DER: ${what}`, { details: { offset } });
}

/**
 * Read one DER element at `offset` within `[offset, limit)`. Only definite lengths of at most
 * four octets are accepted (DER forbids indefinite lengths), and the element must fit the limit.
 */
export function derRead(b: Uint8Array, offset: number, limit = b.length): DerNode {
  if (offset + 2 > limit) throw malformed('truncated element header', offset);
  const tag = b[offset]!;
  if ((tag & 0x1f) === 0x1f) throw malformed('multi-byte tags are not supported', offset);
  let p = offset + 1;
  let len = b[p++]!;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > MAX_LENGTH_OCTETS) throw malformed('unsupported length encoding', offset);
    if (p + n > limit) throw malformed('truncated length', offset);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p++]!;
  }
  if (p + len > limit) throw malformed('element runs past its container', offset);
  return { tag, start: offset, contentStart: p, end: p + len };
}

/** The children of a constructed element, in order. */
export function derChildren(b: Uint8Array, node: DerNode, maxChildren = 4096): DerNode[] {
  const out: DerNode[] = [];
  let p = node.contentStart;
  while (p < node.end) {
    if (out.length >= maxChildren) throw malformed('too many elements', p);
    const c = derRead(b, p, node.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

/** Read the single top-level element of `b`, which must span all of it. */
export function derRoot(b: Uint8Array, expectTag: number, what: string): DerNode {
  const n = derRead(b, 0);
  if (n.tag !== expectTag) throw malformed(`${what}: unexpected tag 0x${n.tag.toString(16)}`, 0);
  if (n.end !== b.length) throw malformed(`${what}: trailing bytes`, n.end);
  return n;
}

export function derExpect(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (node === undefined) throw malformed(`${what} missing`, -1);
  if (node.tag !== tag) throw malformed(`${what}: unexpected tag 0x${node.tag.toString(16)}`, node.start);
  return node;
}

export function derContent(b: Uint8Array, node: DerNode): Uint8Array {
  return b.subarray(node.contentStart, node.end);
}

export function derElement(b: Uint8Array, node: DerNode): Uint8Array {
  return b.subarray(node.start, node.end);
}

/** Dotted OID text from an OBJECT IDENTIFIER element. */
export function derOid(b: Uint8Array, node: DerNode): string {
  derExpect(node, 0x06, 'OID');
  const c = derContent(b, node);
  if (c.length === 0 || c.length > 64) throw malformed('bad OID length', node.start);
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < c.length; i++) {
    v = v * 128 + (c[i]! & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw malformed('OID arc too large', node.start);
    if ((c[i]! & 0x80) === 0) {
      if (parts.length === 0) {
        const first = v < 80 ? Math.floor(v / 40) : 2;
        parts.push(first, v - first * 40);
      } else parts.push(v);
      v = 0;
    }
  }
  if ((c[c.length - 1]! & 0x80) !== 0) throw malformed('truncated OID', node.start);
  return parts.join('.');
}

/** A small non-negative INTEGER or ENUMERATED (SVNs, types); larger values are malformed here. */
export function derSmallInt(b: Uint8Array, node: DerNode, what: string): number {
  if (node.tag !== 0x02 && node.tag !== 0x0a) throw malformed(`${what}: not an integer`, node.start);
  const c = derContent(b, node);
  if (c.length === 0 || c.length > 6 || (c[0]! & 0x80) !== 0)
    throw malformed(`${what}: integer out of range`, node.start);
  let v = 0;
  for (const x of c) v = v * 256 + x;
  return v;
}

/** UTCTime or GeneralizedTime (the forms X.509 and CRLs use, always in Zulu) as unix seconds. */
export function derTime(b: Uint8Array, node: DerNode, what: string): number {
  const s = Buffer.from(derContent(b, node)).toString('latin1');
  const utc = node.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  const gen = node.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  const m = utc ?? gen;
  if (m === null) throw malformed(`${what}: unsupported time encoding`, node.start);
  const y = Number(m[1]);
  // RFC 5280 4.1.2.5.1: two-digit years 50..99 are 19xx, 00..49 are 20xx.
  const year = utc !== null ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  const ms = Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (!Number.isFinite(ms)) throw malformed(`${what}: invalid time`, node.start);
  return ms / 1000;
}
