import { X509Certificate } from 'node:crypto';
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
  try {
    return new X509Certificate(der);
  } catch (e) {
    throw new CertificateFormatError(`certificate does not parse: ${(e as Error).message}`);
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
    anchorIndex = anchorCerts.findIndex((a) => last.checkIssued(a) && last.verify(a.publicKey));
    if (anchorIndex >= 0) path.push(anchorCerts[anchorIndex]!);
  }
  if (anchorIndex < 0) problems.push('chain does not end at a trusted root');

  for (let i = 0; i + 1 < path.length; i++) {
    const c = path[i]!;
    const issuer = path[i + 1]!;
    if (!c.checkIssued(issuer)) problems.push(`certificate ${i} is not issued by certificate ${i + 1}`);
    else if (!c.verify(issuer.publicKey)) problems.push(`certificate ${i} signature does not verify`);
    if (!issuer.ca) problems.push(`certificate ${i + 1} is not a CA`);
  }
  const top = path[path.length - 1]!;
  if (anchorIndex >= 0 && !top.verify(top.publicKey)) problems.push('root is not self-signed');

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

/**
 * The FWID digests in a certificate's TCG DICE TcbInfo extension, or an empty list when the
 * certificate has none. Parsing only.
 */
export function certificateFwids(der: Uint8Array): Uint8Array[] {
  const cert = asn1js.fromBER(der);
  if (cert.offset === -1) throw new CertificateFormatError('certificate is not DER');
  const tbs = (cert.result as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence | undefined;
  if (!tbs) throw new CertificateFormatError('certificate has no TBS');
  // Extensions are the [3] EXPLICIT element of the TBSCertificate.
  const extsTagged = tbs.valueBlock.value.find(
    (v) => v.idBlock.tagClass === 3 && v.idBlock.tagNumber === 3,
  ) as asn1js.Constructed | undefined;
  const exts = extsTagged?.valueBlock.value[0] as asn1js.Sequence | undefined;
  if (!exts) return [];
  for (const ext of exts.valueBlock.value as asn1js.Sequence[]) {
    const parts = ext.valueBlock.value;
    const oid = parts[0];
    if (!(oid instanceof asn1js.ObjectIdentifier) || oid.valueBlock.toString() !== OID_TCG_DICE_TCB_INFO)
      continue;
    const octets = parts[parts.length - 1];
    if (!(octets instanceof asn1js.OctetString))
      throw new CertificateFormatError('TcbInfo extension malformed');
    return parseTcbInfoFwids(octets.valueBlock.valueHexView);
  }
  return [];
}

/** Hash algorithm OIDs that may label an FWID (SHA-256/384/512). */
const FWID_HASH_OIDS = new Set([
  '2.16.840.1.101.3.4.2.1',
  '2.16.840.1.101.3.4.2.2',
  '2.16.840.1.101.3.4.2.3',
]);

/**
 * Collect FWID digests (SEQUENCE { hashAlg OID, digest OCTET STRING }) from the extension value.
 * NVIDIA devices use the first-edition TCG DICE layout (SEQUENCE { version, deviceKey SPKI, fwid });
 * the current TcbInfo layout nests them under [6]. Both are found by the same walk.
 */
function parseTcbInfoFwids(value: Uint8Array): Uint8Array[] {
  const parsed = asn1js.fromBER(value);
  if (parsed.offset === -1) throw new CertificateFormatError('TcbInfo extension is not DER');
  const out: Uint8Array[] = [];
  const walk = (node: asn1js.AsnType, depth: number): void => {
    if (depth > 6 || !(node instanceof asn1js.Constructed)) return;
    const kids = node.valueBlock.value;
    const [a, b] = kids;
    if (
      kids.length === 2 &&
      a instanceof asn1js.ObjectIdentifier &&
      b instanceof asn1js.OctetString &&
      FWID_HASH_OIDS.has(a.valueBlock.toString())
    ) {
      out.push(new Uint8Array(b.valueBlock.valueHexView));
      return;
    }
    for (const k of kids) walk(k, depth + 1);
  };
  walk(parsed.result, 0);
  return out;
}
