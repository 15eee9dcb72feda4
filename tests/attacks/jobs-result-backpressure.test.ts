import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { rssGrowthWithUnreadReaders } from '../helpers/unreadReaders.ts';

// GET /v1/jobs/{id}/result needs no credentials (outputs are sealed) and inlines every output up
// to 8 MiB as base64 in one JSON body. A stranger asks for a proved job's result on many
// connections it never reads: each answer is built whole in memory and stays there. The node
// must bound what it holds for readers that do not read.
let net: TestNetwork;
const sockets: Socket[] = [];

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await net?.stop();
});

describe('attack: many unread requests for a large result', () => {
  it('the node holds a bounded amount for them', async () => {
    const jobs = net.node.jobs!;
    const jobId = `0x${randomBytes(32).toString('hex')}` as Hex;
    // A proved job with one 8 MiB sealed output, as the node stores it.
    const out = `0x${randomBytes(32).toString('hex')}` as Hex;
    writeFileSync(jobs.artifacts.path(out), randomBytes(8 * 1024 * 1024));
    const now = Math.floor(Date.now() / 1000);
    jobs.jobs.put({
      jobId,
      status: 'proved',
      inputs: [out],
      createdAt: now,
      updatedAt: now,
      outputs: [
        { role: 'model', artifactId: out, contentType: 'application/octet-stream', size: 8 * 1024 * 1024 },
      ],
      proof: { proof: {}, signature: '0x' } as never,
    });
    const grown = await rssGrowthWithUnreadReaders(net.node.url, `/v1/jobs/${jobId}/result`, 24, sockets);
    // Unbounded, every answer is built whole: ~40 MiB each while it is made (the file, its base64,
    // the JSON, the bytes written), 24 of them ~1 GiB (727 MiB measured). Bounded, at most 24 MiB of
    // outputs are inlined at once (3 answers here, ~120 MiB while built, before the collector runs);
    // the others list the outputs to fetch by id.
    expect(grown, `rss grew by ${(grown / 2 ** 20).toFixed(0)} MiB`).toBeLessThan(200 * 2 ** 20);
    const inlined = await Promise.all(
      Array.from({ length: 4 }, () =>
        fetch(`${net.node.url}/v1/jobs/${jobId}/result`).then(
          (r) => r.json() as Promise<{ outputs: { sealed?: string }[] }>,
        ),
      ),
    );
    // With the unread answers still held, a reader that reads gets the output to fetch by id, not inlined.
    expect(inlined.some((r) => r.outputs[0]?.sealed === undefined)).toBe(true);
  }, 90_000);
});
