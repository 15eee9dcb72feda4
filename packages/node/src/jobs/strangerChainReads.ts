import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { clientKey, rateLimited } from '../http/limits.ts';

/**
 * Limits of the chain reads the node makes for requests no key it trusts has authenticated yet
 * (decision 1741). Defaults in DEFAULT_STRANGER_READ_LIMITS.
 */
export interface StrangerReadLimits {
  /**
   * How long a "nothing there" answer (no such job, a signer that never sent a transaction, an
   * uploader with no balance) is reused, ms: the longest a job, transaction or balance that has
   * just appeared on chain can still be refused after the node's RPC shows it. Default 2 000.
   */
  negativeTtlMs: number;
  /** How long a lasting answer (a job's requester, a signer that has sent a transaction) is reused, ms. Default 600 000. */
  positiveTtlMs: number;
  /** Answers kept at most (least recently used dropped first). Default 10 000. */
  maxEntries: number;
  /** Chain reads one client (IPv4 address, IPv6 /64) may cause per 10 s on a cache miss. Default 10. */
  perClientPer10s: number;
  /** Chain reads all clients together may cause per 10 s on a cache miss. Default 100. */
  totalPer10s: number;
  /**
   * Chain reads one signer known to have sent a transaction may cause per 10 s on a cache miss
   * (`read` with `{ signer }`); these spend neither the client's nor the node's budget. Each of
   * that signer's jobs cost it a `postJob` transaction. Default 60.
   */
  perKnownSignerPer10s: number;
  /**
   * Addresses kept as known to have sent a transaction (least recently used dropped first): a
   * fact that never lapses (an account's nonce only grows), so a returning requester is not a
   * stranger again once its cached answer's TTL has passed. Default 100 000 (about 10 MB).
   */
  maxKnownSenders: number;
}

export const DEFAULT_STRANGER_READ_LIMITS: StrangerReadLimits = Object.freeze({
  negativeTtlMs: 2_000,
  positiveTtlMs: 600_000,
  maxEntries: 10_000,
  perClientPer10s: 10,
  totalPer10s: 100,
  perKnownSignerPer10s: 60,
  maxKnownSenders: 100_000,
});

/**
 * Whose budget a cache miss spends: the asking client's and the node's (`ip`), or, for a read
 * made for a signer already known to have sent a transaction, that signer's own (`signer`,
 * decision 1741, amended).
 */
export type StrangerReadCharge = { ip: string } | { signer: string };

/**
 * A short-lived cache and a budget for the chain reads made on behalf of unauthenticated requests
 * (a submission's signer before it is known to be the job's requester, an upload intent's
 * uploader), so that a stranger's refused requests do not spend the operator's RPC quota
 * (decision 1741). Answers are kept in an LRU (lru-cache) with a TTL per answer, the same read
 * asked twice at once is made once, and a cache miss costs the asking client one point of its
 * budget and one of the node's (rate-limiter-flexible, 10 s windows); a client or the node over
 * budget is answered E_RATE_LIMITED (429, Retry-After) before the chain is asked.
 */
export class StrangerChainReads {
  readonly limits: StrangerReadLimits;
  private readonly cache: LRUCache<string, { value: unknown }>;
  private readonly pending = new Map<string, Promise<unknown>>();
  private readonly perClient: RateLimiterMemory;
  private readonly total: RateLimiterMemory;
  private readonly perSigner: RateLimiterMemory;
  private readonly senders: LRUCache<string, true>;

  constructor(limits: Partial<StrangerReadLimits> = {}) {
    this.limits = { ...DEFAULT_STRANGER_READ_LIMITS, ...limits };
    this.cache = new LRUCache({ max: Math.max(1, this.limits.maxEntries) });
    this.perClient = new RateLimiterMemory({
      points: Math.max(1, this.limits.perClientPer10s),
      duration: 10,
    });
    this.total = new RateLimiterMemory({ points: Math.max(1, this.limits.totalPer10s), duration: 10 });
    this.senders = new LRUCache({ max: Math.max(1, this.limits.maxKnownSenders) });
    this.perSigner = new RateLimiterMemory({
      points: Math.max(1, this.limits.perKnownSignerPer10s),
      duration: 10,
    });
  }

