import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openArtifactStream, sealArtifact } from '../../packages/crypto/src/artifact/index.ts';

// Attack (rogue store or relay dribbling bytes, hostile dataset owner): the chunk cipher loops
// take a chunk as the source's own pieces and feed each one to AES-GCM and on to the consumer
// (decision 1260). A source that delivers its bytes one at a time (a network peer sending tiny
// segments) makes each chunk a list of one-byte pieces: one cipher call, one output buffer and one
// async yield per byte, an O(n) array shift per piece, and memory of about 500 bytes per byte of
// chunk. Promise: memory stays at a few chunks whatever the input (size, claimed chunk size, how
// it is cut), and opening stays linear.
const CHUNK = 256 * 1024;
const rssMiB = () => process.memoryUsage().rss / 2 ** 20;
async function* dribble(b: Uint8Array) {
  for (let o = 0; o < b.length; o++) yield b.subarray(o, o + 1);
}

describe('attack: a source that yields one byte at a time', () => {
  it('opening a 256 KiB artifact cut into 1-byte pieces stays fast and within a few chunks of memory', async () => {
    const dataKey = new Uint8Array(randomBytes(32));
    const plain = new Uint8Array(randomBytes(CHUNK));
    const sealed = await sealArtifact(plain, { recipients: [], dataKey, contentType: 'x', chunkSize: CHUNK });
    const base = rssMiB();
    let peak = 0;
    let n = 0;
    const t0 = Date.now();
    let slow = false;
    for await (const p of openArtifactStream(dribble(sealed), { dataKey })) {
      n += p.length;
      peak = Math.max(peak, rssMiB() - base);
      if (Date.now() - t0 > 15_000) {
        slow = true;
        break;
      }
    }
    peak = Math.max(peak, rssMiB() - base);
    expect(slow, 'opening took over 15 s').toBe(false);
    expect(n).toBe(CHUNK);
    // A few 256 KiB chunks, with room for the collector's slack.
    expect(peak).toBeLessThan(48);
  }, 60_000);
});
