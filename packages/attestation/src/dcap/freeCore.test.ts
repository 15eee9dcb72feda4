import { describe, expect, it } from 'vitest';
import { freeCoresBetween, poolHasACore, sampleCpu } from './freeCore.ts';

describe('freeCoresBetween (the auto choice of where DCAP signatures run)', () => {
  const at = (t: number, busy: number, own: number) => ({ at: t, busy, own });

  it('a quiet 2-core machine leaves a core free beside the calling thread', () => {
    // 1000 ms: the machine was busy 1000 ms in all, all of it this process (thread + pool).
    expect(freeCoresBetween(at(0, 0, 0), at(1000, 1000, 1000), 2)).toBeCloseTo(1);
  });

  it("this process's own pool threads do not count against the pool", () => {
    // Two cores fully busy, all by this process: still one core free of other processes.
    expect(freeCoresBetween(at(0, 0, 0), at(1000, 2000, 2000), 2)).toBeCloseTo(1);
  });

  it('another busy process takes the free core', () => {
    // Other processes used 1.5 cores: half a core short of one for the calling thread.
    expect(freeCoresBetween(at(0, 0, 0), at(1000, 2000, 500), 2)).toBeCloseTo(-0.5);
    expect(freeCoresBetween(at(0, 0, 0), at(1000, 2000, 500), 2)).toBeLessThan(0.5);
  });

  it('an empty or backwards interval frees nothing', () => {
    expect(freeCoresBetween(at(5, 0, 0), at(5, 0, 0), 2)).toBe(0);
    expect(freeCoresBetween(at(5, 0, 0), at(4, 0, 0), 2)).toBe(0);
  });

  it('samples and decides from the machine it runs on', () => {
    const s = sampleCpu();
    expect(s.busy).toBeGreaterThan(0);
    expect(s.own).toBeGreaterThan(0);
    expect(typeof poolHasACore()).toBe('boolean');
  });
});
