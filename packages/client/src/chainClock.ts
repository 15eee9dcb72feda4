/**
 * Chain time as a requester can judge it for waits and give-ups: the latest block's timestamp first
 * seen (the origin), plus this process's own elapsed time since, measured on the monotonic clock
 * (`performance.now()`), and never below the latest block's timestamp read now. The host's wall
 * clock is never used: a host clock set apart from the chain (30 minutes ahead, say) cannot make a
 * deadline look passed (a proved job's challenge window, a claim's lapse) before the chain gets
 * there, and a host clock behind the chain cannot hold a wait open after it did
 * (docs/decisions/1460-requester-waits-on-chain-time.md; the verifier does the same since
 * tests/attacks/verifier-clock-ahead.test.ts).
 *
 * Elapsed time is added because chains that mine only on transactions (anvil) leave the latest
 * block's timestamp behind while nothing is sent. The estimate can run behind true chain time
 * (an origin read from an old block), never ahead of it by more than the clock's drift: it is for
 * judging that a time HAS passed. To set a deadline forward, the later of this and the host clock
 * is fine (a longer deadline harms no one).
 */
export class ChainClock {
  private origin: { chain: number; at: number } | undefined;
  private latest: number | undefined;

  /**
   * @param readChainTime reads the latest block's timestamp, unix seconds (e.g. from
   *   `clients.public.getBlock()`); its errors propagate from `now`.
   * @param elapsedMs a monotonic clock in milliseconds (default `performance.now()`; tests pass their own).
   */
  constructor(
    private readonly readChainTime: () => Promise<number>,
    private readonly elapsedMs: () => number = () => performance.now(),
  ) {}

  /**
   * Take `chainTime` (unix seconds, a block timestamp just read) into account: the first one seen
   * becomes the origin. Returns the chain time now, as `estimate` then gives it.
   */
  observe(chainTime: number): number {
    if (!Number.isFinite(chainTime)) throw new TypeError('chain time must be a finite number of seconds');
    this.origin ??= { chain: chainTime, at: this.elapsedMs() };
    this.latest = Math.max(this.latest ?? chainTime, chainTime);
    return this.estimate()!;
  }

  /**
   * Chain time now without a read, unix seconds (whole): the later of the latest block seen and
   * origin + own elapsed time; undefined before the first block was seen.
   */
  estimate(): number | undefined {
    if (this.origin === undefined || this.latest === undefined) return undefined;
    const elapsed = Math.max(0, this.elapsedMs() - this.origin.at) / 1000;
    return Math.max(this.latest, Math.floor(this.origin.chain + elapsed));
  }

  /** Read the latest block and return the chain time now (unix seconds, see `estimate`). */
  async now(): Promise<number> {
    return this.observe(await this.readChainTime());
  }
}
