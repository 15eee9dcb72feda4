import { rateLimited } from '../http/limits.ts';

/** Jobs one requester may have admitted (waiting or running) on a node at once, unless configured. */
export const DEFAULT_MAX_JOBS_PER_REQUESTER = 8;

/**
 * Admission control of a node's job intake (docs/decisions/1550-node-host-resource-bounds.md):
 * at most `capacity` jobs admitted (running plus queued) in all, and at most `perRequester` of
 * them from one requester (the job's requester on chain), so one requester posting many jobs
 * cannot take every slot of the queue and starve the others. Both refusals are E_RATE_LIMITED
 * (HTTP 429) with `details.retryAfterSeconds` (sent as Retry-After).
 */
export class JobAdmission {
  private count = 0;
  private readonly byRequester = new Map<string, number>();

  /**
   * `capacity`: jobs admitted in all (maxConcurrentJobs + maxQueuedJobs). `perRequester`: jobs
   * admitted from one requester (JobApiOptions.maxJobsPerRequester); both at least 1.
   */
  constructor(
    readonly capacity: number,
    readonly perRequester: number = DEFAULT_MAX_JOBS_PER_REQUESTER,
  ) {}

  /** Jobs admitted and not yet over. */
  get active(): number {
    return this.count;
  }

  /** Jobs admitted from `requester` and not yet over. */
  activeOf(requester: string): number {
    return this.byRequester.get(requester.toLowerCase()) ?? 0;
  }

  /** Throws E_RATE_LIMITED when the node is full, or `requester` (when given) holds its share. */
  check(requester?: string): void {
    if (this.count >= this.capacity)
      throw rateLimited(`this node is busy (${this.count} jobs running or queued); retry later`, 10);
    if (requester !== undefined && this.activeOf(requester) >= this.perRequester)
      throw rateLimited(
        `this requester already has ${this.perRequester} jobs running or queued on this node (the node's per-requester limit); retry when one has ended`,
        10,
      );
  }

  /** Check, then count a job of `requester` as admitted; returns its release (idempotent). */
  enter(requester: string): () => void {
    this.check(requester);
    const key = requester.toLowerCase();
    this.count++;
    this.byRequester.set(key, (this.byRequester.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.count--;
      const left = (this.byRequester.get(key) ?? 1) - 1;
      if (left <= 0) this.byRequester.delete(key);
      else this.byRequester.set(key, left);
    };
  }
}
