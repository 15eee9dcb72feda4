import { readFileSync } from 'node:fs';
import { sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { parseCsv } from './csv.ts';
import { loadOnnxModel } from './inference.ts';
import {
  type ModelDefinition,
  mlpDefinition,
  MODEL_FORMAT,
  validateModelDefinition,
} from './modelDefinition.ts';
import { exportOnnx } from './onnxExport.ts';
import { predictWithTf } from './predict.ts';
import { createPrng } from './prng.ts';
import { readSafetensors } from './safetensors.ts';
import { trainModel } from './train.ts';
import { initialWeights, weightsToSafetensors } from './weights.ts';

// Training on the wasm backend, seeded determinism, and ONNX export checked through onnxruntime.
// Not covered: training on more than a few thousand rows, conv models through ONNX (refused), GPU.
const banknote = parseCsv(readFileSync(sharedPath('datasets', 'banknote_authentication.csv')), {
  task: 'classification',
});

function argmaxAccuracy(p: Float32Array, cols: number, y: Float32Array): number {
  let hits = 0;
  for (let r = 0; r < y.length; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (p[r * cols + c]! > p[r * cols + best]!) best = c;
    if (best === y[r]) hits++;
  }
  return hits / y.length;
}

// Rebuild the validation rows exactly as trainModel split them (same seed, same fork order).
async function validationRows(seed: number, fraction: number) {
  const { splitDataset } = await import('./dataset.ts');
  const rng = createPrng(seed);
  rng.fork(); // initial weights
  return splitDataset(banknote, fraction, rng.fork()).val;
}

describe('trainModel', () => {
  it('reaches >= 98% held-out accuracy on banknote, and the ONNX export agrees with tfjs', async () => {
    const epochs: number[] = [];
    const r = await trainModel({
      definition: mlpDefinition({
        inputSize: 4,
        hidden: [16, 8],
        task: 'classification',
        classes: 2,
        batchNorm: true,
        dropout: 0.1,
      }),
      data: banknote,
      task: 'classification',
      epochs: 15,
      batchSize: 32,
      seed: 42,
      validationSplit: 0.25,
      onEpoch: (e) => epochs.push(e.epoch),
    });
    expect(epochs).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(r.metrics.backend).toBe('wasm');
    expect(r.metrics.valAccuracy).toBeGreaterThanOrEqual(0.98);
    expect(r.metrics.valRows).toBe(343);
    expect(r.workUnits).toBe(r.metrics.trainRows * 15);
    expect(r.preprocessing.labels).toEqual(['0', '1']);
    expect(r.metrics.history[14]!.loss).toBeLessThan(r.metrics.history[0]!.loss);

    const val = await validationRows(42, 0.25);
    const tfPred = await predictWithTf(r, val.x, val.rows);
    expect(argmaxAccuracy(tfPred.data, 2, val.y)).toBeCloseTo(r.metrics.valAccuracy!, 10);

    const onnx = await loadOnnxModel(exportOnnx(r));
    expect(onnx.inputNames).toEqual(['input']);
    expect(onnx.outputNames).toEqual(['output']);
    const out = (await onnx.run({ input: { type: 'float32', dims: [val.rows, 4], data: val.x } }))['output']!;
    expect(out.dims).toEqual([val.rows, 2]);
    const probs = out.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < probs.length; i++) maxDiff = Math.max(maxDiff, Math.abs(probs[i]! - tfPred.data[i]!));
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    expect(argmaxAccuracy(probs, 2, val.y)).toBeCloseTo(r.metrics.valAccuracy!, 10);
    // Rows are probability distributions.
    for (let row = 0; row < val.rows; row++) expect(probs[2 * row]! + probs[2 * row + 1]!).toBeCloseTo(1, 5);
    await onnx.release();
  });

  it('gives bit-identical weights for the same seed and different weights for another seed', async () => {
    const definition = mlpDefinition({
      inputSize: 4,
      hidden: [8],
      task: 'classification',
      classes: 2,
      batchNorm: true,
      dropout: 0.3,
    });
    const run = (seed: number) =>
      trainModel({
        definition,
        data: banknote,
        task: 'classification',
        epochs: 2,
        batchSize: 64,
        seed,
        validationSplit: 0.2,
      });
    const a = await run(7);
    const b = await run(7);
    const c = await run(8);
    expect(Buffer.from(a.weights).equals(Buffer.from(b.weights))).toBe(true);
    expect(a.metrics.history).toEqual(b.metrics.history);
    expect(Buffer.from(a.weights).equals(Buffer.from(c.weights))).toBe(false);
  });

  it('trains a binary sigmoid head with gelu and given initial weights, and exports it', async () => {
    const definition: ModelDefinition = {
      format: MODEL_FORMAT,
      inputShape: [4],
      layers: [
        { type: 'dense', units: 8, activation: 'gelu' },
        { type: 'dense', units: 1, activation: 'sigmoid' },
      ],
      loss: 'binaryCrossentropy',
      optimizer: { type: 'sgd', learningRate: 0.1 },
    };
    const { shapes } = validateModelDefinition(definition);
    const init = weightsToSafetensors(initialWeights(shapes, createPrng(3)), shapes);
    const r = await trainModel({
      definition,
      initialWeights: init,
      data: banknote,
      task: 'classification',
      epochs: 3,
      batchSize: 32,
      seed: 1,
      validationSplit: 0.2,
    });
    expect(r.metrics.valAccuracy).toBeGreaterThan(0.9);
    const val = await validationRows(1, 0.2);
    const tfPred = await predictWithTf(r, val.x, val.rows);
    const onnx = await loadOnnxModel(exportOnnx(r));
    const out = (await onnx.run({ input: { type: 'float32', dims: [val.rows, 4], data: val.x } }))['output']!;
    expect(out.dims).toEqual([val.rows, 2]);
    let maxDiff = 0;
    for (let i = 0; i < tfPred.data.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs((out.data as Float32Array)[i]! - tfPred.data[i]!));
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
  });

  it('trains a regression MLP on red wine quality with a falling loss', async () => {
    const wine = parseCsv(readFileSync(sharedPath('datasets', 'winequality-red.csv')), {
      task: 'regression',
    });
    const r = await trainModel({
      definition: mlpDefinition({ inputSize: 11, hidden: [16], task: 'regression' }),
      data: wine,
      task: 'regression',
      epochs: 20,
      batchSize: 32,
      seed: 5,
      validationSplit: 0.2,
    });
    expect(r.metrics.trainAccuracy).toBeUndefined();
    // Predicting the mean gives MSE ~0.65 on this target; a fitted model does clearly better.
    expect(r.metrics.valLoss!).toBeLessThan(0.6);
    const onnx = await loadOnnxModel(exportOnnx(r));
    const out = (await onnx.run({ input: { type: 'float32', dims: [2, 11], data: wine.x.subarray(0, 22) } }))[
      'output'
    ]!;
    const tfPred = await predictWithTf(r, wine.x.subarray(0, 22), 2);
    expect(Math.abs((out.data as Float32Array)[0]! - tfPred.data[0]!)).toBeLessThanOrEqual(1e-5);
  });

  // Decision 1597: divergence under the job's own backend is a function of its data, definition,
  // params and seed, so it is typed (E_DATA_INVALID, which the enclave signs, 1595), not E_JOB_FAILED.
  it('types divergence E_DATA_INVALID, at the same epoch on every run, on the wasm backend', async () => {
    const rng = createPrng(3);
    const rows = 64;
    const x = Float32Array.from({ length: rows * 2 }, () => rng.next() * 2 - 1);
    const y = Float32Array.from({ length: rows }, (_, r) => x[2 * r]! + x[2 * r + 1]!);
    const definition = {
      ...mlpDefinition({ inputSize: 2, hidden: [8], task: 'regression' }),
      optimizer: { type: 'sgd' as const, learningRate: 1 },
    };
    const run = async () => {
      const epochs: number[] = [];
      const err = await trainModel({
        definition,
        data: { x, y, rows, cols: 2 },
        task: 'regression',
        epochs: 30,
        batchSize: 8,
        seed: 1,
        validationSplit: 0,
        onEpoch: (e) => epochs.push(e.epoch),
      }).catch((e: unknown) => e);
      return { err: err as { code?: string; message?: string; details?: unknown }, epochs };
    };
    const a = await run();
    const b = await run();
    expect(a.err).toMatchObject({
      code: 'E_DATA_INVALID',
      message: /training diverged at epoch 2 \(loss is not finite\)/,
      details: { epoch: 2, reason: 'diverged' },
    });
    expect(a.epochs).toEqual([1]);
    expect(b).toEqual(a);
    // The same data at a learning rate that does not diverge trains on wasm.
    const ok = await trainModel({
      definition: { ...definition, optimizer: { type: 'sgd', learningRate: 0.05 } },
      data: { x, y, rows, cols: 2 },
      task: 'regression',
      epochs: 3,
      batchSize: 8,
      seed: 1,
      validationSplit: 0,
    });
    expect(ok.metrics.backend).toBe('wasm');
  });

  it('trains a small conv1d model, and export refuses it with E_UNSUPPORTED', async () => {
    const definition = {
      format: MODEL_FORMAT,
      inputShape: [4, 1],
      layers: [
        { type: 'conv1d', filters: 4, kernelSize: 2, activation: 'relu' },
        { type: 'maxPooling1d', poolSize: 2 },
        { type: 'flatten' },
        { type: 'dense', units: 2, activation: 'softmax' },
      ],
      loss: 'sparseCategoricalCrossentropy',
      optimizer: { type: 'adam', learningRate: 0.01 },
    };
    const r = await trainModel({
      definition,
      data: banknote,
      task: 'classification',
      epochs: 1,
      batchSize: 64,
      seed: 1,
      validationSplit: 0.2,
    });
    expect(r.metrics.backend).toBe('cpu');
    expect(readSafetensors(r.weights).tensors['layers.0.kernel']?.shape).toEqual([2, 1, 4]);
    expect(() => exportOnnx(r)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED' }));
  });

  it('refuses bad input before training starts', async () => {
    const definition = mlpDefinition({ inputSize: 4, hidden: [4], task: 'classification', classes: 2 });
    const base = {
      definition,
      data: banknote,
      task: 'classification' as const,
      epochs: 1,
      batchSize: 32,
      seed: 1,
      validationSplit: 0.2,
    };
    await expect(trainModel({ ...base, epochs: 0 })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
    await expect(trainModel({ ...base, validationSplit: 1 })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
    });
    await expect(trainModel({ ...base, task: 'regression' })).rejects.toMatchObject({
      code: 'E_MODEL_INVALID',
    });
    await expect(
      trainModel({ ...base, definition: { ...definition, inputShape: [5] } }),
    ).rejects.toMatchObject({ code: 'E_DATA_INVALID' });
    await expect(trainModel({ ...base, definition: { ...definition, layers: [] } })).rejects.toMatchObject({
      code: 'E_MODEL_INVALID',
      message: /\$\.layers/,
    });
    const threeClasses = { ...banknote, y: banknote.y.map((v, i) => (i === 0 ? 2 : v)) };
    await expect(trainModel({ ...base, data: threeClasses })).rejects.toMatchObject({
      code: 'E_DATA_INVALID',
    });
    const nan = { ...banknote, x: banknote.x.map((v, i) => (i === 9 ? Number.NaN : v)) };
    await expect(trainModel({ ...base, data: nan })).rejects.toMatchObject({
      code: 'E_DATA_INVALID',
      message: /row 2 column 1/,
    });
    const { shapes } = validateModelDefinition(definition);
    const w = initialWeights(shapes, createPrng(1));
    w['layers.0.kernel'] = new Float32Array(5 * 4);
    const wrong = weightsToSafetensors(w, {
      ...shapes,
      weights: shapes.weights.map((s) => (s.name === 'layers.0.kernel' ? { ...s, shape: [5, 4] } : s)),
    });
    await expect(trainModel({ ...base, initialWeights: wrong })).rejects.toMatchObject({
      code: 'E_MODEL_INVALID',
      message: /layers\.0\.kernel/,
    });
    await expect(trainModel({ ...base, initialWeights: new Uint8Array(3) })).rejects.toMatchObject({
      code: 'E_MODEL_INVALID',
    });
  });
});

describe('trainModel early stopping', () => {
  // Labels drawn at random: nothing to learn, so the validation loss stops improving early and
  // patience must end the run long before the epoch budget.
  const rows = 200;
  const rng = createPrng(7);
  const x = new Float32Array(rows * 3);
  const y = new Float32Array(rows);
  for (let i = 0; i < x.length; i++) x[i] = rng.next() * 2 - 1;
  for (let i = 0; i < rows; i++) y[i] = rng.next() < 0.5 ? 0 : 1;
  const noise = { x, y, rows, cols: 3 };
  const def = mlpDefinition({ inputSize: 3, hidden: [64], task: 'classification', classes: 2 });

  it('stops after `patience` epochs without a validation-loss improvement and bills only those epochs', async () => {
    const seen: number[] = [];
    const r = await trainModel({
      definition: def,
      data: noise,
      task: 'classification',
      epochs: 400,
      batchSize: 16,
      learningRate: 0.05,
      seed: 3,
      validationSplit: 0.3,
      patience: 3,
      onEpoch: (e) => seen.push(e.epoch),
    });
    const es = r.metrics.earlyStopping!;
    expect(es.stopped).toBe(true);
    expect(r.metrics.epochs).toBeLessThan(400);
    expect(r.metrics.epochs).toBe(seen.length);
    expect(r.metrics.epochs - es.bestEpoch).toBe(3);
    // Work units are what ran, not what was asked.
    expect(r.workUnits).toBe(r.metrics.trainRows * r.metrics.epochs);
    const best = Math.min(...r.metrics.history.map((h) => h.valLoss!));
    expect(es.bestValLoss).toBe(best);
  });

  it('refuses patience without a validation split, and a non-integer patience', async () => {
    const base = {
      definition: def,
      data: noise,
      task: 'classification' as const,
      epochs: 5,
      batchSize: 16,
      seed: 1,
    };
    await expect(trainModel({ ...base, validationSplit: 0, patience: 2 })).rejects.toThrow(
      /validation split/,
    );
    await expect(trainModel({ ...base, validationSplit: 0.2, patience: 1.5 })).rejects.toThrow(/patience/);
  });
});
