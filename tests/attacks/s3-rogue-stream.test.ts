import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../../packages/node/src/storage/artifactStore.ts';
import { type RogueBucket, startRogueBucket } from '../helpers/rogueBucket.ts';

const ID = `0x${'cd'.repeat(32)}` as Hex;

/**
 * A rogue S3-compatible server: GET answers 200 with Content-Length 1 MiB, sends 10 bytes, then
 * either stalls forever ('stall') or resets the connection ('reset').
 */
function rogue(mode: 'stall' | 'reset'): Promise<RogueBucket> {
  return startRogueBucket((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1 << 20 });
    res.write(Buffer.alloc(10, 1));
    if (mode === 'reset') setTimeout(() => res.socket?.destroy(), 50);
  });
}

describe('attack: a rogue bucket that stalls or drops an object mid-body', () => {
  const dir = mkdtempSync(join(tmpdir(), 'firn-rogue-s3-'));
  let stall: RogueBucket;
  let reset: RogueBucket;
  beforeAll(async () => {
    stall = await rogue('stall');
    reset = await rogue('reset');
  });
  afterAll(() => {
    stall?.close();
    reset?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a connection the bucket resets mid-body is E_UNAVAILABLE (a store failure), not a raw socket error the API mistakes for the client going away', async () => {
    const store = reset.store();
    const local = new ArtifactStore(join(dir, 'reset'));
    const err = await store.copyToLocal(ID, local).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as { code?: string }).code).toBe('E_UNAVAILABLE');
    expect(local.has(ID)).toBe(false);
  });

  it('a bucket that stops sending mid-body does not hold the node forever: the read fails E_UNAVAILABLE within a minute', async () => {
    const store = stall.store();
    const local = new ArtifactStore(join(dir, 'stall'));
    const t0 = Date.now();
    const err = await Promise.race([
      store.copyToLocal(ID, local).then(
        () => 'resolved',
        (e: unknown) => e,
      ),
      new Promise((r) => setTimeout(() => r('still waiting'), 65_000).unref()),
    ]);
    expect(err).not.toBe('still waiting');
    expect((err as { code?: string }).code).toBe('E_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(65_000);
    expect(readdirSync(join(dir, 'stall')).join(',')).not.toContain(ID.slice(2));
  }, 70_000);
});
