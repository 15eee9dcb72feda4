import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';

/**
 * Run `client` (a script that reads a hostile node's JSON answer of `size` elements through the
 * requester client and prints the error code it got) in a child Node with a 384 MiB heap (a small
 * machine), and assert the requester refused the answer with E_PARSE and did not die of heap
 * exhaustion. Waits at most 90 s for the child.
 */
export function expectRequesterRefusesBomb(client: string, size: number): void {
  const r = spawnSync(
    process.execPath,
    ['--max-old-space-size=384', '--import', 'tsx', client, String(size)],
    {
      encoding: 'utf8',
      timeout: 90_000,
    },
  );
  expect(r.stderr).not.toMatch(/heap out of memory/);
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toBe('E_PARSE');
}
