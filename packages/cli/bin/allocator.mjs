// glibc malloc settings and V8 heap flags for the processes that seal and open artifacts (`firn
// artifact`, and the artifact benchmark, which must run with exactly these), and the re-execution
// that applies them. Plain JS with no dependencies: it runs before tsx is loaded, so re-executing
// costs one bare Node start-up. Decisions 1325 (allocator) and 1430 (heap) have the measurements.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

const MiB = 1024 * 1024;

/**
 * The settings, as environment variables glibc reads once at process start (glibc manual,
 * "Memory Allocation Tunables": MALLOC_TRIM_THRESHOLD_ is glibc.malloc.trim_threshold,
 * MALLOC_MMAP_THRESHOLD_ is glibc.malloc.mmap_threshold; values in bytes).
 *
 * - trim threshold 64 MiB: free memory at the top of the heap is kept up to 64 MiB instead of
 *   being returned after every collection (the default, dynamic, is about twice the largest block
 *   freed so far), so the blocks node:crypto's `Cipher.update` allocates land on warm pages.
 * - mmap threshold 4 MiB: blocks under 4 MiB (cipher slices, 1 MiB file reads) come from the heap
 *   and are recycled, instead of one mmap/munmap (fresh, faulting pages) per block.
 */
export const ALLOCATOR_SETTINGS = Object.freeze({
  MALLOC_TRIM_THRESHOLD_: String(64 * MiB),
  MALLOC_MMAP_THRESHOLD_: String(4 * MiB),
});

/**
 * V8 heap flags the same processes start with (decision 1430). `--initial-old-space-size=128` (MB)
 * keeps V8's old-generation allocation limit at 128 MB or more (V8 "skips full GCs below that
 * threshold"). V8 counts external memory allocated since the last mark-compact against that limit,
 * and every node:crypto `Cipher.update` output is external memory: with a 15 MB heap the limit
 * otherwise settled at about 39 MB, the 16-32 MiB of cipher outputs between two scavenges kept
 * exhausting it, and V8 ran a mark-compact every ~50 ms, halving seal and open throughput.
 */
export const HEAP_FLAGS = Object.freeze(['--initial-old-space-size=128']);

/**
 * The entries of HEAP_FLAGS that `execArgv` lacks: a flag the user gave (any value, `--flag=v`
 * or `--flag v`, `_` or `-` spelling) wins. Empty when FIRN_ALLOCATOR=default.
 *
 * @param {readonly string[]} execArgv Node options this process started with
 * @param {NodeJS.ProcessEnv} env this process's environment
 * @returns {string[]}
 */
export function missingHeapFlags(execArgv, env) {
  if (env[ALLOCATOR_ESCAPE] === 'default') return [];
  const norm = (/** @type {string} */ a) => a.split('=')[0].replaceAll('_', '-');
  const given = new Set(execArgv.map(norm));
  return HEAP_FLAGS.filter((f) => !given.has(norm(f)));
}

/** The GLIBC_TUNABLES name of each setting: a user's value under either name wins over ours. */
const TUNABLE_OF = Object.freeze({
  MALLOC_TRIM_THRESHOLD_: 'glibc.malloc.trim_threshold',
  MALLOC_MMAP_THRESHOLD_: 'glibc.malloc.mmap_threshold',
});

/** Set in the re-executed child: a process that sees it never re-executes again. */
export const ALLOCATOR_GUARD = 'FIRN_ALLOCATOR_APPLIED';

/** `FIRN_ALLOCATOR=default` keeps glibc's own defaults (no settings, no re-execution). */
export const ALLOCATOR_ESCAPE = 'FIRN_ALLOCATOR';

/**
 * The settings `env` lacks: every entry of ALLOCATOR_SETTINGS whose variable is not set in `env`
 * and whose tunable is not named in env.GLIBC_TUNABLES (the user's own values win, per setting).
 * Empty when FIRN_ALLOCATOR=default.
 *
 * @param {NodeJS.ProcessEnv} env the environment to complete (not modified)
 * @returns {Record<string, string>} variable name -> value in bytes, as strings
 */
export function missingAllocatorSettings(env) {
  if (env[ALLOCATOR_ESCAPE] === 'default') return {};
  const tunables = env.GLIBC_TUNABLES ?? '';
  /** @type {Record<string, string>} */
  const missing = {};
  for (const [name, value] of Object.entries(ALLOCATOR_SETTINGS)) {
    const tunable = TUNABLE_OF[/** @type {keyof typeof TUNABLE_OF} */ (name)];
    if (env[name] !== undefined) continue;
    if (tunables.split(':').some((t) => t.split('=')[0] === tunable)) continue;
    missing[name] = value;
  }
  return missing;
}

