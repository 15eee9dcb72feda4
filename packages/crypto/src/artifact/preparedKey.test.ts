import { describe, expect, it } from 'vitest';
import { generateKemKeyPair } from '../hpke.ts';
import {
  discardArtifactKey,
  openArtifact,
  prepareArtifactKey,
  readArtifactHeader,
  sealArtifact,
} from './index.ts';

describe('prepared artifact data keys (wrapped before the bytes exist)', () => {
  it('an artifact sealed with a prepared key opens for every recipient and carries the prepared wraps', async () => {
    const a = await generateKemKeyPair();
    const b = await generateKemKeyPair();
    const prepared = await prepareArtifactKey([a.publicKey, b.publicKey]);
    const bytes = crypto.getRandomValues(new Uint8Array(5000));
    const sealed = await sealArtifact(bytes, {
      recipients: [a.publicKey, b.publicKey],
      contentType: 'application/octet-stream',
      prepared,
    });
    expect(prepared.used).toBe(true);
    expect(prepared.dataKey.every((x) => x === 0)).toBe(true);
    const header = readArtifactHeader(sealed);
    expect(Buffer.from(header.recipients[0]!.enc).equals(Buffer.from(prepared.wrapped[0]!.enc))).toBe(true);
    expect((await openArtifact(sealed, { kemPrivateKey: a.privateKey })).length).toBe(5000);
    expect(
      Buffer.from(await openArtifact(sealed, { kemPrivateKey: b.privateKey })).equals(Buffer.from(bytes)),
    ).toBe(true);
  });

  it('a prepared key serves one artifact: a second seal with it is refused (no data key reuse)', async () => {
    const a = await generateKemKeyPair();
    const prepared = await prepareArtifactKey([a.publicKey]);
    await sealArtifact(new Uint8Array(10), { recipients: [a.publicKey], contentType: 'a/b', prepared });
    await expect(
      sealArtifact(new Uint8Array(10), { recipients: [a.publicKey], contentType: 'a/b', prepared }),
    ).rejects.toThrow(/one artifact/);
    const discarded = await prepareArtifactKey([a.publicKey]);
    discardArtifactKey(discarded);
    await expect(
      sealArtifact(new Uint8Array(10), {
        recipients: [a.publicKey],
        contentType: 'a/b',
        prepared: discarded,
      }),
    ).rejects.toThrow(/one artifact/);
  });

  it('a key prepared for other recipients is refused: the artifact cannot be sealed to keys the wraps do not match', async () => {
    const a = await generateKemKeyPair();
    const host = await generateKemKeyPair();
    const prepared = await prepareArtifactKey([host.publicKey]);
    await expect(
      sealArtifact(new Uint8Array(10), { recipients: [a.publicKey], contentType: 'a/b', prepared }),
    ).rejects.toThrow(/other recipients/);
    const both = await prepareArtifactKey([a.publicKey]);
    await expect(
      sealArtifact(new Uint8Array(10), {
        recipients: [a.publicKey],
        contentType: 'a/b',
        prepared: both,
        dataKey: new Uint8Array(32),
      }),
    ).rejects.toThrow(/not both/);
    await expect(prepareArtifactKey([])).rejects.toThrow(/recipients/);
  });

  it('two artifacts sealed with two prepared keys use different data keys', async () => {
    const a = await generateKemKeyPair();
    const [p1, p2] = [await prepareArtifactKey([a.publicKey]), await prepareArtifactKey([a.publicKey])];
    const s1 = await sealArtifact(new Uint8Array(64), {
      recipients: [a.publicKey],
      contentType: 'a/b',
      prepared: p1,
    });
    const s2 = await sealArtifact(new Uint8Array(64), {
      recipients: [a.publicKey],
      contentType: 'a/b',
      prepared: p2,
    });
    expect(
      Buffer.from(readArtifactHeader(s1).keyCommitment).equals(
        Buffer.from(readArtifactHeader(s2).keyCommitment),
      ),
    ).toBe(false);
  });
});
