import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { SessionStream } from '@firn/client';
import { bytesToHex, hexBytes } from '@firn/core';
import { deriveSessionKeys } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import {
  type EndpointModel,
  serveSessionEndpoint,
} from '../../packages/enclave/src/runtime/sessionEndpoint.ts';

// Attack (a stranger on the session child's direct port, or a host that ends a session): a
// connection that has not presented its token when the session child stops stayed open, with its
// 5 s token-wait timer, after the session ended; and one that presented the right token after
// the stop was kept as the session's connection. Secure outcome: the stop closes every connection
// still waiting for its token at once, and a token that comes after the stop keeps nothing.

const model: EndpointModel = {
  run: async () => ({ y: { type: 'float32', dims: [1, 1], data: Float32Array.from([1]) } }),
};

async function serve() {
  const sessionId = bytesToHex(randomBytes(32));
  return serveSessionEndpoint(model, {
    sessionId,
    keys: deriveSessionKeys(randomBytes(32), randomBytes(32), sessionId),
    expiresInMs: 600_000,
    maxRequestBytes: 64 * 1024,
    directHost: '127.0.0.1',
    pollMs: 0,
  });
}

const closed = (s: Socket) => new Promise<number>((r) => s.once('close', () => r(performance.now())));

describe('a session child that stops closes the connections still short of their token', () => {
  it('a silent connection on the direct port and one on the host socket are closed at the stop, not after the token wait', async () => {
    const served = await serve();
    const tcp = connect(served.address.direct!.port, '127.0.0.1');
    const unix = connect(served.address.path);
    for (const s of [tcp, unix]) s.on('error', () => undefined);
    await Promise.all([tcp, unix].map((s) => new Promise((r) => s.once('connect', r))));
    const ends = [closed(tcp), closed(unix)];
    // Both are accepted and waiting for their token before the stop.
    await new Promise((r) => setTimeout(r, 50));
    const stoppedAt = performance.now();
    served.stop();
    const at = await Promise.race([
      Promise.all(ends),
      new Promise<'open'>((r) => setTimeout(() => r('open'), 2_000).unref()),
    ]);
    tcp.destroy();
    unix.destroy();
    expect(at, 'connections still open 2 s after the stop').not.toBe('open');
    for (const t of at as number[]) expect(t - stoppedAt).toBeLessThan(1_000);
  });

  it('the right token sent after the stop keeps no connection', async () => {
    const served = await serve();
    const d = served.address.direct!;
    const sock = connect(d.port, '127.0.0.1');
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    const end = closed(sock);
    served.stop();
    const h = Buffer.alloc(5);
    h.writeUInt32BE(33, 0);
    h[4] = 2;
    if (!sock.destroyed) sock.write(Buffer.concat([h, hexBytes(d.token, 'token', 32)]));
    let acked = false;
    sock.on('data', () => {
      acked = true;
    });
    await Promise.race([end, new Promise((r) => setTimeout(r, 1_000).unref())]);
    expect(acked, 'the stopped child acknowledged a token').toBe(false);
    expect(sock.destroyed || sock.readyState === 'closed').toBe(true);
    // And a requester's stream cannot connect to it either.
    await expect(
      SessionStream.connectDirect('127.0.0.1', d.port, hexBytes(d.token, 'token', 32)),
    ).rejects.toThrow();
  });
});
