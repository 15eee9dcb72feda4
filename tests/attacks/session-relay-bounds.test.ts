import { request } from 'node:http';
import type { Socket } from 'node:net';
import { type InferenceSession, openInferenceSession } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// Attacks on the host's relayed session path (GET /v1/sessions/{id}/stream, Upgrade:
// firn-session/1) by a requester who holds a session's token: a stream that dribbles a frame or
// sends nothing, a session kept open for ever, and many sessions at once. Each must be ended or
// refused with a reason (docs/decisions/1550-node-host-resource-bounds.md). One devnet, a tiny model.
let net: TestNetwork;
let session: InferenceSession;
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 5 });
const x = (v: number) => ({
  x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.from([v, 2, 3]) },
});
const open = async () =>
  openInferenceSession({
    rpcUrl: net.anvil.rpcUrl,
    deployment: net.deployment,
    requesterKey: net.requester.privateKey,
    requesterKem: await generateKemKeyPair(),
    policy: net.policy,
    roots: net.roots,
    model: { bytes: model.bytes },
    escrow: 10n ** 15n,
    transport: 'stream',
  });

beforeAll(async () => {
  net = await startTestNetwork();
  session = await open();
}, 120_000);
afterAll(() => net?.stop());

/** Upgrade a raw connection to the session stream. */
function rawStream(s: InferenceSession): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(`/v1/sessions/${s.sessionId}/stream`, net.node.url), {
      headers: { connection: 'Upgrade', upgrade: 'firn-session/1', 'x-firn-session-token': s.accessToken! },
    });
    req.on('upgrade', (_res, socket) => resolve(socket as Socket));
    req.on('response', (r) => reject(new Error(`status ${r.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Everything the node sends until it closes the socket, or `waitMs` passes (then: still open). */
function untilClosed(socket: Socket, waitMs: number): Promise<{ closed: boolean; data: Buffer; ms: number }> {
  const t0 = Date.now();
  const parts: Buffer[] = [];
  socket.on('data', (c: Buffer) => parts.push(c));
  return new Promise((resolve) => {
    const timer = setTimeout(
      () => resolve({ closed: false, data: Buffer.concat(parts), ms: Date.now() - t0 }),
      waitMs,
    );
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, data: Buffer.concat(parts), ms: Date.now() - t0 });
    });
  });
}

/** The refusal frame's {code, message} (tag 1). */
function refusal(data: Buffer): { code: string; message: string } {
  expect(data.length).toBeGreaterThan(5);
  expect(data[4]).toBe(1);
  return JSON.parse(data.subarray(5, 4 + data.readUInt32BE(0)).toString('utf8'));
}

describe('attack: holding the node host relay of a session', () => {
  it('a stream that dribbles a frame a byte at a time is ended with E_TIMEOUT naming the frame limit', async () => {
    const bounds = net.node.jobs!.sessions.bounds;
    bounds.frameMs = 600;
    const socket = await rawStream(session);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(1000, 0); // a 1000-byte frame, sent one byte every 50 ms
    let i = 0;
    const drip = setInterval(() => {
      if (socket.destroyed) return clearInterval(drip);
      socket.write(i < 5 ? header.subarray(i, i + 1) : Buffer.from([0]));
      i++;
    }, 50);
    const r = await untilClosed(socket, 4_000);
    clearInterval(drip);
    socket.destroy();
    expect(r.closed).toBe(true);
    expect(r.ms).toBeLessThan(3_000);
    const e = refusal(r.data);
    expect(e.code).toBe('E_TIMEOUT');
    expect(e.message).toMatch(/must arrive whole within 600 ms/);
  }, 20_000);

  it('a stream that sends nothing is ended with E_TIMEOUT naming the idle limit; the requester goes on', async () => {
    const bounds = net.node.jobs!.sessions.bounds;
    bounds.streamIdleMs = 600;
    const socket = await rawStream(session);
    const r = await untilClosed(socket, 4_000);
    socket.destroy();
    expect(r.closed).toBe(true);
    expect(r.ms).toBeLessThan(3_000);
    expect(refusal(r.data)).toMatchObject({
      code: 'E_TIMEOUT',
      message: expect.stringMatching(/stream idle limit/),
    });
    // The requester's own session still answers (by POST once its idle stream was ended).
    const y = await session.infer(x(1));
    expect(y.y?.dims).toEqual([1, 2]);
    bounds.streamIdleMs = 5 * 60_000;
  }, 20_000);

  it('one requester cannot hold more sessions than the node allows: E_RATE_LIMITED before any claim', async () => {
    const svc = net.node.jobs!;
    svc.sessions.bounds.maxSessionsPerRequester = 1;
    expect(svc.sessions.sessionsOf(net.requester.address)).toBe(1);
    await expect(open()).rejects.toMatchObject({
      code: 'E_RATE_LIMITED',
      message: expect.stringMatching(/already has 1 sessions open on this node/),
    });
    svc.sessions.bounds.maxSessionsPerRequester = 4;
  }, 60_000);

  it('a session kept in use past the node lifetime is closed and proved; its streams end with the reason', async () => {
    const svc = net.node.jobs!;
    svc.sessions.bounds.maxSessionMs = 2_000;
    const s2 = await open();
    svc.sessions.bounds.maxSessionMs = 24 * 3600_000;
    const socket = await rawStream(s2);
    // Kept busy: a request every 300 ms, so the idle close never applies.
    const busy = setInterval(() => void s2.infer(x(2)).catch(() => undefined), 300);
    const r = await untilClosed(socket, 8_000);
    clearInterval(busy);
    socket.destroy();
    expect(r.closed).toBe(true);
    expect(refusal(r.data)).toMatchObject({
      code: 'E_TIMEOUT',
      message: expect.stringMatching(/end of its lifetime/),
    });
    await expect
      .poll(() => svc.jobs.get(s2.sessionId)?.status, { timeout: 15_000 })
      .toMatch(/proving|proved/);
  }, 60_000);
});
