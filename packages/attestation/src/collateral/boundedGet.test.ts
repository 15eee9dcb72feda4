import { describe, expect, it } from 'vitest';
import { boundedGet } from './boundedGet.ts';

// The shared GET of the PCS/PCCS and KDS clients against a hostile or failing service: every
// answer below is what a rogue mirror can send; none may buffer past the cap or retry what
// cannot succeed.
const URL_ = 'https://kds.test/vcek/v1/Milan/cert_chain?x=1';

function service(answers: (() => Response | Promise<Response>)[]) {
  let calls = 0;
  const fetch = (async () => {
    const a = answers[Math.min(calls, answers.length - 1)]!;
    calls++;
    return a();
  }) as unknown as typeof globalThis.fetch;
  return { fetch, calls: () => calls };
}

const opts = (fetch: typeof globalThis.fetch, o: Partial<Parameters<typeof boundedGet>[1]> = {}) => ({
  fetch,
  timeoutMs: 1000,
  retries: 2,
  minRetryDelayMs: 1,
  maxBytes: 16,
  service: 'the KDS',
  response: 'the KDS response',
  ...o,
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as { code?: string; message?: string },
  );

describe('boundedGet', () => {
  it('returns the body and headers of a 2xx answer', async () => {
    const s = service([() => new Response('chain', { headers: { 'x-a': 'b' } })]);
    const r = await boundedGet(URL_, opts(s.fetch));
    expect(Buffer.from(r.body).toString()).toBe('chain');
    expect(r.headers.get('x-a')).toBe('b');
  });

  it('attack: a content-length over the cap is E_TOO_LARGE at once, naming the URL, not retried', async () => {
    const s = service([() => new Response('x'.repeat(17), { headers: { 'content-length': '17' } })]);
    const e = await failure(boundedGet(URL_, opts(s.fetch)));
    expect(e?.code).toBe('E_TOO_LARGE');
    expect(e?.message).toContain('https://kds.test/vcek/v1/Milan/cert_chain?x=1');
    expect(s.calls()).toBe(1);
  });

  it('attack: a body streamed past the cap without a content-length is E_TOO_LARGE, not retried', async () => {
    const s = service([
      () =>
        new Response(
          new ReadableStream({
            pull(c) {
              c.enqueue(new Uint8Array(8)); // endless
            },
          }),
        ),
    ]);
    const e = await failure(boundedGet(URL_, opts(s.fetch)));
    expect(e?.code).toBe('E_TOO_LARGE');
    expect(s.calls()).toBe(1);
  });

  it('retries 503s, and a 404 is E_UNAVAILABLE at once', async () => {
    const flaky = service([() => new Response(null, { status: 503 }), () => new Response('ok')]);
    expect(Buffer.from((await boundedGet(URL_, opts(flaky.fetch))).body).toString()).toBe('ok');
    expect(flaky.calls()).toBe(2);
    const missing = service([() => new Response(null, { status: 404 })]);
    const e = await failure(boundedGet(URL_, opts(missing.fetch)));
    expect(e).toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringContaining('the KDS answered 404'),
    });
    expect(missing.calls()).toBe(1);
  });

  it('a service that never answers is E_UNAVAILABLE after the retries, saying it did not answer in time', async () => {
    let calls = 0;
    // Never answers; only the per-attempt timeout ends the request.
    const hanging = (async (_u: unknown, init?: RequestInit) => {
      calls++;
      return new Promise<Response>((_r, reject) =>
        init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)),
      );
    }) as typeof globalThis.fetch;
    const e = await failure(boundedGet(URL_, opts(hanging, { timeoutMs: 50, retries: 1 })));
    expect(e).toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringContaining('the KDS did not answer within 50 ms'),
    });
    expect(calls).toBe(2);
  });
});
