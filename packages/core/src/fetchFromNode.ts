import { type LookupAddress, type LookupOptions, lookup as dnsLookup } from 'node:dns';
import { Agent, fetch as undiciFetch } from 'undici';
import {
  checkEndpointUrl,
  type EndpointDestinationOptions,
  EndpointForbiddenError,
  forbiddenAddressReason,
} from './endpointDestination.ts';
import { FirnError } from './errors.ts';

/**
 * The one HTTP client for requests to a URL a node chose (its registered endpoint): a verifier's
 * attestation request and result check, and wherever else code outside the node follows a node's
 * word to a URL (docs/decisions/1832-node-facing-fetches.md). Kept out of the package index (import
 * `@firn/core/fetchFromNode`) so code that never makes such a request, the enclave's, does not
 * load an HTTP client.
 *
 * The runtime's fetch with an undici Agent (the pinned `undici` package, the version Node 20
 * bundles) as its dispatcher: the Agent's `connect.lookup` hook is what makes the address checked
 * the address connected to. A dispatcher of one undici major handed to another major's fetch
 * fails (Node 26 bundles undici 8), so on a runtime whose bundled undici is another major the
 * pinned package's own fetch is used instead.
 */

/** What one request to a node is. */
export interface NodeRequestInit {
  method?: 'GET' | 'POST' | 'HEAD';
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export interface FetchFromNodeOptions extends EndpointDestinationOptions {
  /** Time for the whole exchange, the body's reading included, ms. */
  timeoutMs: number;
  /** The caller's own stop (aborts with it). */
  signal?: AbortSignal;
  /** What is asked, for errors ("the job result"). */
  what: string;
  /**
   * The body is only hashed or size-capped: ask for it uncompressed (accept-encoding: identity)
   * and refuse an answer that names any content-encoding, before a byte of it is read. fetch would
   * otherwise inflate it, and 127 KiB of gzip on the wire is 128 MiB of zeros here.
   */
  identity?: boolean;
}

/**
 * The resolver the checking Agent connects through: every address the name resolves to must be
 * allowed (one forbidden address refuses the name, so no fallback reaches it), and the socket
 * connects to exactly the addresses returned here, with no second lookup a DNS answer could
 * change in between. Names only: net.connect does not call a lookup for an IP literal, which
 * checkEndpointUrl has judged already.
 */
function checkedLookup(
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '');
    for (const a of addresses) {
      const reason = forbiddenAddressReason(a.address);
      if (reason !== undefined)
        return callback(new EndpointForbiddenError(hostname, reason, 'dns', a.address), '');
    }
    const first = addresses[0];
    if (first === undefined) {
      const e: NodeJS.ErrnoException = new Error(`${hostname} resolved to no address`);
      e.code = 'ENOTFOUND';
      return callback(e, '');
    }
    if (options.all === true) callback(null, addresses);
    else callback(null, first.address, first.family);
  });
}

/** The major version of the pinned `undici` package (package.json; fetchFromNode.test.ts checks it). */
export const PINNED_UNDICI_MAJOR = 6;

/**
 * The oldest bundled undici whose fetch is used (decision 1834): 6.23.0 bounds the chain of
 * content-encodings it decodes; an older one decodes any number of them, one after another.
 */
export const MIN_RUNTIME_UNDICI = [6, 23, 0] as const;

/**
 * Whether the runtime's fetch is the one to send with, given its bundled undici version (full
 * version, `process.versions.undici`): the pinned major (a dispatcher of one major handed to
 * another major's fetch fails) and at least MIN_RUNTIME_UNDICI.
 */
export function runtimeUndiciUsable(version: string | undefined): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version ?? '');
  if (m === null) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (major !== PINNED_UNDICI_MAJOR) return false;
  const [, wantMinor, wantPatch] = MIN_RUNTIME_UNDICI;
  return minor > wantMinor || (minor === wantMinor && patch >= wantPatch);
}

/**
 * The fetch to send with: the runtime's own (looked up at each call, so a process that wraps it
 * still sees every request) when its undici is usable (runtimeUndiciUsable), else the pinned
 * package's.
 */
function fetchImpl(): typeof fetch {
  return runtimeUndiciUsable(process.versions.undici)
    ? globalThis.fetch
    : (undiciFetch as unknown as typeof fetch);
}

