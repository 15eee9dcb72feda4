import { openInferenceSession } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { loadOnnxModel } from '@firn/ml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from './network.ts';

// The requester's direct connection to a session's child through a real node, a real enclave
// process and its keyless child (docs/decisions/1310-requester-connects-to-session-child.md).
let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

const opts = async () => ({
  rpcUrl: net.anvil.rpcUrl,
  deployment: net.deployment,
  requesterKey: net.requester.privateKey,
  requesterKem: await generateKemKeyPair(),
  policy: net.policy,
  roots: net.roots,
  escrow: 10n ** 15n,
});

describe('warm session, requester connected to the session child directly', () => {
  it('pipelines bit-identical answers past the node process; the host does not close it as idle while it is busy; the proof verifies', async () => {
    const model = tinyLinearModel({ inFeatures: 4, outFeatures: 3, seed: 5 });
    const plain = await loadOnnxModel(model.bytes);
    // The host's idle close after 800 ms (the sweeper looks every 200 ms): direct requests do not
    // pass the host, so it must ask the enclave before it closes.
    Object.assign(net.node.jobs!.sessions, { idleMs: 800 });
    const session = await openInferenceSession({ ...(await opts()), model: { bytes: model.bytes } });
    expect(session.transport).toBe('direct');
    const xs = [1, 2, 5].map((rows) => ({
      x: {
        type: 'float32' as const,
        dims: [rows, 4],
        data: Float32Array.from({ length: rows * 4 }, (_v, i) => Math.cos(i * 0.3 + rows)),
      },
    }));
    // Busy for longer than the host's idle limit, with every request bypassing the node process.
    const until = Date.now() + 2_000;
    let n = 0;
    while (Date.now() < until) {
      const outs = await Promise.all(xs.map((x) => session.infer(x)));
      for (let i = 0; i < xs.length; i++) {
        const ref = await plain.run(xs[i]!);
        expect(Array.from(outs[i]!.y!.data as Float32Array)).toEqual(Array.from(ref.y!.data as Float32Array));
      }
      n += xs.length;
      await new Promise((r) => setTimeout(r, 100));
    }
    const closed = await session.close();
    expect(closed.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(closed.requests).toBe(n);
    await plain.release();
  });

  it('a requester that does not ask for it gets no direct port, and the host keeps its own checks', async () => {
    const model = tinyLinearModel({ inFeatures: 4, outFeatures: 3, seed: 7 });
    const session = await openInferenceSession({
      ...(await opts()),
      model: { bytes: model.bytes },
      transport: 'stream',
    });
    expect(session.transport).toBe('stream');
    const hosted = (net.node.jobs!.sessions as unknown as { open: Map<string, { direct?: boolean }> }).open;
    expect(hosted.get(session.sessionId)?.direct).toBeUndefined();
    await session.infer({ x: { type: 'float32', dims: [1, 4], data: new Float32Array(4) } });
    expect((await session.close()).proofCheck.ok).toBe(true);
  });

  it('falls back to the node’s relayed stream when the child’s port cannot be reached', async () => {
    const model = tinyLinearModel({ inFeatures: 4, outFeatures: 3, seed: 6 });
    Object.assign(net.node.jobs!.sessions, { idleMs: 5 * 60_000 });
    // A node whose open answer names a port nothing listens on (a firewall between requester and child).
    const open = net.node.jobs!.sessions.openSession.bind(net.node.jobs!.sessions);
    net.node.jobs!.sessions.openSession = async (req, json) => {
      const r = await open(req, json);
      return r.direct === undefined ? r : { ...r, direct: { ...r.direct, port: 1 } };
    };
    try {
      const session = await openInferenceSession({ ...(await opts()), model: { bytes: model.bytes } });
      expect(session.transport).toBe('stream');
      const out = await session.infer({
        x: { type: 'float32', dims: [1, 4], data: new Float32Array(4).fill(1) },
      });
      expect(out.y!.dims).toEqual([1, 3]);
      expect((await session.close()).proofCheck.ok).toBe(true);
    } finally {
      net.node.jobs!.sessions.openSession = open;
    }
  });
});
