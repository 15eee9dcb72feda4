/**
 * Sealed-artifact throughput against `openssl speed -evp aes-256-gcm`, in one run.
 *
 * Each round runs, back to back: openssl speed (wall-clock, `-elapsed`, one core, blocks of the
 * artifact chunk size), firn seal of the whole input, firn open of it, and node:crypto's
 * AES-256-GCM on one thread over the same chunks (for reference). The ratios are taken per round
 * and the median round is reported, so load from other processes hits both sides alike. The
 * artifact side pays for everything a caller pays: the streaming reader, the header, the HPKE key
 * wrap, per-chunk nonces and tags, and (open) the chunk bookkeeping. It runs sealArtifactStream
 * and openArtifactStream, the functions `firn artifact seal|open` stream files through (open reads
 * the sealed pieces as seal yielded them, 256 KiB each, the size the CLI reads a file in); the CLI
 * adds the file I/O and the artifact id's SHA-256. Each round also prints MiB per CPU second of
 * this process (all threads), next to openssl's CPU-time figure: not the goal, but what the code
 * costs when the machine is loaded and wall figures mostly measure the load. When openssl is not
 * on PATH the benchmark says so and the openssl ratios are NaN (missed).
 *
 * Chunks are ciphered as `firn artifact` ciphers them, inline on the calling thread (decision
 * 1430 removed the opt-in cipher threads of 1370); the per-CPU-second figures count every thread of
 * the process (V8's collector threads included).
 *
 * Run: node packages/cli/bin/run-ts.mjs bench/artifact.ts [--mib N] [--chunk-kib N] [--rounds N]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { generateKemKeyPair, openArtifactStream, sealArtifactStream } from '@firn/crypto';
import { describeAllocator, missingHeapFlags } from '../packages/cli/bin/allocator.mjs';
import { reportBench } from './report.ts';

const MiB = 1024 * 1024;

// No forced collection between sections: a full gc() shrank the heap and the allocator's arena
// before every section, so each one started on fresh pages (page faults) that a process sealing
// a file (`firn artifact seal`) does not see: 64 MiB seals measured 730-940 MiB per CPU second
// with it, 1220-1430 without, and 1790-1970 in a fresh process sealing once (decision 1260).
// Garbage a section leaves is paid by the next one, firn's included.

/**
 * Runs `openssl speed` for the rounds from one helper shell started before the warm-up, so this
 * process never forks while the rounds run. A fork (spawnSync included) write-protects every
 * private page of this process until the child has exec'd, and the next write to each of those
 * pages then takes a page fault: the section right after openssl (seal) paid 72-116 faults per MiB
 * against 0, about a fifth more CPU per MiB (decision 1430). `firn artifact seal` never forks while
 * it streams, so those faults were the harness's own. Everything else is as with spawnSync: openssl
 * runs with the same arguments (its -elapsed wall-clock figure, one core), and this process waits
 * for it blocked (polling the helper's answer file), not idle on its event loop.
 */
class OpensslRunner {
  private readonly dir = mkdtempSync(join(tmpdir(), 'firn-bench-openssl-'));
  private readonly child: ChildProcess;
  private requests = 0;
  private failed = false;

  constructor() {
    // One request per line on stdin: "<-elapsed|-> <seconds> <bytes> <answer file>". The answer is
    // openssl's output and its exit status, renamed into place once complete.
    const script = [
      'while read -r mode seconds bytes out; do',
      '  if [ "$mode" = "-elapsed" ]; then set -- -elapsed; else set --; fi',
      '  openssl speed "$@" -evp aes-256-gcm -seconds "$seconds" -bytes "$bytes" >"$out.part" 2>/dev/null',
      '  echo "@@status $?" >>"$out.part"',
      '  mv "$out.part" "$out"',
      'done',
    ].join('\n');
    this.child = spawn('sh', ['-c', script], { stdio: ['pipe', 'ignore', 'ignore'] });
    this.child.on('error', () => {
      this.failed = true;
    });
  }

