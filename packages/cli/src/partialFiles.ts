import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, opendirSync, readlinkSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

/**
 * Temp files the CLI writes beside an output (plaintext from `artifact open`, tensors from `infer`,
 * a key from `artifact keygen --force`) carry a name that says who writes them:
 * `<output name>.firn-partial.<host tag>.<pid>.<12 hex>.tmp` (host tag: the first 8 hex of
 * SHA-256 of the host name and pid namespace). A signal the CLI can catch removes its own temp file (decision 1430);
 * SIGKILL, the OOM killer or a power cut cannot be caught, and Node has no O_TMPFILE (an unnamed
 * file linked only once complete). So every later write into the same directory first removes
 * the partial files whose writer is gone: written on this host by a pid that no longer runs, or
 * not modified for `maxIdleMs` (a live writer streams into its file continuously). What remains
 * after a crash until the next write there is docs/decisions/1542-partial-files-after-a-kill.md.
 */

/** How long a partial file may go unmodified before it counts as abandoned whoever wrote it, ms (1 h). */
export const PARTIAL_MAX_IDLE_MS = 60 * 60 * 1000;

const PARTIAL = /\.firn-partial\.([0-9a-f]{8})\.([1-9][0-9]{0,9})\.[0-9a-f]{12}\.tmp$/;

/**
 * This host's tag in partial names: 8 hex of SHA-256 of the host name and this pid namespace. A pid
 * names a process only within its pid namespace: a CLI in a container that shares the host name
 * (host network or UTS namespace) must not judge the host's writers by pid, nor the host the
 * container's; those partials are judged by age only. (The host's own pid namespace keeps its
 * identity across a reboot, so a power cut's partial is still judged by its pid after it.)
 */
export function partialHostTag(): string {
  let pidNs = '';
  try {
    pidNs = readlinkSync('/proc/self/ns/pid'); // e.g. "pid:[4026531836]"; none off Linux
  } catch {}
  return createHash('sha256').update(`${hostname()}\n${pidNs}`).digest('hex').slice(0, 8);
}

/**
 * A fresh temp path beside `target` that names this process as its writer (see the module note).
 * The caller creates it with flag 'wx' and renames it onto `target` once complete.
 */
export function partialPathFor(target: string): string {
  // A file name holds at most 255 bytes (NAME_MAX) and the suffix takes up to 53: the output's
  // name is cut (at a character boundary) to leave room, so any name the file system takes can be
  // written. Only the suffix identifies a partial file.
  let stem = basename(target);
  if (Buffer.byteLength(stem) > PARTIAL_STEM_BYTES) {
    const chars = Array.from(stem);
    let bytes = 0;
    let n = 0;
    while (n < chars.length && bytes + Buffer.byteLength(chars[n]!) <= PARTIAL_STEM_BYTES)
      bytes += Buffer.byteLength(chars[n++]!);
    stem = chars.slice(0, n).join('');
  }
  const suffix = `.firn-partial.${partialHostTag()}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  return join(dirname(target), `${stem}${suffix}`);
}

/** Bytes of the output's name kept at the front of a partial file's name (255 - the longest suffix). */
const PARTIAL_STEM_BYTES = 200;

/** Whether `pid` names a running process on this host (EPERM: it runs under another account). */
function running(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

export interface RemovePartialsOptions {
  /** Now, ms since the epoch (default Date.now()): only ages are judged on it. */
  now?: number;
  /** Unmodified this long, a partial counts as abandoned even if its pid runs, ms (default PARTIAL_MAX_IDLE_MS). */
  maxIdleMs?: number;
  /** Whether a pid of this host runs (default: signal 0). */
  isRunning?: (pid: number) => boolean;
}

/**
 * Remove the partial files in `dir` left by writers that are gone: on this host, a pid that no
 * longer runs; from any host, unmodified for `maxIdleMs`. Only regular files of this account whose
 * names match the partial pattern are touched (a link of that name is left alone); another host's
 * partial is judged by age only, since its pid means nothing here. Best effort: a directory or file
 * that cannot be read or removed is skipped, never an error (the write that follows is what the
 * user asked for).
 * @returns the paths removed.
 */
export function removeAbandonedPartials(dir: string, o: RemovePartialsOptions = {}): string[] {
  const now = o.now ?? Date.now();
  const maxIdle = o.maxIdleMs ?? PARTIAL_MAX_IDLE_MS;
  const isRunning = o.isRunning ?? running;
  const here = partialHostTag();
  const uid = process.getuid?.();
  const removed: string[] = [];
  let d: ReturnType<typeof opendirSync>;
  try {
    d = opendirSync(dir);
  } catch {
    return removed;
  }
  try {
    for (let e = d.readSync(); e !== null; e = d.readSync()) {
      const m = PARTIAL.exec(e.name);
      if (!m) continue;
      const path = join(dir, e.name);
      try {
        const st = lstatSync(path);
        if (!st.isFile() || (uid !== undefined && st.uid !== uid)) continue;
        const idle = now - st.mtimeMs > maxIdle;
        const gone = m[1] === here && !isRunning(Number(m[2]));
        if (!idle && !gone) continue;
        rmSync(path, { force: true });
        removed.push(path);
      } catch {
        // Vanished or not ours to remove: skip it.
      }
    }
  } catch {
    // A directory that stops being readable midway: what was removed stays removed.
  } finally {
    d.closeSync();
  }
  return removed;
}

/** removeAbandonedPartials for the directory `target` is written to; returns the paths removed. */
export function removeAbandonedPartialsBeside(target: string, o: RemovePartialsOptions = {}): string[] {
  return removeAbandonedPartials(dirname(target) || '.', o);
}

/** Whether `name` (a file name, no directory) is a partial file of the CLI's. */
export function isPartialName(name: string): boolean {
  return PARTIAL.test(basename(name));
}