let checkingAgent: Agent | undefined;
let openAgent: Agent | undefined;

/** The Agent for `opts`: one checking resolver per process, or none where private endpoints are allowed. */
function agentFor(opts: EndpointDestinationOptions): Agent {
  if (opts.allowPrivateEndpoints === true) {
    openAgent ??= new Agent();
    return openAgent;
  }
  checkingAgent ??= new Agent({ connect: { lookup: checkedLookup } });
  return checkingAgent;
}

/** The EndpointForbiddenError in `e`'s cause chain (the checking lookup's refusal), if any. */
function forbiddenIn(e: unknown): EndpointForbiddenError | undefined {
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 8; depth++) {
    if (c instanceof EndpointForbiddenError) return c;
    c = (c as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Send one request to a node-chosen URL. Before any byte is sent the URL is checked
 * (checkEndpointUrl: http(s), no forbidden IP literal or loopback name), and at connection time
 * every address its name resolves to (unless `allowPrivateEndpoints`). A redirect is never
 * followed: a 3xx answer is E_UNAVAILABLE naming the URL and its status (details.status), its
 * target never contacted. The whole exchange, body included, ends at `timeoutMs`.
 * Errors: E_INVALID_INPUT (not an http(s) URL), E_ENDPOINT_FORBIDDEN (EndpointForbiddenError,
 * details.by 'url' or 'dns'), E_UNAVAILABLE (unreachable, refused, a redirect, a compressed body
 * when `identity` asked for none), E_TIMEOUT. The answer's status is the caller's to judge, and
 * its body the caller's to read (readBodyCapped, readBodyStreamed), within the same time.
 */
export async function fetchFromNode(
  url: string | URL,
  init: NodeRequestInit,
  opts: FetchFromNodeOptions,
): Promise<Response> {
  const u = checkEndpointUrl(url, opts);
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal === undefined ? timeout : AbortSignal.any([timeout, opts.signal]);
  let res: Response;
  try {
    res = await fetchImpl()(u, {
      method: init.method ?? 'GET',
      headers: { ...init.headers, ...(opts.identity === true ? { 'accept-encoding': 'identity' } : {}) },
      ...(init.body === undefined ? {} : { body: init.body }),
      signal,
      // A node's endpoint answers itself: a redirect (to another node's endpoint, to an address
      // the verifier can reach and the node cannot) is refused below, never followed.
      redirect: 'manual',
      dispatcher: agentFor(opts),
    } as unknown as RequestInit);
  } catch (e) {
    const forbidden = forbiddenIn(e);
    if (forbidden !== undefined)
      throw new EndpointForbiddenError(
        u.href,
        String(forbidden.details?.reason),
        'dns',
        String(forbidden.details?.address),
      );
    if (timeout.aborted)
      throw new FirnError('E_TIMEOUT', `${u.href} did not answer ${opts.what} within ${opts.timeoutMs} ms`, {
        cause: e,
        details: { url: u.href },
      });
    if (opts.signal?.aborted === true) throw e;
    const c = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
    const why = typeof c?.code === 'string' ? c.code : typeof c?.message === 'string' ? c.message : String(e);
    throw new FirnError('E_UNAVAILABLE', `cannot reach ${u.href} for ${opts.what} (${why})`, {
      cause: e,
      details: { url: u.href },
    });
  }
  if ((res.status >= 300 && res.status < 400) || res.type === 'opaqueredirect') {
    await res.body?.cancel().catch(() => undefined);
    throw new FirnError(
      'E_UNAVAILABLE',
      `${u.href} answered ${opts.what} with a redirect (${res.status}); a node answers itself and no redirect is followed`,
      { details: { url: u.href, status: res.status } },
    );
  }
  const encoding = res.headers.get('content-encoding')?.trim().toLowerCase();
  if (opts.identity === true && encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    await res.body?.cancel().catch(() => undefined);
    throw new FirnError(
      'E_UNAVAILABLE',
      `${u.href} answered ${opts.what} with content-encoding ${JSON.stringify(encoding.slice(0, 40))}; only identity was asked for`,
      { details: { url: u.href, status: res.status } },
    );
  }
  return res;
}
