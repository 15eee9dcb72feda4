import { FirnError, type Hex } from '@firn/core';
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
import type { Workload } from './workload.ts';
import { WORKLOADS } from './workloads/index.ts';

/**
 * Job handlers (the workloads of the app this image serves, apps/imageApp.ts) and warm inference
 * sessions registered with the enclave program. `runtime` says where workloads run: the enclave's
 * main passes a child-process runtime that never holds the enclave's keys; the default runs them
 * in this process. `workloads` must be the table the runtime serves.
 */
export function createJobHandlers(
  runtime: MlRuntime = inProcessRuntime(WORKLOADS),
  workloads: Record<string, Workload> = WORKLOADS,
  /** `now`: the enclave's clock for proofs and expiry, unix seconds (main passes chain time). */
  opts: { now?: () => number } = {},
): Record<string, Handler> {
  const clock = opts.now === undefined ? {} : { now: opts.now };
  // One plaintext cache for jobs and sessions, so a model opened by either is not decrypted twice.
  const cache = new ArtifactCache();
  // Requests opened and checked before the host claims (preflightJob), taken over by runJob.
  const preflight = new PreflightStore<PreflightedJob>();
  // Warm inference sessions belong to apps that define the `inference` workload; any other app's
  // image refuses them, so an image never proves work its app does not do.
  const sessions = Object.hasOwn(workloads, 'inference')
    ? createSessionHandlers({ cache, runtime, ...clock })
    : noSessions();
  return {
    preflightJob: createPreflightJobHandler({ workloads, preflight, ...clock }),
    runJob: createRunJobHandler({ workloads, cache, runtime, preflight, ...clock }),
    /** The host's claim failed: drop what its pre-flight kept (job entry or session slot). */
    releasePreflight: async (raw, ctx) => {
      if (typeof raw.jobId === 'string') preflight.delete(raw.jobId.toLowerCase() as Hex);
      return sessions.releaseSessionPreflight!(raw, ctx);
    },
    ...sessions,
  };
}

/** Session handlers of an image whose app has no `inference` workload: every method is E_UNSUPPORTED. */
function noSessions(): Record<string, Handler> {
  const refuse: Handler = async () => {
    throw new FirnError('E_UNSUPPORTED', 'this app serves no inference sessions');
  };
  return {
    preflightSession: refuse,
    openSession: refuse,
    sessionRequest: refuse,
    closeSession: refuse,
    releaseSessionPreflight: async () => ({ ok: true }),
  };
}
