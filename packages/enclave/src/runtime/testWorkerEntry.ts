/**
 * Test-only entry of an ML runtime child run from TypeScript sources (`node --import tsx`): the
 * image's workloads plus two probes. The image's own child is its worker entry
 * (runtime/workerMain.ts, `app/worker.mjs`), which serves the image's app only; this file is never bundled.
 */
import { writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FirnError } from '@firn/core';
import { WORKLOADS } from '../jobs/workloads/index.ts';
import { serveMlRuntime } from './mlRuntime.ts';

serveMlRuntime({
  ...WORKLOADS,
  // What the child can see of its parent: environment variables and argv.
  async probe(ctx) {
    // With params.write: a file left in the child's temp folder (what a runtime's cache would be).
    if (ctx.params.write === true) writeFileSync(join(tmpdir(), 'runtime-cache.bin'), 'requester-derived');
    const text = JSON.stringify({
      env: Object.keys(process.env),
      tmpdir: tmpdir(),
      home: homedir(),
      argv: process.argv.slice(2),
      pid: process.pid,
      // CPU this child used before the job (its start, engines and any warm-up), ms.
      cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    });
    return {
      outputs: [{ role: 'probe', contentType: 'application/json', bytes: new TextEncoder().encode(text) }],
      workUnits: 1n,
    };
  },
  // What a job left behind in its child's memory: `set` keeps params.value in a global, `get`
  // returns what is there (the spare-child tests check a later job never sees an earlier one's).
  async memory(ctx) {
    const g = globalThis as { firnProbeMemory?: unknown };
    if (ctx.params.mode === 'set') g.firnProbeMemory = ctx.params.value;
    const text = JSON.stringify({ pid: process.pid, seen: g.firnProbeMemory ?? null });
    return {
      outputs: [{ role: 'memory', contentType: 'application/json', bytes: new TextEncoder().encode(text) }],
      workUnits: 1n,
    };
  },
  // A native fault in a runtime, as an abort would look to the parent.
  async abort(ctx) {
    if (ctx.params.mode === 'exit') process.exit(3);
    if (ctx.params.mode === 'throw') throw new FirnError('E_DATA_INVALID', 'typed failure from the runtime');
    process.abort();
  },
});
