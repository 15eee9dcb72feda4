import type { IncomingMessage, ServerResponse } from 'node:http';
import { FirnError, isFirnError, redactUrlsIn, TooLargeError } from '@firn/core';
import type { Logger } from '../logger.ts';
import { httpStatusOf } from './errorStatus.ts';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  url: URL;
}

export type RouteHandler = (ctx: RouteContext) => Promise<unknown> | unknown;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  name: string;
  handler: RouteHandler;
}

/** A small router: exact methods, `:param` segments, JSON responses, typed errors mapped once. */
export class Router {
  private routes: Route[] = [];
  readonly counters = new Map<string, number>();

  add(method: string, path: string, handler: RouteHandler): this {
    const keys: string[] = [];
    const pattern = new RegExp(
      `^${path.replace(/:([a-zA-Z]+)/g, (_m, k: string) => {
        keys.push(k);
        return '([^/]+)';
      })}$`,
    );
    this.routes.push({ method, pattern, keys, name: path, handler });
    return this;
  }

  async handle(req: IncomingMessage, res: ServerResponse, logger: Logger): Promise<void> {
    let routeName = 'unmatched';
    let status = 500;
    try {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://localhost');
      } catch {
        throw new FirnError('E_INVALID_INPUT', 'malformed request target');
      }
      const candidates = this.routes.filter((r) => r.pattern.test(url.pathname));
      if (candidates.length === 0) throw new FirnError('E_NOT_FOUND', 'no such route');
      const route = candidates.find((r) => r.method === req.method);
      if (!route) {
        status = 405;
        sendJson(res, 405, { error: { code: 'E_INVALID_INPUT', message: 'method not allowed' } });
        return;
      }
      routeName = route.name;
      const m = route.pattern.exec(url.pathname)!;
      const params: Record<string, string> = {};
      route.keys.forEach((k, i) => {
        try {
          params[k] = decodeURIComponent(m[i + 1]!);
        } catch {
          throw new FirnError('E_INVALID_INPUT', `malformed percent-escape in the path (${k})`);
        }
      });
      const out = await route.handler({ req, res, params, url });
      if (!res.headersSent && out !== undefined) sendJson(res, 200, out);
      status = res.statusCode;
    } catch (e) {
      status = answerError(req, res, e, logger, routeName);
    } finally {
      const key = `${req.method} ${routeName} ${status}`;
      this.counters.set(key, (this.counters.get(key) ?? 0) + 1);
    }
  }
}

/**
 * Answer a request that failed with `e`, the same way on every server of the node: a FirnError
 * as `{error: {code, message}}` with its status (errorStatus.ts) and Retry-After when it carries
 * one; anything else as 500 E_INTERNAL (logged by code only, never its message). A request the
 * client aborted is not answered and counted as 499. A body left unread closes the connection.
 * Returns the status to count.
 */
export function answerError(
  req: IncomingMessage,
  res: ServerResponse,
  e: unknown,
  logger: Logger,
  routeName: string,
): number {
  // The client went away mid-request (an aborted upload): its fault, not the node's. It is
  // counted as 499 (nginx's "client closed request"), never as a 5xx, and nothing is sent.
  if (!isFirnError(e) && clientAborted(req, e)) {
    if (!res.headersSent) res.destroy();
    return CLIENT_CLOSED_REQUEST;
  }
  const status = isFirnError(e) ? httpStatusOf(e.code) : 500;
  const body = isFirnError(e)
    ? // Every URL in the message through redactUrlsIn (decision 1751): the body goes to any client.
      { code: e.code, message: redactUrlsIn(e.message) }
    : { code: 'E_INTERNAL', message: 'internal error' };
  if (status >= 500) logger.error('request failed', { route: routeName, code: body.code });
  const retryAfter = isFirnError(e) ? e.details?.retryAfterSeconds : undefined;
  const headers: Record<string, string> =
    typeof retryAfter === 'number' ? { 'retry-after': String(retryAfter) } : {};
  // Refused before its body was read (a full disk, a quota): the connection is closed after
  // the answer, so no client sends its next request on a socket with a half-read body.
  closeIfBodyUnread(req, res, headers);
  if (!res.headersSent) sendJson(res, status, { error: body }, headers);
  else res.end();
  return status;
}

/**
 * For an answer sent before the request's body was read: close the connection after it (adds
 * `connection: close` to `headers` and turns keep-alive off), so Node does not read and discard
 * the rest of the body, and no client sends its next request on a socket with a half-read body.
 * Nothing is done for a request already read in full. Returns `headers`.
 */
export function closeIfBodyUnread(
  req: IncomingMessage,
  res: ServerResponse,
  headers: Record<string, string>,
): Record<string, string> {
  if (!req.complete) {
    headers.connection = 'close';
    res.shouldKeepAlive = false;
  }
  return headers;
}

/** The status a request the client aborted is counted under in metrics (never sent). */
export const CLIENT_CLOSED_REQUEST = 499;

