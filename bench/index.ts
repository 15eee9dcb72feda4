/**
 * Run the benchmarks, each in its own process so one's warm caches never flatter another:
 *   npm run bench                   the default set
 *   npm run bench -- dcap training  the named ones (any bench/NAME.ts that exists)
 * Each benchmark compares firn with a named peer in the same run, ends with its
 * `ratio NAME VALUE GOAL met|missed` lines (bench/report.ts) and writes bench/results/NAME.json.
 * The summary at the end repeats every ratio line, so `grep '^ratio '` on the output finds them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { allocatorEnv, missingHeapFlags } from '../packages/cli/bin/allocator.mjs';
import { type Headline, ratioLine, resultPath } from './report.ts';

const DEFAULT = ['dcap', 'artifact', 'inference', 'confidentialInference', 'training', 'gas'] as const;
/** Modules in bench/ that are helpers, not benchmarks. */
const HELPERS = new Set(['index', 'report', 'inferenceFloorChild', 'rawFrames']);
const picked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = picked.length > 0 ? picked : [...DEFAULT];
for (const name of names) {
  if (
    !/^[A-Za-z0-9_-]+$/.test(name) ||
    HELPERS.has(name) ||
    !existsSync(join(repoRoot(), 'bench', `${name}.ts`))
  ) {
    process.stderr.write(`unknown benchmark ${name}; the default set is ${DEFAULT.join(', ')}\n`);
    process.exit(2);
  }
}
let failed = 0;
const ratios: string[] = [];
for (const name of names) {
  process.stdout.write(`\n=== bench/${name}.ts ===\n`);
  const started = Date.now();
  const r = spawnSync(
    process.execPath,
    [
      // The artifact benchmark measures what `firn artifact` runs: the same allocator settings and
      // V8 heap flags (packages/cli/bin/allocator.mjs, decisions 1325 and 1430).
      ...(name === 'artifact' ? missingHeapFlags(process.execArgv, process.env) : []),
      join(repoRoot(), 'packages/cli/bin/run-ts.mjs'),
      join(repoRoot(), 'bench', `${name}.ts`),
    ],
    { stdio: 'inherit', ...(name === 'artifact' ? { env: allocatorEnv(process.env) } : {}) },
  );
  // The summary comes from the JSON each run wrote (only if this run wrote it).
  const path = resultPath(name);
  let lines: string[] = [];
  if (existsSync(path) && statSync(path).mtimeMs >= started) {
    const j = JSON.parse(readFileSync(path, 'utf8')) as { headlines?: Headline[] };
    lines = (j.headlines ?? []).map(ratioLine);
  }
  if (r.status !== 0 || lines.length === 0) {
    failed++;
    lines.push(`ratio ${name}_completed 0 >=1 missed`);
  }
  ratios.push(...lines);
}
process.stdout.write(`\n=== ratios (${names.join(', ')}) ===\n${ratios.join('\n')}\n`);
process.exit(failed === 0 ? 0 : 1);
