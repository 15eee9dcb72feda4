import { bytesToHex } from '@firn/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateKemKeyPair } from '../hpke.ts';
import { loadWycheproof } from '../wycheproof.ts';
import { isLowOrderX25519PublicKey } from '../x25519.ts';
import { openArtifact, prepareArtifactKey, sealArtifact, sealArtifactStream } from './index.ts';

// The test hook: every data key sealing uses passes through keyCommitmentOf (the header's key
// commitment) and each wrap through hpkeSeal; both are the real functions, observed, and hpkeSeal
// can be told to fail once (a recipient HPKE refuses).
const seen = vi.hoisted(() => ({ keys: [] as Uint8Array[], wraps: 0, failWrapAt: -1 }));
vi.mock('./artifactHeader.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('./artifactHeader.ts')>();
  return {
    ...real,
    keyCommitmentOf: (k: Uint8Array) => {
      seen.keys.push(k);
      return real.keyCommitmentOf(k);
    },
  };
});
vi.mock('../hpke.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../hpke.ts')>();
  return {
    ...real,
    hpkeSeal: (...a: Parameters<typeof real.hpkeSeal>) => {
      seen.keys.push(a[1]);
      if (seen.wraps++ === seen.failWrapAt) throw new Error('wrap refused');
      return real.hpkeSeal(...a);
    },
  };
});

afterEach(() => {
  seen.keys.length = 0;
  seen.wraps = 0;
  seen.failWrapAt = -1;
});

const zeroed = (k: Uint8Array) => k.length === 32 && k.every((b) => b === 0);
const h = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const wycheproof = loadWycheproof<{ curve: string }>('x25519_test.json');
const all = wycheproof.testGroups.flatMap((g) => g.tests) as unknown as {
  tcId: number;
  public: string;
  shared: string;
}[];
/** Every public key of the Wycheproof x25519 vectors whose shared secret is all zero (14 encodings). */
const lowOrder = [...new Set(all.filter((t) => /^0+$/.test(t.shared)).map((t) => t.public))].map(h);

describe('low-order X25519 recipient keys (RFC 9180 §7.1.4)', () => {
  it('isLowOrderX25519PublicKey agrees with every Wycheproof x25519 vector (zero shared secret ⇔ low order)', () => {
    expect(lowOrder.length).toBeGreaterThanOrEqual(12);
    for (const t of all)
      expect(isLowOrderX25519PublicKey(h(t.public)), `tc ${t.tcId}`).toBe(/^0+$/.test(t.shared));
  });

  it('a low-order recipient is refused by sealArtifact and prepareArtifactKey, by index, before any key is drawn', async () => {
    const good = (await generateKemKeyPair()).publicKey;
    for (const bad of lowOrder) {
      seen.keys.length = 0;
      await expect(
        sealArtifact(new Uint8Array(100).fill(7), { recipients: [good, bad], contentType: 'a/b' }),
      ).rejects.toMatchObject({
        code: 'E_INVALID_INPUT',
        message: expect.stringMatching(/recipient 1 .*low-order/),
      });
      await expect(prepareArtifactKey([bad, good])).rejects.toMatchObject({
        code: 'E_INVALID_INPUT',
        message: expect.stringMatching(/recipient 0 .*low-order/),
      });
      // Nothing was drawn, committed to or wrapped: the refusal came before any key existed.
      expect(seen.keys, bytesToHex(bad)).toEqual([]);
    }
  });

  it('a malformed recipient key is refused the same way', async () => {
    await expect(
      sealArtifact(new Uint8Array(1), { recipients: [new Uint8Array(31)], contentType: 'a/b' }),
    ).rejects.toMatchObject({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/recipient 0/) });
    expect(seen.keys).toEqual([]);
  });
});

describe('the data key is zeroed on every way out of sealArtifactStream', () => {
  async function* source(n: number) {
    for (let i = 0; i < n; i++) yield new Uint8Array(4096).fill(i);
  }

  it('a sink that throws mid-stream: the drawn key is zeroed', async () => {
    const kp = await generateKemKeyPair();
    let pieces = 0;
    await expect(
      (async () => {
        for await (const _ of sealArtifactStream(source(8), {
          recipients: [kp.publicKey],
          contentType: 'a/b',
          chunkSize: 4096,
        }))
          if (++pieces === 3) throw new Error('disk full');
      })(),
    ).rejects.toThrow('disk full');
    expect(seen.keys.length).toBeGreaterThan(0);
    for (const k of seen.keys) expect(zeroed(k)).toBe(true);
  });

  it('a recipient whose wrap fails after another was wrapped: the drawn key is zeroed', async () => {
    const a = await generateKemKeyPair();
    const b = await generateKemKeyPair();
    seen.failWrapAt = 1;
    await expect(
      sealArtifact(new Uint8Array(10), { recipients: [a.publicKey, b.publicKey], contentType: 'a/b' }),
    ).rejects.toThrow('wrap refused');
    expect(seen.keys.length).toBe(3);
    for (const k of seen.keys) expect(zeroed(k)).toBe(true);
  });

  it('a caller-held key: the copy sealing used is zeroed on a sink failure, the caller’s own key is left to the caller', async () => {
    const kp = await generateKemKeyPair();
    const dataKey = new Uint8Array(32).fill(9);
    await expect(
      (async () => {
        for await (const _ of sealArtifactStream(source(4), {
          recipients: [kp.publicKey],
          contentType: 'a/b',
          chunkSize: 4096,
          dataKey,
        }))
          throw new Error('sink closed');
      })(),
    ).rejects.toThrow('sink closed');
    expect(seen.keys.filter((k) => k !== dataKey).every(zeroed)).toBe(true);
    expect(seen.keys.some((k) => k === dataKey)).toBe(false);
    expect(dataKey[0]).toBe(9);
  });

  it('a prepared key: its copy and the prepared key are zeroed when the sink throws', async () => {
    const kp = await generateKemKeyPair();
    const prepared = await prepareArtifactKey([kp.publicKey]);
    seen.keys.length = 0;
    await expect(
      (async () => {
        let i = 0;
        for await (const _ of sealArtifactStream(source(8), {
          recipients: [kp.publicKey],
          contentType: 'a/b',
          chunkSize: 4096,
          prepared,
        }))
          if (++i === 2) throw new Error('peer gone');
      })(),
    ).rejects.toThrow('peer gone');
    expect(seen.keys.length).toBe(1);
    expect(zeroed(seen.keys[0]!)).toBe(true);
    expect(zeroed(prepared.dataKey)).toBe(true);
  });

  it('a seal that completes still opens (the hook changes nothing)', async () => {
    const kp = await generateKemKeyPair();
    const bytes = new Uint8Array(9000).fill(3);
    const sealed = await sealArtifact(bytes, {
      recipients: [kp.publicKey],
      contentType: 'a/b',
      chunkSize: 4096,
    });
    expect(Buffer.from(await openArtifact(sealed, { kemPrivateKey: kp.privateKey })).equals(bytes)).toBe(
      true,
    );
    for (const k of seen.keys) expect(zeroed(k)).toBe(true);
  });
});
