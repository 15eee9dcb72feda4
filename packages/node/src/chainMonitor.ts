import { performance } from 'node:perf_hooks';
import { errorLogText, FirnError, isFirnError } from '@firn/core';
import type { Logger } from './logger.ts';

/** What the monitor reads from the chain (viem's PublicClient fits). */
export interface ChainHeadReader {
  getBlock(args: { blockTag: 'latest' }): Promise<{ number: bigint | null; timestamp: bigint }>;
}

export interface ChainMonitorOptions {
  logger: Logger;
  /** How often the head is read while the chain answers, ms. Default 2000. */
  intervalMs?: number;
  /** Longest wait between reads while it does not, ms (the back-off doubles up to it). Default 15 000. */
  maxBackoffMs?: number;
  /** How long one read may take, ms. Default 5000. */
  timeoutMs?: number;
  /** Host clock, unix seconds (tests skew it). */
  hostNow?: () => number;
  /** A host clock this far from chain time is reported (and logged), seconds. Default 30. */
  skewWarnSeconds?: number;
}

/** The chain as the node sees it, for /healthz. */
export interface ChainHealth {
  up: boolean;
  /** Latest block number read (decimal string), when any. */
  block?: string;
  /** Host clock minus chain time at the last read, seconds. */
  clockSkewSeconds?: number;
  /** Seconds since the chain last answered. */
  lastSeenSecondsAgo?: number;
  error?: string;
}

/**
 * Watches the chain's head: whether the RPC answers (read every `intervalMs`, with a doubling
 * back-off up to `maxBackoffMs` while it does not) and what time it is on chain. `now()` is chain
 * time: the latest block's timestamp plus the monotonic time elapsed since it was read, so a
 * skewed or stepped host clock never moves it (the host clock is used only before the first read).
 * Proof times, deadlines and claim expiries are judged on this clock, the one the contract uses.
 */
export class ChainMonitor {
  private timer: NodeJS.Timeout | undefined;
  private anchor: { chainTime: number; at: number } | undefined;
  private lastOkAt: number | undefined;
  private block: bigint | undefined;
  private failures = 0;
  private lastError: string | undefined;
  private skew: number | undefined;
  private warnedSkew = false;
  private stopped = false;
  private readonly listeners = new Set<(chainTime: number) => void>();

  constructor(
    private readonly reader: ChainHeadReader,
    private readonly opts: ChainMonitorOptions,
  ) {}

  private hostNow(): number {
    return (this.opts.hostNow ?? (() => Math.floor(Date.now() / 1000)))();
  }

  /** Chain time now, unix seconds (host clock until the chain was read once). */
  now(): number {
    if (!this.anchor) return this.hostNow();
    return this.anchor.chainTime + Math.floor((performance.now() - this.anchor.at) / 1000);
  }

  /** True when the last read succeeded. */
  get up(): boolean {
    return this.failures === 0 && this.anchor !== undefined;
  }

  /** Called with the chain time after every successful read. */
  onTime(f: (chainTime: number) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** Read the head once; true when the chain answered. Never throws. */
  async refresh(): Promise<boolean> {
    const timeoutMs = this.opts.timeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const b = await Promise.race([
        this.reader.getBlock({ blockTag: 'latest' }),
        new Promise<never>((_r, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      const chainTime = Number(b.timestamp);
      // A new block moves the anchor; an idle chain (no new block) keeps counting from the old one.
      if (!this.anchor || b.number !== this.block || chainTime > this.now())
        this.anchor = { chainTime, at: performance.now() };
      this.block = b.number ?? this.block;
      if (this.failures > 0) this.opts.logger.info('chain reachable again', { block: String(b.number) });
      this.failures = 0;
      this.lastError = undefined;
      this.lastOkAt = performance.now();
      this.skew = this.hostNow() - this.now();
      const warnAt = this.opts.skewWarnSeconds ?? 30;
      if (Math.abs(this.skew) > warnAt && !this.warnedSkew) {
        this.warnedSkew = true;
        this.opts.logger.warn('host clock differs from chain time; proofs use chain time', {
          clockSkewSeconds: this.skew,
        });
      } else if (Math.abs(this.skew) <= warnAt) this.warnedSkew = false;
      for (const f of this.listeners) f(this.now());
      return true;
    } catch (e) {
      this.failures++;
      // Shown to anyone on /healthz and /v1/node: viem's one-line summary with every URL in it
      // redacted (an RPC URL's path or query may hold its API key, decision 1686), never its
      // `URL:` and request-body detail block; redacted before it is cut, so no cut hides a key.
      this.lastError = isFirnError(e) ? e.code : errorLogText(e).slice(0, 200);
      if (this.failures === 1) this.opts.logger.warn('chain unreachable', { error: this.lastError });
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Start reading the head in the background (first read awaited). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.refresh();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    const base = this.opts.intervalMs ?? 2000;
    const delay =
      this.failures === 0
        ? base
        : Math.min(this.opts.maxBackoffMs ?? 15_000, base * 2 ** (this.failures - 1));
    this.timer = setTimeout(() => {
      void this.refresh().then(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /**
   * Throw E_UNAVAILABLE (503) unless the chain answers: when the last read failed, the head is
   * read once more now (the back-off must not keep a recovered chain refused).
   */
  async requireUp(what: string): Promise<void> {
    if (!this.up) await this.refresh();
    if (!this.up)
      throw new FirnError(
        'E_UNAVAILABLE',
        `the node cannot reach its chain RPC, so it does not ${what} now; retry later or use another node`,
        { details: { retryAfterSeconds: 5 } },
      );
  }

  health(): ChainHealth {
    return {
      up: this.up,
      ...(this.block === undefined ? {} : { block: this.block.toString() }),
      ...(this.skew === undefined ? {} : { clockSkewSeconds: this.skew }),
      ...(this.lastOkAt === undefined
        ? {}
        : { lastSeenSecondsAgo: Math.floor((performance.now() - this.lastOkAt) / 1000) }),
      ...(this.lastError === undefined ? {} : { error: this.lastError }),
    };
  }
}

/** True for a chain error worth retrying (RPC unreachable, timeout), false for a revert or a bad call. */
export function isTransientChainError(e: unknown): boolean {
  if (!isFirnError(e)) return true;
  return e.code === 'E_CHAIN' || e.code === 'E_UNAVAILABLE' || e.code === 'E_TIMEOUT';
}

/**
 * Run a chain call until it succeeds, retrying transient failures (isTransientChainError) with a
 * doubling back-off from `initialMs` up to `maxMs`, until `until()` says to stop (then the last
 * error is thrown). A revert or any other error is thrown at once.
 */
export async function retryChain<T>(
  f: () => Promise<T>,
  opts: {
    until: () => boolean;
    initialMs?: number;
    maxMs?: number;
    onRetry?: (e: unknown, attempt: number) => void;
  },
): Promise<T> {
  let delay = opts.initialMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      if (!isTransientChainError(e) || opts.until()) throw e;
      opts.onRetry?.(e, attempt);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(opts.maxMs ?? 10_000, delay * 2);
    }
  }
}
