import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFirnError, type Hex } from '@firn/core';
import { afterEach, describe, expect, it, vi } from 'vitest';

// Every upload temp file is opened on /dev/full, which answers each write with ENOSPC: the
// kernel's own full disk, without mounting anything.
let diskFull = false;
vi.mock('node:fs', async (orig) => {
  const fs = await orig<typeof import('node:fs')>();
  return {
    ...fs,
    createWriteStream: (path: string, opts?: Parameters<typeof fs.createWriteStream>[1]) =>
      fs.createWriteStream(diskFull && String(path).includes('upload-') ? '/dev/full' : path, opts),
  };
});
const { ArtifactStore } = await import('./artifactStore.ts');

afterEach(() => {
  diskFull = false;
});

async function* chunks(n: number, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < n; i++) yield new Uint8Array(size).fill(i);
}

describe('artifact store on a full disk', () => {
  it('an upload to a full disk is E_STORAGE_FULL, leaves no temp file, and the store keeps working', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-store-'));
    const store = new ArtifactStore(dir);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('uncaughtException', onUnhandled);
    process.on('unhandledRejection', onUnhandled);
    try {
      diskFull = true;
      let err: unknown;
      try {
        await store.put(chunks(64, 64 * 1024));
      } catch (e) {
        err = e;
      }
      expect(isFirnError(err) && err.code).toBe('E_STORAGE_FULL');
      expect((err as Error).message).not.toContain(dir);
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
      expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
      // Space again: the same store takes the next upload.
      diskFull = false;
      const data = new Uint8Array(1000).fill(0);
      const r = await store.put(chunks(1, 1000));
      expect(r.id).toBe(`0x${createHash('sha256').update(data).digest('hex')}` as Hex);
    } finally {
      process.off('uncaughtException', onUnhandled);
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
