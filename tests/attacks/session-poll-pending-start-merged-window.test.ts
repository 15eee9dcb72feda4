import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { SessionCodec, SessionStream } from '@firn/client';
import { bytesToHex, hexBytes, LoopPoller } from '@firn/core';
import { deriveSessionKeys } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import {
  type EndpointModel,
  serveSessionEndpoint,
} from '../../packages/enclave/src/runtime/sessionEndpoint.ts';

// Attack (LoopPoller, decision 1800's amendment): a window whose start is delayed keeps its end in
// the same `until` every other window uses. A second `pollFor` while that start is pending does
// not open a window of its own: it raises `until` to the later of the two ends and polling runs
// from the EARLIER start to the LATER end, so two calls of `ms` each poll for the whole distance
// between them plus `ms`, not 2 * ms. LoopPoller documents "Either way one call costs at most `ms`
// of polling", and the amendment "a window ends where the next begins ... a new window is never
// taken for an extension of the old one".
//
// Where it bites: the session child's `keep` (a connection that presented its token) calls
// `poller.pollFor(pollMs)` with no `stop()` before it. While a request runs, the child's window
// is delayed until shortly before the shortest recent run (runTimes); a requester who times its
// direct connection into that run (after a few slow runs over the host's relay: a big batch, a
// heavy model) makes the child spin from the connection to the end of the run, however long the
// run is, instead of pollMs: far over "at most twice the window per request".
//
// Secure outcome: each call polls for at most its own `ms` (a pending delayed window is either
// kept as its own window or replaced, never merged with another into one spanning both).

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LoopPoller: a call while a delayed start is pending polls for its own window only', () => {
  it('pollFor(20, 1000) then pollFor(20): nothing polled 100-250 ms later', async () => {
    const p = new LoopPoller();
    try {
      p.pollFor(20, 1_000);
      p.pollFor(20);
      await sleep(100);
      const a = p.turns;
      await sleep(150);
      expect(
        p.turns - a,
        'turns polled 100-250 ms after two 20 ms windows (one due at 1 s)',
      ).toBeLessThanOrEqual(1);
    } finally {
      p.stop();
    }
  });

  it('pollFor(20, 20) then pollFor(20, 1000): nothing polled 100-250 ms later', async () => {
    const p = new LoopPoller();
    try {
      p.pollFor(20, 20);
      p.pollFor(20, 1_000);
      await sleep(100);
      const a = p.turns;
      await sleep(150);
      expect(
        p.turns - a,
        'turns polled 100-250 ms after a window of 20-40 ms (the other due at 1 s)',
      ).toBeLessThanOrEqual(1);
    } finally {
      p.stop();
    }
  });
});

describe('the session child: a connection kept while a slow run’s window is pending', () => {
  it('polls for pollMs after the connection, not until the run ends', async () => {
    const RUN_MS = 700;
    // A heavy model: each run takes RUN_MS (the requester's batch or the model's size).
    const model: EndpointModel = {
      run: async () => {
        await sleep(RUN_MS);
        return { y: { type: 'float32', dims: [1, 2], data: Float32Array.from([1, 2]) } };
      },
    };
    const secret = randomBytes(32);
    const salt = randomBytes(32);
    const sessionId = bytesToHex(randomBytes(32));
    const served = await serveSessionEndpoint(model, {
      sessionId,
      keys: deriveSessionKeys(secret, salt, sessionId),
      expiresInMs: 600_000,
      maxRequestBytes: 64 * 1024,
      directHost: '127.0.0.1',
      pollMs: 20,
    });
    const codec = new SessionCodec(secret, salt, sessionId);
    // The host's relay connection (Unix socket): token frame, then requests; answers counted.
    let answers = 0;
    let buf = Buffer.alloc(0);
    const host: Socket = connect(served.address.path);
    host.on('error', () => undefined);
    host.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        if (buf[4] === 0) answers++;
        buf = buf.subarray(4 + buf.readUInt32BE(0));
      }
    });
    await new Promise<void>((r) => host.once('connect', () => r()));
    const frame = (tag: number, body: Uint8Array) => {
      const h = Buffer.alloc(5);
      h.writeUInt32BE(body.length + 1, 0);
      h[4] = tag;
      host.write(Buffer.concat([h, body]));
    };
    frame(2, hexBytes(served.address.token, 'token', 32));
    const x = (v: number) => ({
      x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.from([v, v, v]) },
    });
    let direct: SessionStream | undefined;
    try {
      // Three slow runs through the relay: the child now delays its run window by ~RUN_MS.
      for (let i = 0; i < 3; i++) frame(0, codec.sealRequest(x(i)));
      for (let i = 0; i < 400 && answers < 3; i++) await sleep(10);
      expect(answers).toBe(3);
      // A fourth slow run; 50 ms into it, the requester connects directly.
      frame(0, codec.sealRequest(x(9)));
      const sent = performance.now();
      await sleep(50);
      const d = served.address.direct!;
      direct = await SessionStream.connectDirect('127.0.0.1', d.port, hexBytes(d.token, 'direct token', 32));
      // The connection's window (20 ms) is long over; the run's own window starts ~RUN_MS - 2 ms
      // after the run began: look before it (with room for a late timer on a loaded machine).
      await sleep(100);
      const a = served.pollTurns();
      await sleep(Math.max(20, Math.min(150, sent + RUN_MS - 150 - performance.now())));
      const b = served.pollTurns();
      expect(answers, 'the fourth run is still going').toBe(3);
      expect(
        b - a,
        'child turns polled 100-250 ms after the connection (window 20 ms), mid-run',
      ).toBeLessThanOrEqual(1);
    } finally {
      direct?.close();
      host.destroy();
      served.stop();
    }
  });
});
