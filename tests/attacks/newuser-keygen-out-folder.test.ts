import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runFirn } from '../helpers/firnCli.ts';

// A new user runs `firn artifact keygen --out keys` where `keys` is a folder (they meant a file in
// it). keygen refuses "already exists: replacing a key makes everything sealed to it
// unrecoverable; pass --force to replace it" (the wrong cause: it is a folder, not a key), so they
// add --force, as told. Then keygen writes the fresh PRIVATE key to `keys.firn-partial.<…>.tmp`
// beside the folder, the rename over the folder fails, the error names that temp file ("…tmp: is
// a directory", not the --out they typed), and the temp file holding the private key is left on
// disk (artifact.ts artifactKeygen: no checkOut, no cleanup of the partial on failure; seal/open
// refuse a folder up front with checkOut). Safe outcome: refused naming --out as a folder, exit 3,
// and nothing written beside it.
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-keygen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('firn artifact keygen --out FOLDER', () => {
  it('without --force: refused naming the folder as a folder (not "already exists … pass --force"), exit 3', () => {
    const keys = join(dir, 'a', 'keys');
    mkdirSync(keys, { recursive: true });
    const plain = runFirn(dir, 30_000, 'artifact', 'keygen', '--out', keys);
    expect(plain.code, plain.out).toBe(3);
    expect(plain.out).toMatch(/director|folder/i);
    expect(plain.out).not.toMatch(/--force/);
  }, 40_000);

  it('with --force (as the refusal told): names --out, not a temp file, and leaves no private key beside it', () => {
    const keys = join(dir, 'b', 'keys');
    mkdirSync(keys, { recursive: true });
    const forced = runFirn(dir, 30_000, 'artifact', 'keygen', '--out', keys, '--force');
    expect(forced.code, forced.out).toBe(3);
    // Only the folder itself: no `keys.firn-partial.….tmp` holding a private key.
    expect(readdirSync(join(dir, 'b'))).toEqual(['keys']);
    expect(forced.out).not.toMatch(/firn-partial/);
    expect(forced.out).toContain(`--out ${keys}`);
  }, 40_000);
});
