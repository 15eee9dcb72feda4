import { randomBytes } from 'node:crypto';
import { isFirnError } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type ChunkRing,
  cipherPool,
  cipherPoolSettings,
} from '../../packages/crypto/src/artifact/cipherPool.ts';
import { openArtifactStream, sealArtifact } from '../../packages/crypto/src/artifact/index.ts';

// Open with the cipher threads (decision 1370) hands out views of a per-stream shared output ring.
// Promises: a tampered artifact releases nothing after the bad chunk, and no plaintext is left in
// shared memory once the stream has failed. Here chunk 4 is tampered: chunks 5.. are decrypted on
// the threads (read ahead) but must never be reachable, neither through the ring the stream leaves
// behind nor through the `.buffer` of a piece the stream did release.

const KiB = 1024;
const saved = { ...cipherPoolSettings };
const CHUNK = 64 * KiB;
const CHUNKS = 10;
const BAD = 4;

beforeAll(async () => {
  Object.assign(cipherPoolSettings, { enabled: true, threads: 1, fromChunk: 0 });
  await cipherPool.started();
});
afterAll(() => {
  Object.assign(cipherPoolSettings, saved);
  vi.restoreAllMocks();
});

/** Chunk c's plaintext: every byte 0x10 + c (a pattern nothing else in the ring has). */
function plaintext(): Uint8Array {
  const pt = new Uint8Array(CHUNK * CHUNKS);
  for (let c = 0; c < CHUNKS; c++) pt.fill(0x10 + c, c * CHUNK, (c + 1) * CHUNK);
  return pt;
}

/** The pattern of plaintext() sealed in CHUNK-sized chunks under a fresh data key (no recipient). */
async function sealedPattern(): Promise<{ dataKey: Uint8Array; sealed: Uint8Array }> {
  const dataKey = new Uint8Array(randomBytes(32));
  const sealed = await sealArtifact(plaintext(), {
    recipients: [],
    dataKey,
    contentType: 'a/b',
    chunkSize: CHUNK,
  });
  return { dataKey, sealed };
}

/** Whether `mem` holds a run of 4 KiB of chunk c's pattern. */
function holdsChunk(mem: Uint8Array, c: number): boolean {
  const want = 0x10 + c;
  let run = 0;
  for (let i = 0; i < mem.length; i++) {
    run = mem[i] === want ? run + 1 : 0;
    if (run >= 4 * KiB) return true;
  }
  return false;
}

describe('artifact open on the cipher threads: nothing after a bad chunk stays reachable', () => {
  it('a tampered chunk leaves no later plaintext in the ring or behind a released piece', async () => {
    const { dataKey, sealed } = await sealedPattern();
    // Tamper with chunk BAD's tag (header first, then 64 KiB + 16 per chunk).
    const headerBytes = sealed.length - CHUNKS * (CHUNK + 16);
    const bad = sealed.slice();
    bad[headerBytes + (BAD + 1) * (CHUNK + 16) - 1]! ^= 1;

    const rings: ChunkRing[] = [];
    const spy = vi.spyOn(cipherPool, 'newRing').mockImplementation((slots, slotBytes) => {
      const r = realNewRing(slots, slotBytes);
      rings.push(r);
      return r;
    });
    const released: Uint8Array[] = [];
    let code = 'ok';
    try {
      async function* one() {
        yield bad;
      }
      for await (const p of openArtifactStream(one(), { dataKey })) released.push(p);
    } catch (e) {
      code = isFirnError(e) ? e.code : `untyped: ${String(e)}`;
    }
    spy.mockRestore();
    expect(code).toBe('E_ARTIFACT_TAMPERED');
    expect(rings.length).toBe(1);
    expect(cipherPool.chunks).toBeGreaterThan(0);
    // Released: chunks 0..BAD-1 only.
    const seen = released.reduce((a, p) => a + p.length, 0);
    expect(seen).toBe(BAD * CHUNK);
    const ring = rings[0]!;
    // What a consumer can reach from a piece it was given (every view shares the ring's buffer).
    const behind = released.map((p) => new Uint8Array(p.buffer));
    for (let c = BAD + 1; c < CHUNKS; c++) {
      for (const out of ring.outs)
        expect(holdsChunk(out, c), `chunk ${c} plaintext left in the shared output ring`).toBe(false);
      for (const m of behind)
        expect(holdsChunk(m, c), `chunk ${c} plaintext reachable through a released piece`).toBe(false);
    }
  });

  it('a piece handed out does not reach chunks not yet released (its buffer is the whole ring)', async () => {
    const { dataKey, sealed } = await sealedPattern();
    async function* one() {
      yield sealed;
    }
    let leaked = -1;
    for await (const p of openArtifactStream(one(), { dataKey })) {
      // Holding the first piece of chunk 0, give the threads time to finish the read-ahead (bounded).
      const mem = new Uint8Array(p.buffer);
      for (let i = 0; i < 50 && leaked < 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
        for (let c = 1; c < CHUNKS; c++) if (holdsChunk(mem, c)) leaked = c;
      }
      break;
    }
    expect(leaked, `chunk ${leaked} plaintext reachable before it was released`).toBe(-1);
  });
});

const realNewRing = cipherPool.newRing.bind(cipherPool);
