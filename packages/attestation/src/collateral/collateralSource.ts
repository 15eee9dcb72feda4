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
  /** Collateral that came with the evidence (untrusted): its current pieces are used, not fetched. */
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
   * their nextUpdate are kept; only missing, unusable or expired pieces come from the source.
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
  const keep: Partial<Record<Piece, boolean>> = {};
  const test = (p: Piece, f: () => boolean) => {
    try {
      keep[p] = f();
    } catch {
      keep[p] = false;
    }
  };
  test('tcbInfo', () => {
    const i = parseTcbInfo(c.tcbInfo);
    return (
      i.id === t.tee &&
      (t.fmspc === undefined || Buffer.from(i.fmspc).toString('hex').toUpperCase() === t.fmspc) &&
      i.issueDate <= now &&
      now < i.nextUpdate
    );
  });
  test('qeIdentity', () => {
    const i = parseQeIdentity(c.qeIdentity);
    return i.id === (t.tee === 'TDX' ? 'TD_QE' : 'QE') && i.issueDate <= now && now < i.nextUpdate;
  });
  const current = (crl: { thisUpdate: number; nextUpdate: number }) =>
    crl.thisUpdate <= now && now < crl.nextUpdate;
  test('pckCrl', () => {
    const crl = parseCrl(c.pckCrl);
    const issuerOk = t.pckIssuer === undefined || Buffer.from(crl.issuer).equals(Buffer.from(t.pckIssuer));
    return issuerOk && current(crl);
  });
  test('rootCaCrl', () => current(parseCrl(c.rootCaCrl)));
  const out: Partial<QuoteCollateralV3> = {};
  if (keep.tcbInfo) {
    out.tcbInfo = c.tcbInfo;
    out.tcbInfoSignature = c.tcbInfoSignature;
    out.tcbInfoIssuerChain = c.tcbInfoIssuerChain;
  }
  if (keep.qeIdentity) {
    out.qeIdentity = c.qeIdentity;
    out.qeIdentitySignature = c.qeIdentitySignature;
    out.qeIdentityIssuerChain = c.qeIdentityIssuerChain;
  }
  if (keep.pckCrl) {
    out.pckCrl = c.pckCrl;
    out.pckCrlIssuerChain = c.pckCrlIssuerChain;
  }
  if (keep.rootCaCrl) out.rootCaCrl = c.rootCaCrl;
  if (c.pckCertificateChain !== undefined) out.pckCertificateChain = c.pckCertificateChain;
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
 * caching). Attached pieces that are current are used as they are; the rest is fetched.
 */
export function pcsCollateralSource(fetcher: CollateralFetcher | CollateralFetcherOptions): CollateralSource {
  const f = 'getCollateral' in fetcher ? fetcher : createCollateralFetcher(fetcher);
  return {
    description: `pcs ${f.baseUrl}`,
    async collateralFor(quote, now, opts = {}) {
      const q = asQuote(quote);
      const have = opts.attached === undefined ? {} : currentCollateralPieces(opts.attached, q, now);
      if (complete(have)) return have;
      const got = await f.getCollateral(q, now, { graceSeconds: opts.graceSeconds ?? 0, have });
      if (have.pckCertificateChain !== undefined) got.pckCertificateChain = have.pckCertificateChain;
      return got;
    },
  };
}

/**
 * A source holding one collateral set (e.g. a dcap-qvl QuoteCollateralV3 file). Attached pieces that
 * are current take precedence; otherwise the file's pieces are returned as they are, even when
 * past nextUpdate (the policy then refuses them with E_EVIDENCE_EXPIRED).
 */
export function offlineCollateralSource(collateral: unknown): CollateralSource {
  const fixed = toQuoteCollateralV3(collateral);
  return {
    description: 'offline',
    async collateralFor(quote, now, opts = {}) {
      const have =
        opts.attached === undefined ? {} : currentCollateralPieces(opts.attached, asQuote(quote), now);
      return { ...fixed, ...have };
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
