import { connect, type Socket } from 'node:net';
import { SessionStream, sessionProofMismatches } from '@firn/client';
import { hexBytes } from '@firn/core';
import { STREAM_TAG, writeStreamFrame } from '@firn/enclave';
import { describe, expect, it } from 'vitest';
import { sessionProgramHarness } from './sessionProgramHarness.ts';
import {
  MAX_PENDING_CONNECTIONS,
  MAX_QUEUED_PER_CONNECTION,
  MAX_TOKENLESS_CONNECTIONS,
  TOKEN_WAIT_MS,
} from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { SessionRelay } from '../../packages/node/src/jobs/sessionRelay.ts';

// Attacks on the requester's direct connection to a session's child
// (docs/decisions/1310-requester-connects-to-session-child.md): the child listens on a TCP port of
// the address the host names, keeps the first connection that presents the open's direct token,
// and answers it like the host's relay. The enclave program runs in this process with models that
// serve in-process (the same serveSessionEndpoint the image's child runs): real sockets, framing
// and crypto.

const { program, open, x, close } = await sessionProgramHarness('direct-tcp', 4);

/** A session opened on the child's direct TCP endpoint, with the requester's port and token. */
async function openDirect() {
  const o = await open(true);
  const d = o.r.endpoint!.direct!;
  return { ...o, port: d.port, token: hexBytes(d.token, 'token', 32) };
}

/** Connect to the port as a stranger; resolves with every byte it got before the socket closed. */
function stranger(
  port: number,
  send: (s: Socket) => void,
  giveUpMs = 3000,
): Promise<{ bytes: number; connected: boolean }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let connected = false;
    const s = connect({ host: '127.0.0.1', port });
    s.on('connect', () => {
      connected = true;
      send(s);
    });
    s.on('data', (d) => {
      bytes += d.length;
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve({ bytes, connected }));
    setTimeout(() => s.destroy(), giveUpMs).unref();
  });
}

