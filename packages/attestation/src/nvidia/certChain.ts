import { type KeyObject, X509Certificate } from 'node:crypto';
import { bytesEqual, FirnError } from '@firn/core';
import * as asn1js from 'asn1js';

export const MAX_CHAIN_CERTS = 10;
export const MAX_CERT_BYTES = 16 * 1024;
/** TCG DICE TcbInfo extension (TCG DICE Attestation Architecture §6.1.1). */
export const OID_TCG_DICE_TCB_INFO = '2.23.133.5.4.1';

export class CertificateFormatError extends FirnError {
  override readonly name = 'CertificateFormatError';
  constructor(message: string) {
    super('E_EVIDENCE_MALFORMED', message);
  }
}

const PEM_RE = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;

/** Split PEM text into DER certificates (count- and size-capped). */
export function pemToDerList(pem: string): Uint8Array[] {
  if (pem.length > MAX_CHAIN_CERTS * MAX_CERT_BYTES * 2)
    throw new CertificateFormatError('certificate chain too large');
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(PEM_RE)) {
    if (out.length >= MAX_CHAIN_CERTS) throw new CertificateFormatError('too many certificates in chain');
    const der = new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
    if (der.length === 0 || der.length > MAX_CERT_BYTES)
      throw new CertificateFormatError('certificate size out of range');
    out.push(der);
  }
  if (out.length === 0) throw new CertificateFormatError('no certificate in PEM text');
  return out;
}

/** Accept a trust anchor as DER or PEM bytes. */
export function anchorToDer(anchor: Uint8Array): Uint8Array {
  const head = Buffer.from(anchor.subarray(0, 11)).toString('latin1');
  if (head === '-----BEGIN ') {
    const list = pemToDerList(Buffer.from(anchor).toString('latin1'));
    if (list.length !== 1) throw new CertificateFormatError('a trust anchor must be one certificate');
    return list[0]!;
  }
  return anchor;
}

export function parseCert(der: Uint8Array): X509Certificate {
  let c: X509Certificate;
  try {
    c = new X509Certificate(der);
  } catch (e) {
    throw new CertificateFormatError(`certificate does not parse: ${(e as Error).message}`);
  }
  // node parses the key lazily: a malformed SubjectPublicKeyInfo would otherwise throw an
  // untyped OpenSSL error later, from publicKey or verify. Decode it now, typed.
  publicKeyOf(c);
  return c;
}

/** The certificate's public key; a key that does not decode is a CertificateFormatError. */
export function publicKeyOf(c: X509Certificate): KeyObject {
  try {
    return c.publicKey;
  } catch (e) {
    throw new CertificateFormatError(`certificate public key does not decode: ${(e as Error).message}`);
  }
}

/** X509Certificate.verify, with a key or signature that does not decode reported as false. */
function signedBy(c: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return c.verify(publicKeyOf(issuer));
  } catch (e) {
    if (e instanceof CertificateFormatError) throw e;
    return false;
  }
}

export interface ChainResult {
  /** Signatures, issuer names, CA flags and validity at `now` all hold, ending at a given anchor. */
  valid: boolean;
  /** Index into the anchors list of the anchor the chain ends at (only when signatures hold). */
  anchorIndex: number | undefined;
  /** Latest notBefore and earliest notAfter over the chain and its anchor, unix seconds. */
  notBefore: number;
  notAfter: number;
  /** Why the chain is not valid (empty when it is). */
  problems: string[];
}

function seconds(s: string): number {
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new CertificateFormatError('certificate has an unreadable validity date');
  return Math.floor(t / 1000);
}

/**
 * Check a leaf-first chain to one of the given anchors at time `now`: each certificate is signed
 * by the next, issuers are CAs, every certificate (anchor included) is within its validity window,
 * and the chain ends at an anchor (either included as the last element or as the last one's
 * issuer). It does not check revocation (see ocsp.ts) or name constraints and policies.
 */
