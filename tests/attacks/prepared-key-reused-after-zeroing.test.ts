import { describe, expect, it } from 'vitest';
import { openArtifact, prepareArtifactKey, sealArtifact } from '../../packages/crypto/src/artifact/index.ts';
import { generateKemKeyPair } from '../../packages/crypto/src/hpke.ts';

// A prepared data key serves one artifact: after it the key is zeroed and `used` is set. `used`
// is a plain, writable field of a plain object, so a caller that "retries" with the same
// prepared key (resetting `used`, or a spread copy of the object) gets an artifact sealed under
// the ALL-ZERO data key: anyone can read it, while its header still carries the real wraps.
describe('a prepared data key used again after it was zeroed', () => {
  const secret = new TextEncoder().encode('the requester secret input');

  it('is refused when `used` is reset, never seals under an all-zero key', async () => {
    const kem = await generateKemKeyPair();
    const prepared = await prepareArtifactKey([kem.publicKey]);
    const opts = { recipients: [kem.publicKey], contentType: 'application/octet-stream' };
    await sealArtifact(secret, { ...opts, prepared });
    prepared.used = false;
    const second = await sealArtifact(secret, { ...opts, prepared }).catch((e: unknown) => e);
    if (second instanceof Uint8Array) {
      // The attack: the second artifact opens with a key of 32 zero bytes.
      const leaked = await openArtifact(second, { dataKey: new Uint8Array(32) }).catch(() => undefined);
      expect(leaked === undefined ? 'not readable' : Buffer.from(leaked).toString()).toBe('not readable');
    }
    expect(second).toBeInstanceOf(Error);
  });

  it('is refused when a copy of the used prepared key is given', async () => {
    const kem = await generateKemKeyPair();
    const prepared = await prepareArtifactKey([kem.publicKey]);
    const copy = { ...prepared };
    const opts = { recipients: [kem.publicKey], contentType: 'application/octet-stream' };
    await sealArtifact(secret, { ...opts, prepared });
    await expect(sealArtifact(secret, { ...opts, prepared: copy })).rejects.toThrow(/prepared/);
  });
});
