import { FirnError } from '@firn/core';
import { boundedGet, where } from '../collateral/boundedGet.ts';
import { createUrlCache } from '../collateral/createUrlCache.ts';
import {
  certificatesFrom,
  MAX_AMD_CERT_BYTES,
  MAX_AMD_CRL_BYTES,
  parseAmdCertificate,
  parseAmdCrl,
} from './amdCertificates.ts';
import {
  decodeTcb,
  parseSevSnpReport,
  productOfCpuid,
  type SevSnpProduct,
  type SevSnpReport,
} from './sevSnpReport.ts';
import type { SevSnpCollateral, SevSnpCollateralProvider } from './sevSnpVerifier.ts';

/** AMD's Key Distribution Service. */
export const AMD_KDS_BASE_URL = 'https://kdsintf.amd.com';

export interface KdsClientOptions {
  /** KDS base URL or a mirror/proxy serving the same paths (default AMD's). */
  baseUrl?: string;
  /** Product for reports that do not name it (version 2 has no CPUID); v3+ reports name their own. */
  product?: SevSnpProduct;
  /** Fetch the product's CRL too (and cache it until its nextUpdate). Default true. */
  crl?: boolean;
  /** Keep responses on disk as well (survives restarts; every response is re-verified on use). */
  cacheDir?: string;
  fetch?: typeof fetch;
  /** Time limit of one HTTP attempt, milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Attempts after the first on a network error, timeout, 408, 429 or 5xx (default 3). */
  retries?: number;
  /** First backoff delay, milliseconds; doubles per attempt (default 500: the KDS rate-limits). */
  minRetryDelayMs?: number;
  /** In-memory cache capacity, entries (default 256). */
  cacheEntries?: number;
}

/** A KDS client: VCEKs by chip and TCB, cert chains and CRLs by product, with caching and retries. */
export interface KdsClient extends SevSnpCollateralProvider {
  readonly baseUrl: string;
  /** The KDS URL of the VCEK for this report's chip id and REPORTED_TCB. */
  vcekUrl(report: SevSnpReport, product: SevSnpProduct): string;
  /**
   * VEK (VCEK from the KDS), chain and (by default) CRL for a report, from cache or the KDS.
   * Nothing here is trusted: verifySevSnpReport checks every signature. Errors: E_UNAVAILABLE
   * (unreachable or non-2xx after retries, naming the URL), E_TOO_LARGE, E_EVIDENCE_COLLATERAL
   * (a body that does not parse), E_UNSUPPORTED (a VLEK-signed report: VLEKs are not on the public
   * KDS), E_INVALID_INPUT (a v2 report and no product configured).
   */
  collateralFor(report: SevSnpReport | Uint8Array, now: number): Promise<SevSnpCollateral>;
  /** Drop the cached VCEK, chain and CRL for this report (memory and disk). */
  forget(report: SevSnpReport): Promise<void>;
}

interface Entry {
  /** base64 of the body. */
  body: string;
  /** Unix seconds until which the entry is current (VCEKs and chains: their notAfter). */
  until: number;
}

/**
 * Create a KDS client (AMD "VCEK Certificate and KDS Interface Specification" 57230 paths:
 * `/vcek/v1/{product}/{hwid}?blSPL&teeSPL&snpSPL&ucodeSPL[&fmcSPL]`, `/vcek/v1/{product}/cert_chain`,
 * `/vcek/v1/{product}/crl`), with per-attempt timeouts, retries with backoff (p-retry), an in-memory
 * LRU cache and an optional disk cache. Turin's hwid is the first 8 bytes of the chip id.
 */
