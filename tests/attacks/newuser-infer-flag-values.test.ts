import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';

// A careless new user passes a wrong value to one of firn infer's flags: the input tensors as
// --sim-root, a word instead of a URL as --also-rpc. Promised: exit 3 naming the flag (and the
// file), before anything is sent. --sim-root said only "not a PEM certificate"; --also-rpc was
// not checked at all (the command went on to the network: exit 4, "cannot reach the RPC").
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  const a = (n: number) => `0x${n.toString(16).padStart(40, '0')}`;
  writeFileSync(
    join(dir, 'state.json'),
    JSON.stringify({
      rpcUrl: 'http://127.0.0.1:1',
      chainId: 31337,
      contracts: { registry: a(1), verifierSet: a(2), jobMarket: a(3), dataLedger: a(4) },
      accounts: { requester: { privateKey: `0x${'5a'.repeat(32)}` } }, // a made-up test key
    }),
  );
  writeFileSync(join(dir, 'model.onnx'), demoModel());
  writeFileSync(
    join(dir, 'input.json'),
    JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [1, 2, 3, 4] } }),
  );
});

function infer(extra: string[]) {
  const args = ['infer', '--devnet', 'state.json', '--model', 'model.onnx', '--input', 'input.json'];
  return spawnSync(process.execPath, [FIRN, ...args, '--out', 'o.json', ...extra], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 50_000,
    env: { ...process.env, FIRN_HOME: join(dir, 'home') },
  });
}

describe('attack: firn infer with a wrong flag value', () => {
  it('--sim-root that is no PEM names --sim-root and the file', () => {
    const r = infer(['--sim-root', 'input.json']);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('--sim-root input.json');
  }, 60_000);

  it('--also-rpc that is no URL exits 3 naming --also-rpc, before the network', () => {
    const r = infer(['--also-rpc', 'notaurl']);
    expect(r.stderr).toContain('--also-rpc');
    expect(r.status).toBe(3);
  }, 60_000);
});
