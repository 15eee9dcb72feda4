import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { padPlaintext, unpadPlaintext } from '@firn/client';
import { repoRoot } from '@firn/core';
import { describe, expect, it } from 'vitest';
import {
  artifactKeygen,
  artifactOpen,
  artifactSeal,
  unpadStream,
} from '../../packages/cli/src/commands/artifact.ts';

// A user's mistakes and large files with `firn artifact`: keygen over an existing key, opening a
// cut artifact, and sealing or opening a file far larger than the memory the command may use.
const dir = mkdtempSync(join(tmpdir(), 'firn-artifact-'));
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');

function firn(args: string[]) {
  return spawnSync(process.execPath, [FIRN, ...args], { encoding: 'utf8', timeout: 60_000 });
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

/**
 * Run seal or open in a fresh process and report its memory: the resident set once everything is
 * loaded (before the work) and the peak (maxRSS) after it, in bytes.
 */
function measured(op: 'seal' | 'open', args: Record<string, unknown>): { baseline: number; peak: number } {
  const code = `
    const { register } = await import('tsx/esm/api');
    register();
    const m = await import(${JSON.stringify(join(repoRoot(), 'packages/cli/src/commands/artifact.ts'))});
    globalThis.gc?.();
    const baseline = process.memoryUsage().rss;
    await m.${op === 'seal' ? 'artifactSeal' : 'artifactOpen'}(${JSON.stringify(args)});
    process.stdout.write(JSON.stringify({ baseline, peak: process.resourceUsage().maxRSS * 1024 }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    cwd: repoRoot(),
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`${op} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { baseline: number; peak: number };
}

describe('firn artifact: flat memory, no lost keys, no partial outputs', () => {
  it('seal and open of a 96 MiB file each grow the process by under 64 MiB (streamed, not read whole)', async () => {
    const k = await artifactKeygen({ out: join(dir, 'big-kem.json') });
    const plain = join(dir, 'big.bin');
    // 96 MiB of a non-zero pattern; reading it whole would cost at least its size (plus the sealed copy).
    const block = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = (i * 31 + 7) & 0xff;
    writeFileSync(plain, Buffer.concat(Array.from({ length: 96 }, () => block)));
    const size = 96 * 1024 * 1024;
    const seal = measured('seal', {
      in: plain,
      out: join(dir, 'big.sealed'),
      recipients: [k.publicKey],
      contentType: 'application/octet-stream',
      pad: true,
    });
    const open = measured('open', {
      in: join(dir, 'big.sealed'),
      out: join(dir, 'big.opened'),
      keyFile: join(dir, 'big-kem.json'),
    });
    const MiB = 1024 * 1024;
    // Figures for the report: growth of the resident set over the loaded process.
    console.log(
      `artifact seal 96 MiB: +${((seal.peak - seal.baseline) / MiB).toFixed(1)} MiB RSS; open: +${((open.peak - open.baseline) / MiB).toFixed(1)} MiB RSS`,
    );
    // Reading it whole costs at least 96 MiB; streaming holds a few 1 MiB chunks in flight (two on the
    // thread pool when sealing, docs/decisions/1161) plus the runtime's own growth.
    expect(seal.peak - seal.baseline).toBeLessThan(64 * MiB);
    expect(open.peak - open.baseline).toBeLessThan(64 * MiB);
    expect(statSync(join(dir, 'big.opened')).size).toBe(size);
    expect(await sha256File(join(dir, 'big.opened'))).toBe(await sha256File(plain));
  }, 180_000);

  it('keygen refuses to overwrite an existing key (E_CONFLICT, exit 3) and leaves it intact; --force replaces it', () => {
    const key = join(dir, 'kem.json');
    expect(firn(['artifact', 'keygen', '--out', key]).status).toBe(0);
    const before = readFileSync(key, 'utf8');
    const again = firn(['artifact', 'keygen', '--out', key]);
    expect(again.status).toBe(3);
    expect(again.stderr).toMatch(/^error: E_CONFLICT: --out .*kem\.json already exists/);
    expect(again.stdout).toBe('');
    expect(readFileSync(key, 'utf8')).toBe(before);
    // --json: the same refusal as JSON on stdout, nothing on stderr.
    const j = firn(['artifact', 'keygen', '--out', key, '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ error: { code: 'E_CONFLICT' } });
    expect(readFileSync(key, 'utf8')).toBe(before);
    expect(firn(['artifact', 'keygen', '--out', key, '--force']).status).toBe(0);
    expect(readFileSync(key, 'utf8')).not.toBe(before);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    // Five CLI processes, each loading the CLI's sources: a loaded machine takes well over 60 s.
  }, 240_000);

  it('opening a cut artifact fails typed and writes no output at all', async () => {
    const k = await artifactKeygen({ out: join(dir, 'cut-kem.json') });
    writeFileSync(join(dir, 'cut.bin'), Buffer.alloc(3 * 1024 * 1024 + 17, 9));
    await artifactSeal({
      in: join(dir, 'cut.bin'),
      out: join(dir, 'cut.sealed'),
      recipients: [k.publicKey],
      contentType: 'application/octet-stream',
    });
    // Cut at a chunk boundary: every chunk that remains still authenticates.
    truncateSync(
      join(dir, 'cut.sealed'),
      statSync(join(dir, 'cut.sealed')).size - (1024 * 1024 + 17 + 16) + 0,
    );
    await expect(
      artifactOpen({
        in: join(dir, 'cut.sealed'),
        out: join(dir, 'cut.opened'),
        keyFile: join(dir, 'cut-kem.json'),
      }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/^E_ARTIFACT_/) });
    expect(existsSync(join(dir, 'cut.opened'))).toBe(false);
  });

  it('seal and open refuse to replace an existing output without --force', async () => {
    const k = await artifactKeygen({ out: join(dir, 'o-kem.json') });
    writeFileSync(join(dir, 'o.bin'), 'data');
    writeFileSync(join(dir, 'o.sealed'), 'precious');
    await expect(
      artifactSeal({
        in: join(dir, 'o.bin'),
        out: join(dir, 'o.sealed'),
        recipients: [k.publicKey],
        contentType: 'text/plain',
      }),
    ).rejects.toMatchObject({ code: 'E_CONFLICT' });
    expect(readFileSync(join(dir, 'o.sealed'), 'utf8')).toBe('precious');
  });

  it('streamed unpadding equals the in-memory one for every split, bodies ending in zeros included', async () => {
    for (const body of [
      Uint8Array.of(),
      Uint8Array.of(0),
      Uint8Array.of(1, 0, 0),
      Uint8Array.of(0x80, 0),
      new Uint8Array(5000),
      Uint8Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? 0 : i & 0xff)),
    ]) {
      const padded = padPlaintext(body);
      for (const split of [1, 2, 3, 4095, 4096, padded.length]) {
        async function* parts() {
          for (let i = 0; i < padded.length; i += split) yield padded.subarray(i, i + split);
        }
        const out: number[] = [];
        for await (const c of unpadStream(parts())) out.push(...c);
        expect(Uint8Array.from(out)).toEqual(unpadPlaintext(padded));
      }
    }
    // A stream whose padding marker was altered is refused, not cut somewhere.
    async function* bad() {
      yield Uint8Array.of(1, 2, 3, 0x81, 0, 0);
    }
    await expect(
      (async () => {
        for await (const _ of unpadStream(bad())) {
        }
      })(),
    ).rejects.toMatchObject({ code: 'E_ARTIFACT_FORMAT' });
  });
});
