import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FirnError } from '@firn/core';
import { chainCertificates, parseCertificate, parseCrl } from '../dcap/x509.ts';
import { parsePckExtensions } from '../dcap/pckExtensions.ts';
import { parseQeIdentity } from '../dcap/qeIdentity.ts';
import { CERT_DATA_PCK_CHAIN, type DcapQuote, parseDcapQuote } from '../dcap/quote.ts';
import type { QuoteCollateralV3 } from '../dcap/quoteCollateral.ts';
import { parseTcbInfo } from '../dcap/tcbInfo.ts';

/** Intel's PCS; any PCCS serves the same v4 paths at its own base URL. */
export const INTEL_PCS_BASE_URL = 'https://api.trustedservices.intel.com';
/** Where Intel publishes the root CA's CRL (the PCS has no endpoint for it; a PCCS does). */
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';
/** A collateral response larger than this is refused (PCK CRLs are the largest, a few MiB at most). */
const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export interface CollateralFetcherOptions {
  /** PCS or PCCS base URL, e.g. https://api.trustedservices.intel.com or https://pccs.local:8081. */
  baseUrl: string;
  /** Root CA CRL location; default Intel's for the PCS, `<baseUrl>/sgx/certification/v4/rootcacrl` otherwise. */
  rootCaCrlUrl?: string;
  /** Keep responses on disk here as well as in memory. */
  cacheDir?: string;
  /** Injected fetch (tests, proxies); default globalThis.fetch. */
  fetch?: typeof fetch;
}

export interface CollateralFetcher {
  /**
   * Collateral for a quote, from cache while each piece is before its nextUpdate at `now`, else
   * from the PCS/PCCS. Nothing here is trusted: verifyDcapQuote checks every signature.
   */
  getCollateral(quote: Uint8Array | DcapQuote, now: number): Promise<QuoteCollateralV3>;
}

interface Entry {
  body: string;
  /** Issuer chain header, URL-decoded PEM. */
  chain: string;
  nextUpdate: number;
}

const unavailable = (m: string, cause?: unknown) =>
  new FirnError('E_UNAVAILABLE', m, cause === undefined ? {} : { cause });

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

function crlBytes(body: Buffer): Uint8Array {
  // PCCS serves CRLs as DER, or as hex text; Intel's PCS serves DER when asked (encoding=der).
  if (body[0] === 0x30) return new Uint8Array(body);
  const t = body.toString('latin1').trim();
  if (/^([0-9a-fA-F]{2})+$/.test(t)) return new Uint8Array(Buffer.from(t, 'hex'));
  throw new FirnError('E_EVIDENCE_COLLATERAL', 'CRL response is neither DER nor hex');
}

