import { readFileSync } from 'node:fs';
import { sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { parseCsv } from './csv.ts';
import { mlpDefinition } from './modelDefinition.ts';
import { trainModel } from './train.ts';
import { WARM_TRAINING, warmTraining } from './warmTraining.ts';

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
