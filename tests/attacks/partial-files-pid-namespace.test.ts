import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { partialPathFor } from '../../packages/cli/src/partialFiles.ts';

// Decision 1542: the clean-up before a write removes only partial files whose writer is gone, never
// a live writer's. A pid is judged with kill(pid, 0) whenever the partial carries this host's tag
// (a hash of the host name). A CLI in another pid namespace with the same host name (a container on
// the host's network or UTS namespace, writing into a bind-mounted folder) sees the host writer's
// pid as not running and removes its partial mid-write: the writer's rename then fails (ENOENT) and
// the output it was streaming is lost. `unshare` puts the second CLI in its own pid namespace.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-partial-ns-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// The attack needs a second pid namespace: unprivileged user namespaces (or root). Where the host
// allows neither, the test says so instead of passing.
const canUnshare =
  spawnSync('unshare', ['--user', '--map-root-user', '--pid', '--fork', 'true'], { timeout: 10_000 })
    .status === 0;

describe('a write from another pid namespace on the same host', () => {
  it.skipIf(!canUnshare)(
    "leaves a live writer's partial file alone (needs `unshare --user --pid`)",
    () => {
      // The live writer: this test process, streaming into its partial file (just written to).
      const partial = partialPathFor(join(dir, 'plain.bin'));
      const fd = openSync(partial, 'wx', 0o600);
      try {
        writeSync(fd, Buffer.alloc(4096, 7));
        const r = spawnSync(
          'unshare',
          [
            '--user',
            '--map-root-user',
            '--pid',
            '--fork',
            process.execPath,
            FIRN,
            'artifact',
            'keygen',
            '--force',
            '--out',
            join(dir, 'k.json'),
          ],
          { encoding: 'utf8', timeout: 60_000 },
        );
        expect(r.status, `unshare/firn failed: ${r.stderr}`).toBe(0);
        expect(existsSync(join(dir, 'k.json'))).toBe(true);
        expect(existsSync(partial)).toBe(true);
      } finally {
        closeSync(fd);
      }
    },
    90_000,
  );
});
