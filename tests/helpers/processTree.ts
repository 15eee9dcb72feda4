import { readdirSync, readFileSync } from 'node:fs';

// Process-tree probes for tests that check nothing outlives what they stop (Linux /proc).

/** Every process under `pid` (children, grandchildren, ...), from /proc; the order is /proc's. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // Field 4 (ppid) follows the ")" that closes the command name, which may hold spaces.
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {}
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent)
      if (pp === p) {
        out.push(c);
        walk(c);
      }
  };
  walk(pid);
  return out;
}

/** Whether a process with this id exists (a zombie not yet reaped counts). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Whether this process exists and has not exited (a zombie does not count). */
export const running = (pid: number): boolean => {
  if (!alive(pid)) return false;
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

/** The process's command name (/proc/<pid>/comm), or '' once it is gone. */
export const comm = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};
