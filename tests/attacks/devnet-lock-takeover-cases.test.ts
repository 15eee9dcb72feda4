import * as realFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

// The other interleavings of a stale devnet.lock takeover (docs/decisions/1580): what another start
// does between our read of the lock and our rename of it, or between the rename and the link back.
// Each hook runs once, right after the real call it is attached to.

const hook: { onRead?: (() => void) | undefined; onRename?: (() => void) | undefined } = {};
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
  const renameSync = ((...a: Parameters<typeof fs.renameSync>) => {
    fs.renameSync(...a);
    if (String(a[0]).endsWith('devnet.lock') && hook.onRename) {
      const f = hook.onRename;
      hook.onRename = undefined;
      f();
    }
  }) as typeof fs.renameSync;
  return { ...fs, default: { ...fs, readFileSync, renameSync }, readFileSync, renameSync };
});

const { acquireDevnetLock, startDevnet } = await import('../../packages/cli/src/devnet/startDevnet.ts');
const root = realFs.mkdtempSync(join(tmpdir(), 'firn-lock-cases-'));
afterAll(() => realFs.rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  hook.onRead = undefined;
  hook.onRename = undefined;
});

const DEAD = 4194305; // above Linux's default pid_max: no such process
let n = 0;
function staleFolder(content = `${DEAD}\n`): { d: string; file: string } {
  const d = join(root, `dn-${n++}`);
  realFs.mkdirSync(d, { recursive: true });
  const file = join(d, 'devnet.lock');
  realFs.writeFileSync(file, content);
  return { d, file };
}
const lockOf = (file: string) => realFs.readFileSync(file, 'utf8').trim();
const scratch = (d: string) => realFs.readdirSync(d).filter((e) => e.startsWith('devnet.lock.'));

describe('attack: a stale devnet.lock changes under a takeover', () => {
  it('another start took it over and died too: the second stale lock is taken over', () => {
    const { d, file } = staleFolder();
    hook.onRead = () => {
      realFs.rmSync(file);
      realFs.writeFileSync(file, `${DEAD + 1}\n`, { flag: 'wx' });
    };
    const release = acquireDevnetLock(d);
    expect(lockOf(file)).toBe(String(process.pid));
    expect(scratch(d)).toEqual([]);
    release();
    expect(realFs.existsSync(file)).toBe(false);
  });

  it('the stale lock vanished before our rename: the lock is created, not left absent', () => {
    const { d, file } = staleFolder();
    hook.onRead = () => realFs.rmSync(file);
    const release = acquireDevnetLock(d);
    expect(lockOf(file)).toBe(String(process.pid));
    release();
  });

  it('a live lock moved aside is put back as the same file, and no scratch file is left', () => {
    // The main race (devnet-lock-stale-takeover-race.test.ts) with the folder left as found: no
    // scratch file of ours remains, and the owner's lock is the same file (same inode) as before.
    const { d, file } = staleFolder();
    let ino = 0;
    hook.onRead = () => {
      realFs.rmSync(file);
      realFs.writeFileSync(file, `${process.ppid}\n`, { flag: 'wx' });
      ino = realFs.statSync(file).ino;
    };
    expect(() => acquireDevnetLock(d)).toThrow(
      new RegExp(`a devnet is already running .*\\(pid ${process.ppid}\\)`),
    );
    expect(lockOf(file)).toBe(String(process.ppid));
    expect(realFs.statSync(file).ino).toBe(ino);
    expect(scratch(d)).toEqual([]);
  });

  it('a third start takes the name while a live lock is moved aside: this start still refuses', () => {
    // The residual window of decision 1580: the link back fails; this start must not run.
    const { d, file } = staleFolder();
    hook.onRead = () => {
      realFs.rmSync(file);
      realFs.writeFileSync(file, `${process.ppid}\n`, { flag: 'wx' });
    };
    hook.onRename = () => realFs.writeFileSync(file, '1\n', { flag: 'wx' });
    expect(() => acquireDevnetLock(d)).toThrow(/a devnet is already running/);
    expect(lockOf(file)).toBe('1');
    expect(scratch(d)).toEqual([]);
  });

  it('a lock naming no pid (garbage, empty) is stale; scratch files left by a crash do not block', () => {
    const { d, file } = staleFolder('not a pid\n');
    realFs.writeFileSync(join(d, `devnet.lock.${DEAD}.0123456789ab`), `${DEAD}\n`);
    const release = acquireDevnetLock(d);
    expect(lockOf(file)).toBe(String(process.pid));
    release();
    const again = staleFolder('');
    acquireDevnetLock(again.d)();
  });

  it('a live lock is never taken: many tries while its owner lives all refuse', () => {
    const { d, file } = staleFolder(`${process.ppid}\n`);
    for (let i = 0; i < 20; i++) expect(() => acquireDevnetLock(d)).toThrow(/a devnet is already running/);
    expect(lockOf(file)).toBe(String(process.ppid));
    expect(scratch(d)).toEqual([]);
  });

  it("a start does not count lock scratch names as the user's files", async () => {
    const { d, file } = staleFolder();
    const live = `devnet.lock.${process.ppid}.0123456789ab`; // a takeover in flight
    realFs.writeFileSync(join(d, live), `${process.ppid}\n`);
    realFs.writeFileSync(join(d, 'notes.txt'), "the user's");
    await expect(
      startDevnet({ dir: d, nodes: 1, verifiers: 1, readyTimeout: 1000, log: () => {} }),
    ).rejects.toThrow(/holds files a devnet did not write \(notes\.txt\)/);
    expect(realFs.existsSync(join(d, live))).toBe(true);
    expect(realFs.existsSync(file)).toBe(false); // released on the refusal
  });
});
