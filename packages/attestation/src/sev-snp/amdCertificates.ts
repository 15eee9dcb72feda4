import { constants, createPublicKey, type KeyObject, verify as nodeVerify } from 'node:crypto';
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
  derSmallInt,
  derTime,
} from '../dcap/der.ts';
import type { SevSnpProduct } from './sevSnpReport.ts';

/** AMD's certificates (ARK, ASK, VCEK, VLEK) are under 3 KiB; anything past this is refused unread. */
export const MAX_AMD_CERT_BYTES = 8 * 1024;
/** A KDS CRL lists revoked ASKs/VCEKs of one product; it is a few KiB. */
export const MAX_AMD_CRL_BYTES = 512 * 1024;

const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
const OID_SHA384 = '2.16.840.1.101.3.4.2.2';
const OID_MGF1 = '1.2.840.113549.1.1.8';

/** VCEK/VLEK extensions (AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface Specification", 57230). */
export const AMD_OID = {
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSpl: '1.3.6.1.4.1.3704.1.3.1',
  teeSpl: '1.3.6.1.4.1.3704.1.3.2',
  snpSpl: '1.3.6.1.4.1.3704.1.3.3',
  ucodeSpl: '1.3.6.1.4.1.3704.1.3.8',
  fmcSpl: '1.3.6.1.4.1.3704.1.3.9',
  hwId: '1.3.6.1.4.1.3704.1.4',
  cspId: '1.3.6.1.4.1.3704.1.5',
} as const;

/** An AMD certificate, parsed (structure only: no signature or time is checked here). */
export interface AmdCertificate {
  der: Uint8Array;
  tbs: Uint8Array;
  serial: string;
  issuer: Uint8Array;
  subject: Uint8Array;
  /** The subject's common name (e.g. "ARK-Milan", "SEV-Milan", "SEV-VLEK-Genoa", "SEV-VCEK"). */
  commonName: string;
  notBefore: number;
  notAfter: number;
  /** Raw extension values (extnValue contents) by OID. */
  extensions: Map<string, Uint8Array>;
  signature: Uint8Array;
  publicKey: KeyObject;
}

export class AmdCertificateError extends FirnError {
  override readonly name = 'AmdCertificateError';
  constructor(message: string) {
    super('E_EVIDENCE_MALFORMED', message);
  }
}

const chainErr = (m: string) => new FirnError('E_EVIDENCE_CHAIN', m);

/** The RSASSA-PSS parameters AMD uses everywhere: SHA-384, MGF1-SHA-384, 48-byte salt. */
function checkPssParams(b: Uint8Array, alg: DerNode, what: string): void {
  const parts = derChildren(b, derExpect(alg, 0x30, `${what} signature algorithm`), 2);
  if (derOid(b, derExpect(parts[0], 0x06, 'algorithm')) !== OID_RSASSA_PSS)
    throw chainErr(`${what} is not signed with RSASSA-PSS, as AMD signs`);
  const params = derChildren(b, derExpect(parts[1], 0x30, 'RSASSA-PSS parameters'), 4);
  let hash: string | undefined;
  let mgfHash: string | undefined;
  let salt: number | undefined;
  for (const p of params) {
    const inner = derRead(b, p.contentStart, p.end);
    if (p.tag === 0xa0) hash = derOid(b, derChildren(b, derExpect(inner, 0x30, 'hash'), 2)[0]!);
    else if (p.tag === 0xa1) {
      const m = derChildren(b, derExpect(inner, 0x30, 'mask generation'), 2);
      if (derOid(b, derExpect(m[0], 0x06, 'MGF')) !== OID_MGF1)
        throw chainErr(`${what}: mask generation is not MGF1`);
      mgfHash = derOid(b, derChildren(b, derExpect(m[1], 0x30, 'MGF1 hash'), 2)[0]!);
    } else if (p.tag === 0xa2) salt = derSmallInt(b, inner, 'salt length');
    else if (p.tag === 0xa3) {
      if (derSmallInt(b, inner, 'trailer field') !== 1) throw chainErr(`${what}: trailer field is not 1`);
    } else throw new AmdCertificateError(`${what}: unknown RSASSA-PSS parameter`);
  }
  if (hash !== OID_SHA384 || mgfHash !== OID_SHA384 || salt !== 48)
    throw chainErr(`${what} is not signed with RSASSA-PSS SHA-384, MGF1-SHA-384, salt 48`);
}

