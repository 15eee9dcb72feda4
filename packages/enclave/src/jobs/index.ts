import type { Hex } from '@firn/core';
import type { Handler } from '../enclaveProgram.ts';
import { inProcessRuntime, type MlRuntime } from '../runtime/mlRuntime.ts';
import { ArtifactCache } from './artifactCache.ts';
import { createSessionHandlers } from './inferenceSession.ts';
import {
  createPreflightJobHandler,
  createRunJobHandler,
  type PreflightedJob,
  PreflightStore,
} from './runJob.ts';
import { WORKLOADS } from './workloads/index.ts';

/**
 * Job handlers (inference, training) and warm inference sessions registered with the enclave
 * program. `runtime` says where the ML runtimes run: the enclave's main passes a child-process
 * runtime that never holds the enclave's keys; the default runs them in this process.
 */
export function createJobHandlers(
  runtime: MlRuntime = inProcessRuntime(WORKLOADS),
  /** `now`: the enclave's clock for proofs and expiry, unix seconds (main passes chain time). */
  opts: { now?: () => number } = {},
): Record<string, Handler> {
  const clock = opts.now === undefined ? {} : { now: opts.now };
  // One plaintext cache for jobs and sessions, so a model opened by either is not decrypted twice.
  const cache = new ArtifactCache();
  // Requests opened and checked before the host claims (preflightJob), taken over by runJob.
  const preflight = new PreflightStore<PreflightedJob>();
  const sessions = createSessionHandlers({ cache, runtime, ...clock });
  return {
    preflightJob: createPreflightJobHandler({ workloads: WORKLOADS, preflight, ...clock }),
    runJob: createRunJobHandler({ workloads: WORKLOADS, cache, runtime, preflight, ...clock }),
    /** The host's claim failed: drop what its pre-flight kept (job entry or session slot). */
    releasePreflight: async (raw, ctx) => {
      if (typeof raw.jobId === 'string') preflight.delete(raw.jobId.toLowerCase() as Hex);
      return sessions.releaseSessionPreflight!(raw, ctx);
    },
    ...sessions,
  };
}
