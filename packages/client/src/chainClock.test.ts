import { describe, expect, it } from 'vitest';
import { ChainClock } from './chainClock.ts';

/** A clock over a scripted chain (block timestamps) and a scripted monotonic clock (ms). */
function scripted(chain: number) {
  const s = { chain, ms: 1_000 };
  const clock = new ChainClock(
    async () => s.chain,
    () => s.ms,
  );
  return { s, clock };
}

describe('ChainClock', () => {
  it('counts from the chain time first seen with its own elapsed time, whatever the host clock says', async () => {
    const { s, clock } = scripted(1_000_000);
    expect(clock.estimate()).toBeUndefined();
    expect(await clock.now()).toBe(1_000_000);
    // No block since (a chain that mines only on transactions): own elapsed time counts.
    s.ms += 61_500;
    expect(await clock.now()).toBe(1_000_061);
    // The host's wall clock is not consulted at all: Date.now() may be hours ahead of 1_000_061.
    expect(Date.now() / 1000).toBeGreaterThan(1_000_061 + 1800);
  });

  it('takes a later block when the chain moved faster than its own elapsed time', async () => {
    const { s, clock } = scripted(5_000);
    await clock.now();
    s.chain = 9_000; // e.g. evm_increaseTime, or an origin read from an old block
    s.ms += 1_000;
    expect(await clock.now()).toBe(9_000);
    expect(clock.estimate()).toBe(9_000);
  });

  it('never goes back when a later read returns an older block (a lagging RPC replica)', async () => {
    const { s, clock } = scripted(5_000);
    await clock.now();
    s.ms += 10_000;
    s.chain = 4_990;
    expect(await clock.now()).toBe(5_010);
  });

  it('ignores a monotonic clock that did not advance, and rejects a non-numeric chain time', () => {
    const { clock } = scripted(0);
    expect(clock.observe(100)).toBe(100);
    expect(() => clock.observe(Number.NaN)).toThrow(TypeError);
  });

  it('passes a chain read failure on', async () => {
    const clock = new ChainClock(async () => {
      throw new Error('chain unreachable');
    });
    await expect(clock.now()).rejects.toThrow('chain unreachable');
  });
});
