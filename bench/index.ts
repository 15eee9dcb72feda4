/**
 * Run the benchmarks, each in its own process so one's warm caches never flatter another:
 *   npm run bench                 every benchmark
 *   npm run bench -- dcap training  the named ones
 * Each benchmark compares firn with a named peer in the same run and prints the ratios.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';

const ALL = ['dcap', 'artifact', 'inference', 'confidentialInference', 'training', 'gas'] as const;
const picked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = picked.length > 0 ? picked : [...ALL];
let failed = 0;
for (const name of names) {
  if (!(ALL as readonly string[]).includes(name)) {
    process.stderr.write(`unknown benchmark ${name}; choose from ${ALL.join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(`\n=== bench/${name}.ts ===\n`);
  const r = spawnSync(
    process.execPath,
    [join(repoRoot(), 'packages/cli/bin/run-ts.mjs'), join(repoRoot(), 'bench', `${name}.ts`)],
    {
      stdio: 'inherit',
    },
  );
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
