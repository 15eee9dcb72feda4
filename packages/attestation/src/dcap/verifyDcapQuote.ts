import { createHash, type KeyObject } from 'node:crypto';
import { FirnError, measurementDigest } from '@firn/core';
import { markVerified, type TcbStatus, type VerifiedEvidence } from '../types.ts';
import { coreIsFree } from './freeCore.ts';
import { INTEL_SGX_INTERMEDIATES_PEM, INTEL_SGX_ROOT_CA_PEM } from './intelRootCa.ts';
import { parsePckExtensions, type PckExtensions } from './pckExtensions.ts';
import { dcapMeasurementRegisters } from './quoteIdentity.ts';
import { parseQeIdentity, type QeIdentity } from './qeIdentity.ts';
import { CERT_DATA_PCK_CHAIN, type DcapQuote, INTEL_QE_VENDOR_ID, parseDcapQuote } from './quote.ts';
import { type QuoteCollateralV3, toQuoteCollateralV3 } from './quoteCollateral.ts';
import { convergeTcb, matchQeIdentity, matchTcbLevel, matchTdxModule } from './tcbMatch.ts';
import { parseTcbInfo, type TcbInfo } from './tcbInfo.ts';
import { type DeferredVerify, type SignatureResult, SignatureChecks } from './signatureChecks.ts';
import {
  clearSignatureThreadKeys,
  ecdsaVerifyOnThread,
  ecdsaVerifyPointOnThread,
  keyErrorOf,
  pinKeyOnThread,
} from './signatureThread.ts';
import {
  type Certificate,
  type Crl,
  chainCertificatesAsGiven,
  ecdsaVerifyDer,
  ecdsaVerifyOnPool,
  ecdsaVerifyRaw,
  p256RawKey,
  p256SpkiPoint,
  parseCertificate,
  parseCrl,
  pemCertificates,
  rootDer,
} from './x509.ts';

export interface VerifyDcapOptions {
  /** Collateral: QuoteCollateralV3, or dcap-qvl's JSON object shape. */
  collateral: unknown;
  /** Verification time, unix seconds. */
  now: number;
  /** Trust anchors (DER or PEM); default: the Intel SGX Root CA (production) only. */
  roots?: readonly Uint8Array[];
  /**
   * Certificates (DER or PEM) each issued directly by one of `roots`, held beside them (decision
   * 1790): the root's signature over each is checked when the anchors are built, and a chain that
   * carries one byte for byte uses that checked certificate; its validity and its serial against
   * the root CA CRL are checked on every call as for any other. Only with `roots`; the default
   * anchors hold Intel's PCK Processor CA, PCK Platform CA and TCB Signing certificates
   * (INTEL_SGX_INTERMEDIATES_PEM). One that no root issued fails every call with E_EVIDENCE_CHAIN.
   */
  intermediates?: readonly Uint8Array[];
  /**
   * Where verifyDcapQuote runs its ECDSA checks: 'pool' (libuv's thread pool, concurrently),
   * 'thread' (one persistent signature thread, in the order queued; this thread makes those not
   * yet started once it has nothing else to do; decision 1450), 'caller' (this thread, in turn)
   * or 'auto' (default: the signature thread while other processes leave half a core or more idle
   * beside this thread, measured since the previous decision, at least half a second; else this
   * thread; decisions 1340, 1450, 1490). A call whose collateral is already checked (warm) runs on
   * this thread in 'auto'. Verdicts and errors are the same in every mode; in 'thread', and in
   * 'auto' with a free core, a signature thread that stops mid-call fails the call with
   * E_INTERNAL, never with a verdict.
   */
  signatureThreads?: 'auto' | 'pool' | 'thread' | 'caller';
}

function qeReportErr(): FirnError {
  return sigErr('QE report signature is invalid');
}
function quoteErr(): FirnError {
  return sigErr('quote signature is invalid');
}

const chainErr = (m: string) => new FirnError('E_EVIDENCE_CHAIN', m);
const sigErr = (m: string) => new FirnError('E_EVIDENCE_SIGNATURE', m);

