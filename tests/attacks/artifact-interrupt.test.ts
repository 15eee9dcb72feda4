import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { artifactKeygen, artifactSeal } from '../../packages/cli/src/commands/artifact.ts';

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

describe('an interrupted firn artifact leaves nothing behind', () => {
  it('SIGINT / SIGTERM during open and seal: no temp file, no output, no plaintext on disk', async () => {
    const key = join(dir, 'k.json');
    const { publicKey } = (await artifactKeygen({ out: key })) as { publicKey: string };
    const plain = join(dir, 'plain.bin');
    writeFileSync(plain, randomBytes(192 * 1024 * 1024));
    const sealed = join(dir, 's.fa');
    await artifactSeal({
      in: plain,
      out: sealed,
      recipients: [publicKey],
      contentType: 'application/octet-stream',
    });
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
