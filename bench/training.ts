import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { sharedPath } from '@firn/core';
import { mlpDefinition, parseCsv, trainModel } from '@firn/ml';

export interface TrainingBenchResult {
  dataset: string;
  model: string;
  epochs: number;
  batchSize: number;
  trainRows: number;
  wasm: { backend: string; samplesPerSecond: number; valAccuracy: number | undefined };
  cpu: { backend: string; samplesPerSecond: number; valAccuracy: number | undefined };
  /** wasm samples/s divided by cpu samples/s. */
  ratio: number;
}

/**
 * Training throughput of the plain engine on banknote_authentication.csv: the same MLP, data, seed
 * and hyperparameters on tfjs's wasm backend and its pure-JS cpu backend.
 */
export async function run(
  opts: { epochs?: number; hidden?: number[]; batchSize?: number } = {},
): Promise<TrainingBenchResult> {
  const data = parseCsv(readFileSync(sharedPath('datasets', 'banknote_authentication.csv')), {
    task: 'classification',
  });
  const hidden = opts.hidden ?? [128, 64];
  const epochs = opts.epochs ?? 10;
  const batchSize = opts.batchSize ?? 32;
  const definition = mlpDefinition({ inputSize: data.cols, hidden, task: 'classification', classes: 2 });
  const one = async (backend: 'wasm' | 'cpu') => {
    const r = await trainModel({
      definition,
      data,
      task: 'classification',
      epochs,
      batchSize,
      seed: 1,
      validationSplit: 0.2,
      backend,
    });
    return {
      r,
      out: {
        backend: r.metrics.backend,
        samplesPerSecond: r.metrics.samplesPerSecond,
        valAccuracy: r.metrics.valAccuracy,
      },
    };
  };
  // One short warm-up per backend so module and kernel set-up is not timed.
  await trainModel({
    definition,
    data,
    task: 'classification',
    epochs: 1,
    batchSize,
    seed: 1,
    validationSplit: 0.2,
    backend: 'wasm',
  });
  const wasm = await one('wasm');
  await trainModel({
    definition,
    data,
    task: 'classification',
    epochs: 1,
    batchSize,
    seed: 1,
    validationSplit: 0.2,
    backend: 'cpu',
  });
  const cpu = await one('cpu');
  return {
    dataset: 'banknote_authentication.csv',
    model: `mlp 4-${hidden.join('-')}-2`,
    epochs,
    batchSize,
    trainRows: wasm.r.metrics.trainRows,
    wasm: wasm.out,
    cpu: cpu.out,
    ratio: wasm.out.samplesPerSecond / cpu.out.samplesPerSecond,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run();
  console.log(
    `training ${r.model} on ${r.dataset}: ${r.trainRows} rows x ${r.epochs} epochs, batch ${r.batchSize}`,
  );
  console.log(
    `  wasm backend (${r.wasm.backend}): ${r.wasm.samplesPerSecond.toFixed(0)} samples/s, val accuracy ${r.wasm.valAccuracy}`,
  );
  console.log(
    `  cpu backend  (${r.cpu.backend}): ${r.cpu.samplesPerSecond.toFixed(0)} samples/s, val accuracy ${r.cpu.valAccuracy}`,
  );
  console.log(`  wasm / cpu: ${r.ratio.toFixed(2)}x`);
}
