import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';

// A careless new user runs `firn proof verify FILE` on the wrong file: the model, the input
// tensors, an output JSON. Promised: exit 3 with an error naming the file. It said only
// "E_PARSE: proof is not JSON" or "proof.proof must be an object", naming no file (the command
// takes several files: the proof, a devnet state, a deployment).
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-proof-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function verify(file: string) {
  // The RPC is never reached: the file is refused first.
  return spawnSync(process.execPath, [FIRN, 'proof', 'verify', file, '--rpc', 'http://127.0.0.1:1'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 50_000,
  });
}

describe('attack: firn proof verify on a file that is no proof', () => {
  it('a binary file (the model) names the file', () => {
    writeFileSync(join(dir, 'model.onnx'), Buffer.from([0x08, 0x07, 0x12, 0x00, 0xff]));
    const r = verify('model.onnx');
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('model.onnx');
  }, 60_000);

  it('a JSON file of another kind (the input tensors) names the file', () => {
    writeFileSync(join(dir, 'input.json'), JSON.stringify({ x: { dims: [1], type: 'float32', data: [1] } }));
    const r = verify('input.json');
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('input.json');
  }, 60_000);
});
