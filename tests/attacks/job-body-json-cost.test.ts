import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import { type StubNodeApiServer, startStubNodeApi } from '../helpers/stubNodeApiServer.ts';
import { DEFAULT_HTTP_LIMITS, RequestRateLimiter } from '../../packages/node/src/http/limits.ts';

// The attack: a stranger (no keys: the signature is checked only after the body is parsed, since
// it covers the body) posts job submissions whose 2 MiB JSON is a nesting or container bomb:
// a million nested brackets, or 700,000 empty objects. The node parsed each with JSON.parse,
// stringified it and parsed it again for its validator: about a second or two of its only JS
// thread per request (here, on a shared two-core machine), within the per-IP rate of 50 mutating
// requests a second, so one address held the node's event loop (every route, the job loop, the
// chain monitor, session relays). The nested one was also answered 500 E_INTERNAL (the
// re-stringify overflows the stack). Promise (docs/api.md, "Limits"; decision 1550): a stranger
// cannot exhaust the node with malformed bodies; a malformed body is a 4xx, never a 5xx, and
// logs no error.
describe('attack: JSON bombs in job submissions from a stranger', () => {
  let api: StubNodeApiServer;
  let url: string;
  let reached = 0;
  beforeAll(async () => {
    const jobs = {
      submit: async () => {
        reached++;
        return undefined;
      },
    } as unknown as JobService;
    api = await startStubNodeApi(
      { jobs, rateLimiter: new RequestRateLimiter(DEFAULT_HTTP_LIMITS.mutatingRequestsPerSecondPerIp) },
      { chain: {} },
    );
    url = api.url;
  });
  afterAll(() => api.close());

  const post = async (body: string) => {
    const r = await fetch(`${url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await r.arrayBuffer();
    return r.status;
  };
  const half = (2 << 20) / 2 - 16;
  const deep = '['.repeat(half) + ']'.repeat(half);
  const wide = `[${'{},'.repeat(699_000)}{}]`;

  it('a nesting bomb is a 4xx, never a 5xx, and logs no error', async () => {
    const status = await post(deep);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect(api.logs.filter((l) => /"level":"error"/.test(l))).toEqual([]);
    expect(reached).toBe(0);
  }, 60_000);

  it('bombs within the per-IP rate do not hold the event loop (each refused in well under 400 ms)', async () => {
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    const statuses: number[] = [];
    // Six requests, well within 50 a second from one address.
    for (const body of [deep, wide, deep, wide, deep, wide]) statuses.push(await post(body));
    h.disable();
    const worstMs = h.max / 1e6;
    console.log(`statuses ${statuses.join(',')}; longest event-loop stall ${worstMs.toFixed(0)} ms`);
    for (const s of statuses) expect(s).toBeLessThan(500);
    expect(worstMs).toBeLessThan(400);
    expect(reached).toBe(0);
  }, 120_000);
});
