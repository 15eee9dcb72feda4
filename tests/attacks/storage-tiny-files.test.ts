import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../packages/node/src/storage/artifactStore.ts';
import { QuotaLedger } from '../../packages/node/src/storage/quota.ts';

// Attack: a requester uploads many tiny artifacts (distinct 1-byte bodies, each a valid upload
// with its own intent). Each is charged its byte count, but each takes a whole filesystem block
// (and an inode) on the node's disk: a 4 GiB quota then buys ~16 TiB of blocks (or every inode),
// far past quotas.perAddressBytes and quotas.totalBytes.
// Promise (docs/decisions/1550, docs/api.md "Limits"): every byte a requester makes land on the
// node's disk counts against its per-address quota and the node total.
const dir = mkdtempSync(join(tmpdir(), 'firn-tiny-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const REQUESTER = `0x${'ab'.repeat(20)}`;

async function* once(b: Uint8Array) {
  yield b;
}

describe('many tiny uploads', () => {
  it('charge the uploader at least the disk space the stored files take', async () => {
    const store = new ArtifactStore(dir);
    const ledger = new QuotaLedger(dir, store.dir, { perAddressBytes: 1 << 30, totalBytes: 1 << 30 });
    // The upload path of PUT /v1/artifacts: reserve the declared size, write, commit.
    for (let i = 0; i < 64; i++) {
      const body = Buffer.from([i]);
      const r = ledger.reserve(REQUESTER, body.length);
      try {
        const s = await store.put(once(body), body.length);
        r.commit(s.created);
      } catch (e) {
        r.release();
        throw e;
      }
    }
    let onDisk = 0;
    for (const f of readdirSync(store.dir)) onDisk += statSync(join(store.dir, f)).blocks * 512;
    expect(onDisk).toBeGreaterThan(0);
    expect(ledger.usedBy(REQUESTER)).toBeGreaterThanOrEqual(onDisk);
    expect(ledger.total).toBeGreaterThanOrEqual(onDisk);
  });
});
