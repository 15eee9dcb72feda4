import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveMlRuntime } from '../../packages/enclave/src/runtime/mlRuntime.ts';

// A child whose runtime leaves a folder it cannot write in its scratch (a cache made read-only).
serveMlRuntime({
  async probe() {
    const s = tmpdir();
    mkdirSync(join(s, 'cache', 'sub'), { recursive: true });
    writeFileSync(join(s, 'cache', 'sub', 'f'), 'requester-derived');
    chmodSync(join(s, 'cache', 'sub'), 0o500);
    chmodSync(join(s, 'cache'), 0o500);
    return {
      outputs: [{ role: 'probe', contentType: 'text/plain', bytes: new TextEncoder().encode(s) }],
      workUnits: 1n,
    };
  },
} as never);