/** The CN of a Name, or '' when there is none. */
function commonNameOf(b: Uint8Array, name: DerNode): string {
  for (const rdn of derChildren(b, derExpect(name, 0x30, 'name'), 32))
    for (const atv of derChildren(b, derExpect(rdn, 0x31, 'RDN'), 8)) {
      const [t, v] = derChildren(b, derExpect(atv, 0x30, 'attribute'), 2);
      if (derOid(b, derExpect(t, 0x06, 'attribute type')) === '2.5.4.3' && v !== undefined)
        return Buffer.from(derContent(b, v)).toString('utf8');
    }
  return '';
}

/** Parse an AMD certificate from DER (size-capped). Errors: E_EVIDENCE_MALFORMED, E_EVIDENCE_CHAIN (not RSA-PSS). */
export function parseAmdCertificate(der: Uint8Array, what = 'certificate'): AmdCertificate {
  if (der.length > MAX_AMD_CERT_BYTES)
    throw new AmdCertificateError(`${what} is ${der.length} bytes, over ${MAX_AMD_CERT_BYTES}`);
  const b = new Uint8Array(der);
  const root = derRoot(b, 0x30, what);
  const [tbsN, algN, sigN, ...rest] = derChildren(b, root, 4);
  if (rest.length > 0) throw new AmdCertificateError(`${what} has extra elements`);
  const tbsNode = derExpect(tbsN, 0x30, 'tbsCertificate');
  const f = derChildren(b, tbsNode, 16);
  let i = 0;
  if (f[0]?.tag === 0xa0) i++;
  const serialNode = derExpect(f[i++], 0x02, 'serial');
  const serial = Buffer.from(derContent(b, serialNode)).toString('hex').replace(/^0+/, '') || '0';
  const innerAlg = derExpect(f[i++], 0x30, 'signature algorithm');
  const issuer = derElement(b, derExpect(f[i++], 0x30, 'issuer'));
  const validity = derChildren(b, derExpect(f[i++], 0x30, 'validity'), 2);
  if (validity.length !== 2) throw new AmdCertificateError(`${what}: validity must hold two times`);
  const subjectNode = derExpect(f[i++], 0x30, 'subject');
  const spki = derElement(b, derExpect(f[i++], 0x30, 'subjectPublicKeyInfo'));
  const extensions = new Map<string, Uint8Array>();
  for (; i < f.length; i++) {
    const n = f[i]!;
    if (n.tag !== 0xa3) continue;
    const seq = derRead(b, n.contentStart, n.end);
    for (const e of derChildren(b, derExpect(seq, 0x30, 'extensions'), 64)) {
      const parts = derChildren(b, derExpect(e, 0x30, 'extension'), 3);
      const oid = derOid(b, derExpect(parts[0], 0x06, 'extension id'));
      const vi = parts[1]?.tag === 0x01 ? 2 : 1;
      if (extensions.has(oid)) throw new AmdCertificateError(`${what}: duplicate extension ${oid}`);
      extensions.set(oid, derContent(b, derExpect(parts[vi], 0x04, 'extension value')));
    }
  }
  if (
    !Buffer.from(derElement(b, innerAlg)).equals(
      Buffer.from(derElement(b, derExpect(algN, 0x30, 'algorithm'))),
    )
  )
    throw new AmdCertificateError(`${what}: signature algorithms disagree`);
  checkPssParams(b, algN!, what);
  const bits = derContent(b, derExpect(sigN, 0x03, 'signature'));
  if (bits.length < 2 || bits[0] !== 0) throw new AmdCertificateError(`${what}: bad signature bit string`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    throw new AmdCertificateError(`${what}: public key does not decode`);
  }
  return {
    der: b,
    tbs: derElement(b, tbsNode),
    serial,
    issuer,
    subject: derElement(b, subjectNode),
    commonName: commonNameOf(b, subjectNode),
    notBefore: derTime(b, validity[0]!, 'notBefore'),
    notAfter: derTime(b, validity[1]!, 'notAfter'),
    extensions,
    signature: bits.subarray(1),
    publicKey,
  };
}

/** RSASSA-PSS SHA-384 (salt 48) over `data` by an RSA key; false for a wrong key type or signature. */
export function rsaPssVerify(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') return false;
  try {
    return nodeVerify(
      'sha384',
      data,
      { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 },
      signature,
    );
  } catch {
    return false;
  }
}

/**
 * Check that `cert` is signed by `issuer` (names chain, RSA-PSS signature holds) and that both are
 * valid at `now`. Errors: E_EVIDENCE_CHAIN (name or signature), E_EVIDENCE_EXPIRED (validity).
 */
