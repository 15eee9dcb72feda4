import { performance } from 'node:perf_hooks';
import { FirnError } from '@firn/core';

/**
 * The enclave's reading of chain time (docs/decisions/1041-chain-time-and-outages.md). The host
 * passes the latest block's timestamp (`setChainTime`); the enclave counts on from it with its
 * monotonic clock, so Work Proof times and expiry checks follow the chain's clock, which the
 * contract judges proofs by, and not the host's wall clock, which may be skewed or stepped.
 *
 * What it proves: nothing beyond what the host says; the host controls the enclave's wall clock
 * anyway, and the enclave's time floor (trustedTime.ts) still never goes back. What it gives: an
 * honest host with a skewed clock no longer produces proofs the contract refuses or disputes.
 */
export interface ChainClock {
  /** Chain time now, unix seconds: the last chain time given plus the monotonic time since; the host clock before any. */
  now(): number;
  /**
   * Take a chain time (unix seconds). The first one always takes; later ones only move the clock
   * forward (an idle chain's older block never winds it back). Raises E_INVALID_INPUT for a
   * value that is not a positive safe integer.
   */
  set(chainTime: number): void;
  /** True once a chain time was given. */
  known(): boolean;
}

export function createChainClock(
  opts: { hostNow?: () => number; monotonicMs?: () => number } = {},
): ChainClock {
  const hostNow = opts.hostNow ?? (() => Math.floor(Date.now() / 1000));
  const mono = opts.monotonicMs ?? (() => performance.now());
  let anchor: { t: number; at: number } | undefined;
  const now = () => (anchor ? anchor.t + Math.floor((mono() - anchor.at) / 1000) : hostNow());
  return {
    now,
    set(chainTime) {
      if (!Number.isSafeInteger(chainTime) || chainTime <= 0)
        throw new FirnError('E_INVALID_INPUT', 'chainTime must be unix seconds');
      if (anchor === undefined || chainTime > now()) anchor = { t: chainTime, at: mono() };
    },
    known: () => anchor !== undefined,
  };
}
