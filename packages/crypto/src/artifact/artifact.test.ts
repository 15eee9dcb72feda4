import { randomBytes } from 'node:crypto';
import { bytesToHex, isFirnError, sha256 } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { generateKemKeyPair, type KemKeyPair } from '../hpke.ts';
import {
  ArtifactHasher,
  artifactId,
  artifactIdOfStream,
  openArtifact,
  openArtifactStream,
  readArtifactHeader,
  sealArtifact,
  sealArtifactStream,
  teeArtifactId,
  unwrapDataKey,
} from './index.ts';

const CHUNK = 4096;
const TAG = 16;

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isFirnError(e) ? e.code : `foreign:${String(e)}`;
  }
}

async function* pieces(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let o = 0; o < bytes.length; o += size) yield bytes.subarray(o, Math.min(bytes.length, o + size));
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p.slice());
  return new Uint8Array(Buffer.concat(parts));
}

describe('sealed artifacts: round trips', () => {
  it('round-trips sizes around chunk boundaries, for every recipient and with the data key', async () => {
    const a = await generateKemKeyPair();
    const b = await generateKemKeyPair();
    const dataKey = new Uint8Array(randomBytes(32));
    for (const n of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17]) {
      const pt = new Uint8Array(randomBytes(n));
      const sealed = await sealArtifact(pt, {
        recipients: [a.publicKey, b.publicKey],
        contentType: 'application/octet-stream',
        chunkSize: CHUNK,
        dataKey,
      });
      const header = readArtifactHeader(sealed);
      const chunks = Math.max(1, Math.ceil(n / CHUNK));
      expect(sealed.length).toBe(header.bytes.length + n + chunks * TAG);
      expect(await openArtifact(sealed, { kemPrivateKey: a.privateKey })).toEqual(pt);
      expect(await openArtifact(sealed, { kemPrivateKey: b.privateKey })).toEqual(pt);
      expect(await openArtifact(sealed, { dataKey })).toEqual(pt);
      // Streaming with odd piece sizes gives the same bytes.
      expect(await collect(openArtifactStream(pieces(sealed, 777), { kemPrivateKey: a.privateKey }))).toEqual(
        pt,
      );
    }
  });

  it('streams seal from odd-sized pieces and parses the header fields back', async () => {
    const a = await generateKemKeyPair();
    const pt = new Uint8Array(randomBytes(10 * CHUNK + 5));
    const sealed = await collect(
      sealArtifactStream(pieces(pt, 1000), {
        recipients: [a.publicKey],
        contentType: 'model/onnx',
        chunkSize: CHUNK,
      }),
    );
    const h = readArtifactHeader(sealed);
    expect(h.contentType).toBe('model/onnx');
    expect(h.chunkSize).toBe(CHUNK);
    expect(h.recipients.length).toBe(1);
    expect((await readArtifactHeader(pieces(sealed, 33))).bytes).toEqual(h.bytes);
    const key = await unwrapDataKey(h, a.privateKey);
    expect(await openArtifact(sealed, { dataKey: key })).toEqual(pt);
  });

  it('artifact ids: buffer, stream and tee agree with SHA-256 of the bytes', async () => {
    const a = await generateKemKeyPair();
    const sealed = await sealArtifact(new Uint8Array(randomBytes(9000)), {
      recipients: [a.publicKey],
      contentType: 'x/y',
      chunkSize: CHUNK,
    });
    const want = bytesToHex(sha256(sealed));
    expect(artifactId(sealed)).toBe(want);
    expect(await artifactIdOfStream(pieces(sealed, 100))).toBe(want);
    expect(new ArtifactHasher().update(sealed.subarray(0, 5)).update(sealed.subarray(5)).digest()).toBe(want);
    const tee = teeArtifactId(pieces(sealed, 999));
    expect(await collect(tee.stream)).toEqual(sealed);
    expect(tee.id()).toBe(want);
  });
});

