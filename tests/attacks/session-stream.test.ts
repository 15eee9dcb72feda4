import { request } from 'node:http';
import type { Socket } from 'node:net';
import { type InferenceSession, SessionStream } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { openNetworkSession } from '../helpers/networkSession.ts';

// Attacks on the session stream (GET /v1/sessions/{id}/stream, Upgrade: firn-session/1;
// docs/decisions/1240-direct-session-endpoint.md) through a real node, enclave process and the
// session's child: a stranger on the stream, replayed and oversized frames, and the requester's
// session going on untouched. Bounded: one devnet, a tiny model.
let net: TestNetwork;
let session: InferenceSession;
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 11 });
const x = (v: number) => ({
  x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.from([v, 2, 3]) },
});

beforeAll(async () => {
  net = await startTestNetwork();
  session = await openNetworkSession(net, model.bytes, {
    requesterKem: await generateKemKeyPair(),
    escrow: 10n ** 15n,
    // The node's relayed stream (decision 1240); the direct path is tested in session-direct-tcp.
    transport: 'stream',
  });
}, 120_000);
afterAll(() => net?.stop());

/** Upgrade a raw connection to the session stream; resolves with the socket. */
function rawStream(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, net.node.url), {
      headers: {
        connection: 'Upgrade',
        upgrade: 'firn-session/1',
        'x-firn-session-token': session.accessToken!,
      },
    });
    req.on('upgrade', (_res, socket) => resolve(socket as Socket));
    req.on('response', (r) => reject(new Error(`status ${r.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('session stream attacks', () => {
  it('the requester pipelines over the stream; answers come in order and match the requests', async () => {
    expect(session.transport).toBe('stream');
    const outs = await Promise.all([1, 2, 3, 4, 5].map((v) => session.infer(x(v))));
    const ys = outs.map((o) => Array.from(o.y!.data as Float32Array));
    // Same answers one at a time: the order was kept.
    for (const [i, v] of [1, 2, 3, 4, 5].entries()) {
      const one = await session.infer(x(v));
      expect(Array.from(one.y!.data as Float32Array)).toEqual(ys[i]);
    }
  });

  it('a stream to an unknown session, without the session token, or with another protocol, is refused before any frame', async () => {
    await expect(SessionStream.open(net.node.url, `0x${'ab'.repeat(32)}`)).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
    // A stranger who knows the session id (the public jobId) but not its token holds no stream slot.
    for (const token of [undefined, Buffer.alloc(32).toString('base64url')])
      await expect(
        SessionStream.open(net.node.url, session.sessionId, undefined, token),
      ).rejects.toMatchObject({ code: 'E_UNAUTHENTICATED' });
    const status = await new Promise<number>((resolve) => {
      const req = request(new URL(`/v1/sessions/${session.sessionId}/stream`, net.node.url), {
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'x-firn-session-token': session.accessToken!,
        },
      });
      req.on('response', (r) => resolve(r.statusCode ?? 0));
      req.on('upgrade', (_r, s) => {
        s.destroy();
        resolve(101);
      });
      req.on('error', () => resolve(-1));
      req.end();
    });
    expect(status).toBe(400);
  });

  it('a sender with the token (the host, a tap) gets only refusal codes on the stream: a replay and an oversized frame; the requester goes on until junk ends the session', async () => {
    // Capture the requester's next message as it leaves (what the host or a tap would see).
    const captured: Uint8Array[] = [];
    // The SDK writes a request as its wire parts (decision 1360): the message is their concatenation.
    const sendParts = SessionStream.prototype.sendParts;
    SessionStream.prototype.sendParts = function (this: SessionStream, parts: readonly Uint8Array[]) {
      captured.push(new Uint8Array(Buffer.concat(parts)));
      return sendParts.call(this, parts);
    };
    try {
      await session.infer(x(7));
    } finally {
      SessionStream.prototype.sendParts = sendParts;
    }
    const replay = captured[0]!;
    // Replayed: refused by its clear header at the host (and it would be by the child), stream ended.
    const s1 = await SessionStream.open(net.node.url, session.sessionId, undefined, session.accessToken);
    await expect(s1.send(replay)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' });
    // Oversized: a 9 MiB length is refused from its prefix, nothing of it is read or relayed.
    const raw = await rawStream(`/v1/sessions/${session.sessionId}/stream`);
    const got: Buffer[] = [];
    const closed = new Promise<void>((r) => raw.on('close', () => r()));
    raw.on('data', (d: Buffer) => got.push(d));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(9 * 1024 * 1024, 0);
    raw.write(head);
    await closed;
    const answer = Buffer.concat(got);
    expect(answer[4]).toBe(1); // a refusal frame
    expect(JSON.parse(answer.subarray(5).toString('utf8'))).toMatchObject({ code: 'E_TOO_LARGE' });
    // The requester's session is where it was.
    expect((await session.infer(x(8))).y!.dims).toEqual([1, 2]);
    // Junk with the next sequence number in its header: the child cannot open it (E_DECRYPT), and
    // the session opens no further request (decision 1715): one try, not a stream of probes.
    const junk = Uint8Array.from(replay);
    const seq = new DataView(junk.buffer).getBigUint64(2, false) + 2n;
    new DataView(junk.buffer).setBigUint64(2, seq, false);
    const s2 = await SessionStream.open(net.node.url, session.sessionId, undefined, session.accessToken);
    await expect(s2.send(junk)).rejects.toMatchObject({ code: 'E_DECRYPT' });
    s2.close();
    await expect(session.infer(x(9))).rejects.toMatchObject({ code: 'E_DECRYPT' });
  });

  it('the session closes with a proof that matches the requester’s transcript; its streams end', async () => {
    const stranger = await SessionStream.open(
      net.node.url,
      session.sessionId,
      undefined,
      session.accessToken,
    );
    const closed = await session.close();
    expect(closed.proofCheck).toEqual({ ok: true, reasons: [] });
    await expect(stranger.send(new Uint8Array(40))).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });
});
