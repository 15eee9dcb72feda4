import { mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EvidenceBundle, FirnError } from '@firn/core';
import type { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import type { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { NodeMetrics } from '../../packages/node/src/metrics.ts';
import { DEFAULT_STORAGE_QUOTAS } from '../../packages/node/src/storage/quota.ts';
import { DEFAULT_HTTP_LIMITS, RequestRateLimiter, UploadSlots } from '../../packages/node/src/http/limits.ts';
import { createNodeApi, type NodeApiHost } from '../../packages/node/src/http/nodeApi.ts';

// A stranger floods DELETE /v1/sessions/{id} with junk close messages. Each one reaches the
// enclave (after a chain-time read) and queues, one at a time, in front of the requester's own
// close. Like every other mutating route it must be held to the per-IP mutating-request rate.
describe('attack: a stranger floods session closes', () => {
  let server: Server;
  let url: string;
  let enclaveCalls = 0;
  beforeAll(async () => {
    const jobs = {
      sessions: {
        closeRequest: async () => {
          enclaveCalls++;
          throw new FirnError('E_UNAUTHENTICATED', 'the close message does not open');
        },
      },
    } as unknown as JobService;
    const host = {
      opts: {
        dataDir: mkdtempSync(join(tmpdir(), 'firn-atk-')),
        logger: createLogger({}, { write: () => undefined }),
        chain: {},
      },
      url: 'http://node.test',
      chainStatus: 'active',
      metrics: new NodeMetrics(() => ({ enclaveUp: true })),
      jobs,
      db: undefined,
      quotas: DEFAULT_STORAGE_QUOTAS,
      supervisor: {} as EnclaveSupervisor,
      identity: undefined,
      limits: DEFAULT_HTTP_LIMITS,
      rateLimiter: new RequestRateLimiter(5),
      sessionRateLimiter: new RequestRateLimiter(1000),
      uploadSlots: new UploadSlots(4, 2, 2),
      health: async () => ({ ok: true }),
      attest: async () => ({ version: 1 }) as unknown as EvidenceBundle,
    } as unknown as NodeApiHost;
    const app = createNodeApi(host);
    server = createAdaptorServer({
      fetch: app.fetch,
      autoCleanupIncoming: false,
      overrideGlobalObjects: false,
    }) as Server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  it('junk closes over the per-IP mutating rate are 429 and never reach the enclave', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${url}/v1/sessions/0x${'ab'.repeat(32)}`, {
        method: 'DELETE',
        headers: { 'x-firn-session-auth': 'AAAA' },
      });
      await r.arrayBuffer();
      statuses.push(r.status);
    }
    expect(statuses).toContain(429);
    expect(enclaveCalls).toBeLessThanOrEqual(5);
  });
});
