import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';

/** What a `firn` command run left: its exit status (null when killed) and stdout + stderr. */
export interface CliResult {
  code: number | null;
  out: string;
}

const bin = join(__dirname, '../../packages/cli/bin/firn.mjs');

/** Runs `firn <args>` (packages/cli/bin/firn.mjs under this Node) in `cwd`, killed after `timeoutMs`. */
export function runFirn(cwd: string, timeoutMs: number, ...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The command failed, with a typed code other than E_INTERNAL, and its message names `cause`. */
export function expectUsefulError(r: CliResult, cause: string): void {
  expect(r.code, r.out).not.toBe(0);
  expect(r.out).not.toMatch(/E_INTERNAL/);
  expect(r.out).toContain(cause);
}
