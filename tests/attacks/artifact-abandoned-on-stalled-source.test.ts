import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';

// Decision 1531: "Everything from the moment a data key exists ... runs inside one try, whose
// finally zeroes the key: ... a consumer that stops early." A consumer stops early with
// `break`/`destroy()` while the generator is awaiting its SOURCE (a network upload that stalls,
// a peer that stops sending). An async generator's return() waits for the pending next(), so
// the finally never runs while the source is stalled: the data key stays in memory, unzeroed,
// for as long as the source hangs (for ever for a source that never ends), after the consumer
// has long gone.

const seen = vi.hoisted(() => ({ keys: [] as Uint8Array[] }));
vi.mock('../../packages/crypto/src/artifact/artifactHeader.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../packages/crypto/src/artifact/artifactHeader.ts')>();
  return {
    ...real,
    keyCommitmentOf: (k: Uint8Array) => {
      seen.keys.push(k);
      return real.keyCommitmentOf(k);
    },
  };
});
const { sealArtifactStream } = await import('../../packages/crypto/src/artifact/sealArtifactStream.ts');
const { generateKemKeyPair } = await import('../../packages/crypto/src/hpke.ts');

afterEach(() => {
  seen.keys.length = 0;
});

/** A source that sends a little, then stalls (until `release`), like a hung upload. */
function stallingSource() {
  let release!: () => void;
  const stalled = new Promise<void>((r) => (release = r));
  async function* src() {
    yield new Uint8Array(10_000);
    await stalled;
  }
  return { src: src(), release };
}

describe('a sealing stream its consumer abandons while the source is stalled', () => {
  it('destroy(): the drawn data key is zeroed promptly, not when the source moves again', async () => {
    const kem = await generateKemKeyPair();
    const { src, release } = stallingSource();
    const r = Readable.from(
      sealArtifactStream(src, { recipients: [kem.publicKey], contentType: 'x/y', chunkSize: 4096 }),
    );
    // Header and the first two chunks, then the generator waits on the stalled source.
    await new Promise<void>((ok) => {
      let n = 0;
      r.on('data', () => {
        if (++n === 3) {
          r.pause();
          ok();
        }
      });
    });
    r.destroy();
    await new Promise((ok) => setTimeout(ok, 200));
    const key = seen.keys[0]!;
    const zeroedWhileStalled = key.every((b) => b === 0);
    release();
    expect(zeroedWhileStalled).toBe(true);
  });

  it('return() on the iterator (for-await break) while a next() waits on the source: zeroed promptly', async () => {
    const kem = await generateKemKeyPair();
    const { src, release } = stallingSource();
    const it = sealArtifactStream(src, { recipients: [kem.publicKey], contentType: 'x/y', chunkSize: 4096 })[
      Symbol.asyncIterator
    ]();
    for (let i = 0; i < 3; i++) await it.next();
    // A consumer with a read timeout: asks for the next piece, gives up, ends the iteration.
    void it.next().catch(() => undefined);
    void it.return?.(undefined).catch(() => undefined);
    await new Promise((ok) => setTimeout(ok, 200));
    const zeroedWhileStalled = seen.keys[0]!.every((b) => b === 0);
    release();
    expect(zeroedWhileStalled).toBe(true);
  });
});
