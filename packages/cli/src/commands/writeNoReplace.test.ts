import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readUserFileSync } from '../readUserFile.ts';
import { artifactKeygen, artifactSeal } from './artifact.ts';
import { writeFilesAtomically } from './infer.ts';

// Decisions 1666-1668: results never replace a file that appeared meanwhile, every user-named file
// is read through one reader that names the flag, and seal refuses a private key as recipient.
const dir = mkdtempSync(join(tmpdir(), 'firn-noreplace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFilesAtomically publishes without replacing', () => {
  it('a file already at one target is kept; nothing of the batch is left, not even temp files', () => {
    const d = join(dir, 'batch');
    mkdirSync(d);
    writeFileSync(join(d, 'b.json'), 'theirs');
    let err: unknown;
    try {
      writeFilesAtomically(
        [
          { path: join(d, 'a.json'), bytes: 'mine a' },
          { path: join(d, 'b.json'), bytes: 'mine b' },
        ],
        { recover: 'fetch it with firn job result 0xabc' },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'E_CONFLICT' });
    expect((err as Error).message).toContain(join(d, 'b.json'));
    expect((err as Error).message).toContain('firn job result 0xabc');
    expect(readFileSync(join(d, 'b.json'), 'utf8')).toBe('theirs');
    expect(readdirSync(d)).toEqual(['b.json']);
  });

  it('replaces only with replace (a --force, or a file the command wrote itself)', () => {
    const d = join(dir, 'force');
    mkdirSync(d);
    writeFileSync(join(d, 'plan.json'), 'old plan');
    writeFilesAtomically([
      { path: join(d, 'plan.json'), bytes: 'new plan', replace: true },
      { path: join(d, 'x'), bytes: 'x' },
    ]);
    expect(readFileSync(join(d, 'plan.json'), 'utf8')).toBe('new plan');
    writeFilesAtomically([{ path: join(d, 'x'), bytes: 'y' }], { replace: true });
    expect(readFileSync(join(d, 'x'), 'utf8')).toBe('y');
    expect(readdirSync(d).sort()).toEqual(['plan.json', 'x']);
  });
});

describe('readUserFileSync with a flag names the flag and the path', () => {
  it('a folder, a missing file and an oversized file', () => {
    const f = join(dir, 'big.key');
    writeFileSync(f, 'x'.repeat(100));
    const cases: [string, number, string, string][] = [
      [dir, 10, 'E_INVALID_INPUT', `--key-file ${dir}: is a directory`],
      [join(dir, 'nope.key'), 10, 'E_NOT_FOUND', `--key-file ${join(dir, 'nope.key')}: no such file`],
      [f, 10, 'E_TOO_LARGE', `--key-file ${f} is 100 bytes, over the limit of 10`],
    ];
    for (const [p, cap, code, message] of cases)
      expect(() => readUserFileSync(p, '--key-file', cap)).toThrow(
        expect.objectContaining({ code, message: expect.stringContaining(message) }),
      );
    expect(() => readUserFileSync(dir, '--input data=', 10)).toThrow(`--input data=${dir}: is a directory`);
  });
});

describe('firn artifact seal: user mistakes', () => {
  it('refuses the requester key (FIRN_REQUESTER_KEY) given as --recipient, writing nothing', async () => {
    const key = `0x${'5a'.repeat(32)}`;
    writeFileSync(join(dir, 'plain.txt'), 'data');
    const before = process.env['FIRN_REQUESTER_KEY'];
    process.env['FIRN_REQUESTER_KEY'] = key;
    try {
      await expect(
        artifactSeal({
          in: join(dir, 'plain.txt'),
          out: join(dir, 'p.sealed'),
          recipients: [key],
          contentType: 'text/plain',
        }),
      ).rejects.toMatchObject({
        code: 'E_INVALID_INPUT',
        message: expect.stringContaining('FIRN_REQUESTER_KEY'),
      });
    } finally {
      if (before === undefined) delete process.env['FIRN_REQUESTER_KEY'];
      else process.env['FIRN_REQUESTER_KEY'] = before;
    }
    expect(readdirSync(dir)).not.toContain('p.sealed');
  });

  it('--out naming a folder with --force is refused naming the folder, not a temp file', async () => {
    const k = await artifactKeygen({ out: join(dir, 'seal-kem.json') });
    const folder = join(dir, 'outdir');
    mkdirSync(folder);
    const err = await artifactSeal({
      in: join(dir, 'plain.txt'),
      out: folder,
      recipients: [k.publicKey],
      contentType: 'text/plain',
      force: true,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_INVALID_INPUT' });
    expect((err as Error).message).toContain(`--out ${folder} is a directory`);
    expect((err as Error).message).not.toMatch(/firn-partial/);
    expect(readdirSync(dir).filter((f) => f.includes('firn-partial'))).toEqual([]);
  });
});
