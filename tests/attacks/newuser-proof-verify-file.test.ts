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

describe('attack: firn proof verify (data verify, artifact grant) on a file that is not what it wants', () => {
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

  it('data verify --record and artifact grant --plan on a file holding null name the file', () => {
    writeFileSync(join(dir, 'null.json'), 'null');
    const a = (n: number) => `0x${n.toString(16).padStart(40, '0')}`;
    writeFileSync(
      join(dir, 'state.json'),
      JSON.stringify({
        rpcUrl: 'http://127.0.0.1:1',
        chainId: 31337,
        contracts: { registry: a(1), verifierSet: a(2), jobMarket: a(3), dataLedger: a(4) },
      }),
    );
    const run = (args: string[]) =>
      spawnSync(process.execPath, [FIRN, ...args], { cwd: dir, encoding: 'utf8', timeout: 50_000 });
    const data = run(['data', 'verify', '--devnet', 'state.json', '--record', 'null.json']);
    expect(data.status).toBe(3);
    expect(data.stderr).toContain('--record null.json');
    const grant = run([
      'artifact',
      'grant',
      '--plan',
      'null.json',
      '--role',
      'data',
      '--sealed',
      'none.sealed',
      '--kem-key-file',
      'none.json',
      '--owner-key-file',
      'none.key',
      '--out',
      'g.json',
      '--devnet',
      'state.json',
    ]);
    expect(grant.status).toBe(3);
    expect(grant.stderr).toContain('--plan null.json');
  }, 60_000);
});
