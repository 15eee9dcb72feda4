import { request } from 'node:http';
import type { EvidenceBundle } from '@firn/core';
import { FirnError } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HTTP_LIMITS, RequestRateLimiter } from '../../packages/node/src/http/limits.ts';
import type { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import { type StubNodeApiServer, startStubNodeApi } from '../helpers/stubNodeApiServer.ts';

// Routes anyone reaches without a credential did unbounded work per client (decision 1744 left
// them as they were): every GET /healthz sent a `hello` down the enclave pipe (and wrote a database
// row), GET /metrics rendered the registry, and POST /v1/sessions/{id}/requests refused a missing
// or guessed session token before any rate was counted. A stranger looping on /healthz queues a
// hello in front of every job and session call through the one enclave pipe.
// Safe outcome: /healthz answers from a health result refreshed at most every few hundred ms
// (concurrent requests share one check); every one of these routes is held to a per-client rate
// (429 with Retry-After), while another client is still answered.
const PIPE_MS = 20; // one call through the enclave pipe, one at a time (NodeDaemon's supervisor)
let api: StubNodeApiServer;
let healthChecks = 0;
let pipe: Promise<unknown> = Promise.resolve();

/** A call through the serial enclave pipe: waits for the calls in front, then takes PIPE_MS. */
function throughPipe<T>(f: () => T): Promise<T> {
  const next = pipe.then(() => new Promise<T>((r) => setTimeout(() => r(f()), PIPE_MS)));
  pipe = next.catch(() => undefined);
  return next;
}

/** GET `path` from `localAddress` (127.0.0.2 is the stranger, 127.0.0.1 the honest client). */
function get(
  path: string,
  localAddress: string,
  init: { method?: string; headers?: Record<string, string | number>; body?: Buffer } = {},
): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((res) => {
    const r = request(
      `${api.url}${path}`,
      { method: init.method ?? 'GET', localAddress, headers: init.headers ?? {} },
      (resp) => {
        resp.resume();
        const out = { status: resp.statusCode ?? 0, retryAfter: resp.headers['retry-after'] };
        resp.on('end', () => res(out));
        resp.on('error', () => res(out));
      },
    );
    r.on('error', () => res({ status: 0, retryAfter: undefined }));
    r.end(init.body);
  });
}

beforeAll(async () => {
  api = await startStubNodeApi(
    {
      limits: { ...DEFAULT_HTTP_LIMITS, readRequestsPerSecondPerIp: 20 },
      sessionRateLimiter: new RequestRateLimiter(20),
      health: () =>
        throughPipe(() => {
          healthChecks++;
          return { ok: true, enclave: 'up' };
        }),
      attest: () => throughPipe(() => ({ version: 1 }) as unknown as EvidenceBundle),
      jobs: {
        sessions: {
          // The real service refuses a request without the session's token like this, at once.
          request: async () => {
            throw new FirnError('E_UNAUTHENTICATED', 'this session needs its x-firn-session-token');
          },
        },
      } as unknown as JobService,
    },
    { chain: {} },
  );
});

afterAll(() => api?.close());

const p90 = (l: number[]) => [...l].sort((a, b) => a - b)[Math.floor(l.length * 0.9)]!;

describe('a stranger loops on the routes that need no credential', () => {
  it("looping GET /healthz puts no enclave call in front of another client's attestation", async () => {
    let stop = false;
    const loop = async () => {
      while (!stop) await get('/healthz', '127.0.0.2');
    };
    const before = healthChecks;
    const loops = Array.from({ length: 8 }, loop);
    await new Promise((r) => setTimeout(r, 200));
    const lat: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < 15; i++) {
      const t = performance.now();
      const r = await get('/v1/attestation', '127.0.0.1', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify({ nonce: `0x${'11'.repeat(32)}` })),
      });
      expect(r.status).toBe(200);
      lat.push(performance.now() - t);
    }
    const seconds = (performance.now() - t0) / 1000 + 0.2;
    stop = true;
    await Promise.all(loops);
    // An honest client still learns the health, from the shared result.
    expect((await get('/healthz', '127.0.0.1')).status).toBe(200);
    expect(p90(lat), `attestation p90 ${p90(lat).toFixed(0)} ms (one pipe call: ${PIPE_MS} ms)`).toBeLessThan(
      4 * PIPE_MS,
    );
    const checks = healthChecks - before;
    expect(checks, `${checks} enclave health checks in ${seconds.toFixed(1)} s`).toBeLessThanOrEqual(
      Math.ceil(seconds * 4) + 2,
    );
  }, 60_000);

  it.each(['/healthz', '/metrics', '/v1/node', '/v1/openapi.json'])(
    'GET %s over the per-client read rate is 429 with Retry-After; another client is still answered',
    async (path) => {
      const answers = await Promise.all(Array.from({ length: 60 }, () => get(path, '127.0.0.2')));
      const refused = answers.filter((a) => a.status === 429);
      expect(refused.length, answers.map((a) => a.status).join(',')).toBeGreaterThan(0);
      expect(refused.every((a) => Number(a.retryAfter) >= 1)).toBe(true);
      expect((await get(path, '127.0.0.1')).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1100));
    },
    30_000,
  );

  it('session requests with a guessed token over the per-client session rate are 429 with Retry-After', async () => {
    const path = `/v1/sessions/0x${'ab'.repeat(32)}/requests`;
    const send = (from: string) =>
      get(path, from, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'x-firn-session-token': 'guess' },
        body: Buffer.alloc(64),
      });
    const answers = await Promise.all(Array.from({ length: 60 }, () => send('127.0.0.2')));
    const refused = answers.filter((a) => a.status === 429);
    expect(refused.length, answers.map((a) => a.status).join(',')).toBeGreaterThan(0);
    expect(refused.every((a) => Number(a.retryAfter) >= 1)).toBe(true);
    // The client with its own budget is answered by the session service (here: 401).
    expect((await send('127.0.0.1')).status).toBe(401);
  }, 30_000);
});