/** Create a PCS/PCCS collateral fetcher with an in-memory (and optional on-disk) cache. */
export function createCollateralFetcher(opts: CollateralFetcherOptions): CollateralFetcher {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const rootCrlUrl =
    opts.rootCaCrlUrl ??
    (base === INTEL_PCS_BASE_URL ? INTEL_ROOT_CA_CRL_URL : `${base}/sgx/certification/v4/rootcacrl`);
  const doFetch = opts.fetch ?? globalThis.fetch;
  const mem = new Map<string, Entry>();

  const diskPath = (url: string) =>
    // A file name derived from the URL; not a security boundary, so no domain tag applies.
    opts.cacheDir === undefined
      ? undefined
      : join(opts.cacheDir, `${createHash('sha256').update(url).digest('hex')}.json`);

  async function cached(url: string, now: number): Promise<Entry | undefined> {
    const hit = mem.get(url);
    if (hit !== undefined && now < hit.nextUpdate) return hit;
    const p = diskPath(url);
    if (p === undefined) return undefined;
    try {
      const e = JSON.parse(await readFile(p, 'utf8')) as Entry;
      if (
        typeof e.body === 'string' &&
        typeof e.chain === 'string' &&
        typeof e.nextUpdate === 'number' &&
        now < e.nextUpdate
      ) {
        mem.set(url, e);
        return e;
      }
    } catch {
      // missing or unreadable cache file: fetch again
    }
    return undefined;
  }

  async function store(url: string, e: Entry): Promise<void> {
    mem.set(url, e);
    const p = diskPath(url);
    if (p === undefined || opts.cacheDir === undefined) return;
    await mkdir(opts.cacheDir, { recursive: true });
    const tmp = `${p}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(e));
    await rename(tmp, p);
  }

  async function get(
    url: string,
    chainHeader: string | undefined,
    binary: boolean,
    now: number,
    nextUpdateOf: (body: Buffer) => number,
  ): Promise<Entry> {
    const hit = await cached(url, now);
    if (hit !== undefined) return hit;
    let res: Response;
    try {
      res = await doFetch(url, {
        headers: { accept: binary ? 'application/pkix-crl, application/octet-stream' : 'application/json' },
      });
    } catch (e) {
      throw unavailable(`collateral service unreachable (${new URL(url).pathname})`, e);
    }
    if (!res.ok) throw unavailable(`collateral service answered ${res.status} for ${new URL(url).pathname}`);
    const len = Number(res.headers.get('content-length') ?? '0');
    if (len > MAX_RESPONSE_BYTES) throw new FirnError('E_TOO_LARGE', 'collateral response is too large');
    const buf = Buffer.from(await res.arrayBuffer());
    if (buf.length > MAX_RESPONSE_BYTES)
      throw new FirnError('E_TOO_LARGE', 'collateral response is too large');
    let chain = '';
    if (chainHeader !== undefined) {
      const h = res.headers.get(chainHeader);
      if (h === null)
        throw new FirnError('E_EVIDENCE_COLLATERAL', `response lacks the ${chainHeader} header`);
      chain = decodeURIComponent(h);
    }
    // Binary bodies are kept as hex so that the cache entry is plain JSON.
    const body = binary ? buf.toString('hex') : buf.toString('utf8');
    const e: Entry = { body, chain, nextUpdate: nextUpdateOf(buf) };
    await store(url, e);
    return e;
  }

  const crlNext = (b: Buffer) => parseCrl(crlBytes(b)).nextUpdate;

  return {
    async getCollateral(quote, now) {
      const q = quote instanceof Uint8Array ? parseDcapQuote(quote) : quote;
      if (q.certification.certDataType !== CERT_DATA_PCK_CHAIN)
        throw new FirnError(
          'E_UNSUPPORTED',
          'fetching collateral needs the PCK chain in the quote (certification data type 5)',
        );
      const [leafDer] = chainCertificates(q.certification.certData, 'PCK chain');
      const leaf = parseCertificate(leafDer!);
      const fmspc = Buffer.from(parsePckExtensions(leaf).fmspc).toString('hex').toUpperCase();
      const ca = Buffer.from(leaf.issuer).includes('Platform') ? 'platform' : 'processor';
      const tee = q.body.kind === 'tdx' ? 'tdx' : 'sgx';
      const [pck, root, tcb, qe] = await Promise.all([
        get(
          `${base}/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`,
          'SGX-PCK-CRL-Issuer-Chain',
          true,
          now,
          crlNext,
        ),
        get(rootCrlUrl, undefined, true, now, crlNext),
        get(
          `${base}/${tee}/certification/v4/tcb?fmspc=${fmspc}`,
          'TCB-Info-Issuer-Chain',
          false,
          now,
          (b) => parseTcbInfo(rawMember(b.toString('utf8'), 'tcbInfo')).nextUpdate,
        ),
        get(
          `${base}/${tee}/certification/v4/qe/identity`,
          'SGX-Enclave-Identity-Issuer-Chain',
          false,
          now,
          (b) => parseQeIdentity(rawMember(b.toString('utf8'), 'enclaveIdentity')).nextUpdate,
        ),
      ]);
      const sig = (body: string) => {
        const s = (JSON.parse(body) as { signature?: unknown }).signature;
        if (typeof s !== 'string' || !/^[0-9a-fA-F]{128}$/.test(s))
          throw new FirnError('E_EVIDENCE_COLLATERAL', 'signature must be 64 bytes of hex');
        return new Uint8Array(Buffer.from(s, 'hex'));
      };
      return {
        pckCrlIssuerChain: pck.chain,
        rootCaCrl: crlBytes(Buffer.from(root.body, 'hex')),
        pckCrl: crlBytes(Buffer.from(pck.body, 'hex')),
        tcbInfoIssuerChain: tcb.chain,
        tcbInfo: rawMember(tcb.body, 'tcbInfo'),
        tcbInfoSignature: sig(tcb.body),
        qeIdentityIssuerChain: qe.chain,
        qeIdentity: rawMember(qe.body, 'enclaveIdentity'),
        qeIdentitySignature: sig(qe.body),
      };
    },
  };
}
