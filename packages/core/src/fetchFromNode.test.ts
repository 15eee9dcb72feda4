import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forbiddenAddressReason } from './endpointDestination.ts';
import {
  fetchFromNode,
  MIN_RUNTIME_UNDICI,
  PINNED_UNDICI_MAJOR,
  runtimeUndiciUsable,
} from './fetchFromNode.ts';

let server: Server;
let base: string;
const hits: string[] = [];
let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, res) => res.end('ok');

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url} ${req.headers['accept-encoding'] ?? ''}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(
  () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
);

const LOCAL = { allowPrivateEndpoints: true, timeoutMs: 5_000, what: 'the test request' };

// This machine's own name resolves (hosts file) to a loopback or private address on most machines:
// a name the URL check cannot judge, that only the resolver can.
const ownName = hostname();
const ownAddresses = await lookup(ownName, { all: true }).catch(() => []);
const ownNameForbidden =
  ownAddresses.length > 0 && ownAddresses.every((a) => forbiddenAddressReason(a.address) !== undefined);

describe('fetchFromNode', () => {
  it('sends nothing to a loopback address unless private endpoints are allowed', async () => {
    hits.length = 0;
    handler = (_q, res) => res.end('ok');
    await expect(fetchFromNode(`${base}/a`, {}, { timeoutMs: 5_000, what: 'x' })).rejects.toMatchObject({
      code: 'E_ENDPOINT_FORBIDDEN',
      details: { by: 'url', address: '127.0.0.1', reason: 'loopback' },
    });
    expect(hits).toEqual([]);
    const res = await fetchFromNode(`${base}/a`, {}, LOCAL);
    expect(await res.text()).toBe('ok');
    expect(hits).toHaveLength(1);
  });

  it.skipIf(!ownNameForbidden)(
    `checks what a name resolves to at connection time and connects to none of it when forbidden (needs this host's name, ${ownName}, to resolve to loopback or private addresses only)`,
    async () => {
      const name = ownName;
      const addresses = ownAddresses;
      hits.length = 0;
      const port = (server.address() as AddressInfo).port;
      const err = await fetchFromNode(`http://${name}:${port}/b`, {}, { timeoutMs: 5_000, what: 'x' }).catch(
        (e: unknown) => e,
      );
      expect(err).toMatchObject({
        code: 'E_ENDPOINT_FORBIDDEN',
        details: { by: 'dns', url: `http://${name}:${port}/b` },
      });
      expect((err as Error).message).toContain(`resolved to ${addresses[0]!.address}`);
      expect(hits).toEqual([]);
    },
  );

  it('refuses every redirect, naming the URL and the status, and never asks its target', async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      hits.length = 0;
      handler = (req, res) => {
        if (req.url === '/target') return res.end('secret');
        res.statusCode = status;
        res.setHeader('location', '/target');
        res.end();
      };
      const err = await fetchFromNode(`${base}/redirect`, {}, LOCAL).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'E_UNAVAILABLE', details: { status, url: `${base}/redirect` } });
      expect((err as Error).message).toContain(`${base}/redirect`);
      expect((err as Error).message).toContain(`redirect (${status})`);
      expect(hits.map((h) => h.split(' ')[1])).toEqual(['/redirect']);
    }
  });

  it('with `identity`, asks for an uncompressed body and refuses a compressed one unread', async () => {
    hits.length = 0;
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024));
    handler = (_q, res) => {
      res.setHeader('content-encoding', 'gzip');
      res.end(bomb);
    };
    const err = await fetchFromNode(`${base}/c`, {}, { ...LOCAL, identity: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_UNAVAILABLE' });
    expect((err as Error).message).toContain('content-encoding "gzip"');
    expect(hits).toEqual(['GET /c identity']);
  });

  it('ends the whole exchange, the body included, at timeoutMs', async () => {
    handler = (_q, res) => {
      res.writeHead(200);
      res.write('first');
      // ...and never ends.
    };
    const t0 = Date.now();
    const res = await fetchFromNode(`${base}/slow`, {}, { ...LOCAL, timeoutMs: 300 });
    await expect(res.text()).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - t0).toBeLessThan(5_000);
    handler = () => undefined; // no answer at all
    await expect(fetchFromNode(`${base}/silent`, {}, { ...LOCAL, timeoutMs: 300 })).rejects.toMatchObject({
      code: 'E_TIMEOUT',
    });
  });

  it('a closed port is E_UNAVAILABLE naming the URL', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/x`;
    await new Promise((r) => closed.close(r));
    const err = await fetchFromNode(url, {}, LOCAL).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_UNAVAILABLE', details: { url } });
    expect((err as Error).message).toContain('ECONNREFUSED');
  });

  it('the pinned undici major is the one this module assumes', () => {
    const pkg = JSON.parse(readFileSync(new URL(import.meta.resolve('undici/package.json')), 'utf8')) as {
      version: string;
    };
    expect(Number.parseInt(pkg.version, 10)).toBe(PINNED_UNDICI_MAJOR);
  });

  it('the runtime’s fetch only where its bundled undici is the pinned major and at least 6.23.0 (decision 1834)', () => {
    expect(MIN_RUNTIME_UNDICI).toEqual([6, 23, 0]);
    for (const v of ['6.23.0', '6.24.1', '6.30.0', '6.23.10']) expect(runtimeUndiciUsable(v)).toBe(true);
    for (const v of ['6.22.9', '6.21.3', '6.3.0', '5.28.4', '7.16.0', '8.0.0', '', undefined, 'x'])
      expect(runtimeUndiciUsable(v)).toBe(false);
    // The pinned package is no older than the bar it sets for the runtime.
    const pkg = JSON.parse(readFileSync(new URL(import.meta.resolve('undici/package.json')), 'utf8')) as {
      version: string;
    };
    expect(runtimeUndiciUsable(pkg.version)).toBe(true);
  });
});
