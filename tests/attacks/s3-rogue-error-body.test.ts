import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../packages/node/src/storage/s3ArtifactStore.ts';

// A rogue bucket answers a read with an error status and an endless-looking error body (here
// 256 MiB, sent fast). The node must refuse it (E_UNAVAILABLE) without holding the whole error
// body in memory.
const ERROR_BYTES = 256 * 2 ** 20;
const ID = `0x${'12'.repeat(32)}` as Hex;

describe('attack: a bucket that answers with a huge error body', () => {
  let server: Server;
  let endpoint: string;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    const chunk = Buffer.alloc(2 ** 20, 0x41);
    server = createServer((req, res) => {
      req.resume();
      if (req.method === 'HEAD') {
        res.writeHead(404);
        res.end();
        return;
      }
      // A read gets an error status; a write gets 200 OK with the same endless body.
      res.writeHead(req.method === 'PUT' ? 200 : 500, {
        'content-type': 'application/xml',
        'content-length': ERROR_BYTES,
      });
      let sent = 0;
      const pump = () => {
        while (sent < ERROR_BYTES) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });

  it('is E_UNAVAILABLE and the node never buffers the error body (memory grows by < 64 MiB)', async () => {
    const store = new S3ArtifactStore({
      bucket: 'b-ucket',
      prefix: '',
      endpoint,
      credentials: { accessKeyId: 'R', secretAccessKey: 'R' },
    });
    const base = process.memoryUsage();
    const baseline = base.arrayBuffers + base.heapUsed;
    let peak = 0;
    const sample = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.arrayBuffers + m.heapUsed - baseline);
    }, 5);
    const err = await store.get(ID, 1024).then(
      () => undefined,
      (e: unknown) => e,
    );
    clearInterval(sample);
    expect((err as { code?: string })?.code).toBe('E_UNAVAILABLE');
    expect(peak).toBeLessThan(64 * 2 ** 20);
  }, 60_000);

  it('a write answered 200 with a huge body is not buffered either (memory grows by < 64 MiB)', async () => {
    const store = new S3ArtifactStore({
      bucket: 'b-ucket',
      prefix: '',
      endpoint,
      credentials: { accessKeyId: 'R', secretAccessKey: 'R' },
    });
    const base = process.memoryUsage();
    const baseline = base.arrayBuffers + base.heapUsed;
    let peak = 0;
    const sample = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.arrayBuffers + m.heapUsed - baseline);
    }, 5);
    await store.put(Buffer.from('some sealed bytes')).catch(() => undefined);
    clearInterval(sample);
    expect(peak).toBeLessThan(64 * 2 ** 20);
  }, 60_000);
});
