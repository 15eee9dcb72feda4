import type { Workload } from '@firn/app';
import { bytesToHex, type FirnError, hexToBytes, sha256, utf8 } from '@firn/core';
import { recoverAddress } from '@firn/crypto';
import { encodeOnnxModel, mlpDefinition } from '@firn/ml';
import { describe, expect, it } from 'vitest';
import { APP_TEST_DOMAIN, createAppProgram } from '../../test/appProgram.ts';
import { JOB_FAILURE_REASONS, jobFailureDigestBytes, parseSignedJobFailure } from './jobFailure.ts';
import { inference } from './workloads/inference.ts';
import { training } from './workloads/training.ts';

// Decisions 1595 and 1597, the farm through the ML engines: a requester commits a model that
// onnxruntime refuses at run time on its input, or a dataset that diverges, to collect 1571's
// time-held share of the bond. Under 1595 alone both were E_JOB_FAILED and unsigned. Here the
// first-party inference and training workloads run the real engines (onnxruntime-node, TF.js
// wasm) in an enclave program: those failures are signed and recover the enclave address; an
// allocation failure (which a host can cause) is not. Each workload below is the first-party one,
// handed the requester's committed bytes and params as a job would hand them (the test program
// seals one `data` input per job; the bytes here stand in for the committed model and dataset).
const NOW = 1_750_000_000;
const withInputs =
  (w: Workload, inputs: { role: string; contentType: string; bytes: Uint8Array }[], params = {}): Workload =>
  (ctx) =>
    w({
      ...ctx,
      params,
      // Ids by content: the inference workload caches loaded models by artifact id.
      inputs: inputs.map((i) => ({ ...i, artifactId: bytesToHex(sha256(i.bytes)) })),
    });

const f32 = (dims: number[]) =>
  utf8(
    JSON.stringify({
      x: { type: 'float32', dims, data: new Array(dims.reduce((a, b) => a * b, 1)).fill(0) },
    }),
  );
// The requester's model: it loads, and its last node refuses the input it was given at run time.
const reshapeTo7x7 = encodeOnnxModel({
  name: 'late-reshape',
  nodes: [
    { opType: 'Relu', inputs: ['x'], outputs: ['h'] },
    { opType: 'Reshape', inputs: ['h', 's'], outputs: ['y'] },
  ],
  initializers: [{ name: 's', dims: [2], dtype: 'int64', data: BigInt64Array.from([7n, 7n]) }],
  inputs: [{ name: 'x', elemType: 'float', shape: ['N'] }],
  outputs: [{ name: 'y', elemType: 'float', shape: [7, 7] }],
});
// A model whose node asks the arena for 4 TiB: onnxruntime's allocation failure, which reads the
// same whether the model asked for too much or the host starved the enclave.
const expandTo2e40 = encodeOnnxModel({
  name: 'huge-expand',
  nodes: [{ opType: 'Expand', inputs: ['x', 's'], outputs: ['y'] }],
  initializers: [{ name: 's', dims: [1], dtype: 'int64', data: BigInt64Array.from([2n ** 40n]) }],
  inputs: [{ name: 'x', elemType: 'float', shape: [1] }],
  outputs: [{ name: 'y', elemType: 'float', shape: ['A'] }],
});
// The requester's dataset and model: SGD at learning rate 1 on y = x0 + x1 overflows in epoch 2.
const csv = (() => {
  let s = 'x0,x1,y\n';
  for (let r = 0; r < 64; r++) {
    const a = ((r * 37) % 64) / 32 - 1;
    const b = ((r * 11) % 64) / 32 - 1;
    s += `${a},${b},${a + b}\n`;
  }
  return utf8(s);
})();
const sgdModel = (learningRate: number) =>
  utf8(
    JSON.stringify({
      ...mlpDefinition({ inputSize: 2, hidden: [8], task: 'regression' }),
      optimizer: { type: 'sgd', learningRate },
    }),
  );
const trainParams = {
  task: 'regression',
  target: 'y',
  epochs: 30,
  batchSize: 8,
  seed: 1,
  validationSplit: 0,
};

