import { generateKemKeyPair, sealArtifact } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import { openSealedArtifact } from '../../apps/dashboard/src/openSealedArtifact.ts';

// The dashboard opens a requester's outputs in the page with its own opener (WebCrypto, @hpke/core,
// noble): it must open what @firn/crypto seals and refuse every alteration the reference opener refuses.
describe('dashboard sealed-artifact opener (browser side)', () => {
  const plaintext = new TextEncoder().encode(
    JSON.stringify({ history: Array.from({ length: 3000 }, (_, i) => ({ epoch: i, loss: 1 / (i + 1) })) }),
  );

  async function sealed(chunkSize = 4096, contentType = 'application/json') {
    const me = await generateKemKeyPair();
    const other = await generateKemKeyPair();
    const bytes = await sealArtifact(plaintext, {
      recipients: [other.publicKey, me.publicKey],
      contentType,
      chunkSize,
    });
    return { me, other, bytes };
  }

  it('opens a multi-chunk artifact sealed by @firn/crypto, byte-identical', async () => {
    const { me, bytes } = await sealed();
    const out = await openSealedArtifact(bytes, me.privateKey);
    expect(out.contentType).toBe('application/json');
    expect(Buffer.from(out.bytes).equals(Buffer.from(plaintext))).toBe(true);
  });

  it('refuses a key that is not a recipient (E_ARTIFACT_WRONG_KEY)', async () => {
    const { bytes } = await sealed();
    const stranger = await generateKemKeyPair();
    await expect(openSealedArtifact(bytes, stranger.privateKey)).rejects.toMatchObject({
      code: 'E_ARTIFACT_WRONG_KEY',
    });
  });

  it('refuses a flipped body byte, a flipped header byte and swapped chunks (E_ARTIFACT_TAMPERED)', async () => {
    const { me, bytes } = await sealed();
    const body = bytes.slice();
    body[body.length - 20]! ^= 1;
    await expect(openSealedArtifact(body, me.privateKey)).rejects.toMatchObject({
      code: 'E_ARTIFACT_TAMPERED',
    });
    const header = bytes.slice();
    header[16]! ^= 1; // nonce prefix: the header hash (associated data) changes
    await expect(openSealedArtifact(header, me.privateKey)).rejects.toMatchObject({
      code: 'E_ARTIFACT_TAMPERED',
    });
    const hlen = (bytes[8]! << 8) | bytes[9]!;
    const block = 4096 + 16;
    const swapped = bytes.slice();
    swapped.set(bytes.subarray(hlen + block, hlen + 2 * block), hlen);
    swapped.set(bytes.subarray(hlen, hlen + block), hlen + block);
    await expect(openSealedArtifact(swapped, me.privateKey)).rejects.toMatchObject({
      code: 'E_ARTIFACT_TAMPERED',
    });
  });

  it('refuses an artifact cut at a chunk boundary or inside the header (E_ARTIFACT_TRUNCATED)', async () => {
    const { me, bytes } = await sealed();
    const hlen = (bytes[8]! << 8) | bytes[9]!;
    await expect(openSealedArtifact(bytes.subarray(0, hlen + 4112), me.privateKey)).rejects.toMatchObject({
      code: 'E_ARTIFACT_TRUNCATED',
    });
    await expect(openSealedArtifact(bytes.subarray(0, 40), me.privateKey)).rejects.toMatchObject({
      code: 'E_ARTIFACT_TRUNCATED',
    });
  });

  it('refuses what is not a sealed artifact and what is over the size cap', async () => {
    const { me, bytes } = await sealed();
    await expect(
      openSealedArtifact(new TextEncoder().encode('{"not":"sealed"}'), me.privateKey),
    ).rejects.toMatchObject({
      code: 'E_ARTIFACT_FORMAT',
    });
    await expect(openSealedArtifact(bytes, me.privateKey, 1024)).rejects.toMatchObject({
      code: 'E_TOO_LARGE',
    });
  });
});
