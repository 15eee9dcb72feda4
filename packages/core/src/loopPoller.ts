/**
 * How long before a message is expected a delayed poll window starts, ms: covers a timer firing
 * up to a millisecond late (libuv's clock has millisecond resolution) and the 0.1-0.6 ms it takes
 * to wake the sleeping process for it, with room for a message a little earlier than the shortest
 * recently seen.
 */
export const POLL_LEAD_MS = 2;
/** A window whose polling would start sooner than this, ms, starts polling at once (no timer). */
export const MIN_POLL_DELAY_MS = 1;
/** The longest delay a Node timer holds, ms (2^31 - 1; a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * A session end's poll window by default, ms (decision 1800): about one benchmark round at batch
 * 64. The requester's (`SessionStream.pollMs`) and the child's (the host's SessionBounds.pollMs).
 */
export const DEFAULT_SESSION_POLL_MS = 20;
/**
 * The longest poll window either end of a session takes, ms: the SDK, the host and the enclave
 * refuse a longer one (E_INVALID_INPUT; the host's daemon E_UNAVAILABLE at start).
 */
export const MAX_SESSION_POLL_MS = 1_000;

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
  /** The timer that starts the waiting (delayed) window, and that window's start and end (performance.now()). */
  private timer: ReturnType<typeof setTimeout> | undefined;
  private waitingFrom = 0;
  private waitingUntil = 0;
  /** Bumped by each start and stop: a turn of an earlier run of turns ends there. */
  private generation = 0;
  /** Turns of the loop polled so far (for tests and diagnostics). */
  turns = 0;

  /**
   * @param wanted - checked every turn: polling stops early once it returns false (the awaited
   *   message came). Default: always wanted until the window ends.
   */
  constructor(private readonly wanted: () => boolean = () => true) {}

  /**
   * Keep the loop from sleeping for `ms` milliseconds (or longer, if a window being polled ends
   * later). `ms` <= 0 or not finite opens nothing.
   *
   * `startInMs` delays the window: the loop sleeps as usual until then and polls for `ms` from
   * then on, so a message known to take a while (an inference of several milliseconds) costs no
   * core until shortly before it is due (POLL_LEAD_MS is the caller's margin; pollDelayMs), and the
   * other processes on the machine get that core meanwhile instead of preempting the work being
   * waited for. Below MIN_POLL_DELAY_MS, or not finite, polling starts at once. A delayed window
   * that starts inside the window being polled continues it; one that starts later waits as its
   * own window (at most one waits: of two, the earlier start wins), never merged with another, so
   * every call costs at most `ms` of polling beyond what was already due.
   */
  pollFor(ms: number, startInMs = 0): void {
    if (!(ms > 0) || !Number.isFinite(ms)) return;
    const now = performance.now();
    const delay = Number.isFinite(startInMs) && startInMs >= MIN_POLL_DELAY_MS ? startInMs : 0;
    if (delay === 0 || (this.running && now + delay <= this.until)) {
      this.until = Math.max(this.until, now + delay + ms);
      if (!this.running) this.start();
      return;
    }
    if (this.timer !== undefined && this.waitingFrom <= now + delay) return;
    this.clearTimer();
    this.waitingFrom = now + delay;
    this.waitingUntil = now + delay + ms;
    this.armTimer();
  }

  /**
   * Arm the timer for the waiting window's start: within what a Node timer holds (a longer delay
   * fires after 1 ms), re-armed by `begin` for what is left. The awaited message's socket keeps
   * the process alive; this timer never does by itself.
   */
  private armTimer(): void {
    const left = Math.floor(this.waitingFrom - performance.now());
    this.timer = setTimeout(this.begin, Math.min(MAX_TIMER_MS, Math.max(0, left)));
    this.timer.unref();
  }

  /**
   * End the current window now, and any start still pending: the loop sleeps again from its next
   * turn, and the next `pollFor` opens a window of its own (delayed as it asks).
   */
  stop(): void {
    this.until = 0;
    this.clearTimer();
    this.running = false;
    this.generation++;
  }

  /** True while a window is open and being polled (not while its delayed start is pending). */
  get polling(): boolean {
    return this.running;
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly begin = (): void => {
    this.timer = undefined;
    // A start more than a timer holds away: not yet (timers fire up to 1 ms early by flooring).
    if (performance.now() < this.waitingFrom - MIN_POLL_DELAY_MS) {
      this.armTimer();
      return;
    }
    this.until = Math.max(this.running ? this.until : 0, this.waitingUntil);
    if (!this.running) this.start();
  };

  /** Start turning the loop; a `stop()` meanwhile ends this run of turns (its generation). */
  private start(): void {
    this.running = true;
    const generation = ++this.generation;
    const tick = (): void => {
      if (generation !== this.generation) return;
      if (this.until > 0 && performance.now() < this.until && this.wanted()) {
        this.turns++;
        setImmediate(tick);
        return;
      }
      this.running = false;
      this.until = 0;
    };
    setImmediate(tick);
  }
}

