import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactKeygen, artifactSeal } from '../../packages/cli/src/commands/artifact.ts';
import { descendants } from '../helpers/processTree.ts';
import { partialHostTag } from '../../packages/cli/src/partialFiles.ts';

// "A seal or open that fails midway (... ctrl-C) leaves no output file presented as complete and
// never leaves plaintext on disk." `firn artifact open` streams the plaintext into a temp file
// beside --out and removes it only when an error is thrown: a SIGINT (ctrl-C) or SIGTERM ends the
// process without that cleanup, and the partly written plaintext stays on disk.
const dir = mkdtempSync(join(tmpdir(), 'firn-artifact-int-'));
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run `firn args`, send `signal` once a temp file appears in `where`; resolves when it ended. */
function interrupted(args: string[], where: string, signal: NodeJS.Signals): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FIRN, ...args], { stdio: 'ignore' });
    let sent = false;
    let polls = 0;
    const poll = setInterval(() => {
      if (++polls > 3000) clearInterval(poll);
      if (!sent && readdirSync(where).some((f) => f.endsWith('.tmp'))) {
        sent = true;
        clearInterval(poll);
        setTimeout(() => child.kill(signal), 100);
      }
    }, 5);
    child.once('exit', () => {
      clearInterval(poll);
      resolve(sent);
    });
  });
}

const key = join(dir, 'k.json');
const plain = join(dir, 'plain.bin');
const sealed = join(dir, 's.fa');
let publicKey: string;
let plainDigest: string;

beforeAll(async () => {
  ({ publicKey } = (await artifactKeygen({ out: key })) as { publicKey: string });
  const bytes = randomBytes(192 * 1024 * 1024);
  plainDigest = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(plain, bytes);
  await artifactSeal({
    in: plain,
    out: sealed,
    recipients: [publicKey],
    contentType: 'application/octet-stream',
  });
}, 60_000);

describe('an interrupted firn artifact leaves nothing behind', () => {
  it('SIGINT / SIGTERM during open and seal: no temp file, no output, no plaintext on disk', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      for (const op of ['open', 'seal'] as const) {
        const outDir = mkdtempSync(join(dir, `${op}-`));
        const args =
          op === 'open'
            ? ['artifact', 'open', sealed, '--out', join(outDir, 'o.bin'), '--key-file', key]
            : ['artifact', 'seal', plain, '--out', join(outDir, 'o.fa'), '--recipient', publicKey];
        const sent = await interrupted(args, outDir, signal);
        expect(sent, `${op}: a temp file appeared`).toBe(true);
        expect(readdirSync(outDir), `${op} after ${signal}`).toEqual([]);
      }
    }
  }, 120_000);
});

/** Run `firn args` to the end; resolves with its exit code. */
function ran(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FIRN, ...args], { stdio: 'ignore' });
    child.once('exit', (code) => resolve(code));
  });
}

// SIGKILL (or the OOM killer) cannot be caught: the killed open's partial plaintext stays until the
// next write into that directory, which removes it because its writer is gone (decision 1542).
describe('a killed firn artifact open', () => {
  it('leaves a partial named by its pid, which the next open into that folder removes', async () => {
    const outDir = mkdtempSync(join(dir, 'kill-'));
    const out = join(outDir, 'o.bin');
    const child = spawn(
      process.execPath,
      [FIRN, 'artifact', 'open', sealed, '--out', out, '--key-file', key],
      {
        stdio: 'ignore',
      },
    );
    const exited = new Promise((r) => child.once('exit', r));
    let partial: string | undefined;
    for (let i = 0; i < 6000 && partial === undefined; i++) {
      const f = readdirSync(outDir).find((n) => n.endsWith('.tmp'));
      if (f !== undefined && statSync(join(outDir, f)).size > 0) partial = f;
      else await new Promise((r) => setTimeout(r, 5));
    }
    expect(partial, 'a temp file with plaintext in it appeared').toBeDefined();
    // The name carries the writer's pid: the process doing the open (firn re-executes itself once
    // for its allocator settings, decision 1325, so it is the command's child), killed as the OOM
    // killer would kill it.
    const tag = partialHostTag();
    const m = new RegExp(`^o\\.bin\\.firn-partial\\.${tag}\\.(\\d+)\\.[0-9a-f]{12}\\.tmp$`).exec(partial!);
    expect(m, `${partial} names its writer`).not.toBeNull();
    const writer = Number(m![1]);
    expect([child.pid, ...descendants(child.pid!)]).toContain(writer);
    process.kill(writer, 'SIGKILL');
    await exited;
    // The kill left it: partial plaintext on disk, no output.
    const left = readdirSync(outDir);
    expect(left).toEqual([partial]);
    const size = statSync(join(outDir, partial!)).size;
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThan(192 * 1024 * 1024);

    const again = join(outDir, 'again.bin');
    expect(await ran(['artifact', 'open', sealed, '--out', again, '--key-file', key])).toBe(0);
    expect(readdirSync(outDir)).toEqual(['again.bin']);
    expect(createHash('sha256').update(readFileSync(again)).digest('hex')).toBe(plainDigest);
  }, 120_000);
});
