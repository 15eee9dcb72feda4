import { FirnError, readBodyCapped, TooLargeError } from '@firn/core';
import pRetry, { AbortError } from 'p-retry';

/** How a collateral service (Intel PCS/PCCS, AMD KDS, a mirror) is asked, and named in errors. */
export interface BoundedGetOptions {
  fetch: typeof fetch;
  /** Time limit of one HTTP attempt, milliseconds. */
  timeoutMs: number;
  /** Attempts after the first on a network error, timeout, 408, 429 or 5xx. */
  retries: number;
  /** First backoff delay, milliseconds; doubles per attempt, with jitter. */
  minRetryDelayMs: number;
  /** Largest body accepted, bytes (the content-length is checked first, then the stream). */
  maxBytes: number;
  /** Request headers. */
  headers?: Record<string, string>;
  /** The service as errors name it, e.g. `collateral service`, `the KDS`. */
  service: string;
  /** Its response as errors name it, e.g. `collateral response`, `the KDS response`. */
  response: string;
  /**
   * Set when the URL names an identifier taken from a node's evidence (an FMSPC, a chip ID): the
   * error of a 4xx that is the service's answer about that identifier (404 and the other 4xx but
   * 401, 403, 407, 408 and 429), not retried. Such an answer is a fact about the evidence, not the
   * service being down (decision 1834). Unset, every non-2xx is E_UNAVAILABLE.
   */
  refusedIdentifier?: (status: number, where: string) => FirnError;
}

/**
 * Whether a status is the service's answer about the identifier asked for: 4xx but the ones that
 * speak of the verifier's own request (credentials, proxy, timeout, rate limit).
 */
export function isIdentifierRefusal(status: number): boolean {
  return status >= 400 && status < 500 && ![401, 403, 407, 408, 429].includes(status);
}

/** A URL without its credentials or fragment, as errors show it. */
export function where(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}${u.search}`;
}

/** Status codes worth another attempt: the service may answer later. */
const transient = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * GET `url` with a per-attempt timeout, retries with exponential backoff and jitter (p-retry) on
 * network errors, timeouts, 408, 429 and 5xx, and a capped body. Returns the body bytes and the
 * response headers. Errors (FirnError, naming the URL): E_UNAVAILABLE (unreachable, no answer in
 * time, a non-2xx status, a body that broke off: after the retries; other 4xx at once), the
 * error of `refusedIdentifier` for a 4xx about the identifier asked for (at once),
 * E_TOO_LARGE (content-length or streamed body over `maxBytes`; not retried).
 */
export async function boundedGet(
  url: string,
  o: BoundedGetOptions,
): Promise<{ body: Uint8Array; headers: Headers }> {
  const attempt = async (): Promise<{ body: Uint8Array; headers: Headers }> => {
    let res: Response;
    try {
      res = await o.fetch(url, {
        ...(o.headers !== undefined ? { headers: o.headers } : {}),
        signal: AbortSignal.timeout(o.timeoutMs),
        redirect: 'follow',
      });
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      throw new FirnError(
        'E_UNAVAILABLE',
        `${o.service} ${timedOut ? `did not answer within ${o.timeoutMs} ms` : 'is unreachable'} (${where(url)})`,
        { cause: e },
      );
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      if (o.refusedIdentifier !== undefined && isIdentifierRefusal(res.status))
        throw new AbortError(o.refusedIdentifier(res.status, where(url)));
      const err = new FirnError('E_UNAVAILABLE', `${o.service} answered ${res.status} (${where(url)})`);
      if (transient(res.status)) throw err;
      throw new AbortError(err);
    }
    const what = `${o.response} (${where(url)})`;
    const len = Number(res.headers.get('content-length') ?? '0');
    if (len > o.maxBytes) {
      await res.body?.cancel().catch(() => {});
      throw new AbortError(new TooLargeError(what, len, o.maxBytes));
    }
    try {
      return { body: await readBodyCapped(res, o.maxBytes, what), headers: res.headers };
    } catch (e) {
      if (e instanceof TooLargeError) throw new AbortError(e);
      throw new FirnError('E_UNAVAILABLE', `${o.response} broke off (${where(url)})`, { cause: e });
    }
  };
  return pRetry(attempt, {
    retries: o.retries,
    minTimeout: o.minRetryDelayMs,
    factor: 2,
    randomize: true,
  }).catch((e: unknown) => {
    // p-retry rethrows the AbortError's original error; keep FirnErrors as they are.
    throw e instanceof AbortError && (e as { originalError?: unknown }).originalError !== undefined
      ? (e as { originalError: unknown }).originalError
      : e;
  });
}
