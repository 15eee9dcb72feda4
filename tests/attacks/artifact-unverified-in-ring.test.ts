import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cipherPool, cipherPoolSettings } from '../../packages/crypto/src/artifact/cipherPool.ts';
import { openArtifactStream, sealArtifact } from '../../packages/crypto/src/artifact/index.ts';

// Open on the cipher threads (decision 1370) decrypts each chunk straight into its slot of the
// stream's shared output ring and checks the tag afterwards. A piece handed to the consumer is a
// view of that same SharedArrayBuffer, so while the consumer holds (within the view contract) the
// first verified chunk, it can watch a tampered later chunk's plaintext appear in the ring before
// the thread finds the tag wrong and zeroes it. Promise: nothing of a chunk is released before its
// tag verified, and nothing after a bad chunk at all.

const MiB = 1024 * 1024;
const saved = { ...cipherPoolSettings };
const CHUNK = 2 * MiB;
const CHUNKS = 4;
const BAD = 3;

beforeAll(async () => {
  Object.assign(cipherPoolSettings, { enabled: true, threads: 1, fromChunk: 0, slice: 16 * 1024 });
  await cipherPool.started();
});
afterAll(() => {
  Object.assign(cipherPoolSettings, saved);
});

describe('artifact open on the cipher threads: unverified plaintext', () => {
  it("a consumer holding chunk 0 never sees a tampered chunk's plaintext", async () => {
    const pt = new Uint8Array(CHUNK * CHUNKS);
    for (let c = 0; c < CHUNKS; c++) pt.fill(0x40 + c, c * CHUNK, (c + 1) * CHUNK);
    const dataKey = new Uint8Array(randomBytes(32));
    const sealed = await sealArtifact(pt, { recipients: [], dataKey, contentType: 'a/b', chunkSize: CHUNK });
    const headerBytes = sealed.length - CHUNKS * (CHUNK + 16);
    const bad = sealed.slice();
    bad[headerBytes + (BAD + 1) * (CHUNK + 16) - 1]! ^= 1; // the last byte of chunk BAD's tag
    async function* one() {
      yield bad;
    }
    let seen = false;
    let polled = false;
    try {
      for await (const p of openArtifactStream(one(), { dataKey })) {
        if (polled) continue;
        polled = true;
        // Chunk 0's first piece: look (bounded, 300 ms) at what else its buffer shows.
        const mem = new Uint8Array(p.buffer);
        const want = 0x40 + BAD;
        const t0 = Date.now();
        while (!seen && Date.now() - t0 < 300) {
          for (let o = 0; o + 16 * 1024 <= mem.length; o += 16 * 1024)
            if (mem[o] === want && mem[o + 100] === want && mem[o + 1000] === want) {
              seen = true;
              break;
            }
        }
      }
    } catch {
      // E_ARTIFACT_TAMPERED is expected; what matters is what was visible before it.
    }
    expect(polled).toBe(true);
    expect(seen, "the tampered chunk's plaintext was readable through a released piece").toBe(false);
  });
});
