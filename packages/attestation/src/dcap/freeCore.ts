import { availableParallelism, type CpuInfo, cpus, loadavg } from 'node:os';
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
export function sampleCpu(list: readonly CpuInfo[] = cpus()): CpuSample {
  let busy = 0;
  for (const c of list) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  const own = process.cpuUsage();
  return { at: performance.now(), busy, own: (own.user + own.system) / 1000 };
}

/** Re-decide at most this often (ms); the machine is sampled at each decision. */
export const DECIDE_EVERY_MS = 500;
/** The pool is used while at least this much of a core is idle beside the calling thread. */
export const MIN_FREE_CORE = 0.5;
/** An interval shorter than this (ms) is too coarse to measure (os.cpus() counts 10 ms ticks). */
export const MIN_INTERVAL_MS = 100;

/**
 * The 'auto' decision rule (decisions 1340, 1450, 1490), pure: whether another thread (the
 * signature thread since decision 1490, libuv's pool before) has a core to itself.
 *
 * - `prev`/`now`: samples (sampleCpu) at the previous decision (or when this module loaded) and now.
 * - `cores`: the cores this process may use (availableParallelism); `listed`: os.cpus().length.
 * - `load1`: the 1-minute load average.
 *
 * Measured idle time decides whenever it can: half a core or more left idle by other processes
 * over an interval of MIN_INTERVAL_MS or more, besides the calling thread's core. Only where
 * os.cpus() does not describe the usable cores (`listed !== cores`) or no interval that long
 * exists yet does the load average decide (load <= cores - 1). The load average counts this
 * process's own threads and whatever ran in the last minute (a previous benchmark), so on a quiet
 * machine it kept the calling thread for the first decision; it is the fallback, not the rule.
 * One core: never the pool (nothing to run it beside the calling thread).
 */
export function choosePool(
  prev: CpuSample | undefined,
  now: CpuSample,
  cores: number,
  listed: number,
  load1: number,
): boolean {
  if (cores < 2) return false;
  if (listed === cores && prev !== undefined && now.at - prev.at >= MIN_INTERVAL_MS)
    return freeCoresBetween(prev, now, cores) >= MIN_FREE_CORE;
  return load1 <= cores - 1;
}

/**
 * The first interval starts when this module loads (program start-up, not a past minute of
 * other work), so the first decision is already a measured one (decision 1450).
 */
let last: CpuSample = sampleCpu();
let use = true;
let decided = false;

/**
 * Whether another thread has a core to itself beside the calling thread ('auto' mode: the
 * signature thread then checks the DCAP signatures, decision 1490), by choosePool over the time
 * since the previous decision (or since this module loaded). Re-decided at most every
 * DECIDE_EVERY_MS; a decision samples os.cpus() (about 60 µs), other calls read one number.
 */
export function coreIsFree(): boolean {
  if (decided && performance.now() - last.at < DECIDE_EVERY_MS) return use;
  const list = cpus();
  const s = sampleCpu(list);
  use = choosePool(last, s, availableParallelism(), list.length, loadavg()[0] ?? 0);
  decided = true;
  // A too-short interval is extended, not restarted: the next decision measures from the same start.
  if (s.at - last.at >= MIN_INTERVAL_MS) last = s;
  return use;
}

/**
 * The decision coreIsFree returned last (true before any), without deciding again or sampling:
 * for benchmarks reporting what 'auto' used without changing when it decides.
 */
export function lastCoreDecision(): boolean {
  return use;
}
