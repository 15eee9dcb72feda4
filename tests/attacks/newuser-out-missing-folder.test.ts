import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runFirn } from '../helpers/firnCli.ts';

// `firn artifact seal|open --out` in a folder that does not exist: the error must name the path the
// user typed, not an internal `.firn-partial.<…>.tmp` file the user never heard of.
const dir = mkdtempSync(join(tmpdir(), 'firn-out-missing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('artifact seal --out in a missing folder names the --out path, not a temporary file', () => {
  const input = join(dir, 'data.csv');
  writeFileSync(input, 'a,b\n1,2\n');
  const out = join(dir, 'no such folder', 'x.art');
  const r = runFirn(
    dir,
    60_000,
    'artifact',
    'seal',
    input,
    '--out',
    out,
    '--recipient',
    `0x${'0c'.repeat(32)}`,
  );
  expect(r.code, r.out).toBe(3);
  expect(r.out).toContain(out);
  expect(r.out).not.toContain('firn-partial');
});
