import { FirnError } from '@firn/core';
import { parsePckExtensions } from '../dcap/pckExtensions.ts';
import { parseQeIdentity } from '../dcap/qeIdentity.ts';
import { CERT_DATA_PCK_CHAIN, type DcapQuote, parseDcapQuote } from '../dcap/quote.ts';
import { type QuoteCollateralV3, toQuoteCollateralV3 } from '../dcap/quoteCollateral.ts';
import { parseTcbInfo } from '../dcap/tcbInfo.ts';
import { chainCertificates, parseCertificate, parseCrl } from '../dcap/x509.ts';
import {
  type CollateralFetcher,
  type CollateralFetcherOptions,
  createCollateralFetcher,
} from './createCollateralFetcher.ts';

export interface CollateralForOptions {
  /**
   * Collateral that came with the evidence (untrusted): a current piece is used only where the
   * source has no copy of it or where it is newer than the source's (see newestCollateralPieces).
   */
  attached?: unknown;
  /** The policy's collateral grace, seconds (a down service may then be bridged by the cache). */
  graceSeconds?: number;
}

/**
 * Where DCAP collateral comes from. One source serves every path: the verifier daemon, the
 * requester SDK, the CLI and the node that attaches collateral to its evidence. A source only
 * gathers bytes; verifyDcapQuote checks every signature and chain and the policy every date, so a
 * source (and whatever was attached) is never trusted.
 */
export interface CollateralSource {
  /** For logs and errors: "pcs https://…", "offline", … (never credentials). */
  readonly description: string;
  /**
   * Collateral for this quote at `now`. Pieces of `attached` that are for this quote and before
   * their nextUpdate fill what the source has no copy of; where both exist the newest wins, piece
   * by piece (newestCollateralPieces).
   * Errors: E_UNAVAILABLE / E_TOO_LARGE / E_EVIDENCE_COLLATERAL from the service, E_UNSUPPORTED for
   * a quote whose PCK chain is neither inside it nor attached.
   */
  collateralFor(
    quote: Uint8Array | DcapQuote,
    now: number,
    opts?: CollateralForOptions,
  ): Promise<QuoteCollateralV3>;
}

type Piece = 'tcbInfo' | 'qeIdentity' | 'pckCrl' | 'rootCaCrl';

/** The TEE, FMSPC (upper-case hex) and PCK issuer of a quote (the last two when its PCK chain is inside). */
function quoteTarget(q: DcapQuote): { fmspc?: string; pckIssuer?: Uint8Array; tee: 'SGX' | 'TDX' } {
  const tee = q.body.kind === 'tdx' ? 'TDX' : 'SGX';
  if (q.certification.certDataType !== CERT_DATA_PCK_CHAIN) return { tee };
  const [leafDer] = chainCertificates(q.certification.certData, 'PCK chain');
  const leaf = parseCertificate(leafDer!);
  return {
    tee,
    fmspc: Buffer.from(parsePckExtensions(leaf).fmspc).toString('hex').toUpperCase(),
    pckIssuer: leaf.issuer,
  };
}

/** A piece's place in time: its order key (newer is larger) and its validity window, unix seconds. */
interface PieceDate {
  /** TCB info / QE identity: [tcbEvaluationDataNumber, issueDate]; CRLs: [thisUpdate, 0]. */
  order: [number, number];
  from: number;
  nextUpdate: number;
}

/**
 * Date a piece of `c` if it parses and is for the quote's target (TEE; FMSPC for TCB info; PCK CA
 * for the PCK CRL); undefined otherwise. Signatures are not checked here.
 */
