import { createPublicKey, type KeyObject, verify as nodeVerify } from 'node:crypto';
import { FirnError } from '@firn/core';
import {
  type DerNode,
  derChildren,
  derContent,
  derElement,
  derExpect,
  derOid,
  derRead,
  derRoot,
  derTime,
} from './der.ts';

/** Certificates and CRLs larger than this are refused before parsing (Intel's are under 8 KiB). */
export const MAX_CERT_BYTES = 16 * 1024;
export const MAX_CRL_BYTES = 4 * 1024 * 1024;
/** A chain longer than this is not an Intel DCAP chain. */
export const MAX_CHAIN_CERTS = 8;

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';

export interface X509Extension {
  critical: boolean;
  /** The extnValue OCTET STRING's content (itself DER). */
  value: Uint8Array;
}

/** The parts of an X.509 certificate that DCAP verification needs; no signature is trusted yet. */
export interface Certificate {
  der: Uint8Array;
  tbs: Uint8Array;
  /** Serial number as lowercase hex without leading zeros (the key for CRL lookups). */
  serial: string;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: number;
  notAfter: number;
  spki: Uint8Array;
  /** DER ECDSA-Sig-Value over tbs. */
  signature: Uint8Array;
  extensions: Map<string, X509Extension>;
  isCa: boolean;
  /** Created on first use: importing a key costs more than parsing. */
  publicKey(): KeyObject;
  /** Whether publicKey() has returned a key already (so a further call costs nothing). */
  keyImported(): boolean;
}

/** A parsed certificate revocation list; its signature is checked by verifyCrl. */
export interface Crl {
  der: Uint8Array;
  tbs: Uint8Array;
  issuer: Uint8Array;
  thisUpdate: number;
  nextUpdate: number;
  revoked: Set<string>;
  signature: Uint8Array;
}

/** Byte equality without copies (inputs are public). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function malformed(what: string): FirnError {
  return new FirnError('E_EVIDENCE_MALFORMED', what);
}

function integerHex(b: Uint8Array, node: DerNode): string {
  derExpect(node, 0x02, 'serial number');
  const c = derContent(b, node);
  if (c.length === 0 || c.length > 32) throw malformed('serial number length out of range');
  // Lowercase hex of the content octets without leading zero digits ('0' for zero), built from a
  // table rather than through a Buffer copy and a regular expression (CRLs list hundreds).
  let i = 0;
  while (i < c.length && c[i] === 0) i++;
  if (i === c.length) return '0';
  let hex = c[i]! < 16 ? HEX_DIGIT[c[i]!]! : HEX_BYTE[c[i]!]!;
  for (i++; i < c.length; i++) hex += HEX_BYTE[c[i]!]!;
  return hex;
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const HEX_DIGIT = Array.from({ length: 16 }, (_, i) => i.toString(16));

function ecdsaSignature(b: Uint8Array, algNode: DerNode, sigNode: DerNode, what: string): Uint8Array {
  const alg = derChildren(b, derExpect(algNode, 0x30, `${what} signature algorithm`));
  if (derOid(b, derExpect(alg[0], 0x06, 'algorithm')) !== OID_ECDSA_SHA256)
    throw new FirnError('E_EVIDENCE_CHAIN', `${what} is not signed with ECDSA-SHA256`);
  const bits = derContent(b, derExpect(sigNode, 0x03, `${what} signature`));
  if (bits.length < 8 || bits[0] !== 0) throw malformed(`${what}: bad signature bit string`);
  return bits.subarray(1);
}

/**
 * SubjectPublicKeyInfo of an uncompressed P-256 key up to the point (RFC 5480: id-ecPublicKey,
 * prime256v1, BIT STRING of 66 bytes: 0x00 unused bits, 0x04, x, y). Every Intel DCAP key has it.
 */
const P256_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
  0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
]);

/**
 * Import an SPKI public key. A P-256 SPKI (the only kind in Intel's chains) is imported from its
 * point as a JWK: OpenSSL 3's DER decoder costs about twice as much as building the key from
 * coordinates, and both check the point is on the curve. Any other SPKI takes the DER path.
 */
function importSpki(spki: Uint8Array): KeyObject {
  const point = p256SpkiPoint(spki);
  if (point !== undefined) return p256RawKey(point);
  return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
}

/**
 * The uncompressed point (x||y, 64 bytes, a view into `spki`) of a P-256 SPKI in the one DER form
 * Intel's chains use (P256_SPKI_PREFIX then the point); undefined for any other SPKI. Whether the
 * point is on the curve is left to the import.
 */