describe('attacks on the requester’s direct connection to the session child', () => {
  it('the requester connects with the direct token and pipelines; answers come in order, the proof matches', async () => {
    const { jobId, codec, port, token, r } = await openDirect();
    // The host's token and the requester's are different secrets.
    expect(r.endpoint!.direct!.token).not.toBe(r.endpoint!.token);
    const s = await SessionStream.connectDirect('127.0.0.1', port, token);
    const inputs = [
      [1, 2, 3],
      [4, 5, 6, 7, 8, 9],
      [0, 0, 1],
    ];
    const sent = inputs.map((v) => codec.sealRequest(x(v)));
    const answers = await Promise.all(sent.map((m) => s.send(m)));
    for (let i = 0; i < sent.length; i++)
      expect(codec.openResponse(sent[i]!, answers[i]!).y!.dims).toEqual([inputs[i]!.length / 3, 2]);
    const closed = await close(jobId, codec);
    expect(closed.requests).toBe(3);
    expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
    await expect.poll(() => s.closed).toBe(true); // the child ended the connection at close
  });

  it('a stranger on the port without the token gets no byte and moves nothing; after the requester connects nobody else can', async () => {
    const { jobId, codec, port, token } = await openDirect();
    const wrongToken = await stranger(port, (s) => writeStreamFrame(s, STREAM_TAG.token, new Uint8Array(32)));
    expect(wrongToken).toEqual({ bytes: 0, connected: true });
    const req0 = codec.sealRequest(x([4, 5, 6]));
    // A captured request sent without the token: closed without an answer, never run.
    const noToken = await stranger(port, (s) => writeStreamFrame(s, STREAM_TAG.message, req0));
    expect(noToken).toEqual({ bytes: 0, connected: true });
    // A 9 MiB length prefix instead of a token: refused from the prefix, nothing buffered, no byte.
    const huge = await stranger(port, (s) => {
      const h = Buffer.alloc(5);
      h.writeUInt32BE(9 * 1024 * 1024, 0);
      s.write(h);
    });
    expect(huge).toEqual({ bytes: 0, connected: true });
    const s = await SessionStream.connectDirect('127.0.0.1', port, token);
    // The request the stranger tried first is answered normally: the stranger moved nothing.
    expect(codec.openResponse(req0, await s.send(req0)).y!.dims).toEqual([1, 2]);
    // The port stopped listening once the requester connected: a second holder of the token gets
    // nothing (and the SDK would fall back to the node's relayed stream).
    await expect(
      SessionStream.connectDirect('127.0.0.1', port, token, undefined, 1000),
    ).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
    });
    const closed = await close(jobId, codec);
    expect(closed.requests).toBe(1);
  });

  it(`after ${MAX_TOKENLESS_CONNECTIONS} tokenless tries the port closes for good; strangers waiting at once are bounded`, async () => {
    const a = await openDirect();
    // Silent connections (no token yet) beyond MAX_PENDING_CONNECTIONS are closed at once.
    const silent = await Promise.all(
      Array.from({ length: MAX_PENDING_CONNECTIONS + 1 }, () => {
        const s = connect({ host: '127.0.0.1', port: a.port });
        s.on('error', () => undefined);
        return new Promise<Socket>((resolve) => s.on('connect', () => resolve(s)));
      }),
    );
    const closedEarly = await new Promise<number>((resolve) => {
      let n = 0;
      for (const s of silent) s.on('close', () => n++);
      setTimeout(() => resolve(n), 300);
    });
    expect(closedEarly).toBe(1);
    // The requester still gets in while strangers wait (the oldest waiting one makes room), and the
    // strangers still waiting are closed once it is in.
    const s = await SessionStream.connectDirect('127.0.0.1', a.port, a.token);
    await expect.poll(() => silent.every((q) => q.destroyed || q.readableEnded)).toBe(true);
    s.close();
    await program.handle('closeSession', { sessionId: a.jobId }).catch(() => undefined);

    const b = await openDirect();
    for (let i = 0; i < MAX_TOKENLESS_CONNECTIONS; i++)
      await stranger(b.port, (q) => writeStreamFrame(q, STREAM_TAG.token, new Uint8Array(32).fill(i)));
    await expect(
      SessionStream.connectDirect('127.0.0.1', b.port, b.token, undefined, 1000),
    ).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
    });
    // The host's relay still serves the session: a guesser only costs the requester the direct path.
    const relay = await SessionRelay.connect(b.r.endpoint!.path, b.r.endpoint!.token);
    const q = b.codec.sealRequest(x([1, 1, 1]));
    expect(b.codec.openResponse(q, await relay.send(q)).y!.dims).toEqual([1, 2]);
    expect((await close(b.jobId, b.codec)).requests).toBe(1);
    relay.close();
  });

  it(`a connection that sends no token is closed after ${TOKEN_WAIT_MS} ms without a byte`, async () => {
    const { jobId, port } = await openDirect();
    const t0 = Date.now();
    const silent = await stranger(port, () => undefined, TOKEN_WAIT_MS + 3000);
    expect(silent).toEqual({ bytes: 0, connected: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(TOKEN_WAIT_MS - 50);
    expect(Date.now() - t0).toBeLessThan(TOKEN_WAIT_MS + 2000);
    await program.handle('closeSession', { sessionId: jobId }).catch(() => undefined);
  }, 20_000);

  it('replayed, reordered and oversized messages on the direct connection are refused and the session goes on; an altered one ends it', async () => {
    const { jobId, codec, port, token } = await openDirect();
    const s = await SessionStream.connectDirect('127.0.0.1', port, token);
    const a = codec.sealRequest(x([1, 1, 1]));
    codec.openResponse(a, await s.send(a));
    await expect(s.send(a)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' }); // replayed
    const b = codec.sealRequest(x([2, 2, 2]));
    const c = codec.sealRequest(x([3, 3, 3]));
    await expect(s.send(c)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' }); // reordered
    const huge = new Uint8Array(64 * 1024 + 1);
    huge.set(b.subarray(0, 10));
    await expect(s.send(huge)).rejects.toMatchObject({ code: 'E_TOO_LARGE' }); // over the 64 KiB cap
    // The same connection still serves, in order.
    const [rb, rc] = await Promise.all([s.send(b), s.send(c)]);
    expect(codec.openResponse(b, rb).y!.dims).toEqual([1, 2]);
    expect(codec.openResponse(c, rc).y!.dims).toEqual([1, 2]);
    // An answer is tied to its request's number: b's answer never passes for c's.
    expect(() => codec.openResponse(c, rb)).toThrow();
    // Altered: refused, and the session opens nothing more (decision 1715), the genuine one included.
    const d = codec.sealRequest(x([4, 4, 4]));
    const altered = Uint8Array.from(d);
    altered[altered.length - 1]! ^= 1;
    await expect(s.send(altered)).rejects.toMatchObject({ code: 'E_DECRYPT' });
    await expect(s.send(d)).rejects.toMatchObject({ code: 'E_DECRYPT' });
    // The requester's close still opens: what was answered is proven.
    const closed = await close(jobId, codec);
    expect(closed.requests).toBe(3);
    expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
  });

  it('the direct connection and the host relay share one sequence: a message answered on one is a replay on the other', async () => {
    const { jobId, r, codec, port, token } = await openDirect();
    const s = await SessionStream.connectDirect('127.0.0.1', port, token);
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    const a = codec.sealRequest(x([1, 2, 3]));
    codec.openResponse(a, await s.send(a));
    await expect(relay.send(a)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' });
    const b = codec.sealRequest(x([3, 2, 1]));
    codec.openResponse(b, await relay.send(b));
    await expect(s.send(b)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' });
    const closed = await close(jobId, codec);
    expect(closed.requests).toBe(2);
    expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
    relay.close();
  });

  it(`a requester that floods the connection is read only ${MAX_QUEUED_PER_CONNECTION} requests ahead (back-pressure, nothing dropped)`, async () => {
    const { jobId, codec, port, token } = await openDirect();
    const s = await SessionStream.connectDirect('127.0.0.1', port, token);
    const n = MAX_QUEUED_PER_CONNECTION * 3;
    const sent = Array.from({ length: n }, (_, i) => codec.sealRequest(x([i, i, i])));
    const answers = await Promise.all(sent.map((m) => s.send(m)));
    for (let i = 0; i < n; i++) expect(codec.openResponse(sent[i]!, answers[i]!).y!.dims).toEqual([1, 2]);
    expect((await close(jobId, codec)).requests).toBe(n);
  });
});
