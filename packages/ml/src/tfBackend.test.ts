import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { mlpDefinition } from './modelDefinition.ts';
import { initTfBackend, setTfWasmDir } from './tfBackend.ts';
import { trainModel } from './train.ts';

// Decision 1597: the training backend is the job's, never a fallback. A host that keeps the wasm
// backend from starting (no memory for its instance, a missing binary) must get a node error, not
// a training on cpu whose floating-point results, and whether it diverges, differ. Its own file:
// TF.js's backend is process state, and this worker must never have started wasm.
describe('initTfBackend pins the backend', () => {
  it('fails with E_UNAVAILABLE when wasm cannot start, and never trains on cpu instead', async () => {
    // An empty directory in place of the image's wasm binaries: wasm cannot instantiate.
    setTfWasmDir(mkdtempSync(join(tmpdir(), 'firn-nowasm-')));
    await expect(initTfBackend('wasm')).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: /wasm backend could not start on this node/,
    });
    // TF.js still names 'wasm' after the failed start, but no wasm backend exists to run on.
    expect(tf.findBackend('wasm')).toBeNull();
    const x = Float32Array.from({ length: 40 }, (_, i) => (i % 7) - 3);
    const y = Float32Array.from({ length: 20 }, (_, i) => i % 2);
    const job = {
      definition: mlpDefinition({ inputSize: 2, hidden: [4], task: 'classification', classes: 2 }),
      data: { x, y, rows: 20, cols: 2 },
      task: 'classification' as const,
      epochs: 1,
      batchSize: 4,
      seed: 1,
      validationSplit: 0,
    };
    // Before this decision the same call trained on cpu and reported `backend: 'cpu'`.
    await expect(trainModel(job)).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    // cpu is still what a job asks for explicitly (conv models), and then it is what runs.
    expect(await initTfBackend('cpu')).toBe('cpu');
    const r = await trainModel({ ...job, backend: 'cpu' });
    expect(r.metrics.backend).toBe('cpu');
    // ...and asking for wasm afterwards still refuses, rather than keeping cpu.
    await expect(initTfBackend('wasm')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
  });
});
