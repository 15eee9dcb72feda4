import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FirnError, readBodyCapped, TooLargeError } from '@firn/core';
import * as asn1js from 'asn1js';
import { LRUCache } from 'lru-cache';
import pRetry, { AbortError } from 'p-retry';
import * as pkijs from 'pkijs';
import type { OcspOptions } from './checkOcsp.ts';

/** NVIDIA's OCSP responder for device and RIM certificates. */
export const NVIDIA_OCSP_URL = 'https://ocsp.ndis.nvidia.com/';
/** OCSP requests and answers for one certificate are a few KiB. */
const MAX_OCSP_BYTES = 64 * 1024;

export interface OcspClientOptions {
  /** Responder URL (default NVIDIA's); a relying party's own OCSP cache or proxy works too. */
  url?: string;
  /**
   * A folder of recorded answers named `<serial hex, lower case>.der` (DER OCSPResponse), used
   * without a request; checkOcsp still checks their signatures and dates.
   */
  offlineDir?: string;
  fetch?: typeof fetch;
  /** One attempt's time limit, ms (default 5 000). */
  timeoutMs?: number;
  /** Attempts after the first on a network error, timeout, 408, 429 or 5xx (default 2). */
  retries?: number;
  /** First backoff delay, ms, doubling with jitter (default 200). */
  minRetryDelayMs?: number;
  /** In-memory cache capacity, answers (default 512). */
  cacheEntries?: number;
}

export interface OcspClient {
  readonly url: string;
  /**
   * Options for checkOcsp at verification time `now` (unix seconds): requests go through this
   * client, which answers from the offline folder, or from its cache while the cached answer's
   * nextUpdate is after `now`, or from the responder (with timeout and retries). The answers are
   * not trusted here: checkOcsp verifies each signature and its dates.
   */
  options(now: number): OcspOptions;
}

interface Cached {
  der: Uint8Array;
  nextUpdate: number;
}

/** The serial numbers (hex) a DER OCSPRequest asks about; E_EVIDENCE_MALFORMED if it does not parse. */
export function ocspRequestSerials(der: Uint8Array): string[] {
  if (der.length > MAX_OCSP_BYTES) throw new TooLargeError('OCSP request', der.length, MAX_OCSP_BYTES);
  const asn = asn1js.fromBER(der.slice().buffer as ArrayBuffer);
  if (asn.offset === -1) throw new FirnError('E_EVIDENCE_MALFORMED', 'OCSP request is not DER');
  try {
    const req = new pkijs.OCSPRequest({ schema: asn.result });
    return req.tbsRequest.requestList.map((r) =>
      Buffer.from(r.reqCert.serialNumber.valueBlock.valueHexView).toString('hex').toLowerCase(),
    );
  } catch (e) {
    throw new FirnError('E_EVIDENCE_MALFORMED', 'OCSP request does not parse', { cause: e });
  }
}

/** The earliest nextUpdate (unix s) of a DER OCSPResponse's answers; undefined when any lacks one or it does not parse. */
function responseNextUpdate(der: Uint8Array): number | undefined {
  try {
    const asn = asn1js.fromBER(der.slice().buffer as ArrayBuffer);
    if (asn.offset === -1) return undefined;
    const res = new pkijs.OCSPResponse({ schema: asn.result });
    if (res.responseStatus.valueBlock.valueDec !== 0 || !res.responseBytes) return undefined;
    const basic = pkijs.BasicOCSPResponse.fromBER(res.responseBytes.response.valueBlock.valueHexView);
    let min: number | undefined;
    for (const r of basic.tbsResponseData.responses) {
      if (!r.nextUpdate) return undefined;
      const t = Math.floor(r.nextUpdate.getTime() / 1000);
      min = min === undefined ? t : Math.min(min, t);
    }
    return min;
  } catch {
    return undefined;
  }
}

const transient = (s: number) => s === 408 || s === 429 || s >= 500;

