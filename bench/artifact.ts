/**
 * Sealed-artifact throughput against `openssl speed -evp aes-256-gcm`, in one run.
 *
 * Each round runs, back to back: openssl speed (wall-clock, `-elapsed`, one core, blocks of the
 * artifact chunk size), firn seal of the whole input, firn open of it, and node:crypto's
 * AES-256-GCM on one thread over the same chunks (for reference). The ratios are taken per round
 * and the median round is reported, so load from other processes hits both sides alike. The
 * artifact side pays for everything a caller pays: the streaming reader, the header, the HPKE key
 * wrap, per-chunk nonces and tags, and (open) the chunk bookkeeping. When openssl is not on PATH
 * the benchmark says so and the openssl ratios are NaN (missed).
 *
 * Run: node packages/cli/bin/run-ts.mjs bench/artifact.ts [--mib N] [--chunk-kib N] [--rounds N]
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { generateKemKeyPair, openArtifactStream, sealArtifactStream } from '@firn/crypto';
import { reportBench } from './report.ts';

const MiB = 1024 * 1024;

// A full collection before each timed section, so no side pays for the garbage of the one before.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** openssl's AES-256-GCM throughput over `seconds`, in MiB/s; undefined when openssl is absent. */
function opensslSpeed(blockBytes: number, elapsed: boolean, seconds = 1): number | undefined {
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
  // The table's last line: "AES-256-GCM  4084016.27k" (thousands of bytes per second).
  const m = /AES-256-GCM\s+([\d.]+)k\s*$/m.exec(r.stdout);
  return m === null ? undefined : (Number(m[1]) * 1000) / MiB;
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
  nodeOneThreadMiBps: number;
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
  const opensslCpuMiBps = openssl === undefined ? undefined : opensslSpeed(chunk, false);

  // Seal output is consumed and dropped (as when written out); open reads an artifact sealed
  // once beforehand and kept in memory, like the raw reference reads its input from memory.
  const sealTo = async (keep: Uint8Array[] | undefined): Promise<number> => {
    let bytes = 0;
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
    return (performance.now() - t) / 1000;
  };
  const sealedInput: Uint8Array[] = [];
  await sealTo(sealedInput);
  const openOnce = async (sealed: Uint8Array[]): Promise<number> => {
    async function* replay() {
      for (const p of sealed) yield p;
    }
    let out = 0;
    const t = performance.now();
    for await (const p of openArtifactStream(replay(), { kemPrivateKey: kem.privateKey })) out += p.length;
    const s = (performance.now() - t) / 1000;
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
    gc();
    const ossl = openssl === undefined ? undefined : opensslSpeed(chunk, true);
    gc();
    const s = await sealTo(undefined);
    gc();
    const o = await openOnce(sealedInput);
    gc();
    const n = nodeOnce();
    const round: ArtifactRound = {
      sealMiBps: r1(mib / s),
      openMiBps: r1(mib / o),
      nodeOneThreadMiBps: r1(mib / n),
    };
    if (ossl !== undefined) {
      round.opensslMiBps = r1(ossl);
      round.sealVsOpenssl = r2(mib / s / ossl);
      round.openVsOpenssl = r2(mib / o / ossl);
    }
    all.push(round);
  }
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
  for (const [i, r] of res.rounds.entries())
    console.log(
      `  round ${i + 1}: openssl ${r.opensslMiBps ?? '-'} MiB/s, seal ${r.sealMiBps}, open ${r.openMiBps}, node:crypto one thread ${r.nodeOneThreadMiBps} MiB/s`,
    );
  console.log(
    `  median: seal ${m.sealMiBps} MiB/s (${m.sealVsOpenssl ?? '-'}x openssl), open ${m.openMiBps} MiB/s (${m.openVsOpenssl ?? '-'}x openssl); openssl by CPU time (its default figure) ${res.opensslCpuTimeMiBps ?? '-'} MiB/s`,
  );
  reportBench(
    'artifact',
    res,
    [
      { name: 'artifact_seal_vs_openssl', value: m.sealVsOpenssl ?? Number.NaN, cmp: '>=', goal: 0.5 },
      { name: 'artifact_open_vs_openssl', value: m.openVsOpenssl ?? Number.NaN, cmp: '>=', goal: 0.5 },
    ],
    { loadBefore },
  );
}
