import { randomBytes } from 'node:crypto';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { openArtifactStream, sealArtifact } from '../../packages/crypto/src/artifact/index.ts';

// Open releases a chunk's plaintext only after that chunk's tag verified, and nothing of a bad
// chunk or after it. Open decrypts a chunk before it knows whether its tag holds, so that
// unverified plaintext must never be reachable by the consumer, not even through the `.buffer` of
// a piece it was given: each piece is its own buffer (decision 1430; the shared output rings of
// the cipher threads, decision 1370, failed exactly this and were removed). Chunk c's plaintext is
// every byte 0x10 + c, a pattern nothing else holds.

const KiB = 1024;
const CHUNK = 64 * KiB;
const CHUNKS = 10;
const BAD = 4;

async function sealedPattern(): Promise<{ dataKey: Uint8Array; sealed: Uint8Array }> {
  const pt = new Uint8Array(CHUNK * CHUNKS);
  for (let c = 0; c < CHUNKS; c++) pt.fill(0x10 + c, c * CHUNK, (c + 1) * CHUNK);
  const dataKey = new Uint8Array(randomBytes(32));
  const sealed = await sealArtifact(pt, { recipients: [], dataKey, contentType: 'a/b', chunkSize: CHUNK });
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

/** Everything a consumer holding `p` can read: the whole memory behind it. */
const behind = (p: Uint8Array) => new Uint8Array(p.buffer);

async function* one(bytes: Uint8Array) {
  yield bytes;
}

describe('artifact open: unverified plaintext is never reachable', () => {
  it("a tampered chunk releases only the chunks before it, and neither its plaintext nor a later chunk's is behind any released piece", async () => {
    const { dataKey, sealed } = await sealedPattern();
    const bad = sealed.slice();
    // The last byte of chunk BAD's tag (the header first, then 64 KiB + 16 per chunk).
    bad[sealed.length - CHUNKS * (CHUNK + 16) + (BAD + 1) * (CHUNK + 16) - 1]! ^= 1;
    const released: Uint8Array[] = [];
    let code = 'ok';
    try {
      for await (const p of openArtifactStream(one(bad), { dataKey })) {
        released.push(p);
        // While the stream runs: nothing held shows the bad chunk or anything after it.
        for (const q of released)
          for (let c = BAD; c < CHUNKS; c++)
            expect(holdsChunk(behind(q), c), `chunk ${c} behind a released piece`).toBe(false);
      }
    } catch (e) {
      code = isFirnError(e) ? e.code : `untyped: ${String(e)}`;
    }
    expect(code).toBe('E_ARTIFACT_TAMPERED');
    expect(released.reduce((n, p) => n + p.length, 0)).toBe(BAD * CHUNK);
    // After the failure (open decrypted chunk BAD before its tag failed).
    for (const q of released)
      for (let c = BAD; c < CHUNKS; c++)
        expect(holdsChunk(behind(q), c), `chunk ${c} behind a released piece after the failure`).toBe(false);
  });

  it('a piece held while the stream goes on never reaches a chunk not yet released', async () => {
    const { dataKey, sealed } = await sealedPattern();
    const held: Uint8Array[] = [];
    let releasedBytes = 0;
    for await (const p of openArtifactStream(one(sealed), { dataKey })) {
      held.push(p);
      releasedBytes += p.length;
      // Chunks whose first byte was not released yet must not show behind anything held.
      const firstUnreleased = Math.ceil(releasedBytes / CHUNK);
      for (const q of held)
        for (let c = firstUnreleased; c < CHUNKS; c++)
          expect(holdsChunk(behind(q), c), `chunk ${c} reachable before its release`).toBe(false);
    }
    expect(releasedBytes).toBe(CHUNK * CHUNKS);
  });
});
