import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';

// A careless new user passes the wrong JSON file as `--devnet` or `--deployment` (the input
// tensors, a file a crashed writer left as `null`). Promised: exit 3 with an error naming the
// flag and the file. `null` was E_INTERNAL (exit 1); another JSON object was "registry is not an
// address" or "no RPC URL: pass --rpc" (no file named), and an rpcUrl of the wrong type was blamed
// on a `--rpc` the user never passed.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-devnet-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function firn(args: string[]) {
  return spawnSync(process.execPath, [FIRN, ...args], { cwd: dir, encoding: 'utf8', timeout: 50_000 });
}

const FILES: [string, string][] = [
  ['null.json', 'null'],
  ['input.json', JSON.stringify({ x: { dims: [1], type: 'float32', data: [1] } })],
  ['rpc-number.json', JSON.stringify({ rpcUrl: 5 })],
  ['no-contracts.json', JSON.stringify({ rpcUrl: 'http://127.0.0.1:1', chainId: 31337 })],
];

describe('attack: a --devnet or --deployment file that is not one', () => {
  for (const [name, text] of FILES)
    it(`${name}: exit 3 naming the flag and the file`, () => {
      writeFileSync(join(dir, name), text);
      for (const flag of ['--devnet', '--deployment']) {
        const r = firn(['job', 'list', flag, name]);
        expect(r.stderr).not.toMatch(/E_INTERNAL/);
        expect(r.stderr).toContain(`${flag} ${name}`);
        expect(r.status).toBe(3);
      }
    }, 60_000);
});
