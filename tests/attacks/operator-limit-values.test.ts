import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FirnError } from '@firn/core';
import { createLogger, NodeDaemon, type NodeDaemonOptions } from '@firn/node';
import { describe, expect, it } from 'vitest';
import { schedulerFromArgs } from '../../packages/cli/src/commands/node.ts';

// The attack: an operator's per-requester and storage limits (decision 1550; `firn node start`
// flags and NodeDaemonOptions.scheduler / .quotas, "checked at the entry", decision 1602) given a
// bad value. The flags are checked; NodeDaemonOptions were taken as given: NaN compares false
// against every count, so `maxJobsPerRequester: NaN` (Math.max(1, NaN) is NaN too), a NaN or
// Infinity quota, or a quota key present with `undefined` (it spreads over the default) started a
// node with no limit at all. And `--job-timeout` accepted up to 999,999,999 s: past 2^31-1 ms
// Node's setTimeout fires at once, so a long timeout made every job time out immediately.
// Promise: a bad value is refused (E_INVALID_INPUT naming it) before the node starts; a value
// accepted is the limit in force.

const dataDir = mkdtempSync(join(tmpdir(), 'firn-limit-values-'));
const base: NodeDaemonOptions = {
  dataDir,
  bundlePath: join(dataDir, 'no-bundle.mjs'),
  enclaveEnv: { FIRN_TEE: 'simulated' },
  logger: createLogger({ component: 'node' }, { write: () => undefined }),
};

function refusal(f: () => unknown): FirnError | undefined {
  try {
    f();
  } catch (e) {
    return e as FirnError;
  }
  return undefined;
}

describe('attack: an operator limit given a bad value', () => {
  const bad: [string, Partial<NodeDaemonOptions>][] = [
    ['scheduler.maxJobsPerRequester NaN', { scheduler: { maxJobsPerRequester: Number.NaN } }],
    ['scheduler.maxSessionsPerRequester NaN', { scheduler: { maxSessionsPerRequester: Number.NaN } }],
    ['scheduler.maxQueuedJobs NaN', { scheduler: { maxQueuedJobs: Number.NaN } }],
    ['scheduler.maxConcurrentJobs Infinity', { scheduler: { maxConcurrentJobs: Number.POSITIVE_INFINITY } }],
    ['scheduler.maxJobsPerRequester 1e9999', { scheduler: { maxJobsPerRequester: Number('1e9999') } }],
    ['scheduler.maxJobsPerRequester -1', { scheduler: { maxJobsPerRequester: -1 } }],
    ['scheduler.maxJobsPerRequester 2.5', { scheduler: { maxJobsPerRequester: 2.5 } }],
    ['scheduler.jobTimeoutMs 2^31', { scheduler: { jobTimeoutMs: 2 ** 31 } }],
    ['quotas.perAddressBytes NaN', { quotas: { perAddressBytes: Number.NaN } }],
    ['quotas.totalBytes Infinity', { quotas: { totalBytes: Number.POSITIVE_INFINITY } }],
    ['quotas.perAddressBytes -1', { quotas: { perAddressBytes: -1 } }],
    ['limits.maxConnectionsPerIp NaN', { limits: { maxConnectionsPerIp: Number.NaN } }],
    [
      'limits.mutatingRequestsPerSecondPerIp Infinity',
      { limits: { mutatingRequestsPerSecondPerIp: Number.POSITIVE_INFINITY } },
    ],
    ['limits.idleTimeoutMs 2^31', { limits: { idleTimeoutMs: 2 ** 31 } }],
    // Upload slots are async-sema tokens allocated in the constructor: 999,999,999 ends the
    // process out of memory there (not run: 2000 shows the missing bound cheaply).
    [
      'limits.maxConcurrentUploads 2000 (slots allocated up front)',
      { limits: { maxConcurrentUploads: 2000 } },
    ],
  ];
  for (const [what, opts] of bad)
    it(`NodeDaemonOptions ${what} is refused at the entry`, () => {
      const e = refusal(() => new NodeDaemon({ ...base, ...opts }));
      expect(e).toBeInstanceOf(FirnError);
      expect(e?.code).toBe('E_INVALID_INPUT');
    });

  it('a quota key present as undefined keeps the default, not no limit', () => {
    const node = new NodeDaemon({
      ...base,
      quotas: { perAddressBytes: undefined, totalBytes: undefined } as unknown as Partial<{
        perAddressBytes: number;
        totalBytes: number;
      }>,
    });
    expect(node.quotas.perAddressBytes).toBe(4 * 1024 ** 3);
    expect(node.quotas.totalBytes).toBe(32 * 1024 ** 3);
  });

  it('--job-timeout past what a timer can hold is refused, not turned into an immediate timeout', () => {
    // 2,500,000 s (29 days) passes the flag's check today; 2.5e9 ms is past setTimeout's 2^31-1.
    const e = refusal(() => schedulerFromArgs({ jobTimeout: '2500000' } as never));
    if (e === undefined) {
      const ms = schedulerFromArgs({ jobTimeout: '2500000' } as never).jobTimeoutMs!;
      expect(ms).toBeLessThanOrEqual(2 ** 31 - 1);
    } else expect(e.code).toBe('E_INVALID_INPUT');
  });

  it('--max-jobs 999999999 is refused at the entry (the job slots are allocated up front)', () => {
    // JobService takes its enclave slots from async-sema's Sema, which pushes one token per slot
    // at construction: 2e7 slots take ~290 MiB of heap, 999,999,999 (accepted by the flag's
    // check) end the node with a fatal out-of-memory at start. Not run here: only the checks.
    const e = refusal(() => schedulerFromArgs({ maxJobs: '999999999' } as never));
    expect(e?.code).toBe('E_INVALID_INPUT');
    const d = refusal(() => new NodeDaemon({ ...base, scheduler: { maxConcurrentJobs: 999_999_999 } }));
    expect(d?.code).toBe('E_INVALID_INPUT');
  });

  it('--session-poll-ms takes 0 to 1000 and passes it to the node; anything else is refused naming the flag', () => {
    expect(schedulerFromArgs({ sessionPollMs: '0' } as never).sessionPollMs).toBe(0);
    expect(schedulerFromArgs({ sessionPollMs: '1000' } as never).sessionPollMs).toBe(1000);
    expect(schedulerFromArgs({} as never).sessionPollMs).toBeUndefined();
    for (const v of ['1001', '-1', '2.5', 'fast', ''])
      expect(refusal(() => schedulerFromArgs({ sessionPollMs: v } as never))?.message).toMatch(
        /--session-poll-ms/,
      );
    for (const v of [1001, -1, 0.5, Number.NaN])
      expect(refusal(() => new NodeDaemon({ ...base, scheduler: { sessionPollMs: v } }))?.code).toBe(
        'E_INVALID_INPUT',
      );
  });
});