/**
 * The latest few durations of one kind (ms), for a caller that polls only close to when a message
 * is due: `shortest()` is the least of them once three are known.
 */
export class RecentDurations {
  private readonly kept: number[] = [];

  /** @param keep - how many of the latest durations count (default 8). */
  constructor(private readonly keep = 8) {}

  /** Record one duration, ms (negative counts as 0; not finite is ignored). */
  add(ms: number): void {
    if (!Number.isFinite(ms)) return;
    this.kept.push(Math.max(0, ms));
    if (this.kept.length > this.keep) this.kept.shift();
  }

  /** The shortest of the kept durations, ms, or undefined until three are known. */
  shortest(): number | undefined {
    return this.kept.length < 3 ? undefined : Math.min(...this.kept);
  }

  /** The median of the kept durations, ms (the upper one of an even count), or undefined until three are known. */
  median(): number | undefined {
    if (this.kept.length < 3) return undefined;
    const s = [...this.kept].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)]!;
  }
}

/**
 * When polling for a message should start, ms from now: `LoopPoller.pollFor`'s `startInMs` for a
 * message whose wait began `elapsedMs` ago and that took at least `shortestMs` the last few times
 * (RecentDurations.shortest): POLL_LEAD_MS before that, 0 when it is unknown or already near.
 */
export function pollDelayMs(shortestMs: number | undefined, elapsedMs = 0): number {
  if (shortestMs === undefined) return 0;
  return Math.max(0, shortestMs - elapsedMs - POLL_LEAD_MS);
}

/**
 * The last few gaps between an answer sent and the next message that came, ms, to decide whether
 * polling after an answer can pay off: a peer whose messages come later than the poll window would
 * only burn the window (decision 1800). `answered()` at each answer, `arrived()` at each message.
 */
export class RecentGaps {
  private readonly gaps: RecentDurations;
  private answeredAt: number | undefined;

  /** @param keep - how many of the latest gaps count (default 8). */
  constructor(keep = 8) {
    this.gaps = new RecentDurations(keep);
  }

  /** An answer went out now. */
  answered(now = performance.now()): void {
    this.answeredAt = now;
  }

  /** A message came now: the gap since the last answer counts (once per answer). */
  arrived(now = performance.now()): void {
    if (this.answeredAt === undefined) return;
    this.gaps.add(now - this.answeredAt);
    this.answeredAt = undefined;
  }

  /**
   * Whether a poll window of `windowMs` is likely to catch the next message: true until three gaps
   * are known, then when the median of the kept gaps is within the window.
   */
  fits(windowMs: number): boolean {
    const m = this.gaps.median();
    return m === undefined || m <= windowMs;
  }

  /** The shortest of the kept gaps, ms, or undefined until three are known (for pollDelayMs). */
  shortest(): number | undefined {
    return this.gaps.shortest();
  }
}