export function checkIssuedBy(cert: AmdCertificate, issuer: AmdCertificate, now: number, what: string): void {
  if (!Buffer.from(cert.issuer).equals(Buffer.from(issuer.subject)))
    throw chainErr(`${what} was not issued by ${issuer.commonName || 'the given issuer'}`);
  if (!rsaPssVerify(issuer.publicKey, cert.tbs, cert.signature))
    throw chainErr(`${what} signature does not verify with ${issuer.commonName || 'its issuer'}'s key`);
  checkValidAt(cert, now, what);
}

/** E_EVIDENCE_EXPIRED when `now` is outside the certificate's validity. */
export function checkValidAt(cert: AmdCertificate, now: number, what: string): void {
  if (now < cert.notBefore)
    throw new FirnError(
      'E_EVIDENCE_EXPIRED',
      `${what} is not valid before ${new Date(cert.notBefore * 1000).toISOString()}`,
    );
  if (now > cert.notAfter)
    throw new FirnError(
      'E_EVIDENCE_EXPIRED',
      `${what} expired at ${new Date(cert.notAfter * 1000).toISOString()}`,
    );
}

/** The TCB and identity a VCEK or VLEK certifies. */
export interface VekExtensions {
  /** "Milan-B0", "Genoa", "Turin", ... (productName extension). */
  productName: string;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin and later. */
  fmc?: number;
  /** VCEK only: the chip id it certifies (64 bytes Milan/Genoa, 8 bytes Turin). */
  hwId?: Uint8Array;
  /** VLEK only: the cloud provider it was issued to. */
  cspId?: string;
}

/** A small INTEGER encoded as DER in an extension value. */
function splOf(ext: Uint8Array | undefined, name: string): number {
  if (ext === undefined) throw new AmdCertificateError(`certificate lacks the ${name} extension`);
  const n = derRead(ext, 0);
  if (n.end !== ext.length) throw new AmdCertificateError(`${name} extension has trailing bytes`);
  const v = derSmallInt(ext, n, name);
  if (v > 255) throw new AmdCertificateError(`${name} is over 255`);
  return v;
}

function stringOf(ext: Uint8Array, name: string): string {
  const n = derRead(ext, 0);
  // IA5String as AMD writes it; UTF8String accepted too.
  if ((n.tag !== 0x16 && n.tag !== 0x0c) || n.end !== ext.length)
    throw new AmdCertificateError(`${name} extension is not a string`);
  return Buffer.from(derContent(ext, n)).toString('latin1');
}

/**
 * The VCEK/VLEK TCB extensions (blSPL, teeSPL, snpSPL, ucodeSPL; fmcSPL on Turin), productName,
 * hwID (raw bytes, as the KDS writes it) and csp_id. Errors: E_EVIDENCE_MALFORMED.
 */
export function parseVekExtensions(cert: AmdCertificate, product: SevSnpProduct): VekExtensions {
  const x = cert.extensions;
  const pn = x.get(AMD_OID.productName);
  if (pn === undefined) throw new AmdCertificateError('certificate lacks the productName extension');
  const out: VekExtensions = {
    productName: stringOf(pn, 'productName'),
    bootloader: splOf(x.get(AMD_OID.blSpl), 'blSPL'),
    tee: splOf(x.get(AMD_OID.teeSpl), 'teeSPL'),
    snp: splOf(x.get(AMD_OID.snpSpl), 'snpSPL'),
    microcode: splOf(x.get(AMD_OID.ucodeSpl), 'ucodeSPL'),
  };
  if (product === 'Turin') out.fmc = splOf(x.get(AMD_OID.fmcSpl), 'fmcSPL');
  const hw = x.get(AMD_OID.hwId);
  if (hw !== undefined) {
    // The KDS writes the raw chip id as the extension value; an OCTET STRING wrapper is unwrapped.
    let id = hw;
    if (hw.length === 66 && hw[0] === 0x04 && hw[1] === 0x40) id = hw.subarray(2);
    if (id.length !== 64 && id.length !== 8) throw new AmdCertificateError('hwID must be 8 or 64 bytes');
    out.hwId = id;
  }
  const csp = x.get(AMD_OID.cspId);
  if (csp !== undefined) out.cspId = stringOf(csp, 'csp_id');
  return out;
}

/** True when the key is an EC P-384 key (what VCEKs and VLEKs are). */
export function isP384Key(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1';
}