export function verifyCertChain(
  chainDer: readonly Uint8Array[],
  anchors: readonly Uint8Array[],
  now: number,
): ChainResult {
  if (chainDer.length === 0) throw new CertificateFormatError('empty certificate chain');
  if (chainDer.length > MAX_CHAIN_CERTS) throw new CertificateFormatError('too many certificates in chain');
  const certs = chainDer.map(parseCert);
  const anchorDers = anchors.map(anchorToDer);
  const anchorCerts = anchorDers.map(parseCert);
  const problems: string[] = [];

  // Find the anchor: the last certificate itself, or the issuer of the last certificate.
  const last = certs[certs.length - 1]!;
  const lastDer = chainDer[chainDer.length - 1]!;
  let anchorIndex = anchorDers.findIndex((a) => bytesEqual(a, lastDer));
  const path = [...certs];
  if (anchorIndex < 0) {
    anchorIndex = anchorCerts.findIndex((a) => last.checkIssued(a) && signedBy(last, a));
    if (anchorIndex >= 0) path.push(anchorCerts[anchorIndex]!);
  }
  if (anchorIndex < 0) problems.push('chain does not end at a trusted root');

  for (let i = 0; i + 1 < path.length; i++) {
    const c = path[i]!;
    const issuer = path[i + 1]!;
    if (!c.checkIssued(issuer)) problems.push(`certificate ${i} is not issued by certificate ${i + 1}`);
    else if (!signedBy(c, issuer)) problems.push(`certificate ${i} signature does not verify`);
    if (!issuer.ca) problems.push(`certificate ${i + 1} is not a CA`);
  }
  const top = path[path.length - 1]!;
  if (anchorIndex >= 0 && !signedBy(top, top)) problems.push('root is not self-signed');

  let notBefore = 0;
  let notAfter = Number.MAX_SAFE_INTEGER;
  path.forEach((c, i) => {
    const nb = seconds(c.validFrom);
    const na = seconds(c.validTo);
    notBefore = Math.max(notBefore, nb);
    notAfter = Math.min(notAfter, na);
    if (now < nb) problems.push(`certificate ${i} is not yet valid`);
    if (now > na) problems.push(`certificate ${i} has expired`);
  });
  const signaturesHold = !problems.some(
    (p) => p.includes('signature') || p.includes('issued') || p.includes('root'),
  );
  return {
    valid: problems.length === 0,
    anchorIndex: anchorIndex >= 0 && signaturesHold ? anchorIndex : undefined,
    notBefore,
    notAfter,
    problems,
  };
}

/** The TCG DICE TcbInfo extension as NVIDIA's Blackwell device certificates name it (tcg-dice-TcbInfo, alias). */
export const OID_TCG_DICE_TCB_INFO_ALIAS = '2.23.133.5.4.1.1';
/** The extensions NVIDIA's verifiers read the FWID from, in their order (cc_admin_utils.extract_fwid). */
const FWID_EXTENSION_OIDS = [OID_TCG_DICE_TCB_INFO_ALIAS, OID_TCG_DICE_TCB_INFO];
const FWID_LEN = 48;
const MAX_EXTENSIONS = 64;

/** How the FWID sits in the attestation leaf of each GPU architecture NVIDIA's verifier knows. */
export type FwidLayout = 'hopper' | 'blackwell';

/**
 * The FWID layout of an architecture name (the one the device's chain names, see deviceModelOf;
 * never the host's `arch` label), or undefined for an
 * architecture whose layout is not known (then no FWID can be matched: fail closed).
 * Hopper (and NVSwitch LSxx): the last 48 bytes of the extension value (a first-edition DICE structure ending in the
 * SHA-384 FWID). Blackwell: the first FWID of the DiceTcbInfo `fwids` list ([6]), the extension
 * being under 2.23.133.5.4.1.1. Both follow NVIDIA's nvtrust verifier (cc_admin_utils.extract_fwid)
 * and attestation-sdk (x509_cert_chain.cpp), which try both OIDs for either architecture.
 */
export function fwidLayout(arch: string): FwidLayout | undefined {
  const a = arch.trim().toUpperCase();
  // NVIDIA's NVSwitch verifier (nvswitch_admin_utils.extract_fwid) reads the tail, as for Hopper.
  if (a === 'HOPPER' || /^LS\d+$/.test(a)) return 'hopper';
  if (a === 'BLACKWELL') return 'blackwell';
  return undefined;
}

