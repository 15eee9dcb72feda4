import { mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvidenceBundle } from '@firn/core';
import type { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { NodeMetrics } from '../../packages/node/src/metrics.ts';
import { DEFAULT_STORAGE_QUOTAS } from '../../packages/node/src/storage/quota.ts';
import { DEFAULT_HTTP_LIMITS, RequestRateLimiter, UploadSlots } from '../../packages/node/src/http/limits.ts';
import { createNodeApi, type NodeApiHost } from '../../packages/node/src/http/nodeApi.ts';

/** Send raw HTTP/1.1 bytes; resolve with the whole answer once the server closes. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => {
      out += d.toString();
    });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    s.write(text);
    setTimeout(() => s.end(), 500).unref();
  });
}

describe('attack: a JSON route with two Content-Type headers', () => {
  const logs: string[] = [];
  let server: Server;
  let port: number;
  beforeAll(async () => {
    const host = {
      opts: {
        dataDir: mkdtempSync(join(tmpdir(), 'firn-atk-')),
        logger: createLogger({}, { write: (l: string) => logs.push(l) }),
      },
      url: 'http://node.test',
      chainStatus: 'active',
      metrics: new NodeMetrics(() => ({ enclaveUp: true })),
      jobs: undefined,
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
    const app = createNodeApi(host);
    server = createAdaptorServer({
      fetch: app.fetch,
      autoCleanupIncoming: false,
      overrideGlobalObjects: false,
    }) as Server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  it("is the caller's mistake (4xx, never 5xx), and logs no error", async () => {
    const body = JSON.stringify({ nonce: `0x${'ab'.repeat(16)}` });
    const answer = await rawRequest(
      port,
      'POST /v1/attestation HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    const status = Number(answer.split(' ')[1]);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect(logs.join('')).not.toMatch(/"level":"error"/);
  });
});