function datePiece(
  c: Partial<QuoteCollateralV3>,
  p: Piece,
  t: ReturnType<typeof quoteTarget>,
): PieceDate | undefined {
  try {
    if (p === 'tcbInfo') {
      if (c.tcbInfo === undefined) return undefined;
      const i = parseTcbInfo(c.tcbInfo);
      if (i.id !== t.tee) return undefined;
      if (t.fmspc !== undefined && Buffer.from(i.fmspc).toString('hex').toUpperCase() !== t.fmspc)
        return undefined;
      return { order: [i.tcbEvaluationDataNumber, i.issueDate], from: i.issueDate, nextUpdate: i.nextUpdate };
    }
    if (p === 'qeIdentity') {
      if (c.qeIdentity === undefined) return undefined;
      const i = parseQeIdentity(c.qeIdentity);
      if (i.id !== (t.tee === 'TDX' ? 'TD_QE' : 'QE')) return undefined;
      return { order: [i.tcbEvaluationDataNumber, i.issueDate], from: i.issueDate, nextUpdate: i.nextUpdate };
    }
    const der = p === 'pckCrl' ? c.pckCrl : c.rootCaCrl;
    if (der === undefined) return undefined;
    const crl = parseCrl(der);
    if (
      p === 'pckCrl' &&
      t.pckIssuer !== undefined &&
      !Buffer.from(crl.issuer).equals(Buffer.from(t.pckIssuer))
    )
      return undefined;
    return { order: [crl.thisUpdate, 0], from: crl.thisUpdate, nextUpdate: crl.nextUpdate };
  } catch {
    return undefined;
  }
}

const PIECES: readonly Piece[] = ['tcbInfo', 'qeIdentity', 'pckCrl', 'rootCaCrl'];

/** Copy one piece (with its signature and issuer chain) from `from` into `to`. */
function copyPiece(to: Partial<QuoteCollateralV3>, from: Partial<QuoteCollateralV3>, p: Piece): void {
  if (p === 'tcbInfo') {
    to.tcbInfo = from.tcbInfo!;
    to.tcbInfoSignature = from.tcbInfoSignature!;
    to.tcbInfoIssuerChain = from.tcbInfoIssuerChain!;
  } else if (p === 'qeIdentity') {
    to.qeIdentity = from.qeIdentity!;
    to.qeIdentitySignature = from.qeIdentitySignature!;
    to.qeIdentityIssuerChain = from.qeIdentityIssuerChain!;
  } else if (p === 'pckCrl') {
    to.pckCrl = from.pckCrl!;
    to.pckCrlIssuerChain = from.pckCrlIssuerChain!;
  } else to.rootCaCrl = from.rootCaCrl!;
}

/**
 * The pieces of attached collateral that are worth keeping for this quote at `now`: each must
 * parse, be for the quote's TEE (FMSPC for TCB info, PCK CA for the PCK CRL), and lie inside its
 * [issueDate or thisUpdate, nextUpdate) window at `now`. This is a
 * selection, not a check: the signatures are verified later with everything else.
 */
export function currentCollateralPieces(
  attached: unknown,
  quote: DcapQuote,
  now: number,
): Partial<QuoteCollateralV3> {
  let c: QuoteCollateralV3;
  try {
    c = toQuoteCollateralV3(attached);
  } catch {
    return {};
  }
  const t = quoteTarget(quote);
  const out: Partial<QuoteCollateralV3> = {};
  for (const p of PIECES) {
    const d = datePiece(c, p, t);
    if (d !== undefined && d.from <= now && now < d.nextUpdate) copyPiece(out, c, p);
  }
  if (c.pckCertificateChain !== undefined) out.pckCertificateChain = c.pckCertificateChain;
  return out;
}

const newer = (a: [number, number], b: [number, number]) => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

/**
 * Merge the verifier's own collateral (`own`: an offline file, a cache, a PCS/PCCS answer) with
 * the current attached pieces (`attached`, from currentCollateralPieces), piece by piece: where
 * the verifier holds a piece for this quote, the newest of the two wins (TCB info and QE identity
 * by tcbEvaluationDataNumber then issueDate, CRLs by thisUpdate; a tie keeps the verifier's own);
 * an attached piece only fills what the verifier has no copy of. So a node cannot hide a
 * revocation or a TCB recovery behind older collateral that Intel signed and that is still before
 * its nextUpdate. Nothing is trusted: verifyDcapQuote checks every signature afterwards.
 */
export function newestCollateralPieces(
  own: Partial<QuoteCollateralV3>,
  attached: Partial<QuoteCollateralV3>,
  quote: DcapQuote,
): Partial<QuoteCollateralV3> {
  const t = quoteTarget(quote);
  const out: Partial<QuoteCollateralV3> = {};
  for (const p of PIECES) {
    const mine = datePiece(own, p, t);
    const theirs = datePiece(attached, p, t);
    if (theirs !== undefined && (mine === undefined || newer(theirs.order, mine.order)))
      copyPiece(out, attached, p);
    else if (own[p] !== undefined) copyPiece(out, own, p);
  }
  const chain = own.pckCertificateChain ?? attached.pckCertificateChain;
  if (chain !== undefined) out.pckCertificateChain = chain;
  return out;
}

