import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { artifactKeygen, artifactOpen, artifactSeal } from '../../packages/cli/src/commands/artifact.ts';

// `firn artifact` errors name the path. A read or write error that Node raises on an open file
// descriptor carries no path (EISDIR reading a folder given as the input or the key file, EFBIG /
// ENOSPC when the output's disk is full), so it fell through to "E_INTERNAL: internal error":
// no path, and the exit code of an unexpected failure.
const dir = mkdtempSync(join(tmpdir(), 'firn-artifact-paths-'));
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `firn artifact args --json` under a file-size limit of `limitKiB` (a full disk for its writes). */
function firn(
  args: string[],
  limitKiB = 0,
): { status: number | null; body: { code: string; message: string } } {
  const quoted = [process.execPath, FIRN, ...args, '--json'].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('bash', ['-c', `${limitKiB > 0 ? `ulimit -f ${limitKiB}; ` : ''}${quoted}`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const line = (r.stdout + r.stderr).split('\n').find((l) => l.startsWith('{"error"')) ?? '{"error":{}}';
  return { status: r.status, body: (JSON.parse(line) as { error: { code: string; message: string } }).error };
}

describe('firn artifact errors name the path', () => {
  it('a folder as input or key file, and a full disk under --out, are typed errors naming that path', async () => {
    const key = join(dir, 'k.json');
    const { publicKey } = (await artifactKeygen({ out: key })) as { publicKey: string };
    const plain = join(dir, 'plain.bin');
    writeFileSync(plain, randomBytes(4 * 1024 * 1024));
    const sealed = join(dir, 's.fa');
    await artifactSeal({
      in: plain,
      out: sealed,
      recipients: [publicKey],
      contentType: 'application/octet-stream',
    });
    const folder = join(dir, 'a-folder');
    mkdirSync(folder);
    const out = join(dir, 'out');
    mkdirSync(out);
    const cases: [string, string[], number, string][] = [
      [
        'seal of a folder',
        ['artifact', 'seal', folder, '--out', join(out, 'a.fa'), '--recipient', publicKey],
        0,
        folder,
      ],
      [
        'open of a folder',
        ['artifact', 'open', folder, '--out', join(out, 'b.bin'), '--key-file', key],
        0,
        folder,
      ],
      [
        'a folder as key file',
        ['artifact', 'open', sealed, '--out', join(out, 'c.bin'), '--key-file', folder],
        0,
        folder,
      ],
      [
        'open onto a full disk',
        ['artifact', 'open', sealed, '--out', join(out, 'd.bin'), '--key-file', key],
        1024,
        join(out, 'd.bin'),
      ],
      [
        'seal onto a full disk',
        ['artifact', 'seal', plain, '--out', join(out, 'e.fa'), '--recipient', publicKey],
        1024,
        join(out, 'e.fa'),
      ],
    ];
    for (const [what, args, limit, path] of cases) {
      const r = firn(args, limit);
      expect(r.status, what).not.toBe(0);
      expect(r.body.code, what).not.toBe('E_INTERNAL');
      expect(r.body.message, what).toContain(path);
    }
    // Nothing is left under the output folder: no output, no temp file.
    expect(readdirSync(out)).toEqual([]);
  }, 120_000);
});

describe('firn artifact open keeps no descriptor open', () => {
  /** Descriptors of this process open on `path` (Linux /proc). */
  const openOn = (path: string) =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false;
      }
    }).length;

  it.runIf(process.platform === 'linux')(
    'the sealed file is closed once open returns, header stream included',
    async () => {
      const key = join(dir, 'fd-k.json');
      const { publicKey } = (await artifactKeygen({ out: key })) as { publicKey: string };
      const plain = join(dir, 'fd-plain.bin');
      writeFileSync(plain, randomBytes(512 * 1024));
      const sealed = join(dir, 'fd-s.fa');
      await artifactSeal({
        in: plain,
        out: sealed,
        recipients: [publicKey],
        contentType: 'application/octet-stream',
      });
      for (let i = 0; i < 3; i++)
        await artifactOpen({ in: sealed, out: join(dir, `fd-out-${i}.bin`), keyFile: key });
      // Give destroyed streams their close turn.
      await new Promise((r) => setTimeout(r, 50));
      expect(openOn(sealed)).toBe(0);
      expect(readFileSync(join(dir, 'fd-out-2.bin')).equals(readFileSync(plain))).toBe(true);
    },
  );
});
