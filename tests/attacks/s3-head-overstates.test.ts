import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../packages/node/src/storage/artifactStore.ts';
import { chargedBytes, QuotaLedger } from '../../packages/node/src/storage/quota.ts';
import { fetchSharedInputs } from '../../packages/node/src/storage/sharedInputs.ts';
import { type RogueBucket, startRogueBucket } from '../helpers/rogueBucket.ts';

// Attack: the shared bucket answers HEAD with a size larger than the object it then sends (the
// bytes still hash to the id, so the copy is stored). The node charged the reserved (HEAD) size,
// not the bytes it stored: the requester is charged for bytes that are not on disk, and the
// node's total in memory is off from its disk until a restart re-measures it (the ledger drifts).
// Promise (decision 1550): what lands on disk counts against the requester and the total, and the
// ledger never drifts (it agrees with the bytes on disk, before and after a restart).
const OBJ = Buffer.alloc(3_000, 7);
const ID = `0x${createHash('sha256').update(OBJ).digest('hex')}` as Hex;
const REQUESTER = `0x${'ab'.repeat(20)}`;
const dir = mkdtempSync(join(tmpdir(), 'firn-head-overstates-'));
let bucket: RogueBucket;
beforeAll(async () => {
  bucket = await startRogueBucket((req, res) => {
    req.resume();
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-length': OBJ.length + 50_000 });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': OBJ.length });
    res.end(OBJ);
  });
});
afterAll(() => {
  bucket?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('attack: a bucket whose HEAD overstates the object', () => {
  it('the fetched input is charged the bytes stored, and the ledger agrees with the disk after a restart', async () => {
    const local = new ArtifactStore(dir);
    const quotas = { perAddressBytes: 1_000_000, totalBytes: 1_000_000 };
    const quota = new QuotaLedger(dir, local.dir, quotas);
    await fetchSharedInputs(bucket.store(), local, quota, [ID], REQUESTER);
    expect(local.size(ID)).toBe(OBJ.length);
    expect(quota.usedBy(REQUESTER)).toBe(chargedBytes(OBJ.length));
    expect(quota.total).toBe(chargedBytes(OBJ.length));
    expect(new QuotaLedger(dir, local.dir, quotas).total).toBe(quota.total);
  });
});