/** A CRL as the KDS serves it (`/vcek/v1/{product}/crl`), signed by the ARK with RSA-PSS. */
export interface AmdCrl {
  der: Uint8Array;
  tbs: Uint8Array;
  issuer: Uint8Array;
  thisUpdate: number;
  nextUpdate: number;
  /** Revoked serial numbers, lowercase hex without leading zeros. */
  revoked: Set<string>;
  signature: Uint8Array;
}

/** Parse a KDS CRL (size-capped). Errors: E_TOO_LARGE, E_EVIDENCE_MALFORMED, E_EVIDENCE_CHAIN (not RSA-PSS). */
export function parseAmdCrl(der: Uint8Array): AmdCrl {
  if (der.length > MAX_AMD_CRL_BYTES)
    throw new FirnError('E_TOO_LARGE', `CRL is ${der.length} bytes, over ${MAX_AMD_CRL_BYTES}`);
  const b = new Uint8Array(der);
  const root = derRoot(b, 0x30, 'CRL');
  const [tbsN, algN, sigN, ...rest] = derChildren(b, root, 4);
  if (rest.length > 0) throw new AmdCertificateError('CRL has extra elements');
  checkPssParams(b, algN!, 'CRL');
  const tbsNode = derExpect(tbsN, 0x30, 'tbsCertList');
  const f = derChildren(b, tbsNode, 16);
  let i = 0;
  if (f[0]?.tag === 0x02) i++;
  derExpect(f[i++], 0x30, 'CRL signature algorithm');
  const issuer = derElement(b, derExpect(f[i++], 0x30, 'CRL issuer'));
  const thisUpdate = derTime(b, f[i++]!, 'thisUpdate');
  const nu = f[i];
  if (nu === undefined || (nu.tag !== 0x17 && nu.tag !== 0x18))
    throw new AmdCertificateError('CRL has no nextUpdate');
  const nextUpdate = derTime(b, nu, 'nextUpdate');
  i++;
  const revoked = new Set<string>();
  if (f[i]?.tag === 0x30) {
    for (const entry of derChildren(b, f[i]!, 100_000)) {
      const [sn] = derChildren(b, derExpect(entry, 0x30, 'revoked entry'), 3);
      const c = derContent(b, derExpect(sn, 0x02, 'revoked serial'));
      revoked.add(Buffer.from(c).toString('hex').replace(/^0+/, '') || '0');
    }
  }
  const bits = derContent(b, derExpect(sigN, 0x03, 'CRL signature'));
  if (bits.length < 2 || bits[0] !== 0) throw new AmdCertificateError('CRL: bad signature bit string');
  return {
    der: b,
    tbs: derElement(b, tbsNode),
    issuer,
    thisUpdate,
    nextUpdate,
    revoked,
    signature: bits.subarray(1),
  };
}

/** Check a CRL's issuer and RSA-PSS signature against the ARK. Errors: E_EVIDENCE_COLLATERAL. */
export function checkCrlSignedBy(crl: AmdCrl, ark: AmdCertificate): void {
  if (!Buffer.from(crl.issuer).equals(Buffer.from(ark.subject)))
    throw new FirnError('E_EVIDENCE_COLLATERAL', `CRL was not issued by ${ark.commonName}`);
  if (!rsaPssVerify(ark.publicKey, crl.tbs, crl.signature))
    throw new FirnError(
      'E_EVIDENCE_COLLATERAL',
      `CRL signature does not verify with ${ark.commonName}'s key`,
    );
}

/** DER certificates from PEM text or one DER certificate (count- and size-capped). */
export function certificatesFrom(input: Uint8Array | string, what: string, max = 4): Uint8Array[] {
  const bytes = typeof input === 'string' ? new Uint8Array(Buffer.from(input, 'latin1')) : input;
  if (bytes.length > max * MAX_AMD_CERT_BYTES * 2)
    throw new FirnError(
      'E_TOO_LARGE',
      `${what} is ${bytes.length} bytes, over ${max * MAX_AMD_CERT_BYTES * 2}`,
    );
  if (bytes[0] === 0x30) return [new Uint8Array(bytes)];
  const text = Buffer.from(bytes).toString('latin1');
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(
    /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g,
  )) {
    if (out.length >= max) throw new AmdCertificateError(`${what} holds more than ${max} certificates`);
    out.push(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
  }
  if (out.length === 0) throw new AmdCertificateError(`${what} holds no certificate (PEM or DER)`);
  return out;
}
