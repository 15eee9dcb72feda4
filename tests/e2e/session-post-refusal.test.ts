import { FirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { useNetworkSession } from '../helpers/networkSession.ts';

// The POST fallback under the node's own per-IP session rate limit (docs/decisions/1530): a
// request the node refuses with 429 (Retry-After) before it reaches the enclave is re-sent, the
// same sealed frame, and the session goes on; its Work Proof covers exactly the requests answered.
const x = (v: number) => ({
  x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.from([v, 2, 3]) },
});

const fixture = useNetworkSession(5, 'http');

describe('session POST fallback against the node’s rate limit', () => {
  it('a request refused with 429 is re-sent and answered; the session survives and its proof checks', async () => {
    const { net, session } = fixture;
    expect(session.transport).toBe('http');
    expect((await session.infer(x(1))).y!.dims).toEqual([1, 2]);
    // The node's limiter refuses the next admission (as when this address is over its rate):
    // 429 E_RATE_LIMITED with Retry-After: 1, before the body reaches the enclave.
    const limiter = net.node.sessionRateLimiter;
    const take = limiter.take.bind(limiter);
    let refusals = 0;
    limiter.take = async (key: string) => {
      if (refusals++ === 0)
        throw new FirnError('E_RATE_LIMITED', 'too many requests from this address', {
          details: { retryAfterSeconds: 1 },
        });
      return take(key);
    };
    try {
      const t0 = performance.now();
      expect((await session.infer(x(2))).y!.dims).toEqual([1, 2]);
      // Retry-After was honoured (about 1 s), and the limiter saw the request twice.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
      expect(refusals).toBe(2);
    } finally {
      limiter.take = take;
    }
    expect((await session.infer(x(3))).y!.dims).toEqual([1, 2]);
    const closed = await session.close();
    expect(closed.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(closed.requests).toBe(3);
    expect(closed.workUnits).toBe(9n);
  }, 60_000);
});
