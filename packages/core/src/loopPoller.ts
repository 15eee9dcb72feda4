/**
 * Busy-polling of a Node.js event loop for a bounded window
 * (docs/decisions/1800-session-ends-poll-while-an-answer-is-due.md).
 *
 * A process that waits on a socket sleeps in `epoll_wait`; when the bytes come, the kernel wakes
 * it, and on a virtual machine whose vCPU halted meanwhile that wake-up costs 0.1-0.6 ms (measured
 * on the 2-vCPU benchmark machine: a 2 KiB frame written to taken 0.16-0.24 ms sleeping, 0.05 ms
 * polling). While a poll window is open the loop is kept turning with `setImmediate`, so libuv
 * polls its sockets with a zero timeout and never sleeps: bytes that arrive are read on the next
 * turn, with no wake-up. Timers, I/O and every other callback run as usual in between; the cost is
 * the CPU of one core for at most the window. The same trade onnxruntime's thread pool makes
 * (its threads spin before they block), applied to the one thread that waits for the next message.
 */
export class LoopPoller {
  /** performance.now() at which the current window ends (0: none open). */
  private until = 0;
  private running = false;
  /** Turns of the loop polled so far (for tests and diagnostics). */
  turns = 0;

  /**
   * @param wanted - checked every turn: polling stops early once it returns false (the awaited
   *   message came). Default: always wanted until the window ends.
   */
  constructor(private readonly wanted: () => boolean = () => true) {}

  /**
   * Keep the loop from sleeping for `ms` milliseconds from now (or longer, if a window already
   * open ends later). `ms` <= 0 or not finite opens nothing.
   */
  pollFor(ms: number): void {
    if (!(ms > 0) || !Number.isFinite(ms)) return;
    this.until = Math.max(this.until, performance.now() + ms);
    if (this.running) return;
    this.running = true;
    setImmediate(this.tick);
  }

  /** End the current window now (the loop sleeps again from its next turn). */
  stop(): void {
    this.until = 0;
  }

  /** True while a window is open and being polled. */
  get polling(): boolean {
    return this.running;
  }

  private readonly tick = (): void => {
    if (this.until > 0 && performance.now() < this.until && this.wanted()) {
      this.turns++;
      setImmediate(this.tick);
      return;
    }
    this.running = false;
    this.until = 0;
  };
}

/**
 * The last few gaps between an answer sent and the next message that came, ms, to decide whether
 * polling after an answer can pay off: a peer whose messages come later than the poll window would
 * only burn the window (decision 1800). `answered()` at each answer, `arrived()` at each message.
 */
export class RecentGaps {
  private readonly gaps: number[] = [];
  private answeredAt: number | undefined;

  /** @param keep - how many of the latest gaps count (default 8). */
  constructor(private readonly keep = 8) {}

  /** An answer went out now. */
  answered(now = performance.now()): void {
    this.answeredAt = now;
  }

  /** A message came now: the gap since the last answer counts (once per answer). */
  arrived(now = performance.now()): void {
    if (this.answeredAt === undefined) return;
    this.gaps.push(Math.max(0, now - this.answeredAt));
    this.answeredAt = undefined;
    if (this.gaps.length > this.keep) this.gaps.shift();
  }

  /**
   * Whether a poll window of `windowMs` is likely to catch the next message: true until three gaps
   * are known, then when the median of the kept gaps is within the window.
   */
  fits(windowMs: number): boolean {
    if (this.gaps.length < 3) return true;
    const s = [...this.gaps].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)]! <= windowMs;
  }
}
