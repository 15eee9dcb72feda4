import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { childProcessRuntime } from '../../packages/enclave/src/runtime/mlRuntime.ts';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';

// The attack: nothing to do but watch the host's disk. onnxruntime-node 1.30 ships telemetry
// (1DS, "EVT-Linux-C") that starts when a process creates its first inference session: it reads
// and writes an SQLite store under the user's home (~/.cache/Microsoft/DeveloperTools/.onnxruntime/
// onnxruntime.db), a `/tmp/.ses` file and a `/tmp/mat-debug-<pid>.log`, and uploads over HTTPS
// when it finds a CA bundle. Its session events carry the model's graph name, producer and custom
// metadata (`modelMetaData`). The ML child that loads a requester's sealed model (a session's
// child, a job's) therefore writes that confidential model's metadata in clear to a host file (and
// would send it off the machine), where the host must learn only sizes and timing; it also reads
// host files after the spare child's image check (decision 1330).

const secret = `SECRET-META-${process.pid}-${Date.now()}`;
const pids: number[] = [];
const runtime = childProcessRuntime({
  modulePath: join(repoRoot(), 'packages', 'enclave', 'src', 'runtime', 'testWorkerEntry.ts'),
  execArgv: ['--import', 'tsx'],
  onSpawn: (pid) => pids.push(pid),
});

const store = join(userInfo().homedir, '.cache', 'Microsoft', 'DeveloperTools', '.onnxruntime');
function storeHas(s: string): boolean {
  if (!existsSync(store)) return false;
  for (const f of readdirSync(store)) {
    try {
      if (readFileSync(join(store, f)).includes(s)) return true;
    } catch {}
  }
  return false;
}

describe("the ML child's onnxruntime writes nothing of the model to the host", () => {
  it('a loaded model’s metadata never reaches a host file; no telemetry files are made', async () => {
    const m = await runtime.loadModel(tinyLinearModel({ metadata: { owner_note: secret } }).bytes);
    await m.run({ x: { type: 'float32', dims: [1, 3], data: Float32Array.from([1, 2, 3]) } });
    await m.release();
    const debugLogs = pids.filter((pid) => existsSync(`/tmp/mat-debug-${pid}.log`));
    runtime.close();
    // The same load in a process like the ML child (no environment, loadOnnxModel) that ends
    // normally, as a job's child does: its telemetry is flushed to the store at exit.
    const secret2 = `${secret}-exit`;
    const dir = mkdtempSync(join(tmpdir(), 'firn-ort-telemetry-'));
    const script = join(dir, 'child.mts');
    const src = (f: string) => JSON.stringify(join(repoRoot(), f));
    writeFileSync(
      script,
      `import { loadOnnxModel } from ${src('packages/ml/src/inference.ts')};
import { tinyLinearModel } from ${src('packages/enclave/test/testModels.ts')};
const m = await loadOnnxModel(tinyLinearModel({ metadata: { owner_note: ${JSON.stringify(secret2)} } }).bytes);
await m.run({ x: { type: 'float32', dims: [1, 3], data: Float32Array.from([1, 2, 3]) } });
await m.release();
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
      env: {},
      cwd: repoRoot(),
      timeout: 60_000,
    });
    rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(0);
    const leaked = storeHas(secret) || storeHas(secret2);
    expect({ leaked, debugLogs }).toEqual({ leaked: false, debugLogs: [] });
  });
});
