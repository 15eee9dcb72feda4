import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// Attack: an ML child's runtime (or app code in it) leaves a folder it made read-only (0500) in
// its scratch folder, with requester-derived files inside. The scratch is removed after the job
// with rmSync(recursive, force), which cannot unlink entries of a folder without write permission
// (an unprivileged enclave user): the error was swallowed and the folder, with the files, stayed
// in the enclave's temp folder for good. (As root permissions do not bind, so the run below is
// made as an unprivileged user.)
// Promise (decision 1550 #3): each child's scratch folder is removed when the child exits.
const root = mkdtempSync(join(tmpdir(), 'firn-scratch-ro-'));
chmodSync(root, 0o777);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const asRoot = process.getuid?.() === 0;
// Run as root, the attack needs the unprivileged user to read the checkout (tsx and the sources):
// a clone inside a private (0700) folder cannot be, and the test then says it is skipped.
const unprivilegedCanRead =
  !asRoot ||
  spawnSync(
    process.execPath,
    [
      '-e',
      `require('node:fs').accessSync(${JSON.stringify(join(import.meta.dirname, 'mlScratchReadOnlyRun.ts'))}); require.resolve('tsx', { paths: [${JSON.stringify(import.meta.dirname)}] })`,
    ],
    {
      uid: 65534,
      gid: 65534,
      env: { PATH: process.env.PATH ?? '' },
      timeout: 10_000,
    },
  ).status === 0;

describe('attack: a child leaves an unwritable folder in its scratch', () => {
  it.skipIf(!unprivilegedCanRead)(
    'the scratch folder is still removed after the job (as an unprivileged user who can read the checkout)',
    () => {
      const r = spawnSync(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'mlScratchReadOnlyRun.ts'), root],
        {
          ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
          env: { PATH: process.env.PATH ?? '', HOME: root },
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
      const line = r.stdout.trim().split('\n').pop() ?? '';
      expect(line, r.stderr).toMatch(/^\{/);
      const out = JSON.parse(line) as { uid: number; gone: boolean; left: string[] };
      expect(out.uid).not.toBe(0);
      expect(out.gone).toBe(true);
      expect(out.left).toEqual([]);
    },
    90_000,
  );
});
