import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bytesToHex, FirnError } from '@firn/core';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeApi } from '../../packages/client/src/nodeApi.ts';
import { postSessionRequest } from '../../packages/client/src/sessionPost.ts';

// Decision 1530: "Every request has a deadline (requestTimeoutMs) ... It runs from the moment the
// request is sent to the moment its whole answer is in." A hostile host that answers each POST
// attempt with 429 (Retry-After: 0) just before that attempt's own bound (and, once, drops the
// connection just before it) makes the SDK re-send again and again: every attempt gets a fresh
// requestTimeoutMs, so the caller is held about five times the deadline it set.

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

describe('a POST session request against a host that refuses just before each deadline', () => {
  it('fails within requestTimeoutMs of being sent, not a multiple of it', async () => {
    const timeoutMs = 400;
    let attempts = 0;
    const server = createServer((req, res) => {
      req.resume();
      attempts++;
      const n = attempts;
      setTimeout(() => {
        if (n === 1) {
          // Drop with no answer: the "ambiguous" case, re-sent once.
          req.socket.destroy();
          return;
        }
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' });
        res.end(JSON.stringify({ error: { code: 'E_RATE_LIMITED', message: 'slow down' } }));
      }, timeoutMs - 60);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const api = new NodeApi(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 30_000);
    const t0 = performance.now();
    const e = await postSessionRequest(api, bytesToHex(new Uint8Array(32)), new Uint8Array(64), {
      timeoutMs,
    }).catch((x: unknown) => x);
    const held = performance.now() - t0;
    expect(e).toBeInstanceOf(FirnError);
    // One deadline, plus slack for the loopback: the host got at most one more try in.
    expect({ attempts, held: held < timeoutMs + 250 }).toEqual({ attempts: expect.any(Number), held: true });
  });
});