/**
 * An OCSP client (RFC 6960 over HTTP POST, as NVIDIA's verifiers use ocsp.ndis.nvidia.com) with a
 * configurable responder, an offline folder of recorded answers, a cache until each answer's
 * nextUpdate, timeouts and retries with backoff. It plugs into checkOcsp as its `fetch`.
 */
export function createOcspClient(opts: OcspClientOptions = {}): OcspClient {
  const url = opts.url ?? NVIDIA_OCSP_URL;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FirnError('E_INVALID_INPUT', `OCSP responder URL is not a URL: ${url}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new FirnError('E_INVALID_INPUT', 'OCSP responder URL must be http(s)');
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const cache = new LRUCache<string, Cached>({ max: opts.cacheEntries ?? 512 });

  async function offline(serials: string[]): Promise<Uint8Array | undefined> {
    if (opts.offlineDir === undefined || serials.length !== 1) return undefined;
    if (!/^[0-9a-f]{1,128}$/.test(serials[0]!)) return undefined;
    const p = join(opts.offlineDir, `${serials[0]}.der`);
    const st = await stat(p).catch(() => undefined);
    if (st === undefined || !st.isFile()) return undefined;
    if (st.size > MAX_OCSP_BYTES) throw new TooLargeError('recorded OCSP answer', st.size, MAX_OCSP_BYTES);
    return new Uint8Array(await readFile(p));
  }

  async function attempt(body: Uint8Array, target: string): Promise<Uint8Array> {
    let res: Response;
    try {
      res = await doFetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      throw new FirnError(
        'E_UNAVAILABLE',
        `OCSP responder ${timedOut ? `did not answer within ${timeoutMs} ms` : 'is unreachable'} (${target})`,
        { cause: e },
      );
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      const err = new FirnError('E_UNAVAILABLE', `OCSP responder answered ${res.status} (${target})`);
      if (transient(res.status)) throw err;
      throw new AbortError(err);
    }
    try {
      return await readBodyCapped(res, MAX_OCSP_BYTES, 'OCSP response');
    } catch (e) {
      if (e instanceof TooLargeError)
        throw new AbortError(new FirnError('E_TOO_LARGE', `${e.message} (${target})`, { cause: e }));
      throw new FirnError('E_UNAVAILABLE', `OCSP response broke off (${target})`, { cause: e });
    }
  }

  async function answer(body: Uint8Array, now: number, target: string): Promise<Uint8Array> {
    const serials = ocspRequestSerials(body);
    const recorded = await offline(serials);
    if (recorded !== undefined) return recorded;
    const key = createHash('sha256').update(target).update('\u0000').update(body).digest('hex');
    const hit = cache.get(key);
    if (hit !== undefined && now < hit.nextUpdate) return hit.der;
    const der = await pRetry(() => attempt(body, target), {
      retries: opts.retries ?? 2,
      minTimeout: opts.minRetryDelayMs ?? 200,
      factor: 2,
      randomize: true,
    });
    const next = responseNextUpdate(der);
    if (next !== undefined && now < next) cache.set(key, { der, nextUpdate: next });
    return der;
  }

  return {
    url,
    options(now) {
      if (typeof now !== 'number' || !Number.isFinite(now))
        throw new FirnError('E_INVALID_INPUT', 'now must be unix seconds');
      const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
        const target = input instanceof Request ? input.url : String(input);
        const raw = init?.body;
        if (!(raw instanceof Uint8Array) && !(raw instanceof ArrayBuffer))
          throw new FirnError('E_INVALID_INPUT', 'OCSP request body must be bytes');
        const der = await answer(new Uint8Array(raw), now, target);
        return new Response(Buffer.from(der), {
          status: 200,
          headers: { 'content-type': 'application/ocsp-response' },
        });
      };
      return { url, fetch: f as typeof fetch, timeoutMs: timeoutMs * ((opts.retries ?? 2) + 2) };
    },
  };
}
