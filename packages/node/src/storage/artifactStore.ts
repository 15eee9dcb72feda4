import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { link, open, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { FirnError, type Hex, hexBytes, TooLargeError } from '@firn/core';
import { isDiskFull, storageFull } from './nodeDb.ts';

export const DEFAULT_MAX_ARTIFACT_BYTES = 2 * 1024 * 1024 * 1024 - 1;

/** Accept only a 32-byte lowercase/uppercase hex id, so an id can never name a path outside the store. */
export function parseArtifactId(id: unknown): Hex {
  const b = hexBytes(id, 'artifact id', 32);
  return `0x${Buffer.from(b).toString('hex')}`;
}

/**
 * Content-addressed storage of sealed artifacts under the node's data dir. A write goes to a temp
 * file while its SHA-256 is computed, then is linked to its id; an existing id is never
 * overwritten. The host holds ciphertext only. The temp folder is emptied when the store is opened
 * (the node's start): one store per data dir.
 */
export class ArtifactStore {
  readonly dir: string;
  private readonly tmp: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'artifacts');
    this.tmp = join(dataDir, 'tmp');
    mkdirSync(this.dir, { recursive: true });
    // What a hard stop left here (partial uploads and fetches, job output folders) is no one's
    // and counted nowhere: removed at start, so it never holds the disk past the quotas.
    rmSync(this.tmp, { recursive: true, force: true, maxRetries: 2 });
    mkdirSync(this.tmp, { recursive: true });
  }

  path(id: Hex): string {
    return join(this.dir, parseArtifactId(id).slice(2));
  }

  has(id: Hex): boolean {
    return existsSync(this.path(id));
  }

  size(id: Hex): number {
    try {
      return statSync(this.path(id)).size;
    } catch {
      throw new FirnError('E_NOT_FOUND', 'no such artifact');
    }
  }

  read(id: Hex): NodeJS.ReadableStream {
    if (!this.has(id)) throw new FirnError('E_NOT_FOUND', 'no such artifact');
    return createReadStream(this.path(id));
  }

  /**
   * Open a stored artifact for reading: one file descriptor, its size from that descriptor (a
   * sweep after the open cannot change what is read), and a stream that closes the descriptor
   * when it ends or is destroyed. Raises E_NOT_FOUND when it is not stored.
   */
  async open(id: Hex): Promise<{ stream: Readable; size: number }> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.path(id), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new FirnError('E_NOT_FOUND', 'no such artifact');
      throw e;
    }
    try {
      const { size } = await handle.stat();
      return {
        stream: handle.createReadStream({ start: 0, end: Math.max(0, size - 1), autoClose: true }),
        size,
      };
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
  }

  /** A fresh temp path inside the store's filesystem (for writers such as the enclave). */
  tempDir(name: string): string {
    const d = join(this.tmp, `${name}-${randomBytes(6).toString('hex')}`);
    try {
      mkdirSync(d, { recursive: true });
    } catch (e) {
      if (isDiskFull(e)) throw storageFull('a job folder', e);
      throw e;
    }
    return d;
  }

  /**
   * Store a stream of sealed bytes, refusing more than `limit`; returns the id the bytes hash to.
   * With `expectedId`, bytes that hash to anything else are discarded (E_INVALID_INPUT) before
   * they are linked into the store.
   */
  async put(
    source: AsyncIterable<Uint8Array>,
    limit = DEFAULT_MAX_ARTIFACT_BYTES,
    expectedId?: Hex,
  ): Promise<{ id: Hex; size: number; created: boolean }> {
    const tmp = join(this.tmp, `upload-${randomBytes(8).toString('hex')}`);
    const out = createWriteStream(tmp, { mode: 0o600 });
    // A write error (ENOSPC on a full disk) is an event on the stream: without this listener it
    // would be an uncaught exception that takes the whole host down.
    let writeError: Error | undefined;
    let wake: (() => void) | undefined;
    out.on('error', (e) => {
      writeError = e;
      wake?.();
    });
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of source) {
        if (writeError) throw writeError;
        size += chunk.length;
        if (size > limit) throw new TooLargeError('artifact', size, limit);
        hash.update(chunk);
        if (!out.write(chunk))
          await new Promise<void>((r) => {
            wake = r;
            out.once('drain', () => r());
          });
        wake = undefined;
        if (writeError) throw writeError;
      }
      await new Promise<void>((resolve, reject) => {
        if (writeError) return reject(writeError);
        out.once('error', reject);
        out.end(() => (writeError ? reject(writeError) : resolve()));
      });
    } catch (e) {
      // The file is removed only once the stream let it go: a stream destroyed before its file
      // was opened still opens (creates) it, which would leave a partial file behind an unlink.
      if (!out.closed) {
        const closed = new Promise<void>((r) => out.once('close', () => r()));
        out.destroy();
        await closed;
      }
      await unlink(tmp).catch(() => undefined);
      if (isDiskFull(e)) throw storageFull('the artifact', e);
      throw e;
    }
    if (size === 0) {
      await unlink(tmp).catch(() => undefined);
      throw new FirnError('E_INVALID_INPUT', 'artifact is empty');
    }
    const id = `0x${hash.digest('hex')}` as Hex;
    if (expectedId !== undefined && id !== parseArtifactId(expectedId)) {
      await unlink(tmp).catch(() => undefined);
      throw new FirnError(
        'E_INVALID_INPUT',
        'the uploaded bytes do not hash to the artifact id of the intent',
      );
    }
    return this.commit(tmp, id, size);
  }

  /** Move a finished temp file to its id after checking that its bytes hash to it. */
  async adopt(tmpPath: string, expectedId: Hex): Promise<{ id: Hex; size: number; created: boolean }> {
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const c of createReadStream(tmpPath) as AsyncIterable<Buffer>) {
        hash.update(c);
        size += c.length;
      }
    } catch (e) {
      // The enclave could not write its output (a full disk) or it vanished.
      throw new FirnError('E_NOT_FOUND', 'a job output is missing', { cause: e });
    }
    const id = `0x${hash.digest('hex')}` as Hex;
    if (id !== parseArtifactId(expectedId))
      throw new FirnError('E_ARTIFACT_TAMPERED', 'output does not hash to its id');
    return this.commit(tmpPath, id, size);
  }

  private async commit(
    tmp: string,
    id: Hex,
    size: number,
  ): Promise<{ id: Hex; size: number; created: boolean }> {
    const dest = this.path(id);
    try {
      // link() fails if the id exists: never overwrite a stored artifact, even in a race.
      await link(tmp, dest);
      await unlink(tmp);
      return { id, size, created: true };
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return { id, size, created: false };
      if (isDiskFull(e)) throw storageFull('the artifact', e);
      throw new FirnError('E_INTERNAL', 'could not store the artifact');
    }
  }
}
