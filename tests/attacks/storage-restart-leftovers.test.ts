import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../packages/node/src/storage/artifactStore.ts';
import { QuotaLedger } from '../../packages/node/src/storage/quota.ts';

// Attack: a requester keeps large uploads in flight (or a job writes big outputs) when the node
// stops hard (crash, OOM kill, power loss). The partial upload in `<dataDir>/tmp/upload-*` and the
// job's output folder `<dataDir>/tmp/job-*` survive the restart: the restarted node re-measures
// its total from the artifact folder only, so those bytes are on the node's disk, counted against
// nobody and never removed. Repeated, this fills the disk past quotas.totalBytes.
// Promise (docs/decisions/1550, docs/api.md "Limits"): every byte a requester makes land on the
// node's disk counts against the node total, and the ledger does not drift across restarts.
const dir = mkdtempSync(join(tmpdir(), 'firn-restart-leftovers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bytesUnder(p: string): number {
  let n = 0;
  for (const e of readdirSync(p, { withFileTypes: true })) {
    const q = join(p, e.name);
    n += e.isDirectory() ? bytesUnder(q) : statSync(q).size;
  }
  return n;
}

describe('node restart after a hard stop', () => {
  it('leaves no uncounted bytes from interrupted uploads or job output folders', () => {
    const first = new ArtifactStore(dir);
    // What a hard stop leaves behind: a partial upload and a job's output folder.
    writeFileSync(join(dir, 'tmp', 'upload-0011223344556677'), Buffer.alloc(1024 * 1024, 1));
    const job = join(dir, 'tmp', 'job-aabbccddeeff');
    mkdirSync(job);
    writeFileSync(join(job, 'model.out'), Buffer.alloc(2 * 1024 * 1024, 2));
    expect(first.dir).toBe(join(dir, 'artifacts'));

    // Restart: the node builds its store and ledger again on the same data dir.
    const store = new ArtifactStore(dir);
    const ledger = new QuotaLedger(dir, store.dir, { perAddressBytes: 8 << 20, totalBytes: 16 << 20 });
    const onDisk = bytesUnder(store.dir) + bytesUnder(join(dir, 'tmp'));
    expect(ledger.total).toBe(onDisk);
  });
});