/** A small insertion-ordered LRU: caches are keyed by exact bytes, so a hit is as good as a check. */
class Lru<V> {
  private readonly m = new Map<string, V>();
  constructor(private readonly cap: number) {}
  get(k: string): V | undefined {
    const v = this.m.get(k);
    if (v !== undefined) {
      this.m.delete(k);
      this.m.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): V {
    this.m.set(k, v);
    if (this.m.size > this.cap) this.m.delete(this.m.keys().next().value as string);
    return v;
  }
  clear(): void {
    this.m.clear();
  }
}

const key = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');

/** Byte equality without copying (Buffer.from(view) copies); inputs are public. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  if (a.length > 64) return Buffer.compare(a, b) === 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Parsed certificates by their exact DER: a bucket per length and last 32 bytes (the end of the
 * signature), each certificate compared in full on lookup. Every DER parsed here is this module's
 * own copy (PEM decodes, copied DER chains and roots), so a cached one never changes.
 */
const certCache = new Lru<Certificate[]>(512);
/** At most this many certificates share one bucket (the newest kept). */
const MAX_PER_CERT_BUCKET = 4;
function cert(der: Uint8Array): Certificate {
  const k = `${der.length}\u0003${key(der.subarray(Math.max(0, der.length - 32)))}`;
  const bucket = certCache.get(k);
  if (bucket !== undefined) for (const c of bucket) if (same(c.der, der)) return c;
  const c = parseCertificate(der);
  certCache.set(k, [c, ...(bucket ?? [])].slice(0, MAX_PER_CERT_BUCKET));
  return c;
}

/**
 * Issuer→child signature checks, keyed by both certificate objects (one object per exact DER
 * while cached, so by their bytes): `true` once passed, or the in-flight check on the thread pool
 * (shared by the verifications that need it meanwhile, dropped if it fails). A failed check is
 * never kept. Entries go with their certificates.
 */
let issuedCache = new WeakMap<Certificate, Map<Certificate, SignatureResult>>();

/**
 * The signature of `child` under `issuer`'s key: passed before, in flight (deferred mode only), or
 * checked now (on the pool when `deferred`). Throws only if the issuer's key cannot be imported.
 */
function issuedBy(
  child: Certificate,
  issuer: Certificate,
  later: DeferredVerify | undefined,
): SignatureResult {
  if (pinnedIssuer.get(child) === issuer) return true;
  const byIssuer = issuedCache.get(child);
  const hit = byIssuer?.get(issuer);
  if (hit === true || (hit !== undefined && later !== undefined)) return hit;
  const r =
    later !== undefined
      ? later(issuer.publicKey(), child.tbs, child.signature, 'der')
      : ecdsaVerifyDer(issuer.publicKey(), child.tbs, child.signature);
  if (r === false) return r;
  let m = byIssuer;
  if (m === undefined) {
    m = new Map();
    issuedCache.set(child, m);
  }
  if (m.size >= 16) m.clear(); // one certificate has one real issuer; bound what others can add
  m.set(issuer, r);
  const entries = m;
  if (r !== true)
    void r.then(
      (ok) => {
        if (entries.get(issuer) !== r) return;
        if (ok) entries.set(issuer, true);
        else entries.delete(issuer);
      },
      () => {
        if (entries.get(issuer) === r) entries.delete(issuer);
      },
    );
  return r;
}

/** Whether `issuer` may have issued `child` by name and CA flag (the checks before the signature). */
function mayIssue(child: Certificate, issuer: Certificate): boolean {
  return same(child.issuer, issuer.subject) && issuer.isCa;
}

function checkIssued(child: Certificate, issuer: Certificate, what: string, checks: SignatureChecks): void {
  if (!same(child.issuer, issuer.subject)) throw chainErr(`${what}: issuer name does not match`);
  if (!issuer.isCa) throw chainErr(`${what}: issuer is not a CA`);
  checks.add(issuedBy(child, issuer, checks.later), () =>
    chainErr(`${what}: certificate signature is invalid`),
  );
}

function checkWindow(c: Certificate, now: number, what: string): void {
  if (now < c.notBefore) throw new FirnError('E_EVIDENCE_EXPIRED', `${what} certificate is not yet valid`);
  if (now > c.notAfter) throw new FirnError('E_EVIDENCE_EXPIRED', `${what} certificate has expired`);
}

interface Anchors {
  roots: Certificate[];
  /** Certificates issued by one of `roots`, checked when these anchors were built (decision 1790). */
  intermediates: Certificate[];
  id: string;
}

/**
 * Each held intermediate and the root whose signature over it was checked when its anchors were
 * built. Never cleared: an entry lives as long as its certificate object, and the default
 * anchors' objects are part of the program (decision 1790).
 */
const pinnedIssuer = new WeakMap<Certificate, Certificate>();

/**
 * Check that each of `certs` is issued by one of `roots` (name, CA flag, signature) and record it
 * in pinnedIssuer; the key of each is imported now. Throws E_EVIDENCE_CHAIN naming the first that
 * no root issued.
 */
function holdIntermediates(certs: Certificate[], roots: Certificate[]): Certificate[] {
  for (const [i, c] of certs.entries()) {
    const root = roots.find((r) => {
      try {
        return mayIssue(c, r) && ecdsaVerifyDer(r.publicKey(), c.tbs, c.signature);
      } catch {
        return false;
      }
    });
    if (root === undefined) throw chainErr(`intermediate ${i} is not issued by a pinned root`);
    c.publicKey();
    pinnedIssuer.set(c, root);
  }
  return certs;
}

const defaultRootDer = pemCertificates(INTEL_SGX_ROOT_CA_PEM, 'Intel root')[0]!;
const defaultIntermediateDers = pemCertificates(INTEL_SGX_INTERMEDIATES_PEM, 'Intel intermediates');
/**
 * The pinned Intel root is part of the program, not of any input: it is parsed and its key
 * imported once, on first use, and kept across clearDcapCaches (decision 1160), and so are Intel's
 * intermediates with the root's signature over each, checked then (decision 1790). What the root
 * signs in an input (another certificate, the root CA CRL) is still checked on every cold call.
 */
let defaultAnchors: Anchors | undefined;
function anchors(
  roots: readonly Uint8Array[] | undefined,
  intermediates: readonly Uint8Array[] | undefined,
): Anchors {
  const useDefault = roots === undefined || roots.length === 0;
  if (useDefault && intermediates !== undefined && intermediates.length > 0)
    throw new FirnError('E_INVALID_INPUT', 'intermediates are held only beside roots given with them');
  if (useDefault && defaultAnchors !== undefined) return defaultAnchors;
  const list = useDefault ? [parseCertificate(defaultRootDer)] : roots.map(rootDer).map(cert);
  // Cache keys name the root set by a digest of its DER certificates in order (DER delimits itself).
  // Held intermediates are not in it: each is issued by a root, so they change no verdict.
  const h = createHash('sha256');
  for (const r of list) h.update(r.der);
  const held = useDefault
    ? defaultIntermediateDers.map(parseCertificate)
    : (intermediates ?? []).map(rootDer).map(cert);
  const a = { roots: list, intermediates: holdIntermediates(held, list), id: h.digest('base64') };
  if (useDefault) {
    for (const c of [...list, ...a.intermediates]) pinKeyOnThread(c.publicKey());
    defaultAnchors = a;
  }
  return a;
}

/**
 * Parsed certificates of a chain, leaf first: a chain given root first (its first certificate
 * self-issued) is reversed, as x509.leafFirst does; a pinned root in it is the anchor object
 * itself (its key already imported). Each DER is parsed (or found in the cache) once.
 */
function chainObjects(ders: Uint8Array[], a: Anchors): Certificate[] {
  // leafFirst parses the first certificate whatever it is (a malformed one fails here, first).
  const first = ders.length < 2 ? undefined : cert(ders[0]!);
  const ordered = first !== undefined && same(first.issuer, first.subject) ? [...ders].reverse() : ders;
  const out: Certificate[] = [];
  for (const d of ordered) out.push(anchorOf(a, d) ?? cert(d));
  return out;
}

/** The pinned root or held intermediate whose DER is exactly `d`, if any. */
function anchorOf(a: Anchors, d: Uint8Array): Certificate | undefined {
  for (const r of a.roots) if (r.der.length === d.length && same(r.der, d)) return r;
  for (const c of a.intermediates) if (c.der.length === d.length && same(c.der, d)) return c;
  return undefined;
}

/**
 * Verify a leaf-first chain up to a pinned root: each certificate signed by the next, the top one
 * being a pinned root or issued by one. Returns the chain with the root appended (leaf first).
 */
function verifyChain(ders: Uint8Array[], a: Anchors, what: string, checks: SignatureChecks): Certificate[] {
  const certs = chainObjects(ders, a);
  return verifyChainOf(certs, a, what, checks);
}

function verifyChainOf(
  certs: Certificate[],
  a: Anchors,
  what: string,
  checks: SignatureChecks,
): Certificate[] {
  for (let i = 0; i + 1 < certs.length; i++) checkIssued(certs[i]!, certs[i + 1]!, `${what}[${i}]`, checks);
  const top = certs[certs.length - 1]!;
  if (a.roots.some((r) => same(r.der, top.der))) return certs;
  const root = a.roots.find((r) => same(r.subject, top.issuer));
  if (root === undefined) throw chainErr(`${what}: does not chain to a pinned root`);
  checkIssued(top, root, `${what} root`, checks);
  return [...certs, root];
}

/** Collateral whose signatures and chains are checked; only time-dependent checks remain. */
interface PreparedCollateral {
  tcbInfo: TcbInfo;
  qeIdentity: QeIdentity;
  rootCrl: Crl;
  pckCrl: Crl;
  tcbChain: Certificate[];
  qeIdChain: Certificate[];
  pckCrlChain: Certificate[];
  /** The newest tcbDate over the TCB info's levels. */
  latestTcbDate: string;
}

/**
 * Prepared collateral by the caller's object, with the field values it was prepared from: a hit
 * counts only while every field still holds the same string (strings cannot change in place), so
 * an object whose pieces were replaced or whose bytes were overwritten is checked again.
 */
interface ByObject {
  p: PreparedCollateral;
  fields: unknown[];
}
let preparedByObject = new WeakMap<object, Map<string, ByObject>>();
/** toQuoteCollateralV3's fields, camelCase and snake_case. */
const COLLATERAL_FIELDS = [
  ...['pckCrlIssuerChain', 'rootCaCrl', 'pckCrl', 'tcbInfoIssuerChain', 'tcbInfo', 'tcbInfoSignature'],
  ...['qeIdentityIssuerChain', 'qeIdentity', 'qeIdentitySignature'],
].flatMap((f) => [f, f.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`)]);
/** The object's collateral fields, or undefined when one is not a string (bytes can change in place). */
function fieldsOf(raw: object): unknown[] | undefined {
  const o = raw as Record<string, unknown>;
  const out: unknown[] = [];
  for (const f of COLLATERAL_FIELDS) {
    const v = o[f];
    if (v !== undefined && v !== null && typeof v !== 'string') return undefined;
    out.push(v);
  }
  return out;
}

/**
 * Prepared collateral by its parts: a bucket per pair of collateral signatures (TCB info and QE
 * identity, 128 bytes) under the anchors' id, and in it the entries whose every part equals the
 * input's (strings with ===, bytes byte by byte). A lookup thus costs a 128-byte key and a compare,
 * never a hash over the 13 kB of collateral; a miss (every cold call) costs only the key.
 */
interface PreparedEntry {
  c: QuoteCollateralV3;
  p: PreparedCollateral;
}
const preparedCache = new Lru<PreparedEntry[]>(64);
/** At most this many collaterals share one signature pair in the cache (the newest kept). */
const MAX_PER_SIGNATURES = 4;

function collateralBucketKey(c: QuoteCollateralV3, a: Anchors): string {
  return `${a.id}\u0003${key(c.tcbInfoSignature)}\u0003${key(c.qeIdentitySignature)}`;
}

/** Whether two collaterals are the same in every part (texts exactly, bytes byte for byte). */
function sameCollateral(x: QuoteCollateralV3, y: QuoteCollateralV3): boolean {
  return (
    x.tcbInfo === y.tcbInfo &&
    x.qeIdentity === y.qeIdentity &&
    x.tcbInfoIssuerChain === y.tcbInfoIssuerChain &&
    x.qeIdentityIssuerChain === y.qeIdentityIssuerChain &&
    x.pckCrlIssuerChain === y.pckCrlIssuerChain &&
    same(x.tcbInfoSignature, y.tcbInfoSignature) &&
    same(x.qeIdentitySignature, y.qeIdentitySignature) &&
    same(x.rootCaCrl, y.rootCaCrl) &&
    same(x.pckCrl, y.pckCrl)
  );
}

/** The CRL names `issuer` as its issuer (the check before its signature). */
function checkCrlIssuer(crl: Crl, issuer: Certificate, what: string): void {
  if (!same(crl.issuer, issuer.subject))
    throw chainErr(`${what} is not issued by ${what === 'root CA CRL' ? 'the root' : 'the PCK CA'}`);
}

function verifyCrlBy(
  crl: Crl,
  issuer: Certificate,
  what: string,
  checks: SignatureChecks,
  early?: { key: KeyObject; r: SignatureResult },
): void {
  checkCrlIssuer(crl, issuer, what);
  const key = issuer.publicKey();
  const err = () => chainErr(`${what} signature is invalid`);
  earlyOr(checks, early, key, () => checks.der(key, crl.tbs, crl.signature, err), err);
}

/**
 * A collateral signer (TCB info, QE identity) is Intel's TCB Signing certificate: a leaf issued
 * directly by the root. A PCK certificate also chains to the root, but must never sign collateral.
 */
function checkCollateralSigner(chain: Certificate[], what: string): void {
  if (chain.length !== 2 || chain[0]!.isCa)
    throw chainErr(`${what}: the signer must be a non-CA certificate issued directly by the root`);
}

/** The newest tcbDate over all levels (order-independent): the latest TCB recovery. */
function latestTcbDate(info: TcbInfo): string {
  let best = info.tcbLevels[0]!.tcbDate;
  let bestTime = Date.parse(best);
  for (const l of info.tcbLevels) {
    const t = Date.parse(l.tcbDate);
    if (t > bestTime) {
      best = l.tcbDate;
      bestTime = t;
    }
  }
  return best;
}

/**
 * A collateral signer's chain as served: the signer and the root (Intel's QVL and dcap-qvl refuse
 * one with a single certificate). A chain whose root block is missing or unreadable is refused,
 * not completed from the pinned roots.
 */
function signerChainDers(text: string, what: string): Uint8Array[] {
  const ders = pemCertificates(text, what);
  if (ders.length < 2) throw chainErr(`${what}: the chain does not carry its root certificate`);
  return ders;
}

const collateralErr = (m: string) => () => new FirnError('E_EVIDENCE_COLLATERAL', m);

/**
 * The collateral's signature checks started on the signature thread before the collateral is
 * parsed (decision 1790), where each signer is a held anchor (Intel's TCB Signing certificate, the
 * root, a PCK CA), so its key is known before any chain is checked; with the PEM decodes and CRL
 * parses they needed, for prepare to use. Each result is recorded at its canonical place in
 * prepare, and only if prepare reaches it with the same key; one it never reaches is dropped.
 */
interface EarlyCollateral {
  tcbDers?: Uint8Array[];
  qeIdDers?: Uint8Array[];
  pckCrlDers?: Uint8Array[];
  rootCrl?: Crl;
  pckCrl?: Crl;
  tcbInfo?: { key: KeyObject; r: SignatureResult };
  qeIdentity?: { key: KeyObject; r: SignatureResult };
  rootCrlSig?: { key: KeyObject; r: SignatureResult };
  pckCrlSig?: { key: KeyObject; r: SignatureResult };
}

/**
 * Start the signature checks of collateral `c` whose signers are held anchors of `a`: nothing
 * here throws or decides anything (an error is met again at its place in prepare).
 */
function startCollateralChecks(c: QuoteCollateralV3, a: Anchors, later: DeferredVerify): EarlyCollateral {
  const e: EarlyCollateral = {};
  // The signer as a held intermediate (anchorOf's object, with the root's check recorded), if it is one.
  const held = (ders: Uint8Array[] | undefined) => {
    const c = ders?.[0] === undefined ? undefined : anchorOf(a, ders[0]);
    return c !== undefined && pinnedIssuer.has(c) ? c : undefined;
  };
  try {
    e.tcbDers = signerChainDers(c.tcbInfoIssuerChain, 'TCB info issuer chain');
    const signer = held(e.tcbDers);
    if (signer !== undefined) {
      const key = signer.publicKey();
      e.tcbInfo = { key, r: later(key, Buffer.from(c.tcbInfo, 'utf8'), c.tcbInfoSignature, 'ieee-p1363') };
    }
  } catch {
    // met again at its place in prepare
  }
  try {
    // The same text as the TCB info's: prepare uses that chain for both, as here.
    const qeIdDers =
      c.qeIdentityIssuerChain === c.tcbInfoIssuerChain
        ? e.tcbDers
        : signerChainDers(c.qeIdentityIssuerChain, 'QE identity issuer chain');
    if (c.qeIdentityIssuerChain !== c.tcbInfoIssuerChain && qeIdDers !== undefined) e.qeIdDers = qeIdDers;
    const signer = held(qeIdDers);
    if (signer !== undefined) {
      const key = signer.publicKey();
      e.qeIdentity = {
        key,
        r: later(key, Buffer.from(c.qeIdentity, 'utf8'), c.qeIdentitySignature, 'ieee-p1363'),
      };
    }
  } catch {
    // met again at its place in prepare
  }
  try {
    e.rootCrl = parseCrl(c.rootCaCrl);
    const root = a.roots.length === 1 ? a.roots[0]! : undefined;
    if (root !== undefined && same(e.rootCrl.issuer, root.subject)) {
      const key = root.publicKey();
      e.rootCrlSig = { key, r: later(key, e.rootCrl.tbs, e.rootCrl.signature, 'der') };
    }
  } catch {
    // met again at its place in prepare
  }
  try {
    e.pckCrlDers = pemCertificates(c.pckCrlIssuerChain, 'PCK CRL issuer chain');
    e.pckCrl = parseCrl(c.pckCrl);
    const ca = held(e.pckCrlDers);
    if (ca !== undefined && same(e.pckCrl.issuer, ca.subject)) {
      const key = ca.publicKey();
      e.pckCrlSig = { key, r: later(key, e.pckCrl.tbs, e.pckCrl.signature, 'der') };
    }
  } catch {
    // met again at its place in prepare
  }
  return e;
}

/** Record an early result at its place if it was made with `key`; else make the check now. */
function earlyOr(
  checks: SignatureChecks,
  early: { key: KeyObject; r: SignatureResult } | undefined,
  key: KeyObject,
  make: () => void,
  error: () => FirnError,
): void {
  if (early !== undefined && early.key === key) checks.add(early.r, error);
  else make();
}

/** Check the collateral's chains and signatures, in the canonical order. */
function prepare(
  c: QuoteCollateralV3,
  a: Anchors,
  checks: SignatureChecks,
  e: EarlyCollateral = {},
): PreparedCollateral {
  const tcbChain = verifyChain(
    e.tcbDers ?? signerChainDers(c.tcbInfoIssuerChain, 'TCB info issuer chain'),
    a,
    'TCB info issuer chain',
    checks,
  );
  checkCollateralSigner(tcbChain, 'TCB info issuer chain');
  const tcbInfo = parseTcbInfo(c.tcbInfo);
  const tcbInfoErr = collateralErr('TCB info signature is invalid');
  const tcbKey = tcbChain[0]!.publicKey();
  earlyOr(
    checks,
    e.tcbInfo,
    tcbKey,
    () => checks.raw(tcbKey, Buffer.from(c.tcbInfo, 'utf8'), c.tcbInfoSignature, tcbInfoErr),
    tcbInfoErr,
  );
  // Intel serves the same chain for both: the same text passed (or queued) the same checks above.
  let qeIdChain = tcbChain;
  if (c.qeIdentityIssuerChain !== c.tcbInfoIssuerChain) {
    qeIdChain = verifyChain(
      e.qeIdDers ?? signerChainDers(c.qeIdentityIssuerChain, 'QE identity issuer chain'),
      a,
      'QE identity issuer chain',
      checks,
    );
    checkCollateralSigner(qeIdChain, 'QE identity issuer chain');
  }
  const qeIdentity = parseQeIdentity(c.qeIdentity);
  const qeIdErr = collateralErr('QE identity signature is invalid');
  const qeKey = qeIdChain[0]!.publicKey();
  earlyOr(
    checks,
    e.qeIdentity,
    qeKey,
    () => checks.raw(qeKey, Buffer.from(c.qeIdentity, 'utf8'), c.qeIdentitySignature, qeIdErr),
    qeIdErr,
  );
  const rootCrl = e.rootCrl ?? parseCrl(c.rootCaCrl);
  const root = tcbChain[tcbChain.length - 1]!;
  verifyCrlBy(rootCrl, root, 'root CA CRL', checks, e.rootCrlSig);
  const pckCrlChain = verifyChain(
    e.pckCrlDers ?? pemCertificates(c.pckCrlIssuerChain, 'PCK CRL issuer chain'),
    a,
    'PCK CRL issuer chain',
    checks,
  );
  const pckCrl = e.pckCrl ?? parseCrl(c.pckCrl);
  verifyCrlBy(pckCrl, pckCrlChain[0]!, 'PCK CRL', checks, e.pckCrlSig);
  return {
    tcbInfo,
    qeIdentity,
    rootCrl,
    pckCrl,
    tcbChain,
    qeIdChain,
    pckCrlChain,
    latestTcbDate: latestTcbDate(tcbInfo),
  };
}

function rememberByObject(
  raw: unknown,
  fields: unknown[] | undefined,
  a: Anchors,
  p: PreparedCollateral,
): void {
  if (typeof raw !== 'object' || raw === null || fields === undefined) return;
  const m = preparedByObject.get(raw) ?? new Map<string, ByObject>();
  m.set(a.id, { p, fields });
  preparedByObject.set(raw, m);
}

/** `raw`'s fields (fieldsOf) when it is an object, else undefined. */
function objectFields(raw: unknown): unknown[] | undefined {
  return typeof raw === 'object' && raw !== null ? fieldsOf(raw) : undefined;
}

/** The object cache's entry for `raw` against `a`, if `fields` (its own, now) are those it was checked with. */
function byObject(raw: unknown, fields: unknown[] | undefined, a: Anchors): PreparedCollateral | undefined {
  if (fields === undefined) return undefined;
  const hit = preparedByObject.get(raw as object)?.get(a.id);
  return hit?.fields.every((v, i) => v === fields[i]) ? hit.p : undefined;
}

/** A lookup in the collateral caches: the prepared collateral, or what preparing it needs. */
type CollateralLookup =
  | { p: PreparedCollateral }
  | { p?: undefined; own: QuoteCollateralV3; k: string; raw: unknown; fields: unknown[] | undefined };

/** The collateral `raw` checked against `a` from the caches, or its parts (own copies) to check. */
function lookupCollateral(raw: unknown, a: Anchors): CollateralLookup {
  const fields = objectFields(raw);
  const known = byObject(raw, fields, a);
  if (known !== undefined) return { p: known };
  // Read from the snapshot, so what is prepared is exactly what the object cache records.
  const c = toQuoteCollateralV3(
    fields === undefined ? raw : Object.fromEntries(COLLATERAL_FIELDS.map((f, i) => [f, fields[i]])),
  );
  const k = collateralBucketKey(c, a);
  const cached = preparedCache.get(k)?.find((e) => sameCollateral(e.c, c))?.p;
  if (cached !== undefined) {
    rememberByObject(raw, fields, a, cached);
    return { p: cached };
  }
  // Own copies of the byte parts, taken before anything is checked: the entry must record exactly
  // the bytes that were checked, and a caller's array may change in place while checks are in
  // flight on the pool (texts are immutable and kept as they are).
  const own: QuoteCollateralV3 = {
    ...c,
    rootCaCrl: c.rootCaCrl.slice(),
    pckCrl: c.pckCrl.slice(),
    tcbInfoSignature: c.tcbInfoSignature.slice(),
    qeIdentitySignature: c.qeIdentitySignature.slice(),
  };
  return { own, k, raw, fields };
}

/** Cache collateral whose every check passed, by its parts and by the caller's object. */
function rememberCollateral(
  l: CollateralLookup & { p?: undefined },
  a: Anchors,
  p: PreparedCollateral,
): void {
  const bucket = (preparedCache.get(l.k) ?? []).filter((e) => !sameCollateral(e.c, l.own));
  preparedCache.set(l.k, [{ c: l.own, p }, ...bucket].slice(0, MAX_PER_SIGNATURES));
  rememberByObject(l.raw, l.fields, a, p);
}

/** Collateral checked against `a`: from the caches, or prepared now and cached once its checks pass. */
function prepared(
  raw: unknown,
  a: Anchors,
  checks: SignatureChecks,
  looked?: CollateralLookup,
  early?: EarlyCollateral,
): PreparedCollateral {
  const l = looked ?? lookupCollateral(raw, a);
  if (l.p !== undefined) return l.p;
  const p = prepare(l.own, a, checks, early);
  checks.whenPassed(() => rememberCollateral(l, a, p));
  return p;
}

interface PckChain {
  certs: Certificate[];
  ext: PckExtensions;
}
/**
 * Checked PCK chains by their exact bytes: a bucket per anchors, length and first 192 bytes (which
 * hold the leaf's serial number), each entry keeping its own copy of the bytes it was checked
 * from, compared in full on lookup. A warm lookup so hashes 192 bytes, not the 3-4 kB chain.
 */
const pckCache = new Lru<{ data: Uint8Array; chain: PckChain }[]>(256);
/** At most this many chains share one bucket (the newest kept). */
const MAX_PER_PCK_BUCKET = 4;
function pckCacheGet(src: PckSource): PckChain | undefined {
  const bucket = pckCache.get(src.k);
  if (bucket === undefined) return undefined;
  for (const e of bucket) if (same(e.data, src.data)) return e.chain;
  return undefined;
}
function pckCacheSet(src: PckSource, chain: PckChain): void {
  const bucket = (pckCache.get(src.k) ?? []).filter((e) => !same(e.data, src.data));
  pckCache.set(src.k, [{ data: src.data, chain }, ...bucket].slice(0, MAX_PER_PCK_BUCKET));
}

/** The PCK chain's bytes: from the quote (type 5) or, for a PPID-only quote, from the collateral. */
function pckChainData(q: DcapQuote, raw: unknown): Uint8Array {
  if (q.certification.certDataType === CERT_DATA_PCK_CHAIN) return q.certification.certData;
  // Types 1-4 carry only an (encrypted) PPID: the PCK chain must come with the collateral.
  const chain =
    typeof raw === 'object' && raw !== null
      ? ((raw as Record<string, unknown>).pckCertificateChain ??
        (raw as Record<string, unknown>).pck_certificate_chain)
      : undefined;
  if (typeof chain !== 'string')
    throw new FirnError(
      'E_EVIDENCE_COLLATERAL',
      `quote has certification data type ${q.certification.certDataType}: the PCK chain must be in the collateral`,
    );
  return new Uint8Array(Buffer.from(chain, 'latin1'));
}

/** The PCK chain's bytes, their cache key under the anchors, and (once split) its certificates. */
interface PckSource {
  data: Uint8Array;
  k: string;
  ders?: Uint8Array[];
}

/** The PCK chain's bytes and their cache key under the anchors `a`. */
function pckChainSource(q: DcapQuote, raw: unknown, a: Anchors): PckSource {
  // The chain's own copy: the cache entry records these bytes once the checks pass, and keeps no
  // view of the whole quote alive.
  const data = pckChainData(q, raw).slice();
  return { data, k: `${a.id}\u0003${data.length}\u0003${key(data.subarray(0, 192))}` };
}

/** The chain's DER certificates in the order given, split once per source. */
function pckDers(src: PckSource): Uint8Array[] {
  src.ders ??= chainCertificatesAsGiven(src.data, 'PCK chain');
  return src.ders;
}

function pckChain(src: PckSource, a: Anchors, checks: SignatureChecks): PckChain {
  const hit = pckCacheGet(src);
  if (hit !== undefined) return hit;
  const certs = verifyChain(pckDers(src), a, 'PCK chain', checks);
  if (certs.length < 3) throw chainErr('PCK chain must hold the PCK, its CA and the root');
  const chain = { certs, ext: parsePckExtensions(certs[0]!) };
  checks.whenPassed(() => pckCacheSet(src, chain));
  return chain;
}

/** The quote's own checks, started on the pool ahead of their turn (deferred mode). */
interface EarlyChecks {
  /** The PCK chain's bytes and cache key. */
  pck?: PckSource;
  /** The PCK certificate the QE report check used. */
  leaf?: Certificate;
  qeReport?: SignatureResult;
  attestationKey?: KeyObject;
  quote?: SignatureResult;
}

/**
 * Start the PCK chain's signatures, the QE report's and the quote's ahead of their turn: on the
 * thread pool (`pool`) before the collateral is parsed, so the pool works while this thread
 * parses, or checked here at once. Nothing here throws or
 * decides anything: each result is recorded at its canonical place later (or dropped if an
 * earlier check fails); any error here is met again, and reported, at that place.
 */
function startQuoteChecks(
  q: DcapQuote,
  raw: unknown,
  a: Anchors,
  later: DeferredVerify | undefined,
): EarlyChecks {
  const early: EarlyChecks = {};
  // Queued in the order that keeps the pool busy soonest: the quote's signature needs only the
  // quote; in the chain, a certificate's check by its issuer needs the issuer's key imported
  // first, so the checks are queued from the top (the pinned root's key is already imported).
  // On the signature thread, a key this call would import (not one cached from an earlier call)
  // is imported there, beside the other checks (decision 1790).
  const onThread = later === ecdsaVerifyOnThread;
  try {
    const known = onThread ? attestationKeyCache.get(key(q.attestationKey)) : undefined;
    if (onThread && known === undefined)
      early.quote = ecdsaVerifyPointOnThread(
        q.attestationKey,
        q.signedBytes,
        q.signature,
        'ieee-p1363',
        (pt) => attestationKey(pt),
      );
    else {
      early.attestationKey = known ?? attestationKey(q.attestationKey);
      early.quote =
        later !== undefined
          ? later(early.attestationKey, q.signedBytes, q.signature, 'ieee-p1363')
          : ecdsaVerifyRaw(early.attestationKey, q.signedBytes, q.signature);
    }
  } catch {
    // met again at its place in the canonical order
  }
  try {
    const src = pckChainSource(q, raw, a);
    early.pck = src;
    let certs = pckCacheGet(src)?.certs;
    if (certs === undefined) {
      certs = chainObjects(pckDers(src), a);
      for (let i = certs.length - 2; i >= 0; i--)
        if (mayIssue(certs[i]!, certs[i + 1]!)) issuedBy(certs[i]!, certs[i + 1]!, later);
    }
    const leaf = certs[0]!;
    const { qeReport, qeReportSignature } = q.certification;
    if (qeReportKnown(leaf, qeReport.raw, qeReportSignature)) {
      early.qeReport = true;
      early.leaf = leaf;
      return early;
    }
    const point = onThread && !leaf.keyImported() ? p256SpkiPoint(leaf.spki) : undefined;
    early.qeReport =
      point !== undefined
        ? ecdsaVerifyPointOnThread(point, qeReport.raw, qeReportSignature, 'ieee-p1363', () =>
            leaf.publicKey(),
          )
        : later !== undefined
          ? later(leaf.publicKey(), qeReport.raw, qeReportSignature, 'ieee-p1363')
          : ecdsaVerifyRaw(leaf.publicKey(), qeReport.raw, qeReportSignature);
    early.leaf = leaf;
  } catch {
    // met again at its place in the canonical order
  }
  return early;
}

/**
 * QE reports whose signature passed under a PCK certificate, kept with that certificate object
 * (one object per exact DER while cached): copies of the report's 384 bytes and its 64-byte
 * signature. A platform's QE signs its report once per attestation key, so every quote of that
 * platform carries the same report and signature; a verifier that has checked one needs only the
 * quote's own signature for the next (decision 1810). Lookups compare both in full; only passed
 * checks enter (through SignatureChecks.whenPassed), at most MAX_QE_REPORTS_PER_PCK per
 * certificate, the newest kept.
 */
let qeReportPassed = new WeakMap<Certificate, { report: Uint8Array; signature: Uint8Array }[]>();
const MAX_QE_REPORTS_PER_PCK = 4;

/** Whether `report` with `signature` passed under `leaf`'s key before (exact bytes). */
function qeReportKnown(leaf: Certificate, report: Uint8Array, signature: Uint8Array): boolean {
  const passed = qeReportPassed.get(leaf);
  if (passed === undefined) return false;
  for (const e of passed) if (same(e.signature, signature) && same(e.report, report)) return true;
  return false;
}

/** Record that `report` with `signature` passed under `leaf`'s key (copies both). */
function rememberQeReport(leaf: Certificate, report: Uint8Array, signature: Uint8Array): void {
  if (qeReportKnown(leaf, report, signature)) return;
  const passed = qeReportPassed.get(leaf) ?? [];
  qeReportPassed.set(
    leaf,
    [{ report: report.slice(), signature: signature.slice() }, ...passed].slice(0, MAX_QE_REPORTS_PER_PCK),
  );
}

/**
 * Attestation keys imported from a quote's 64-byte point, keyed by those bytes: a platform's QE
 * signs every quote with the same key, and an import (with its on-curve check) costs as much as
 * a signature check. Only successful imports are kept; the quote signature is checked every time.
 */
const attestationKeyCache = new Lru<KeyObject>(256);
function attestationKey(xy: Uint8Array): KeyObject {
  const k = key(xy);
  return attestationKeyCache.get(k) ?? attestationKeyCache.set(k, p256RawKey(xy));
}

/**
 * Forget every cached parse and check of inputs (for benchmarks measuring the cold path): parsed
 * certificates and their keys, passed signature checks, prepared collateral (by bytes and by
 * object) and PCK chains. The pinned default root stays parsed (it is not an input).
 */
export function clearDcapCaches(): void {
  certCache.clear();
  issuedCache = new WeakMap();
  preparedCache.clear();
  preparedByObject = new WeakMap();
  pckCache.clear();
  attestationKeyCache.clear();
  qeReportPassed = new WeakMap();
  clearSignatureThreadKeys();
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

/**
 * Verify an SGX v3 or TDX v4/v5 quote against pinned roots and its collateral: the PCK chain and
 * both CRLs, the QE report signature and its binding of the attestation key, the quote signature,
 * the TCB info and QE identity signatures, certificate validity at `now`, FMSPC/PCE-ID and TEE
 * type matching, TCB level and QE identity matching, and the combined TCB status with advisories.
 * It does not decide acceptance: debug enclaves, collateral past nextUpdate (reported as
 * collateralNextUpdate), the status and the measurements are left to the policy (evaluate).
 *
 * The ECDSA verifications (seven on a cold call whose chains carry Intel's pinned intermediates,
 * nine otherwise; decision 1790) run on another thread (by default the signature thread, while a
 * core is free) while the rest is parsed (see `signatureThreads`); on the signature thread the
 * call's own keys (PCK, attestation key) are imported there too, and the collateral's checks under
 * pinned keys start before the collateral is parsed. The error reported is the one of the first
 * failing check in the order verifyDcapQuoteSync makes them, so both give the same verdict and
 * error code on every input (decision 1270). Checks that passed are kept by their exact bytes
 * (parsed and checked collateral and chains, decision 1340; a platform's QE report under its PCK
 * certificate, decision 1810), so a warm call makes one verification, the quote's own signature;
 * each call works on its own copy of the quote, so a caller's buffer may change once the call
 * returns. Errors: FirnError E_EVIDENCE_MALFORMED, _CHAIN,
 * _COLLATERAL, _EXPIRED, _REVOKED, _SIGNATURE, _TCB; E_INVALID_INPUT for a bad `now`, for
 * `intermediates` without `roots`, or for a quote that is neither bytes nor a parsed quote (a parsed
 * quote is parsed again from its `raw` bytes, so no field of it is taken on trust).
 */
export async function verifyDcapQuote(
  quote: Uint8Array | DcapQuote,
  opts: VerifyDcapOptions,
): Promise<VerifiedEvidence> {
  const where = opts.signatureThreads ?? 'auto';
  const later: DeferredVerify | undefined =
    where === 'pool'
      ? ecdsaVerifyOnPool
      : where === 'thread'
        ? ecdsaVerifyOnThread
        : where === 'auto' && coreIsFree()
          ? ecdsaVerifyOnThread
          : undefined;
  const checks = new SignatureChecks(later);
  let out: VerifiedEvidence;
  try {
    out = verifyWith(quote, opts, checks, where === 'auto');
  } catch (e) {
    // A signature queued before this error failed first in the synchronous order: it wins.
    await checks.settle();
    throw e;
  }
  await checks.settle();
  return out;
}

/** The verified result of a quote whose every check passed: measurements, facts, TCB status. */
function verdict(
  q: DcapQuote,
  ext: PckExtensions,
  tcbInfo: TcbInfo,
  qeIdentity: QeIdentity,
  level: ReturnType<typeof matchTcbLevel>,
  tcb: { status: TcbStatus; advisoryIds: string[] },
  platformTcb: { status: TcbStatus; advisoryIds: string[] },
  qeTcb: { status: TcbStatus; advisoryIds: string[]; tcbDate?: string },
  latestTcbDate: string,
  now: number,
  issued: number,
  nextUpdate: number,
  platformNextUpdate: number,
  qeNextUpdate: number,
): VerifiedEvidence {
  const cd = q.certification;
  const extra: Record<string, unknown> = {
    quoteVersion: q.header.version,
    fmspc: hex(ext.fmspc),
    pceId: hex(ext.pceId),
    pceSvn: ext.pceSvn,
    cpuSvn: hex(ext.cpuSvn),
    sgxType: ext.sgxType,
    tcbDate: level.tcbDate,
    // The newest level's date is the latest TCB recovery (informational: Intel's platform grace
    // period counts from the matched level's tcbDate above, decision 1766).
    latestTcbDate,
    platformTcbStatus: level.status,
    qeTcbStatus: qeTcb.status,
    // Per-class facts for Intel's appraisal classes (decision 1766): the platform class is the TCB
    // info with the PCK CRLs (and the TDX module), the QE class is the QE identity.
    platformClassTcbStatus: platformTcb.status,
    platformAdvisoryIds: [...platformTcb.advisoryIds],
    platformTcbEvaluationDataNumber: tcbInfo.tcbEvaluationDataNumber,
    platformCollateralNextUpdate: platformNextUpdate,
    qeAdvisoryIds: [...qeTcb.advisoryIds],
    qeTcbEvaluationDataNumber: qeIdentity.tcbEvaluationDataNumber,
    qeCollateralNextUpdate: qeNextUpdate,
    tcbInfoVersion: tcbInfo.version,
    qeIsvSvn: cd.qeReport.isvSvn,
    collateralExpired: now > nextUpdate,
  };
  if (qeTcb.tcbDate !== undefined) extra.qeTcbDate = qeTcb.tcbDate;
  let measurements: Record<string, string>;
  let measurement: Uint8Array;
  let debug: boolean;
  let reportData: Uint8Array;
  if (q.body.kind === 'sgx') {
    const r = q.body.report;
    measurements = {
      mrenclave: hex(r.mrEnclave),
      mrsigner: hex(r.mrSigner),
      isvProdId: String(r.isvProdId),
      isvSvn: String(r.isvSvn),
      attributes: hex(r.attributes),
      miscselect: hex(r.raw.subarray(16, 20)),
      configId: hex(r.configId),
      configSvn: String(r.configSvn),
      isvExtProdId: hex(r.isvExtProdId),
      isvFamilyId: hex(r.isvFamilyId),
    };
    measurement = measurementDigest('sgx', dcapMeasurementRegisters(q));
    // SGX ATTRIBUTES.DEBUG is bit 1 of the flags.
    debug = (r.attributes[0]! & 0x02) !== 0;
    reportData = r.reportData.slice();
  } else {
    const r = q.body.report;
    measurements = {
      mrtd: hex(r.mrTd),
      rtmr0: hex(r.rtmr0),
      rtmr1: hex(r.rtmr1),
      rtmr2: hex(r.rtmr2),
      rtmr3: hex(r.rtmr3),
      mrconfigid: hex(r.mrConfigId),
      mrowner: hex(r.mrOwner),
      mrownerconfig: hex(r.mrOwnerConfig),
      tdAttributes: hex(r.tdAttributes),
      xfam: hex(r.xfam),
      mrseam: hex(r.mrSeam),
      mrsignerseam: hex(r.mrSignerSeam),
    };
    if (r.mrServiceTd !== undefined) measurements.mrservicetd = hex(r.mrServiceTd);
    measurement = measurementDigest('tdx', dcapMeasurementRegisters(q));
    // TDX TDATTRIBUTES.TUD.DEBUG is bit 0.
    debug = (r.tdAttributes[0]! & 0x01) !== 0;
    reportData = r.reportData.slice();
    extra.teeTcbSvn = hex(r.teeTcbSvn);
    extra.tdReportVersion = r.version;
    extra.mrconfigid = hex(r.mrConfigId);
    extra.attributes = hex(r.tdAttributes);
    if (r.teeTcbSvn2 !== undefined) extra.teeTcbSvn2 = hex(r.teeTcbSvn2);
  }
  return markVerified({
    teeType: q.body.kind,
    measurement,
    measurements,
    platformId: ext.ppid.slice(),
    reportData,
    debug,
    tcbStatus: tcb.status,
    advisoryIds: tcb.advisoryIds,
    tcbEvaluationDataNumber: Math.min(tcbInfo.tcbEvaluationDataNumber, qeIdentity.tcbEvaluationDataNumber),
    collateralIssuedAt: issued,
    collateralNextUpdate: nextUpdate,
    extra,
  });
}

/** Whether any of `certs[from..to)` is listed in `crl` (serials by their hex). */
function revokedIn(crl: Crl, certs: readonly Certificate[], from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (crl.revoked.has(certs[i]!.serial)) return true;
  return false;
}

/**
 * verifyDcapQuote on the calling thread, every signature checked in turn (same checks, verdicts
 * and errors). For callers that cannot await; it holds the thread for the whole verification.
 */
export function verifyDcapQuoteSync(
  quote: Uint8Array | DcapQuote,
  opts: VerifyDcapOptions,
): VerifiedEvidence {
  return verifyWith(quote, opts, new SignatureChecks(undefined));
}

/** A quote parsed and its anchors chosen: the start every path shares. */
interface Begun {
  q: DcapQuote;
  a: Anchors;
}

function begin(quote: Uint8Array | DcapQuote, opts: VerifyDcapOptions): Begun {
  const { now } = opts;
  if (typeof now !== 'number' || !Number.isFinite(now))
    throw new FirnError('E_INVALID_INPUT', 'now must be unix seconds');
  // A parsed quote is parsed again from its bytes: the verdict is read only from the bytes whose
  // signatures are checked, never from fields a caller may have built or changed.
  const bytes = quote instanceof Uint8Array ? quote : (quote as Partial<DcapQuote> | null | undefined)?.raw;
  if (!(bytes instanceof Uint8Array))
    throw new FirnError('E_INVALID_INPUT', 'quote must be a Uint8Array (or a DcapQuote from parseDcapQuote)');
  // Parsed from this call's own copy: every view the checks, the caches and the verdict take
  // into the quote (the QE report and its signature kept once passed, decision 1810, above all)
  // holds the bytes as they were at the call, whatever the caller's buffer holds by the time a
  // deferred check settles (a pooled or reused receive buffer).
  const q = parseDcapQuote(bytes.slice());
  // Only Intel's quoting enclaves are appraised against Intel's QE identity (QVL, dcap-qvl refuse others).
  if (!same(q.header.qeVendorId, INTEL_QE_VENDOR_ID))
    throw new FirnError(
      'E_EVIDENCE_MALFORMED',
      `quote header names QE vendor ID ${hex(q.header.qeVendorId)}, not Intel's (${hex(INTEL_QE_VENDOR_ID)})`,
    );
  return { q, a: anchors(opts.roots, opts.intermediates) };
}

function verifyWith(
  quote: Uint8Array | DcapQuote,
  opts: VerifyDcapOptions,
  checks: SignatureChecks,
  auto = false,
): VerifiedEvidence {
  const b = begin(quote, opts);
  const { q, a } = b;
  // 'auto': a call whose collateral object is already checked has two or three signatures left,
  // which cost more to queue on another thread than to check here (decision 1340).
  if (auto && checks.deferred && byObject(opts.collateral, objectFields(opts.collateral), a) !== undefined)
    checks.later = undefined;

  const early = checks.deferred ? startQuoteChecks(q, opts.collateral, a, checks.later) : undefined;
  // On the signature thread, the collateral's checks under held keys start now too, before it is
  // parsed (decision 1790); the lookup is what prepared() would do first.
  let looked: CollateralLookup | undefined;
  let earlyCol: EarlyCollateral | undefined;
  if (checks.later === ecdsaVerifyOnThread) {
    looked = lookupCollateral(opts.collateral, a);
    if (looked.p === undefined) earlyCol = startCollateralChecks(looked.own, a, checks.later);
  }

  // Collateral: signatures and chains (cached by bytes), then its time windows at `now`.
  return finish(b, opts, prepared(opts.collateral, a, checks, looked, earlyCol), checks, early);
}

/** Everything after the collateral's signatures: time windows, the PCK chain, the quote, matching. */
function finish(
  b: Begun,
  opts: VerifyDcapOptions,
  col: PreparedCollateral,
  checks: SignatureChecks,
  early: EarlyChecks | undefined = undefined,
): VerifiedEvidence {
  const { q, a } = b;
  const { now } = opts;
  const tdx = q.body.kind === 'tdx';
  const { tcbInfo, qeIdentity, rootCrl, pckCrl } = col;
  if (tcbInfo.id !== (tdx ? 'TDX' : 'SGX'))
    throw new FirnError(
      'E_EVIDENCE_COLLATERAL',
      `TCB info is for ${tcbInfo.id} but the quote is ${tdx ? 'TDX' : 'SGX'}`,
    );
  if (tdx && tcbInfo.version < 3) throw new FirnError('E_EVIDENCE_COLLATERAL', 'TDX needs TCB info v3');
  if (qeIdentity.id !== (tdx ? 'TD_QE' : 'QE'))
    throw new FirnError(
      'E_EVIDENCE_COLLATERAL',
      `QE identity is ${qeIdentity.id} but the quote is ${tdx ? 'TDX' : 'SGX'}`,
    );
  const issued = Math.max(tcbInfo.issueDate, qeIdentity.issueDate, rootCrl.thisUpdate, pckCrl.thisUpdate);
  const nextUpdate = Math.min(
    tcbInfo.nextUpdate,
    qeIdentity.nextUpdate,
    rootCrl.nextUpdate,
    pckCrl.nextUpdate,
  );
  if (now < issued)
    throw new FirnError('E_EVIDENCE_EXPIRED', 'collateral is not yet valid at the verification time');
  // Plain loops in the order of the list they replace: finish is hot, and spreads of mapped
  // tuples made its optimized code large and quick to deoptimize (decision 1450).
  for (const c of col.tcbChain) checkWindow(c, now, 'TCB signing');
  for (const c of col.qeIdChain) checkWindow(c, now, 'QE identity signing');
  for (const c of col.pckCrlChain) checkWindow(c, now, 'PCK CRL issuer');

  // PCK chain to the root, with revocation: the root CRL covers CAs, the PCK CRL covers the PCK.
  const pck = pckChain(early?.pck ?? pckChainSource(q, opts.collateral, a), a, checks);
  const [leaf, pckCa] = pck.certs as [Certificate, Certificate, ...Certificate[]];
  for (const [i, c] of pck.certs.entries()) checkWindow(c, now, i === 0 ? 'PCK' : 'PCK chain CA');
  const root = pck.certs[pck.certs.length - 1]!;
  if (!same(root.der, col.tcbChain[col.tcbChain.length - 1]!.der))
    throw chainErr('PCK chain and collateral chain end in different roots');
  if (!same(pckCrl.issuer, pckCa.subject) || !same(col.pckCrlChain[0]!.der, pckCa.der))
    throw chainErr('PCK CRL is not issued by the CA of this PCK certificate');
  if (
    revokedIn(rootCrl, pck.certs, 1, pck.certs.length - 1) ||
    revokedIn(rootCrl, col.tcbChain, 0, col.tcbChain.length - 1) ||
    revokedIn(rootCrl, col.qeIdChain, 0, col.qeIdChain.length - 1) ||
    revokedIn(rootCrl, col.pckCrlChain, 0, col.pckCrlChain.length - 1)
  )
    throw new FirnError('E_EVIDENCE_REVOKED', 'an intermediate or signing certificate is revoked');
  if (pckCrl.revoked.has(leaf.serial))
    throw new FirnError('E_EVIDENCE_REVOKED', 'PCK certificate is revoked');

  // QE report: signed by the PCK key, and its report data binds the attestation key and auth data.
  const cd = q.certification;
  // A key imported on the signature thread that failed to import here too: the import's error,
  // at the place the synchronous order meets it.
  const keyErr = (r: SignatureResult, sig: () => FirnError) => () => {
    const e = keyErrorOf(r);
    return e instanceof FirnError ? e : sig();
  };
  if (early?.qeReport !== undefined && early.leaf === leaf)
    checks.add(early.qeReport, keyErr(early.qeReport, qeReportErr));
  else if (!qeReportKnown(leaf, cd.qeReport.raw, cd.qeReportSignature))
    checks.raw(leaf.publicKey(), cd.qeReport.raw, cd.qeReportSignature, qeReportErr);
  checks.whenPassed(() => rememberQeReport(leaf, cd.qeReport.raw, cd.qeReportSignature));
  const binding = createHash('sha256').update(q.attestationKey).update(cd.qeAuthData).digest();
  if (
    !same(binding, cd.qeReport.reportData.subarray(0, 32)) ||
    cd.qeReport.reportData.subarray(32).some((x) => x !== 0)
  )
    throw new FirnError('E_EVIDENCE_SIGNATURE', 'QE report does not bind the attestation key');

  // The quote itself, signed by the attestation key.
  if (early?.quote !== undefined) checks.add(early.quote, keyErr(early.quote, quoteErr));
  else checks.raw(attestationKey(q.attestationKey), q.signedBytes, q.signature, quoteErr);

  // Platform matching and TCB status as Intel's QVL computes it.
  const ext = pck.ext;
  if (!same(ext.fmspc, tcbInfo.fmspc))
    throw new FirnError('E_EVIDENCE_COLLATERAL', 'FMSPC of the PCK certificate does not match the TCB info');
  if (!same(ext.pceId, tcbInfo.pceId))
    throw new FirnError('E_EVIDENCE_COLLATERAL', 'PCE-ID of the PCK certificate does not match the TCB info');
  const td = q.body.kind === 'tdx' ? q.body.report : undefined;
  const level = matchTcbLevel(tcbInfo, ext, td);
  let tcb = { status: level.status, advisoryIds: [...level.advisoryIds] };
  if (td !== undefined) tcb = convergeTcb(tcb, matchTdxModule(tcbInfo, td));
  const platformTcb = tcb;
  const qeTcb = matchQeIdentity(qeIdentity, cd.qeReport);
  tcb = convergeTcb(tcb, qeTcb);
  // The root CA CRL covers the signing chains of both classes' collateral.
  const platformNextUpdate = Math.min(tcbInfo.nextUpdate, rootCrl.nextUpdate, pckCrl.nextUpdate);
  const qeNextUpdate = Math.min(qeIdentity.nextUpdate, rootCrl.nextUpdate);

  return verdict(
    q,
    ext,
    tcbInfo,
    qeIdentity,
    level,
    tcb,
    platformTcb,
    qeTcb,
    col.latestTcbDate,
    now,
    issued,
    nextUpdate,
    platformNextUpdate,
    qeNextUpdate,
  );
}
