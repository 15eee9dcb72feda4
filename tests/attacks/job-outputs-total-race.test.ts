import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { outputQuotaService, runOutputJob } from '../helpers/outputQuotaService.ts';

// Attack: a requester runs several jobs at once whose outputs are each under the room left in
// the node's total, but not together. Each job's outputs are checked against the total
// (quota.checkTotal) and only counted once adopted, after an await (the output is hashed): nothing
// is reserved in between, so concurrent jobs all pass the check and together store past
// quotas.totalBytes.
// Promise (docs/decisions/1550, docs/api.md "Limits"): job outputs count in the node's total; a
// job whose outputs would cross it fails with E_QUOTA_EXCEEDED.
const dir = mkdtempSync(join(tmpdir(), 'firn-output-race-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TOTAL = 100_000;

describe('concurrent jobs whose outputs together cross the node total', () => {
  it('do not store past quotas.totalBytes (one of them fails E_QUOTA_EXCEEDED)', async () => {
    const svc = outputQuotaService(
      join(dir, 'node'),
      { perAddressBytes: 1_000_000, totalBytes: TOTAL },
      60_000,
    );
    const requester = `0x${'ab'.repeat(20)}`;
    const records = await Promise.all([1, 2, 3].map((i) => runOutputJob(svc, i, requester)));
    expect(svc.quota.total).toBeLessThanOrEqual(TOTAL);
    expect(records.filter((r) => r?.error?.code === 'E_QUOTA_EXCEEDED').length).toBeGreaterThanOrEqual(2);
    svc.stop();
  }, 30_000);
});
