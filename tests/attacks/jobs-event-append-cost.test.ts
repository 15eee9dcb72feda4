import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { NodeDb } from '../../packages/node/src/storage/nodeDb.ts';

// Progress events are stored on the host's main thread as the enclave emits them (the node keeps
// up to 10,000 per job, up to 1 MB each). Each append must cost about the same however long the
// job's history is: a cost that grows with the history stalls the node's event loop (attestation,
// sessions, every other requester) during a long job.
describe('attack: a long job history makes every further progress event slower to store', () => {
  it('the 600th event costs about what the first did', () => {
    const db = new NodeDb(mkdtempSync(join(tmpdir(), 'firn-events-')));
    const jobId = `0x${randomBytes(32).toString('hex')}` as Hex;
    const message = randomBytes(48 * 1024).toString('base64');
    const timeOf = (n: number) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) db.appendEvent(jobId, message);
      return performance.now() - t0;
    };
    const first = timeOf(50);
    timeOf(500);
    const later = timeOf(50);
    db.close();
    expect(later, `first 50: ${first.toFixed(0)} ms, 550th-600th: ${later.toFixed(0)} ms`).toBeLessThan(
      Math.max(4 * first, 200),
    );
  }, 120_000);
});
