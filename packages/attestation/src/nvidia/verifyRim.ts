import { createPublicKey, verify as cryptoVerify, createHash, type KeyLike } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FirnError, TooLargeError } from '@firn/core';
import { DOMParser, type Element } from '@xmldom/xmldom';
import { C14nCanonicalization, SignedXml } from 'xml-crypto';
import { anchorToDer, pemToDerList, verifyCertChain } from './certChain.ts';
import { NVIDIA_RIM_ROOT_PEM } from './nvidiaRoots.ts';

export const MAX_RIM_BYTES = 1 << 20;
export const MAX_RIM_FILES = 512;
const MAX_RIM_MEASUREMENTS = 1024;
const MAX_ALTERNATIVES = 16;

const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const NS_XML = 'http://www.w3.org/XML/1998/namespace';
const ALG_C14N11 = 'http://www.w3.org/2006/12/xml-c14n11';
const ALG_ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const ALG_ECDSA_SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384';
const ALG_SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#sha384';

export class RimFormatError extends FirnError {
  override readonly name = 'RimFormatError';
  constructor(message: string) {
    super('E_EVIDENCE_MALFORMED', message);
  }
}

export interface RimMeasurement {
  /** 0-based, as in the RIM (SPDM block index - 1). */
  index: number;
  active: boolean;
  /** Accepted values (Hash0..HashN-1). */
  alternatives: Uint8Array[];
}

export interface ParsedRim {
  tagId: string;
  /** SoftwareIdentity name, e.g. "GH100". */
  product: string;
  /** The firmware version the RIM describes: driver "550.90.07" or VBIOS "96.00.9F.00.01". */
  version: string;
  kind: 'driver' | 'vbios';
  measurements: RimMeasurement[];
  /** Signer chain from KeyInfo, leaf first (DER). */
  signerChain: Uint8Array[];
}

export interface RimFacts extends ParsedRim {
  signatureValid: boolean;
  chainValid: boolean;
  chainProblems: string[];
  /** Validity window of the signer chain, unix seconds. */
  notBefore: number;
  notAfter: number;
  /**
   * The signer chain, leaf first, ending at the pinned root it verified to (the root included
   * even when KeyInfo omits it): what a revocation check (checkOcsp) asks about. Empty when the
   * chain does not reach a pinned root.
   */
  chainToRoot: Uint8Array[];
}

/** Parse a SWID-tag RIM without checking its signature (size-capped; DTDs refused). */
export function parseRim(xml: string): ParsedRim {
  const { doc } = parseDoc(xml);
  return extract(doc, signerChainOf(doc));
}

function parseDoc(xml: string): { doc: Element; signature: Element } {
  if (typeof xml !== 'string') throw new RimFormatError('RIM must be text');
  if (Buffer.byteLength(xml) > MAX_RIM_BYTES)
    throw new TooLargeError('RIM', Buffer.byteLength(xml), MAX_RIM_BYTES);
  // No DTD: it is never needed for a RIM and is the door to entity expansion.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new RimFormatError('RIM must not contain a DTD');
  let root: Element | null;
  try {
    root = new DOMParser({
      onError: (level, msg) => {
        if (level !== 'warning') throw new RimFormatError(`RIM is not well-formed XML: ${msg}`);
      },
    }).parseFromString(xml, 'text/xml').documentElement;
  } catch (e) {
    if (e instanceof RimFormatError) throw e;
    throw new RimFormatError('RIM is not well-formed XML');
  }
  if (root?.localName !== 'SoftwareIdentity') throw new RimFormatError('RIM root is not SoftwareIdentity');
  const sigs = root.getElementsByTagNameNS(NS_DSIG, 'Signature');
  if (sigs.length !== 1) throw new RimFormatError(`RIM must carry exactly one signature, has ${sigs.length}`);
  const signature = sigs.item(0)!;
  // An enveloped signature over URI="" must sit directly under the root it signs.
  if (signature.parentNode !== root) throw new RimFormatError('RIM signature is not a child of the root');
  return { doc: root, signature };
}

function signerChainOf(root: Element): Uint8Array[] {
  const certs = root.getElementsByTagNameNS(NS_DSIG, 'X509Certificate');
  const pems: string[] = [];
  for (let i = 0; i < certs.length; i++) {
    const b64 = (certs.item(i)!.textContent ?? '').replace(/\s+/g, '');
    pems.push(`-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----`);
  }
  if (pems.length === 0) throw new RimFormatError('RIM KeyInfo carries no certificate');
  return pemToDerList(pems.join('\n'));
}

function children(el: Element, localName: string): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling)
    if (n.nodeType === 1 && (n as Element).localName === localName) out.push(n as Element);
  return out;
}

