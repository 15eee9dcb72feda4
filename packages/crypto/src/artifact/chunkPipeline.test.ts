import { createCipheriv, randomBytes } from 'node:crypto';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { parseArtifactHeader } from './artifactHeader.ts';
import { CIPHER_SLICE } from './chunkCipher.ts';
import { openArtifact, openArtifactStream, sealArtifact, sealArtifactStream } from './index.ts';

// The sliced cipher loop (chunks fed to AES-GCM straight from the source's pieces, output handed on
// in slices; decision 1260) must produce the sealed format byte for byte (decisions 0200, 0872,
// 1161) and keep open's guarantees: nothing of a failed chunk or after it is released, order and
// truncation are still detected. Pieces no longer map to chunks, so releases are counted in bytes.

const TAG = 16;

/** Reference encryption of a sealed body, written from the format alone (one cipher per chunk). */
function referenceBody(plaintext: Uint8Array, sealed: Uint8Array, dataKey: Uint8Array): Uint8Array {
  const h = parseArtifactHeader(sealed);
  const parts: Uint8Array[] = [];
  const n = Math.max(1, Math.ceil(plaintext.length / h.chunkSize));
  for (let i = 0; i < n; i++) {
    const nonce = new Uint8Array(12);
    nonce.set(h.noncePrefix, 0);
    new DataView(nonce.buffer).setUint32(7, i, false);
    nonce[11] = i === n - 1 ? 1 : 0;
    const c = createCipheriv('aes-256-gcm', dataKey, nonce);
    c.setAAD(h.aad);
    parts.push(
      c.update(plaintext.subarray(i * h.chunkSize, (i + 1) * h.chunkSize)),
      c.final(),
      c.getAuthTag(),
    );
  }
  return new Uint8Array(Buffer.concat(parts));
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const p of it) out.push(p.slice());
  return out;
}

const released = (got: Uint8Array[]) => got.reduce((n, p) => n + p.length, 0);

/** Yield `bytes` in pieces of the given sizes, cycling through them (never aligned with chunks). */
async function* inPieces(bytes: Uint8Array, sizes: number[]): AsyncIterable<Uint8Array> {
  for (let o = 0, i = 0; o < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield bytes.subarray(o, o + n);
    o += n;
  }
}

async function* of(...ps: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const p of ps) yield p;
}

