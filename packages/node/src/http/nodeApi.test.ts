import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvidenceBundle } from '@firn/core';
import type { EnclaveSupervisor } from '../enclaveSupervisor.ts';
import { createLogger } from '../logger.ts';
import { NodeMetrics } from '../metrics.ts';
import { DEFAULT_STORAGE_QUOTAS } from '../storage/quota.ts';
import { DEFAULT_HTTP_LIMITS, RequestRateLimiter, UploadSlots } from './limits.ts';
import { createNodeApi, type NodeApiHost, nodeOpenApiDocument, openApiPath } from './nodeApi.ts';

const ID = `0x${'ab'.repeat(32)}`;

/** A node host without an enclave or a database: a chain node whose storage cannot be opened. */
function fakeHost(chain: boolean, logs: string[]) {
  const nonces: string[] = [];
  const host: NodeApiHost = {
    opts: {
      dataDir: mkdtempSync(join(tmpdir(), 'firn-api-')),
      logger: createLogger({}, { write: (l) => logs.push(l) }),
      ...(chain ? { chain: {} } : {}),
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
    health: async () => ({ ok: true, enclave: 'up' }),
    attest: async (nonce) => {
      nonces.push(Buffer.from(nonce).toString('hex'));
      return { version: 1, teeType: 'simulated' } as unknown as EvidenceBundle;
    },
  };
  return { host, nonces };
}

async function serve(host: NodeApiHost) {
  const app = createNodeApi(host);
  const server = createAdaptorServer({
    fetch: app.fetch,
    autoCleanupIncoming: false,
    overrideGlobalObjects: false,
  }) as Server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { app, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('node API on Hono: the OpenAPI document is the routes', () => {
  for (const chain of [false, true])
    it(`every route the ${chain ? 'chain' : 'serve-only'} node answers is documented, and nothing else; the document is valid OpenAPI 3.1`, async () => {
      const { host } = fakeHost(chain, []);
      const app = createNodeApi(host);
      const doc = nodeOpenApiDocument(app) as {
        openapi: string;
        paths: Record<string, Record<string, unknown>>;
      };
      // Hono lists a route once per handler (its middleware, validators, handler): one entry each.
      const served = [
        ...new Set(
          app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${openApiPath(r.path)}`),
        ),
      ].sort();
      const documented = Object.entries(doc.paths)
        .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
        .sort();
      expect(served).toEqual(documented);
      expect(documented).toEqual(
        expect.arrayContaining(['GET /healthz', 'GET /metrics', 'GET /v1/openapi.json']),
      );
      if (chain)
        expect(documented).toEqual(
          expect.arrayContaining([
            'PUT /v1/artifacts',
            'GET /v1/jobs/{id}/events',
            'DELETE /v1/sessions/{id}',
          ]),
        );
      expect(doc.openapi).toBe('3.1.0');
      const v = new Validator();
      const res = await v.validate(structuredClone(doc));
      expect(res.errors ?? []).toEqual([]);
      expect(res.valid).toBe(true);
      expect(v.version).toBe('3.1');
    });

  it('the generated document carries the signature headers, the path schemas and the 507 answer', async () => {
    const { host } = fakeHost(true, []);
    const doc = nodeOpenApiDocument(createNodeApi(host)) as {
      paths: Record<
        string,
        Record<string, { parameters?: { name: string; in: string }[]; responses: object }>
      >;
    };
    const submit = doc.paths['/v1/jobs']!.post!;
    expect(submit.parameters?.map((p) => `${p.in}:${p.name}`)).toContain('header:x-firn-signature');
    expect(Object.keys(submit.responses)).toContain('507');
    const upload = doc.paths['/v1/artifacts']!.put!;
    expect(upload.parameters?.map((p) => p.name)).toEqual(
      expect.arrayContaining(['x-firn-uploader', 'x-firn-artifact-id', 'x-firn-intent-expires']),
    );
    expect(doc.paths['/v1/jobs/{id}']!.get!.parameters?.map((p) => `${p.in}:${p.name}`)).toEqual(['path:id']);
  });
});

describe('node API on Hono: behaviour at the edge', () => {
  const logs: string[] = [];
  let s: Awaited<ReturnType<typeof serve>>;
  let nonces: string[];
  beforeAll(async () => {
    const f = fakeHost(true, logs);
    nonces = f.nonces;
    s = await serve(f.host);
  });
  afterAll(() => s.server.close());

  const errorOf = async (r: Response) =>
    ((await r.json()) as { error: { code: string; message: string } }).error;

  it('serves its OpenAPI document over HTTP', async () => {
    const r = await fetch(`${s.url}/v1/openapi.json`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await r.json()).toEqual(nodeOpenApiDocument(s.app));
  });

  it('malformed percent-escapes, path traversal and bad ids are 400 E_INVALID_INPUT, never 500', async () => {
    for (const path of [
      '/v1/jobs/%E0%A4%A',
      '/v1/artifacts/%',
      '/v1/jobs/%ZZ/result',
      '/v1/artifacts/..%2f..%2fetc',
      '/v1/jobs/0x1234',
    ]) {
      const r = await fetch(`${s.url}${path}`);
      expect(r.status, path).toBe(400);
      expect((await errorOf(r)).code, path).toBe('E_INVALID_INPUT');
    }
  });

  it('an unknown route is 404 E_NOT_FOUND and a known path with another method is 405', async () => {
    const r = await fetch(`${s.url}/v1/nothing`);
    expect(r.status).toBe(404);
    expect((await errorOf(r)).code).toBe('E_NOT_FOUND');
    const m = await fetch(`${s.url}/v1/jobs/${ID}`, { method: 'DELETE' });
    expect(m.status).toBe(405);
    expect(await errorOf(m)).toEqual({ code: 'E_INVALID_INPUT', message: 'method not allowed' });
  });

  it('attestation: 415 for a cross-site simple request, 413 over the cap before reading, 400 for a bad nonce, 200 with the nonce passed through', async () => {
    const nonce = `0x${'11'.repeat(32)}`;
    const text = await fetch(`${s.url}/v1/attestation`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ nonce }),
    });
    expect(text.status).toBe(415);
    expect((await errorOf(text)).code).toBe('E_UNSUPPORTED');
    const big = await fetch(`${s.url}/v1/attestation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nonce, pad: 'x'.repeat(5000) }),
    });
    expect(big.status).toBe(413);
    expect((await errorOf(big)).code).toBe('E_TOO_LARGE');
    for (const bad of [{ nonce: '0x11' }, { nonce: 7 }, {}, 'not an object']) {
      const r = await fetch(`${s.url}/v1/attestation`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(bad),
      });
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect((await errorOf(r)).code).toBe('E_INVALID_INPUT');
    }
    const notJson = await fetch(`${s.url}/v1/attestation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"nonce":',
    });
    expect(notJson.status).toBe(400);
    expect(nonces).toEqual([]);
    const ok = await fetch(`${s.url}/v1/attestation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nonce }),
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ version: 1, teeType: 'simulated' });
    expect(nonces).toEqual(['11'.repeat(32)]);
  });

  it('attestations in flight are capped over all clients: the enclave never has more, and a client over its share and its waits is 429 at once', async () => {
    const { host } = fakeHost(false, []);
    const waiting: (() => void)[] = [];
    let calls = 0;
    const limited: NodeApiHost = {
      ...host,
      // One client may hold both places; its further requests wait (two) or are refused.
      limits: { ...DEFAULT_HTTP_LIMITS, maxAttestationsInFlight: 2, maxAttestationsInFlightPerClient: 2 },
      attest: () => {
        calls++;
        return new Promise((r) =>
          waiting.push(() => r({ version: 1, teeType: 'simulated' } as unknown as EvidenceBundle)),
        );
      },
    };
    const t = await serve(limited);
    try {
      const attest = () =>
        fetch(`${t.url}/v1/attestation`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ nonce: `0x${'22'.repeat(32)}` }),
        });
      const held = [attest(), attest()];
      while (calls < 2) await new Promise((r) => setTimeout(r, 10));
      // Two more wait at the HTTP edge, not in the enclave; a fifth is refused at once.
      const queued = [attest(), attest()];
      await new Promise((r) => setTimeout(r, 100));
      const over = await attest();
      expect(over.status).toBe(429);
      expect(over.headers.get('retry-after')).toBe('1');
      expect((await errorOf(over)).message).toMatch(/2 attestations in progress and 2 waiting/);
      expect(calls).toBe(2);
      for (const w of waiting.splice(0)) w();
      expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
      while (calls < 4) await new Promise((r) => setTimeout(r, 10));
      expect(calls).toBe(4);
      for (const w of waiting.splice(0)) w();
      expect((await Promise.all(queued)).map((r) => r.status)).toEqual([200, 200]);
      // The places came back.
      const again = attest();
      while (calls < 5) await new Promise((r) => setTimeout(r, 10));
      for (const w of waiting.splice(0)) w();
      expect((await again).status).toBe(200);
    } finally {
      t.server.closeAllConnections();
      await new Promise((r) => t.server.close(r));
      rmSync(host.opts.dataDir, { recursive: true, force: true });
    }
  });

  it('a node whose storage cannot be written answers 507 to jobs, sessions and uploads, and closes the connection without reading the body', async () => {
    for (const [method, path] of [
      ['POST', '/v1/jobs'],
      ['POST', '/v1/sessions'],
      ['PUT', '/v1/artifacts'],
    ] as const) {
      const r = await fetch(`${s.url}${path}`, {
        method,
        headers: { 'content-type': method === 'PUT' ? 'application/octet-stream' : 'application/json' },
        body: '{}',
      });
      expect(r.status, path).toBe(507);
      expect((await errorOf(r)).code).toBe('E_STORAGE_FULL');
    }
  });

  it('an attestation request the client aborts mid-body is counted as 499 and logs no error; /metrics is Prometheus text by declared route', async () => {
    const { port } = s.server.address() as AddressInfo;
    const sock = connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(
      'POST /v1/attestation HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n{"nonce":',
    );
    await new Promise((r) => setTimeout(r, 100));
    sock.destroy();
    const series = 'firn_http_requests_total{method="POST",route="/v1/attestation",status="499"} 1';
    let text = '';
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      const r = await fetch(`${s.url}/metrics`);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      text = await r.text();
      if (text.includes(series)) break;
      await new Promise((r2) => setTimeout(r2, 50));
    }
    expect(text).toContain(series);
    expect(text).toContain('firn_http_requests_total{method="DELETE",route="unmatched",status="405"} 1');
    expect(text).toContain('firn_http_requests_total{method="GET",route="/v1/jobs/:id",status="400"} 1');
    expect(text).toContain('firn_http_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(text).toMatch(/^firn_enclave_up 1$/m);
    expect(text).toContain('# TYPE firn_http_request_duration_seconds histogram');
    expect(text).toContain('# TYPE firn_job_duration_seconds histogram');
    expect(text).toContain('# TYPE firn_chain_head_lag_seconds gauge');
    // Route labels are declared patterns: no id a caller sent ever becomes a label.
    expect(text).not.toContain('0xabab');
    expect(text).not.toContain('%E0');
    expect(logs.filter((l) => l.includes('/v1/attestation'))).toEqual([]);
  });
});