  /** Resolves once the helper runs (or failed to start); call before the warm-up. */
  ready(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.pid !== undefined) resolve();
      this.child.once('spawn', () => resolve());
      this.child.once('error', () => resolve());
    });
  }

  /**
   * openssl's AES-256-GCM throughput over `seconds`, in MiB/s, waiting blocked like spawnSync;
   * undefined when openssl did not answer within `seconds` + 30 s or failed. Falls back to
   * spawnSync (a fork of this process) only when the helper could not be started.
   */
  speed(blockBytes: number, elapsed: boolean, seconds = 1): number | undefined {
    if (this.failed || this.child.stdin === null) return opensslSpeedForked(blockBytes, elapsed, seconds);
    const out = join(this.dir, `answer-${this.requests++}`);
    this.child.stdin.write(`${elapsed ? '-elapsed' : '-'} ${seconds} ${blockBytes} ${out}\n`);
    const deadline = Date.now() + (seconds + 30) * 1000;
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    while (!existsSync(out)) {
      if (Date.now() > deadline) return undefined;
      Atomics.wait(sleeper, 0, 0, 2);
    }
    const text = readFileSync(out, 'utf8');
    rmSync(out, { force: true });
    return /^@@status 0$/m.test(text) ? parseSpeed(text) : undefined;
  }

  close(): void {
    this.child.stdin?.end();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** openssl speed through spawnSync (forks this process); only when the helper shell is missing. */
function opensslSpeedForked(blockBytes: number, elapsed: boolean, seconds: number): number | undefined {
  const r = spawnSync(
    'openssl',
    [
      'speed',
      ...(elapsed ? ['-elapsed'] : []),
      '-evp',
      'aes-256-gcm',
      '-seconds',
      String(seconds),
      '-bytes',
      String(blockBytes),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  if (r.error !== undefined || r.status !== 0) return undefined;
  return parseSpeed(r.stdout);
}

/** The table's last line: "AES-256-GCM  4084016.27k" (thousands of bytes per second), in MiB/s. */
function parseSpeed(stdout: string): number | undefined {
  const m = /AES-256-GCM\s+([\d.]+)k\s*$/m.exec(stdout);
  return m === null ? undefined : (Number(m[1]) * 1000) / MiB;
}

/** Minor page faults of this process so far (/proc/self/stat field 10); undefined off Linux. */
function minorFaults(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const v = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function opensslVersion(): string | undefined {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return r.error === undefined && r.status === 0 ? r.stdout.trim() : undefined;
}

async function* source(pool: Uint8Array, total: number, piece: number): AsyncIterable<Uint8Array> {
  for (let o = 0; o < total; o += piece) yield pool.subarray(0, Math.min(piece, total - o));
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

export interface ArtifactRound {
  opensslMiBps?: number;
  sealMiBps: number;
  openMiBps: number;
  /** Per CPU second of this process (all threads): what a loaded machine does not lower. */
  sealCpuMiBps: number;
  openCpuMiBps: number;
  nodeOneThreadMiBps: number;
  /** Minor page faults per MiB sealed / opened (Linux only). */
  sealFaultsPerMiB?: number;
  openFaultsPerMiB?: number;
  sealVsOpenssl?: number;
  openVsOpenssl?: number;
}

export async function run(opts: { mib?: number; chunkKiB?: number; rounds?: number } = {}) {
  const mib = opts.mib ?? 128;
  const chunkKiB = opts.chunkKiB ?? 1024;
  const rounds = opts.rounds ?? 5;
  const total = mib * MiB;
  const chunk = chunkKiB * 1024;
  const pool = new Uint8Array(randomBytes(chunk));
  const key = new Uint8Array(randomBytes(32));
  const aad = new Uint8Array(randomBytes(32));
  const kem = await generateKemKeyPair();
  const openssl = opensslVersion();
  // Started before the warm-up: the one fork it costs this process is paid there.
  const runner = openssl === undefined ? undefined : new OpensslRunner();
  await runner?.ready();
  const opensslCpuMiBps = runner?.speed(chunk, false);

  // CPU seconds of the last seal or open, all of this process's threads (GC included).
  let lastCpu = 0;
  // Minor page faults of the last seal or open per MiB (Linux; undefined elsewhere): a warm path
  // takes about none, and a rise says where CPU went that is not the cipher's (decision 1430).
  let lastFaultsPerMiB: number | undefined;
  let faults0: number | undefined;
  const cpuSeconds = (c0: NodeJS.CpuUsage) => {
    const f = minorFaults();
    lastFaultsPerMiB = f === undefined || faults0 === undefined ? undefined : (f - faults0) / mib;
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1e6;
  };
  // Seal output is consumed and dropped (as when written out); open reads an artifact sealed
  // once beforehand and kept in memory, like the raw reference reads its input from memory.
  const sealTo = async (keep: Uint8Array[] | undefined): Promise<number> => {
    let bytes = 0;
    faults0 = minorFaults();
    const c0 = process.cpuUsage();
    const t = performance.now();
    for await (const p of sealArtifactStream(source(pool, total, chunk), {
      recipients: [kem.publicKey],
      contentType: 'application/octet-stream',
      chunkSize: chunk,
    })) {
      bytes += p.length;
      keep?.push(p);
    }
    if (bytes <= total) throw new Error('artifact bench: sealed size mismatch');
    lastCpu = cpuSeconds(c0);
    return (performance.now() - t) / 1000;
  };
  const sealedInput: Uint8Array[] = [];
  await sealTo(sealedInput);
  const openOnce = async (sealed: Uint8Array[]): Promise<number> => {
    async function* replay() {
      for (const p of sealed) yield p;
    }
    let out = 0;
    faults0 = minorFaults();
    const c0 = process.cpuUsage();
    const t = performance.now();
    for await (const p of openArtifactStream(replay(), { kemPrivateKey: kem.privateKey })) out += p.length;
    const s = (performance.now() - t) / 1000;
    lastCpu = cpuSeconds(c0);
    if (out !== total) throw new Error('artifact bench: size mismatch');
    return s;
  };
  const nodeOnce = (): number => {
    const t = performance.now();
    for (let o = 0, i = 0; o < total; o += chunk, i++) {
      const iv = Buffer.alloc(12);
      iv.writeUInt32BE(i, 7);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(aad);
      c.update(pool.subarray(0, Math.min(chunk, total - o)));
      c.final();
      c.getAuthTag();
    }
    return (performance.now() - t) / 1000;
  };

  // Warm-up: JIT, thread pool, key import paths.
  await sealTo(undefined);
  await openOnce(sealedInput);
  nodeOnce();

  const all: ArtifactRound[] = [];
  for (let i = 0; i < rounds; i++) {
    const ossl = runner?.speed(chunk, true);
    const s = await sealTo(undefined);
    const sCpu = lastCpu;
    const sFaults = lastFaultsPerMiB;
    const o = await openOnce(sealedInput);
    const oCpu = lastCpu;
    const oFaults = lastFaultsPerMiB;
    const n = nodeOnce();
    const round: ArtifactRound = {
      sealMiBps: r1(mib / s),
      openMiBps: r1(mib / o),
      sealCpuMiBps: r1(mib / sCpu),
      openCpuMiBps: r1(mib / oCpu),
      nodeOneThreadMiBps: r1(mib / n),
    };
    if (sFaults !== undefined) round.sealFaultsPerMiB = r1(sFaults);
    if (oFaults !== undefined) round.openFaultsPerMiB = r1(oFaults);
    if (ossl !== undefined) {
      round.opensslMiBps = r1(ossl);
      round.sealVsOpenssl = r2(mib / s / ossl);
      round.openVsOpenssl = r2(mib / o / ossl);
    }
    all.push(round);
  }
  runner?.close();
  const med = (f: (r: ArtifactRound) => number | undefined) => {
    const v = all.map(f).filter((x): x is number => x !== undefined);
    return v.length === 0 ? undefined : median(v);
  };
  return {
    mib,
    chunkKiB,
    rounds: all,
    cores: cpus().length,
    openssl: openssl ?? 'not found on PATH: openssl ratios not measured',
    opensslCpuTimeMiBps: opensslCpuMiBps === undefined ? undefined : r1(opensslCpuMiBps),
    median: {
      opensslMiBps: med((r) => r.opensslMiBps),
      sealMiBps: med((r) => r.sealMiBps),
      openMiBps: med((r) => r.openMiBps),
      sealCpuMiBps: med((r) => r.sealCpuMiBps),
      openCpuMiBps: med((r) => r.openCpuMiBps),
      nodeOneThreadMiBps: med((r) => r.nodeOneThreadMiBps),
      sealVsOpenssl: med((r) => r.sealVsOpenssl),
      openVsOpenssl: med((r) => r.openVsOpenssl),
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const mib = arg('--mib');
  const chunkKiB = arg('--chunk-kib');
  const rounds = arg('--rounds');
  const loadBefore = loadavg();
  const res = await run({
    ...(mib ? { mib } : {}),
    ...(chunkKiB ? { chunkKiB } : {}),
    ...(rounds ? { rounds } : {}),
  });
  const m = res.median;
  console.log(
    `sealed artifacts, ${res.mib} MiB in ${res.chunkKiB} KiB chunks, ${res.rounds.length} rounds, ${res.cores} cores, load average ${loadBefore.map((x) => x.toFixed(1)).join(' ')}`,
  );
  console.log(`  openssl: ${res.openssl}`);
  // glibc read these at this process's start; `npm run bench -- artifact` starts it with the
  // settings `firn artifact` runs with (packages/cli/bin/allocator.mjs, decision 1325).
  const alloc = describeAllocator(process.env);
  console.log(
    `  allocator: ${alloc.line} (${alloc.asFirnArtifact ? 'those of `firn artifact`' : 'NOT those of `firn artifact`: run it through `npm run bench -- artifact`'})`,
  );
  // V8 read these at this process's start, as `firn artifact` gets them (decision 1430).
  const heapMissing = missingHeapFlags(process.execArgv, process.env);
  console.log(
    `  V8 heap flags: ${process.execArgv.join(' ') || 'none'} (${heapMissing.length === 0 ? 'those of `firn artifact`' : `NOT those of \`firn artifact\`, which adds ${heapMissing.join(' ')}: run it through \`npm run bench -- artifact\``})`,
  );
  for (const [i, r] of res.rounds.entries())
    console.log(
      `  round ${i + 1}: openssl ${r.opensslMiBps ?? '-'} MiB/s, seal ${r.sealMiBps} (${r.sealCpuMiBps} per CPU s), open ${r.openMiBps} (${r.openCpuMiBps} per CPU s), page faults per MiB seal ${r.sealFaultsPerMiB ?? '-'} open ${r.openFaultsPerMiB ?? '-'}, node:crypto one thread ${r.nodeOneThreadMiBps} MiB/s`,
    );
  console.log(
    `  median: seal ${m.sealMiBps} MiB/s (${m.sealVsOpenssl ?? '-'}x openssl), open ${m.openMiBps} MiB/s (${m.openVsOpenssl ?? '-'}x openssl); openssl by CPU time (its default figure) ${res.opensslCpuTimeMiBps ?? '-'} MiB/s`,
  );
  // Not the goal (that is wall clock against openssl -elapsed), but on a loaded machine the wall
  // figures mostly measure the load: per CPU second says what the code itself costs.
  const cpuRatio = (x: number | undefined) =>
    x === undefined || res.opensslCpuTimeMiBps === undefined ? '-' : r2(x / res.opensslCpuTimeMiBps);
  console.log(
    `  per CPU second: seal ${m.sealCpuMiBps} MiB/s (${cpuRatio(m.sealCpuMiBps)}x openssl's CPU-time figure), open ${m.openCpuMiBps} MiB/s (${cpuRatio(m.openCpuMiBps)}x)`,
  );
  reportBench(
    'artifact',
    { ...res, allocator: alloc, nodeFlags: process.execArgv },
    [
      { name: 'artifact_seal_vs_openssl', value: m.sealVsOpenssl ?? Number.NaN, cmp: '>=', goal: 0.5 },
      { name: 'artifact_open_vs_openssl', value: m.openVsOpenssl ?? Number.NaN, cmp: '>=', goal: 0.5 },
    ],
    { loadBefore },
  );
}
