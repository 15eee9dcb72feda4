import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';

/** Where and how much a URL-keyed cache of downloaded collateral keeps. */
export interface UrlCacheOptions<E> {
  /** Also keep entries as JSON files here (one per URL, named by SHA-256 of the URL). */
  cacheDir?: string;
  /** In-memory capacity, entries (default 256). */
  entries?: number;
  /** A cache file longer than this, characters, is ignored (read again from the service). */
  maxFileChars: number;
  /** Whether parsed JSON is a whole entry; a file that is not is ignored. */
  isEntry: (e: unknown) => e is E;
}

/** A URL-keyed cache in memory (LRU) and, optionally, on disk. Entries are not trusted: callers re-verify. */
export interface UrlCache<E> {
  /** The entry for a URL, current or not (the caller decides), from memory or disk; undefined if none. */
  lookup(url: string): Promise<E | undefined>;
  /** Keep an entry in memory and, with a cacheDir, on disk (written to a temporary file, then renamed). */
  store(url: string, e: E): Promise<void>;
  /** Drop a URL's entry from memory and disk. */
  forget(url: string): Promise<void>;
}

/**
 * Create the cache the collateral clients share (Intel PCS/PCCS, AMD KDS). A missing, unreadable,
 * oversized or malformed cache file reads as no entry. Disk errors on store propagate.
 */
export function createUrlCache<E extends object>(opts: UrlCacheOptions<E>): UrlCache<E> {
  const mem = new LRUCache<string, E>({ max: opts.entries ?? 256 });
  const diskPath = (url: string) =>
    // A file name derived from the URL; not a security boundary, so no domain tag applies.
    opts.cacheDir === undefined
      ? undefined
      : join(opts.cacheDir, `${createHash('sha256').update(url).digest('hex')}.json`);
  return {
    async lookup(url) {
      const hit = mem.get(url);
      if (hit !== undefined) return hit;
      const p = diskPath(url);
      if (p === undefined) return undefined;
      try {
        const text = await readFile(p, 'utf8');
        if (text.length > opts.maxFileChars) return undefined;
        const e: unknown = JSON.parse(text);
        if (opts.isEntry(e)) {
          mem.set(url, e);
          return e;
        }
      } catch {
        // missing or unreadable cache file: fetch again
      }
      return undefined;
    },
    async store(url, e) {
      mem.set(url, e);
      const p = diskPath(url);
      if (p === undefined || opts.cacheDir === undefined) return;
      await mkdir(opts.cacheDir, { recursive: true });
      const tmp = `${p}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      await writeFile(tmp, JSON.stringify(e));
      await rename(tmp, p);
    },
    async forget(url) {
      mem.delete(url);
      const p = diskPath(url);
      if (p !== undefined) await rm(p, { force: true }).catch(() => undefined);
    },
  };
}
