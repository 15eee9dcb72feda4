#!/usr/bin/env node
// Start the devnet N times in a row (default 5), each until every node is Active, then stop it;
// prints each start's time and exits non-zero on the first failure. Usage:
//   node packages/cli/scripts/devnet-starts.mjs [N] [--nodes 3]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const firn = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'firn.mjs');
const n = Number(process.argv[2] ?? 5);
const extra = process.argv.slice(3);
const dir = mkdtempSync(join(tmpdir(), 'firn-devnet-starts-'));
let failed = 0;
for (let i = 1; i <= n; i++) {
  const t = Date.now();
  // The same folder every time: each start must also clean up after the previous one.
  const r = spawnSync(
    process.execPath,
    [firn, 'devnet', '--dir', dir, '--no-demo', '--exit-after-demo', ...extra],
    {
      encoding: 'utf8',
      timeout: 300_000,
    },
  );
  const s = ((Date.now() - t) / 1000).toFixed(1);
  const ok = r.status === 0 && /all \d+ nodes Active/.test(r.stdout);
  process.stdout.write(`start ${i}/${n}: ${ok ? 'ok' : `FAILED (exit ${r.status})`} in ${s} s\n`);
  if (!ok) {
    failed++;
    process.stdout.write(`${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}\n`);
    break;
  }
}
rmSync(dir, { recursive: true, force: true });
process.stdout.write(failed === 0 ? `${n} starts in a row succeeded\n` : 'a start failed\n');
process.exit(failed === 0 ? 0 : 1);
