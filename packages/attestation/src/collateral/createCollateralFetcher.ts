import { FirnError, TooLargeError } from '@firn/core';
import { parsePckExtensions } from '../dcap/pckExtensions.ts';
import { parseQeIdentity } from '../dcap/qeIdentity.ts';
import { CERT_DATA_PCK_CHAIN, type DcapQuote, parseDcapQuote } from '../dcap/quote.ts';
import type { QuoteCollateralV3 } from '../dcap/quoteCollateral.ts';
import { parseTcbInfo } from '../dcap/tcbInfo.ts';
import { chainCertificates, MAX_CRL_BYTES, parseCertificate, parseCrl } from '../dcap/x509.ts';
import { boundedGet, where } from './boundedGet.ts';
import { createUrlCache } from './createUrlCache.ts';

/** Intel's PCS; any PCCS serves the same v4 paths at its own base URL. */
export const INTEL_PCS_BASE_URL = 'https://api.trustedservices.intel.com';
/** Where Intel publishes the root CA's CRL (the PCS has no endpoint for it; a PCCS does). */
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';
/** A collateral response larger than this is refused (PCK CRLs are the largest, a few MiB at most). */
export const MAX_COLLATERAL_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * Issuer-chain header names, first match wins. Intel PCS API v4 sends `TCB-Info-Issuer-Chain`; API
 * v3 and several PCCS builds send `SGX-TCB-Info-Issuer-Chain`. Header names are case-insensitive.
 */
export const ISSUER_CHAIN_HEADERS = {
  tcbInfo: ['TCB-Info-Issuer-Chain', 'SGX-TCB-Info-Issuer-Chain'],
  qeIdentity: ['SGX-Enclave-Identity-Issuer-Chain', 'Enclave-Identity-Issuer-Chain'],
  pckCrl: ['SGX-PCK-CRL-Issuer-Chain'],
} as const;

export interface CollateralFetcherOptions {
  /** PCS or PCCS base URL, e.g. https://api.trustedservices.intel.com or https://pccs.local:8081. */
  baseUrl: string;
  /** Root CA CRL location; default Intel's for the PCS, `<baseUrl>/sgx/certification/v4/rootcacrl` otherwise. */
  rootCaCrlUrl?: string;
  /** Keep responses on disk here as well as in memory (survives restarts; checked like any response). */
  cacheDir?: string;
  /** Injected fetch (tests, proxies); default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Time limit of one HTTP attempt, milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Attempts after the first on a network error, a timeout, 408, 429 or 5xx (default 3). */
  retries?: number;
  /** First backoff delay, milliseconds; doubles per attempt, with jitter (default 250). */
  minRetryDelayMs?: number;
  /** Response size cap, bytes (default 8 MiB). */
  maxResponseBytes?: number;
  /** Extra request headers, e.g. a PCCS or PCS subscription key; never logged. */
  headers?: Record<string, string>;
  /** In-memory cache capacity, entries (default 256). */
  cacheEntries?: number;
  /**
   * Seconds after which a cached piece is asked for again although it is still before its
   * nextUpdate (default 86,400: daily, as a PCCS refreshes; decision 1792). Intel's pieces stay
   * current for about 30 days, so without it a revocation or a TCB recovery published meanwhile
   * would go unseen until then. When asking again fails, the cached copy serves while current.
   */
  refreshSeconds?: number;
  /**
   * How long the service's refusal of an identifier taken from the quote (a 4xx for its FMSPC's
   * TCB info, E_EVIDENCE_COLLATERAL) is remembered, seconds of wall time (default 300): tries
   * within it are refused again without asking (decision 1834).
   */
  refusalCacheSeconds?: number;
}

/** How long a refusal of a quote's FMSPC is remembered by default, seconds (decision 1834). */
export const DEFAULT_REFUSAL_CACHE_SECONDS = 300;
/** Most refusals remembered at once (oldest forgotten first). */
const MAX_REMEMBERED_REFUSALS = 1024;

/** How long a cached collateral piece is used before it is asked for again, seconds (decision 1792). */
export const DEFAULT_COLLATERAL_REFRESH_SECONDS = 86_400;

