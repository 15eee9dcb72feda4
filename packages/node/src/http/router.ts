import type { IncomingMessage, ServerResponse } from 'node:http';
import { FirnError, isFirnError, TooLargeError } from '@firn/core';
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
    const url = new URL(req.url ?? '/', 'http://localhost');
    let routeName = 'unmatched';
    let status = 500;
    try {
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
        params[k] = decodeURIComponent(m[i + 1]!);
      });
      const out = await route.handler({ req, res, params, url });
      if (!res.headersSent && out !== undefined) sendJson(res, 200, out);
      status = res.statusCode;
    } catch (e) {
      status = isFirnError(e) ? httpStatusOf(e.code) : 500;
      const body = isFirnError(e)
        ? { code: e.code, message: e.message }
        : { code: 'E_INTERNAL', message: 'internal error' };
      if (status >= 500) logger.error('request failed', { route: routeName, code: body.code });
      if (!res.headersSent) sendJson(res, status, { error: body });
      else res.end();
    } finally {
      const key = `${req.method} ${routeName} ${status}`;
      this.counters.set(key, (this.counters.get(key) ?? 0) + 1);
    }
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Read a request body, refusing more than `limit` bytes (checked as it streams). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw new TooLargeError('request body', declared, limit);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) throw new TooLargeError('request body', n, limit);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const body = await readBody(req, limit);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new FirnError('E_INVALID_INPUT', 'request body is not JSON');
  }
}
