import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';

// A careless new user passes a file far too large as `firn infer --input` or `--model` (a disk
// image, a dump; sparse here, so the test writes nothing). Promised: exit 3 with a clear error
// naming the flag, the path and the limit, before anything else. It was "--input X:
// ERR_FS_FILE_TOO_LARGE" (Node's internal code, no limit) past 2 GiB, and under it the whole file
// was read into memory first and then refused as "input is N bytes" without the flag or the path.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-huge-'));
writeFileSync(join(dir, 'model.onnx'), demoModel());
writeFileSync(
  join(dir, 'input.json'),
  JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [1, 2, 3, 4] } }),
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function infer(model: string, input: string) {
  // The devnet file is never reached: the files are checked first.
  return spawnSync(
    process.execPath,
    [
      FIRN,
      'infer',
      '--devnet',
      join(dir, 'state.json'),
      '--model',
      model,
      '--input',
      input,
      '--out',
      'o.json',
    ],
    { cwd: dir, encoding: 'utf8', timeout: 50_000, env: { ...process.env, FIRN_HOME: join(dir, 'home') } },
  );
}

describe('attack: firn infer with a huge file', () => {
  it('--input of 3 GiB names --input, the path and the limit (exit 3)', () => {
    writeFileSync(join(dir, 'huge.json'), '');
    truncateSync(join(dir, 'huge.json'), 3 * 1024 ** 3);
    const r = infer('model.onnx', 'huge.json');
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/--input huge\.json/);
    expect(r.stderr).toMatch(/limit/);
    expect(r.stderr).not.toMatch(/ERR_FS_FILE_TOO_LARGE/);
  }, 60_000);

  it('--model of 3 GiB names --model, the path and the limit (exit 3)', () => {
    writeFileSync(join(dir, 'huge.onnx'), '');
    truncateSync(join(dir, 'huge.onnx'), 3 * 1024 ** 3);
    const r = infer('huge.onnx', 'input.json');
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/--model huge\.onnx/);
    expect(r.stderr).toMatch(/limit/);
    expect(r.stderr).not.toMatch(/ERR_FS_FILE_TOO_LARGE/);
  }, 60_000);

  it('--input of 300 MiB (over the 256 MiB cap) names --input and the path, refused without reading it', () => {
    writeFileSync(join(dir, 'big.json'), '');
    truncateSync(join(dir, 'big.json'), 300 * 1024 ** 2);
    const r = infer('model.onnx', 'big.json');
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/E_TOO_LARGE/);
    expect(r.stderr).toMatch(/--input big\.json/);
  }, 60_000);
});
