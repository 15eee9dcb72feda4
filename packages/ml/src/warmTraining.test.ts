import { readFileSync } from 'node:fs';
import { sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { parseCsv } from './csv.ts';
import { mlpDefinition } from './modelDefinition.ts';
import { trainModel } from './train.ts';
import { loadMlEngines, WARM_TRAINING, warmTraining } from './warmTraining.ts';

const csv = new Uint8Array(readFileSync(sharedPath('datasets', 'banknote_authentication.csv')));
const train = async () => {
  const data = parseCsv(csv, { task: 'classification' });
  const definition = mlpDefinition({ inputSize: data.cols, hidden: [8], task: 'classification', classes: 2 });
  return trainModel({
    definition,
    data,
    task: 'classification',
    epochs: 2,
    batchSize: 32,
    seed: 9,
    validationSplit: 0.2,
  });
};

describe('warmTraining', () => {
  it('runs a synthetic job on the wasm backend and leaves later results bit-identical', async () => {
    const before = await train();
    expect(await warmTraining()).toBe('wasm');
    const after = await train();
    // A warmed engine trains exactly as a cold one: the spare child's warm-up changes no result.
    expect(Buffer.from(after.weights).equals(Buffer.from(before.weights))).toBe(true);
    expect(after.metrics.history).toEqual(before.metrics.history);
    expect(WARM_TRAINING.rows).toBeGreaterThan(WARM_TRAINING.batchSize);
  }, 60_000);
});

describe('trainModel signal (the spare child warm-up cut short by a job)', () => {
  it('stops at the epoch boundary after the abort, with the same weights as a run of that many epochs', async () => {
    const data = parseCsv(csv, { task: 'classification' });
    const definition = mlpDefinition({
      inputSize: data.cols,
      hidden: [8],
      task: 'classification',
      classes: 2,
    });
    const base = {
      definition,
      data,
      task: 'classification' as const,
      batchSize: 32,
      seed: 9,
      validationSplit: 0.2,
    };
    const stop = new AbortController();
    // The abort comes as a message would: a macrotask while the second epoch runs.
    const cut = await trainModel({
      ...base,
      epochs: 50,
      signal: stop.signal,
      onEpoch: (e) => {
        if (e.epoch === 2) setImmediate(() => stop.abort());
      },
    });
    expect(cut.metrics.epochs).toBe(2);
    expect(cut.workUnits).toBe(cut.metrics.trainRows * 2);
    // Yielding between epochs changes nothing in the result.
    const two = await trainModel({ ...base, epochs: 2 });
    expect(Buffer.from(cut.weights).equals(Buffer.from(two.weights))).toBe(true);
  }, 60_000);

  it('warmTraining returns at once when aborted before it starts', async () => {
    const stop = new AbortController();
    stop.abort();
    const t0 = performance.now();
    expect(await warmTraining('wasm', { signal: stop.signal })).toBe('wasm');
    // The full warm-up trains ~10k samples; an aborted one trains none.
    expect(performance.now() - t0).toBeLessThan(1_000);
  }, 60_000);
});

describe('loadMlEngines', () => {
  it("maps onnxruntime's native binding and selects the wasm backend", async () => {
    expect(await loadMlEngines()).toEqual({ tfBackend: 'wasm', onnxRuntime: true });
    const maps = readFileSync('/proc/self/maps', 'utf8');
    expect(maps).toMatch(/onnxruntime_binding\.node/);
  }, 60_000);
});
