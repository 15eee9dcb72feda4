import { createHash, randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { generateKemKeyPair } from '../hpke.ts';
import { openArtifactStream, sealArtifactStream } from './index.ts';

const MiB = 1024 * 1024;
const TOTAL = Number(process.env.FIRN_BIG_MIB ?? 256) * MiB;

// V8 only collects dead Buffers once about 64 MiB of external memory has piled up, so without a
// collection the RSS peak mostly measures that threshold. Forcing a GC every 4 MiB of output makes the
// figure about what the code keeps alive plus the garbage of a few chunks (~4 copies per chunk).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// Measures resident memory of the whole test process, so it can only show that nothing holds the
// stream; it does not bound the allocator's own slack, and it does not cover multi-GB inputs.
describe('sealed artifacts: streaming in constant memory', () => {
  it(`seals and opens ${TOTAL / MiB} MiB generated on the fly with small RSS growth`, async () => {
    const k = await generateKemKeyPair();
    // A fixed 8 MiB random pool read at shifting offsets: input differs along the stream, and the
    // source itself allocates nothing, so the RSS figure is about the artifact code.
    const pool = new Uint8Array(randomBytes(8 * MiB));
    const inHash = createHash('sha256');
    let sealedBytes = 0;
    async function* source(): AsyncIterable<Uint8Array> {
      // Pieces of 1 MiB + 3 bytes so pieces never line up with chunks.
      const piece = MiB + 3;
      for (let o = 0, i = 0; o < TOTAL; o += piece, i++) {
        const n = Math.min(piece, TOTAL - o);
        const start = (i * 7919) % (pool.length - piece);
        const b = pool.subarray(start, start + n);
        inHash.update(b);
        yield b;
      }
    }
    async function* counted(it: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
      for await (const c of it) {
        sealedBytes += c.length;
        yield c;
      }
    }
    gc();
    const before = process.memoryUsage().rss;
    let peak = before;
    const outHash = createHash('sha256');
    let outBytes = 0;
    const t0 = performance.now();
    const sealed = sealArtifactStream(source(), {
      recipients: [k.publicKey],
      contentType: 'application/octet-stream',
    });
    for await (const pt of openArtifactStream(counted(sealed), { kemPrivateKey: k.privateKey })) {
      outHash.update(pt);
      outBytes += pt.length;
      if (outBytes % (4 * MiB) === 0) gc();
      const rss = process.memoryUsage().rss;
      if (rss > peak) peak = rss;
    }
    const seconds = (performance.now() - t0) / 1000;
    expect(outBytes).toBe(TOTAL);
    expect(outHash.digest('hex')).toBe(inHash.digest('hex'));
    expect(sealedBytes).toBeGreaterThan(TOTAL);
    const growth = (peak - before) / MiB;
    console.log(
      `sealed+opened ${TOTAL / MiB} MiB in ${seconds.toFixed(2)} s; peak RSS growth ${growth.toFixed(1)} MiB`,
    );
    expect(growth).toBeLessThan(64);
  });
});