describe('sealed artifacts: pipelined chunk cipher', () => {
  for (const chunkSize of [4096, 2 * CIPHER_SLICE, 100_000, 256 * 1024]) {
    it(`seals exactly the reference bytes (chunk ${chunkSize}, slices of ${CIPHER_SLICE})`, async () => {
      const dataKey = new Uint8Array(randomBytes(32));
      // 5.5 chunks: full chunks, then a short last one.
      const pt = new Uint8Array(randomBytes(Math.floor(chunkSize * 5.5)));
      const sealed = await sealArtifact(pt, { recipients: [], dataKey, contentType: 'a/b', chunkSize });
      const h = parseArtifactHeader(sealed);
      // Buffer.equals: vitest's deep equality is far too slow on megabytes.
      expect(Buffer.from(sealed.subarray(h.bytes.length)).equals(referenceBody(pt, sealed, dataKey))).toBe(
        true,
      );
      expect(Buffer.concat(await collect(openArtifactStream(of(sealed), { dataKey }))).equals(pt)).toBe(true);
    });
  }

  it('seals and opens the same bytes whatever the source piece sizes (chunks spread over pieces)', async () => {
    const dataKey = new Uint8Array(randomBytes(32));
    const chunkSize = 64 * 1024;
    const pt = new Uint8Array(randomBytes(chunkSize * 4 + 777));
    // Pieces of 1 byte up to over a chunk, so chunks and tags straddle piece boundaries.
    const sizes = [1, 15, 17, 4095, 70_000, 3, chunkSize + 16, 9];
    const sealed = Buffer.concat(
      await collect(
        sealArtifactStream(inPieces(pt, sizes), {
          recipients: [],
          dataKey,
          contentType: 'a/b',
          chunkSize,
        }),
      ),
    );
    const h = parseArtifactHeader(sealed);
    expect(
      Buffer.from(sealed.subarray(h.bytes.length)).equals(referenceBody(pt, new Uint8Array(sealed), dataKey)),
    ).toBe(true);
    for (const split of [[13, 4000], [17, 5], [chunkSize + 15], [chunkSize + 17, 1]]) {
      const opened = Buffer.concat(await collect(openArtifactStream(inPieces(sealed, split), { dataKey })));
      expect(opened.equals(pt)).toBe(true);
    }
  });

  it('refuses a chunk whose tag straddles two source pieces and was altered', async () => {
    const dataKey = new Uint8Array(randomBytes(32));
    const chunkSize = 4096;
    const pt = new Uint8Array(randomBytes(chunkSize * 3));
    const sealed = await sealArtifact(pt, { recipients: [], dataKey, contentType: 'a/b', chunkSize });
    const hl = parseArtifactHeader(sealed).bytes.length;
    const bad = sealed.slice();
    // The last byte of chunk 1's tag; pieces of 7 bytes put that tag across several pieces.
    bad[hl + 2 * (chunkSize + TAG) - 1]! ^= 0x80;
    const got: Uint8Array[] = [];
    let code = 'ok';
    try {
      for await (const p of openArtifactStream(inPieces(bad, [7]), { dataKey })) got.push(p.slice());
    } catch (e) {
      code = isFirnError(e) ? e.code : 'other';
    }
    expect(code).toBe('E_ARTIFACT_TAMPERED');
    expect(Buffer.concat(got).equals(pt.subarray(0, chunkSize))).toBe(true);
  });

  it('openArtifact (result sized from the input length) refuses every cut and every append with a typed error', async () => {
    const dataKey = new Uint8Array(randomBytes(32));
    const chunkSize = 4096;
    const block = chunkSize + TAG;
    const pt = new Uint8Array(randomBytes(chunkSize * 2 + 100));
    const sealed = await sealArtifact(pt, { recipients: [], dataKey, contentType: 'a/b', chunkSize });
    expect(Buffer.from(await openArtifact(sealed, { dataKey })).equals(pt)).toBe(true);
    const hl = parseArtifactHeader(sealed).bytes.length;
    const attempt = async (bytes: Uint8Array) => {
      try {
        await openArtifact(bytes, { dataKey });
        return 'ok';
      } catch (e) {
        return isFirnError(e) ? e.code : 'other';
      }
    };
    // Every length from inside the first chunk's tag to one byte short of the whole artifact.
    for (let len = hl + block - TAG; len < sealed.length; len += 7)
      expect(['E_ARTIFACT_TRUNCATED', 'E_ARTIFACT_TAMPERED'], `cut at ${len}`).toContain(
        await attempt(sealed.subarray(0, len)),
      );
    for (const extra of [1, 15, 16, 17, block - 100, block, block + 1])
      expect(await attempt(Buffer.concat([sealed, randomBytes(extra)])), `+${extra}`).toBe(
        'E_ARTIFACT_TAMPERED',
      );
  });

  // Attacks on a pipelined open: chunks after the damaged one are already decrypting when it
  // fails; none of them may be released, and the error names the cause.
  const chunkSize = 128 * 1024;
  const block = chunkSize + TAG;
  async function fixture() {
    const dataKey = new Uint8Array(randomBytes(32));
    const pt = new Uint8Array(randomBytes(chunkSize * 8 + 1000));
    const sealed = await sealArtifact(pt, { recipients: [], dataKey, contentType: 'a/b', chunkSize });
    const hl = parseArtifactHeader(sealed).bytes.length;
    return { dataKey, pt, sealed, hl };
  }
  async function openUntilError(bytes: Uint8Array, dataKey: Uint8Array) {
    const got: Uint8Array[] = [];
    try {
      for await (const p of openArtifactStream(of(bytes), { dataKey })) got.push(p.slice());
      return { got, code: 'ok', details: undefined };
    } catch (e) {
      if (!isFirnError(e)) throw e;
      return { got, code: e.code, details: e.details };
    }
  }

  it('releases only the chunks before a tampered one', async () => {
    const { dataKey, pt, sealed, hl } = await fixture();
    const bad = sealed.slice();
    bad[hl + 2 * block + 100]! ^= 1;
    const r = await openUntilError(bad, dataKey);
    expect(r.code).toBe('E_ARTIFACT_TAMPERED');
    expect(Buffer.concat(r.got).equals(pt.subarray(0, 2 * chunkSize))).toBe(true);
  });

  it('reports swapped chunks as reordered after releasing the ones before', async () => {
    const { dataKey, sealed, hl } = await fixture();
    const bad = sealed.slice();
    bad.set(sealed.subarray(hl + 4 * block, hl + 5 * block), hl + 3 * block);
    bad.set(sealed.subarray(hl + 3 * block, hl + 4 * block), hl + 4 * block);
    const r = await openUntilError(bad, dataKey);
    expect(r.code).toBe('E_ARTIFACT_REORDERED');
    expect(released(r.got)).toBe(3 * chunkSize);
    expect(r.details).toMatchObject({ position: 3, sealedAt: 4 });
  });

  it('reports a cut at a chunk boundary as truncated, releasing every whole chunk first', async () => {
    const { dataKey, sealed, hl } = await fixture();
    const r = await openUntilError(sealed.subarray(0, hl + 5 * block), dataKey);
    expect(r.code).toBe('E_ARTIFACT_TRUNCATED');
    expect(released(r.got)).toBe(4 * chunkSize);
  });

  it('opens nothing with the wrong data key', async () => {
    const { sealed } = await fixture();
    const r = await openUntilError(sealed, new Uint8Array(randomBytes(32)));
    expect(r.code).toBe('E_ARTIFACT_WRONG_KEY');
    expect(released(r.got)).toBe(0);
  });
});
