import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runFirn } from '../helpers/firnCli.ts';

// A careless new user passing `firn devnet` (what `npm start` runs) the wrong folder, the wrong file
// or a mistyped number. Every mistake must be refused before anything starts, with exit 3 and a
// message naming the flag, and must lose none of the user's files.
const dir = mkdtempSync(join(tmpdir(), 'firn-newuser-devnet-'));
const firn = (...args: string[]) => runFirn(dir, 90_000, ...args);
// Quick runs: no node, one verifier, no demo, no dashboard.
const quick = ['--nodes', '0', '--verifiers', '1', '--no-demo', '--exit-after-demo', '--no-dashboard'];

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('firn devnet, careless flags', () => {
  it('--dir on a folder of the user’s own files is refused and wipes nothing (else `--dir .` deletes the checkout)', () => {
    const mine = join(dir, 'my project');
    mkdirSync(join(mine, 'src'), { recursive: true });
    writeFileSync(join(mine, 'notes.txt'), 'years of work');
    writeFileSync(join(mine, 'src', 'main.ts'), 'export {};');
    const r = firn('devnet', '--dir', mine, ...quick);
    expect(readFileSync(join(mine, 'notes.txt'), 'utf8')).toBe('years of work');
    expect(existsSync(join(mine, 'src', 'main.ts'))).toBe(true);
    expect(r.code, r.out).toBe(3);
    expect(r.out).toContain('--dir');
    expect(r.out).toContain(mine);
  });

  it('--state-file over an existing file that is not a devnet state is refused before the network starts', () => {
    const precious = join(dir, 'precious.json');
    writeFileSync(precious, '{"mine": true}');
    const r = firn('devnet', '--dir', join(dir, 'dn1'), '--state-file', precious, ...quick);
    expect(readFileSync(precious, 'utf8')).toBe('{"mine": true}');
    expect(r.code, r.out).toBe(3);
    expect(r.out).toContain('--state-file');
    expect(r.out).not.toContain('network is up');
    expect(r.out).not.toContain('RPC http');
  });

  it('--state-file in a folder that does not exist is refused before the network starts', () => {
    const r = firn(
      'devnet',
      '--dir',
      join(dir, 'dn2'),
      '--state-file',
      join(dir, 'nope', 's.json'),
      ...quick,
    );
    expect(r.code, r.out).toBe(3);
    expect(r.out).toContain('--state-file');
    expect(r.out).not.toContain('RPC http');
  });

  for (const [flag, value] of [
    ['--nodes', 'abc'],
    ['--nodes', '-2'],
    ['--verifiers', '-1'],
    ['--verifiers', '1.5'],
    ['--gpu-nodes', '9'],
    ['--ready-timeout', 'soon'],
    ['--dashboard-port', '99999'],
  ] as const)
    it(`${flag} ${value} is refused (exit 3, names ${flag}) before anything starts`, () => {
      const args = [
        'devnet',
        '--dir',
        join(dir, `dn-${flag}-${value}`),
        ...quick.filter((a) => a !== '--no-dashboard'),
      ];
      // the flag under test last, so it wins over the quick defaults
      const r = firn(...args, flag, value);
      expect(r.code, r.out).toBe(3);
      expect(r.out).toContain(flag);
      expect(r.out).not.toMatch(/E_INTERNAL|E_UNAVAILABLE|anvil/);
      expect(r.out).not.toContain('RPC http');
    });
});
