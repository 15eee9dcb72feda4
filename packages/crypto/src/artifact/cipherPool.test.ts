import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isFirnError, repoRoot } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cipherPool, cipherPoolSettings } from './cipherPool.ts';
import { openArtifact, openArtifactStream, sealArtifact, sealArtifactStream } from './index.ts';

// The cipher threads (decision 1370): a thread that dies fails the operation with a typed error
// and a later stream works again; a stream piped into open honours the view contract; idle
// threads never keep a process alive. Byte identity and the attacks on open run over the threads
// in chunkPipeline.test.ts.

const KiB = 1024;
const MiB = 1024 * KiB;
const saved = { ...cipherPoolSettings };

beforeAll(async () => {
  Object.assign(cipherPoolSettings, { enabled: true, threads: 2, fromChunk: 0 });
  await cipherPool.started();
});
afterAll(() => {
  Object.assign(cipherPoolSettings, saved);
});

async function* pieces(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let o = 0; o < bytes.length; o += size) yield bytes.subarray(o, o + size);
}

async function codeOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (e) {
    return isFirnError(e) ? e.code : `untyped: ${String(e)}`;
  }
}

describe('sealed artifacts: cipher threads', () => {
  it('a thread that dies mid-seal fails the seal with E_INTERNAL; the next seal is whole and opens', async () => {
    const dataKey = new Uint8Array(randomBytes(32));
    const pt = new Uint8Array(randomBytes(16 * MiB));
    const before = cipherPool.chunks;
    const code = await codeOf(async () => {
      let n = 0;
      for await (const p of sealArtifactStream(pieces(pt, MiB), {
        recipients: [],
        dataKey,
        contentType: 'a/b',
      })) {
        n += p.length;
        if (n > 2 * MiB && n < 2 * MiB + 300 * KiB) cipherPool.crashForTest();
      }
    });
    expect(code).toBe('E_INTERNAL');
    expect(cipherPool.chunks).toBeGreaterThan(before);
    await cipherPool.started();
    const sealed = await sealArtifact(pt, { recipients: [], dataKey, contentType: 'a/b' });
    expect(Buffer.from(await openArtifact(sealed, { dataKey })).equals(pt)).toBe(true);
  });

  it('a thread that dies mid-open fails the open with E_INTERNAL and releases nothing after', async () => {
    const dataKey = new Uint8Array(randomBytes(32));
    const pt = new Uint8Array(randomBytes(16 * MiB));
    const sealed = await sealArtifact(pt, { recipients: [], dataKey, contentType: 'a/b' });
    await cipherPool.started();
    const got: Buffer[] = [];
    const code = await codeOf(async () => {
      for await (const p of openArtifactStream(pieces(sealed, 256 * KiB), { dataKey })) {
        got.push(Buffer.from(p));
        if (got.length === 3) cipherPool.crashForTest();
      }
    });
    expect(code).toBe('E_INTERNAL');
    // Whatever was released is a true prefix of the plaintext, and not all of it.
    const out = Buffer.concat(got);
    expect(out.length).toBeLessThan(pt.length);
    expect(out.equals(Buffer.from(pt.subarray(0, out.length)))).toBe(true);
    await cipherPool.started();
  });

  it('open reading straight from seal (views held across one chunk) gets every byte back', async () => {
    const dataKey = new Uint8Array(randomBytes(32));
    const pt = new Uint8Array(randomBytes(32 * MiB));
    const before = cipherPool.chunks;
    const h = createHash('sha256');
    // Pieces of 1 MiB + 5 bytes, so the source's pieces never line up with chunks.
    const sealed = sealArtifactStream(pieces(pt, MiB + 5), { recipients: [], dataKey, contentType: 'a/b' });
    let n = 0;
    for await (const p of openArtifactStream(sealed, { dataKey })) {
      h.update(p);
      n += p.length;
    }
    expect(n).toBe(pt.length);
    expect(h.digest('hex')).toBe(createHash('sha256').update(pt).digest('hex'));
    // Both sides ran on the threads: 32 chunks each.
    expect(cipherPool.chunks - before).toBeGreaterThanOrEqual(60);
  });

  it('idle threads do not keep a process alive', () => {
    const code = `
      const { register } = await import('tsx/esm/api');
      register();
      const { cipherPool, cipherPoolSettings } = await import(${JSON.stringify(join(repoRoot(), 'packages/crypto/src/artifact/cipherPool.ts'))});
      const { sealArtifact } = await import(${JSON.stringify(join(repoRoot(), 'packages/crypto/src/artifact/index.ts'))});
      Object.assign(cipherPoolSettings, { enabled: true, threads: 2, fromChunk: 0 });
      await cipherPool.started();
      const s = await sealArtifact(new Uint8Array(8 * 1024 * 1024), { recipients: [], dataKey: new Uint8Array(32), contentType: 'a/b' });
      process.stdout.write(String(cipherPool.chunks) + ' ' + s.length);
    `;
    const t = performance.now();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
      encoding: 'utf8',
      cwd: repoRoot(),
      timeout: 30_000,
    });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^8 \d+$/);
    expect(performance.now() - t).toBeLessThan(30_000);
  }, 40_000);
});
