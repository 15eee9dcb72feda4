import { describe, expect, it } from 'vitest';
import { SharedHealthCheck } from './sharedHealth.ts';

describe('SharedHealthCheck', () => {
  it('checks at most once per refresh period, and concurrent requests share one check', async () => {
    let now = 0;
    let checks = 0;
    const h = new SharedHealthCheck(
      async () => {
        checks++;
        await new Promise((r) => setTimeout(r, 5));
        return { ok: true, n: checks };
      },
      1000,
      () => now,
    );
    const first = await Promise.all(Array.from({ length: 50 }, () => h.get()));
    expect(checks).toBe(1);
    expect(new Set(first.map((r) => r.n))).toEqual(new Set([1]));
    now = 999;
    expect((await h.get()).n).toBe(1);
    now = 2000;
    expect((await h.get()).n).toBe(2);
    expect(checks).toBe(2);
  });

  it('a check that throws is not kept: every sharer gets the error and the next request checks again', async () => {
    let fail = true;
    let checks = 0;
    const h = new SharedHealthCheck(
      async () => {
        checks++;
        if (fail) throw new Error('down');
        return { ok: true };
      },
      1000,
      () => 0,
    );
    const both = await Promise.allSettled([h.get(), h.get()]);
    expect(both.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(checks).toBe(1);
    fail = false;
    expect(await h.get()).toEqual({ ok: true });
    expect(checks).toBe(2);
  });
});
