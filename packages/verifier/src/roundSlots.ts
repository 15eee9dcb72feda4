/**
 * A bounded number of slots for the verifier's rounds (decision 1831): at most `size` tasks run at
 * once, the rest wait in line, first-tier tasks (a round's first try) before second-tier ones (a
 * round whose node already failed to answer), each tier first come first served. A task holds its
 * slot only while it runs: a round waiting between tries holds none, so a node that never answers
 * costs one slot for one evidence timeout at a time and never the whole verifier.
 */
export class RoundSlots {
  private running = 0;
  private readonly waiting: [Array<() => void>, Array<() => void>] = [[], []];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError('RoundSlots: size must be a whole number >= 1');
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.waiting[0].length + this.waiting[1].length;
  }

  /** Run `task` in a slot (tier 0 before tier 1); the slot is freed when it settles, however it ends. */
  async run<T>(task: () => Promise<T>, tier: 0 | 1 = 0): Promise<T> {
    if (this.running >= this.size) await new Promise<void>((start) => this.waiting[tier].push(start));
    else this.running++;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next in line, or is freed.
      const next = this.waiting[0].shift() ?? this.waiting[1].shift();
      if (next !== undefined) next();
      else this.running--;
    }
  }
}