/** The four pieces of DCAP collateral a PCS/PCCS serves. */
export type CollateralPiece = 'tcbInfo' | 'qeIdentity' | 'pckCrl' | 'rootCaCrl';

export interface GetCollateralOptions {
  /**
   * Policy's collateral grace, seconds: when the service cannot be reached, a cached piece whose
   * nextUpdate is at most this far behind `now` is used (the policy then decides on it). Default 0.
   */
  graceSeconds?: number;
  /**
   * Pieces the caller already holds (e.g. attached by the node and still current): not fetched.
   * When the cache holds a current copy of such a piece, the cached copy is returned instead, so
   * that the caller can keep the newest of the two (see newestCollateralPieces).
   */
  have?: Partial<QuoteCollateralV3>;
}

export interface CollateralFetcher {
  /** The base URL it fetches from (no credentials). */
  readonly baseUrl: string;
  /**
   * Collateral for a quote, from cache while each piece is before its nextUpdate at `now` and was
   * fetched within `refreshSeconds`, else from the PCS/PCCS (pieces in `have` are not fetched: a current cached copy, else `have`'s). Nothing here is trusted:
   * verifyDcapQuote checks every signature and chain, and the policy checks every date.
   * Errors: E_UNAVAILABLE (unreachable, timed out or non-2xx after retries, naming the URL),
   * E_EVIDENCE_COLLATERAL for a 4xx about the quote's FMSPC (the service knows no TCB info for the
   * platform the PCK leaf names: a fact about the evidence, remembered `refusalCacheSeconds`),
   * E_TOO_LARGE (response over the cap), E_EVIDENCE_COLLATERAL (a body or header that does not
   * parse, naming the URL), E_UNSUPPORTED (a quote without its PCK chain).
   */
  getCollateral(
    quote: Uint8Array | DcapQuote,
    now: number,
    opts?: GetCollateralOptions,
  ): Promise<QuoteCollateralV3>;
}

/**
 * One cached response: body (hex for binary), issuer chain (PEM), the piece's nextUpdate and when
 * it was fetched (the caller's `now` then; unix s; absent in entries written before it was kept,
 * which are asked for again).
 */
interface Entry {
  body: string;
  chain: string;
  nextUpdate: number;
  fetchedAt?: number;
}

/** The service path of a URL, for errors (never the query's credentials or headers). */

const collateralErr = (url: string, m: string, cause?: unknown) =>
  new FirnError('E_EVIDENCE_COLLATERAL', `${m} (${where(url)})`, cause === undefined ? {} : { cause });

