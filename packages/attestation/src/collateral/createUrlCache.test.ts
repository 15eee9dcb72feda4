import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createUrlCache } from './createUrlCache.ts';

interface E {
  body: string;
  until: number;
}
const isEntry = (e: unknown): e is E =>
  typeof e === 'object' &&
  e !== null &&
  typeof (e as E).body === 'string' &&
  typeof (e as E).until === 'number';
const URL_ = 'https://kds.test/vcek/v1/Milan/crl';

describe('createUrlCache', () => {
  it('keeps entries in memory and on disk; a new cache on the same folder reads them back; forget drops both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-url-cache-'));
    const a = createUrlCache<E>({ cacheDir: dir, maxFileChars: 1000, isEntry });
    await a.store(URL_, { body: 'AA==', until: 5 });
    expect(readdirSync(dir).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const b = createUrlCache<E>({ cacheDir: dir, maxFileChars: 1000, isEntry });
    expect(await b.lookup(URL_)).toEqual({ body: 'AA==', until: 5 });
    await b.forget(URL_);
    expect(await b.lookup(URL_)).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('attack: a cache file that is oversized, not JSON, or not an entry reads as no entry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-url-cache-'));
    const writer = createUrlCache<E>({ cacheDir: dir, maxFileChars: 1000, isEntry });
    await writer.store(URL_, { body: 'AA==', until: 5 });
    const file = join(dir, readdirSync(dir)[0]!);
    for (const text of [
      JSON.stringify({ body: 'x'.repeat(2000), until: 5 }),
      '{',
      '{"body":1,"until":"x"}',
    ]) {
      writeFileSync(file, text);
      const fresh = createUrlCache<E>({ cacheDir: dir, maxFileChars: 1000, isEntry });
      expect(await fresh.lookup(URL_), text.slice(0, 20)).toBeUndefined();
    }
    expect(existsSync(file)).toBe(true);
  });
});