export function p256SpkiPoint(spki: Uint8Array): Uint8Array | undefined {
  if (spki.length !== P256_SPKI_PREFIX.length + 64) return undefined;
  for (let i = 0; i < P256_SPKI_PREFIX.length; i++) if (spki[i] !== P256_SPKI_PREFIX[i]) return undefined;
  return spki.subarray(P256_SPKI_PREFIX.length);
}

function lazyKey(spki: Uint8Array): { publicKey(): KeyObject; keyImported(): boolean } {
  // The outcome of the first import, kept only once every check on it is made: the checked key,
  // or the error, so that every later call gives the same answer as the first (a key that fails a
  // check is never handed out).
  let key: KeyObject | undefined;
  let failed: FirnError | undefined;
  const keyImported = () => key !== undefined;
  const publicKey = () => {
    if (key !== undefined) return key;
    if (failed !== undefined) throw failed;
    let k: KeyObject;
    try {
      k = importSpki(spki);
    } catch (e) {
      failed = new FirnError('E_EVIDENCE_MALFORMED', 'certificate public key cannot be imported', {
        cause: e,
      });
      throw failed;
    }
    if (k.asymmetricKeyType !== 'ec') {
      failed = new FirnError('E_EVIDENCE_CHAIN', 'certificate key is not an EC key');
      throw failed;
    }
    key = k;
    return key;
  };
  return { publicKey, keyImported };
}

/** Parse one DER certificate (size-capped); structure only, no signature or time checked. */
export function parseCertificate(der: Uint8Array): Certificate {
  if (der.length > MAX_CERT_BYTES)
    throw new FirnError('E_EVIDENCE_MALFORMED', `certificate is ${der.length} bytes, over ${MAX_CERT_BYTES}`);
  const root = derRoot(der, 0x30, 'certificate');
  const [tbsN, algN, sigN, ...rest] = derChildren(der, root, 8);
  if (rest.length > 0) throw malformed('certificate has extra elements');
  const tbsNode = derExpect(tbsN, 0x30, 'tbsCertificate');
  const f = derChildren(der, tbsNode, 16);
  let i = 0;
  if (f[0]?.tag === 0xa0) i++;
  const serial = integerHex(der, derExpect(f[i++], 0x02, 'serial'));
  const innerAlg = derExpect(f[i++], 0x30, 'signature algorithm');
  const issuer = derElement(der, derExpect(f[i++], 0x30, 'issuer'));
  const validity = derChildren(der, derExpect(f[i++], 0x30, 'validity'), 2);
  if (validity.length !== 2) throw malformed('validity must hold two times');
  const notBefore = derTime(der, validity[0]!, 'notBefore');
  const notAfter = derTime(der, validity[1]!, 'notAfter');
  const subject = derElement(der, derExpect(f[i++], 0x30, 'subject'));
  const spki = derElement(der, derExpect(f[i++], 0x30, 'subjectPublicKeyInfo'));
  const extensions = new Map<string, X509Extension>();
  for (; i < f.length; i++) {
    const n = f[i]!;
    if (n.tag !== 0xa3) continue; // issuer/subject unique ids are never used by Intel; ignored
    const seq = derRead(der, n.contentStart, n.end);
    for (const e of derChildren(der, derExpect(seq, 0x30, 'extensions'), 64)) {
      const parts = derChildren(der, derExpect(e, 0x30, 'extension'), 3);
      const oid = derOid(der, derExpect(parts[0], 0x06, 'extension id'));
      let critical = false;
      let vi = 1;
      if (parts[1]?.tag === 0x01) {
        critical = derContent(der, parts[1])[0] === 0xff;
        vi = 2;
      }
      const value = derContent(der, derExpect(parts[vi], 0x04, 'extension value'));
      if (extensions.has(oid)) throw malformed(`duplicate extension ${oid}`);
      extensions.set(oid, { critical, value });
    }
  }
  // The outer and inner algorithm identifiers must agree (RFC 5280 4.1.1.2).
  if (!sameBytes(derElement(der, innerAlg), derElement(der, derExpect(algN, 0x30, 'algorithm'))))
    throw malformed('certificate signature algorithms disagree');
  const signature = ecdsaSignature(der, algN!, derExpect(sigN, 0x03, 'signature'), 'certificate');
  let isCa = false;
  const bc = extensions.get(OID_BASIC_CONSTRAINTS);
  if (bc !== undefined) {
    const seq = derRoot(bc.value, 0x30, 'basicConstraints');
    const c = derChildren(bc.value, seq, 2);
    isCa = c[0]?.tag === 0x01 && derContent(bc.value, c[0])[0] === 0xff;
  }
  return {
    der,
    tbs: derElement(der, tbsNode),
    serial,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki,
    signature,
    extensions,
    isCa,
    ...lazyKey(spki),
  };
}

