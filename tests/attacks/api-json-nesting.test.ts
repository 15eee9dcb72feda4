import { mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvidenceBundle } from '@firn/core';
import type { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import type { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { NodeMetrics } from '../../packages/node/src/metrics.ts';
import { DEFAULT_STORAGE_QUOTAS } from '../../packages/node/src/storage/quota.ts';
import { DEFAULT_HTTP_LIMITS, RequestRateLimiter, UploadSlots } from '../../packages/node/src/http/limits.ts';
import { createNodeApi, type NodeApiHost } from '../../packages/node/src/http/nodeApi.ts';

// A stranger (no keys) posts a job or session body that is valid JSON but nested 500,000 deep,
// well within the 2 MiB body cap. Promised (docs/api.md): a typed 4xx for a malformed body, the
// daemon serves others, no error logged for a caller's mistake. It was a 500 E_INTERNAL with an
// error logged: the body was parsed, then stringified again for the validator, which recursed
// past the stack.
describe('attack: a deeply nested JSON body on the job and session routes', () => {
  const logs: string[] = [];
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const host = {
      opts: {
        dataDir: mkdtempSync(join(tmpdir(), 'firn-atk-nest-')),
        logger: createLogger({}, { write: (l: string) => logs.push(l) }),
        chain: {},
      },
      url: 'http://node.test',
      chainStatus: 'active',
      metrics: new NodeMetrics(() => ({ enclaveUp: true })),
      // Never reached: the body is refused before any handler.
      jobs: {} as JobService,
      db: undefined,
      quotas: DEFAULT_STORAGE_QUOTAS,
      supervisor: {} as EnclaveSupervisor,
      identity: undefined,
      limits: DEFAULT_HTTP_LIMITS,
      rateLimiter: new RequestRateLimiter(1000),
      sessionRateLimiter: new RequestRateLimiter(1000),
      uploadSlots: new UploadSlots(4, 2, 2),
      health: async () => ({ ok: true }),
      attest: async () => ({ version: 1 }) as unknown as EvidenceBundle,
    } as unknown as NodeApiHost;
    server = createAdaptorServer({
      fetch: createNodeApi(host).fetch,
      autoCleanupIncoming: false,
      overrideGlobalObjects: false,
    }) as Server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  for (const route of ['/v1/jobs', '/v1/sessions'])
    it(`POST ${route}: 400 E_INVALID_INPUT, no error logged, the node still answers`, async () => {
      const depth = 500_000;
      const body = `{"jobId":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const r = await fetch(`${url}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const answer = (await r.json()) as { error: { code: string; message: string } };
      expect(r.status).toBe(400);
      expect(answer.error.code).toBe('E_INVALID_INPUT');
      // Refused by the shape scan before any parse (depth cap 32).
      expect(answer.error.message).toMatch(/nests deeper than 32/);
      // Within the depth cap, the schema validator names the field.
      const shallow = await fetch(`${url}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"jobId":${'['.repeat(20)}${']'.repeat(20)}}`,
      });
      expect(shallow.status).toBe(400);
      expect(((await shallow.json()) as { error: { message: string } }).error.message).toMatch(/jobId/);
      expect(logs.join('')).not.toMatch(/"level":"error"/);
      expect((await fetch(`${url}/v1/openapi.json`)).status).toBe(200);
    }, 30_000);
});
