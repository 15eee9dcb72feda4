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

/** FNV-1a over an OID's content octets: the index of the table of known OIDs. */
function oidHash(c: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < c.length; i++) h = Math.imul(h ^ c[i]!, 0x01000193);
  return h >>> 0;
}

/** DER content octets of a dotted OID (for the table of known OIDs). */
function encodeOid(text: string): Uint8Array {
  const arcs = text.split('.').map(Number);
  const out: number[] = [];
  const push = (v: number) => {
    const bytes = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) bytes.unshift((v & 0x7f) | 0x80);
    out.push(...bytes);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return Uint8Array.from(out);
}

/**
 * OIDs met in every Intel DCAP certificate and CRL (algorithms, X.509 extensions, Intel's SGX
 * extension items), by the hash of their canonical encoding, so that parsing them builds no text.
 * Any other encoding takes the general decoder, which gives the same text for the same OID.
 */
const KNOWN_OIDS = (() => {
  const sgx = '1.2.840.113741.1.13.1';
  const list = [
    '1.2.840.10045.2.1',
    '1.2.840.10045.3.1.7',
    '1.2.840.10045.4.3.2',
    '2.5.29.14',
    '2.5.29.15',
    '2.5.29.19',
    '2.5.29.20',
    '2.5.29.21',
    '2.5.29.28',
    '2.5.29.31',
    '2.5.29.35',
    sgx,
    ...[1, 2, 3, 4, 5, 6, 7].map((i) => `${sgx}.${i}`),
    ...Array.from({ length: 18 }, (_, i) => `${sgx}.2.${i + 1}`),
    ...[1, 2, 3].map((i) => `${sgx}.7.${i}`),
  ];
  const m = new Map<number, { c: Uint8Array; text: string }>();
  for (const text of list) {
    const c = encodeOid(text);
    const h = oidHash(c);
    if (m.has(h)) continue; // a collision: the second takes the general decoder
    if (decodeOid(c, 0) !== text) throw new Error(`OID table: ${text} does not round-trip`);
    m.set(h, { c, text });
  }
  return m;
})();

/** Dotted OID text from an OBJECT IDENTIFIER element. */
export function derOid(b: Uint8Array, node: DerNode): string {
  derExpect(node, 0x06, 'OID');
  const c = derContent(b, node);
  if (c.length === 0 || c.length > 64) throw malformed('bad OID length', node.start);
  const known = KNOWN_OIDS.get(oidHash(c));
  if (known !== undefined && known.c.length === c.length) {
    let i = 0;
    while (i < c.length && known.c[i] === c[i]) i++;
    if (i === c.length) return known.text;
  }
  return decodeOid(c, node.start);
}

/** The general OID decoder (content octets, 1..64 of them), errors at `offset`. */
function decodeOid(c: Uint8Array, offset: number): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < c.length; i++) {
    v = v * 128 + (c[i]! & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw malformed('OID arc too large', offset);
    if ((c[i]! & 0x80) === 0) {
      if (parts.length === 0) {
        const first = v < 80 ? Math.floor(v / 40) : 2;
        parts.push(first, v - first * 40);
      } else parts.push(v);
      v = 0;
    }
  }
  if ((c[c.length - 1]! & 0x80) !== 0) throw malformed('truncated OID', offset);
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

/** Two ASCII digits at `i` as a number, or -1 if either is not a digit. */
function digits2(b: Uint8Array, i: number): number {
  const h = b[i]! - 0x30;
  const l = b[i + 1]! - 0x30;
  return h >= 0 && h <= 9 && l >= 0 && l <= 9 ? h * 10 + l : -1;
}

/**
 * UTCTime (`YYMMDDhhmmssZ`) or GeneralizedTime (`YYYYMMDDhhmmssZ`), the forms X.509 and CRLs use,
 * always in Zulu, as unix seconds. Read byte by byte (no text is built); the same inputs are
 * accepted as by the patterns above and give the same Date.UTC arguments.
 */
export function derTime(b: Uint8Array, node: DerNode, what: string): number {
  const p = node.contentStart;
  const n = node.end - p;
  const utc = node.tag === 0x17 && n === 13;
  const gen = node.tag === 0x18 && n === 15;
  if (!utc && !gen) throw malformed(`${what}: unsupported time encoding`, node.start);
  const d = utc ? p : p + 2;
  const parts = [
    digits2(b, p),
    digits2(b, d),
    digits2(b, d + 2),
    digits2(b, d + 4),
    digits2(b, d + 6),
    digits2(b, d + 8),
    digits2(b, d + 10),
  ];
  const hi = gen ? parts[0]! : 0;
  if (parts.some((x) => x < 0) || b[d + 12] !== 0x5a)
    throw malformed(`${what}: unsupported time encoding`, node.start);
  const y = gen ? hi * 100 + parts[1]! : parts[1]!;
  // RFC 5280 4.1.2.5.1: two-digit years 50..99 are 19xx, 00..49 are 20xx.
  const year = utc ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  const [, , mon, day, hh, mm, ss] = parts as [number, number, number, number, number, number, number];
  // Each field in range (as OpenSSL and the der crate require): Date.UTC would roll month 13,
  // February 30 or hour 24 over into another instant. setUTCFullYear keeps years below 100 as given.
  const t = new Date(Date.UTC(2000, mon - 1, day, hh, mm, ss));
  t.setUTCFullYear(year);
  if (
    mon < 1 ||
    mon > 12 ||
    day < 1 ||
    hh > 23 ||
    mm > 59 ||
    ss > 59 ||
    t.getUTCMonth() !== mon - 1 ||
    t.getUTCDate() !== day
  )
    throw malformed(`${what}: invalid time`, node.start);
  const ms = t.getTime();
  if (!Number.isFinite(ms)) throw malformed(`${what}: invalid time`, node.start);
  return ms / 1000;
}
