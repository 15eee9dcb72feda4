import { describe, expect, it } from 'vitest';
import { createChainClock } from './chainClock.ts';

describe('enclave chain clock', () => {
  it('counts on from the chain time the host gave with the monotonic clock, whatever the host clock says', () => {
    let mono = 0;
    const skewedHost = 2_000_000_000; // an hour (and more) ahead of the chain
    const c = createChainClock({ hostNow: () => skewedHost, monotonicMs: () => mono });
    expect(c.known()).toBe(false);
    expect(c.now()).toBe(skewedHost);
    c.set(1_700_000_000);
    expect(c.now()).toBe(1_700_000_000);
    mono += 61_500;
    expect(c.now()).toBe(1_700_000_061);
  });

  it('never goes back once set (an idle chain repeats an older block)', () => {
    let mono = 0;
    const c = createChainClock({ monotonicMs: () => mono });
    c.set(1_700_000_000);
    mono += 30_000;
    c.set(1_700_000_000); // the same, older block
    expect(c.now()).toBe(1_700_000_030);
    c.set(1_700_000_100);
    expect(c.now()).toBe(1_700_000_100);
    expect(() => c.set(-1)).toThrow(/unix seconds/);
    expect(() => c.set(1.5)).toThrow(/unix seconds/);
  });
});