  /**
   * Record that `address` (0x + 40 hex, any case) has sent a transaction on chain: kept without a
   * TTL (decision 1741, second amendment), at most `maxKnownSenders` addresses.
   */
  rememberSender(address: string): void {
    this.senders.set(address.toLowerCase(), true);
  }

  /** Whether `address` is known to have sent a transaction (rememberSender), no read made. */
  isKnownSender(address: string): boolean {
    return this.senders.get(address.toLowerCase()) === true;
  }

  /** The cached answer under `key`, if one is still fresh (no read, no budget spent). */
  peek<T>(key: string): T | undefined {
    return this.cache.get(key)?.value as T | undefined;
  }

  /**
   * The answer under `key`: cached if fresh, else `load()` (one chain read) charged to `charge`:
   * an IP string or `{ ip }` spends that client's and the node's budget, `{ signer }` (a signer
   * the caller knows has sent a transaction) spends only that signer's. Kept for `positiveTtlMs`
   * when `lasting(answer)` is true and `negativeTtlMs` otherwise. Throws E_RATE_LIMITED over
   * budget, or what `load` throws (nothing is cached then).
   */
  async read<T>(
    key: string,
    charge: string | StrangerReadCharge,
    load: () => Promise<T>,
    lasting: (answer: T) => boolean,
  ): Promise<T> {
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit.value as T;
    const running = this.pending.get(key);
    if (running !== undefined) return running as Promise<T>;
    const who = typeof charge === 'string' ? { ip: charge } : charge;
    if ('signer' in who) await this.spendSigner(who.signer);
    else await this.spend(who.ip);
    // Asked again while the budget was checked: join that read.
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached.value as T;
    const joined = this.pending.get(key);
    if (joined !== undefined) return joined as Promise<T>;
    const p = (async () => {
      try {
        const value = await load();
        const ttl = lasting(value) ? this.limits.positiveTtlMs : this.limits.negativeTtlMs;
        if (ttl > 0) this.cache.set(key, { value }, { ttl });
        return value;
      } finally {
        this.pending.delete(key);
      }
    })();
    this.pending.set(key, p);
    return p;
  }

  /** Keep `value` under `key` (an answer learnt on another path), as `read` would. */
  remember(key: string, value: unknown, lasting: boolean): void {
    const ttl = lasting ? this.limits.positiveTtlMs : this.limits.negativeTtlMs;
    if (ttl > 0) this.cache.set(key, { value }, { ttl });
  }

  private async spendSigner(signer: string): Promise<void> {
    try {
      await this.perSigner.consume(signer.toLowerCase(), 1);
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      throw rateLimited(
        `too many chain checks for unknown jobs signed by ${signer} (limit ${this.limits.perKnownSignerPer10s} per 10 s); retry shortly`,
        Math.max(1, Math.ceil(e.msBeforeNext / 1000)),
      );
    }
  }

  private async spend(ip: string): Promise<void> {
    try {
      await this.perClient.consume(clientKey(ip), 1);
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      throw rateLimited(
        `too many chain checks for unknown jobs, signers or uploaders from this address (IPv6: its /64; limit ${this.limits.perClientPer10s} per 10 s)`,
        Math.max(1, Math.ceil(e.msBeforeNext / 1000)),
      );
    }
    try {
      await this.total.consume('all', 1);
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      throw rateLimited(
        `the node is making its most chain checks for unknown jobs, signers or uploaders (${this.limits.totalPer10s} per 10 s); retry shortly`,
        Math.max(1, Math.ceil(e.msBeforeNext / 1000)),
      );
    }
  }
}
