/**
 * Sealed-artifact throughput against raw node:crypto AES-256-GCM over the same bytes, in one run.
 * Both sides encrypt the same total in chunks of the same size; the artifact side also pays for the
 * streaming reader, the header, the HPKE key wrap, and (for open) the chunk bookkeeping.
 *
 * Run: npx tsx bench/artifact.ts [--mib N] [--chunk-kib N]
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { generateKemKeyPair, openArtifactStream, sealArtifactStream } from '@firn/crypto';

export interface ArtifactBenchResult {
  mib: number;
  chunkKiB: number;
  rawSealMiBps: number;
  rawOpenMiBps: number;
  sealMiBps: number;
  openMiBps: number;
  /** Artifact throughput divided by raw AES-GCM throughput (1 = no overhead). */
  sealRatio: number;
  openRatio: number;
}

const MiB = 1024 * 1024;

async function* source(pool: Uint8Array, total: number, piece: number): AsyncIterable<Uint8Array> {
  for (let o = 0; o < total; o += piece) yield pool.subarray(0, Math.min(piece, total - o));
}

export async function run(opts: { mib?: number; chunkKiB?: number } = {}): Promise<ArtifactBenchResult> {
  const mib = opts.mib ?? 256;
  const chunkKiB = opts.chunkKiB ?? 1024;
  const total = mib * MiB;
  const chunk = chunkKiB * 1024;
  const pool = new Uint8Array(randomBytes(chunk));
  const key = new Uint8Array(randomBytes(32));
  const aad = new Uint8Array(randomBytes(32));

  // Raw reference: one cipher object per chunk, like the artifact code, and nothing else.
  const rawCts: Uint8Array[] = [];
  let t = performance.now();
  for (let o = 0, i = 0; o < total; o += chunk, i++) {
    const iv = Buffer.alloc(12);
    iv.writeUInt32BE(i, 7);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(aad);
    const ct = c.update(pool.subarray(0, Math.min(chunk, total - o)));
    c.final();
    const tag = c.getAuthTag();
    rawCts.push(ct, tag);
  }
  const rawSeal = (performance.now() - t) / 1000;
  t = performance.now();
  for (let i = 0; 2 * i < rawCts.length; i++) {
    const iv = Buffer.alloc(12);
    iv.writeUInt32BE(i, 7);
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(aad);
    d.setAuthTag(rawCts[2 * i + 1]!);
    d.update(rawCts[2 * i]!);
    d.final();
  }
  const rawOpen = (performance.now() - t) / 1000;

  const kem = await generateKemKeyPair();
  const sealed: Uint8Array[] = [];
  let sealedBytes = 0;
  t = performance.now();
  for await (const p of sealArtifactStream(source(pool, total, chunk), {
    recipients: [kem.publicKey],
    contentType: 'application/octet-stream',
    chunkSize: chunk,
  })) {
    sealedBytes += p.length;
    // Kept in memory so the open pass reads from memory too, like the raw reference.
    sealed.push(p);
  }
  const seal = (performance.now() - t) / 1000;

  t = performance.now();
  let out = 0;
  async function* replay() {
    for (const p of sealed) yield p;
  }
  for await (const p of openArtifactStream(replay(), { kemPrivateKey: kem.privateKey })) out += p.length;
  const open = (performance.now() - t) / 1000;
  if (out !== total || sealedBytes <= total) throw new Error('artifact bench: size mismatch');

  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    mib,
    chunkKiB,
    rawSealMiBps: r(mib / rawSeal),
    rawOpenMiBps: r(mib / rawOpen),
    sealMiBps: r(mib / seal),
    openMiBps: r(mib / open),
    sealRatio: Math.round((rawSeal / seal) * 100) / 100,
    openRatio: Math.round((rawOpen / open) * 100) / 100,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const mib = arg('--mib');
  const chunkKiB = arg('--chunk-kib');
  const res = await run({ ...(mib ? { mib } : {}), ...(chunkKiB ? { chunkKiB } : {}) });
  console.log(JSON.stringify(res, null, 2));
}
