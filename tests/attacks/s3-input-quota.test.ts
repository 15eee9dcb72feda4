import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirnDeployment, FirnJob } from '@firn/chain';
import type { Hex } from '@firn/core';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import type { JobHost } from '../../packages/node/src/jobs/jobHost.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { NodeDb } from '../../packages/node/src/storage/nodeDb.ts';
import { S3ArtifactStore } from '../../packages/node/src/storage/s3ArtifactStore.ts';
import { chargedBytes } from '../../packages/node/src/storage/quota.ts';

// Attack: a requester whose disk quota on this node is spent (or who never uploaded here) puts its
// inputs in the shared artifact store (through another node, or with write access to the
// bucket) and submits jobs here. The node fetched every missing input from the bucket to its disk
// without charging anyone: a way around the quota that fills the node's disk. Each fetched input
// must count against the requester's and the node's quota, refused before a byte is written.
const dir = mkdtempSync(join(tmpdir(), 'firn-s3-quota-'));
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const REQUESTER = `0x${'ab'.repeat(20)}` as Hex;
const OTHER = `0x${'cd'.repeat(20)}` as Hex;
const zero = `0x${'00'.repeat(20)}` as Hex;
let server: S3rver;
let shared: S3ArtifactStore;

function service(name: string, quotas: { perAddressBytes: number; totalBytes: number }) {
  const dataDir = join(dir, name);
  const host = {
    opts: { dataDir },
    db: new NodeDb(dataDir),
    quotas,
    supervisor: Object.assign(new EventEmitter(), { call: async () => ({}) }),
    identity: undefined,
  } as unknown as JobHost;
  const deployment = {
    chainId: 31337,
    registry: zero,
    verifierSet: zero,
    jobMarket: zero,
    dataLedger: zero,
    deployBlock: 0n,
  } as FirnDeployment;
  // No chain is reached: the pre-checks under test run before any chain read (the job is given).
  return new JobService(host, {
    rpcUrl: 'http://127.0.0.1:9',
    // A made-up test key (a repeated byte), never a real account's.
    operatorKey: `0x${'11'.repeat(32)}`,
    deployment,
    logger: createLogger({}, { write: () => undefined }),
    sharedArtifacts: shared,
  });
}

const jobOf = (requester: Hex) => ({ requester }) as unknown as FirnJob;
const jobId = `0x${'22'.repeat(32)}` as Hex;

beforeAll(async () => {
  server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(dir, 's3'),
    configureBuckets: [{ name: 'firn' }],
  });
  const { port } = await server.run();
  shared = new S3ArtifactStore({
    bucket: 'firn',
    prefix: 'q',
    endpoint: `http://127.0.0.1:${port}`,
    credentials,
  });
}, 60_000);
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('attack: inputs fetched from the shared artifact store around the disk quota', () => {
  it('an input over the requester quota is refused E_QUOTA_EXCEEDED, nothing lands on disk, usage is charged', async () => {
    const svc = service('node-a', { perAddressBytes: 10_000, totalBytes: 1_000_000 });
    const a = await shared.put(randomBytes(6_000));
    const b = await shared.put(randomBytes(6_000));
    // The first input fits and is charged to the job's requester.
    await svc.checkOpenJob({ jobId, inputs: [a.id] }, jobOf(REQUESTER)).catch(() => undefined);
    expect(svc.artifacts.has(a.id)).toBe(true);
    expect(svc.quota.usedBy(REQUESTER)).toBe(chargedBytes(6_000));
    // The second would take it to 12 000 > 10 000: refused before a byte is written.
    const e = await svc.checkOpenJob({ jobId, inputs: [b.id] }, jobOf(REQUESTER)).catch((x) => x);
    expect(e).toMatchObject({
      code: 'E_QUOTA_EXCEEDED',
      details: { limit: 10_000, quota: 'perAddressBytes' },
    });
    expect(String(e.message)).toMatch(/storage quota of 10000 bytes.*quotas\.perAddressBytes/);
    expect(svc.artifacts.has(b.id)).toBe(false);
    expect(readdirSync(join(dir, 'node-a', 'tmp'))).toEqual([]);
    expect(svc.quota.usedBy(REQUESTER)).toBe(chargedBytes(6_000));
    // Nothing else lost: the first input is still stored, and another requester is not affected.
    expect(svc.artifacts.has(a.id)).toBe(true);
    await svc.checkOpenJob({ jobId, inputs: [b.id] }, jobOf(OTHER)).catch(() => undefined);
    expect(svc.artifacts.has(b.id)).toBe(true);
    expect(svc.quota.usedBy(OTHER)).toBe(chargedBytes(6_000));
  }, 30_000);

  it("the node's total quota bounds fetched inputs of many requesters", async () => {
    const svc = service('node-b', { perAddressBytes: 1_000_000, totalBytes: 9_000 });
    const a = await shared.put(randomBytes(5_000));
    const b = await shared.put(randomBytes(5_000));
    await svc.checkOpenJob({ jobId, inputs: [a.id] }, jobOf(REQUESTER)).catch(() => undefined);
    expect(svc.artifacts.has(a.id)).toBe(true);
    const e = await svc.checkOpenJob({ jobId, inputs: [b.id] }, jobOf(OTHER)).catch((x) => x);
    expect(e).toMatchObject({ code: 'E_QUOTA_EXCEEDED', details: { limit: 9_000, quota: 'totalBytes' } });
    expect(String(e.message)).toMatch(/quotas\.totalBytes/);
    expect(svc.artifacts.has(b.id)).toBe(false);
    expect(svc.quota.total).toBe(chargedBytes(5_000));
  }, 30_000);
});

describe('attack: a bucket that declares a small object and sends a large one', () => {
  it('the copy is capped at the declared (reserved) size: E_TOO_LARGE, no partial file, the reservation released', async () => {
    const { startRogueBucket } = await import('../helpers/rogueBucket.ts');
    const { fetchSharedInputs } = await import('../../packages/node/src/storage/sharedInputs.ts');
    const { ArtifactStore } = await import('../../packages/node/src/storage/artifactStore.ts');
    const { QuotaLedger } = await import('../../packages/node/src/storage/quota.ts');
    const id = `0x${'ab'.repeat(32)}` as Hex;
    const bucket = await startRogueBucket((req, res) => {
      req.resume();
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-length': 100 });
        res.end();
        return;
      }
      // No Content-Length: 4 MiB streamed, far over the 100 bytes declared and reserved.
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      for (let i = 0; i < 64; i++) res.write(Buffer.alloc(64 * 1024, 1));
      res.end();
    });
    try {
      const dataDir = join(dir, 'node-rogue');
      const local = new ArtifactStore(dataDir);
      const quota = new QuotaLedger(dataDir, local.dir, { perAddressBytes: 4_096, totalBytes: 4_096 });
      await expect(fetchSharedInputs(bucket.store(), local, quota, [id], REQUESTER)).rejects.toMatchObject({
        code: 'E_TOO_LARGE',
      });
      expect(local.has(id)).toBe(false);
      expect(readdirSync(join(dataDir, 'tmp'))).toEqual([]);
      expect(quota.usedBy(REQUESTER)).toBe(0);
      // The reservation was released: the whole quota is still there.
      quota.reserve(REQUESTER, 4_096).release();
    } finally {
      bucket.close();
    }
  }, 30_000);
});
