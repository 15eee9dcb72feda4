import * as realFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

// Two `firn devnet --dir D` start together on a folder whose devnet.lock is stale (its process is
// gone). Each sees the stale pid; the first removes it and takes the lock with its own pid; the
// second then removes the stale lock *it read*, which is now the first one's, and takes the lock
// too. Both then wipe and run in the same folder. The interleaving is made exact here: while the
// second reads the stale pid, the first takes the lock (another live process: our parent).

const hook: { onRead?: (() => void) | undefined } = {};
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((...a: Parameters<typeof fs.readFileSync>) => {
    const r = fs.readFileSync(...a);
    if (String(a[0]).endsWith('devnet.lock') && hook.onRead) {
      const f = hook.onRead;
      hook.onRead = undefined;
      f();
    }
    return r;
  }) as typeof fs.readFileSync;
  return { ...fs, default: { ...fs, readFileSync }, readFileSync };
});

const { acquireDevnetLock } = await import('../../packages/cli/src/devnet/startDevnet.ts');
const root = realFs.mkdtempSync(join(tmpdir(), 'firn-lock-race-'));
afterAll(() => realFs.rmSync(root, { recursive: true, force: true }));

describe('attack: two devnets take over the same stale lock', () => {
  it('only one of them holds the folder', () => {
    const d = join(root, 'dn');
    realFs.mkdirSync(d, { recursive: true });
    const file = join(d, 'devnet.lock');
    realFs.writeFileSync(file, '4194305\n'); // stale: above Linux's default pid_max
    // The other devnet (alive: our parent process) takes over the stale lock in our window.
    hook.onRead = () => {
      realFs.rmSync(file, { force: true });
      realFs.writeFileSync(file, `${process.ppid}\n`, { flag: 'wx' });
    };
    let release: (() => void) | undefined;
    try {
      expect(() => {
        release = acquireDevnetLock(d);
      }).toThrow(/a devnet is already running/);
    } finally {
      release?.();
    }
    expect(realFs.readFileSync(file, 'utf8').trim()).toBe(String(process.ppid));
  });
});