describe('sealed artifacts: failures are detected and typed', () => {
  let k: KemKeyPair;
  let pt: Uint8Array;
  let sealed: Uint8Array;
  let hlen: number;
  const block = CHUNK + TAG;
  const setup = async () => {
    k = await generateKemKeyPair();
    pt = new Uint8Array(randomBytes(4 * CHUNK + 100)); // 5 chunks, the last short
    sealed = await sealArtifact(pt, { recipients: [k.publicKey], contentType: 'a/b', chunkSize: CHUNK });
    hlen = readArtifactHeader(sealed).bytes.length;
  };
  const open = (
    bytes: Uint8Array,
    key: Parameters<typeof openArtifact>[1] = { kemPrivateKey: k.privateKey },
  ) => code(openArtifact(bytes, key));
  const chunkAt = (i: number) =>
    sealed.subarray(hlen + i * block, Math.min(sealed.length, hlen + (i + 1) * block));

  it('truncation at every chunk boundary and inside the last chunk', async () => {
    await setup();
    for (let i = 0; i < 5; i++)
      expect(await open(sealed.subarray(0, hlen + i * block))).toBe('E_ARTIFACT_TRUNCATED');
    expect(await open(sealed.subarray(0, hlen + 4 * block + 8))).toBe('E_ARTIFACT_TRUNCATED');
    // Cut inside the short last chunk leaves a tag-sized tail that cannot verify: tampered or truncated
    // are indistinguishable there; we report what we can prove.
    expect(['E_ARTIFACT_TRUNCATED', 'E_ARTIFACT_TAMPERED']).toContain(
      await open(sealed.subarray(0, sealed.length - 1)),
    );
    expect(await open(sealed.subarray(0, hlen - 1))).toBe('E_ARTIFACT_TRUNCATED');
  });

  it('reordered and duplicated chunks', async () => {
    await setup();
    const swapped = Buffer.concat([
      sealed.subarray(0, hlen),
      chunkAt(1),
      chunkAt(0),
      chunkAt(2),
      chunkAt(3),
      chunkAt(4),
    ]);
    expect(await open(swapped)).toBe('E_ARTIFACT_REORDERED');
    const dup = Buffer.concat([
      sealed.subarray(0, hlen),
      chunkAt(0),
      chunkAt(1),
      chunkAt(1),
      chunkAt(3),
      chunkAt(4),
    ]);
    expect(await open(dup)).toBe('E_ARTIFACT_REORDERED');
    const dropped = Buffer.concat([sealed.subarray(0, hlen), chunkAt(0), chunkAt(2), chunkAt(3), chunkAt(4)]);
    expect(await open(dropped)).toBe('E_ARTIFACT_REORDERED');
    // The short last chunk moved to the middle: its flag says last, more bytes follow.
    const lastEarly = Buffer.concat([sealed.subarray(0, hlen), chunkAt(0), chunkAt(4), chunkAt(1)]);
    expect(['E_ARTIFACT_REORDERED', 'E_ARTIFACT_TAMPERED']).toContain(await open(lastEarly));
  });

  it('splicing a chunk from another artifact, and extra bytes after the end', async () => {
    await setup();
    const other = await sealArtifact(pt, { recipients: [k.publicKey], contentType: 'a/b', chunkSize: CHUNK });
    const oh = readArtifactHeader(other).bytes.length;
    const spliced = Buffer.concat([sealed.subarray(0, hlen + block), other.subarray(oh + block)]);
    expect(await open(spliced)).toBe('E_ARTIFACT_TAMPERED');
    expect(await open(Buffer.concat([sealed, Uint8Array.of(0)]))).toBe('E_ARTIFACT_TAMPERED');
    expect(await open(Buffer.concat([sealed, other]))).toBe('E_ARTIFACT_TAMPERED');
  });

  it('a flipped bit anywhere is refused (header, wrapped key, every chunk byte sampled, tags)', async () => {
    await setup();
    const seen = new Set<string>();
    const positions: number[] = [];
    for (let i = 0; i < hlen; i++) positions.push(i); // every header byte
    for (let i = hlen; i < sealed.length; i += 97) positions.push(i);
    for (let c = 0; c < 5; c++)
      positions.push(hlen + Math.min(c * block + block - 1, sealed.length - hlen - 1)); // tags
    for (const p of positions) {
      const bad = sealed.slice();
      bad[p]! ^= 0x01;
      const c = await open(bad);
      expect(c, `offset ${p}`).not.toBe('ok');
      seen.add(c);
      if (p >= hlen) expect(c, `offset ${p}`).toBe('E_ARTIFACT_TAMPERED');
      else expect(['E_ARTIFACT_FORMAT', 'E_ARTIFACT_TAMPERED', 'E_ARTIFACT_TRUNCATED']).toContain(c);
    }
    // A flipped wrapped key (addressed to us) is tampering, not a wrong key.
    const wrappedAt = hlen - 48 + 5;
    const bad = sealed.slice();
    bad[wrappedAt]! ^= 0x80;
    expect(await open(bad)).toBe('E_ARTIFACT_TAMPERED');
    expect(seen.has('E_ARTIFACT_WRONG_KEY')).toBe(false);
  });

  it('wrong keys and garbage', async () => {
    await setup();
    const stranger = await generateKemKeyPair();
    expect(await open(sealed, { kemPrivateKey: stranger.privateKey })).toBe('E_ARTIFACT_WRONG_KEY');
    expect(await open(sealed, { dataKey: new Uint8Array(32) })).toBe('E_ARTIFACT_WRONG_KEY');
    expect(await open(new Uint8Array(randomBytes(5000)))).toBe('E_ARTIFACT_FORMAT');
    expect(await open(new Uint8Array(0))).toBe('E_ARTIFACT_FORMAT');
  });

  it('does not release a chunk before its tag verified', async () => {
    await setup();
    const bad = sealed.slice();
    bad[hlen + 10]! ^= 1; // first chunk
    const got: Uint8Array[] = [];
    await expect(
      (async () => {
        for await (const p of openArtifactStream(pieces(bad, 500), { kemPrivateKey: k.privateKey }))
          got.push(p);
      })(),
    ).rejects.toMatchObject({ code: 'E_ARTIFACT_TAMPERED' });
    expect(got.length).toBe(0);
  });

  it('refuses bad options', async () => {
    await setup();
    const p = (o: Parameters<typeof sealArtifact>[1]) => code(sealArtifact(Uint8Array.of(1), o));
    expect(await p({ recipients: [k.publicKey], contentType: 'a/b', chunkSize: 1000 })).toBe(
      'E_ARTIFACT_FORMAT',
    );
    expect(await p({ recipients: [k.publicKey], contentType: 'x'.repeat(129) })).toBe('E_ARTIFACT_FORMAT');
    expect(await p({ recipients: [k.publicKey], contentType: 'bad\ntype' })).toBe('E_ARTIFACT_FORMAT');
    expect(await p({ recipients: [], contentType: 'a/b' })).toBe('E_INVALID_INPUT');
    expect(await p({ recipients: Array.from({ length: 17 }, () => k.publicKey), contentType: 'a/b' })).toBe(
      'E_INVALID_INPUT',
    );
  });
});
