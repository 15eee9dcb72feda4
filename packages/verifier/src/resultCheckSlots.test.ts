import { describe, expect, it } from 'vitest';
import { ResultCheckSlots } from './resultCheckSlots.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('ResultCheckSlots', () => {
  it('runs at most `total` checks at once and at most `perNode` for one node', async () => {
    const slots = new ResultCheckSlots(3, 2);
    const granted: string[] = [];
    const releases: (() => void)[] = [];
    const ask = (node: string) =>
      void slots.acquire(node).then((r) => {
        granted.push(node);
        releases.push(r);
      });
    for (const n of ['A', 'A', 'A', 'A', 'B', 'C']) ask(n);
    await tick();
    // A's third and fourth wait for A; B takes the third place, C waits for any place.
    expect(granted).toEqual(['A', 'A', 'B']);
    expect({ active: slots.active, queued: slots.queued }).toEqual({ active: 3, queued: 3 });
    releases[2]!(); // B done: the next in line that may run is C (A is at its limit).
    await tick();
    expect(granted).toEqual(['A', 'A', 'B', 'C']);
    releases[0]!(); // one of A's done: A's third runs.
    await tick();
    expect(granted).toEqual(['A', 'A', 'B', 'C', 'A']);
    expect(slots.queued).toBe(1);
  });

  it('a place given back twice is given back once', async () => {
    const slots = new ResultCheckSlots(1, 1);
    const r1 = await slots.acquire('0xAA');
    let second = false;
    void slots.acquire('0xaa').then(() => {
      second = true;
    });
    await tick();
    expect(second).toBe(false);
    r1();
    r1();
    await tick();
    expect({ second, active: slots.active }).toEqual({ second: true, active: 1 });
  });

  it('refuses a limit below one', () => {
    expect(() => new ResultCheckSlots(0, 1)).toThrow(RangeError);
    expect(() => new ResultCheckSlots(4, 0)).toThrow(RangeError);
  });
});
