import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { NodeApi, openInferenceSession } from '@firn/client';
import { parseWorkProofJson } from '@firn/core';
import { encodeOnnxModel, loadOnnxModel } from '@firn/ml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from './network.ts';

// A warm inference session through a real node (HTTP), a real enclave process and the market
// (post, claim, submit proof). Not covered: verifier disputes of session proofs, node restarts
// with open sessions (sessions do not survive them), and timing (bench/confidentialInference.ts).
let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

describe('warm inference session end to end', () => {
  it('gives plain onnxruntime outputs over HTTP, refuses replays, and closes with a proof that verifies off chain', async () => {
    const model = tinyLinearModel({ inFeatures: 4, outFeatures: 3, seed: 9 });
    const plain = await loadOnnxModel(model.bytes);
    const session = await openInferenceSession({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      policy: net.policy,
      roots: net.roots,
      model: { bytes: model.bytes },
      escrow: 10n ** 16n,
      // The POST route (the fallback), so the test can tap the requests; streams: tests/attacks/session-stream.test.ts.
      transport: 'http',
    });
    expect(session.inputNames).toEqual(['x']);
    let units = 0n;
    for (const rows of [1, 3, 64]) {
      const x = {
        x: {
          type: 'float32' as const,
          dims: [rows, 4],
          data: Float32Array.from({ length: rows * 4 }, (_v, i) => Math.sin(i * 0.7 + rows)),
        },
      };
      const out = await session.infer(x);
      const ref = await plain.run(x);
      expect(out.y!.dims).toEqual([rows, 3]);
      const a = out.y!.data as Float32Array;
      const b = ref.y!.data as Float32Array;
      expect(a.length).toBe(b.length);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-5);
      units += BigInt(rows * 4);
    }
    // Anyone on the path (the host included) replaying a captured request is refused by the enclave.
    const captured: Uint8Array[] = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (String(url).endsWith('/requests') && init?.body instanceof Uint8Array) captured.push(init.body);
      return realFetch(url, init);
    }) as typeof fetch;
    try {
      await session.infer({ x: { type: 'float32', dims: [1, 4], data: new Float32Array(4) } });
    } finally {
      globalThis.fetch = realFetch;
    }
    units += 4n;
    expect(captured).toHaveLength(1);
    const api = new NodeApi(session.node.endpoint);
    await expect(
      api.sessionRequest(session.sessionId, captured[0]!, undefined, session.accessToken),
    ).rejects.toMatchObject({
      code: 'E_CHANNEL_SEQUENCE',
    });
    const altered = Uint8Array.from(captured[0]!);
    altered[8] = 9; // sequence number 9: a message from the future
    await expect(
      api.sessionRequest(session.sessionId, altered, undefined, session.accessToken),
    ).rejects.toMatchObject({
      code: 'E_CHANNEL_SEQUENCE',
    });
    const closed = await session.close();
    expect(closed.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(closed.requests).toBe(4);
    expect(parseWorkProofJson(closed.proof).proof.workUnits).toBe(units);
    const clients = createFirnClients(net.anvil.rpcUrl, net.requester.privateKey, net.deployment);
    expect((await getJob(clients, session.jobId)).status).toBe(JobStatus.Proved);
    await expect(
      api.sessionRequest(session.sessionId, new Uint8Array(40), undefined, session.accessToken),
    ).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
    await plain.release();
  }, 120_000);

  it('the open answer carries the model tensor names only sealed to the requester', async () => {
    const names = { input: `in_c4n4ry_${Date.now()}`, output: `out_c4n4ry_${Date.now()}` };
    const model = encodeOnnxModel({
      name: 'named',
      nodes: [{ opType: 'Mul', inputs: [names.input, 'k'], outputs: [names.output] }],
      initializers: [{ name: 'k', dims: [1], dtype: 'float', data: Float32Array.of(2) }],
      inputs: [{ name: names.input, elemType: 'float', shape: ['N'] }],
      outputs: [{ name: names.output, elemType: 'float', shape: ['N'] }],
    });
    const realFetch = globalThis.fetch;
    const answers: string[] = [];
    globalThis.fetch = (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
      const res = await realFetch(input, init);
      if (String(input).endsWith('/v1/sessions')) answers.push(await res.clone().text());
      return res;
    }) as typeof fetch;
    try {
      const session = await openInferenceSession({
        rpcUrl: net.anvil.rpcUrl,
        deployment: net.deployment,
        requesterKey: net.requester.privateKey,
        policy: net.policy,
        roots: net.roots,
        model: { bytes: model },
        escrow: 10n ** 16n,
      });
      expect(session.inputNames).toEqual([names.input]);
      expect(session.outputNames).toEqual([names.output]);
      // No request was sent: nothing to prove or pay for, the escrow comes back.
      await expect(session.close()).rejects.toMatchObject({ code: 'E_SESSION_EMPTY', reclaimed: true });
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(answers).toHaveLength(1);
    expect(answers[0]).toContain('"response"');
    expect(answers[0]).not.toContain('c4n4ry');
    expect(net.logs.join('\n')).not.toContain('c4n4ry');
  });
});
