import { parseCsv } from './csv.ts';
import { mlpDefinition } from './modelDefinition.ts';
import { exportOnnx } from './onnxExport.ts';
import { createPrng } from './prng.ts';
import type { TfBackendName } from './tfBackend.ts';
import { trainModel } from './train.ts';

/** Rows, features, epochs and batch size of `warmTraining`'s synthetic job. */
// About 10k samples: a fresh process's JIT then trains close to a long-warmed one (a third of that did not).
export const WARM_TRAINING = { rows: 1280, features: 4, hidden: [64, 32], epochs: 8, batchSize: 32 } as const;

/**
 * Start the training engine ahead of a job, in a process that has not trained yet (the ML
 * runtime's spare child, docs/decisions/1280-spare-ml-child.md): select the backend (loading its
 * WebAssembly), then run a training job's steps once on synthetic data (`WARM_TRAINING`): parse a
 * generated CSV, train a seeded 4-64-32-2 MLP with a 25% validation split, export it to ONNX. The
 * engine's JavaScript is then compiled and its kernels set up before any job's data arrives. It
 * reads no input and no key, and changes no later result: training depends only on its own
 * inputs and seed (the same weights with or without this call; see warmTraining.test.ts).
 * Returns the backend selected. Raises only on an engine failure (E_JOB_FAILED).
 */
export async function warmTraining(backend: TfBackendName = 'wasm'): Promise<TfBackendName> {
  const { rows, features, hidden, epochs, batchSize } = WARM_TRAINING;
  const rng = createPrng(7);
  const lines = [`${Array.from({ length: features }, (_, c) => `f${c}`).join(',')},label`];
  for (let r = 0; r < rows; r++) {
    const x = Array.from({ length: features }, () => rng.next() * 2 - 1);
    lines.push(`${x.map((v) => v.toFixed(5)).join(',')},${x.reduce((a, b) => a + b, 0) > 0 ? 1 : 0}`);
  }
  const data = parseCsv(new TextEncoder().encode(`${lines.join('\n')}\n`), { task: 'classification' });
  const definition = mlpDefinition({
    inputSize: data.cols,
    hidden: [...hidden],
    task: 'classification',
    classes: 2,
  });
  const r = await trainModel({
    definition,
    data,
    task: 'classification',
    epochs,
    batchSize,
    seed: 1,
    validationSplit: 0.25,
    backend,
  });
  exportOnnx(r);
  return r.metrics.backend;
}
