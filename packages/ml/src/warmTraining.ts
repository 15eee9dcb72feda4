import { parseCsv, sniffDelimiter } from './csv.ts';
import { mlpDefinition } from './modelDefinition.ts';
import { exportOnnx } from './onnxExport.ts';
import { loadOrt } from './inference.ts';
import { createPrng } from './prng.ts';
import { initTfBackend, type TfBackendName } from './tfBackend.ts';
import { trainModel } from './train.ts';

/**
 * Rows, features, epochs and batch size of `warmTraining`'s synthetic job, and its short passes:
 * `passes` more runs of a job's steps outside the training loop (`passRows` rows, one epoch).
 */
// About 46k samples (48 epochs of 960): a fresh process's JIT then trains as fast as a long-warmed one.
// With 8 epochs ~56 JavaScript functions were still optimized during a banknote job, with 16 ~46, as
// many as a process's 3rd-4th run of the job in-process (decision 1440); with 16 the job's loop still
// ran 2.5-4% slower than in a process that had trained the job 5-8 times, with 48 it does not
// (decision 1771). It costs the spare ~2 s more CPU once, after a training job, off any job's path.
// The steps a job runs once (parse, split, model build, evaluation, export) stay in V8's baseline
// tiers after one run: 3 more short passes brought them from 31-36 ms to 12-18 ms of CPU per job.
export const WARM_TRAINING = {
  rows: 1280,
  features: 4,
  hidden: [64, 32],
  epochs: 48,
  batchSize: 32,
  passes: 4,
  passRows: 256,
} as const;

/**
 * A synthetic CSV shaped like a typical numeric dataset (signed decimals of varying precision, a
 * 0/1 label last, no header), from `createPrng(seed)`: no input of any job.
 */
function syntheticCsv(rows: number, features: number, seed: number, header: boolean): Uint8Array {
  const rng = createPrng(seed);
  const lines = header ? [`${Array.from({ length: features }, (_, c) => `f${c}`).join(',')},label`] : [];
  for (let r = 0; r < rows; r++) {
    const x = Array.from({ length: features }, () => (rng.next() * 2 - 1) * 10);
    const cells = x.map((v, c) => v.toFixed(2 + ((r + c) % 4)));
    lines.push(`${cells.join(',')},${x.reduce((a, b) => a + b, 0) > 0 ? 1 : 0}`);
  }
  return new TextEncoder().encode(`${lines.join('\n')}\n`);
}

/** What `loadMlEngines` loaded. */
export interface LoadedMlEngines {
  /** The TensorFlow.js backend selected (its WebAssembly compiled and instantiated). */
  tfBackend: TfBackendName;
  /** onnxruntime-node's native binding and shared library are mapped into this process. */
  onnxRuntime: true;
}

/**
 * Load every runtime file an ML job can load, before any job is known: TensorFlow.js's wasm
 * backend (its WebAssembly binary, from the directory `setTfWasmDir` names) and onnxruntime's
 * native binding with its shared library. After this call the process reads no further code
 * from disk, so a check of those files made afterwards covers everything a later job runs (the
 * ML runtime's spare child, docs/decisions/1330-spare-child-checked-after-load.md). Raises what
 * the engines raise when they cannot load (a missing or corrupt file).
 */
export async function loadMlEngines(): Promise<LoadedMlEngines> {
  const tfBackend = await initTfBackend('wasm');
  // The binding loads libonnxruntime when its module is evaluated (see inference.ts, which also
  // turns onnxruntime's telemetry off first).
  await loadOrt();
  return { tfBackend, onnxRuntime: true };
}

/**
 * Start the training engine ahead of a job, in a process that has not trained yet (the ML
 * runtime's spare child, docs/decisions/1280-spare-ml-child.md): select the backend (loading its
 * WebAssembly), then run a training job's steps on synthetic data (`WARM_TRAINING`): parse a
 * generated CSV, train a seeded 4-64-32-2 MLP with a 25% validation split, export it to ONNX; then
 * `passes` short runs (one epoch) of the same steps, so the ones a job runs only once (parse,
 * split, model build, evaluation, export) are tiered up too (docs/decisions/1390). The
 * engine's JavaScript is then compiled and its kernels set up before any job's data arrives. It
 * reads no input and no key, and changes no later result: training depends only on its own
 * inputs and seed (the same weights with or without this call; see warmTraining.test.ts).
 * `opts.signal` stops it early: before it starts, at its next epoch boundary or between passes
 * (one macrotask is yielded between epochs and passes so the message that aborts it can arrive); a
 * job that arrives while the spare warms then waits for one epoch at most. Returns the backend selected. Raises only on an
 * engine failure (E_JOB_FAILED).
 */
export async function warmTraining(
  backend: TfBackendName = 'wasm',
  opts: { signal?: AbortSignal } = {},
): Promise<TfBackendName> {
  const { rows, features, hidden, epochs, batchSize } = WARM_TRAINING;
  const signal = opts.signal;
  if (signal !== undefined) {
    // A job that is already waiting is answered before any warm-up work starts.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal.aborted) return initTfBackend(backend);
  }
  const data = parseCsv(syntheticCsv(rows, features, 7, true), { task: 'classification' });
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
    ...(signal === undefined ? {} : { signal }),
  });
  if (signal?.aborted) return r.metrics.backend;
  exportOnnx(r);
  // A job's steps outside the loop, a few more times each, as a job's CSV would drive them.
  for (let i = 0; i < WARM_TRAINING.passes; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal?.aborted) break;
    const bytes = syntheticCsv(WARM_TRAINING.passRows, features, 8 + i, false);
    const d = parseCsv(bytes, { task: 'classification', header: 'auto', delimiter: sniffDelimiter(bytes) });
    const def = mlpDefinition({ inputSize: d.cols, hidden: [...hidden], task: 'classification', classes: 2 });
    const p = await trainModel({
      definition: def,
      data: d,
      task: 'classification',
      epochs: 1,
      batchSize,
      seed: 1 + i,
      validationSplit: 0.2,
      backend,
    });
    exportOnnx(p);
  }
  return r.metrics.backend;
}
