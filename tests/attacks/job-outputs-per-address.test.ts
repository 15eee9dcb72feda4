import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { outputQuotaService, runOutputJob } from '../helpers/outputQuotaService.ts';

// Attack: a requester whose workload writes large outputs runs job after job. The outputs land on
// the node's disk but are charged to no address: only the node's total bounds them, so one
// requester fills the whole node (every other requester's uploads and inputs are then refused
// E_QUOTA_EXCEEDED on the total) without touching its own per-address quota.
// Promise (decision 1550, brief): every byte a requester makes land on the node's disk counts
// against its per-address quota (uploads, fetched inputs, session models, job outputs).
const dir = mkdtempSync(join(tmpdir(), 'firn-output-per-address-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const PER_ADDRESS = 100_000;

describe("one requester's job outputs", () => {
  it('count against its per-address quota: past it, its job fails E_QUOTA_EXCEEDED', async () => {
    const svc = outputQuotaService(
      join(dir, 'node'),
      { perAddressBytes: PER_ADDRESS, totalBytes: 1_000_000 },
      60_000,
    );
    const requester = `0x${'ab'.repeat(20)}`;
    const records = [
      await runOutputJob(svc, 1, requester),
      await runOutputJob(svc, 2, requester),
      await runOutputJob(svc, 3, requester),
    ];
    // 3 x 60 000 bytes of outputs against a 100 000-byte quota: the second and third are refused.
    expect(svc.quota.usedBy(requester)).toBeLessThanOrEqual(PER_ADDRESS);
    expect(records.filter((r) => r?.error?.code === 'E_QUOTA_EXCEEDED').length).toBe(2);
    expect(records[1]?.error?.message).toMatch(/quotas\.perAddressBytes/);
    svc.stop();
  }, 30_000);
});