/** Parse a DER CRL (size-capped); structure only. */
export function parseCrl(der: Uint8Array): Crl {
  if (der.length > MAX_CRL_BYTES)
    throw new FirnError('E_EVIDENCE_MALFORMED', `CRL is ${der.length} bytes, over ${MAX_CRL_BYTES}`);
  const root = derRoot(der, 0x30, 'CRL');
  const [tbsN, algN, sigN, ...rest] = derChildren(der, root, 8);
  if (rest.length > 0) throw malformed('CRL has extra elements');
  const tbsNode = derExpect(tbsN, 0x30, 'tbsCertList');
  const f = derChildren(der, tbsNode, 16);
  let i = 0;
  if (f[0]?.tag === 0x02) i++;
  derExpect(f[i++], 0x30, 'CRL signature algorithm');
  const issuer = derElement(der, derExpect(f[i++], 0x30, 'CRL issuer'));
  const thisN = f[i++];
  if (thisN === undefined) throw malformed('CRL thisUpdate missing');
  const thisUpdate = derTime(der, thisN, 'thisUpdate');
  const nextN = f[i];
  // Intel's CRLs always carry nextUpdate; one without it cannot be judged fresh, so refuse it.
  if (nextN === undefined || (nextN.tag !== 0x17 && nextN.tag !== 0x18))
    throw malformed('CRL nextUpdate missing');
  const nextUpdate = derTime(der, nextN, 'nextUpdate');
  i++;
  const revoked = new Set<string>();
  if (f[i]?.tag === 0x30) {
    // Each entry: SEQUENCE { serial INTEGER, revocationDate, [extensions] }, at most 3 elements,
    // each well-formed (as derChildren(entry, 3) requires), read without building lists.
    const list = f[i]!;
    let n = 0;
    for (let p = list.contentStart; p < list.end; ) {
      if (n++ >= 1 << 20)
        throw new FirnError('E_EVIDENCE_MALFORMED', 'DER: too many elements', { details: { offset: p } });
      const entry = derExpect(derRead(der, p, list.end), 0x30, 'revoked entry');
      let serial: DerNode | undefined;
      let k = 0;
      for (let q = entry.contentStart; q < entry.end; k++) {
        if (k >= 3)
          throw new FirnError('E_EVIDENCE_MALFORMED', 'DER: too many elements', { details: { offset: q } });
        const part = derRead(der, q, entry.end);
        if (k === 0) serial = part;
        q = part.end;
      }
      revoked.add(integerHex(der, derExpect(serial, 0x02, 'revoked serial')));
      p = entry.end;
    }
  }
  const signature = ecdsaSignature(
    der,
    derExpect(algN, 0x30, 'algorithm'),
    derExpect(sigN, 0x03, 'signature'),
    'CRL',
  );
  return { der, tbs: derElement(der, tbsNode), issuer, thisUpdate, nextUpdate, revoked, signature };
}

/** ECDSA-SHA256 verify of a DER signature; any malformed input counts as a bad signature. */
export function ecdsaVerifyDer(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return nodeVerify('sha256', data, key, signature);
  } catch {
    return false;
  }
}