export function createKdsClient(opts: KdsClientOptions = {}): KdsClient {
  const base = (opts.baseUrl ?? AMD_KDS_BASE_URL).replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(base);
  } catch {
    throw new FirnError('E_INVALID_INPUT', `KDS URL is not a URL: ${base}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new FirnError('E_INVALID_INPUT', 'KDS URL must be http(s)');
  if (parsed.username !== '' || parsed.password !== '')
    throw new FirnError('E_INVALID_INPUT', 'the KDS URL must not hold credentials');
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const cache = createUrlCache<Entry>({
    ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.cacheEntries !== undefined ? { entries: opts.cacheEntries } : {}),
    maxFileChars: MAX_AMD_CRL_BYTES * 2,
    isEntry: (e): e is Entry =>
      typeof e === 'object' &&
      e !== null &&
      typeof (e as Entry).body === 'string' &&
      typeof (e as Entry).until === 'number',
  });
  const inflight = new Map<string, Promise<Entry>>();
  /** The KDS's refusals of a chip and TCB the report names (not a body that failed to parse). */
  const identifierRefusals = new WeakSet<FirnError>();

  /** A body from cache while current, else downloaded (one download per URL at a time). */
  async function get(
    url: string,
    now: number,
    cap: number,
    until: (b: Uint8Array) => number,
    identifier?: string,
  ): Promise<Uint8Array> {
    const hit = await cache.lookup(url);
    if (hit !== undefined && now < hit.until) return new Uint8Array(Buffer.from(hit.body, 'base64'));
    let p = inflight.get(url);
    if (p === undefined) {
      p = (async () => {
        const { body } = await boundedGet(url, {
          fetch: doFetch,
          timeoutMs,
          retries: opts.retries ?? 3,
          minRetryDelayMs: opts.minRetryDelayMs ?? 500,
          maxBytes: cap,
          service: 'the KDS',
          response: 'the KDS response',
          // A 4xx for the chip and TCB the report names is a fact about the evidence (decision 1834).
          ...(identifier === undefined
            ? {}
            : {
                refusedIdentifier: (status: number, at: string) => {
                  const e = new FirnError(
                    'E_EVIDENCE_COLLATERAL',
                    `the KDS has no VCEK for ${identifier} named by the report: it answered ${status} (${at})`,
                    { details: { status } },
                  );
                  identifierRefusals.add(e);
                  return e;
                },
              }),
        });
        let u: number;
        try {
          u = until(body);
        } catch (e) {
          throw new FirnError('E_EVIDENCE_COLLATERAL', `the KDS response does not parse (${where(url)})`, {
            cause: e,
          });
        }
        const entry = { body: Buffer.from(body).toString('base64'), until: u };
        await cache.store(url, entry);
        return entry;
      })().finally(() => inflight.delete(url));
      inflight.set(url, p);
    }
    return new Uint8Array(Buffer.from((await p).body, 'base64'));
  }

  /** notAfter of the first certificate in a body (PEM or DER), as the cache limit. */
  const certUntil = (b: Uint8Array) =>
    parseAmdCertificate(certificatesFrom(b, 'KDS certificate', 4)[0]!, 'KDS certificate').notAfter;

  function productOf(report: SevSnpReport): SevSnpProduct {
    const p =
      report.cpuid === undefined ? undefined : productOfCpuid(report.cpuid.family, report.cpuid.model);
    const product = p ?? opts.product;
    if (product === undefined)
      throw new FirnError(
        'E_INVALID_INPUT',
        `the report (version ${report.version}) does not name its product: configure the KDS client's product (Milan, Genoa or Turin)`,
      );
    return product;
  }

  function vcekUrl(report: SevSnpReport, product: SevSnpProduct): string {
    const t = decodeTcb(report.reportedTcbBytes, product);
    const hwid = Buffer.from(report.chipId.subarray(0, product === 'Turin' ? 8 : 64)).toString('hex');
    const q = new URLSearchParams();
    if (t.fmc !== undefined) q.set('fmcSPL', String(t.fmc));
    q.set('blSPL', String(t.bootloader));
    q.set('teeSPL', String(t.tee));
    q.set('snpSPL', String(t.snp));
    q.set('ucodeSPL', String(t.microcode));
    return `${base}/vcek/v1/${product}/${hwid}?${q.toString()}`;
  }

  return {
    baseUrl: base,
    vcekUrl,
    async forget(report) {
      let product: SevSnpProduct;
      try {
        product = productOf(report);
      } catch {
        return;
      }
      const urls = [
        vcekUrl(report, product),
        `${base}/vcek/v1/${product}/cert_chain`,
        `${base}/vcek/v1/${product}/crl`,
      ];
      for (const url of urls) await cache.forget(url);
    },
    async collateralFor(input, now) {
      if (typeof now !== 'number' || !Number.isFinite(now))
        throw new FirnError('E_INVALID_INPUT', 'now must be unix seconds');
      const report = input instanceof Uint8Array ? parseSevSnpReport(input) : input;
      if (report.signingKey !== 'vcek')
        throw new FirnError(
          'E_UNSUPPORTED',
          `a ${report.signingKey.toUpperCase()}-signed report needs its certificate from the cloud provider, not the public KDS`,
        );
      if (report.maskChipId || report.chipId.every((x) => x === 0))
        throw new FirnError('E_UNSUPPORTED', 'the report masks its chip id: the KDS cannot look up its VCEK');
      const product = productOf(report);
      const settled = await Promise.allSettled([
        get(vcekUrl(report, product), now, MAX_AMD_CERT_BYTES, certUntil, 'the chip id and TCB'),
        get(`${base}/vcek/v1/${product}/cert_chain`, now, MAX_AMD_CERT_BYTES * 4, certUntil),
        opts.crl === false
          ? Promise.resolve(undefined)
          : get(
              `${base}/vcek/v1/${product}/crl`,
              now,
              MAX_AMD_CRL_BYTES,
              (b) => parseAmdCrl(crlDer(b)).nextUpdate,
            ),
      ]);
      // The KDS's refusal of the report's chip and TCB refuses the evidence only when the KDS
      // answered for what the report does not choose: otherwise it is the service failing
      // (decision 1834).
      const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      const ownFailure = failures.find((e) => !(e instanceof FirnError && identifierRefusals.has(e)));
      if (ownFailure !== undefined || failures.length > 0) throw ownFailure ?? failures[0];
      const [vcek, chain, crl] = settled.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
      if (vcek === undefined || chain === undefined) throw new FirnError('E_INTERNAL', 'KDS pieces missing');
      const pem = (der: Uint8Array) =>
        `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----\n`;
      const out: SevSnpCollateral = {
        vek: pem(certificatesFrom(vcek, 'VCEK', 1)[0]!),
        chain: certificatesFrom(chain, 'cert_chain', 4).map(pem).join(''),
      };
      if (crl !== undefined) out.crl = Buffer.from(crlDer(crl)).toString('base64');
      return out;
    },
  };
}

/** A CRL body as DER: the KDS serves DER; PEM is accepted too. */
function crlDer(b: Uint8Array): Uint8Array {
  if (b[0] === 0x30) return b;
  const m = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(
    Buffer.from(b).toString('latin1'),
  );
  if (m === null) throw new FirnError('E_EVIDENCE_COLLATERAL', 'CRL is neither DER nor PEM');
  return new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}
