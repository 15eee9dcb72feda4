import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * ML children's scratch folders (decision 1550 #3: a private 0700 HOME/TMPDIR per child) are named
 * `firn-ml-<owner tag>-<enclave pid>-<6 random>`: the owner tag is the first 8 hex of SHA-256 of
 * the host name and the enclave process's pid namespace, the pid that of the enclave process that
 * made them (decision 1542 names the CLI's temp files the same way). A folder whose enclave was
 * SIGKILLed (its 'exit' hooks never ran) is removed by the next enclave that starts on that
 * scratch root (removeStaleScratch; docs/decisions/1601-ml-scratch-after-a-killed-enclave.md).
 */
const STALE = /^firn-ml-([0-9a-f]{8})-([1-9][0-9]{0,9})-[A-Za-z0-9]{6}$/;

/**
 * This host and pid namespace's tag: 8 hex of SHA-256 of the host name and /proc/self/ns/pid (none
 * off Linux). A pid names a process only within its namespace, so folders of another tag (another
 * container sharing the temp folder) are never judged by pid, and never removed here.
 */
export function scratchOwnerTag(): string {
  let pidNs = '';
  try {
    pidNs = readlinkSync('/proc/self/ns/pid'); // e.g. "pid:[4026531836]"
  } catch {}
  return createHash('sha256').update(`${hostname()}\n${pidNs}`).digest('hex').slice(0, 8);
}

/** The mkdtemp prefix of this process's scratch folders (mkdtemp adds 6 characters). */
export function scratchPrefix(): string {
  return `firn-ml-${scratchOwnerTag()}-${process.pid}-`;
}

/** Whether `pid` runs (EPERM: it runs under another account). */
function running(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

export interface RemoveStaleScratchOptions {
  /** Whether a pid of this pid namespace runs (default: signal 0). */
  isRunning?: (pid: number) => boolean;
}

/**
 * Remove the scratch folders under `root` that a dead enclave process of this host and pid
 * namespace left (its pid no longer runs): real folders only (a symlink of that name is left), owned
 * by this process's user. A folder of a live process (this one included), of another tag, of
 * another user, or not named as above is left alone. A folder that cannot be removed is skipped.
 * Returns the names removed. Never throws (an unreadable root removes nothing).
 */
export function removeStaleScratch(root: string, opts: RemoveStaleScratchOptions = {}): string[] {
  const isRunning = opts.isRunning ?? running;
  const tag = scratchOwnerTag();
  const uid = process.getuid?.();
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = STALE.exec(name);
    if (m === null || m[1] !== tag) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || isRunning(pid)) continue;
    const path = join(root, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      removeScratchTree(path);
      removed.push(name);
    } catch {}
  }
  return removed;
}

/**
 * Remove a child's scratch folder. A child may have left folders it made unwritable (0500), whose
 * entries cannot be unlinked: then every real folder under it (symlinks are not followed) is made
 * writable by its owner and the removal is tried again.
 */
export function removeScratchTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    return;
  } catch {}
  const open = (d: string): void => {
    try {
      chmodSync(d, 0o700);
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) open(join(d, e.name));
    } catch {}
  };
  open(dir);
  rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
}