/**
 * `env` with the allocator settings it lacks added (see missingAllocatorSettings) and the guard
 * set; what `firn artifact` re-executes itself with and what the artifact benchmark is started with.
 *
 * @param {NodeJS.ProcessEnv} env the environment to complete (not modified)
 * @returns {NodeJS.ProcessEnv}
 */
export function allocatorEnv(env) {
  if (env[ALLOCATOR_ESCAPE] === 'default') return { ...env };
  return { ...env, ...missingAllocatorSettings(env), [ALLOCATOR_GUARD]: '1' };
}

/**
 * The allocator settings in effect for this process as a one-line description, and whether they
 * are exactly those `firn artifact` runs with (each setting at our value, or deliberately left to
 * the user's own value by the same rules).
 *
 * @param {NodeJS.ProcessEnv} env this process's environment
 * @returns {{ line: string, asFirnArtifact: boolean, settings: Record<string, string> }}
 */
export function describeAllocator(env) {
  /** @type {Record<string, string>} */
  const settings = {};
  for (const name of Object.keys(ALLOCATOR_SETTINGS)) {
    const v = env[name];
    if (v !== undefined) settings[name] = v;
  }
  if (env.GLIBC_TUNABLES !== undefined) settings.GLIBC_TUNABLES = env.GLIBC_TUNABLES;
  const shown = Object.entries(settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  // `firn artifact` adds exactly the missing settings; none missing means it would run like this.
  const asFirnArtifact = Object.keys(missingAllocatorSettings(env)).length === 0;
  return { line: shown === '' ? 'glibc defaults' : shown, asFirnArtifact, settings };
}

/** True when this Node runs on glibc (musl and other platforms ignore MALLOC_* variables). */
function onGlibc() {
  try {
    const report = /** @type {{ header?: { glibcVersionRuntime?: string } } | undefined} */ (
      process.report?.getReport()
    );
    return typeof report?.header?.glibcVersionRuntime === 'string';
  } catch {
    return false;
  }
}

/**
 * Re-execute this Node process once with the allocator settings added to its environment, when
 * they are missing and would take effect (glibc reads them only at start), and the HEAP_FLAGS the
 * user did not give added to its Node options (they ride along: they alone never re-execute). The parent then only
 * waits: stdio is inherited, SIGINT/SIGTERM/SIGHUP it receives are passed to the child, and it
 * ends as the child ended (same exit code, or the same signal). Returns false without doing
 * anything when no re-execution is needed or possible: the guard variable is set (we are the
 * child, so this can never loop), FIRN_ALLOCATOR=default, every setting is already given by the
 * user, or the C library is not glibc. Otherwise never returns (the process exits with the child).
 *
 * @returns {Promise<boolean>} false when the caller should go on in this process
 */
export async function reexecWithAllocator() {
  if (process.env[ALLOCATOR_GUARD] !== undefined) return false;
  if (Object.keys(missingAllocatorSettings(process.env)).length === 0) return false;
  if (!onGlibc()) return false;
  const child = spawn(
    process.execPath,
    [...process.execArgv, ...missingHeapFlags(process.execArgv, process.env), ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: allocatorEnv(process.env),
    },
  );
  const signals = /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP']);
  /** @param {NodeJS.Signals} s */
  const forward = (s) => {
    try {
      child.kill(s);
    } catch {
      // the child is already gone; its exit ends this process
    }
  };
  for (const s of signals) process.on(s, forward);
  /** @type {[number | null, NodeJS.Signals | null] | undefined} */
  const ended = await new Promise((resolve) => {
    // Node could not be started again (it always can, short of resources): go on without.
    child.once('error', () => resolve(undefined));
    child.once('exit', (c, s) => resolve([c, s]));
  });
  for (const s of signals) process.off(s, forward);
  if (ended === undefined) return false;
  const [code, signal] = ended;
  if (signal !== null) {
    // End the same way: with no handler left, the signal's default action ends this process.
    process.kill(process.pid, signal);
    // A signal whose default action does not end a process: say so by the shell's convention.
    await new Promise((r) => setTimeout(r, 100));
    process.exit(128 + (constants.signals[signal] ?? 0));
  }
  process.exit(code ?? 1);
}
