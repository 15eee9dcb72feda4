/** Default least time between two health checks behind GET /healthz, ms (HttpLimits.healthRefreshMs). */
export const DEFAULT_HEALTH_REFRESH_MS = 1_000;

/**
 * The node's health as GET /healthz serves it (decision 1761): one check (an enclave `hello`
 * through the enclave pipe, a database write, the chain monitor's last read) at most every
 * `refreshMs`, whatever the number of requests. A request within `refreshMs` of the last check's
 * end gets that check's result; requests that come while a check runs share it. A check that
 * throws is not kept (the next request starts another) and its error goes to every request that
 * shared it.
 *
 * What it gives up: a part that goes down is reported up to `refreshMs` (plus one check's time)
 * late, which a load balancer polling every few seconds does not notice.
 */
export class SharedHealthCheck<T> {
  private last: { value: T; at: number } | undefined;
  private running: Promise<T> | undefined;

  constructor(
    private readonly check: () => Promise<T>,
    /** Least time between the end of one check and the start of the next, ms (clamped to >= 0). */
    readonly refreshMs: number = DEFAULT_HEALTH_REFRESH_MS,
    /** Clock, ms (tests pass their own). */
    private readonly now: () => number = Date.now,
  ) {}

  /** The last result if it is younger than `refreshMs`, else the result of the check now running or a new one. */
  get(): Promise<T> {
    if (this.last !== undefined && this.now() - this.last.at < Math.max(0, this.refreshMs))
      return Promise.resolve(this.last.value);
    if (this.running === undefined) {
      const run = this.check().then(
        (value) => {
          this.last = { value, at: this.now() };
          this.running = undefined;
          return value;
        },
        (e: unknown) => {
          this.running = undefined;
          throw e;
        },
      );
      this.running = run;
    }
    return this.running;
  }
}
