import { spawnSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeStaleScratch, scratchOwnerTag, scratchPrefix } from './mlScratch.ts';

const base = mkdtempSync(join(tmpdir(), 'firn-ml-scratch-stale-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A pid that ran and is gone (a finished child's). */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

describe('ML scratch folders left by a dead enclave process', () => {
  it('are named by this host/pid namespace tag and this pid', () => {
    expect(scratchPrefix()).toBe(`firn-ml-${scratchOwnerTag()}-${process.pid}-`);
    expect(scratchOwnerTag()).toMatch(/^[0-9a-f]{8}$/);
  });

  it("removes a dead owner's folder (with what its child wrote), keeps a live one, this process's, another tag's and other names", () => {
    const root = mkdtempSync(join(base, 'root-'));
    const tag = scratchOwnerTag();
    const dead = deadPid();
    const stale = `firn-ml-${tag}-${dead}-aB3xY9`;
    mkdirSync(join(root, stale, 'cache'), { recursive: true });
    writeFileSync(join(root, stale, 'cache', 'requester-derived.bin'), 'secret');
    const live = `firn-ml-${tag}-${process.ppid}-Qw3rTy`;
    const mine = `${scratchPrefix()}Zz9Zz9`;
    const otherTag = `firn-ml-${tag === '00000000' ? '11111111' : '00000000'}-${dead}-aaaaaa`;
    const untagged = 'firn-ml-abcdef'; // a folder from before the tags: not known to be ours
    for (const d of [live, mine, otherTag, untagged]) mkdirSync(join(root, d));
    expect(removeStaleScratch(root)).toEqual([stale]);
    expect(readdirSync(root).sort()).toEqual([live, mine, otherTag, untagged].sort());
  });

  it('leaves a symlink of a stale name (and what it points at) alone, and an unreadable root is no error', () => {
    const root = mkdtempSync(join(base, 'link-'));
    const target = mkdtempSync(join(base, 'target-'));
    writeFileSync(join(target, 'keep'), 'x');
    const name = `firn-ml-${scratchOwnerTag()}-${deadPid()}-linkln`;
    symlinkSync(target, join(root, name));
    expect(removeStaleScratch(root)).toEqual([]);
    expect(existsSync(join(target, 'keep'))).toBe(true);
    expect(removeStaleScratch(join(base, 'no-such-root'))).toEqual([]);
  });

  it.skipIf(process.getuid?.() !== 0)("leaves a dead owner's folder of another user alone", () => {
    const root = mkdtempSync(join(base, 'uid-'));
    const name = `firn-ml-${scratchOwnerTag()}-${deadPid()}-otheru`;
    mkdirSync(join(root, name));
    chownSync(join(root, name), 65534, 65534);
    expect(removeStaleScratch(root)).toEqual([]);
    expect(existsSync(join(root, name))).toBe(true);
  });

  it('judges liveness by the injected probe: a pid that runs keeps its folder', () => {
    const root = mkdtempSync(join(base, 'probe-'));
    const name = `firn-ml-${scratchOwnerTag()}-4242-abcdef`;
    mkdirSync(join(root, name));
    expect(removeStaleScratch(root, { isRunning: () => true })).toEqual([]);
    expect(removeStaleScratch(root, { isRunning: (p) => p !== 4242 })).toEqual([name]);
  });
});