/** ECDSA-SHA256 verify of a raw r||s (64-byte) signature, the form Intel uses in quotes and JSON. */
export function ecdsaVerifyRaw(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return nodeVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/**
 * ECDSA-SHA256 verify on libuv's thread pool (node:crypto's callback form): DER signatures when
 * `dsaEncoding` is 'der', raw r||s (64 bytes) when 'ieee-p1363'. Resolves false on any failure,
 * never rejects. The data and signature are copied when the job is queued, so later changes to
 * the caller's buffers do not affect the result.
 */
export function ecdsaVerifyOnPool(
  key: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
  dsaEncoding: 'der' | 'ieee-p1363',
): boolean | Promise<boolean> {
  if (dsaEncoding === 'ieee-p1363' && signature.length !== 64) return false;
  return new Promise<boolean>((resolve) => {
    try {
      nodeVerify('sha256', data, { key, dsaEncoding }, signature, (err, ok) => resolve(err === null && ok));
    } catch {
      resolve(false);
    }
  });
}

/** Import a raw 64-byte P-256 point (x||y), as the quote's attestation key is stored. */
export function p256RawKey(xy: Uint8Array): KeyObject {
  if (xy.length !== 64) throw malformed('attestation key must be 64 bytes');
  try {
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: Buffer.from(xy.subarray(0, 32)).toString('base64url'),
        y: Buffer.from(xy.subarray(32)).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch (e) {
    throw new FirnError('E_EVIDENCE_SIGNATURE', 'attestation key is not a valid P-256 point', { cause: e });
  }
}

const PEM_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END = '-----END CERTIFICATE-----';
/** A PEM body: base64 characters and JavaScript's \s whitespace (dropped before decoding). */
const PEM_BODY = /^[A-Za-z0-9+/=\s]+$/;
const WS_RUNS = /\s+/g;
/** A PEM body whose only whitespace is line breaks. */
const PEM_BODY_LINES = /^[A-Za-z0-9+/=\r\n]+$/;

/**
 * Split PEM text into DER certificates, in order; at most MAX_CHAIN_CERTS. A block is
 * `-----BEGIN CERTIFICATE-----`, a non-empty body of base64 characters and whitespace, and
 * `-----END CERTIFICATE-----`; anything else between blocks (or a block whose body holds another
 * character) is skipped. Errors: E_EVIDENCE_MALFORMED for text over the size cap, more than
 * MAX_CHAIN_CERTS blocks, or none.
 */
export function pemCertificates(text: string, what: string): Uint8Array[] {
  if (text.length > MAX_CHAIN_CERTS * MAX_CERT_BYTES * 2) throw malformed(`${what}: PEM text too large`);
  const out: Uint8Array[] = [];
  let from = 0;
  // The first END marker after the current BEGIN; reused until passed, so the scan stays linear.
  let end = -1;
  for (;;) {
    const begin = text.indexOf(PEM_BEGIN, from);
    if (begin < 0) break;
    const bodyStart = begin + PEM_BEGIN.length;
    if (end < bodyStart) {
      end = text.indexOf(PEM_END, bodyStart);
      if (end < 0) break;
    }
    // The body runs to that END marker and must hold nothing else (else try the next BEGIN).
    const body = text.slice(bodyStart, end);
    // Line breaks only (every PEM Intel serves): Node's base64 decoder skips them, so the body
    // decodes as is; other whitespace is removed first, as it always was (pem.test.ts compares).
    const plain = PEM_BODY_LINES.test(body);
    if (!plain && !PEM_BODY.test(body)) {
      from = begin + 1;
      continue;
    }
    if (out.length >= MAX_CHAIN_CERTS) throw malformed(`${what}: more than ${MAX_CHAIN_CERTS} certificates`);
    out.push(new Uint8Array(Buffer.from(plain ? body : body.replace(WS_RUNS, ''), 'base64')));
    from = end + PEM_END.length;
  }
  if (out.length === 0) throw malformed(`${what}: no certificate found`);
  return out;
}

/**
 * Certificates from certification data: PEM text, or (as some generators write it) DER
 * certificates back to back. A root-first chain is turned leaf-first.
 */
export function chainCertificates(data: Uint8Array, what: string): Uint8Array[] {
  return leafFirst(chainCertificatesAsGiven(data, what));
}

/** chainCertificates without the reordering: the certificates in the order the data holds them. */
export function chainCertificatesAsGiven(data: Uint8Array, what: string): Uint8Array[] {
  let out: Uint8Array[];
  if (data[0] === 0x30) {
    out = [];
    let p = 0;
    while (p < data.length && data[p] === 0x30) {
      if (out.length >= MAX_CHAIN_CERTS)
        throw malformed(`${what}: more than ${MAX_CHAIN_CERTS} certificates`);
      const n = derRead(data, p);
      // A copy: parsed certificates are cached, and must not alias bytes the caller may reuse.
      out.push(data.slice(p, n.end));
      p = n.end;
    }
    if (data.subarray(p).some((x) => x !== 0))
      throw malformed(`${what}: trailing bytes after the certificates`);
  } else
    out = pemCertificates(Buffer.from(data.buffer, data.byteOffset, data.length).toString('latin1'), what);
  return out;
}

/** Reverse a chain given root first (its first certificate self-issued); leave others alone. */
export function leafFirst(ders: Uint8Array[]): Uint8Array[] {
  if (ders.length < 2) return ders;
  const first = parseCertificate(ders[0]!);
  return Buffer.from(first.issuer).equals(Buffer.from(first.subject)) ? [...ders].reverse() : ders;
}

/** Accept a trust anchor as DER or PEM bytes. */
export function rootDer(bytes: Uint8Array): Uint8Array {
  // A copy: roots are parsed and cached, and must not alias bytes the caller may change.
  if (bytes[0] === 0x30) return bytes.slice();
  const text = Buffer.from(bytes).toString('latin1');
  const certs = pemCertificates(text, 'root');
  if (certs.length !== 1) throw new FirnError('E_INVALID_INPUT', 'a root must be exactly one certificate');
  return certs[0]!;
}
