import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FirnError } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStream } from '../../packages/client/src/sessionStream.ts';

// A hostile node host answers a session request on the relayed stream with a refusal frame (tag 1)
// of 8 MiB of nested JSON arrays: within the answer cap, but JSON.parse would build one array per
// byte pair (some 250 MB of heap). A refusal is a short {code, message}: the requester must refuse
// a refusal frame that is not one (E_PARSE) without parsing megabytes of it.

const ID = `0x${'ef'.repeat(32)}` as const;
const N = 4 * 1024 * 1024;
let node: Server;
const sockets: { destroy(): void }[] = [];
const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

beforeAll(async () => {
  node = createServer();
  node.on('upgrade', (_req, socket) => {
    sockets.push(socket);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: firn-session/1\r\n\r\n',
    );
    socket.once('data', () => {
      const head = Buffer.alloc(5);
      head.writeUInt32BE(2 * N + 1, 0);
      head[4] = 1;
      socket.write(Buffer.concat([head, Buffer.alloc(N, '['), Buffer.alloc(N, ']')]));
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  for (const k of sockets) k.destroy();
  await new Promise((r) => node.close(r));
});

describe('attack: a megabyte refusal frame of nested JSON', () => {
  it('is E_PARSE, and parsing it does not take the heap', async () => {
    const s = await SessionStream.open(url(node), ID, 8 * 1024 * 1024 + 1, undefined, 5_000);
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    const t = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 1);
    const spy = JSON.parse;
    let parsedBytes = 0;
    JSON.parse = ((text: string, ...rest: never[]) => {
      parsedBytes = Math.max(parsedBytes, text.length);
      return spy(text, ...rest);
    }) as typeof JSON.parse;
    try {
      const e = (await s.send(new Uint8Array(16)).catch((x: unknown) => x)) as FirnError;
      expect(e.code).toBe('E_PARSE');
    } finally {
      JSON.parse = spy;
      clearInterval(t);
      s.close();
    }
    expect(parsedBytes).toBeLessThan(64 * 1024);
  }, 30_000);
});
