import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { artifactKeygen, artifactOpen, artifactSeal } from '../../packages/cli/src/commands/artifact.ts';
import { writeFilesAtomically } from '../../packages/cli/src/commands/infer.ts';

// Decision 1542 names every temp file `<output name>.firn-partial.<tag>.<pid>.<12 hex>.tmp`: about
// 50 bytes more than the output's own name. A file name may be 255 bytes (NAME_MAX); an output
// name of 206-255 bytes, which the file system takes, makes the temp file's name too long, and
// `artifact open|seal`, `keygen --force`, `infer`, `train` and `job result` all fail with
// ENAMETOOLONG: the output can never be written under its final name.
const dir = mkdtempSync(join(tmpdir(), 'firn-partial-long-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const name = (stem: string, ext: string) => `${stem}-${'n'.repeat(230 - stem.length)}${ext}`;

describe('an output whose name the file system takes (230 bytes, under NAME_MAX)', () => {
  it('is written by artifact keygen --force, seal and open, and writeFilesAtomically', async () => {
    const key = join(dir, name('key', '.json'));
    writeFileSync(key, 'old');
    const { publicKey } = await artifactKeygen({ out: key, force: true });
    const plain = join(dir, 'plain.bin');
    writeFileSync(plain, Buffer.alloc(100_000, 3));
    const sealed = join(dir, name('sealed', '.sealed'));
    await artifactSeal({
      in: plain,
      out: sealed,
      recipients: [publicKey],
      contentType: 'application/octet-stream',
    });
    const opened = join(dir, name('opened', '.bin'));
    await artifactOpen({ in: sealed, out: opened, keyFile: key });
    const tensor = join(dir, name('out', '.json'));
    writeFilesAtomically([{ path: tensor, bytes: '{}' }]);
    for (const p of [key, sealed, opened, tensor]) expect(existsSync(p)).toBe(true);
    expect(readdirSync(dir).filter((n) => n.includes('.firn-partial.'))).toEqual([]);
  }, 30_000);
});
