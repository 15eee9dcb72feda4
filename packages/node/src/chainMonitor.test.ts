import { FirnError, isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { ChainMonitor, retryChain } from './chainMonitor.ts';
import { createLogger } from './logger.ts';

const logs: string[] = [];
const logger = createLogger({}, { write: (l) => logs.push(l) });

/** A chain head that can be taken down and whose clock is an hour behind the host's. */
function fakeChain(chainNow: () => number) {
  let down = false;
  let block = 100n;
  return {
    reader: {
      async getBlock() {
        if (down) throw new Error('fetch failed: connect ECONNREFUSED');
        return { number: block++, timestamp: BigInt(chainNow()) };
      },
    },
    setDown(d: boolean) {
      down = d;
    },
  };
}

describe('chain monitor', () => {
  it('keeps chain time, not the skewed host clock, and reports the skew', async () => {
    const host = () => Math.floor(Date.now() / 1000);
    const chain = fakeChain(() => host() - 3600);
    const m = new ChainMonitor(chain.reader, { logger, hostNow: host, intervalMs: 20 });
    await m.start();
    try {
      expect(Math.abs(m.now() - (host() - 3600))).toBeLessThanOrEqual(1);
      expect(m.health().clockSkewSeconds).toBeGreaterThanOrEqual(3599);
      expect(m.up).toBe(true);
      expect(logs.join('')).toContain('host clock differs from chain time');
    } finally {
      m.stop();
    }
  });

  it('goes down with the RPC (503 E_UNAVAILABLE for new work), backs off, and comes back by itself', async () => {
    const chain = fakeChain(() => Math.floor(Date.now() / 1000));
    const m = new ChainMonitor(chain.reader, { logger, intervalMs: 20, maxBackoffMs: 80 });
    await m.start();
    try {
      await m.requireUp('take jobs');
      chain.setDown(true);
      await new Promise((r) => setTimeout(r, 100));
      expect(m.up).toBe(false);
      expect(m.health().error).toMatch(/ECONNREFUSED/);
      let err: unknown;
      try {
        await m.requireUp('take jobs');
      } catch (e) {
        err = e;
      }
      expect(isFirnError(err) && err.code).toBe('E_UNAVAILABLE');
      chain.setDown(false);
      await new Promise((r) => setTimeout(r, 250));
      expect(m.up).toBe(true);
    } finally {
      m.stop();
    }
  });

  it('retryChain retries an outage until it ends, but never a revert', async () => {
    let calls = 0;
    const v = await retryChain(
      async () => {
        if (++calls < 3) throw new FirnError('E_CHAIN', 'submitProof failed: fetch failed');
        return 'ok';
      },
      { until: () => false, initialMs: 5 },
    );
    expect([v, calls]).toEqual(['ok', 3]);
    let reverts = 0;
    await expect(
      retryChain(
        async () => {
          reverts++;
          throw new FirnError('E_CHAIN_REVERTED', 'submitProof reverted: ClaimExpired(...)');
        },
        { until: () => false, initialMs: 5 },
      ),
    ).rejects.toMatchObject({ code: 'E_CHAIN_REVERTED' });
    expect(reverts).toBe(1);
    // Past its limit (the claim lapsed) it stops and raises the outage.
    await expect(
      retryChain(
        async () => {
          throw new FirnError('E_CHAIN', 'down');
        },
        { until: () => true, initialMs: 5 },
      ),
    ).rejects.toMatchObject({ code: 'E_CHAIN' });
  });
});
