import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertWritableNew } from './commands/infer.ts';
import { writeOutFileSync } from './outFile.ts';
import { cliErrorBody } from './output.ts';

// Decision 1747: one writer for every --out. A folder is refused first (with or without --force),
// an existing file only without --force, and no partial file is left beside --out on any failure.
const dir = mkdtempSync(join(tmpdir(), 'firn-outfile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refusal(f: () => void) {
  try {
    f();
  } catch (e) {
    return cliErrorBody(e);
  }
  throw new Error('not refused');
}

describe('writeOutFileSync', () => {
  it('a folder is refused as a folder with and without force, and nothing is written beside it', () => {
    const d = join(dir, 'a');
    mkdirSync(join(d, 'keys'), { recursive: true });
    for (const force of [false, true]) {
      const b = refusal(() => writeOutFileSync(join(d, 'keys'), 'secret', { force }));
      expect(b.code).toBe('E_INVALID_INPUT');
      expect(b.message).toBe(`--out ${join(d, 'keys')} is a directory: name a file (e.g. in it)`);
      expect(readdirSync(d)).toEqual(['keys']);
    }
  });

  it('an existing file: E_CONFLICT naming what replacing it costs; with force it is replaced whole', () => {
    const f = join(dir, 'key.json');
    writeFileSync(f, 'old');
    const b = refusal(() => writeOutFileSync(f, 'new', { whyKeep: 'it is a key' }));
    expect(b).toEqual({
      code: 'E_CONFLICT',
      message: `--out ${f} already exists: it is a key; pass --force to replace it`,
    });
    writeOutFileSync(f, 'new', { force: true });
    expect(readFileSync(f, 'utf8')).toBe('new');
    expect(readdirSync(dir).filter((n) => n.includes('firn-partial'))).toEqual([]);
  });

  it('a write that fails on the partial names --out (not the partial), for any error code', () => {
    // The folder named is a file: writing the partial inside it fails ENOTDIR (also as root).
    const notDir = join(dir, 'plain');
    writeFileSync(notDir, 'x');
    const out = join(notDir, 'out.json');
    const b = refusal(() => writeOutFileSync(out, 'secret'));
    expect(b.code).toBe('E_INVALID_INPUT');
    expect(b.message).toBe(`${out}: not a directory (or a parent of it is not) (nothing was written)`);
    expect(b.message).not.toMatch(/firn-partial/);
  });

  it("firn infer|train's --out/--proof check names a folder as a folder, not as an existing file", () => {
    const d = join(dir, 'c');
    mkdirSync(join(d, 'out'), { recursive: true });
    const b = refusal(() => assertWritableNew(join(d, 'out'), '--out'));
    expect(b).toEqual({
      code: 'E_INVALID_INPUT',
      message: `--out ${join(d, 'out')} is a directory: name a file (e.g. in it)`,
    });
  });
});
