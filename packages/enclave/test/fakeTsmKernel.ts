import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TsmFs } from '../src/evidence/tdxConfigfs.ts';

/**
 * A captured REAL TDX v4 quote (the enclave's evidence fixture, see fixtures/SOURCE.md beside it),
 * which a fake configfs-tsm hands out as every report's outblob.
 */
export function capturedTdxQuote(): Uint8Array {
  return readFileSync(join(import.meta.dirname, '..', 'src', 'evidence', 'fixtures', 'tdx_quote.bin'));
}

/** How a `fakeTsmKernel` departs from a plain TDX guest's configfs-tsm. */
export interface FakeTsmKernelOptions {
  /** What each entry's `provider` attribute reads (without its newline); `tdx_guest` unless set. */
  provider?: string;
  /**
   * Another writer on the same entry: every attribute write moves `generation` by 2 instead of 1,
   * as when a second process wrote between this one's write and its read (the race the kernel ABI's
   * generation counter exposes).
   */
  concurrentWriter?: boolean;
}

/** A fake configfs-tsm, with its live entries (folder path -> attribute name -> bytes) to inspect. */
export interface FakeTsmKernel extends TsmFs {
  readonly entries: Map<string, Map<string, Uint8Array>>;
}

/**
 * configfs-tsm as the kernel ABI documents it, for tests without TDX hardware: mkdir of an entry
 * under `<root>/sys/kernel/config/tsm/report/` creates it with provider `tdx_guest` (or
 * `options.provider`), generation 0 and `quote` as its outblob (a mkdir anywhere else fails
 * ENOENT); every attribute write bumps the entry's generation (by 2 with
 * `options.concurrentWriter`); reads of a missing attribute fail ENOENT; rmdir removes the entry.
 * The outblob never depends on the inblob written: a test that needs the report data bound (a real
 * TD) cannot use it.
 */
export function fakeTsmKernel(
  quote: Uint8Array = capturedTdxQuote(),
  options: FakeTsmKernelOptions = {},
): FakeTsmKernel {
  const provider = options.provider ?? 'tdx_guest';
  const step = options.concurrentWriter ? 2 : 1;
  const entries = new Map<string, Map<string, Uint8Array>>();
  const parent = (p: string) => p.slice(0, p.lastIndexOf('/'));
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  return {
    entries,
    mkdir: async (p) => {
      if (!p.includes('/sys/kernel/config/tsm/report/')) throw new Error('ENOENT');
      entries.set(
        p,
        new Map([
          ['provider', Buffer.from(`${provider}\n`)],
          ['generation', Buffer.from('0\n')],
          ['outblob', quote],
        ]),
      );
    },
    rmdir: async (p) => {
      entries.delete(p);
    },
    readFile: async (p) => {
      const v = entries.get(parent(p))?.get(base(p));
      if (!v) throw new Error('ENOENT');
      return v;
    },
    writeFile: async (p, data) => {
      const e = entries.get(parent(p))!;
      e.set(base(p), data);
      e.set('generation', Buffer.from(`${Number(Buffer.from(e.get('generation')!).toString()) + step}\n`));
    },
  };
}
