import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Workload } from '@firn/app';
import { bytesToHex, type FirnError, sha256, utf8 } from '@firn/core';
import { mlpDefinition, setTfWasmDir } from '@firn/ml';
import { describe, expect, it } from 'vitest';
import { createAppProgram } from '../../test/appProgram.ts';
import { JOB_FAILURE_REASONS } from './jobFailure.ts';
import { training } from './workloads/training.ts';

// Decision 1597: a host that keeps TF.js's wasm backend from starting (no memory for its
// instance, its binary withheld) used to get a training on cpu instead, whose floating-point
// results, and so whether the requester's data diverges, differ from wasm's. Now the run fails
// with E_UNAVAILABLE, a node fault the enclave never signs. Its own file: the backend is process
// state, and this worker must never have started wasm.
const NOW = 1_750_000_000;
// The image's wasm directory, as the host could leave it: empty.
setTfWasmDir(mkdtempSync(join(tmpdir(), 'firn-nowasm-')));

let csv = 'x0,x1,y\n';
for (let r = 0; r < 32; r++) csv += `${(r % 7) - 3},${(r % 5) - 2},${r % 3}\n`;
const inputs = [
  { role: 'dataset', contentType: 'text/csv', bytes: utf8(csv) },
  {
    role: 'model',
    contentType: 'application/json',
    bytes: utf8(JSON.stringify(mlpDefinition({ inputSize: 2, hidden: [4], task: 'regression' }))),
  },
].map((i) => ({ ...i, artifactId: bytesToHex(sha256(i.bytes)) }));
// What the training workload itself threw, before the runtime maps it to an app code.
const thrown: unknown[] = [];
const workloads: Record<string, Workload> = {
  train: (ctx) =>
    training({
      ...ctx,
      inputs,
      params: { task: 'regression', target: 'y', epochs: 2, batchSize: 8, seed: 1, validationSplit: 0 },
    }).catch((e: unknown) => {
      thrown.push(e);
      throw e;
    }),
};
const events: { event: string; data: unknown }[] = [];
const app = await createAppProgram({
  workloads,
  now: NOW,
  limits: { maxWorkloadMs: 30_000, maxOutputBytes: 1 << 20, maxTotalOutputBytes: 4 << 20 },
  prefix: 'firn-jobfailure-backend-',
  emit: (event, data) => events.push({ event, data }),
});

describe('a training backend that cannot start (1597)', () => {
  it('fails the job (the engine: E_UNAVAILABLE; the host sees E_JOB_FAILED), unsigned, and never trains on cpu in its place', async () => {
    expect(Object.hasOwn(JOB_FAILURE_REASONS, 'E_UNAVAILABLE')).toBe(false);
    const err = (await app.run('train').catch((e: unknown) => e)) as FirnError;
    // Before 1597 this job ran on cpu and returned a Work Proof.
    expect(thrown).toHaveLength(1);
    expect(thrown[0]).toMatchObject({ code: 'E_UNAVAILABLE', message: /wasm backend could not start/ });
    // E_UNAVAILABLE is not an app code (packages/app/src/errors.ts): the runtime reports it as
    // E_JOB_FAILED, the message sealed to the requester. Either way, outside the signed table.
    expect(err.code).toBe('E_JOB_FAILED');
    expect(events.filter((e) => e.event === 'jobFailure')).toHaveLength(0);
  });
});
