import { randomBytes } from 'node:crypto';
import { type InferenceSession, openInferenceSession } from '@firn/client';
import { FirnError } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// End to end on a devnet: a stranger who knows only a session's id (the public jobId, on chain)
// sends ONE DELETE /v1/sessions/{id} with a junk x-firn-session-auth and no session token. The
// node passed it to the enclave; the enclave opened it "ahead" (any seq past the next one), the
// tag failed, and the session's endpoint marked its receiving side ended. The requester's every
// later request was refused E_DECRYPT: its warm session was gone.
//
// Safe behaviour (docs/decisions/1773-close-auth-never-ends-a-session.md): the stranger's close is
// refused (401: no session token, so nothing reaches the enclave) and the requester's session keeps
// working.
let net: TestNetwork;
let session: InferenceSession;
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 28 });
const x = (v: number) => ({
  x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.from([v, 2, 3]) },
});

beforeAll(async () => {
  net = await startTestNetwork();
  session = await openInferenceSession({
    rpcUrl: net.anvil.rpcUrl,
    deployment: net.deployment,
    requesterKey: net.requester.privateKey,
    requesterKem: await generateKemKeyPair(),
    policy: net.policy,
    roots: net.roots,
    model: { bytes: model.bytes },
    escrow: 10n ** 15n,
  });
}, 180_000);
afterAll(() => net?.stop());

describe('attack: a stranger’s junk DELETE kills a requester’s session', () => {
  it('one tokenless DELETE with junk auth is refused and leaves the session answering', async () => {
    expect((await session.infer(x(1))).y?.dims).toEqual([1, 2]);

    // The stranger: header {version 1, kind request, seq far ahead}, then junk.
    const m = Buffer.alloc(10 + 512 + 16);
    m[0] = 1;
    m[1] = 0x11;
    m.writeBigUInt64BE(1n << 40n, 2);
    randomBytes(528).copy(m, 10);
    const r = await fetch(new URL(`/v1/sessions/${session.sessionId}`, net.node.url), {
      method: 'DELETE',
      headers: { 'x-firn-session-auth': m.toString('base64') },
    });
    const body = JSON.stringify(await r.json());
    expect(r.status).toBe(401);
    expect(body).toContain('E_UNAUTHENTICATED');

    // The requester must not have lost anything.
    expect((await session.infer(x(2))).y?.dims).toEqual([1, 2]);
    const closed = await session.close();
    expect(closed).toBeDefined();
  }, 120_000);

  it('a close that fails on its way to the enclave (no answer in time) leaves the session open on the node', async () => {
    const s = await openInferenceSession({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      requesterKem: await generateKemKeyPair(),
      policy: net.policy,
      roots: net.roots,
      model: { bytes: model.bytes },
      escrow: 10n ** 15n,
    });
    expect((await s.infer(x(1))).y?.dims).toEqual([1, 2]);
    // The node's call to the enclave gets no answer (as when it times out): the enclave never
    // saw this close, so nothing may end.
    const supervisor = net.node.supervisor;
    const call = supervisor.call.bind(supervisor);
    supervisor.call = (async (method: string, params: Record<string, unknown> = {}, t?: number) => {
      if (method === 'closeSession' && params.auth !== undefined)
        throw new FirnError('E_TIMEOUT', 'enclave call timed out');
      return call(method, params, t);
    }) as typeof supervisor.call;
    let status: number;
    try {
      const m = Buffer.alloc(10 + 528);
      m[0] = 1;
      m[1] = 0x11;
      m.writeBigUInt64BE(1n, 2);
      randomBytes(528).copy(m, 10);
      const r = await fetch(new URL(`/v1/sessions/${s.sessionId}`, net.node.url), {
        method: 'DELETE',
        headers: { 'x-firn-session-auth': m.toString('base64'), 'x-firn-session-token': s.accessToken! },
      });
      await r.arrayBuffer();
      status = r.status;
    } finally {
      supervisor.call = call as typeof supervisor.call;
    }
    expect(status).toBeGreaterThanOrEqual(400);
    // The session is still the node's: answered, then closed and proved.
    expect((await s.infer(x(2))).y?.dims).toEqual([1, 2]);
    const closed = await s.close();
    expect(closed.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(closed.requests).toBe(2);
  }, 120_000);
});
