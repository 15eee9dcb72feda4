import { availableParallelism, cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

/** One reading of the machine's and this process's CPU time, in milliseconds. */
export interface CpuSample {
  /** performance.now() when read. */
  at: number;
  /** CPU time all cores spent busy (user, nice, system, irq), summed over cores. */
  busy: number;
  /** This process's CPU time (all its threads: the calling thread and libuv's pool). */
  own: number;
}

/**
 * Cores left idle by every other process between two samples: the core count, less the busy
 * time of other processes (machine busy time minus this process's) per wall-clock millisecond,
 * less the one core the calling thread needs. This process's own pool threads do not count
 * against it, so the choice does not flip because of the work it chose (decision 1340).
 */
export function freeCoresBetween(a: CpuSample, b: CpuSample, cores: number): number {
  const wall = b.at - a.at;
  if (!(wall > 0)) return 0;
  const others = Math.max(0, b.busy - a.busy - (b.own - a.own)) / wall;
  return cores - others - 1;
}

/** Read the machine's busy time (os.cpus, about 60 µs) and this process's CPU time now. */
export function sampleCpu(): CpuSample {
  let busy = 0;
  for (const c of cpus()) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  const own = process.cpuUsage();
  return { at: performance.now(), busy, own: (own.user + own.system) / 1000 };
}

/** Re-decide at most this often (ms); the machine is sampled at each decision. */
const DECIDE_EVERY_MS = 500;
/** The pool is used while at least this much of a core is idle beside the calling thread. */
const MIN_FREE_CORE = 0.5;

let last: CpuSample | undefined;
let use = true;

/**
 * Whether libuv's thread pool has a core to itself for DCAP signature checks ('auto' mode): half
 * a core or more left idle by other processes over the last interval (at least 500 ms), besides
 * the one this thread uses. Re-read at most every 500 ms. Where os.cpus() does not describe the
 * cores this process may use (a count other than availableParallelism), or before a first
 * interval exists, the 1-minute load average decides instead (load <= cores - 1).
 */
export function poolHasACore(): boolean {
  const now = performance.now();
  if (last !== undefined && now - last.at < DECIDE_EVERY_MS) return use;
  const cores = availableParallelism();
  if (cpus().length !== cores) {
    last = { at: now, busy: 0, own: 0 };
    use = (loadavg()[0] ?? 0) <= cores - 1;
    return use;
  }
  const s = sampleCpu();
  use =
    last === undefined ? (loadavg()[0] ?? 0) <= cores - 1 : freeCoresBetween(last, s, cores) >= MIN_FREE_CORE;
  last = s;
  return use;
}
