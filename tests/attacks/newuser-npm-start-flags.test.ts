import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';

// The README lists `--exit-after-demo`, `--no-demo`, `--nodes N` as flags of `npm start`. A new
// user types `npm start --exit-after-demo`: npm keeps the flag for itself (npm_config_exit_after_demo)
// and `firn devnet` runs without it, so the devnet never exits. It must refuse instead, naming
// the right form: `npm start -- --exit-after-demo`.
const dir = mkdtempSync(join(tmpdir(), 'firn-npm-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('flags npm swallowed from `npm start --flag` are refused, naming `npm start -- --flag`', () => {
  const bin = join(__dirname, '../../packages/cli/bin/firn.mjs');
  const args = ['devnet', '--dir', join(dir, 'dn'), '--nodes', '0', '--verifiers', '1', '--no-demo'];
  // What npm leaves a script after `npm start --exit-after-demo` (the quick flags above stand for
  // the rest of a devnet start, so a run that ignores the mistake ends soon).
  const env = { ...process.env, npm_lifecycle_event: 'start', npm_config_exit_after_demo: 'true' };
  const r = spawnSync(process.execPath, [bin, ...args, '--exit-after-demo'], {
    encoding: 'utf8',
    timeout: 90_000,
    env,
  });
  const out = `${r.stdout}${r.stderr}`;
  expect(r.status, out).toBe(3);
  expect(out).toContain('npm start -- --exit-after-demo');
  expect(out).not.toContain('RPC http');
});
