import { describe, expect, it, vi } from 'vitest';

// Observe the data key each HPKE wrap is given (the real hpkeSeal still runs).
const seen: Uint8Array[] = [];
vi.mock('../../packages/crypto/src/hpke.ts', async (orig) => {
  const real = (await orig()) as typeof import('../../packages/crypto/src/hpke.ts');
  return {
    ...real,
    hpkeSeal: (pk: Uint8Array, pt: Uint8Array, o: Parameters<typeof real.hpkeSeal>[2]) => {
      seen.push(pt);
      return real.hpkeSeal(pk, pt, o);
    },
  };
});

const { prepareArtifactKey } = await import('../../packages/crypto/src/artifact/sealArtifactStream.ts');
const { generateKemKeyPair } = await import('../../packages/crypto/src/hpke.ts');

describe('a prepared data key whose wrap fails', () => {
  it('is zeroed, not left in memory (a requester can name a low-order X25519 recipient)', async () => {
    // params["firn.recipients"] accepts any 32 bytes of hex; the all-zero point is low order.
    const good = (await generateKemKeyPair()).publicKey;
    const lowOrder = new Uint8Array(32);
    await expect(prepareArtifactKey([good, lowOrder])).rejects.toThrow();
    // Decision 1531: the low-order recipient is refused before a key is drawn, so no wrap runs;
    // and (decision 1480) any key drawn but not used is zeroed.
    for (const key of seen) expect(key.every((b) => b === 0)).toBe(true);
  });
});
