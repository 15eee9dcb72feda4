import { mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EvidenceBundle } from '@firn/core';
import { createAdaptorServer } from '@hono/node-server';
import type { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import { DEFAULT_HTTP_LIMITS, RequestRateLimiter, UploadSlots } from '../../packages/node/src/http/limits.ts';
import { createNodeApi, type NodeApiHost } from '../../packages/node/src/http/nodeApi.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { NodeMetrics } from '../../packages/node/src/metrics.ts';
import { DEFAULT_STORAGE_QUOTAS } from '../../packages/node/src/storage/quota.ts';

/** A node's HTTP API served on 127.0.0.1 over a stub host, and the log lines it wrote. */
export interface StubNodeApiServer {
  server: Server;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Every JSON log line the node's logger wrote. */
  logs: string[];
  close: () => void;
}

/**
 * Serve `createNodeApi` (the daemon's real routes, limits and body checks) over a host with no
 * chain, no enclave and no database: for attacks refused at the HTTP layer. `host` replaces fields
 * of the stub host (e.g. `jobs`, `rateLimiter`); `opts` is merged into its `opts`. Default limits
 * and quotas; 1,000 requests a second per IP.
 */
export async function startStubNodeApi(
  host: Record<string, unknown> = {},
  opts: Record<string, unknown> = {},
): Promise<StubNodeApiServer> {
  const logs: string[] = [];
  const stub = {
    opts: {
      dataDir: mkdtempSync(join(tmpdir(), 'firn-atk-')),
      logger: createLogger({}, { write: (l: string) => logs.push(l) }),
      ...opts,
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
    ...host,
  } as unknown as NodeApiHost;
  const server = createAdaptorServer({
    fetch: createNodeApi(stub).fetch,
    autoCleanupIncoming: false,
    overrideGlobalObjects: false,
  }) as Server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { server, port, url: `http://127.0.0.1:${port}`, logs, close: () => server.close() };
}