function extensions(der: Uint8Array): asn1js.Sequence[] {
  const cert = asn1js.fromBER(der);
  if (cert.offset === -1) throw new CertificateFormatError('certificate is not DER');
  const top = cert.result;
  if (!(top instanceof asn1js.Sequence)) throw new CertificateFormatError('certificate is not a SEQUENCE');
  const tbs = top.valueBlock.value[0];
  if (!(tbs instanceof asn1js.Sequence)) throw new CertificateFormatError('certificate has no TBS');
  // Extensions are the [3] EXPLICIT element of the TBSCertificate.
  const extsTagged = tbs.valueBlock.value.find((v) => v.idBlock.tagClass === 3 && v.idBlock.tagNumber === 3);
  if (extsTagged === undefined) return [];
  if (!(extsTagged instanceof asn1js.Constructed)) throw new CertificateFormatError('extensions malformed');
  const exts = extsTagged.valueBlock.value[0];
  if (!(exts instanceof asn1js.Sequence)) throw new CertificateFormatError('extensions malformed');
  const list = exts.valueBlock.value;
  if (list.length > MAX_EXTENSIONS) throw new CertificateFormatError('too many certificate extensions');
  return list.map((e) => {
    if (!(e instanceof asn1js.Sequence)) throw new CertificateFormatError('extension is not a SEQUENCE');
    return e;
  });
}

function extensionValue(der: Uint8Array, oids: readonly string[]): Uint8Array | undefined {
  const found = new Map<string, Uint8Array>();
  for (const ext of extensions(der)) {
    const parts = ext.valueBlock.value;
    const oid = parts[0];
    if (!(oid instanceof asn1js.ObjectIdentifier)) throw new CertificateFormatError('extension has no OID');
    const id = oid.valueBlock.toString();
    if (!oids.includes(id)) continue;
    const octets = parts[parts.length - 1];
    if (!(octets instanceof asn1js.OctetString)) throw new CertificateFormatError('DICE extension malformed');
    found.set(id, new Uint8Array(octets.valueBlock.valueHexView));
  }
  for (const id of oids) {
    const v = found.get(id);
    if (v !== undefined) return v;
  }
  return undefined;
}

/**
 * The FWID an attestation leaf certificate carries for an architecture's layout (see fwidLayout),
 * or undefined when the certificate has no DICE TcbInfo extension. Parsing only; a malformed
 * certificate or extension throws CertificateFormatError (E_EVIDENCE_MALFORMED).
 */
export function certificateFwid(der: Uint8Array, layout: FwidLayout): Uint8Array | undefined {
  const value = extensionValue(der, FWID_EXTENSION_OIDS);
  if (value === undefined) return undefined;
  if (layout === 'hopper') {
    if (value.length < FWID_LEN) throw new CertificateFormatError('DICE extension is shorter than an FWID');
    return value.subarray(value.length - FWID_LEN);
  }
  return firstDiceFwid(value);
}

/**
 * DiceTcbInfo (TCG DICE Attestation Architecture §6.1.1): SEQUENCE of IMPLICIT-tagged optional
 * fields; [6] fwids is SEQUENCE OF FWID { hashAlg OID, digest OCTET STRING }. Returns fwids[0].
 */
function firstDiceFwid(value: Uint8Array): Uint8Array {
  const parsed = asn1js.fromBER(value);
  if (
    parsed.offset === -1 ||
    parsed.offset !== value.byteLength ||
    !(parsed.result instanceof asn1js.Sequence)
  )
    throw new CertificateFormatError('DiceTcbInfo is not a DER SEQUENCE');
  const fwids = parsed.result.valueBlock.value.find(
    (v) => v.idBlock.tagClass === 3 && v.idBlock.tagNumber === 6,
  );
  if (!(fwids instanceof asn1js.Constructed))
    throw new CertificateFormatError('DiceTcbInfo has no fwids list');
  const first = fwids.valueBlock.value[0];
  if (!(first instanceof asn1js.Sequence))
    throw new CertificateFormatError('DiceTcbInfo fwids list is empty');
  const [alg, digest] = first.valueBlock.value;
  if (
    !(alg instanceof asn1js.ObjectIdentifier) ||
    !FWID_HASH_OIDS.has(alg.valueBlock.toString()) ||
    !(digest instanceof asn1js.OctetString)
  )
    throw new CertificateFormatError('DiceTcbInfo FWID is not {hash OID, digest}');
  const d = new Uint8Array(digest.valueBlock.valueHexView);
  if (d.length !== FWID_LEN) throw new CertificateFormatError('DiceTcbInfo FWID is not a SHA-384 digest');
  return d;
}

/** Hash algorithm OIDs that may label an FWID (SHA-256/384/512). */
const FWID_HASH_OIDS = new Set([
  '2.16.840.1.101.3.4.2.1',
  '2.16.840.1.101.3.4.2.2',
  '2.16.840.1.101.3.4.2.3',
]);
