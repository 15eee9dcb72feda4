import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../logger.ts';
import {
  CLIENT_CLOSED_REQUEST,
  MIN_BODY_PIECES,
  MIN_MEAN_BODY_PIECE_BYTES,
  readBody,
  Router,
} from './router.ts';

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

describe('readBody (decision 1812)', () => {
  /** A request whose body arrives as `pieces`, with `headers`. */
  const requestOf = (pieces: Buffer[], headers: Record<string, string> = {}) =>
    Object.assign(Readable.from(pieces), { headers }) as unknown as IncomingMessage;
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => 'read',
      (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
    );

  it('returns the body byte for byte, whatever its pieces', async () => {
    const body = randomBytes(2 * 1024 * 1024 + 17);
    const pieces: Buffer[] = [];
    for (let at = 0; at < body.length; at += 65_536) pieces.push(body.subarray(at, at + 65_536));
    expect((await readBody(requestOf(pieces), 4 << 20)).equals(body)).toBe(true);
    expect((await readBody(requestOf([]), 1024)).length).toBe(0);
    const exact = randomBytes(1000);
    expect((await readBody(requestOf([exact]), 1000)).equals(exact)).toBe(true);
  });

  it('takes as many pieces as max(1024, limit / 256) and refuses one more, naming the count', async () => {
    const one = Buffer.from('x');
    const ok = await readBody(requestOf(Array.from({ length: MIN_BODY_PIECES }, () => one)), 64 * 1024);
    expect(ok.length).toBe(MIN_BODY_PIECES);
    expect(
      await failure(readBody(requestOf(Array.from({ length: MIN_BODY_PIECES + 1 }, () => one)), 64 * 1024)),
    ).toBe(
      `E_INVALID_INPUT: request body came in more than ${MIN_BODY_PIECES} pieces (${MIN_BODY_PIECES} bytes so far): send it in larger chunks`,
    );
    // A 2 MiB limit allows 8 192 pieces: a body of 8 192 pieces of 256 bytes is read.
    const limit = 2 << 20;
    const most = limit / MIN_MEAN_BODY_PIECE_BYTES;
    const piece = Buffer.alloc(MIN_MEAN_BODY_PIECE_BYTES, 7);
    expect((await readBody(requestOf(Array.from({ length: most }, () => piece)), limit)).length).toBe(limit);
    expect(await failure(readBody(requestOf(Array.from({ length: most + 1 }, () => one)), limit))).toMatch(
      new RegExp(`^E_INVALID_INPUT: request body came in more than ${most} pieces`),
    );
  });

  it('refuses a declared or streamed size over the limit (413)', async () => {
    expect(await failure(readBody(requestOf([], { 'content-length': '1025' }), 1024))).toMatch(
      /^E_TOO_LARGE/,
    );
    expect(await failure(readBody(requestOf([Buffer.alloc(600), Buffer.alloc(600)]), 1024))).toMatch(
      /^E_TOO_LARGE/,
    );
  });

  it("runs the prefix check on the body's first bytes as soon as they are in", async () => {
    const seen: string[] = [];
    const check = { bytes: 4, check: (p: Buffer) => void seen.push(p.toString()) };
    await readBody(requestOf([Buffer.from('ab'), Buffer.from('cdef'), Buffer.from('gh')]), 1024, check);
    await readBody(requestOf([Buffer.from('xy')]), 1024, check);
    expect(seen).toEqual(['abcd', 'xy']);
  });
});
