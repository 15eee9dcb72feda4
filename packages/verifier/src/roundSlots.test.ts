import { describe, expect, it } from 'vitest';
import { RoundSlots } from './roundSlots.ts';

const tick = () => new Promise((r) => setTimeout(r, 0));

/** A task that runs until `release()` is called, recording its start in `log`. */
function held(log: string[], name: string) {
  let release!: () => void;
  const done = new Promise<void>((r) => {
    release = r;
  });
  return {
    task: async () => {
      log.push(name);
      await done;
      return name;
    },
    release: () => release(),
  };
}

describe('RoundSlots', () => {
  it('runs at most `size` tasks at once, first tries before retries, each in arrival order', async () => {
    const slots = new RoundSlots(2);
    const log: string[] = [];
    const [a, b, retry, fresh1, fresh2] = ['a', 'b', 'retry', 'fresh1', 'fresh2'].map((n) => held(log, n));
    const results = [
      slots.run(a!.task),
      slots.run(b!.task),
      slots.run(retry!.task, 1),
      slots.run(fresh1!.task),
      slots.run(fresh2!.task),
    ];
    await tick();
    expect(log).toEqual(['a', 'b']);
    expect(slots.active).toBe(2);
    expect(slots.queued).toBe(3);
    a!.release();
    await tick();
    await tick();
    expect(log).toEqual(['a', 'b', 'fresh1']);
    b!.release();
    await tick();
    await tick();
    expect(log).toEqual(['a', 'b', 'fresh1', 'fresh2']);
    fresh1!.release();
    await tick();
    await tick();
    expect(log).toEqual(['a', 'b', 'fresh1', 'fresh2', 'retry']);
    fresh2!.release();
    retry!.release();
    expect(await Promise.all(results)).toEqual(['a', 'b', 'retry', 'fresh1', 'fresh2']);
    expect(slots.active).toBe(0);
  });

  it('frees the slot of a task that throws', async () => {
    const slots = new RoundSlots(1);
    await expect(slots.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await slots.run(async () => 'next')).toBe('next');
    expect(slots.active).toBe(0);
  });

  it('refuses a size that is not a whole number of at least 1', () => {
    expect(() => new RoundSlots(0)).toThrow(RangeError);
    expect(() => new RoundSlots(1.5)).toThrow(RangeError);
  });
});
