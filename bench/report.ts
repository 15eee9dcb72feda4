/**
 * The one way every benchmark ends: one line per headline figure,
 *
 *   ratio NAME VALUE GOAL met|missed
 *
 * (NAME has no spaces; GOAL is a comparison such as `<=0.8` or `>=0.5`), and the full result as
 * JSON in bench/results/BENCH.json (gitignored). A script reads the lines with
 * `grep '^ratio '`; a missed goal does not change the exit status (the figures are the output).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';

/** One headline figure and its goal. */
export interface Headline {
  /** Figure name, no whitespace (e.g. `dcap_cold_ms`). */
  name: string;
  /** The measured value. */
  value: number;
  /** How the value must compare with `goal` to count as met. */
  cmp: '<=' | '>=';
  goal: number;
}

/** True when the headline meets its goal (a NaN value never does). */
export function headlineMet(h: Headline): boolean {
  if (!Number.isFinite(h.value)) return false;
  return h.cmp === '<=' ? h.value <= h.goal : h.value >= h.goal;
}

/** The `ratio ...` line of one headline. */
export function ratioLine(h: Headline): string {
  if (/\s/.test(h.name) || h.name === '') throw new Error(`headline name must have no spaces: ${h.name}`);
  const v = Number.isFinite(h.value) ? Number(h.value.toPrecision(4)).toString() : 'NaN';
  return `ratio ${h.name} ${v} ${h.cmp}${h.goal} ${headlineMet(h) ? 'met' : 'missed'}`;
}

/** Where a benchmark's full JSON goes: bench/results/NAME.json under the repository root. */
export function resultPath(bench: string): string {
  return join(repoRoot(), 'bench', 'results', `${bench}.json`);
}

/**
 * Write `result` (plus the headlines, the load average before/after and the node version) to
 * bench/results/BENCH.json and print one `ratio` line per headline, last, on stdout.
 */
export function reportBench(
  bench: string,
  result: unknown,
  headlines: readonly Headline[],
  meta: { loadBefore?: number[] } = {},
): void {
  if (!/^[A-Za-z0-9_-]+$/.test(bench)) throw new Error(`bench name must be a plain word: ${bench}`);
  const path = resultPath(bench);
  mkdirSync(join(path, '..'), { recursive: true });
  const full = {
    bench,
    at: new Date().toISOString(),
    node: process.version,
    ...(meta.loadBefore === undefined ? {} : { loadAverageBefore: meta.loadBefore }),
    loadAverageAfter: loadavg(),
    headlines: headlines.map((h) => ({ ...h, met: headlineMet(h) })),
    result,
  };
  writeFileSync(path, `${JSON.stringify(full, null, 2)}\n`);
  process.stdout.write(`full results: ${path}\n`);
  for (const h of headlines) process.stdout.write(`${ratioLine(h)}\n`);
}
