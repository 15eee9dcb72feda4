import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { describe, expect, it } from 'vitest';

// A careless new user points `firn devnet --dir` at a folder that cannot be made although its
// parent exists (here under /proc, where mkdir answers ENOENT). Promised: exit 3 naming the path,
// before anything starts. Node 20's recursive mkdir retries ENOENT for ever: the command spun at
// full CPU, printed nothing and never ended.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');

describe('attack: firn devnet --dir that cannot be created', () => {
  it.skipIf(!existsSync('/proc/self'))(
    'exits 3 naming the folder, within seconds',
    () => {
      const r = spawnSync(
        process.execPath,
        [FIRN, 'devnet', '--dir', '/proc/firn-no-such-dir', '--no-demo'],
        {
          encoding: 'utf8',
          timeout: 30_000,
          killSignal: 'SIGKILL',
        },
      );
      expect(r.signal).toBeNull();
      expect(r.stderr).toContain('/proc/firn-no-such-dir');
      expect(r.status).toBe(3);
    },
    40_000,
  );
});
