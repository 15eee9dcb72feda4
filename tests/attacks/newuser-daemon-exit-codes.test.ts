import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runFirn } from '../helpers/firnCli.ts';

// The README's exit code table holds for every command: a mistake in the command (a missing file,
// a flag out of range) is exit 3 with E_INVALID_INPUT / E_NOT_FOUND. The long-running commands
// (node, verifier, kms, dashboard) exited 1 ("the job failed, or an unexpected error") instead, so a
// script or a service manager could not tell a typo from a crash.
const dir = mkdtempSync(join(tmpdir(), 'firn-daemon-exit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const firn = (...args: string[]) => runFirn(dir, 60_000, ...args);
const registry = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512';

describe('daemon commands use the README exit codes for user mistakes', () => {
  it('node start with a missing --sim-platform exits 3', () => {
    const key = join(dir, 'op.key');
    // A made-up test key (a repeated byte), never a real account's.
    writeFileSync(key, `0x${'ab'.repeat(32)}`, { mode: 0o600 });
    const r = firn(
      'node',
      'start',
      '--rpc',
      'http://127.0.0.1:1',
      '--registry',
      registry,
      '--sim-platform',
      join(dir, 'nope.json'),
      '--key-file',
      key,
    );
    expect(r.out).toContain('nope.json');
    expect(r.code, r.out).toBe(3);
  });

  it('verifier start with a missing --key-file exits 3', () => {
    const r = firn(
      'verifier',
      'start',
      '--rpc',
      'http://127.0.0.1:1',
      '--registry',
      registry,
      '--key-file',
      join(dir, 'nope.key'),
    );
    expect(r.out).toContain('nope.key');
    expect(r.code, r.out).toBe(3);
  });

  it('dashboard with --port out of range exits 3', () => {
    const r = firn('dashboard', '--rpc', 'http://127.0.0.1:1', '--market', registry, '--port', '99999');
    expect(r.out).toContain('--port');
    expect(r.code, r.out).toBe(3);
  });
});