function extract(root: Element, signerChain: Uint8Array[]): ParsedRim {
  const tagId = root.getAttribute('tagId') ?? '';
  const product = root.getAttribute('name') ?? '';
  const meta = children(root, 'Meta')[0];
  const version = meta?.getAttribute('colloquialVersion') ?? '';
  if (!tagId || !version) throw new RimFormatError('RIM lacks tagId or colloquialVersion');
  // VBIOS versions have five dotted hex groups (96.00.9F.00.01); driver versions are decimal.
  const kind = /^[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}$/.test(version) ? 'vbios' : 'driver';
  const payload = children(root, 'Payload')[0];
  if (!payload) throw new RimFormatError('RIM has no Payload');
  const measurements: RimMeasurement[] = [];
  const seen = new Set<number>();
  for (const res of children(payload, 'Resource')) {
    if (res.getAttribute('type') !== 'Measurement') continue;
    if (measurements.length >= MAX_RIM_MEASUREMENTS)
      throw new RimFormatError('RIM has too many measurements');
    const index = Number(res.getAttribute('index'));
    const n = Number(res.getAttribute('alternatives') ?? '0');
    if (!Number.isInteger(index) || index < 0 || index > 255)
      throw new RimFormatError('RIM measurement index invalid');
    if (!Number.isInteger(n) || n < 0 || n > MAX_ALTERNATIVES)
      throw new RimFormatError('RIM alternatives invalid');
    if (seen.has(index)) throw new RimFormatError(`RIM measurement index ${index} repeated`);
    seen.add(index);
    const alternatives: Uint8Array[] = [];
    for (let k = 0; k < n; k++) {
      // HashK lives in a digest-algorithm namespace whose prefix varies between RIMs.
      let hex: string | undefined;
      for (let a = 0; a < res.attributes.length; a++) {
        const attr = res.attributes.item(a)!;
        if (attr.localName === `Hash${k}`) hex = attr.value;
      }
      if (hex === undefined || !/^([0-9a-fA-F]{2})+$/.test(hex) || hex.length > 128)
        throw new RimFormatError(`RIM measurement ${index} Hash${k} missing or not hex`);
      alternatives.push(new Uint8Array(Buffer.from(hex, 'hex')));
    }
    const active = (res.getAttribute('active') ?? '').toLowerCase() === 'true';
    measurements.push({ index, active, alternatives });
  }
  return { tagId, product, version, kind, measurements, signerChain };
}

/** Canonical XML 1.1; see checkNoXmlAttrs for why the 1.0 algorithm yields the same octets here. */
class C14n11Canonicalization extends C14nCanonicalization {
  override getAlgorithmName(): string {
    return ALG_C14N11;
  }
}

class EcdsaSha384 {
  getAlgorithmName = (): string => ALG_ECDSA_SHA384;
  // XML-DSig ECDSA signatures are raw r||s (RFC 4050 §3.3), hence ieee-p1363.
  verifySignature = (material: string, key: KeyLike, signatureValue: string): boolean =>
    cryptoVerify(
      'sha384',
      Buffer.from(material, 'utf8'),
      { key: createPublicKey(key), dsaEncoding: 'ieee-p1363' },
      Buffer.from(signatureValue, 'base64'),
    );
  getSignature = (): string => {
    throw new RimFormatError('signing RIMs is not supported here');
  };
}

class Sha384 {
  getAlgorithmName = (): string => ALG_SHA384;
  getHash = (xml: string): string => createHash('sha384').update(xml, 'utf8').digest('base64');
}

/**
 * C14N 1.1 differs from 1.0 only in how xml:id and xml:base (and other xml: attributes) are
 * inherited from ancestors left out of a document subset. With no xml:-namespace attribute on the
 * root or the Signature element (the only ancestors SignedInfo and the enveloped document have),
 * both algorithms give the same octets; anything else is refused rather than guessed at.
 */
function checkNoXmlAttrs(root: Element, signature: Element): void {
  for (const el of [root, signature]) {
    for (let i = 0; i < el.attributes.length; i++) {
      if (el.attributes.item(i)!.namespaceURI === NS_XML)
        throw new RimFormatError(
          'RIM uses xml: attributes on an ancestor of signed content (C14N 1.1 not supported)',
        );
    }
  }
}

function checkSignedInfoShape(signature: Element): void {
  const signedInfo = children(signature, 'SignedInfo')[0];
  if (!signedInfo) throw new RimFormatError('RIM signature has no SignedInfo');
  const alg = (el: Element | undefined): string | null => el?.getAttribute('Algorithm') ?? null;
  if (alg(children(signedInfo, 'CanonicalizationMethod')[0]) !== ALG_C14N11)
    throw new RimFormatError('RIM SignedInfo canonicalization is not C14N 1.1');
  if (alg(children(signedInfo, 'SignatureMethod')[0]) !== ALG_ECDSA_SHA384)
    throw new RimFormatError('RIM signature method is not ecdsa-sha384');
  const refs = children(signedInfo, 'Reference');
  // One reference to the whole document: nothing outside it can carry unsigned measurements.
  if (refs.length !== 1 || refs[0]!.getAttribute('URI') !== '')
    throw new RimFormatError('RIM signature must have exactly one Reference with URI=""');
  const transforms = children(children(refs[0]!, 'Transforms')[0] ?? refs[0]!, 'Transform').map((t) =>
    alg(t),
  );
  if (transforms.length !== 2 || transforms[0] !== ALG_ENVELOPED || transforms[1] !== ALG_C14N11)
    throw new RimFormatError('RIM reference transforms are not enveloped-signature + C14N 1.1');
  if (alg(children(refs[0]!, 'DigestMethod')[0]) !== ALG_SHA384)
    throw new RimFormatError('RIM digest is not sha384');
}

