import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { comm, descendants, running } from '../helpers/processTree.ts';

// Attack (careless user): bench/scale.ts promises that every process it starts is stopped at the
// end, on failure and on SIGINT/SIGTERM. Its signal handlers are installed only once the devnet is
// up, and starting a 10-node devnet is the longest part of a run (minutes). A SIGTERM (or a
// Ctrl-C sent to the bench alone, as `kill -INT`, a CI timeout or a process manager does) while
// the devnet starts kills the bench with Node's default action, and what it started so far (anvil,
// the first daemons) lives on, holding ports and CPU.
const seen = new Set<number>();
let bench: ChildProcess | undefined;
afterAll(() => {
  bench?.kill('SIGKILL');
  for (const p of seen)
    try {
      process.kill(p, 'SIGKILL');
    } catch {}
});

describe('attack: stop bench/scale.ts while its devnet starts', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const)
    it(`${sig} to the bench before the devnet is up leaves no process behind`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'firn-attack-scale-'));
      const driver = join(dir, 'driver.mts');
      const scale = pathToFileURL(join(repoRoot(), 'bench', 'scale.ts')).href;
      writeFileSync(
        driver,
        `import { runScale } from ${JSON.stringify(scale)};
await runScale({ nodes: 2, phases: [1], requesters: 1, concurrency: 1, idleMs: 0, log: () => {} });
`,
      );
      bench = spawn(process.execPath, [join(repoRoot(), 'packages', 'cli', 'bin', 'run-ts.mjs'), driver], {
        cwd: repoRoot(),
        stdio: 'ignore',
      });
      const pid = bench.pid!;
      // Wait until the devnet has started its chain (anvil), then stop the bench.
      let anvil = false;
      for (let i = 0; i < 600 && !anvil; i++) {
        await new Promise((r) => setTimeout(r, 100));
        for (const p of descendants(pid)) {
          seen.add(p);
          if (comm(p).includes('anvil')) anvil = true;
        }
      }
      expect(anvil).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      for (const p of descendants(pid)) seen.add(p);
      const exited = new Promise<void>((r) => bench!.once('exit', () => r()));
      process.kill(pid, sig);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      // Give whatever it stopped a moment to go.
      await new Promise((r) => setTimeout(r, 3_000));
      const left = [...seen].filter(running).map((p) => `${p} ${comm(p)}`);
      // Clean up after the attack whatever it found, then state the promise.
      for (const p of seen)
        try {
          process.kill(p, 'SIGKILL');
        } catch {}
      expect(left).toEqual([]);
    }, 120_000);
});