/** The exact text of a top-level object member's value (signatures cover these bytes as served). */
export function rawMember(body: string, name: string): string {
  const m =
    new RegExp(`^\\s*\\{\\s*"${name}"\\s*:\\s*`).exec(body) ??
    new RegExp(`[,{]\\s*"${name}"\\s*:\\s*`).exec(body);
  if (m === null) throw new FirnError('E_EVIDENCE_COLLATERAL', `response has no ${name}`);
  const start = m.index + m[0].length;
  if (body[start] !== '{') throw new FirnError('E_EVIDENCE_COLLATERAL', `${name} is not an object`);
  let depth = 0;
  let inStr = false;
  for (let i = start; i < body.length; i++) {
    const c = body[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return body.slice(start, i + 1);
  }
  throw new FirnError('E_EVIDENCE_COLLATERAL', `${name} is not terminated`);
}

/**
 * A CRL as DER bytes from what a PCS or PCCS serves: DER (PCS with encoding=der, PCCS), PEM (PCS
 * without encoding), or hex text of the DER (older PCCS builds). Size-capped; anything else is
 * E_EVIDENCE_COLLATERAL.
 */
export function crlDerFromResponse(body: Uint8Array): Uint8Array {
  if (body.length > MAX_CRL_BYTES * 2 + 64)
    throw new TooLargeError('CRL response', body.length, MAX_CRL_BYTES * 2);
  if (body[0] === 0x30) return new Uint8Array(body);
  const t = Buffer.from(body).toString('latin1').trim();
  const pem = /^-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----$/.exec(t);
  if (pem !== null) return new Uint8Array(Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64'));
  if (/^([0-9a-fA-F]{2})+$/.test(t)) return new Uint8Array(Buffer.from(t, 'hex'));
  throw new FirnError('E_EVIDENCE_COLLATERAL', 'CRL response is neither DER, PEM nor hex');
}

function signatureOf(body: string, url: string): Uint8Array {
  let s: unknown;
  try {
    s = (JSON.parse(body) as { signature?: unknown }).signature;
  } catch (e) {
    throw collateralErr(url, 'response is not JSON', e);
  }
  if (typeof s !== 'string' || !/^[0-9a-fA-F]{128}$/.test(s))
    throw collateralErr(url, 'signature must be 64 bytes of hex');
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/**
 * Create a PCS/PCCS collateral client (Intel PCS API v4 paths: `/{sgx,tdx}/certification/v4/tcb`,
 * `/{sgx,tdx}/certification/v4/qe/identity`, `/sgx/certification/v4/pckcrl`, the root CA CRL), with
 * per-attempt timeouts, retries with exponential backoff (p-retry), an in-memory LRU cache (and an
 * optional disk cache) valid until each piece's nextUpdate, and stale use only within the caller's
 * grace when the service is down. Follows Intel's PCS API v4 reference and the PCCS behaviour of
 * SGXDataCenterAttestationPrimitives (issuer chains in URL-encoded PEM headers).
 */
export function createCollateralFetcher(opts: CollateralFetcherOptions): CollateralFetcher {
  const base = opts.baseUrl.replace(/\/+$/, '');
  let parsedBase: URL;
  try {
    parsedBase = new URL(base);
  } catch {
    throw new FirnError('E_INVALID_INPUT', `collateral service URL is not a URL: ${base}`);
  }
  if (parsedBase.protocol !== 'http:' && parsedBase.protocol !== 'https:')
    throw new FirnError('E_INVALID_INPUT', 'collateral service URL must be http(s)');
  if (parsedBase.username !== '' || parsedBase.password !== '')
    throw new FirnError('E_INVALID_INPUT', 'put credentials in headers, not in the collateral service URL');
  const rootCrlUrl =
    opts.rootCaCrlUrl ??
    (base === INTEL_PCS_BASE_URL ? INTEL_ROOT_CA_CRL_URL : `${base}/sgx/certification/v4/rootcacrl`);
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const retries = opts.retries ?? 3;
  const refreshSeconds = opts.refreshSeconds ?? DEFAULT_COLLATERAL_REFRESH_SECONDS;
  const cap = opts.maxResponseBytes ?? MAX_COLLATERAL_RESPONSE_BYTES;
  const cache = createUrlCache<Entry>({
    ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.cacheEntries !== undefined ? { entries: opts.cacheEntries } : {}),
    maxFileChars: cap * 2 + 65536,
    isEntry: (e): e is Entry =>
      typeof e === 'object' &&
      e !== null &&
      typeof (e as Entry).body === 'string' &&
      typeof (e as Entry).chain === 'string' &&
      typeof (e as Entry).nextUpdate === 'number',
  });
  const inflight = new Map<string, Promise<Entry>>();
  /** URLs whose identifier the service refused: the refusal, until (ms since the epoch). */
  const refusals = new Map<string, { err: FirnError; until: number }>();
  /** The errors that are the service's refusal of an identifier (not a body that failed to parse). */
  const identifierRefusals = new WeakSet<FirnError>();
  const refusalMs = Math.max(0, opts.refusalCacheSeconds ?? DEFAULT_REFUSAL_CACHE_SECONDS) * 1000;

  async function download(
    url: string,
    chainHeaders: readonly string[] | undefined,
    binary: boolean,
    nextUpdateOf: (body: Buffer) => number,
    identifier?: string,
  ): Promise<Entry> {
    const got = await boundedGet(url, {
      fetch: doFetch,
      timeoutMs,
      retries,
      minRetryDelayMs: opts.minRetryDelayMs ?? 250,
      maxBytes: cap,
      headers: {
        accept: binary ? 'application/pkix-crl, application/x-pem-file, text/plain' : 'application/json',
        ...opts.headers,
      },
      service: 'collateral service',
      response: 'collateral response',
      ...(identifier === undefined
        ? {}
        : {
            refusedIdentifier: (status: number, at: string) => {
              const e = new FirnError(
                'E_EVIDENCE_COLLATERAL',
                `collateral service has no collateral for ${identifier} named by the quote: it answered ${status} (${at})`,
                { details: { status } },
              );
              identifierRefusals.add(e);
              return e;
            },
          }),
    });
    const body = Buffer.from(got.body);
    const headers = got.headers;
    let chain = '';
    if (chainHeaders !== undefined) {
      const h = chainHeaders.map((n) => headers.get(n)).find((v) => v !== null && v !== undefined);
      if (h === undefined || h === null)
        throw collateralErr(url, `response lacks the ${chainHeaders[0]} header`);
      try {
        chain = decodeURIComponent(h);
      } catch (e) {
        throw collateralErr(url, `${chainHeaders[0]} is not URL-encoded PEM`, e);
      }
      if (!chain.includes('-----BEGIN CERTIFICATE-----'))
        throw collateralErr(url, `${chainHeaders[0]} holds no PEM certificate`);
    }
    let nextUpdate: number;
    try {
      nextUpdate = nextUpdateOf(body);
    } catch (e) {
      throw collateralErr(url, `response does not parse: ${e instanceof Error ? e.message : 'invalid'}`, e);
    }
    // Binary bodies are kept as DER hex so that the cache entry is plain JSON.
    const text = binary ? Buffer.from(crlDerFromResponse(body)).toString('hex') : body.toString('utf8');
    return { body: text, chain, nextUpdate };
  }

  /**
   * A piece from cache while current and fetched within refreshSeconds, else downloaded; when the
   * download fails, a current cached copy serves, and a stale one only within the grace.
   */
  async function get(
    url: string,
    chainHeaders: readonly string[] | undefined,
    binary: boolean,
    now: number,
    grace: number,
    nextUpdateOf: (body: Buffer) => number,
    identifier?: string,
  ): Promise<Entry> {
    const hit = await cache.lookup(url);
    const current = hit !== undefined && now < hit.nextUpdate;
    if (current && hit.fetchedAt !== undefined && now - hit.fetchedAt < refreshSeconds) return hit;
    // A refusal of the identifier is remembered briefly: a node cannot make the verifier ask again
    // at every try.
    const refused = refusals.get(url);
    if (refused !== undefined) {
      if (Date.now() < refused.until) {
        if (current) return hit;
        throw refused.err;
      }
      refusals.delete(url);
    }
    let p = inflight.get(url);
    if (p === undefined) {
      p = download(url, chainHeaders, binary, nextUpdateOf, identifier).finally(() => inflight.delete(url));
      inflight.set(url, p);
    }
    try {
      const e = { ...(await p), fetchedAt: now };
      await cache.store(url, e);
      return e;
    } catch (e) {
      if (e instanceof FirnError && identifierRefusals.has(e) && refusalMs > 0) {
        refusals.delete(url);
        refusals.set(url, { err: e, until: Date.now() + refusalMs });
        if (refusals.size > MAX_REMEMBERED_REFUSALS) refusals.delete(refusals.keys().next().value!);
      }
      // Asking again early is a refresh: its failure leaves the current copy in use.
      if (current) return hit;
      if (
        hit !== undefined &&
        grace > 0 &&
        now <= hit.nextUpdate + grace &&
        e instanceof FirnError &&
        e.code === 'E_UNAVAILABLE'
      )
        return hit;
      throw e;
    }
  }

  const crlNext = (b: Buffer) => parseCrl(crlDerFromResponse(b)).nextUpdate;

  return {
    baseUrl: base,
    async getCollateral(quote, now, o = {}) {
      if (typeof now !== 'number' || !Number.isFinite(now))
        throw new FirnError('E_INVALID_INPUT', 'now must be unix seconds');
      const grace = Math.max(0, o.graceSeconds ?? 0);
      const have = o.have ?? {};
      const q = quote instanceof Uint8Array ? parseDcapQuote(quote) : quote;
      if (q.certification.certDataType !== CERT_DATA_PCK_CHAIN)
        throw new FirnError(
          'E_UNSUPPORTED',
          'fetching collateral needs the PCK chain in the quote (certification data type 5)',
        );
      const [leafDer] = chainCertificates(q.certification.certData, 'PCK chain');
      const leaf = parseCertificate(leafDer!);
      const fmspc = Buffer.from(parsePckExtensions(leaf).fmspc).toString('hex').toUpperCase();
      const ca = Buffer.from(leaf.issuer).includes(Buffer.from('Platform')) ? 'platform' : 'processor';
      const tee = q.body.kind === 'tdx' ? 'tdx' : 'sgx';
      const need = (k: CollateralPiece) => have[k] === undefined;
      /** A current cached entry for a piece the caller holds (no download). */
      const cached = async (url: string) => {
        const hit = await cache.lookup(url);
        return hit !== undefined && now < hit.nextUpdate ? hit : undefined;
      };
      const pckUrl = `${base}/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`;
      const tcbFmspcUrl = `${base}/${tee}/certification/v4/tcb?fmspc=${fmspc}`;
      const qeIdUrl = `${base}/${tee}/certification/v4/qe/identity`;
      // allSettled: every piece that arrives is cached even when another fails.
      const settled = await Promise.allSettled([
        need('pckCrl') ? get(pckUrl, ISSUER_CHAIN_HEADERS.pckCrl, true, now, grace, crlNext) : cached(pckUrl),
        need('rootCaCrl') ? get(rootCrlUrl, undefined, true, now, grace, crlNext) : cached(rootCrlUrl),
        need('tcbInfo')
          ? get(
              tcbFmspcUrl,
              ISSUER_CHAIN_HEADERS.tcbInfo,
              false,
              now,
              grace,
              (b) => parseTcbInfo(rawMember(b.toString('utf8'), 'tcbInfo')).nextUpdate,
              // The FMSPC comes from the quote's PCK leaf, which nothing has checked yet: the
              // service's 4xx for it refuses the evidence, never abstains (decision 1834).
              `FMSPC ${fmspc}`,
            )
          : cached(tcbFmspcUrl),
        need('qeIdentity')
          ? get(
              qeIdUrl,
              ISSUER_CHAIN_HEADERS.qeIdentity,
              false,
              now,
              grace,
              (b) => parseQeIdentity(rawMember(b.toString('utf8'), 'enclaveIdentity')).nextUpdate,
            )
          : cached(qeIdUrl),
      ]);
      // The service's refusal of the quote's FMSPC refuses the evidence only when the service
      // answered for every piece the quote does not choose: a service that fails those too (down,
      // a wrong base URL) is the verifier's own failure (E_UNAVAILABLE), whatever it said of the
      // FMSPC (decision 1834).
      const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      const ownFailure = failures.find((e) => !(e instanceof FirnError && identifierRefusals.has(e)));
      if (ownFailure !== undefined || failures.length > 0) throw ownFailure ?? failures[0];
      const [pck, root, tcb, qe] = settled.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
      const tcbUrl = `${base}/${tee}/certification/v4/tcb`;
      const qeUrl = `${base}/${tee}/certification/v4/qe/identity`;
      return {
        pckCrlIssuerChain: pck?.chain ?? have.pckCrlIssuerChain!,
        pckCrl: pck ? new Uint8Array(Buffer.from(pck.body, 'hex')) : have.pckCrl!,
        rootCaCrl: root ? new Uint8Array(Buffer.from(root.body, 'hex')) : have.rootCaCrl!,
        tcbInfoIssuerChain: tcb?.chain ?? have.tcbInfoIssuerChain!,
        tcbInfo: tcb ? rawMember(tcb.body, 'tcbInfo') : have.tcbInfo!,
        tcbInfoSignature: tcb ? signatureOf(tcb.body, tcbUrl) : have.tcbInfoSignature!,
        qeIdentityIssuerChain: qe?.chain ?? have.qeIdentityIssuerChain!,
        qeIdentity: qe ? rawMember(qe.body, 'enclaveIdentity') : have.qeIdentity!,
        qeIdentitySignature: qe ? signatureOf(qe.body, qeUrl) : have.qeIdentitySignature!,
      };
    },
  };
}
