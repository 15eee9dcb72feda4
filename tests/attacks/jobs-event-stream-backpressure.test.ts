import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { rssGrowthWithUnreadReaders } from '../helpers/unreadReaders.ts';

// GET /v1/jobs/{id}/events needs no credentials (the events are sealed). A stranger asks for the
// full replay of a long job's events (the node keeps up to 10,000 per job, up to 1 MB each) on a
// connection it never reads. The node must not hold the whole history in its memory for it: the
// replay has to wait for the socket to drain, or a few such readers exhaust the host's memory.
let net: TestNetwork;
const sockets: Socket[] = [];

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await net?.stop();
});

describe('attack: a replay of a long event history to a reader that never reads', () => {
  it('the node buffers a bounded amount per stream', async () => {
    const jobs = net.node.jobs!;
    const jobId = `0x${randomBytes(32).toString('hex')}` as Hex;
    const now = Math.floor(Date.now() / 1000);
    jobs.jobs.put({ jobId, status: 'running', inputs: [jobId], createdAt: now, updatedAt: now });
    // A long job's history: 1,500 events of 64 KiB (about 96 MiB), as the node stores them.
    const message = randomBytes(48 * 1024).toString('base64');
    const ins = jobs.db.db.prepare('INSERT INTO events (job_id, seq, message) VALUES (?, ?, ?)');
    const tx = jobs.db.db.transaction(() => {
      for (let i = 0; i < 1500; i++) ins.run(jobId, i, message);
    });
    tx();
    jobs.jobs.update(jobId, { status: 'failed', error: { code: 'E_JOB_FAILED', message: 'x' } }, now);
    const grown = await rssGrowthWithUnreadReaders(net.node.url, `/v1/jobs/${jobId}/events`, 3, sockets);
    // Three streams of a 96 MiB history: unbounded buffering holds ~290 MiB (more as UTF-16 strings).
    expect(grown, `rss grew by ${(grown / 2 ** 20).toFixed(0)} MiB`).toBeLessThan(64 * 2 ** 20);
  }, 90_000);
});
