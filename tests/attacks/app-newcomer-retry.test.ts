import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCommand } from '../../packages/cli/src/commands/run.ts';

// A newcomer following docs/guide-first-app.md step 5 makes a mistake (no devnet file yet, a wrong
// input path), fixes nothing but retries, or fixes it and retries: `firn run` must name the real
// cause each time. It created `--out/sealed` before checking anything, so every retry after a
// failed run answered "--out … is not empty; pass a new folder" instead of the cause.
const code = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'RESOLVED';
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
};

describe('firn run, retried after a mistake', () => {
  it('names the same cause on a retry (no devnet file), not a leftover --out folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-newcomer-'));
    writeFileSync(join(dir, 'input.txt'), 'hello, enclave');
    const o = {
      devnet: join(dir, 'devnet.json'),
      app: `0x${'11'.repeat(32)}`,
      workload: 'reverse',
      escrow: '0.01',
      input: [`data=${join(dir, 'input.txt')}`],
      out: join(dir, 'out'),
    };
    const first = await code(runCommand(o));
    expect(first).toMatch(/devnet\.json/);
    expect(await code(runCommand(o))).toBe(first);
  });

  it('names the cause (here the devnet file), not the --out folder an earlier failed run left', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-newcomer-'));
    writeFileSync(join(dir, 'devnet.json'), '{}');
    const o = {
      devnet: join(dir, 'devnet.json'),
      rpc: 'http://127.0.0.1:9',
      app: `0x${'11'.repeat(32)}`,
      workload: 'reverse',
      escrow: '0.01',
      input: [`data=${join(dir, 'missing.txt')}`],
      out: join(dir, 'out'),
    };
    await code(runCommand({ ...o, input: [] }));
    const again = await code(runCommand(o));
    expect(again).not.toMatch(/not empty/);
    expect(again).toMatch(/^E_INVALID_INPUT/);
  });
});
