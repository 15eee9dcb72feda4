import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { childProcessRuntime } from './mlRuntime.ts';

// Attack: a runtime (onnxruntime, TensorFlow.js, an app's code) writes caches or temp files to
// os.tmpdir() or the home folder. With the host's, those requester-derived bytes would stay in a
// shared place after the job, where the next job's child (another requester's) could read them.
// Each ML child must get a private HOME and TMPDIR, a fresh folder of its own removed after it.
const root = mkdtempSync(join(tmpdir(), 'firn-scratch-root-'));
const runtimes: { close(): void }[] = [];
afterAll(() => {
  for (const r of runtimes) r.close();
  rmSync(root, { recursive: true, force: true });
});

const decode = (b: Uint8Array) =>
  JSON.parse(new TextDecoder().decode(b)) as { tmpdir: string; home: string; env: string[] };

async function probe(runtime: ReturnType<typeof childProcessRuntime>, write: boolean) {
  try {
    const r = await runtime.runWorkload('probe', {
      params: { write },
      inputs: [],
      progress: () => undefined,
      now: () => 1_750_000_000,
    });
    return decode(r.outputs[0]!.bytes);
  } finally {
    runtime.jobFinished?.();
  }
}

/** Wait (at most 10 s: the machine may be loaded) until `path` is gone. */
async function removed(path: string): Promise<boolean> {
  for (let i = 0; i < 200 && existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
  return !existsSync(path);
}

describe.each([false, true])('ML child scratch folder (spare: %s)', (spare) => {
  it("two jobs' children get different private TMPDIR and HOME, removed after each job", async () => {
    const runtime = childProcessRuntime({
      modulePath: join(repoRoot(), 'packages', 'enclave', 'src', 'runtime', 'testWorkerEntry.ts'),
      execArgv: ['--import', 'tsx'],
      scratchRoot: root,
      spare,
    });
    runtimes.push(runtime);
    const a = await probe(runtime, true);
    const b = await probe(runtime, false);
    for (const seen of [a, b]) {
      expect(seen.tmpdir.startsWith(join(root, 'firn-ml-'))).toBe(true);
      expect(seen.home).toBe(seen.tmpdir);
      expect(seen.tmpdir).not.toBe(tmpdir());
      expect(seen.home).not.toBe(homedir());
      // Only its own folders from the parent (a runtime may set its own, e.g. ORT_DISABLE_TELEMETRY).
      expect(seen.env.filter((k) => k !== 'ORT_DISABLE_TELEMETRY').sort()).toEqual([
        'HOME',
        'TEMP',
        'TMP',
        'TMPDIR',
      ]);
    }
    expect(a.tmpdir).not.toBe(b.tmpdir);
    // The first job's cache file went with its folder; the second job's child never saw it.
    expect(await removed(a.tmpdir)).toBe(true);
    expect(await removed(b.tmpdir)).toBe(true);
    runtime.close();
    // Nothing left under the root once the spare (if any) is stopped too.
    for (let i = 0; i < 200 && readdirSync(root).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(root)).toEqual([]);
  }, 60_000);
});

it('the scratch folder is private to its owner (mode 0700)', async () => {
  const runtime = childProcessRuntime({
    modulePath: join(repoRoot(), 'packages', 'enclave', 'src', 'runtime', 'testWorkerEntry.ts'),
    execArgv: ['--import', 'tsx'],
    scratchRoot: root,
    spare: true,
  });
  runtimes.push(runtime);
  await runtime.spareReady();
  const [dir] = readdirSync(root);
  expect(dir).toMatch(/^firn-ml-/);
  expect(statSync(join(root, dir!)).mode & 0o777).toBe(0o700);
  runtime.close();
}, 60_000);
