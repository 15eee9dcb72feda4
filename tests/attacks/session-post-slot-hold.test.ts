import { connect, type Socket } from 'node:net';
import type { InferenceSession } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { openNetworkSession } from '../helpers/networkSession.ts';

// The attack: a stranger with no credentials holds the session-wide "requests in flight" slots of
// POST /v1/sessions/{id}/requests. A slot is taken as soon as a body's clear 26-byte header passes
// (kind request, next sequence number: both readable or guessable without any key) and is held
// while the REST of the body is read, which the body-rate guard lets trickle for minutes (64 KiB
// per 10 s, up to 10 s + length / 6.5 KiB/s). Two such bodies and the requester's own requests get
// 429 E_RATE_LIMITED; the SDK then ends the session. The fallback path of decision 1240 (when a
// stranger holds the stream slots) and every `transport: 'http'` requester are cut off.
let net: TestNetwork;
let session: InferenceSession;
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 5 });
const x = (v: number) => ({
  x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.from([v, 2, 3]) },
});

beforeAll(async () => {
  net = await startTestNetwork();
  session = await openNetworkSession(net, model.bytes, {
    requesterKem: await generateKemKeyPair(),
    escrow: 10n ** 15n,
    transport: 'http',
  });
}, 120_000);
afterAll(() => net?.stop());

/** A stranger's POST whose body starts with a plausible clear header (seq) and then stalls. */
function slowBody(seq: bigint): Socket {
  const u = new URL(net.node.url);
  const s = connect({ host: u.hostname, port: Number(u.port) });
  s.on('error', () => undefined);
  const header = Buffer.alloc(26);
  header[0] = 1; // channel version
  header[1] = 0x11; // session request
  header.writeBigUInt64BE(seq, 2);
  s.write(
    `POST /v1/sessions/${session.sessionId}/requests HTTP/1.1\r\nhost: ${u.host}\r\n` +
      `content-type: application/octet-stream\r\ncontent-length: ${1024 * 1024}\r\n\r\n`,
  );
  s.write(header);
  return s;
}

describe('a stranger cannot hold a session’s request slots', () => {
  it('two stalled bodies with a guessed header do not stop the requester’s next request', async () => {
    expect(session.transport).toBe('http');
    expect((await session.infer(x(1))).y!.dims).toEqual([1, 2]);
    // The next sequence number is 1 (one request answered): the header is public knowledge.
    const held = [slowBody(1n), slowBody(2n)];
    try {
      await new Promise((r) => setTimeout(r, 500));
      // The promise: the requester's session goes on.
      expect((await session.infer(x(2))).y!.dims).toEqual([1, 2]);
    } finally {
      for (const s of held) s.destroy();
    }
    const closed = await session.close();
    expect(closed.proofCheck.ok).toBe(true);
  }, 60_000);
});