const complete = (p: Partial<QuoteCollateralV3>): p is QuoteCollateralV3 =>
  p.tcbInfo !== undefined &&
  p.qeIdentity !== undefined &&
  p.pckCrl !== undefined &&
  p.rootCaCrl !== undefined;

const asQuote = (q: Uint8Array | DcapQuote) => (q instanceof Uint8Array ? parseDcapQuote(q) : q);

/**
 * A source backed by a PCS or PCCS (see createCollateralFetcher for URLs, timeouts, retries and
 * caching, refreshed daily). Every piece is asked of the (cached) fetcher, so a node cannot hide a
 * revocation behind an older CRL, nor a TCB recovery behind an older TCB info or QE identity that
 * has not reached its nextUpdate (decision 1792); where an attached piece is newer than the
 * fetcher's, the newest wins (newestCollateralPieces).
 */
export function pcsCollateralSource(fetcher: CollateralFetcher | CollateralFetcherOptions): CollateralSource {
  const f = 'getCollateral' in fetcher ? fetcher : createCollateralFetcher(fetcher);
  return {
    description: `pcs ${f.baseUrl}`,
    async collateralFor(quote, now, opts = {}) {
      const q = asQuote(quote);
      const attached = opts.attached === undefined ? {} : currentCollateralPieces(opts.attached, q, now);
      const got = await f.getCollateral(q, now, { graceSeconds: opts.graceSeconds ?? 0 });
      const out = newestCollateralPieces(got, attached, q);
      if (!complete(out))
        throw new FirnError('E_EVIDENCE_COLLATERAL', `collateral from pcs ${f.baseUrl} is incomplete`);
      if (attached.pckCertificateChain !== undefined) out.pckCertificateChain = attached.pckCertificateChain;
      return out;
    },
  };
}

/**
 * A source holding one collateral set (e.g. a dcap-qvl QuoteCollateralV3 file): the verifier's
 * own copy. Current attached pieces replace a piece of the file only when they are newer
 * (newestCollateralPieces) or the file has none for this quote; otherwise the file's pieces are
 * returned as they are, even when past nextUpdate (the policy then refuses them with
 * E_EVIDENCE_EXPIRED).
 */
export function offlineCollateralSource(collateral: unknown): CollateralSource {
  const fixed = toQuoteCollateralV3(collateral);
  return {
    description: 'offline',
    async collateralFor(quote, now, opts = {}) {
      if (opts.attached === undefined) return { ...fixed };
      const q = asQuote(quote);
      const merged = newestCollateralPieces(fixed, currentCollateralPieces(opts.attached, q, now), q);
      return { ...fixed, ...merged };
    },
  };
}

/** A source that has nothing: evidence must carry current collateral (refused otherwise). */
export const ATTACHED_ONLY_COLLATERAL: CollateralSource = {
  description: 'attached only',
  async collateralFor(quote, now, opts = {}) {
    const have =
      opts.attached === undefined ? {} : currentCollateralPieces(opts.attached, asQuote(quote), now);
    if (complete(have)) return have;
    throw new FirnError(
      'E_EVIDENCE_COLLATERAL',
      'the evidence carries no current collateral and no collateral service is configured (set a PCCS URL)',
    );
  },
};

/**
 * QuoteCollateralV3 as dcap-qvl's JSON shape (snake_case, bytes as hex), the form a node attaches to
 * its evidence bundle and `firn attest verify --collateral` reads.
 */
export function quoteCollateralToJson(c: QuoteCollateralV3): Record<string, string> {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const o: Record<string, string> = {
    pck_crl_issuer_chain: c.pckCrlIssuerChain,
    root_ca_crl: hex(c.rootCaCrl),
    pck_crl: hex(c.pckCrl),
    tcb_info_issuer_chain: c.tcbInfoIssuerChain,
    tcb_info: c.tcbInfo,
    tcb_info_signature: hex(c.tcbInfoSignature),
    qe_identity_issuer_chain: c.qeIdentityIssuerChain,
    qe_identity: c.qeIdentity,
    qe_identity_signature: hex(c.qeIdentitySignature),
  };
  if (c.pckCertificateChain !== undefined) o.pck_certificate_chain = c.pckCertificateChain;
  return o;
}