const workloads: Record<string, Workload> = {
  'model-fails-on-input': withInputs(inference, [
    { role: 'model', contentType: 'application/onnx', bytes: reshapeTo7x7 },
    { role: 'input', contentType: 'application/json', bytes: f32([6]) },
  ]),
  'model-runs': withInputs(inference, [
    { role: 'model', contentType: 'application/onnx', bytes: reshapeTo7x7 },
    { role: 'input', contentType: 'application/json', bytes: f32([49]) },
  ]),
  'model-allocation-fails': withInputs(inference, [
    { role: 'model', contentType: 'application/onnx', bytes: expandTo2e40 },
    { role: 'input', contentType: 'application/json', bytes: f32([1]) },
  ]),
  'dataset-diverges': withInputs(
    training,
    [
      { role: 'dataset', contentType: 'text/csv', bytes: csv },
      { role: 'model', contentType: 'application/json', bytes: sgdModel(1) },
    ],
    trainParams,
  ),
  'dataset-trains': withInputs(
    training,
    [
      { role: 'dataset', contentType: 'text/csv', bytes: csv },
      { role: 'model', contentType: 'application/json', bytes: sgdModel(0.05) },
    ],
    { ...trainParams, epochs: 2 },
  ),
};

const events: { event: string; data: Record<string, unknown> }[] = [];
const app = await createAppProgram({
  workloads,
  now: NOW,
  limits: { maxWorkloadMs: 30_000, maxOutputBytes: 1 << 20, maxTotalOutputBytes: 4 << 20 },
  prefix: 'firn-jobfailure-engines-',
  emit: (event, data) => events.push({ event, data: data as Record<string, unknown> }),
});

async function runAndCollect(kind: string) {
  const before = events.filter((e) => e.event === 'jobFailure').length;
  const r = await app.run(kind).catch((e: unknown) => e as FirnError);
  return { r, signed: events.filter((e) => e.event === 'jobFailure').slice(before) };
}

function expectSignedByEnclave(data: Record<string, unknown>, reason: number): void {
  const s = parseSignedJobFailure(data);
  expect(s.failure.reasonCode).toBe(reason);
  expect(s.failure.enclaveId).toBe(app.identity.enclaveId.toLowerCase());
  const domain = { chainId: APP_TEST_DOMAIN.chainId, jobMarket: APP_TEST_DOMAIN.jobMarket };
  const signer = recoverAddress(jobFailureDigestBytes(domain, s.failure), hexToBytes(s.signature));
  expect(signer.toLowerCase()).toBe(app.identity.enclaveAddress.toLowerCase());
}

describe('engine failures of the committed work are signed; host-causable ones are not (1597)', () => {
  it('a model that onnxruntime refuses at run time on the committed input is signed (E_INPUT_INVALID)', async () => {
    const { r, signed } = await runAndCollect('model-fails-on-input');
    expect((r as FirnError).code).toBe('E_INPUT_INVALID');
    expect(signed).toHaveLength(1);
    expectSignedByEnclave(signed[0]!.data, JOB_FAILURE_REASONS.E_INPUT_INVALID!);
    // The same model on an input it accepts runs, and nothing is signed.
    const ok = await runAndCollect('model-runs');
    expect(ok.r).toMatchObject({ proof: expect.anything() });
    expect(ok.signed).toHaveLength(0);
  });

  it('a dataset that diverges under the pinned wasm backend is signed (E_DATA_INVALID)', async () => {
    const { r, signed } = await runAndCollect('dataset-diverges');
    expect((r as FirnError).code).toBe('E_DATA_INVALID');
    expect(signed).toHaveLength(1);
    expectSignedByEnclave(signed[0]!.data, JOB_FAILURE_REASONS.E_DATA_INVALID!);
    // The same data at a lower learning rate trains, on wasm.
    const ok = await runAndCollect('dataset-trains');
    expect(ok.r).toMatchObject({ proof: expect.anything() });
    expect(ok.signed).toHaveLength(0);
  });

  it('an onnxruntime allocation failure is never signed (E_JOB_FAILED): a host could cause it', async () => {
    const { r, signed } = await runAndCollect('model-allocation-fails');
    expect((r as FirnError).code).toBe('E_JOB_FAILED');
    expect(signed).toHaveLength(0);
  });
});