export interface VerifyRimContext {
  /** Verification time, unix seconds. */
  now: number;
  /** RIM signing roots (DER or PEM); NVIDIA's CoRIM signing root when absent. */
  roots?: readonly Uint8Array[];
}

/**
 * Verify a SWID-tag RIM: its enveloped XML-DSig signature (ecdsa-sha384 over C14N 1.1) with the
 * leaf certificate of its KeyInfo chain, that chain to the pinned RIM root with validity at
 * ctx.now, and return the reference measurements taken from the signed content. It does not
 * check revocation of the signer certificates (verifyGpuEvidence asks OCSP about chainToRoot), nor that the RIM is the one NVIDIA currently
 * publishes for a device (selection by version happens in the caller).
 */
export function verifyRim(xml: string, ctx: VerifyRimContext): RimFacts {
  const { doc, signature } = parseDoc(xml);
  checkSignedInfoShape(signature);
  checkNoXmlAttrs(doc, signature);
  const signerChain = signerChainOf(doc);
  const anchors = ctx.roots ?? [Buffer.from(NVIDIA_RIM_ROOT_PEM)];
  const chain = verifyCertChain(signerChain, anchors, ctx.now);
  let chainToRoot: Uint8Array[] = [];
  if (chain.anchorIndex !== undefined) {
    const root = anchorToDer(anchors[chain.anchorIndex]!);
    const last = signerChain[signerChain.length - 1]!;
    chainToRoot = Buffer.from(last).equals(Buffer.from(root)) ? [...signerChain] : [...signerChain, root];
  }

  const leafPem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(signerChain[0]!).toString('base64')}\n-----END CERTIFICATE-----\n`;
  const sx = new SignedXml({ publicCert: leafPem });
  // checkSignedInfoShape already pinned every algorithm; these add the ones xml-crypto lacks.
  sx.SignatureAlgorithms[ALG_ECDSA_SHA384] =
    EcdsaSha384 as unknown as SignedXml['SignatureAlgorithms'][string];
  sx.HashAlgorithms[ALG_SHA384] = Sha384 as unknown as SignedXml['HashAlgorithms'][string];
  sx.CanonicalizationAlgorithms[ALG_C14N11] = C14n11Canonicalization;
  sx.getCertFromKeyInfo = () => null;
  sx.loadSignature(signature as unknown as Parameters<SignedXml['loadSignature']>[0]);
  let signatureValid = false;
  try {
    signatureValid = sx.checkSignature(xml) === true;
  } catch {
    signatureValid = false;
  }
  // Measurements come from what was signed when the signature holds, never from unsigned text.
  let parsed: ParsedRim;
  const signed = signatureValid ? sx.getSignedReferences()[0] : undefined;
  if (signed !== undefined) {
    const signedRoot = new DOMParser().parseFromString(signed, 'text/xml').documentElement;
    if (!signedRoot) throw new RimFormatError('signed RIM content does not parse');
    parsed = extract(signedRoot, signerChain);
  } else {
    parsed = extract(doc, signerChain);
  }
  return {
    ...parsed,
    signatureValid,
    chainValid: chain.valid,
    chainProblems: chain.problems,
    notBefore: chain.notBefore,
    notAfter: chain.notAfter,
    chainToRoot,
  };
}

/** RIMs available to a verifier, unverified until used (verification needs the time). */
export interface RimStore {
  readonly entries: readonly { source: string; xml: string; rim: ParsedRim }[];
  /** The RIM of this kind for this version (case-insensitive), if any. */
  find(
    kind: 'driver' | 'vbios',
    version: string,
  ): { source: string; xml: string; rim: ParsedRim } | undefined;
}

/** Build a store from RIM texts (source names are for messages only). */
export function createRimStore(items: readonly { source: string; xml: string }[]): RimStore {
  const entries = items.map((i) => ({ ...i, rim: parseRim(i.xml) }));
  return {
    entries,
    find: (kind, version) =>
      entries.find((e) => e.rim.kind === kind && e.rim.version.toLowerCase() === version.toLowerCase()),
  };
}

/** Load every *.swidtag / *.xml file of a directory into a RimStore (count- and size-capped). */
export async function loadRims(dir: string): Promise<RimStore> {
  const names = (await readdir(dir)).filter((n) => /\.(swidtag|xml)$/i.test(n)).sort();
  if (names.length > MAX_RIM_FILES)
    throw new TooLargeError('RIM directory (files)', names.length, MAX_RIM_FILES);
  const items: { source: string; xml: string }[] = [];
  for (const n of names) {
    const p = join(dir, n);
    const st = await stat(p);
    if (!st.isFile()) continue;
    if (st.size > MAX_RIM_BYTES) throw new TooLargeError(`RIM ${n}`, st.size, MAX_RIM_BYTES);
    items.push({ source: n, xml: await readFile(p, 'utf8') });
  }
  return createRimStore(items);
}
