import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirnDeployment } from '@firn/chain';
import type { Hex } from '@firn/core';
import { afterAll, afterEach, beforeEach } from 'vitest';
import { journalPosts, type PostJournal, reserveResultKey } from '../../packages/cli/src/jobJournal.ts';

/**
 * Test-only: the set-up shared by the tests of a derived result key's journal (decisions 1747,
 * 1760: `packages/cli/src/jobJournalReserve.test.ts`, `tests/attacks/r6-send-timeout-drops-result-key.test.ts`).
 */

/** A derived result key's salt and public key (not a real key pair; the journal only stores them). */
export const resultKem = {
  resultKemSalt: `0x${'ab'.repeat(32)}` as Hex,
  resultKemPublicKey: `0x${'cd'.repeat(32)}` as Hex,
};

/** The chain facts the journal names: chain 31337 and a placeholder job market. */
export const deployment = { chainId: 31337, jobMarket: `0x${'11'.repeat(20)}` } as unknown as FirnDeployment;

/** The posting account (placeholder address). */
export const requester = `0x${'22'.repeat(20)}` as Hex;

/**
 * Registers, for the calling test file, a fresh `FIRN_HOME` under a temp folder
 * (`<tmp>/<prefix>…/home-…`) before each test, restores the previous value after it, and removes
 * the folder after the file.
 */
export function useTempFirnHome(prefix: string): void {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const saved = process.env['FIRN_HOME'];
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    process.env['FIRN_HOME'] = mkdtempSync(join(dir, 'home-'));
  });
  afterEach(() => {
    if (saved === undefined) delete process.env['FIRN_HOME'];
    else process.env['FIRN_HOME'] = saved;
  });
}

/** reserveResultKey for `firn infer --out /x` with `resultKem`: the reservation file's path. */
export function reserveInfer(): string {
  return reserveResultKey({ command: 'infer', options: { out: '/x' }, resultKem, kemFlag: '--kem-key' });
}

/**
 * journalPosts of that `firn infer` (on `deployment`, by `requester`, with `resultKem` and the
 * reservation), with a guard that does nothing; warnings are pushed to `warn`.
 */
export function inferPosts(reservation: string, warn: string[] = []): PostJournal {
  return journalPosts({
    command: 'infer',
    options: { out: '/x' },
    deployment,
    requester,
    resultKem,
    reservation,
    guard: { sent: () => {}, posted: () => {} },
    warn: (l) => warn.push(l),
  });
}