/** True when `e` comes from the client closing its connection before its request was read. */
export function clientAborted(req: IncomingMessage, e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (
    code === 'ECONNRESET' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    (e as Error | null)?.message === 'aborted' ||
    (req.destroyed && !req.complete)
  );
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** A check of a body's first bytes, run before the rest of the body is read (see readBody). */
export interface BodyPrefixCheck {
  /** How many leading bytes the check needs (fewer when the body is shorter). */
  bytes: number;
  /** Throw to refuse the request before the rest of its body is read. */
  check: (prefix: Buffer) => Promise<void> | void;
}

/**
 * Smallest mean piece a body may arrive in, bytes: a body of `limit` bytes may come in at most
 * max(MIN_BODY_PIECES, limit / MIN_MEAN_BODY_PIECE_BYTES) `data` events. Each costs the node a
 * callback and an object whatever its size; a client sending a body as one-byte chunks made a
 * 2 MiB body cost 8 s of CPU and 780 MiB of memory. A real client's pieces are TCP segments or
 * its own chunks (KiBs), far above this.
 */
export const MIN_MEAN_BODY_PIECE_BYTES = 256;
/** Pieces any body may arrive in, however small its limit. */
export const MIN_BODY_PIECES = 1024;

/**
 * Read a request body, refusing more than `limit` bytes (checked as it streams; TooLargeError,
 * 413) and more pieces than a body of `limit` bytes needs (MIN_MEAN_BODY_PIECE_BYTES; 400
 * E_INVALID_INPUT naming the count). The pieces are copied into one buffer as they come, so
 * memory stays the body's size. With `prefix`, its check runs on the first `prefix.bytes` bytes
 * as soon as they arrive, so a body that is refused by its header is never read (or queued) in
 * full.
 */
export async function readBody(
  req: IncomingMessage,
  limit: number,
  prefix?: BodyPrefixCheck,
): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw new TooLargeError('request body', declared, limit);
  const maxPieces = Math.max(MIN_BODY_PIECES, Math.ceil(limit / MIN_MEAN_BODY_PIECE_BYTES));
  // Grown as bytes arrive (doubling), never sized by the declared length: a client that declares
  // the limit and sends nothing holds no memory of the node's.
  let buf = Buffer.allocUnsafe(Math.min(limit, 16 * 1024));
  let n = 0;
  let pieces = 0;
  let checked = prefix === undefined;
  for await (const c of req as AsyncIterable<Buffer>) {
    if (++pieces > maxPieces)
      throw new FirnError(
        'E_INVALID_INPUT',
        `request body came in more than ${maxPieces} pieces (${n} bytes so far): send it in larger chunks`,
      );
    if (n + c.length > limit) throw new TooLargeError('request body', n + c.length, limit);
    if (n + c.length > buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(n + c.length, buf.length * 2)));
      buf.copy(grown, 0, 0, n);
      buf = grown;
    }
    c.copy(buf, n);
    n += c.length;
    if (!checked && n >= prefix!.bytes) {
      checked = true;
      await prefix!.check(buf.subarray(0, prefix!.bytes));
    }
  }
  if (!checked) await prefix!.check(buf.subarray(0, n));
  return buf.subarray(0, n);
}

/**
 * The media type of a request (lowercase, parameters dropped), or undefined when absent.
 */
export function mediaTypeOf(req: IncomingMessage): string | undefined {
  const ct = req.headers['content-type'];
  if (ct === undefined) return undefined;
  return ct.split(';')[0]!.trim().toLowerCase();
}

/**
 * Refuse a body whose Content-Type is not `expected` (E_UNSUPPORTED, HTTP 415). A JSON endpoint
 * that accepted text/plain could be driven by any web page (a "simple" cross-site request needs
 * no CORS preflight), so JSON is read only from application/json.
 */
export function requireMediaType(req: IncomingMessage, expected: string): void {
  const got = mediaTypeOf(req);
  if (got !== expected)
    throw new FirnError('E_UNSUPPORTED', `send this body as ${expected} (got ${got ?? 'no content-type'})`);
}

/**
 * Read a JSON request body: size-capped (413 before anything is read when Content-Length is over
 * `limit`), only from application/json (415), and parsed (400 E_INVALID_INPUT otherwise).
 */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return JSON.parse(await readJsonText(req, limit));
}

/** As readJson, but the body's text, checked to parse as JSON. */
export async function readJsonText(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw new TooLargeError('request body', declared, limit);
  requireMediaType(req, 'application/json');
  const text = (await readBody(req, limit)).toString('utf8');
  checkJsonShape(text);
  try {
    JSON.parse(text);
  } catch {
    throw new FirnError('E_INVALID_INPUT', 'request body is not JSON');
  }
  return text;
}

/** The deepest a request's JSON may nest, and the most arrays and objects it may hold. */
export const MAX_REQUEST_JSON_DEPTH = 32;
export const MAX_REQUEST_JSON_CONTAINERS = 4096;

/**
 * Refuse (400 E_INVALID_INPUT) a JSON text nesting deeper than MAX_REQUEST_JSON_DEPTH or holding
 * more than MAX_REQUEST_JSON_CONTAINERS arrays and objects, in one linear scan outside strings and
 * before any parse: a body of brackets or empty objects costs a stranger nothing to send and the
 * node about a second of its only thread to parse (the API's bodies need a handful of each).
 */
function checkJsonShape(text: string): void {
  let depth = 0;
  let containers = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > MAX_REQUEST_JSON_DEPTH || ++containers > MAX_REQUEST_JSON_CONTAINERS)
        throw new FirnError(
          'E_INVALID_INPUT',
          `request body nests deeper than ${MAX_REQUEST_JSON_DEPTH} or holds more than ${MAX_REQUEST_JSON_CONTAINERS} arrays and objects`,
        );
    } else if (c === 93 || c === 125) depth--;
  }
}
