import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';

// `firn infer`, `firn train` and `firn job result --kem-key` write their opened outputs (plaintext)
// through writeFilesAtomically: a temp file beside each output, renamed once all are written. Unlike
// `artifact open|seal` (decision 1430), nothing removes those temp files on SIGINT / SIGTERM /
// SIGHUP: the signal's default action ends the process mid-write and the partial plaintext stays
// on disk until some later write into that folder (decision 1542), or for ever.
const root = repoRoot();
const base = mkdtempSync(join(tmpdir(), 'firn-wfa-signal-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const SIZE = 192 * 1024 * 1024;
const CHILD = join(root, 'tests', 'helpers', 'writeFilesAtomicallyChild.mjs');

async function interrupted(signal: NodeJS.Signals): Promise<string[]> {
  const dir = mkdtempSync(join(base, `${signal}-`));
  const out = join(dir, 'o.json');
  const child = spawn(process.execPath, [CHILD, out, String(SIZE)], { cwd: root, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)));
  // Signal the writer once plaintext is in one of its temp files.
  let sent = false;
  for (let i = 0; i < 30_000 && !sent && child.exitCode === null; i++) {
    const tmp = readdirSync(dir).find((n) => n.includes('.firn-partial.'));
    if (
      tmp !== undefined &&
      (() => {
        try {
          return statSync(join(dir, tmp)).size > 0;
        } catch {
          return false;
        }
      })()
    ) {
      child.kill(signal);
      sent = true;
    } else await new Promise((r) => setTimeout(r, 2));
  }
  // The writer ends by the signal (once its writes are all done or removed), not by finishing.
  expect(await exited).toBe(signal);
  expect(sent, 'the writer was signalled mid-write').toBe(true);
  return readdirSync(dir).filter((n) => n.includes('.firn-partial.'));
}

describe('a signal during writeFilesAtomically (infer, train, job result)', () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    it(`${signal} leaves no temp file with plaintext`, async () => {
      expect(await interrupted(signal)).toEqual([]);
    }, 120_000);
});
