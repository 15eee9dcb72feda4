/**
 * Every test file gets its own FIRN_HOME (the CLI's job journal and other per-user state), unless
 * the file sets one itself: nothing a test writes lands in the user's ~/.firn, and one file's
 * journal entries (job ids repeat across fresh anvil chains) never reach another's commands.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

if (process.env['FIRN_HOME'] === undefined) {
  const home = mkdtempSync(join(tmpdir(), 'firn-home-'));
  process.env['FIRN_HOME'] = home;
  afterAll(() => rmSync(home, { recursive: true, force: true }));
}
