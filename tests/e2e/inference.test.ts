import {
  createFirnClients,
  finalizeJob,
  getJob,
  getWithdrawable,
  getWorkProofDigest,
  JobStatus,
} from '@firn/chain';
import { runJob } from '@firn/client';
import { parseWorkProofJson, workProofDigest } from '@firn/core';
import { loadOnnxModel, parseTensorMap } from '@firn/ml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { increaseTime, startTestNetwork, type TestNetwork } from './network.ts';

// The happy path through the market on a real anvil, a real enclave process and two verifiers.
// Not covered here: failures (faults.test.ts) and secrecy (canary.test.ts).
let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

describe('confidential inference end to end', () => {
  it('gives the outputs plain onnxruntime gives, with a proof that verifies on and off chain, and pays the operator', async () => {
    const model = tinyLinearModel({ inFeatures: 4, outFeatures: 3, seed: 5 });
    const input = {
      x: { dims: [3, 4], type: 'float32', data: Array.from({ length: 12 }, (_v, i) => Math.cos(i) * 2) },
    };
    const progress: Record<string, unknown>[] = [];
    const r = await runJob({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      policy: net.policy,
      roots: net.roots,
      kind: 'inference',
      inputs: [
        { role: 'model', bytes: model.bytes, contentType: 'application/onnx' },
        {
          role: 'input',
          bytes: new TextEncoder().encode(JSON.stringify(input)),
          contentType: 'application/json',
        },
      ],
      params: {},
      escrow: 10n ** 16n,
      onProgress: (e) => progress.push(e),
    });
    expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(progress.map((e) => e.stage)).toEqual(['started', 'model-ready', 'inference-done', 'finished']);

    const plain = await loadOnnxModel(model.bytes);
    const expected = await plain.run(parseTensorMap(JSON.stringify(input)));
    const got = JSON.parse(new TextDecoder().decode(r.outputs[0]!.bytes));
    expect(got.y.dims).toEqual([3, 3]);
    const want = Array.from(expected.y!.data as Float32Array);
    got.y.data.forEach((v: number, i: number) => {
      expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-5);
    });

    const clients = createFirnClients(net.anvil.rpcUrl, net.operator.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    const p = parseWorkProofJson(r.proof);
    // The contract's own EIP-712 digest equals the one the enclave signed.
    expect(await getWorkProofDigest(clients, p.proof)).toBe(workProofDigest(p.domain, p.proof));
    expect((await getJob(clients, r.jobId)).status).toBe(JobStatus.Proved);

    const before = await getWithdrawable(clients, 'jobMarket', net.operator.address);
    await increaseTime(net.anvil.rpcUrl, 61);
    await finalizeJob(clients, r.jobId);
    // Pull payment: escrow and the returned claim bond are credited to the operator.
    const after = await getWithdrawable(clients, 'jobMarket', net.operator.address);
    expect(after - before).toBe(10n ** 16n + 10n ** 16n);
    expect((await getJob(clients, r.jobId)).status).toBe(JobStatus.Paid);
  });
});
