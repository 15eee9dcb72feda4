import { createServer } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../logger.ts';
import { CLIENT_CLOSED_REQUEST, readBody, Router } from './router.ts';

describe('router fault accounting', () => {
  it('an upload the client aborts is counted as 499, not as a 5xx, and logs no error', async () => {
    const logs: string[] = [];
    const router = new Router();
    router.add('PUT', '/v1/artifacts', async ({ req }) => {
      await readBody(req, 1 << 20);
      return { ok: true };
    });
    const server = createServer((req, res) => {
      void router.handle(req, res, createLogger({}, { write: (l) => logs.push(l) }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const sock = connect(port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write('PUT /v1/artifacts HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n');
      sock.write('x'.repeat(1000));
      await new Promise((r) => setTimeout(r, 100));
      sock.destroy();
      const until = Date.now() + 5000;
      while (router.counters.size === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect([...router.counters.keys()]).toEqual([`PUT /v1/artifacts ${CLIENT_CLOSED_REQUEST}`]);
      expect(logs.join('')).not.toContain('request failed');
    } finally {
      server.close();
    }
  });

  it('a malformed request target is a 400, not a 500', async () => {
    const router = new Router();
    router.add('GET', '/v1/jobs/:id', ({ params }) => params);
    const server = createServer((req, res) => {
      void router.handle(req, res, createLogger({}, { write: () => undefined }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v1/jobs/%E0%A4%A`);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('E_INVALID_INPUT');
    } finally {
      server.close();
    }
  });
});
