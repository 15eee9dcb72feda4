import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { artifactId } from '@firn/crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { writeRunOutputs } from '../../packages/cli/src/commands/run.ts';

// `firn run` wrote each output's plaintext straight to --out/ROLE with writeFileSync: a kill mid-write
// left a partly written plaintext file under the output's own name, presented as complete, for
// ever. It now writes through writeFilesAtomically (decision 1542): a signal it can take removes
// its temp files; a SIGKILL leaves only temp files named by the dead writer, which the next write
// into that folder removes. The attack kills the writer while its temp files hold plaintext.
const root = repoRoot();
const base = mkdtempSync(join(tmpdir(), 'firn-run-partial-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const SIZE = 128 * 1024 * 1024;
const CHILD = join(root, 'tests', 'helpers', 'writeRunOutputsChild.mjs');
const MARKER = Buffer.from('requester plaintext marker');
const FULL = [
  'first',
  'plan.json',
  'proof.json',
  'records.json',
  'sealed/first.sealed',
  'sealed/second.sealed',
  'second',
];

/** Every file under `dir` (relative paths), recursively. */
function files(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}
/** Files under `dir` holding any of the marker plaintext. */
const withPlaintext = (dir: string) => files(dir).filter((f) => readFileSync(join(dir, f)).includes(MARKER));

/** Run the writer into a fresh folder and send `signal` once plaintext is in one of its temp files. */
async function interrupted(signal: NodeJS.Signals): Promise<{ dir: string; pid: number }> {
  const dir = mkdtempSync(join(base, `${signal}-`));
  const child = spawn(process.execPath, [CHILD, dir, String(SIZE)], { cwd: root, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)));
  let sent = false;
  for (let i = 0; i < 30_000 && !sent && child.exitCode === null; i++) {
    const tmp = readdirSync(dir).find((n) => n.includes('.firn-partial.'));
    let size = 0;
    try {
      if (tmp !== undefined) size = statSync(join(dir, tmp)).size;
    } catch {}
    if (size > 0) {
      child.kill(signal);
      sent = true;
    } else await new Promise((r) => setTimeout(r, 2));
  }
  expect(await exited).toBe(signal);
  expect(sent, 'the writer was signalled mid-write').toBe(true);
  return { dir, pid: child.pid! };
}

describe("attack: a kill during firn run's output write", () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    it(`${signal} leaves no temp file and no partial output: all outputs complete, or none`, async () => {
      // The writes are synchronous: the handler runs once they are done (all renamed into place,
      // whole) or removes what is left (decision 1430); never a part under a final name.
      const { dir } = await interrupted(signal);
      const left = files(dir).sort();
      expect(left.filter((f) => f.includes('.firn-partial.'))).toEqual([]);
      if (left.length > 0) {
        expect(left).toEqual(FULL);
        for (const f of ['first', 'second']) expect(statSync(join(dir, f)).size).toBe(SIZE);
      }
    }, 60_000);

  it('SIGKILL leaves no output under its name; the next write there removes the partial plaintext', async () => {
    const { dir, pid } = await interrupted('SIGKILL');
    const left = files(dir);
    // Only temp files named by the killed writer: no ROLE, proof.json or records.json.
    expect(left.length).toBeGreaterThan(0);
    for (const f of left)
      expect(f).toMatch(new RegExp(`\\.firn-partial\\.[0-9a-f]{8}\\.${pid}\\.[0-9a-f]{12}\\.tmp$`));
    expect(withPlaintext(dir).length).toBeGreaterThan(0);
    // The next run into that folder.
    const sealed = new Uint8Array([4, 5, 6]);
    const written = writeRunOutputs(dir, {
      plan: {} as never,
      outputs: [{ role: 'first', contentType: 'text/plain', bytes: new TextEncoder().encode('new') }],
      sealedOutputs: [{ role: 'first', artifactId: artifactId(sealed), sealed }],
      proof: {} as never,
      records: [],
    });
    expect(written.map((w) => w.role)).toEqual(['first']);
    expect(files(dir).sort()).toEqual([
      'first',
      'plan.json',
      'proof.json',
      'records.json',
      'sealed/first.sealed',
    ]);
    expect(withPlaintext(dir)).toEqual([]);
  }, 60_000);
});
